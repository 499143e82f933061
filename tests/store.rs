//! The SQLite state store on real files, without Kafka: a partition checkpointed as deltas,
//! "crashed" (state dropped after unsaved work) and restored many times counts exactly what an
//! uninterrupted pipeline counts; fencing; identity refusals; the revision history.

use srv_opr::config::Config;
use srv_opr::engine::correlate::Pos;
use srv_opr::engine::pipeline::{Pipeline, SourceName, VecDeadLetters};
use srv_opr::engine::time::{Ts, parse_rfc3339};
use srv_opr::simulate::{SimConfig, Simulator};
use srv_opr::sink::month::{evidence_files, failures_csv, rpl_csv, rpl_lines, users_csv};
use srv_opr::store::sqlite::SqliteStore;
use srv_opr::store::{Checkpoint, Identity, Store, StoreError};

/// Traffic across the March/April 2024 edge with every trap, late events included, and
/// future-dated requests from 25 service users (their due times, users and acknowledgements
/// must survive every restore).
fn events(seed: u64, future_dated: f64) -> Vec<Vec<u8>> {
    let p = |s: &str| parse_rfc3339(s.as_bytes()).unwrap();
    let cfg = SimConfig {
        seed,
        start: p("2024-03-29T00:00:00Z"),
        end: p("2024-04-04T00:00:00Z"),
        rate: 0.05,
        bad: 0.01,
        duplicates: 0.01,
        late: 0.01,
        disorder: srv_opr::engine::time::Dur::from_secs(20),
        future_dated,
        users: 25,
        ..SimConfig::default()
    };
    let mut bytes = Vec::new();
    Simulator::new(cfg).run(&mut bytes).unwrap();
    let mut lines: Vec<Vec<u8>> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    // A March request that never gets an answer in time... until one arrives at the very end,
    // long after March is final but inside the dedupe horizon: a revision of March.
    let at = lines
        .iter()
        .position(|l| l.windows(16).any(|w| w == br#""at":"2024-03-31"#))
        .unwrap();
    lines.insert(
        at,
        br#"{"type":"request","id":"rev-1","srv":"8.11","region":"north","provider":"dsp","at":"2024-03-31T00:00:01.000Z"}"#.to_vec(),
    );
    lines.push(
        br#"{"type":"response","id":"rev-1","code":"I0","at":"2024-03-31T00:00:05.000Z"}"#.to_vec(),
    );
    lines
}

fn identity(cfg: &Config) -> Identity {
    Identity {
        topics: Some("t".into()),
        group: Some("g".into()),
        definitions: cfg.definitions.sha256.clone(),
        accept_config_change: false,
        read_only: false,
    }
}

fn source() -> Vec<SourceName> {
    vec![SourceName {
        name: "t/0".into(),
        separator: '/',
    }]
}

/// A partition's worker, as `run` drives it: process, move the watermark by the largest `at`.
struct Part {
    pipeline: Pipeline<VecDeadLetters>,
    max_at: Ts,
    next: usize,
}

impl Part {
    /// A new partition from the beginning.
    fn new(cfg: &Config) -> Part {
        Part {
            pipeline: Pipeline::new(
                &cfg.pipeline().unwrap(),
                source(),
                VecDeadLetters::default(),
            ),
            max_at: Ts::MIN,
            next: 0,
        }
    }

    fn step(&mut self, cfg: &Config, raw: &[u8]) {
        let pos = Pos::new(0, self.next as u64);
        if let Some(t) = self.pipeline.process(raw, pos).unwrap()
            && t > self.max_at
        {
            self.max_at = t;
            self.pipeline
                .advance(t.minus(cfg.settings.time.allowed_lateness))
                .unwrap();
        }
        self.next += 1;
    }

    /// Writes what changed since the last checkpoint (or, with `full`, a snapshot that
    /// replaces the state log), as a worker does.
    fn checkpoint(
        &mut self,
        store: &mut dyn Store,
        epoch: i64,
        full: bool,
    ) -> srv_opr::store::Written {
        let delta = self.pipeline.take_delta(full).unwrap();
        store
            .checkpoint(&Checkpoint {
                topic: "t",
                partition: 0,
                epoch,
                next_offset: self.next as i64,
                max_at: self.max_at.0,
                delta: &delta,
            })
            .unwrap()
    }
}

/// `rpl.csv`, `failures.csv`, the evidence files and `users.csv` (joined) and the event
/// accounting.
type Figures = (
    String,
    String,
    String,
    srv_opr::engine::pipeline::PipelineStats,
);

/// The figures of `lines` through one pipeline that never stops.
fn uninterrupted(cfg: &Config, lines: &[Vec<u8>]) -> Figures {
    let mut reference = Part::new(cfg);
    for l in lines {
        reference.step(cfg, l);
    }
    figures(reference.pipeline)
}

/// A partition restored from `saved` counts what `want` (its uninterrupted figures) says.
fn assert_restores(cfg: &Config, saved: srv_opr::store::SavedPartition, want: &Figures) {
    let restored = Pipeline::restore(
        &cfg.pipeline().unwrap(),
        source(),
        VecDeadLetters::default(),
        saved.pipeline,
    )
    .unwrap();
    let (rpl, failures, evidence, stats) = figures(restored);
    assert_eq!(rpl, want.0);
    assert_eq!(failures, want.1);
    assert_eq!(evidence, want.2);
    assert_eq!(stats.events, want.3.events);
    assert_eq!(stats.by_type_result, want.3.by_type_result);
    assert_eq!(stats.dead_letters, want.3.dead_letters);
}

/// `rpl.csv`, `failures.csv`, the evidence files (joined) and the event accounting.
fn figures(mut p: Pipeline<VecDeadLetters>) -> Figures {
    p.finish().unwrap();
    let (agg, stats, _) = p.into_parts();
    let lines = rpl_lines(&agg, None);
    let measures: Vec<&str> = agg
        .definitions()
        .measures
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    let mut evidence: String = evidence_files(&lines, &measures)
        .into_iter()
        .map(|(name, text)| format!("{name}\n{text}"))
        .collect();
    evidence.push_str(&users_csv(&lines, agg.definitions()));
    (rpl_csv(&lines), failures_csv(&lines), evidence, stats)
}

/// Opens a connection to one store (a fresh one per test).
type Opener = dyn Fn(&Identity) -> Result<Box<dyn Store>, StoreError>;

fn sqlite_store(dir: &std::path::Path) -> (Box<Opener>, Box<dyn Fn() -> i64>) {
    let path = dir.join("state.db").to_str().unwrap().to_string();
    let p = path.clone();
    let defs = Config::builtin().unwrap().definitions;
    (
        Box::new(move |id| Ok(Box::new(SqliteStore::open(&p, id, &defs)?) as Box<dyn Store>)),
        Box::new(move || {
            rusqlite::Connection::open(&path)
                .unwrap()
                .query_row("SELECT SUM(records) FROM partitions", [], |r| r.get(0))
                .unwrap()
        }),
    )
}

/// A database of its own on the PostgreSQL server `scripts/test` starts.
fn postgres_store() -> (Box<Opener>, Box<dyn Fn() -> i64>) {
    let url = crate::support::fresh_postgres_database();
    let u = url.clone();
    let defs = Config::builtin().unwrap().definitions;
    (
        Box::new(move |id| {
            Ok(Box::new(srv_opr::store::postgres::PgStore::open(
                &u, None, id, &defs,
            )?) as Box<dyn Store>)
        }),
        Box::new(move || {
            srv_opr::store::pgtls::client(&url)
                .unwrap()
                .query_one("SELECT SUM(records)::BIGINT FROM partitions", &[])
                .unwrap()
                .get(0)
        }),
    )
}

#[test]
fn sqlite_checkpointed_deltas_and_crashes_change_no_figure() {
    let dir = tempfile::tempdir().unwrap();
    let (open, count) = sqlite_store(dir.path());
    deltas_and_crashes(&*open, &*count, 0.0);
}

/// The same with future-dated requests from 25 users: due times, users and first
/// acknowledgements come back from every checkpoint (issue 32).
#[test]
fn sqlite_future_dated_requests_and_users_survive_deltas_and_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (open, count) = sqlite_store(dir.path());
    deltas_and_crashes(&*open, &*count, 0.05);
}

#[test]
fn postgres_checkpointed_deltas_and_crashes_change_no_figure() {
    let (open, count) = postgres_store();
    deltas_and_crashes(&*open, &*count, 0.05);
}

#[test]
fn sqlite_former_owner_cannot_overwrite_its_successor() {
    let dir = tempfile::tempdir().unwrap();
    fencing(&*sqlite_store(dir.path()).0);
}

#[test]
fn postgres_former_owner_cannot_overwrite_its_successor() {
    fencing(&*postgres_store().0);
}

fn deltas_and_crashes(open: &Opener, stored_requests: &dyn Fn() -> i64, future_dated: f64) {
    let mut cfg = Config::builtin().unwrap();
    // Three days of dedupe horizon in six days of traffic: stored records expire, so deltas
    // also remove records (the late March response still comes within the horizon).
    cfg.settings.time.dedupe_horizon = srv_opr::engine::time::Dur::from_secs(3 * 24 * 3600);
    let lines = events(41, future_dated);
    assert!(lines.len() > 50_000, "{} events", lines.len());

    let want = uninterrupted(&cfg, &lines);
    assert!(
        want.2.matches("no_response").count() > 10,
        "misses decided at the end (still pending at the last checkpoint) have evidence"
    );
    assert!(
        want.0.lines().any(|l| !l.ends_with(",0,true")
            && !l.ends_with(",0,false")
            && !l.starts_with("month")),
        "the traffic revises a final month (late events), so revisions are exercised:\n{}",
        want.0
    );

    let mut store = open(&identity(&cfg)).unwrap();
    let claim = store.claim("t", 0, "test").unwrap();
    assert!(claim.saved.is_none());
    let mut epoch = claim.epoch;
    let mut part = Part::new(&cfg);
    part.pipeline.track_changes();
    let (mut checkpoints, mut crashes, mut smallest_delta) = (0, 0, usize::MAX);
    // Bytes of the state log as the store should count them: a snapshot replaces it.
    let (mut log_bytes, mut snapshots) = (0u64, 0);
    // What the correlator held at the last checkpoint: a restore must hold exactly that.
    let mut held;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next_rand = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    while part.next < lines.len() {
        part.step(&cfg, &lines[part.next]);
        if part.next % 499 == 0 {
            // Every ninth checkpoint a snapshot, so crashes fall after deltas and snapshots.
            let full = checkpoints % 9 == 4;
            let w = part.checkpoint(&mut *store, epoch, full);
            let c = part.pipeline.correlator();
            held = (c.records(), c.waiting());
            checkpoints += 1;
            if full {
                log_bytes = w.log_bytes;
                snapshots += 1;
            } else {
                log_bytes += w.log_bytes;
                if checkpoints > 10 {
                    smallest_delta = smallest_delta.min(w.records);
                }
            }
            // Now and then, do some work that is never checkpointed and "crash": drop
            // everything, claim the partition again and resume from the checkpoint.
            if next_rand(6) == 0 {
                for _ in 0..next_rand(900) {
                    if part.next < lines.len() {
                        part.step(&cfg, &lines[part.next]);
                    }
                }
                drop(store);
                store = open(&identity(&cfg)).unwrap();
                let claim = store.claim("t", 0, "test").unwrap();
                assert!(claim.epoch > epoch, "a claim raises the epoch");
                epoch = claim.epoch;
                let saved = claim.saved.expect("a checkpoint was written");
                assert_eq!(saved.log_bytes, log_bytes, "the store counts its state log");
                part = Part {
                    max_at: Ts(saved.max_at),
                    next: saved.next_offset as usize,
                    pipeline: Pipeline::restore(
                        &cfg.pipeline().unwrap(),
                        source(),
                        VecDeadLetters::default(),
                        saved.pipeline,
                    )
                    .unwrap(),
                };
                let c = part.pipeline.correlator();
                assert_eq!(
                    (c.records(), c.waiting()),
                    held,
                    "records and waiting restored"
                );
                crashes += 1;
            }
        }
    }
    assert!(
        crashes >= 5 && snapshots >= 5,
        "{crashes} crashes and {snapshots} snapshots in {checkpoints} checkpoints"
    );
    let stored = stored_requests();
    assert!(
        (smallest_delta as i64) < stored / 4,
        "a checkpoint writes what changed ({smallest_delta} records), not all {stored}"
    );
    // A final checkpoint, as at shutdown, then everything from the store alone.
    part.checkpoint(&mut *store, epoch, false);
    let saved = store.claim("t", 0, "test").unwrap().saved.unwrap();
    // The decided requests of the horizon come back in their compact form, by reduced key;
    // the map holds the pending ones (and what does not fit).
    assert!(
        saved.pipeline.decided.len() > 10 * saved.pipeline.entries.len(),
        "{} compact records, {} in the map",
        saved.pipeline.decided.len(),
        saved.pipeline.entries.len()
    );
    // The month rows keep their counts by day through every checkpoint and crash: the store's
    // are the live pipeline's, and they add up to the rows' counts.
    let mut days_seen = 0;
    for (month, measure, block) in part.pipeline.aggregates().blocks() {
        let stored = saved
            .pipeline
            .blocks
            .iter()
            .find(|b| b.month == month && b.measure == measure)
            .unwrap_or_else(|| panic!("{month} measure {measure} not stored"));
        for (live, kept) in block.regions.iter().zip(&stored.regions) {
            let days: Vec<(u8, [u64; 3])> = live.days().collect();
            assert_eq!(days, kept.days, "{month} measure {measure}");
            assert_eq!(days.iter().map(|(_, c)| c[0]).sum::<u64>(), live.requests);
            assert_eq!(
                days.iter().map(|(_, c)| c[1]).sum::<u64>(),
                live.within_target
            );
            days_seen += days.len();
        }
    }
    assert!(days_seen > 20, "{days_seen} days");
    // Evidence too: pending requests' texts are checkpointed, so the misses decided after the
    // restore (and after every crash) are sampled exactly as without them.
    assert_restores(&cfg, saved, &want);
    // This traffic (seed 41, on demand) has a late event that changes a final month's row.
    if future_dated == 0.0 {
        assert!(
            !store.revisions(None).unwrap().is_empty(),
            "raised revisions are recorded with a reason"
        );
    }
}

fn fencing(open: &Opener) {
    let cfg = Config::builtin().unwrap();
    let mut a = open(&identity(&cfg)).unwrap();
    let mut b = open(&identity(&cfg)).unwrap();
    let old = a.claim("t", 3, "a").unwrap().epoch;
    let new = b.claim("t", 3, "b").unwrap().epoch;
    assert!(new > old);
    let mut p = Pipeline::new(
        &cfg.pipeline().unwrap(),
        source(),
        VecDeadLetters::default(),
    );
    p.track_changes();
    let delta = p.take_delta(false).unwrap();
    let cp = |epoch| Checkpoint {
        topic: "t",
        partition: 3,
        epoch,
        next_offset: 10,
        max_at: 0,
        delta: &delta,
    };
    match a.checkpoint(&cp(old)) {
        Err(StoreError::Fenced { held, .. }) => assert_eq!(held, old),
        other => panic!("the former owner's checkpoint went through: {other:?}"),
    }
    b.checkpoint(&cp(new)).unwrap();
    let parts = a.partitions().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!((parts[0].owner.as_str(), parts[0].next_offset), ("b", 10));
}

/// A store of schema 1 (before month rows kept their counts by day) is migrated at open: its
/// rows read back with no days, and a row written again has them.
#[test]
fn a_schema_1_store_is_migrated_and_its_rows_read_back() {
    let cfg = Config::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let path = path.to_str().unwrap();
    let mut store = SqliteStore::open(path, &identity(&cfg), &cfg.definitions).unwrap();
    let epoch = store.claim("t", 0, "test").unwrap().epoch;
    let mut part = Part::new(&cfg);
    part.pipeline.track_changes();
    for l in events(7, 0.05).iter().take(3000) {
        part.step(&cfg, l);
    }
    part.checkpoint(&mut store, epoch, false);
    drop(store);
    // Back to schema 1 as it was: no `days` column, no counts per minute, no register history,
    // no sign-offs, no acknowledgement segment or users.
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "ALTER TABLE month_rows DROP COLUMN days; DROP TABLE minute_cells; \
         DROP TABLE register_history; DROP TABLE signoffs; \
         ALTER TABLE month_rows DROP COLUMN acked; \
         ALTER TABLE month_rows DROP COLUMN ack_histogram; \
         ALTER TABLE month_rows DROP COLUMN after_ack_histogram; \
         ALTER TABLE month_rows DROP COLUMN users; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(c);
    let mut store = SqliteStore::open(path, &identity(&cfg), &cfg.definitions).unwrap();
    let rows = store.month_rows(None).unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.row.days.is_empty() && r.row.requests > 0)
    );
    let version: i64 = rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, srv_opr::store::SCHEMA_VERSION);
    // A row written again (its counts moved) has its counts by day.
    let epoch = store.claim("t", 0, "test").unwrap().epoch;
    for l in events(7, 0.05).iter().skip(3000).take(3000) {
        part.step(&cfg, l);
    }
    part.checkpoint(&mut store, epoch, false);
    assert!(
        store
            .month_rows(None)
            .unwrap()
            .iter()
            .any(|r| !r.row.days.is_empty())
    );
}

