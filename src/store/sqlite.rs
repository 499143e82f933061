//! The embedded state store: one SQLite file in WAL mode, for a single instance. An operator can
//! open it with the `sqlite3` shell: `SELECT * FROM month_totals` shows the month aggregates
//! merged over partitions, `revisions` the history of final months.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::codec::{LogReplay, buckets_from, buckets_text, encode_changes};
use super::{
    Checkpoint, Claim, Identity, PartitionInfo, RevisionRecord, SCHEMA_VERSION, SavedPartition,
    Store, StoreError, StoredRow, Written, blocks_of, check_identity, revision_reason, row_writes,
};
use crate::engine::aggregate::SavedRow;
use crate::engine::calendar::Month;
use crate::engine::definitions::Definitions;
use crate::engine::domain::Region;
use crate::engine::pipeline::{SavedMeta, SavedPipeline};
use crate::engine::time::now;

/// Schema migrations, in order: entry `i` brings a store from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: the first release.
    "
    CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE partitions (
        pid INTEGER PRIMARY KEY,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        owner TEXT NOT NULL,
        next_offset INTEGER NOT NULL DEFAULT 0,
        max_at INTEGER NOT NULL DEFAULT -9223372036854775808,
        watermark INTEGER NOT NULL DEFAULT -9223372036854775808,
        meta TEXT,
        records INTEGER NOT NULL DEFAULT 0,
        waiting INTEGER NOT NULL DEFAULT 0,
        log_bytes INTEGER NOT NULL DEFAULT 0,
        checkpoints INTEGER NOT NULL DEFAULT 0,
        checkpointed_at TEXT,
        UNIQUE (topic, partition)
    );
    -- A partition's correlator state as a log: each checkpoint appends its changed records and
    -- waiting responses as chunks (codec.rs); now and then a full snapshot replaces the log.
    CREATE TABLE state_log (
        pid INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        base INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (pid, seq)
    );
    CREATE TABLE month_rows (
        pid INTEGER NOT NULL,
        month TEXT NOT NULL,
        measure TEXT NOT NULL,
        region TEXT NOT NULL,
        requests INTEGER NOT NULL,
        within_target INTEGER NOT NULL,
        succeeded INTEGER NOT NULL,
        no_response INTEGER NOT NULL,
        buckets TEXT NOT NULL,
        histogram BLOB,
        max_ms INTEGER,
        revision INTEGER NOT NULL,
        PRIMARY KEY (pid, month, measure, region)
    ) WITHOUT ROWID;
    CREATE TABLE revisions (
        id INTEGER PRIMARY KEY,
        month TEXT NOT NULL,
        measure TEXT NOT NULL,
        region TEXT NOT NULL,
        origin TEXT NOT NULL,
        revision INTEGER NOT NULL,
        reason TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE TABLE progress (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        combined_watermark INTEGER NOT NULL
    );
    CREATE TABLE config_changes (
        id INTEGER PRIMARY KEY,
        previous TEXT NOT NULL,
        adopted TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE VIEW month_totals AS
        SELECT month, measure, region,
               SUM(requests) AS requests,
               SUM(within_target) AS within_target,
               SUM(succeeded) AS succeeded,
               SUM(no_response) AS no_response,
               SUM(revision) AS revision
        FROM month_rows GROUP BY month, measure, region;
    ",
];

/// A state-log chunk's size: large enough that a checkpoint is a few sequential writes, small
/// enough that no single value strains the page cache.
const LOG_CHUNK_BYTES: usize = 4 << 20;

/// A connection to the SQLite store.
pub struct SqliteStore {
    conn: Connection,
    defs: Definitions,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("SQLite state store: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &str, id: &Identity, defs: &Definitions) -> Result<SqliteStore, StoreError> {
        if path.is_empty() {
            return Err(StoreError::Refused(
                "state.url sqlite:// names no file".into(),
            ));
        }
        let conn = Connection::open(path).map_err(|e| {
            StoreError::Backend(format!("cannot open the SQLite state store {path}: {e}"))
        })?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(backend)?;
        // WAL: readers (rollup, an operator's shell) never block the checkpoints. NORMAL sync:
        // a process crash loses nothing committed; a power cut may lose the last checkpoints,
        // which is safe because offsets and state are lost together and re-read from Kafka.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(backend)?;
        // Checkpoints update records scattered over a large B-tree: a page cache of 256 MB
        // keeps its inner pages in memory (the default 2 MB made every update a read).
        conn.pragma_update(None, "cache_size", -262_144)
            .map_err(backend)?;
        let mut store = SqliteStore {
            conn,
            defs: defs.clone(),
        };
        store.migrate()?;
        store.check(id)?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(backend)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Refused(format!(
                "the state store has schema version {version}, newer than this srv-opr knows \
                 ({SCHEMA_VERSION}): upgrade srv-opr, or point state.url elsewhere"
            )));
        }
        for (v, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).map_err(|e| {
                StoreError::Backend(format!(
                    "migrating the state store to version {}: {e}",
                    v + 1
                ))
            })?;
            tracing::info!(version = v + 1, "state store schema migrated");
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn check(&mut self, id: &Identity) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let get = |key: &str| -> Result<Option<String>, StoreError> {
            tx.query_row("SELECT value FROM store_meta WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)
        };
        let (topics, group, defs) = (get("topics")?, get("group")?, get("definitions")?);
        let action = check_identity(
            id,
            Some(SCHEMA_VERSION),
            topics.as_deref(),
            group.as_deref(),
            defs.as_deref(),
        )?;
        let set = |key: &str, value: &str| {
            tx.execute(
                "INSERT INTO store_meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(backend)
        };
        if action.set_topics
            && let Some(t) = &id.topics
        {
            set("topics", t)?;
        }
        if action.set_group
            && let Some(g) = &id.group
        {
            set("group", g)?;
        }
        if action.set_definitions {
            set("definitions", &id.definitions)?;
        }
        if let Some(previous) = &action.changed_from {
            tx.execute(
                "INSERT INTO config_changes (previous, adopted, at) VALUES (?1, ?2, ?3)",
                params![previous, id.definitions, now().to_rfc3339_exact()],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }
}

fn read_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<(SavedRow, String)> {
    let buckets: String = r.get(first + 4)?;
    let get_u64 = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)? as u64) };
    Ok((
        SavedRow {
            requests: get_u64(first)?,
            within_target: get_u64(first + 1)?,
            succeeded: get_u64(first + 2)?,
            no_response: get_u64(first + 3)?,
            buckets: Vec::new(),
            samples: Vec::new(),
            histogram: r.get(first + 5)?,
            max_ms: r.get::<_, Option<i64>>(first + 6)?.map(|v| v as u64),
            revision: r.get::<_, i64>(first + 7)? as u32,
        },
        buckets,
    ))
}

