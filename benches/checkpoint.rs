//! Checkpoint duration and store size per million pending requests, SQLite and PostgreSQL,
//! side by side: a full snapshot of one partition holding `BENCH_PENDING` (default 1,000,000)
//! pending requests, a delta checkpoint after a tenth of them were answered, and the claim that
//! reads it all back (the restore of a partition's new owner).
//!
//! ```sh
//! BENCH_POSTGRES=$(PG_FSYNC=on scripts/postgres start) cargo bench --bench checkpoint
//! ```
//!
//! Without `BENCH_POSTGRES` only SQLite is measured. Then the same for `BENCH_DECIDED`
//! (default 1,000,000) decided requests, each answered 5 s after it, as a partition holds them
//! for the dedupe horizon: a snapshot, its size per million and the restore.

use std::time::Instant;

use srv_opr::config::Config;
use srv_opr::engine::correlate::Pos;
use srv_opr::engine::pipeline::{Pipeline, SourceName, VecDeadLetters};
use srv_opr::engine::time::{NANOS_PER_SEC, Ts};
use srv_opr::store::{Checkpoint, Identity, Store};

fn stamp(ns: i64) -> String {
    Ts(ns).to_rfc3339_millis()
}

fn measure(name: &str, mut store: Box<dyn Store>, n: u64, size: &dyn Fn() -> u64) {
    let cfg = Config::builtin().expect("config");
    let mut p = partition_pipeline(&cfg);
    let epoch = store.claim("t", 0, "bench").expect("claim").epoch;
    // Requests a millisecond apart from 2024-03-04: all pending (deadline 24 h away), with
    // DUIS-shaped ids, user and device, as their evidence text is checkpointed too.
    let t0 = 1_709_510_400 * NANOS_PER_SEC;
    for i in 0..n {
        let line = format!(
            r#"{{"type":"request","id":"90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{i}","srv":"8.11","region":"north","provider":"dsp","user":"90-B3-D5-1F-30-01-00-00","device":"00-DB-12-34-56-78-90-A0","at":"{}"}}"#,
            stamp(t0 + i as i64 * 1_000_000)
        );
        p.process(line.as_bytes(), Pos::new(0, i)).expect("process");
    }
    let mut offset = n;
    let write = |p: &mut Pipeline<VecDeadLetters>, store: &mut Box<dyn Store>, offset, full| {
        write_checkpoint(p, store, epoch, offset, full)
    };
    let (full, records) = write(&mut p, &mut store, offset, true);
    let bytes = size();
    // A tenth answered: their records change, the rest do not.
    for i in (0..n).step_by(10) {
        let line = format!(
            r#"{{"type":"response","id":"90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{i}","code":"I0","at":"{}"}}"#,
            stamp(t0 + i as i64 * 1_000_000 + 5 * NANOS_PER_SEC)
        );
        p.process(line.as_bytes(), Pos::new(0, offset))
            .expect("process");
        offset += 1;
    }
    let (delta, changed) = write(&mut p, &mut store, offset, false);
    let (restore, restored) = claim_back(&mut store, n);
    let per_million = 1e6 / n as f64;
    println!(
        "{name}: snapshot of {records} pending requests {full:.3} s ({:.3} s per million), \
         store {:.0} MB ({:.0} MB per million pending); delta checkpoint of {changed} changed \
         records {delta:.3} s; restore of {restored} records {restore:.3} s",
        full * per_million,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 * per_million
    );
}

/// Claims the partition back as a new owner would: the seconds it took and the records read
/// (all `n`).
fn claim_back(store: &mut Box<dyn Store>, n: u64) -> (f64, usize) {
    let started = Instant::now();
    let saved = store.claim("t", 0, "bench").expect("claim").saved;
    let restore = started.elapsed().as_secs_f64();
    let restored = saved.map_or(0, |s| s.pipeline.entries.len() + s.pipeline.decided.len());
    assert_eq!(restored as u64, n, "every record read back");
    (restore, restored)
}

/// Writes the partition's checkpoint (a snapshot with `full`): its seconds and records written.
fn write_checkpoint(
    p: &mut Pipeline<VecDeadLetters>,
    store: &mut Box<dyn Store>,
    epoch: i64,
    offset: u64,
    full: bool,
) -> (f64, usize) {
    let started = Instant::now();
    let delta = p.take_delta(full).expect("delta");
    let w = store
        .checkpoint(&Checkpoint {
            topic: "t",
            partition: 0,
            epoch,
            next_offset: offset as i64,
            max_at: 0,
            delta: &delta,
        })
        .expect("checkpoint");
    (started.elapsed().as_secs_f64(), w.records)
}

