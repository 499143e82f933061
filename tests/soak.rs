//! The soak: three `run` instances on PostgreSQL against a real broker while a producer sends at
//! a steady rate with every trap, and meanwhile one instance is killed (SIGKILL) again and again,
//! PostgreSQL is stopped as a crash stops it mid-checkpoint, and the broker is restarted. At the
//! end every figure equals a replay of what was produced, no instance is stuck, and (in a soak of
//! five minutes or more) each instance's memory is flat after warm-up.
//!
//! Its own broker and database (other ports), so restarting them disturbs no other test. Its
//! length is `SRV_OPR_SOAK_MINUTES` (`scripts/soak MINUTES`); `scripts/test` runs it short.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::store_kafka::{
    StoreAt, assert_report_equals_replay, assert_rollup_equals_replay, group_env, sim_args,
    simulate_file, spawn_run,
};
use crate::support::{OwnServer, create_topic_on, unique};

/// Events per second the producer sends.
const PRODUCE_RATE: f64 = 2000.0;

/// Events the simulator makes per second of simulated time at `--rate 1` (requests, responses,
/// acknowledgements, duplicates, bad lines), measured: 110,004 events for a day at 0.5.
const EVENTS_PER_REQUEST_RATE: f64 = 2.546;

/// Simulated seconds in the traffic `sim_args` names (2024-03-01 to 2024-04-03).
const SIMULATED_SECONDS: f64 = 33.0 * 86_400.0;

/// What happens when, as fractions of the production time. The faults come in the first half
/// so that the second is the steady state the memory is judged on: a killed instance's
/// partitions move to the others (their state grows by half, for a while), which is not a leak.
const KILLS: [f64; 3] = [0.08, 0.18, 0.28];
const POSTGRES_RESTART: f64 = 0.36;
const BROKER_RESTART: f64 = 0.44;
/// Memory is compared between these windows (the dedupe horizon fills in the first quarter:
/// eight days of a 33-day month). The earlier window runs up to `END`: a late rebalance after
/// the broker's restart can hold an instance's partitions back for half a minute, and the
/// catch-up's larger batches set a peak the allocator keeps (a CI run saw 75 → 122 MiB at 72 s,
/// then flat at 110 to the end); a leak is a new high at the end beyond every earlier one.
const WARM: (f64, f64) = (0.60, 0.88);
const END: f64 = 0.88;

/// The memory rule: the largest RSS after `END` is at most this much above the largest in
/// `WARM` (a share, and a floor in MiB for allocator noise).
const GROWTH_SHARE: f64 = 0.10;
const GROWTH_FLOOR_MIB: f64 = 16.0;

/// The shortest soak whose memory is judged (`scripts/soak` runs 10 minutes by default).
const MEMORY_JUDGED_FROM_MINUTES: f64 = 5.0;

/// One `run` instance: its current process, and every RSS sample of it (seconds since the
/// production started, MiB).
struct Instance {
    name: &'static str,
    child: Child,
    samples: Vec<(f64, f64)>,
    /// When the current process started (s).
    born: f64,
}

impl Instance {
    fn spawn(name: &'static str, dir: &Path, env: &[(String, String)], life: u32, at: f64) -> Self {
        let child = spawn_run(dir, env, &format!("{name}-{life}.log"), &[]);
        Instance {
            name,
            child,
            samples: Vec::new(),
            born: at,
        }
    }

    /// Its RSS now (its process is alive: a reaped one's pid may be another's by now).
    fn sample(&mut self, at: f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        if let Some(kib) = status.ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        }) {
            self.samples.push((at, kib / 1024.0));
        }
    }
}

impl Drop for Instance {
    /// Kills what a failing test leaves running (std never signals a child already reaped).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child killed if a failing test leaves it running (never once reaped: its pid may be
/// another process's by then).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn minutes() -> f64 {
    match std::env::var("SRV_OPR_SOAK_MINUTES") {
        Ok(m) => m
            .parse::<f64>()
            .ok()
            .filter(|m| *m >= 1.0)
            .unwrap_or_else(|| panic!("SRV_OPR_SOAK_MINUTES={m:?}: a number of minutes, ≥ 1")),
        // The short version in scripts/test.
        Err(_) => 2.0,
    }
}