fn month_of(text: &str) -> Result<Month, StoreError> {
    Month::parse(text)
        .ok_or_else(|| StoreError::Backend(format!("a stored month {text:?} is not YYYY-MM")))
}

fn region_index(text: &str) -> Result<usize, StoreError> {
    Region::parse(text)
        .map(|r| r as usize)
        .ok_or_else(|| StoreError::Backend(format!("a stored region {text:?} is unknown")))
}

fn meta_of(text: Option<String>) -> Result<Option<SavedMeta>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::Backend(format!("a stored partition meta is damaged: {e}")))
    })
    .transpose()
}

impl Store for SqliteStore {
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claim, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO partitions (topic, partition, epoch, owner) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (topic, partition)
             DO UPDATE SET epoch = epoch + 1, owner = excluded.owner",
            params![topic, partition, owner],
        )
        .map_err(backend)?;
        let (pid, epoch, next_offset, max_at, meta, log_bytes): (
            i64,
            i64,
            i64,
            i64,
            Option<String>,
            i64,
        ) = tx
            .query_row(
                "SELECT pid, epoch, next_offset, max_at, meta, log_bytes FROM partitions
                 WHERE topic = ?1 AND partition = ?2",
                params![topic, partition],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .map_err(backend)?;
        let saved = match meta_of(meta)? {
            None => None,
            Some(meta) => {
                let mut log = LogReplay::default();
                {
                    let mut st = tx
                        .prepare("SELECT base, bytes FROM state_log WHERE pid = ?1 ORDER BY seq")
                        .map_err(backend)?;
                    let mut rows = st.query([pid]).map_err(backend)?;
                    while let Some(r) = rows.next().map_err(backend)? {
                        let base: bool = r.get(0).map_err(backend)?;
                        let bytes = r.get_ref(1).map_err(backend)?.as_blob().map_err(|e| {
                            StoreError::Backend(format!("a state-log chunk is not a blob: {e}"))
                        })?;
                        log.apply(bytes, base)?;
                    }
                }
                let super::codec::Replayed {
                    entries,
                    waiting,
                    texts,
                } = log.finish();
                let rows = rows_of(&tx, Some(pid), None)?;
                let blocks = blocks_of(rows, &self.defs)?;
                Some(SavedPartition {
                    next_offset,
                    max_at,
                    log_bytes: log_bytes as u64,
                    pipeline: SavedPipeline {
                        meta,
                        entries,
                        waiting,
                        texts,
                        blocks,
                    },
                })
            }
        };
        tx.commit().map_err(backend)?;
        Ok(Claim { epoch, saved })
    }

    fn checkpoint(&mut self, cp: &Checkpoint<'_>) -> Result<Written, StoreError> {
        let meta = serde_json::to_string(&cp.delta.meta)
            .map_err(|e| StoreError::Backend(format!("cannot encode partition meta: {e}")))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let stamp = now().to_rfc3339_exact();
        let pid: Option<i64> = tx
            .query_row(
                "UPDATE partitions SET next_offset = ?1, max_at = ?2, meta = ?3,
                     checkpoints = checkpoints + 1, checkpointed_at = ?4, watermark = ?8
                 WHERE topic = ?5 AND partition = ?6 AND epoch = ?7 RETURNING pid",
                params![
                    cp.next_offset,
                    cp.max_at,
                    meta,
                    stamp,
                    cp.topic,
                    cp.partition,
                    cp.epoch,
                    cp.delta.meta.watermark
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        let Some(pid) = pid else {
            return Err(StoreError::Fenced {
                topic: cp.topic.to_string(),
                partition: cp.partition,
                held: cp.epoch,
            });
        };
        let changes = &cp.delta.changes;
        let mut written = Written {
            records: changes.entries.len() + changes.removed.len(),
            ..Written::default()
        };
        {
            // The snapshot replaces the log; a delta is appended to it.
            if changes.full {
                tx.execute("DELETE FROM state_log WHERE pid = ?1", [pid])
                    .map_err(backend)?;
            }
            let chunks = encode_changes(changes, LOG_CHUNK_BYTES);
            let empty = !changes.full && chunks.iter().all(|c| c.len() <= 1);
            if !empty {
                let next: i64 = tx
                    .query_row(
                        "SELECT COALESCE(MAX(seq), 0) + 1 FROM state_log WHERE pid = ?1",
                        [pid],
                        |r| r.get(0),
                    )
                    .map_err(backend)?;
                let mut put = tx
                    .prepare_cached(
                        "INSERT INTO state_log (pid, seq, base, bytes) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(backend)?;
                for (i, c) in chunks.iter().enumerate() {
                    put.execute(params![pid, next + i as i64, changes.full && i == 0, c])
                        .map_err(backend)?;
                    written.log_bytes += c.len() as u64;
                }
            }
            tx.execute(
                "UPDATE partitions SET records = ?2, waiting = ?3,
                     log_bytes = CASE WHEN ?4 THEN ?5 ELSE log_bytes + ?5 END
                 WHERE pid = ?1",
                params![
                    pid,
                    cp.delta.records as i64,
                    cp.delta.waiting as i64,
                    changes.full,
                    written.log_bytes as i64
                ],
            )
            .map_err(backend)?;
            let mut old_rev = tx
                .prepare_cached(
                    "SELECT revision FROM month_rows
                     WHERE pid = ?1 AND month = ?2 AND measure = ?3 AND region = ?4",
                )
                .map_err(backend)?;
            let mut row_put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO month_rows (pid, month, measure, region, requests,
                         within_target, succeeded, no_response, buckets, histogram, max_ms,
                         revision)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(backend)?;
            let mut rev_put = tx
                .prepare_cached(
                    "INSERT INTO revisions (month, measure, region, origin, revision, reason,
                         recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(backend)?;
            for w in row_writes(cp.delta, &self.defs)? {
                if w.delete {
                    written.rows += tx
                        .execute(
                            "DELETE FROM month_rows
                             WHERE pid = ?1 AND month = ?2 AND measure = ?3 AND region = ?4",
                            params![pid, w.month, w.measure, w.region],
                        )
                        .map_err(backend)?;
                    continue;
                }
                let row = w.row;
                let before: Option<i64> = old_rev
                    .query_row(params![pid, w.month, w.measure, w.region], |r| r.get(0))
                    .optional()
                    .map_err(backend)?;
                row_put
                    .execute(params![
                        pid,
                        w.month,
                        w.measure,
                        w.region,
                        row.requests as i64,
                        row.within_target as i64,
                        row.succeeded as i64,
                        row.no_response as i64,
                        buckets_text(row),
                        row.histogram.as_deref(),
                        row.max_ms.map(|v| v as i64),
                        row.revision as i64
                    ])
                    .map_err(backend)?;
                written.rows += 1;
                if i64::from(row.revision) > before.unwrap_or(0) {
                    rev_put
                        .execute(params![
                            w.month,
                            w.measure,
                            w.region,
                            format!("{}/{}", cp.topic, cp.partition),
                            row.revision as i64,
                            revision_reason(cp, row),
                            stamp
                        ])
                        .map_err(backend)?;
                    written.revisions += 1;
                }
            }
        }
        // The combined watermark: the minimum over partitions that have seen events (SPEC §2),
        // never going back.
        tx.execute(
            "INSERT INTO progress (id, combined_watermark)
             SELECT 1, MIN(watermark) FROM partitions WHERE watermark > ?1 HAVING COUNT(*) > 0
             ON CONFLICT (id) DO UPDATE
             SET combined_watermark = MAX(combined_watermark, excluded.combined_watermark)",
            [i64::MIN],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(written)
    }

    fn partitions(&mut self) -> Result<Vec<PartitionInfo>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT topic, partition, epoch, owner, next_offset, meta, checkpointed_at
                 FROM partitions ORDER BY topic, partition",
            )
            .map_err(backend)?;
        let mut rows = st.query([]).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(backend)? {
            out.push(PartitionInfo {
                topic: r.get(0).map_err(backend)?,
                partition: r.get(1).map_err(backend)?,
                epoch: r.get(2).map_err(backend)?,
                owner: r.get(3).map_err(backend)?,
                next_offset: r.get(4).map_err(backend)?,
                meta: meta_of(r.get(5).map_err(backend)?)?,
                checkpointed_at: r.get(6).map_err(backend)?,
            });
        }
        Ok(out)
    }

    fn month_rows(&mut self, month: Option<Month>) -> Result<Vec<StoredRow>, StoreError> {
        rows_of(&self.conn, None, month)
    }

    fn combined_watermark(&mut self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT combined_watermark FROM progress WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
    }

    fn revisions(&mut self, month: Option<Month>) -> Result<Vec<RevisionRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT month, measure, region, origin, revision, reason, recorded_at
                 FROM revisions WHERE ?1 IS NULL OR month = ?1 ORDER BY id",
            )
            .map_err(backend)?;
        let mut rows = st.query([month.map(|m| m.to_string())]).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(backend)? {
            let m: String = r.get(0).map_err(backend)?;
            out.push(RevisionRecord {
                month: month_of(&m)?,
                measure: r.get(1).map_err(backend)?,
                region: r.get(2).map_err(backend)?,
                origin: r.get(3).map_err(backend)?,
                revision: r.get::<_, i64>(4).map_err(backend)? as u32,
                reason: r.get(5).map_err(backend)?,
                recorded_at: r.get(6).map_err(backend)?,
            });
        }
        Ok(out)
    }
}