/// A pipeline of the bench's partition, tracking changes.
fn partition_pipeline(cfg: &Config) -> Pipeline<VecDeadLetters> {
    let mut p = Pipeline::new(
        &cfg.pipeline().expect("pipeline"),
        vec![SourceName {
            name: "t/0".into(),
            separator: '/',
        }],
        VecDeadLetters::default(),
    );
    p.track_changes();
    p
}

/// `n` decided requests (each answered 5 s later, the watermark then moved an hour past the
/// last) snapshotted into `store` and read back.
fn measure_decided(name: &str, mut store: Box<dyn Store>, n: u64, size: &dyn Fn() -> u64) {
    let cfg = Config::builtin().expect("config");
    let mut p = partition_pipeline(&cfg);
    let epoch = store.claim("t", 0, "bench").expect("claim").epoch;
    let t0 = 1_709_510_400 * NANOS_PER_SEC;
    let id = |i: u64| format!("90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{i}");
    // A request a millisecond, its response 5,000 requests (5 s) later, in time order.
    let mut offset = 0;
    for j in 0..n + 5_000 {
        if j < n {
            let line = format!(
                r#"{{"type":"request","id":"{}","srv":"8.11","region":"north","provider":"dsp","user":"90-B3-D5-1F-30-01-00-00","device":"00-DB-12-34-56-78-90-A0","at":"{}"}}"#,
                id(j),
                stamp(t0 + j as i64 * 1_000_000)
            );
            p.process(line.as_bytes(), Pos::new(0, offset))
                .expect("process");
            offset += 1;
        }
        if j >= 5_000 {
            let i = j - 5_000;
            let line = format!(
                r#"{{"type":"response","id":"{}","code":"I0","at":"{}"}}"#,
                id(i),
                stamp(t0 + i as i64 * 1_000_000 + 5 * NANOS_PER_SEC)
            );
            p.process(line.as_bytes(), Pos::new(0, offset))
                .expect("process");
            offset += 1;
        }
    }
    // The watermark an hour past the last: every request decided (a source clock would move it).
    p.advance(Ts(t0 + n as i64 * 1_000_000 + 3_600 * NANOS_PER_SEC))
        .expect("advance");
    assert_eq!(p.correlator().pending(), 0, "every request decided");
    let (full, records) = write_checkpoint(&mut p, &mut store, epoch, offset, true);
    let bytes = size();
    let (restore, _) = claim_back(&mut store, n);
    let per_million = 1e6 / n as f64;
    println!(
        "{name}: snapshot of {} records ({n} decided requests) {full:.3} s ({:.3} s per \
         million), store {:.0} MB ({:.1} bytes per decided request); restore {restore:.3} s \
         ({:.3} s per million)",
        records,
        full * per_million,
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        restore * per_million
    );
}

/// What one round measures: pending requests (`measure`) or decided ones (`measure_decided`).
type Measure = fn(&str, Box<dyn Store>, u64, &dyn Fn() -> u64);

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let count = |name: &str| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000)
    };
    let rounds: [(&str, Measure, u64); 2] = [
        ("pending", measure, count("BENCH_PENDING")),
        ("decided", measure_decided, count("BENCH_DECIDED")),
    ];
    let cfg = Config::builtin().expect("config");
    let id = Identity {
        topics: Some("t".into()),
        group: Some("g".into()),
        definitions: cfg.definitions.sha256.clone(),
        accept_config_change: false,
        read_only: false,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = std::env::var("BENCH_POSTGRES").ok();
    for (what, run, n) in rounds {
        let path = dir.path().join(format!("bench-{what}.db"));
        let url = format!("sqlite://{}", path.display());
        let store = srv_opr::store::open(&url, None, &id, &cfg.definitions).expect("sqlite");
        let size = || {
            // Pages still in the write-ahead log are copied into the file first, so they count
            // once.
            if let Ok(c) = rusqlite::Connection::open(&path) {
                let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            }
            ["", "-wal"]
                .iter()
                .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
                .map(|m| m.len())
                .sum()
        };
        run("sqlite", store, n, &size);

        let Some(server) = &server else {
            continue;
        };
        let db = format!("bench_{}_{what}", std::process::id());
        let mut admin = srv_opr::store::pgtls::client(server).expect("postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .expect("create database");
        let url = srv_opr::store::pgtls::with_database(server, &db);
        let store = srv_opr::store::open(&url, None, &id, &cfg.definitions).expect("postgres");
        let size = || {
            srv_opr::store::pgtls::client(&url)
                .ok()
                .and_then(|mut c| {
                    c.query_one(
                        "SELECT CAST(SUM(pg_total_relation_size(c.oid)) AS BIGINT)
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'public' AND c.relkind = 'r'",
                        &[],
                    )
                    .ok()
                })
                .map_or(0, |r| r.get::<_, i64>(0) as u64)
        };
        run("postgres", store, n, &size);
    }
}
