//! Fault tests of `run` on librdkafka's mock cluster (in process; no external broker): a broker
//! that goes down and comes back, failing fetch requests, and a forced rebalance in the middle of
//! the stream. Each time the figures must equal a replay of the same events, count for count:
//! nothing lost, nothing counted twice, and the service says what happened.
//!
//! Data sizes stay well under the mock's log limit (about 5 MB per partition, older data is
//! dropped beyond it).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use srv_opr::cli;
use srv_opr::config::Config;
use srv_opr::kafka::consumer::{RunOptions, RunOutcome, run};
use srv_opr::kafka::produce::{LineProducer, ProducerSettings};
use srv_opr::ops::live::Live;
use srv_opr::simulate::{SimConfig, Simulator};
use srv_opr::source::files::Input;

const TOPIC: &str = "srv-events";

/// A simulated stretch of traffic with every kind of trap, as JSON Lines.
fn traffic(seed: u64, requests: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let start = srv_opr::engine::time::parse_rfc3339(b"2024-03-10T00:00:00Z").unwrap();
    Simulator::new(SimConfig {
        seed,
        start,
        end: start.plus(srv_opr::engine::time::Dur::from_secs(40 * 86_400)),
        rate: 2.0,
        max_requests: Some(requests),
        bad: 0.01,
        duplicates: 0.01,
        ..SimConfig::default()
    })
    .run(&mut out)
    .unwrap();
    out
}

fn produce(brokers: &str, lines: &[u8]) -> u64 {
    let mut p = LineProducer::new(&ProducerSettings {
        brokers: brokers.to_string(),
        topic: TOPIC.into(),
        rate: None,
        properties: vec![],
    })
    .unwrap();
    std::io::Write::write_all(&mut p, lines).unwrap();
    p.finish(Duration::from_secs(60)).unwrap().delivered
}

fn config(brokers: &str, group: &str) -> Config {
    let mut cfg = Config::builtin().unwrap();
    let k = &mut cfg.settings.kafka;
    k.brokers = brokers.to_string();
    k.topics = vec![TOPIC.into()];
    k.group_id = group.into();
    k.dead_letter_topic = "dead".into();
    k.workers = 2;
    // These tests are about the consumer, without a store: revoked partitions are read again.
    cfg.settings.state.url = String::new();
    let k = &mut cfg.settings.kafka;
    k.properties = vec![
        ("fetch.wait.max.ms".into(), "10".into()),
        // Notice a dead broker quickly, and retry it quickly once it is back.
        ("reconnect.backoff.max.ms".into(), "200".into()),
        ("heartbeat.interval.ms".into(), "300".into()),
    ];
    cfg
}

/// The replay of `lines`: rpl.csv and failures.csv.
fn replay(cfg: &Config, lines: Vec<u8>, out: &Path) -> (String, String) {
    cli::replay::replay(
        cfg,
        &[Input::Memory("events".into(), Arc::new(lines))],
        out,
        false,
    )
    .unwrap();
    read_outputs(out)
}

fn read_outputs(out: &Path) -> (String, String) {
    (
        std::fs::read_to_string(out.join("rpl.csv")).unwrap(),
        std::fs::read_to_string(out.join("failures.csv")).unwrap(),
    )
}

/// Runs `run --until-caught-up` on a thread; caught up only counts once `complete` is set.
struct Running {
    live: Arc<Live>,
    complete: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Result<RunOutcome, srv_opr::kafka::KafkaError>>,
}