#[test]
fn soak_three_instances_every_server_restarted_figures_equal_a_replay_memory_flat() {
    let minutes = minutes();
    // Three quarters of the time producing; the rest is set-up, the drain and the checks.
    let production = minutes * 60.0 * 0.75;
    let events = production * PRODUCE_RATE;
    let rate = format!(
        "{:.5}",
        events / (EVENTS_PER_REQUEST_RATE * SIMULATED_SECONDS)
    );
    eprintln!(
        "soak: {minutes} min, producing about {events:.0} events over {production:.0} s \
         (--rate {rate})"
    );

    let (broker, brokers) = OwnServer::kafka(29292);
    let (postgres, url) = OwnServer::postgres(29632);
    let topic = unique("soak");
    create_topic_on(&brokers, &topic, 6);
    create_topic_on(&brokers, &format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let total = simulate_file(dir, &rate);
    let store = StoreAt::Postgres(url.clone());
    let env = group_env(&brokers, &topic, &unique("soak-group"), &url);

    let mut producer = Reaped(
        Command::new(env!("CARGO_BIN_EXE_srv-opr"))
            .args(
                [
                    &sim_args(&rate)[..],
                    &[
                        "--kafka",
                        &brokers,
                        "--topic",
                        &topic,
                        "--produce-rate",
                        &PRODUCE_RATE.to_string(),
                    ],
                ]
                .concat(),
            )
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("producer.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let now = || started.elapsed().as_secs_f64();
    let mut instances = [
        Instance::spawn("a", dir, &env, 0, 0.0),
        Instance::spawn("b", dir, &env, 0, 0.0),
        Instance::spawn("c", dir, &env, 0, 0.0),
    ];
    let log_of = |name: &str, life: u32| {
        std::fs::read_to_string(dir.join(format!("{name}-{life}.log"))).unwrap_or_default()
    };

    let mut kills = 0u32;
    let mut respawn_at = None;
    let mut restarts: Vec<(&str, std::thread::JoinHandle<String>)> = Vec::new();
    let (mut pg_restarted, mut broker_restarted) = (false, false);
    let mut produced = false;
    let mut last_sample = -1.0;
    let deadline = production + 240.0;
    loop {
        let t = now();
        assert!(
            t < deadline,
            "not caught up after {t:.0} s: {} of {total} events checkpointed",
            store.checkpointed()
        );
        // The faults, each once, when due.
        if let Some(&k) = KILLS.get(kills as usize)
            && respawn_at.is_none()
            && t >= k * production
        {
            let b = &mut instances[1];
            b.child.kill().unwrap();
            b.child.wait().unwrap();
            kills += 1;
            eprintln!("soak: {t:.1} s: b killed (SIGKILL {kills})");
            respawn_at = Some(t + 1.0);
        }
        if respawn_at.is_some_and(|r| t >= r) {
            let mut fresh = Instance::spawn("b", dir, &env, kills, t);
            fresh.samples = std::mem::take(&mut instances[1].samples);
            instances[1] = fresh;
            respawn_at = None;
        }
        if !pg_restarted && t >= POSTGRES_RESTART * production {
            eprintln!("soak: {t:.1} s: PostgreSQL stopped as a crash stops it, down 3 s");
            restarts.push(("PostgreSQL", postgres.restart_in_background(3)));
            pg_restarted = true;
        }
        if !broker_restarted && t >= BROKER_RESTART * production {
            eprintln!("soak: {t:.1} s: the broker restarted, down 3 s");
            restarts.push(("the broker", broker.restart_in_background(3)));
            broker_restarted = true;
        }
        // Nobody stops on their own: an instance that exits is a failure, not a fault injected.
        for (i, inst) in instances.iter_mut().enumerate() {
            if i == 1 && respawn_at.is_some() {
                continue;
            }
            let life = if i == 1 { kills } else { 0 };
            if let Some(status) = inst.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) at {t:.1} s: {}",
                    inst.name,
                    log_of(inst.name, life)
                );
            }
        }
        if t - last_sample >= 1.0 {
            for (i, inst) in instances.iter_mut().enumerate() {
                if i != 1 || respawn_at.is_none() {
                    inst.sample(t);
                }
            }
            last_sample = t;
        }
        if !produced && let Some(status) = producer.0.try_wait().unwrap() {
            assert!(
                status.success(),
                "the producer failed: {}",
                std::fs::read_to_string(dir.join("producer.log")).unwrap()
            );
            eprintln!("soak: {t:.1} s: every event produced");
            produced = true;
        }
        if produced
            && kills as usize == KILLS.len()
            && respawn_at.is_none()
            && restarts.iter().all(|(_, h)| h.is_finished())
            && store.checkpointed() >= total
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (what, h) in restarts {
        h.join()
            .unwrap_or_else(|_| panic!("restarting {what} failed"));
    }
    let caught_up = now();
    eprintln!("soak: {caught_up:.1} s: every event checkpointed");
    assert_eq!(store.checkpointed(), total);

    // A clean stop: SIGTERM drains and hands over; none may hang.
    for inst in &instances {
        Command::new("kill")
            .args(["-TERM", &inst.child.id().to_string()])
            .status()
            .unwrap();
    }
    for (i, inst) in instances.iter_mut().enumerate() {
        let life = if i == 1 { kills } else { 0 };
        let stop = Instant::now();
        loop {
            if let Some(status) = inst.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{}: {}",
                    inst.name,
                    log_of(inst.name, life)
                );
                break;
            }
            assert!(
                stop.elapsed() < Duration::from_secs(60),
                "{} did not stop within 60 s of SIGTERM: {}",
                inst.name,
                log_of(inst.name, life)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // The database restart was met and ridden through, not just survived by luck.
    let logs: String = ["a-0", "c-0"]
        .iter()
        .map(|l| std::fs::read_to_string(dir.join(format!("{l}.log"))).unwrap_or_default())
        .chain((0..=kills).map(|life| log_of("b", life)))
        .collect();
    assert!(
        logs.contains("PostgreSQL state store unreachable")
            && logs.contains("PostgreSQL state store reachable again"),
        "no instance met the database restart"
    );

    // Every figure equals the replay's.
    assert_rollup_equals_replay(dir, &store, &env, "rollup");
    assert_report_equals_replay(dir, &env);

    // Memory: flat after warm-up, for each instance's last process (b's began after its last
    // kill, before the windows).
    let mut report = String::from("soak: RSS (MiB) by instance: warm-up window max, end max\n");
    for inst in &instances {
        let max_in = |from: f64, to: f64| {
            inst.samples
                .iter()
                .filter(|(t, _)| *t >= from && *t < to && *t >= inst.born)
                .map(|(_, m)| *m)
                .fold(f64::NAN, f64::max)
        };
        let warm = max_in(WARM.0 * production, WARM.1 * production);
        let end = max_in(END * production, f64::INFINITY);
        report.push_str(&format!(
            "  {}: {warm:.1} → {end:.1} ({} samples)\n",
            inst.name,
            inst.samples.len()
        ));
        assert!(
            warm.is_finite() && end.is_finite(),
            "{}: too few samples to judge memory",
            inst.name
        );
        // Judged only in a soak long enough for the faults' aftermath to settle before the
        // warm window: in the 2-minute one of scripts/test the windows are seconds apart, and a
        // partition that moves late (a rebalance after the restarts) is restored and caught up
        // inside the end window, a peak of state, not a leak (two CI runs: 75 → 122 MiB at 72 s,
        // 102 → 134 MiB at 83 s, both flat after). The 2-minute soak still reports the figures.
        assert!(
            minutes < MEMORY_JUDGED_FROM_MINUTES
                || end <= warm * (1.0 + GROWTH_SHARE) + GROWTH_FLOOR_MIB,
            "{}: memory grew after warm-up, {warm:.1} MiB → {end:.1} MiB: {:?}",
            inst.name,
            inst.samples
        );
    }
    eprint!("{report}");
    // For scripts/soak: the series, one line per sample.
    let series: String = instances
        .iter()
        .flat_map(|i| {
            i.samples
                .iter()
                .map(move |(t, m)| format!("{},{t:.1},{m:.1}\n", i.name))
        })
        .collect();
    if let Ok(path) = std::env::var("SRV_OPR_SOAK_RSS_CSV") {
        std::fs::write(path, format!("instance,seconds,rss_mib\n{series}")).unwrap();
    }
    eprintln!(
        "soak: passed: {total} events, {kills} kills, PostgreSQL and the broker restarted, \
         caught up at {caught_up:.0} s"
    );
}
