//! `run` against Kafka as other people run it (issue 28), each a real broker: a SCRAM broker
//! configured differently from the project's own (a listener named `SASL_SSL` that is also the
//! inter-broker one, SCRAM-SHA-512 only, advertised as 127.0.0.1 and reached as localhost; and
//! a second listener of another name with both mechanisms, reached the other way round); topics
//! compressed with every codec by Kafka's own console producer; a batch the consumer cannot
//! decode; a message just under the broker's limit whose dead letter must still fit; and a
//! cluster of three brokers whose partition leader and group coordinator is SIGKILLed mid-run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::kafka_node::{BrokerTls, Cluster, java_tool};
use crate::support::{brokers, produce_lines, unique};

/// A client configuration of `brokers` with `security` properties.
fn client(brokers: &str, security: &[(&str, &str)]) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", brokers);
    for (k, v) in security {
        cc.set(*k, *v);
    }
    cc
}

/// Creates `topic` with `partitions`, `replication` and topic `configs`.
fn create(
    cc: &ClientConfig,
    topic: &str,
    partitions: i32,
    replication: TopicReplication<'_>,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> = cc.create().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut t = NewTopic::new(topic, partitions, replication);
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let results = rt
        .block_on(admin.create_topics(
            &[t],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(60))),
        ))
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// Every message of `topic` (all `partitions`), from the beginning to the end each had when
/// asked: (partition, offset, headers, payload).
type Read = (i32, i64, BTreeMap<String, String>, Vec<u8>);
fn read_all(cc: &ClientConfig, topic: &str, partitions: i32) -> Vec<Read> {
    let mut cc = cc.clone();
    cc.set("group.id", unique("reader"))
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = cc.create().unwrap();
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .unwrap();
        if high > 0 {
            ends.insert(p, high);
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    drop(tpl);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let mut h = BTreeMap::new();
            if let Some(hs) = m.headers() {
                for x in hs.iter() {
                    h.insert(
                        x.key.to_string(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            if ends
                .get(&m.partition())
                .is_some_and(|end| m.offset() + 1 >= *end)
            {
                ends.remove(&m.partition());
            }
            out.push((
                m.partition(),
                m.offset(),
                h,
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    assert!(ends.is_empty(), "{topic} not read to its end: {ends:?}");
    out
}

/// Writes `config/srv-opr.toml` in `dir` for `run` of `topic` at `brokers`, with librdkafka
/// `properties`, the SASL password read as `password` says (`env:VAR` or `file:PATH`), and
/// `extra` TOML after.
fn config(
    dir: &Path,
    brokers: &str,
    topic: &str,
    group: &str,
    properties: &[(&str, &str)],
    password: Option<&str>,
    extra: &str,
) {
    let mut toml = format!(
        "[kafka]\nbrokers = {brokers:?}\ntopics = [{topic:?}]\ngroup_id = {group:?}\n\
         dead_letter_topic = {:?}\n\n[kafka.properties]\n",
        format!("{topic}-dead")
    );
    for (k, v) in properties {
        toml.push_str(&format!("{k:?} = {v:?}\n"));
    }
    match password.and_then(|p| p.split_once(':')) {
        Some(("env", var)) => {
            toml.push_str(&format!("\n[kafka.secrets]\n\"sasl.password\" = {var:?}\n"))
        }
        Some(("file", path)) => toml.push_str(&format!(
            "\n[kafka.secret_files]\n\"sasl.password\" = {path:?}\n"
        )),
        _ => {}
    }
    if !toml.contains("[http]") && !extra.contains("[http]") {
        toml.push_str("\n[http]\nlisten = \"\"\n");
    }
    if !extra.contains("[state]") {
        toml.push_str("\n[state]\nurl = \"\"\n");
    }
    toml.push_str(extra);
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/srv-opr.toml"), toml).unwrap();
}

/// `srv-opr` in `dir` with `env`; its output.
fn srv(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Simulated March traffic (with bad lines) into `dir/events.jsonl`.
fn simulated(dir: &Path, seed: &str) {
    let o = srv(
        dir,
        &[
            "simulate",
            "--month",
            "2024-03",
            "--rate",
            "0.004",
            "--seed",
            seed,
            "--bad",
            "0.01",
            "--out",
            "events.jsonl",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
}

/// `run --until-caught-up` in `dir` into `out` equals a replay of `dir/events.jsonl`.
fn run_equals_replay(dir: &Path, out: &str, env: &[(&str, &str)]) -> String {
    let o = srv(dir, &["run", "--until-caught-up", "--out", out], env);
    let printed = text(&o);
    assert!(o.status.success(), "run into {out}: {printed}");
    if !dir.join("replay-out/rpl.csv").exists() {
        let r = srv(dir, &["replay", "events.jsonl", "--out", "replay-out"], &[]);
        assert!(r.status.success(), "{}", text(&r));
    }
    for f in ["rpl.csv", "failures.csv", "opr-inputs.csv"] {
        assert_eq!(
            std::fs::read_to_string(dir.join(out).join(f)).unwrap(),
            std::fs::read_to_string(dir.join("replay-out").join(f)).unwrap(),
            "{out}/{f} equals the replay's"
        );
    }
    printed
}

/// No file under `dir` holds `secret`.
fn assert_no_file_holds(dir: &Path, secret: &str) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds a password",
                    p.display()
                );
            }
        }
    }
}

const SCRAM: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required";

#[test]
fn scram_brokers_configured_as_users_configure_them_are_consumed_and_a_wrong_password_fails_fast() {
    let work = tempfile::tempdir().unwrap();
    let tls = BrokerTls::make(work.path());
    let password = "S3cret-Pass_word.42";
    let admin_password = "Adm1n-Pass_word.7";
    // Listener 0, named SASL_SSL, is the only one the broker itself uses (inter-broker,
    // SCRAM-SHA-512 only), advertised as 127.0.0.1. Listener 1, CLIENTS, takes both
    // mechanisms and is advertised as localhost.
    let listeners = |_: u32, p: &[u16]| {
        format!(
            "listeners=SASL_SSL://127.0.0.1:{0},CLIENTS://127.0.0.1:{1},CONTROLLER://127.0.0.1:CONTROLLER_PORT\n\
             advertised.listeners=SASL_SSL://127.0.0.1:{0},CLIENTS://localhost:{1}\n\
             listener.security.protocol.map=SASL_SSL:SASL_SSL,CLIENTS:SASL_SSL,CONTROLLER:PLAINTEXT\n\
             inter.broker.listener.name=SASL_SSL\n\
             sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n\
             sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={SCRAM} username=\"admin\" password=\"{admin_password}\";\n\
             listener.name.clients.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512\n\
             listener.name.clients.scram-sha-256.sasl.jaas.config={SCRAM};\n\
             listener.name.clients.scram-sha-512.sasl.jaas.config={SCRAM};",
            p[0], p[1]
        )
    };
    let extra = format!(
        "ssl.keystore.type=PEM\nssl.keystore.location={}\nssl.truststore.type=PEM\n\
         ssl.truststore.location={}\n",
        tls.keystore.display(),
        tls.ca.display()
    );
    let cluster = Cluster::start(
        1,
        2,
        &listeners,
        &extra,
        &[
            format!("SCRAM-SHA-512=[name=admin,password={admin_password}]"),
            format!("SCRAM-SHA-512=[name=srv,password={password}]"),
            format!("SCRAM-SHA-256=[name=srv,password={password}]"),
        ],
    );
    let ca = tls.ca.display().to_string();
    let pw_file = work.path().join("kafka-password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();
    // Reached as localhost, advertised as 127.0.0.1, SCRAM-SHA-512 only.
    let first = cluster.bootstrap(0, "localhost");
    // Reached as 127.0.0.1, advertised as localhost, with SCRAM-SHA-256 of the two it takes.
    let second = cluster.bootstrap(1, "127.0.0.1");
    let security = |mechanism: &'static str| {
        vec![
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", mechanism),
            ("sasl.username", "srv"),
            ("ssl.ca.location", ca.as_str()),
        ]
    };
    let s512 = security("SCRAM-SHA-512");
    let mut admin_security = s512.clone();
    admin_security.push(("sasl.password", password));
    let admin = client(&first, &admin_security);
    let topic = unique("scram");
    create(&admin, &topic, 3, TopicReplication::Fixed(1), &[]);
    create(
        &admin,
        &format!("{topic}-dead"),
        1,
        TopicReplication::Fixed(1),
        &[],
    );
    let dir = work.path().join("run");
    std::fs::create_dir_all(&dir).unwrap();
    simulated(&dir, "31");
    let mut printed = String::new();
    // simulate --kafka over the first listener (its start-up probe had the same fault).
    config(
        &dir,
        &first,
        &topic,
        &unique("g"),
        &s512,
        Some("env:SRV_OPR_TEST_KAFKA_PW"),
        "",
    );
    let o = srv(
        &dir,
        &[
            "simulate", "--month", "2024-03", "--rate", "0.004", "--seed", "31", "--bad", "0.01",
            "--kafka", &first, "--topic", &topic,
        ],
        &[("SRV_OPR_TEST_KAFKA_PW", password)],
    );
    printed.push_str(&text(&o));
    assert!(
        o.status.success(),
        "simulate over SCRAM-SHA-512: {}",
        text(&o)
    );
    // run, the password from a file (a mounted secret), no debug logging.
    config(
        &dir,
        &first,
        &topic,
        &unique("g"),
        &s512,
        Some(&format!("file:{}", pw_file.display())),
        "",
    );
    printed.push_str(&run_equals_replay(&dir, "out-512", &[]));
    // run over the other listener, the password from the environment.
    let s256 = security("SCRAM-SHA-256");
    config(
        &dir,
        &second,
        &topic,
        &unique("g"),
        &s256,
        Some("env:SRV_OPR_TEST_KAFKA_PW"),
        "",
    );
    printed.push_str(&run_equals_replay(
        &dir,
        "out-256",
        &[("SRV_OPR_TEST_KAFKA_PW", password)],
    ));
    // A wrong password fails at once on either, with its reason.
    for (brokers, sec) in [(&first, &s512), (&second, &s256)] {
        config(
            &dir,
            brokers,
            &topic,
            &unique("g"),
            sec,
            Some("env:SRV_OPR_TEST_KAFKA_PW"),
            "",
        );
        let started = Instant::now();
        let o = srv(
            &dir,
            &["run", "--out", "never"],
            &[("SRV_OPR_TEST_KAFKA_PW", "not-the-Pass_word")],
        );
        let t = text(&o);
        printed.push_str(&t);
        assert_eq!(o.status.code(), Some(2), "{brokers}: {t}");
        assert!(t.contains("authentication failed"), "{brokers}: {t}");
        // Not a timing bound: a guard so that waiting out librdkafka's retries (six minutes
        // for an assignment) fails here, not in CI's time limit.
        assert!(started.elapsed() < Duration::from_secs(60), "{t}");
        let written = std::fs::read_dir(dir.join("never")).map_or(0, |d| d.count());
        assert_eq!(written, 0, "a failed start wrote outputs");
    }
    for secret in [password, "not-the-Pass_word", admin_password] {
        assert!(!printed.contains(secret), "a password was printed");
        assert_no_file_holds(&dir, secret);
    }
}

/// `dir/events.jsonl` as the console producer reads keyed lines: `id<TAB>line`, the key being
/// what `simulate --kafka` keys by (a line without a plain id gets one of its own).
fn keyed_lines(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read(dir.join("events.jsonl")).unwrap();
    let mut out = Vec::new();
    for (i, line) in text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        match srv_opr::kafka::partition::key_of_line(line) {
            Some(k) => out.extend_from_slice(k),
            None => out.extend_from_slice(format!("unkeyed-{i}").as_bytes()),
        }
        out.push(b'\t');
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    let path = dir.join("keyed.txt");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn every_codec_of_kafkas_console_producer_is_consumed_zstd_included() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    simulated(dir, "41");
    let keyed = keyed_lines(dir);
    let plain = client(&brokers(), &[]);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("codec-{codec}"));
        // The topic stores the codec whatever a producer sends: every batch read is one.
        create(
            &plain,
            &topic,
            3,
            TopicReplication::Fixed(1),
            &[("compression.type", codec)],
        );
        create(
            &plain,
            &format!("{topic}-dead"),
            1,
            TopicReplication::Fixed(1),
            &[],
        );
        let o = java_tool(
            "org.apache.kafka.tools.ConsoleProducer",
            &[
                "--bootstrap-server",
                &brokers(),
                "--topic",
                &topic,
                "--compression-codec",
                codec,
                "--property",
                "parse.key=true",
                "--property",
                "key.separator=\t",
                "--producer-property",
                "linger.ms=50",
            ],
            Some(&keyed),
        );
        assert!(
            o.status.success(),
            "console producer, {codec}: {}",
            text(&o)
        );
        config(dir, &brokers(), &topic, &unique("g"), &[], None, "");
        run_equals_replay(dir, &format!("out-{codec}"), &[]);
    }
    // simulate's own producer makes zstd batches too (it refused: "not implemented").
    let topic = unique("codec-sim-zstd");
    create(&plain, &topic, 3, TopicReplication::Fixed(1), &[]);
    create(
        &plain,
        &format!("{topic}-dead"),
        1,
        TopicReplication::Fixed(1),
        &[],
    );
    config(dir, &brokers(), &topic, &unique("g"), &[], None, "");
    let o = srv(
        dir,
        &[
            "simulate",
            "--month",
            "2024-03",
            "--rate",
            "0.004",
            "--seed",
            "41",
            "--bad",
            "0.01",
            "--kafka",
            &brokers(),
            "--topic",
            &topic,
            "-X",
            "compression.codec=zstd",
        ],
        &[],
    );
    assert!(o.status.success(), "simulate with zstd: {}", text(&o));
    run_equals_replay(dir, "out-sim-zstd", &[]);
}

/// The value of the first sample of `name` whose labels contain `labels` (`None` if none).
fn metric(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| l.contains(labels))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn an_undecodable_batch_is_an_alert_and_a_clear_error_never_a_silent_stall() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let plain = client(&brokers(), &[]);
    let topic = unique("bomb");
    create(&plain, &topic, 2, TopicReplication::Fixed(1), &[]);
    create(
        &plain,
        &format!("{topic}-dead"),
        1,
        TopicReplication::Fixed(1),
        &[],
    );
    // First in partition 0: a zstd batch of 3 MB of text, a few kilobytes on the wire. The broker
    // takes it (its limit is on the compressed batch); a consumer that may not decompress more
    // than receive.message.max.bytes (1 MB here) cannot read it, nor anything behind it.
    {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let mut cc = plain.clone();
        cc.set("compression.codec", "zstd")
            .set("message.max.bytes", "10000000");
        let p: BaseProducer = cc.create().unwrap();
        let bomb = "{\"type\":\"request\",\"note\":\"".to_string() + &"x".repeat(3 << 20) + "\"}";
        p.send(
            BaseRecord::<[u8], [u8]>::to(&topic)
                .partition(0)
                .payload(bomb.as_bytes()),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        p.flush(Duration::from_secs(30)).unwrap();
    }
    // Then a month of events, keyed, on both partitions.
    let o = srv(
        dir,
        &[
            "simulate",
            "--month",
            "2024-03",
            "--rate",
            "0.002",
            "--seed",
            "43",
            "--kafka",
            &brokers(),
            "--topic",
            &topic,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let port = crate::support::free_port();
    config(
        dir,
        &brokers(),
        &topic,
        &unique("g"),
        &[
            ("receive.message.max.bytes", "1001000"),
            ("fetch.max.bytes", "1000000"),
            ("max.partition.fetch.bytes", "1000000"),
        ],
        None,
        &format!(
            "\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[alerts]\ninterval = \"1s\"\nfor = \"0s\"\n\
             stall_window = \"5s\"\n"
        ),
    );
    let mut child = crate::support::spawn_srv_run(dir, &[], "out", "run.log");
    let _kill = crate::support::KillOnDrop(child.id());
    let addr = format!("127.0.0.1:{port}");
    let metrics = crate::support::wait_until(dir, &["run.log"], "both alerts", 120, || {
        let (_, m) = crate::support::http_get(&addr, "/metrics");
        let firing = |a: &str| metric(&m, "srv_alert_active", &format!("alert=\"{a}\""));
        match (firing("SrvKafkaUndecodable"), firing("SrvPartitionStalled")) {
            (Some(x), Some(y)) if x == 1.0 && y == 1.0 => Ok(m),
            other => Err(format!("{other:?}")),
        }
    });
    assert!(metric(&metrics, "srv_kafka_undecodable_total", "").unwrap_or(0.0) > 0.0);
    // Partition 1 flowed; partition 0 is stuck at offset 0 with the month behind it.
    assert!(metric(&metrics, "srv_events_total", "").is_some());
    assert!(
        metric(&metrics, "srv_partition_offset", "partition=\"1\"").unwrap_or(0.0) > 0.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "srv_partition_offset", "partition=\"0\""),
        Some(0.0)
    );
    let (_, status) = crate::support::http_get(&addr, "/status.json");
    assert!(
        status.contains(&format!("{topic}/0 at offset 0")),
        "the stuck partition is named: {status}"
    );
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
    assert!(log.contains("cannot be decoded"), "{log}");
    assert!(
        log.lines()
            .filter(|l| l.contains("cannot be decoded"))
            .count()
            < 10,
        "the error is repeated, not rate-limited: {log}"
    );
    // A stuck partition does not keep the run from stopping, with what it could read.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(dir.join("run.log")).unwrap()
    );
    assert!(dir.join("out/rpl.csv").exists());
}

#[test]
fn a_dead_letter_always_fits_its_topic_and_never_stops_the_run() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    simulated(dir, "47");
    // An event of 900 kB: under the broker's limit (1 MB), so its topic takes it; the
    // dead-letter topic takes 20 kB at most, less even than the event limit (64 KiB).
    let big = format!(
        "{{\"type\":\"request\",\"id\":\"huge-1\",\"srv\":\"8.11\",\"region\":\"north\",\
         \"provider\":\"dsp\",\"at\":\"2024-03-10T00:00:00Z\",\"note\":\"{}\"}}",
        "n".repeat(900_000)
    );
    let mut lines = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let half = lines.len() / 2;
    let cut = lines[half..].find('\n').unwrap() + half + 1;
    lines.insert_str(cut, &format!("{big}\n"));
    std::fs::write(dir.join("events.jsonl"), &lines).unwrap();
    let plain = client(&brokers(), &[]);
    let topic = unique("dlfit");
    create(&plain, &topic, 1, TopicReplication::Fixed(1), &[]);
    create(
        &plain,
        &format!("{topic}-dead"),
        1,
        TopicReplication::Fixed(1),
        &[("max.message.bytes", "20000")],
    );
    {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let p: BaseProducer = plain.create().unwrap();
        for line in lines.lines() {
            let mut r = BaseRecord::<[u8], [u8]>::to(&topic).payload(line.as_bytes());
            if let Some(k) = srv_opr::kafka::partition::key_of_line(line.as_bytes()) {
                r = r.key(k);
            }
            loop {
                match p.send(r) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        p.poll(Duration::from_millis(50));
                        r = back;
                    }
                }
            }
        }
        p.flush(Duration::from_secs(60)).unwrap();
    }
    config(dir, &brokers(), &topic, &unique("g"), &[], None, "");
    run_equals_replay(dir, "out", &[]);
    let replayed = std::fs::read_to_string(dir.join("replay-out/deadletter.jsonl")).unwrap();
    let expected = replayed.lines().count();
    let dead = read_all(&plain, &format!("{topic}-dead"), 1);
    assert_eq!(dead.len(), expected, "every dead letter, once");
    let (_, _, h, payload) = dead
        .iter()
        .find(|(_, _, h, _)| h.get("reason").map(String::as_str) == Some("oversized"))
        .unwrap();
    assert_eq!(
        h.get("truncated").map(String::as_str),
        Some("true"),
        "{h:?}"
    );
    assert_eq!(
        h.get("original_bytes"),
        Some(&big.len().to_string()),
        "{h:?}"
    );
    assert!(
        payload.len() < 20_000 && big.as_bytes().starts_with(payload),
        "{}",
        payload.len()
    );
    // The others travel whole.
    for (_, _, h, payload) in &dead {
        if h.get("reason").map(String::as_str) != Some("oversized")
            && !h.contains_key("reconstructed")
        {
            assert!(!h.contains_key("truncated"), "{h:?}");
            assert!(lines.contains(&*String::from_utf8_lossy(payload)) || payload.is_empty());
        }
    }
}