fn start(cfg: Config) -> Running {
    let live = Arc::new(Live::new(Duration::from_secs(30)));
    let complete = Arc::new(AtomicBool::new(false));
    let (l, c) = (live.clone(), complete.clone());
    let handle = std::thread::spawn(move || {
        run(
            &cfg,
            &cfg.pipeline().unwrap(),
            &RunOptions {
                until_caught_up: true,
                input_complete: Some(c),
                ..RunOptions::default()
            },
            &AtomicBool::new(false),
            l,
        )
    });
    Running {
        live,
        complete,
        handle,
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes the run's outputs as `run` does and compares them with the replay's.
fn assert_same_figures(cfg: &Config, outcome: &RunOutcome, lines: Vec<u8>, total: u64) {
    let dir = tempfile::tempdir().unwrap();
    let expected = replay(cfg, lines, &dir.path().join("replay"));
    let out = srv_opr::sink::outdir::OutDir::create(&dir.path().join("run")).unwrap();
    srv_opr::sink::outputs::write_outputs(
        &out,
        cfg,
        &outcome.aggregates,
        &outcome.stats,
        outcome.aggregates.watermark(),
        srv_opr::sink::outputs::Origin {
            inputs: outcome.partitions.clone(),
            started: Instant::now(),
            months: None,
        },
    )
    .unwrap();
    out.publish().unwrap();
    assert_eq!(outcome.stats.events, total, "every message processed once");
    let got = read_outputs(&dir.path().join("run"));
    assert_eq!(got.0, expected.0, "rpl.csv");
    assert_eq!(got.1, expected.1, "failures.csv");
}

/// A one-broker mock cluster with the event topic (6 partitions) and the dead-letter topic.
fn mock_cluster() -> (
    MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    String,
) {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 6, 1).unwrap();
    mock.create_topic("dead", 1, 1).unwrap();
    let brokers = mock.bootstrap_servers();
    (mock, brokers)
}

/// The end of the line in the middle of `lines`: the two halves are whole lines.
fn half(lines: &[u8]) -> usize {
    let mid = lines.len() / 2;
    mid + lines[mid..].iter().position(|b| *b == b'\n').unwrap_or(0) + 1
}

#[test]
fn a_broker_that_goes_down_and_comes_back_loses_nothing() {
    let _serial = crate::support::port_churn();
    let (mock, brokers) = mock_cluster();
    let lines = traffic(41, 24_000);
    let cut = half(&lines);
    let first = produce(&brokers, &lines[..cut]);

    let cfg = config(&brokers, "down-up");
    let r = start(cfg.clone());
    wait_for("the first half", || r.live.events_processed() == first);
    mock.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let errors_while_down = r.live.kafka_errors();
    mock.broker_up(1).unwrap();
    let second = produce(&brokers, &lines[cut..]);
    r.complete.store(true, Ordering::Relaxed);
    let outcome = r.handle.join().unwrap().unwrap();
    assert!(
        errors_while_down > 0,
        "the outage was reported (srv_kafka_errors_total)"
    );
    assert_same_figures(&cfg, &outcome, lines, first + second);
}

#[test]
fn failing_fetch_requests_are_retried_without_loss_or_double_counting() {
    let (mock, brokers) = mock_cluster();
    let lines = traffic(42, 20_000);
    let n = produce(&brokers, &lines);
    // The next fetches fail: a timeout, a lost connection, a stale leader, then they recover.
    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__TRANSPORT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let cfg = config(&brokers, "fetch-errors");
    let r = start(cfg.clone());
    r.complete.store(true, Ordering::Relaxed);
    let outcome = r.handle.join().unwrap().unwrap();
    assert_same_figures(&cfg, &outcome, lines, n);
}

/// The first half of some traffic, a rebalance forced mid-stream (the coordinator answers
/// heartbeats with "rebalance in progress": the member rejoins, its partitions are revoked,
/// handed over and assigned again), then the second half. Returns what `run` did and the events.
fn rebalance_mid_stream(
    cfg: &Config,
    mock: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    brokers: &str,
    seed: u64,
) -> (RunOutcome, Arc<Live>, Vec<u8>, u64, u64) {
    let lines = traffic(seed, 20_000);
    let cut = half(&lines);
    let first = produce(brokers, &lines[..cut]);
    let r = start(cfg.clone());
    wait_for("the first half", || r.live.events_processed() == first);
    mock.request_errors(
        RDKafkaApiKey::Heartbeat,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS],
    );
    wait_for("the hand-over", || r.live.handed_over() > 0);
    wait_for("the new assignment", || r.live.snapshot_assigned() == 6);
    let second = produce(brokers, &lines[cut..]);
    r.complete.store(true, Ordering::Relaxed);
    let outcome = r.handle.join().unwrap().unwrap();
    assert!(
        outcome.handed_over > 0,
        "the rebalance revoked partitions and handed them over"
    );
    (outcome, r.live, lines, first, second)
}

#[test]
fn a_rebalance_mid_stream_hands_the_partitions_over_and_recounts_nothing_twice() {
    let (mock, brokers) = mock_cluster();
    let cfg = config(&brokers, "rebalance");
    let (outcome, live, lines, first, second) = rebalance_mid_stream(&cfg, &mock, &brokers, 43);
    // Without a state store the partitions were read again from the beginning: processed more
    // than once, counted once.
    assert!(live.events_processed() > first + second);
    assert_same_figures(&cfg, &outcome, lines, first + second);
}

/// `config` checkpointing often into a fresh SQLite store in `dir`.
fn with_store(mut cfg: Config, dir: &Path) -> Config {
    cfg.settings.state.url = format!("sqlite://{}", dir.join("state.db").display());
    cfg.settings.state.checkpoint_interval = srv_opr::engine::time::Dur::from_millis(100);
    cfg
}

#[test]
fn a_rebalance_with_a_store_resumes_each_partition_from_its_checkpoint() {
    let (mock, brokers) = mock_cluster();
    let dir = tempfile::tempdir().unwrap();
    let cfg = with_store(config(&brokers, "rebalance-store"), dir.path());
    let (outcome, live, lines, first, second) = rebalance_mid_stream(&cfg, &mock, &brokers, 44);
    // The hand-over checkpointed every partition; the new assignment restored them and went on
    // from their offsets: nothing was read twice.
    assert_eq!(live.events_processed(), first + second);
    assert_same_figures(&cfg, &outcome, lines, first + second);
}

#[test]
fn failing_offset_commits_change_nothing() {
    let (mock, brokers) = mock_cluster();
    let lines = traffic(45, 20_000);
    let n = produce(&brokers, &lines);
    // The commits that follow checkpoints fail for a while: they only serve lag monitoring.
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 30],
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = with_store(config(&brokers, "commit-errors"), dir.path());
    let r = start(cfg.clone());
    r.complete.store(true, Ordering::Relaxed);
    let outcome = r.handle.join().unwrap().unwrap();
    assert_eq!(r.live.events_processed(), n);
    assert_same_figures(&cfg, &outcome, lines, n);
    // And the store holds every partition's offset.
    let stored: i64 = rusqlite::Connection::open(dir.path().join("state.db"))
        .unwrap()
        .query_row("SELECT SUM(next_offset) FROM partitions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored as u64, n);
}
