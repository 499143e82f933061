//! Against a real Apache Kafka broker, named by `KAFKA_BOOTSTRAP_SERVERS` (`scripts/test` starts
//! one with `scripts/kafka`). Each test uses a topic of its own. Without a broker these tests
//! fail, saying so: they are never skipped silently.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use srv_opr::kafka::partition::{key_of_line, partition_of};

use crate::support::{KillOnDrop, brokers, create_topic, http_get, read_topic, srv_ok, unique};

#[test]
fn simulate_produces_every_line_keyed_by_id_on_its_murmur2_partition() {
    let topic = unique("srv-events");
    create_topic(&topic, 6);
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "simulate", "--month", "2024-03", "--rate", "0.01", "--seed", "11", "--bad", "0.01",
    ];
    let run = |extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
            .args(args)
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    run(&["--out", "events.jsonl"]);
    let brokers = brokers();
    run(&["--kafka", &brokers, "--topic", &topic]);

    let file = std::fs::read(dir.path().join("events.jsonl")).unwrap();
    let lines: Vec<&[u8]> = file
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let got = read_topic(&topic, 6, lines.len());
    assert_eq!(got.len(), lines.len(), "every line is one message");

    // Same seed, same events: the messages are exactly the file's lines.
    let mut want: BTreeMap<&[u8], usize> = BTreeMap::new();
    for l in &lines {
        *want.entry(l).or_default() += 1;
    }
    let mut have: BTreeMap<&[u8], usize> = BTreeMap::new();
    for (_, _, payload) in &got {
        *have.entry(payload.as_slice()).or_default() += 1;
    }
    assert_eq!(have, want);

    // Keyed by id, on the partition the Java client would choose, so that a request and its
    // responses share a partition.
    let mut per_partition = [0usize; 6];
    for (partition, key, payload) in &got {
        per_partition[*partition as usize] += 1;
        let id = key_of_line(payload).map(<[u8]>::to_vec);
        assert_eq!(key, &id, "the key is the event's id");
        if let Some(k) = key {
            assert_eq!(
                *partition,
                partition_of(k, 6),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }
    assert!(
        per_partition.iter().all(|&n| n > lines.len() / 12),
        "spread over all partitions: {per_partition:?}"
    );
}

/// Reads every message of a one-partition topic with its headers.
fn read_with_headers(topic: &str, expected: usize) -> Vec<(BTreeMap<String, String>, Vec<u8>)> {
    use rdkafka::message::Headers;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let mut h = BTreeMap::new();
            if let Some(hs) = m.headers() {
                for x in hs.iter() {
                    h.insert(
                        x.key.to_string(),
                        String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                    );
                }
            }
            out.push((h, m.payload().unwrap_or_default().to_vec()));
        }
    }
    out
}