/// The sum of every sample of `name` on a `/metrics` page.
fn metric_total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn a_three_broker_cluster_loses_the_leader_and_coordinator_mid_run_and_no_figure_changes() {
    let listeners = |_: u32, p: &[u16]| {
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{0},CONTROLLER://127.0.0.1:CONTROLLER_PORT\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{0}\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             inter.broker.listener.name=PLAINTEXT",
            p[0]
        )
    };
    let mut cluster = Cluster::start(
        3,
        1,
        &listeners,
        "min.insync.replicas=2\ndefault.replication.factor=3\n\
         unclean.leader.election.enable=false\n",
        &[],
    );
    let bootstrap = cluster.bootstrap(0, "127.0.0.1");
    let cc = client(&bootstrap, &[]);
    // The group coordinator: the leader of the one partition of __consumer_offsets, made by a
    // first group's lookup.
    let coordinator = {
        let mut g = cc.clone();
        g.set("group.id", unique("warm-up"));
        let c: BaseConsumer = g.create().unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let _ = c.poll(Duration::from_millis(200));
            let _ = c.committed(Duration::from_secs(2));
            let leader = c
                .fetch_metadata(Some("__consumer_offsets"), Duration::from_secs(5))
                .ok()
                .and_then(|m| {
                    let t = m.topics().first()?;
                    let p = t.partitions().first()?;
                    (p.leader() > 0).then_some(p.leader() as u32)
                });
            if let Some(l) = leader {
                break l;
            }
            assert!(Instant::now() < deadline, "no group coordinator");
        }
    };
    // The events' partitions all led by the coordinator: one SIGKILL takes both.
    let others: Vec<i32> = (1..=3)
        .filter(|n| *n != coordinator)
        .map(|n| n as i32)
        .collect();
    let replicas = [coordinator as i32, others[0], others[1]];
    let assignment: Vec<&[i32]> = vec![&replicas; 6];
    let topic = unique("cluster");
    let dead = format!("{topic}-dead");
    create(
        &cc,
        &topic,
        6,
        TopicReplication::Variable(&assignment),
        &[("min.insync.replicas", "2")],
    );
    create(
        &cc,
        &dead,
        1,
        TopicReplication::Variable(&assignment[..1]),
        &[("min.insync.replicas", "2")],
    );
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    simulated(dir, "53");
    let text_events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    // Blank lines are no messages (simulate --kafka skips them too).
    let lines: Vec<&str> = text_events
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let half = lines.len() / 2;
    produce_lines(&cc, &topic, 6, &lines[..half]);
    let port = crate::support::free_port();
    config(
        dir,
        &bootstrap,
        &topic,
        &unique("g"),
        &[],
        None,
        &format!(
            "\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[state]\nurl = \"sqlite://{}\"\n",
            dir.join("state.db").display()
        ),
    );
    let mut child = crate::support::spawn_srv_run(dir, &[], "out", "run.log");
    let _kill = crate::support::KillOnDrop(child.id());
    let addr = format!("127.0.0.1:{port}");
    // Caught up: the partitions' next offsets add up to the messages produced. (Not the
    // events' results: a response waiting for its request has none yet.)
    let events_read = |want: usize, what: &str| {
        crate::support::wait_until(dir, &["run.log"], what, 240, || {
            let (_, m) = crate::support::http_get(&addr, "/metrics");
            let n = metric_total(&m, "srv_partition_offset") as usize;
            if n == want {
                Ok(m)
            } else {
                Err(format!("{n} of {want} messages"))
            }
        })
    };
    let before = events_read(half, "the first half");
    let errors_before = metric_total(&before, "srv_kafka_errors_total");
    // The leader of every partition run reads, and its group coordinator, dies.
    cluster.node(coordinator).kill();
    produce_lines(&cc, &topic, 6, &lines[half..]);
    let after = events_read(lines.len(), "the second half, after the failover");
    assert!(
        metric_total(&after, "srv_kafka_errors_total") > errors_before,
        "the outage is not visible on /metrics"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap();
    assert!(status.success(), "{log}");
    // Stopped by a signal, a run leaves its undecided requests pending in the store; the same
    // group read to its end from there decides them, as a replay's end does.
    let o = srv(dir, &["run", "--until-caught-up", "--out", "out-end"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let r = srv(dir, &["replay", "events.jsonl", "--out", "replay-out"], &[]);
    assert!(r.status.success(), "{}", text(&r));
    for f in ["rpl.csv", "failures.csv", "opr-inputs.csv"] {
        let (a, b) = (
            std::fs::read_to_string(dir.join("out-end").join(f)).unwrap(),
            std::fs::read_to_string(dir.join("replay-out").join(f)).unwrap(),
        );
        if a != b {
            let notable: Vec<&str> = log
                .lines()
                .filter(|l| {
                    !l.contains(" INFO partition assigned") && !l.contains("no checkpoint yet")
                })
                .collect();
            eprintln!(
                "{f}\n--- run\n{a}\n--- replay\n{b}\n--- log\n{}",
                notable.join("\n")
            );
            panic!("{f}: the run through the failover differs from the replay");
        }
    }
    // Every dead letter once: as many as the replay's, no origin twice.
    let expected = std::fs::read_to_string(dir.join("replay-out/deadletter.jsonl"))
        .unwrap()
        .lines()
        .count();
    let letters = read_all(&cc, &dead, 1);
    let mut origins: Vec<&String> = letters
        .iter()
        .filter_map(|(_, _, h, _)| h.get("origin"))
        .collect();
    origins.sort();
    let n = origins.len();
    origins.dedup();
    assert_eq!(origins.len(), n, "a dead letter was written twice");
    assert_eq!(
        n, expected,
        "dead letters: {n} against the replay's {expected}"
    );
}
