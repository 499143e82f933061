//! The state store against a real Kafka broker: `srv-opr run` killed with SIGKILL at many points
//! and restarted, the group's offsets reset to the beginning, the broker itself restarted
//! mid-run: the `rollup` of the month always equals the `replay` of the same events.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::support::{KillOnDrop, OwnServer, brokers, create_topic_on, srv_ok, unique};

const MONTH: &str = "2024-03";

/// A month and a few days, every trap injected, into a file (replayed into `replay-out`) and,
/// same seed, into `topic`; returns the number of events.
fn simulate(dir: &Path, brokers: &str, topic: &str, rate: &str) -> u64 {
    let n = simulate_file(dir, rate);
    srv_ok(
        dir,
        &[&sim_args(rate)[..], &["--kafka", brokers, "--topic", topic]].concat(),
        &[],
    );
    n
}

pub(crate) fn sim_args(rate: &str) -> Vec<&str> {
    vec![
        "simulate",
        "--from",
        "2024-03-01T00:00:00Z",
        "--to",
        "2024-04-03T00:00:00Z",
        "--rate",
        rate,
        "--seed",
        "23",
        "--bad",
        "0.005",
        "--duplicates",
        "0.01",
    ]
}

/// The simulated events into `events.jsonl`, replayed into `replay-out`.
pub(crate) fn simulate_file(dir: &Path, rate: &str) -> u64 {
    srv_ok(
        dir,
        &[&sim_args(rate)[..], &["--out", "events.jsonl"]].concat(),
        &[],
    );
    srv_ok(dir, &["replay", "events.jsonl", "--out", "replay-out"], &[]);
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .count() as u64
}

/// The environment of a `run` of `topic` in `group`, checkpointing often into `state.db`.
fn run_env(brokers: &str, topic: &str, group: &str) -> Vec<(String, String)> {
    let mut env = group_env(brokers, topic, group, "sqlite://state.db");
    // Static membership: a restarted instance takes its partitions back at once instead of
    // waiting for the killed one's session to time out (what a Kubernetes pod restart should
    // configure too).
    env.push((
        "SRV_OPR__KAFKA__PROPERTIES__GROUP.INSTANCE.ID".into(),
        format!("{group}-0"),
    ));
    env
}

/// The environment of one member of `group` checkpointing into `store`.
pub(crate) fn group_env(
    brokers: &str,
    topic: &str,
    group: &str,
    store: &str,
) -> Vec<(String, String)> {
    vec![
        ("SRV_OPR__KAFKA__BROKERS".into(), brokers.into()),
        ("SRV_OPR__KAFKA__TOPICS".into(), format!("[\"{topic}\"]")),
        ("SRV_OPR__KAFKA__GROUP_ID".into(), group.into()),
        (
            "SRV_OPR__KAFKA__DEAD_LETTER_TOPIC".into(),
            format!("{topic}-dead"),
        ),
        ("SRV_OPR__HTTP__LISTEN".into(), String::new()),
        ("SRV_OPR__STATE__URL".into(), store.into()),
        ("SRV_OPR__STATE__CHECKPOINT_EVENTS".into(), "20000".into()),
        ("SRV_OPR__STATE__CHECKPOINT_INTERVAL".into(), "200ms".into()),
        // A static member stays in the group after it stops until its session times out; the
        // redelivery step below waits for that to commit from outside.
        (
            "SRV_OPR__KAFKA__PROPERTIES__SESSION.TIMEOUT.MS".into(),
            "6000".into(),
        ),
        (
            "SRV_OPR__KAFKA__PROPERTIES__HEARTBEAT.INTERVAL.MS".into(),
            "1000".into(),
        ),
    ]
}

pub(crate) fn spawn_run(dir: &Path, env: &[(String, String)], log: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args([&["run", "--out", "run-out"][..], extra].concat())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap()
}