#[test]
fn a_store_of_something_else_is_refused() {
    let cfg = Config::builtin().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let path = path.to_str().unwrap();
    drop(SqliteStore::open(path, &identity(&cfg), &cfg.definitions).unwrap());
    let refused = |id: Identity| match SqliteStore::open(path, &id, &cfg.definitions) {
        Err(StoreError::Refused(m)) => m,
        Err(e) => panic!("not a refusal: {e}"),
        Ok(_) => panic!("opened a store of something else"),
    };
    let m = refused(Identity {
        topics: Some("other".into()),
        ..identity(&cfg)
    });
    assert!(m.contains("topics"), "{m}");
    let m = refused(Identity {
        group: Some("other".into()),
        ..identity(&cfg)
    });
    assert!(m.contains("consumer group"), "{m}");
    let m = refused(Identity {
        definitions: "0".repeat(64),
        ..identity(&cfg)
    });
    assert!(m.contains("--accept-config-change"), "{m}");
    // Accepted: the store adopts the new definitions and says when.
    SqliteStore::open(
        path,
        &Identity {
            definitions: "0".repeat(64),
            accept_config_change: true,
            ..identity(&cfg)
        },
        &cfg.definitions,
    )
    .unwrap();
    let c = rusqlite::Connection::open(path).unwrap();
    let changes: i64 = c
        .query_row("SELECT COUNT(*) FROM config_changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(changes, 1);
    // A reader (no topics, no group) is still refused under other definitions.
    SqliteStore::open(
        path,
        &Identity {
            topics: None,
            group: None,
            ..Identity::reader(&cfg)
        },
        &cfg.definitions,
    )
    .map(|_| ())
    .unwrap_err();
    // A newer schema is refused, never downgraded.
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let m = refused(identity(&cfg));
    assert!(m.contains("newer"), "{m}");
}

/// PostgreSQL restarted the way a crash stops it (every connection cut, open transactions
/// lost) while a partition checkpoints continuously: every checkpoint goes through on a new
/// connection once the server is back, and the partition restored at the end counts exactly
/// what an uninterrupted pipeline counts. Without riding through, the same outage is named as
/// the store being unavailable.
#[test]
fn postgres_restarted_mid_checkpoint_is_ridden_through() {
    // A server of this test's own: the others keep theirs while this one is restarted.
    let (server, url) = crate::support::OwnServer::postgres(29532);
    let cfg = Config::builtin().unwrap();
    let lines = events(43, 0.0);
    let want = uninterrupted(&cfg, &lines);

    let open = |ride: std::time::Duration| {
        srv_opr::store::postgres::PgStore::open(&url, None, &identity(&cfg), &cfg.definitions)
            .unwrap()
            .riding_through(ride)
    };
    let mut store = open(std::time::Duration::from_secs(60));
    let epoch = store.claim("t", 0, "test").unwrap().epoch;
    let mut part = Part::new(&cfg);
    part.pipeline.track_changes();
    // A third of the way through, the server is stopped the way a crash stops it; once it is
    // down, checkpoints go on after every 10 events (so several meet the outage), and after
    // every 500 otherwise.
    let restart_at = lines.len() / 3;
    let mut restarter = None;
    let mut checkpoints = 0;
    while part.next < lines.len() {
        part.step(&cfg, &lines[part.next]);
        let near = (restart_at..restart_at + 200).contains(&part.next);
        if part.next % if near { 10 } else { 500 } == 0 {
            part.checkpoint(&mut store, epoch, checkpoints % 40 == 39);
            checkpoints += 1;
        }
        if part.next == restart_at {
            restarter = Some(server.restart_in_background(2));
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while std::net::TcpStream::connect("127.0.0.1:29532").is_ok() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the server never went down"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
    assert!(store.reconnects() >= 1, "no checkpoint met the outage");
    restarter.unwrap().join().unwrap();
    part.checkpoint(&mut store, epoch, false);
    let saved = open(std::time::Duration::ZERO)
        .claim("t", 0, "test")
        .unwrap()
        .saved
        .unwrap();
    assert_eq!(saved.next_offset as usize, lines.len());
    assert_restores(&cfg, saved, &want);

    // Not riding through: the outage is an error that says what it is.
    let mut store = open(std::time::Duration::ZERO);
    let down = server.restart_in_background(4);
    std::thread::sleep(std::time::Duration::from_secs(2));
    match store.partitions() {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("PostgreSQL"), "{m}"),
        other => panic!("not named unavailable: {other:?}"),
    }
    down.join().unwrap();
}
