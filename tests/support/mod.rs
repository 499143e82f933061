//! Helpers shared by the integration tests: the real Kafka broker (`KAFKA_BOOTSTRAP_SERVERS`)
//! and PostgreSQL (`SRV_OPR_TEST_POSTGRES`) that `scripts/test` starts, unique names, running
//! the binary, HTTP, free ports; `replay`: replaying files and reading what a replay wrote.
#![allow(dead_code)]

pub mod kafka_node;
pub mod oracle;
pub mod replay;
pub mod tls;

use std::process::{Command, Output};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

/// Held by a test that restarts librdkafka's mock broker (it listens again on the same
/// ephemeral port, which a new client connection may have taken meanwhile) and by a test that
/// opens many connections over a long time (three `run` processes for a minute): together the
/// mock broker sometimes never came back and the dead letters could not be flushed.
pub static PORT_CHURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`PORT_CHURN`], whatever a failed holder left.
pub fn port_churn() -> std::sync::MutexGuard<'static, ()> {
    PORT_CHURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The broker `scripts/test` started; never silently absent.
pub fn brokers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| {
        panic!("KAFKA_BOOTSTRAP_SERVERS is not set: run scripts/test (it starts a broker), or scripts/kafka start")
    })
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Creates a topic on `brokers`.
pub fn create_topic_on(brokers: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .unwrap();
    for r in results {
        r.unwrap();
    }
}

/// Creates a topic on the test broker.
pub fn create_topic(topic: &str, partitions: i32) {
    create_topic_on(&brokers(), topic, partitions);
}

/// Runs `srv-opr` in `dir` with `env`, asserting success.
pub fn srv_ok(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Kills a child process (SIGKILL) when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

/// A database of its own on the PostgreSQL server `scripts/test` starts
/// (`SRV_OPR_TEST_POSTGRES`); its URL.
pub fn fresh_postgres_database() -> String {
    let server = std::env::var("SRV_OPR_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!("SRV_OPR_TEST_POSTGRES is not set: run scripts/test (it starts PostgreSQL), or scripts/postgres start")
    });
    let db = unique("t").replace('-', "_");
    let mut admin = srv_opr::store::pgtls::client(&server).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    srv_opr::store::pgtls::with_database(&server, &db)
}

/// A server of a test's own, started by one of the project's scripts (`scripts/kafka`,
/// `scripts/postgres`) on ports of its own, so that the test may restart it without disturbing
/// the others; stopped (its data deleted) when dropped.
pub struct OwnServer {
    script: &'static str,
    /// The settings the script reads (its ports, its state folder).
    pub env: Vec<(&'static str, String)>,
}

impl OwnServer {
    /// A Kafka broker on `port` (its controller on `port + 1`, its secured listeners on
    /// `port + 2..=port + 4`); its bootstrap servers.
    pub fn kafka(port: u16) -> (OwnServer, String) {
        let s = OwnServer {
            script: "kafka",
            env: vec![
                ("KAFKA_PORT", port.to_string()),
                ("KAFKA_CONTROLLER_PORT", (port + 1).to_string()),
                ("KAFKA_HEAP", "384m".into()),
            ],
        };
        let brokers = s.run("start", &[]);
        (s, brokers)
    }

    /// A PostgreSQL server on `port`; its URL.
    pub fn postgres(port: u16) -> (OwnServer, String) {
        let s = OwnServer {
            script: "postgres",
            env: vec![("PG_PORT", port.to_string())],
        };
        let url = s.run("start", &[]);
        (s, url)
    }

    /// Runs `scripts/<script> <cmd>` with the server's settings and `extra`; its output.
    pub fn run(&self, cmd: &str, extra: &[(&str, &str)]) -> String {
        server_script(self.script, &self.env, cmd, extra)
    }