/// Month rows of one partition (or all), of one month (or all).
fn rows_of(
    conn: &Connection,
    pid: Option<i64>,
    month: Option<Month>,
) -> Result<Vec<StoredRow>, StoreError> {
    let mut st = conn
        .prepare(
            "SELECT r.month, r.measure, r.region, r.requests, r.within_target, r.succeeded,
                    r.no_response, r.buckets, r.histogram, r.max_ms, r.revision,
                    p.topic || '/' || p.partition
             FROM month_rows r JOIN partitions p ON p.pid = r.pid
             WHERE (?1 IS NULL OR r.pid = ?1) AND (?2 IS NULL OR r.month = ?2)
             ORDER BY r.pid, r.month, r.measure, r.region",
        )
        .map_err(backend)?;
    let mut rows = st
        .query(params![pid, month.map(|m| m.to_string())])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let m: String = r.get(0).map_err(backend)?;
        let region: String = r.get(2).map_err(backend)?;
        let (mut row, buckets) = read_row(r, 3).map_err(backend)?;
        (row.buckets, row.samples) = buckets_from(&buckets)?;
        out.push(StoredRow {
            origin: r.get(11).map_err(backend)?,
            month: month_of(&m)?,
            measure: r.get(1).map_err(backend)?,
            region: region_index(&region)?,
            row,
        });
    }
    Ok(out)
}