/// Where a test's store is, read with plain SQL as an operator would.
pub(crate) enum StoreAt {
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreAt {
    pub(crate) fn scalar(&self, sql: &str) -> u64 {
        match self {
            StoreAt::Sqlite(dir) => {
                let Ok(c) = rusqlite::Connection::open_with_flags(
                    dir.join("state.db"),
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                ) else {
                    return 0;
                };
                let _ = c.busy_timeout(Duration::from_secs(5));
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map_or(0, |n| n as u64)
            }
            StoreAt::Postgres(url) => srv_opr::store::pgtls::client(url)
                .ok()
                .and_then(|mut c| c.query_one(sql, &[]).ok())
                .map_or(0, |r| r.get::<_, i64>(0) as u64),
        }
    }

    /// Events checkpointed so far: the sum of the partitions' checkpointed offsets.
    pub(crate) fn checkpointed(&self) -> u64 {
        self.scalar("SELECT CAST(COALESCE(SUM(next_offset), 0) AS BIGINT) FROM partitions")
    }

    /// Requests the store holds pending (not yet decided), and how many of them no measure
    /// counts: every partition's checkpoint read back, as its next owner would.
    pub(crate) fn pending(&self, env: &[(&str, &str)]) -> (u64, u64) {
        let cfg = srv_opr::config::Config::builtin().unwrap();
        let url = match self {
            StoreAt::Sqlite(dir) => format!("sqlite://{}", dir.join("state.db").display()),
            StoreAt::Postgres(url) => url.clone(),
        };
        let var = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let topics: Vec<String> =
            serde_json::from_str(&var("SRV_OPR__KAFKA__TOPICS").unwrap()).unwrap();
        let id = srv_opr::store::Identity {
            topics: Some(topics.join(",")),
            group: var("SRV_OPR__KAFKA__GROUP_ID"),
            definitions: cfg.definitions.sha256.clone(),
            accept_config_change: false,
            read_only: false,
        };
        let mut store = srv_opr::store::open(&url, None, &id, &cfg.definitions).unwrap();
        let (mut pending, mut unmeasured) = (0, 0);
        for p in store.partitions().unwrap() {
            let Some(saved) = store.claim(&p.topic, p.partition, "test").unwrap().saved else {
                continue;
            };
            let meta = &saved.pipeline.meta;
            let cat = srv_opr::engine::catalog::Catalog::restore(
                std::sync::Arc::new(cfg.definitions.clone()),
                &meta.srvs,
                &meta.codes,
                &meta.users,
            );
            for (_, e) in saved.pipeline.entries.iter().filter(|(_, e)| !e.decided) {
                pending += 1;
                if cat.rules(e.srv, e.provider).of(e.due > e.at).is_empty() {
                    unmeasured += 1;
                }
            }
        }
        (pending, unmeasured)
    }

    /// Responses waiting for their request.
    pub(crate) fn waiting(&self) -> u64 {
        self.scalar("SELECT CAST(COALESCE(SUM(waiting), 0) AS BIGINT) FROM partitions")
    }
}

fn month_lines(text: &str) -> String {
    text.lines()
        .filter(|l| l.contains(MONTH) || l.starts_with("month") || l.starts_with("measure"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `rollup` of the month equals the replay's rows of that month, file by file, and the
/// store's event accounting equals the replay's: every event counted exactly once.
pub(crate) fn assert_rollup_equals_replay(
    dir: &Path,
    store: &StoreAt,
    env: &[(String, String)],
    out: &str,
) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let o = srv_ok(dir, &["rollup", "--month", MONTH, "--out", out], &env);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("not final"), "{stderr}");
    let read = |d: &str, f: &str| std::fs::read_to_string(dir.join(d).join(f)).unwrap();
    for f in ["rpl.csv", "failures.csv", "opr-inputs.csv"] {
        assert_eq!(
            month_lines(&read(out, f)),
            month_lines(&read("replay-out", f)),
            "{f}"
        );
    }
    // The evidence samples too: pending requests' texts are checkpointed, so kills, restarts
    // and hand-overs change no sample.
    let evidence = std::fs::read_dir(dir.join("replay-out/evidence")).unwrap();
    let mut files = 0;
    for e in evidence {
        let name = format!("evidence/{}", e.unwrap().file_name().to_string_lossy());
        assert_eq!(
            month_lines(&read(out, &name)),
            month_lines(&read("replay-out", &name)),
            "{name}"
        );
        files += 1;
    }
    assert!(files >= 12, "{files} evidence files");
    let summary =
        |d: &str| -> serde_json::Value { serde_json::from_str(&read(d, "summary.json")).unwrap() };
    let (rolled, replayed) = (summary(out), summary("replay-out"));
    for key in ["events_read", "requests", "duplicates", "late_events"] {
        assert_eq!(rolled[key], replayed[key], "{key}");
    }
    // Unmeasured requests are counted when decided: those `run` left pending at its stop (the
    // traffic's last minutes, and lost responses' last day) the replay decided at its end.
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let (pending, pending_unmeasured) = store.pending(&env);
    assert_eq!(
        n(&rolled["unmeasured_requests"]) + pending_unmeasured,
        n(&replayed["unmeasured_requests"]),
        "unmeasured requests ({pending_unmeasured} of {pending} pending in the store)"
    );
    assert_eq!(
        n(&rolled["decided_requests"]) + pending,
        n(&replayed["decided_requests"]),
        "decided requests ({pending} pending in the store)"
    );
    // Responses still waiting for their request in the store are counted (as orphans) only at
    // the replay's end of input.
    let waiting = store.waiting();
    assert_eq!(
        n(&rolled["responses"]) + waiting,
        n(&replayed["responses"]),
        "responses"
    );
    for (reason, count) in replayed["dead_letters"].as_object().unwrap() {
        let stored = n(&rolled["dead_letters"][reason]);
        if reason == "orphan_response" {
            assert_eq!(stored + waiting, n(count), "orphans");
        } else {
            assert_eq!(stored, n(count), "dead letters {reason}");
        }
    }
}

#[test]
fn sigkill_at_ten_points_and_an_offset_reset_change_no_figure() {
    let brokers = brokers();
    let topic = unique("crash");
    create_topic_on(&brokers, &topic, 6);
    create_topic_on(&brokers, &format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let total = simulate(dir.path(), &brokers, &topic, "0.1");
    let group = unique("crash-group");
    let env = run_env(&brokers, &topic, &group);
    let store = StoreAt::Sqlite(dir.path().to_path_buf());

    // Kill at ten points spread over the month: when the checkpoints pass a target, plus a
    // little jitter so the kill lands anywhere between two checkpoints.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut mid_way = 0;
    for i in 0..10u64 {
        let target = total * (i + 1) / 12;
        let mut child = spawn_run(dir.path(), &env, &format!("run-{i}.log"), &[]);
        let _guard = KillOnDrop(child.id());
        let deadline = Instant::now() + Duration::from_secs(120);
        while store.checkpointed() < target {
            assert!(Instant::now() < deadline, "no progress towards {target}");
            assert!(
                child.try_wait().unwrap().is_none(),
                "run exited: {}",
                std::fs::read_to_string(dir.path().join(format!("run-{i}.log"))).unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(seed % 150));
        child.kill().unwrap();
        child.wait().unwrap();
        let at = store.checkpointed();
        eprintln!("kill {i}: {at} of {total} events checkpointed");
        if at < total {
            mid_way += 1;
        }
    }
    assert!(mid_way >= 8, "only {mid_way} kills landed before the end");

    // Then to the end, and the month from the store alone.
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    srv_ok(dir.path(), &["run", "--until-caught-up"], &env_ref);
    assert_eq!(store.checkpointed(), total);
    assert_rollup_equals_replay(dir.path(), &store, &env, "rollup-1");

    // Kafka's committed offsets follow the checkpoints (for lag monitoring)…
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..6 {
        tpl.add_partition(&topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl.clone(), Duration::from_secs(30))
        .unwrap();
    let sum: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(
        sum as u64, total,
        "committed offsets after the last checkpoints"
    );
    // …but resetting them to the beginning (a redelivery of everything) changes no figure:
    // `run` resumes from the store's offsets.
    for p in 0..6 {
        tpl.set_partition_offset(&topic, p, Offset::Offset(0))
            .unwrap();
    }
    // Kafka takes commits from outside only once the group is empty (the static member's
    // session has expired).
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
        assert!(Instant::now() < deadline, "cannot reset the offsets: {e}");
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(consumer);
    srv_ok(dir.path(), &["run", "--until-caught-up"], &env_ref);
    assert_rollup_equals_replay(dir.path(), &store, &env, "rollup-2");
}

#[test]
fn a_broker_restart_mid_run_changes_no_figure() {
    // A broker of this test's own (so the others keep theirs), on other ports.
    let (broker, brokers) = OwnServer::kafka(29192);
    let topic = unique("bounce");
    create_topic_on(&brokers, &topic, 6);
    create_topic_on(&brokers, &format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let total = simulate(dir.path(), &brokers, &topic, "0.05");
    // Dynamic membership here: a static member can be fenced by its own rejoin after a broker
    // restart, which is fatal for librdkafka (`run` then exits for its supervisor to restart).
    let env = group_env(
        &brokers,
        &topic,
        &unique("bounce-group"),
        "sqlite://state.db",
    );
    let store = StoreAt::Sqlite(dir.path().to_path_buf());

    let mut child = spawn_run(dir.path(), &env, "run.log", &[]);
    let guard = KillOnDrop(child.id());
    let deadline = Instant::now() + Duration::from_secs(120);
    while store.checkpointed() < total / 3 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Down for longer than a hand-over waits for dead letters (30 s), as a slow restart on a
    // busy host is: the group loses the partitions meanwhile, and `run` must carry on.
    broker.run("restart", &[("KAFKA_DOWN_SECONDS", "40")]);
    let deadline = Instant::now() + Duration::from_secs(180);
    while store.checkpointed() < total {
        assert!(
            Instant::now() < deadline,
            "run did not finish after the broker came back ({} of {total}): {}",
            store.checkpointed(),
            std::fs::read_to_string(dir.path().join("run.log")).unwrap()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "run exited: {}",
            std::fs::read_to_string(dir.path().join("run.log")).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A clean stop this time: SIGTERM drains and hands every partition over.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    drop(guard);
    let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert!(
        log.contains("kafka client") || log.contains("consumer"),
        "the outage is in the log: {log}"
    );
    assert_rollup_equals_replay(dir.path(), &store, &env, "rollup");
}

#[test]
fn three_instances_on_postgres_one_late_one_killed_change_no_figure() {
    let brokers = brokers();
    let topic = unique("group3");
    create_topic_on(&brokers, &topic, 6);
    create_topic_on(&brokers, &format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let total = simulate_file(dir.path(), "0.1");
    let url = crate::support::fresh_postgres_database();
    let store = StoreAt::Postgres(url.clone());
    let env = group_env(&brokers, &topic, &unique("group3"), &url);

    // The traffic arrives while the group works: the simulator produces at a steady rate.
    let mut producer = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(
            [
                &sim_args("0.1")[..],
                &[
                    "--kafka",
                    &brokers,
                    "--topic",
                    &topic,
                    "--produce-rate",
                    "60000",
                ],
            ]
            .concat(),
        )
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _producing = KillOnDrop(producer.id());
    let wait_for = |target: u64, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(180);
        while store.checkpointed() < target {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {target} checkpointed",
                store.checkpointed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut a = spawn_run(dir.path(), &env, "a.log", &[]);
    let _a = KillOnDrop(a.id());
    let mut b = spawn_run(dir.path(), &env, "b.log", &[]);
    let _b = KillOnDrop(b.id());
    wait_for(total / 4, "two members");
    let mut c = spawn_run(dir.path(), &env, "c.log", &[]);
    let _c = KillOnDrop(c.id());
    wait_for(total / 2, "three members");
    b.kill().unwrap();
    b.wait().unwrap();
    assert!(producer.wait().unwrap().success(), "the simulator failed");
    wait_for(total, "after a member was killed");
    for child in [&mut a, &mut c] {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
    }
    for child in [&mut a, &mut c] {
        assert!(child.wait().unwrap().success());
    }
    // Partitions changed hands: claimed again under higher epochs, and the late member resumed
    // partitions from checkpoints the others wrote. (Which member claimed each partition last
    // depends on who stopped first, so the owners themselves are not compared.)
    assert!(
        store.scalar("SELECT MAX(epoch) FROM partitions") >= 2,
        "no partition moved"
    );
    let late = std::fs::read_to_string(dir.path().join("c.log")).unwrap();
    assert!(
        late.contains("restored from checkpoint"),
        "the late member restored no partition: {late}"
    );
    assert_rollup_equals_replay(dir.path(), &store, &env, "rollup");
    assert_report_equals_replay(dir.path(), &env);
}

/// `report --year` from the store (six partitions written by three members) scores and
/// tabulates the year exactly as a report replaying the same events.
pub(crate) fn assert_report_equals_replay(dir: &Path, env: &[(String, String)]) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let external = format!(
        "{}/config/opr/RY23-24-external.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let args = ["report", "--year", "RY23/24", "--inputs", &external];
    srv_ok(dir, &[&args[..], &["--out", "report-store"]].concat(), &env);
    srv_ok(
        dir,
        &[
            &args[..],
            &["--replay", "events.jsonl", "--out", "report-replay"],
        ]
        .concat(),
        &[],
    );
    let read = |d: &str, f: &str| std::fs::read_to_string(dir.join(d).join(f)).unwrap();
    assert_eq!(
        read("report-store", "score.csv"),
        read("report-replay", "score.csv")
    );
    for f in ["rpl.csv", "failures.csv", "opr-inputs.csv"] {
        assert_eq!(
            month_lines(&read("report-store", f)),
            month_lines(&read("report-replay", f)),
            "{f}"
        );
    }
    assert!(dir.join("report-store/opr-RY23-24.xlsx").is_file());
    assert!(dir.join("report-store/index.html").is_file());
}