#[test]
fn run_until_caught_up_equals_replay_count_for_count() {
    let topic = unique("srv-run");
    let dlq = unique("srv-dlq");
    create_topic(&topic, 6);
    create_topic(&dlq, 1);
    let dir = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let srv = |args: &[&str], env: &[(&str, &str)]| srv_ok(dir.path(), args, env);
    let sim = [
        "simulate",
        "--month",
        "2024-03",
        "--rate",
        "0.02",
        "--seed",
        "21",
        "--bad",
        "0.01",
        "--duplicates",
        "0.01",
    ];
    srv(&[&sim[..], &["--out", "events.jsonl"]].concat(), &[]);
    srv(
        &[&sim[..], &["--kafka", &brokers, "--topic", &topic]].concat(),
        &[],
    );

    let topics = format!("[\"{topic}\"]");
    srv(&["replay", "events.jsonl", "--out", "replay-out"], &[]);
    let read = |d: &str, f: &str| std::fs::read_to_string(dir.path().join(d).join(f)).unwrap();
    let summary =
        |d: &str| -> serde_json::Value { serde_json::from_str(&read(d, "summary.json")).unwrap() };
    let replay = summary("replay-out");
    // One worker thread, then three (partitions spread over them): the same figures either way.
    let mut run = serde_json::Value::Null;
    for workers in ["1", "3"] {
        let group = unique("group");
        let out = format!("run-out-{workers}");
        let store = format!("sqlite://state-{workers}.db");
        srv(
            &["run", "--until-caught-up", "--out", &out],
            &[
                ("SRV_OPR__STATE__URL", store.as_str()),
                ("SRV_OPR__KAFKA__BROKERS", brokers.as_str()),
                ("SRV_OPR__KAFKA__TOPICS", topics.as_str()),
                ("SRV_OPR__KAFKA__GROUP_ID", group.as_str()),
                ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", dlq.as_str()),
                ("SRV_OPR__KAFKA__WORKERS", workers),
                ("SRV_OPR__HTTP__LISTEN", "127.0.0.1:0"),
            ],
        );
        for f in ["rpl.csv", "failures.csv", "opr-inputs.csv"] {
            assert_eq!(
                read(&out, f),
                read("replay-out", f),
                "{f} with {workers} workers"
            );
        }
        // The evidence samples too (no restart: every request kept its text to its decision),
        // from memory at the stop.
        let evidence = evidence_of(&dir.path().join("replay-out"));
        assert!(evidence.len() > 5, "{:?}", evidence.keys());
        assert_eq!(
            evidence,
            evidence_of(&dir.path().join(&out)),
            "evidence, {workers} workers"
        );
        // The store holds the requests still pending at the end undecided (only the stop's
        // in-memory outputs decide them), so its failure buckets are compared where their
        // counts agree: there the sample must be the same.
        let rolled = format!("rollup-{workers}");
        srv(
            &["rollup", "--month", "2024-03", "--out", &rolled],
            &[("SRV_OPR__STATE__URL", store.as_str())],
        );
        let (same, compared) =
            evidence_agrees(&dir.path().join("replay-out"), &dir.path().join(&rolled));
        assert!(
            same * 10 >= compared * 9 && same > 20,
            "{same} of {compared} buckets from the store"
        );
        run = summary(&out);
        for key in [
            "events_read",
            "requests",
            "responses",
            "duplicates",
            "unmeasured_requests",
            "dead_letters",
            "decided_requests",
        ] {
            assert_eq!(run[key], replay[key], "{key} with {workers} workers");
        }
    }
    let total = run["dead_letters_total"].as_u64().unwrap() as usize;
    assert!(total > 10, "the simulation injected bad input");

    // Every dead letter is in the dead-letter topic, once per run: original bytes, reason and
    // origin headers.
    let dead = read_with_headers(&dlq, 2 * total);
    assert_eq!(dead.len(), 2 * total);
    let mut by_reason: BTreeMap<String, u64> = BTreeMap::new();
    for (h, _) in &dead {
        *by_reason.entry(h["reason"].clone()).or_default() += 1;
        let origin = &h["origin"];
        assert!(
            origin.starts_with(&format!("{topic}/"))
                && origin.rsplit('/').next().unwrap().parse::<u64>().is_ok(),
            "{origin}"
        );
    }
    for (reason, n) in run["dead_letters"].as_object().unwrap() {
        assert_eq!(
            by_reason.get(reason).copied().unwrap_or(0),
            2 * n.as_u64().unwrap(),
            "{reason}"
        );
    }
}

