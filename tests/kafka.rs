//! Against a real Apache Kafka broker, named by `KAFKA_BOOTSTRAP_SERVERS` (`scripts/test` starts
//! one with `scripts/kafka`). Each test uses a topic of its own. Without a broker these tests
//! fail, saying so: they are never skipped silently.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use srv_opr::kafka::partition::{key_of_line, partition_of};

fn brokers() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| {
        panic!("KAFKA_BOOTSTRAP_SERVERS is not set: run scripts/test (it starts a broker), or scripts/kafka start")
    })
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn create_topic(topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
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

/// Reads `expected` messages from every partition of `topic`: (partition, key, payload).
fn read_all(topic: &str, partitions: i32, expected: usize) -> Vec<(i32, Option<Vec<u8>>, Vec<u8>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.len() < expected && Instant::now() < deadline {
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
    let got = read_all(&topic, 6, lines.len());
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