    /// Restarts the server on another thread (the script waits until it serves again), staying
    /// down `down_s` seconds first.
    pub fn restart_in_background(&self, down_s: u32) -> std::thread::JoinHandle<String> {
        let (script, env) = (self.script, self.env.clone());
        let down = if script == "kafka" {
            "KAFKA_DOWN_SECONDS"
        } else {
            "PG_DOWN_SECONDS"
        };
        std::thread::spawn(move || {
            server_script(script, &env, "restart", &[(down, &down_s.to_string())])
        })
    }
}

fn server_script(
    script: &str,
    env: &[(&'static str, String)],
    cmd: &str,
    extra: &[(&str, &str)],
) -> String {
    let o = Command::new(format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(cmd)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(extra.iter().copied())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "scripts/{script} {cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new(format!(
            "{}/scripts/{}",
            env!("CARGO_MANIFEST_DIR"),
            self.script
        ))
        .arg("stop")
        .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
        .output();
    }
}

/// A GET over HTTP/1.0 (the server closes the connection and sends no chunked body): status and
/// body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return (0, String::new());
    }
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// A GET of JSON ([`http_get`]): the document, or why not (not 200, or not JSON).
pub fn get_json(addr: &str, path: &str) -> Result<serde_json::Value, String> {
    let (status, body) = http_get(addr, path);
    if status != 200 {
        return Err(format!("{path}: HTTP {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body}"))
}

/// A free TCP port on 127.0.0.1 (bound and released: another process may take it first, which
/// only makes the caller fail loudly).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A partition's published view with only a watermark, an offset and month counts (the rest
/// empty), for tests of what reads the live view.
pub fn part_view(
    watermark: srv_opr::engine::time::Ts,
    next_offset: i64,
    months: std::collections::BTreeMap<
        srv_opr::engine::calendar::Month,
        srv_opr::ops::live::MeasureCounts,
    >,
) -> srv_opr::ops::live::PartView {
    srv_opr::ops::live::PartView {
        stats: Default::default(),
        pending: 0,
        waiting: 0,
        watermark,
        last_event: std::time::Instant::now(),
        next_offset,
        months,
        days: Default::default(),
        buckets: Default::default(),
        exempted: Default::default(),
        rt: Default::default(),
        unsaved_since: None,
        availability: Vec::new(),
        availability_newest: srv_opr::engine::time::Ts::MIN,
        coverage: Default::default(),
    }
}

/// `srv-opr run --out OUT` in `dir` with the environment `env`, its stderr in `dir/log`.
pub fn spawn_srv_run(
    dir: &std::path::Path,
    env: &[(String, String)],
    out: &str,
    log: &str,
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["run", "--out", out])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap()
}

/// Polls `check` every half second until it returns `Ok`, or fails after `secs` with what it
/// last said and the tails of the `logs` in `dir`.
pub fn wait_until<T>(
    dir: &std::path::Path,
    logs: &[&str],
    what: &str,
    secs: u64,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if std::time::Instant::now() > deadline => {
                let tails: String = logs
                    .iter()
                    .map(|f| {
                        let t = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                        let tail: Vec<&str> = t.lines().rev().take(15).collect();
                        let tail: Vec<&str> = tail.into_iter().rev().collect();
                        format!("--- {f}\n{}\n", tail.join("\n"))
                    })
                    .collect();
                panic!("{what}: not within {secs} s; last: {last}\n{tails}");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Produces `lines` to `topic` of `partitions` as `simulate --kafka` does: keyed by id, on the
/// key's murmur2 partition (a line without a plain id on partition 0), acknowledged by every
/// in-sync replica, idempotent; returns once all are delivered.
pub fn produce_lines(cc: &ClientConfig, topic: &str, partitions: i32, lines: &[&str]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let mut cc = cc.clone();
    cc.set("acks", "all").set("enable.idempotence", "true");
    let p: BaseProducer = cc.create().unwrap();
    for line in lines {
        let key = srv_opr::kafka::partition::key_of_line(line.as_bytes());
        let partition = key.map_or(0, |k| {
            srv_opr::kafka::partition::partition_of(k, partitions)
        });
        let mut r = BaseRecord::<[u8], [u8]>::to(topic)
            .partition(partition)
            .payload(line.as_bytes());
        if let Some(k) = key {
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
    p.flush(Duration::from_secs(120)).unwrap();
}

/// Reads (from the beginning, committed messages only) `expected` messages from every partition of `topic`: (partition, key, payload).
pub fn read_topic(
    topic: &str,
    partitions: i32,
    expected: usize,
) -> Vec<(i32, Option<Vec<u8>>, Vec<u8>)> {
    use rdkafka::Message;
    use rdkafka::consumer::Consumer;
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::with_capacity(expected);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while out.len() < expected && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            out.push((
                m.partition(),
                m.key().map(<[u8]>::to_vec),
                m.payload().unwrap_or_default().to_vec(),
            ));
        }
    }
    out
}