/// One HTTP GET over a plain socket: (status, body).
/// The sum of a metric family's samples whose label set contains `labels`.
fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                && l.contains(labels)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn live_run_serves_metrics_and_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let topic = unique("srv-live");
    let dlq = unique("srv-live-dlq");
    create_topic(&topic, 3);
    create_topic(&dlq, 1);
    let dir = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let sim = [
        "simulate", "--month", "2024-03", "--rate", "0.01", "--seed", "5", "--bad", "0.01",
    ];
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(
            [
                &sim[..],
                &["--kafka", &brokers, "--topic", &topic, "--stats"],
            ]
            .concat(),
        )
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stats: serde_json::Value = serde_json::from_slice(
        o.stderr
            .split(|b| *b == b'\n')
            .find(|l| l.starts_with(b"{"))
            .unwrap(),
    )
    .unwrap();
    let lines = stats["lines"].as_u64().unwrap();

    let topics = format!("[\"{topic}\"]");
    let group = unique("group");
    let mut child = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["run", "--out", "run-out"])
        .envs([
            ("SRV_OPR__KAFKA__BROKERS", brokers.as_str()),
            ("SRV_OPR__KAFKA__TOPICS", topics.as_str()),
            ("SRV_OPR__KAFKA__GROUP_ID", group.as_str()),
            ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", dlq.as_str()),
            ("SRV_OPR__HTTP__LISTEN", "127.0.0.1:0"),
            ("RUST_LOG", "info"),
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Whatever happens below, the service does not outlive the test.
    let _guard = KillOnDrop(child.id());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        log.push(line.clone());
        if let Some(a) = line.split("bound=").nth(1) {
            break a.split_whitespace().next().unwrap().to_string();
        }
    };
    assert_eq!(http_get(&addr, "/healthz").0, 200);
    // Every event shows up while the service runs: in srv_events_total once it has a result, or
    // as a response still waiting for its request (an orphan to be, at the end of the stream).
    let deadline = Instant::now() + Duration::from_secs(90);
    let metrics = loop {
        let (status, body) = http_get(&addr, "/metrics");
        assert_eq!(status, 200);
        let seen = metric_sum(&body, "srv_events_total", "")
            + metric_sum(&body, "srv_waiting_responses", "");
        if seen as u64 == lines {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "events never all counted:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(http_get(&addr, "/readyz").0, 200);
    assert_eq!(metric_sum(&metrics, "srv_assigned_partitions", ""), 3.0);
    assert!(metric_sum(&metrics, "srv_dead_letters_total", "") > 0.0);
    assert!(
        metric_sum(
            &metrics,
            "srv_requests_total",
            "measure=\"PM1.1-DSP\",region=\"all\""
        ) > 0.0
    );
    assert!(metrics.contains("srv_month_to_date_rpl_percent{measure=\"PM4.3\",region=\"north\"}"));
    assert_eq!(http_get(&addr, "/nope").0, 404);

    // SIGTERM: drained, handed over, outputs written, exit 0.
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    log.extend(rx.try_iter());
    assert!(status.success(), "{}", log.join("\n"));
    let all = log.join("\n");
    assert!(all.contains("signal received"), "{all}");
    assert!(all.contains("run stopped; outputs written"), "{all}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("run-out/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["events_read"].as_u64().unwrap(), lines);
}

/// `evidence/` of an output directory: file name → text.
fn evidence_of(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir.join("evidence"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Evidence lines grouped by (month, measure, region, bucket).
fn evidence_by_bucket(dir: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for text in evidence_of(dir).values() {
        for line in text.lines().skip(1) {
            let key: Vec<&str> = line.splitn(5, ',').take(4).collect();
            m.entry(key.join(",")).or_default().push(line.to_string());
        }
    }
    m
}

/// Buckets whose counts agree between two output directories: how many have the same evidence,
/// of how many (a bucket with equal counts and different evidence is a failure right away).
fn evidence_agrees(a: &std::path::Path, b: &std::path::Path) -> (usize, usize) {
    let counts = |d: &std::path::Path| -> BTreeMap<String, String> {
        std::fs::read_to_string(d.join("failures.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .filter_map(|l| {
                l.rsplit_once(',')
                    .map(|(k, n)| (k.to_string(), n.to_string()))
            })
            .collect()
    };
    let (ca, cb) = (counts(a), counts(b));
    let (ea, eb) = (evidence_by_bucket(a), evidence_by_bucket(b));
    let mut same = 0;
    let mut compared = 0;
    for (k, n) in &ca {
        if k.contains(",all,") {
            continue;
        }
        compared += 1;
        if cb.get(k) == Some(n) {
            assert_eq!(
                ea.get(k),
                eb.get(k),
                "evidence of {k} ({n} misses on both sides)"
            );
            same += 1;
        }
    }
    (same, compared)
}

#[test]
fn until_caught_up_waits_out_the_sessions_of_members_that_crashed() {
    let _serial = crate::support::port_churn();
    // Two members crash (SIGKILL) holding the topic's partitions, without static membership:
    // the group hands their partitions on only when their sessions time out, here 65 s, past
    // the fixed minute the catch-up used to wait before giving up with "no partition was
    // assigned". The catch-up now waits as long as the group may take, and reads everything.
    let topic = unique("srv-crashed");
    let dlq = unique("srv-crashed-dlq");
    create_topic(&topic, 2);
    create_topic(&dlq, 1);
    let dir = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let sim = [
        "simulate", "--month", "2024-03", "--rate", "0.002", "--seed", "5",
    ];
    srv_ok(
        dir.path(),
        &[&sim[..], &["--out", "events.jsonl"]].concat(),
        &[],
    );
    srv_ok(
        dir.path(),
        &[&sim[..], &["--kafka", &brokers, "--topic", &topic]].concat(),
        &[],
    );
    srv_ok(
        dir.path(),
        &["replay", "events.jsonl", "--out", "replay-out"],
        &[],
    );

    let group = unique("crashed");
    let topics = format!("[\"{topic}\"]");
    let env = [
        ("SRV_OPR__STATE__URL", ""),
        ("SRV_OPR__KAFKA__BROKERS", brokers.as_str()),
        ("SRV_OPR__KAFKA__TOPICS", topics.as_str()),
        ("SRV_OPR__KAFKA__GROUP_ID", group.as_str()),
        ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", dlq.as_str()),
        ("SRV_OPR__HTTP__LISTEN", ""),
        ("SRV_OPR__KAFKA__PROPERTIES__SESSION.TIMEOUT.MS", "65000"),
        ("SRV_OPR__KAFKA__PROPERTIES__HEARTBEAT.INTERVAL.MS", "3000"),
        ("SRV_OPR__KAFKA__PROPERTIES__MAX.POLL.INTERVAL.MS", "70000"),
    ];
    let mut members = Vec::new();
    for i in 0..2 {
        let log = dir.path().join(format!("member-{i}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
            .args(["run", "--out", &format!("member-{i}")])
            .envs(env)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let guard = KillOnDrop(child.id());
        members.push((child, guard, log));
    }
    // Both in the group, each holding a partition, then killed without leaving it.
    let t0 = Instant::now();
    while !members.iter().all(|(_, _, log)| {
        std::fs::read_to_string(log).is_ok_and(|l| l.contains("partition assigned"))
    }) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "members never assigned"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (mut child, guard, _) in members {
        child.kill().unwrap(); // SIGKILL: no leave-group request
        child.wait().unwrap();
        // Reaped: its pid may be another process's now, so the guard must not kill it again.
        std::mem::forget(guard);
    }

    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["run", "--until-caught-up", "--out", "run-out"])
        .envs(env)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    // It said what it was waiting for while it waited.
    assert!(e.contains("no partition assigned yet"), "{e}");
    let read = |d: &str| std::fs::read_to_string(dir.path().join(d).join("rpl.csv")).unwrap();
    assert_eq!(read("run-out"), read("replay-out"));
}

#[test]
fn a_partition_that_resumes_after_days_is_followed_by_its_watermark() {
    // One partition, five days of traffic, fourteen idle, two weeks more: the jump is confirmed
    // by the events that follow it, so nothing is held back or lost, and the figures equal a
    // replay of the same events.
    let topic = unique("srv-resume");
    let dlq = unique("srv-resume-dlq");
    create_topic(&topic, 1);
    create_topic(&dlq, 1);
    let dir = tempfile::tempdir().unwrap();
    let brokers = brokers();
    let spans = [
        ("2024-03-01T00:00:00Z", "2024-03-06T00:00:00Z", "1"),
        ("2024-03-20T00:00:00Z", "2024-04-03T00:00:00Z", "2"),
    ];
    let mut all = String::new();
    for (i, (from, to, seed)) in spans.iter().enumerate() {
        let sim = [
            "simulate", "--from", from, "--to", to, "--rate", "0.005", "--seed", seed,
        ];
        let file = format!("part-{i}.jsonl");
        srv_ok(dir.path(), &[&sim[..], &["--out", &file]].concat(), &[]);
        srv_ok(
            dir.path(),
            &[&sim[..], &["--kafka", &brokers, "--topic", &topic]].concat(),
            &[],
        );
        all.push_str(&std::fs::read_to_string(dir.path().join(&file)).unwrap());
    }
    std::fs::write(dir.path().join("all.jsonl"), all).unwrap();
    srv_ok(
        dir.path(),
        &["replay", "all.jsonl", "--out", "replay-out"],
        &[],
    );
    let group = unique("resume");
    let topics = format!("[\"{topic}\"]");
    srv_ok(
        dir.path(),
        &["run", "--until-caught-up", "--out", "run-out"],
        &[
            ("SRV_OPR__STATE__URL", ""),
            ("SRV_OPR__KAFKA__BROKERS", brokers.as_str()),
            ("SRV_OPR__KAFKA__TOPICS", topics.as_str()),
            ("SRV_OPR__KAFKA__GROUP_ID", group.as_str()),
            ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", dlq.as_str()),
            ("SRV_OPR__HTTP__LISTEN", ""),
        ],
    );
    let read = |d: &str, f: &str| std::fs::read_to_string(dir.path().join(d).join(f)).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&read("run-out", "summary.json")).unwrap();
    assert_eq!(summary["watermark_outliers"], 0, "{summary}");
    assert_eq!(summary["dead_letters"]["too_late"], 0, "{summary}");
    assert_eq!(summary["months"]["2024-03"], true, "{summary}");
    for f in ["rpl.csv", "failures.csv"] {
        assert_eq!(read("run-out", f), read("replay-out", f), "{f}");
    }
}
