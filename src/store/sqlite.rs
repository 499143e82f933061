//! The embedded state store: one SQLite file in WAL mode, for a single instance. An operator can
//! open it with the `sqlite3` shell: `SELECT * FROM month_totals` shows the month aggregates
//! merged over partitions, `revisions` the history of final months. The statements are the
//! ones both backends share (`sql.rs`), read with SQLite's `?N` placeholders.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::codec::LogReplay;
use super::sql::{self, Claimed, PartitionColumns, RevisionColumns, RowColumns, Tx as _};
use super::{
    Checkpoint, Claim, Identity, PartitionInfo, RevisionRecord, RowWrite, SCHEMA_VERSION, Store,
    StoreError, StoredRow, Written, check_identity,
};
use crate::engine::calendar::Month;
use crate::engine::definitions::Definitions;

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
    // 1 → 2: month rows keep their counts by day of the month, for the status page's RPL by
    // day (a row written before has none: NULL).
    "ALTER TABLE month_rows ADD COLUMN days TEXT;",
];

/// A state-log chunk's size: large enough that a checkpoint is a few sequential writes, small
/// enough that no single value strains the page cache.
const LOG_CHUNK_BYTES: usize = 4 << 20;

/// The combined watermark, never lowered (SQLite's two-argument `MAX`; PostgreSQL's is
/// `GREATEST`).
const RAISE_COMBINED_WATERMARK: &str = "
    INSERT INTO progress (id, combined_watermark)
    SELECT 1, MIN(watermark) FROM partitions WHERE watermark > ?1 HAVING COUNT(*) > 0
    ON CONFLICT (id) DO UPDATE
    SET combined_watermark = MAX(combined_watermark, excluded.combined_watermark)";

/// A connection to the SQLite store.
pub struct SqliteStore {
    conn: Connection,
    defs: Definitions,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("SQLite state store: {e}"))
}

/// A shared statement with SQLite's placeholders (`$1` → `?1`: the same numbered parameter).
fn q(statement: &str) -> String {
    statement.replace('$', "?")
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
        // 64 KiB pages (for a new file; an existing one keeps its own): a checkpoint's state
        // log is megabytes of blobs, written page by page, once to the write-ahead log and once
        // into the file. With SQLite's 4 KiB default that was 800,000 writes for two days of
        // national traffic, more than the worker's encoding of them (BENCHMARKS.md).
        conn.pragma_update(None, "page_size", 65_536)
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
        let mut t = Tx(&tx);
        let (topics, group, defs) = (t.meta("topics")?, t.meta("group")?, t.meta("definitions")?);
        let action = check_identity(
            id,
            Some(SCHEMA_VERSION),
            topics.as_deref(),
            group.as_deref(),
            defs.as_deref(),
        )?;
        sql::apply_identity(&mut t, id, &action)?;
        tx.commit().map_err(backend)
    }
}

/// One SQLite transaction (or the connection itself, for reads), as the shared logic drives it.
struct Tx<'a>(&'a Connection);

impl sql::Tx for Tx<'_> {
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claimed, StoreError> {
        self.0
            .query_row(&q(sql::CLAIM), params![topic, partition, owner], |r| {
                Ok(Claimed {
                    pid: r.get(0)?,
                    epoch: r.get(1)?,
                    next_offset: r.get(2)?,
                    max_at: r.get(3)?,
                    meta: r.get(4)?,
                    log_bytes: r.get(5)?,
                })
            })
            .map_err(backend)
    }

    fn replay_log(&mut self, pid: i64, log: &mut LogReplay) -> Result<(), StoreError> {
        let mut st = self.0.prepare(&q(sql::STATE_LOG)).map_err(backend)?;
        let mut rows = st.query([pid]).map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let base: bool = r.get(0).map_err(backend)?;
            let bytes = r.get_ref(1).map_err(backend)?.as_blob().map_err(|e| {
                StoreError::Backend(format!("a state-log chunk is not a blob: {e}"))
            })?;
            log.apply(bytes, base)?;
        }
        Ok(())
    }

    fn rows(&mut self, pid: i64) -> Result<Vec<StoredRow>, StoreError> {
        rows_of(self.0, Some(pid), None)
    }

    fn checkpoint_partition(
        &mut self,
        cp: &Checkpoint<'_>,
        meta: &str,
        stamp: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.0
            .query_row(
                &q(sql::CHECKPOINT_PARTITION),
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
            .map_err(backend)
    }

    fn clear_log(&mut self, pid: i64) -> Result<(), StoreError> {
        self.0
            .execute(&q(sql::CLEAR_LOG), [pid])
            .map(|_| ())
            .map_err(backend)
    }

    fn append_log(&mut self, pid: i64, full: bool, chunks: &[Vec<u8>]) -> Result<(), StoreError> {
        let next: i64 = self
            .0
            .query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM state_log WHERE pid = ?1",
                [pid],
                |r| r.get(0),
            )
            .map_err(backend)?;
        let mut put = self
            .0
            .prepare_cached("INSERT INTO state_log (pid, seq, base, bytes) VALUES (?1, ?2, ?3, ?4)")
            .map_err(backend)?;
        for (i, c) in chunks.iter().enumerate() {
            put.execute(params![pid, next + i as i64, full && i == 0, c])
                .map_err(backend)?;
        }
        Ok(())
    }

    fn set_counts(
        &mut self,
        pid: i64,
        records: i64,
        waiting: i64,
        full: bool,
        log_bytes: i64,
    ) -> Result<(), StoreError> {
        self.0
            .execute(
                &q(sql::SET_COUNTS),
                params![pid, records, waiting, full, log_bytes],
            )
            .map(|_| ())
            .map_err(backend)
    }

    fn row_revision(&mut self, pid: i64, w: &RowWrite<'_>) -> Result<Option<i64>, StoreError> {
        self.0
            .prepare_cached(&q(sql::ROW_REVISION))
            .and_then(|mut st| {
                st.query_row(params![pid, w.month, w.measure, w.region], |r| r.get(0))
                    .optional()
            })
            .map_err(backend)
    }

    fn delete_row(&mut self, pid: i64, w: &RowWrite<'_>) -> Result<usize, StoreError> {
        self.0
            .execute(
                &q(sql::DELETE_ROW),
                params![pid, w.month, w.measure, w.region],
            )
            .map_err(backend)
    }

    fn put_row(
        &mut self,
        pid: i64,
        w: &RowWrite<'_>,
        buckets: &str,
        days: &str,
    ) -> Result<(), StoreError> {
        let row = w.row;
        self.0
            .prepare_cached(&q(sql::PUT_ROW))
            .and_then(|mut st| {
                st.execute(params![
                    pid,
                    w.month,
                    w.measure,
                    w.region,
                    row.requests as i64,
                    row.within_target as i64,
                    row.succeeded as i64,
                    row.no_response as i64,
                    buckets,
                    row.histogram.as_deref(),
                    row.max_ms.map(|v| v as i64),
                    row.revision as i64,
                    days
                ])
            })
            .map(|_| ())
            .map_err(backend)
    }

    fn put_revision(
        &mut self,
        w: &RowWrite<'_>,
        origin: &str,
        reason: &str,
        stamp: &str,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(&q(sql::PUT_REVISION))
            .and_then(|mut st| {
                st.execute(params![
                    w.month,
                    w.measure,
                    w.region,
                    origin,
                    w.row.revision as i64,
                    reason,
                    stamp
                ])
            })
            .map(|_| ())
            .map_err(backend)
    }

    fn raise_combined_watermark(&mut self) -> Result<(), StoreError> {
        self.0
            .execute(RAISE_COMBINED_WATERMARK, [i64::MIN])
            .map(|_| ())
            .map_err(backend)
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        self.0
            .query_row(&q(sql::META_GET), [key], |r| r.get(0))
            .optional()
            .map_err(backend)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0
            .execute(&q(sql::META_SET), [key, value])
            .map(|_| ())
            .map_err(backend)
    }

    fn config_change(&mut self, previous: &str, adopted: &str, at: &str) -> Result<(), StoreError> {
        self.0
            .execute(&q(sql::CONFIG_CHANGE), params![previous, adopted, at])
            .map(|_| ())
            .map_err(backend)
    }
}

impl Store for SqliteStore {
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claim, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let claim = sql::claim(&mut Tx(&tx), topic, partition, owner, &self.defs)?;
        tx.commit().map_err(backend)?;
        Ok(claim)
    }

    fn checkpoint(&mut self, cp: &Checkpoint<'_>) -> Result<Written, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let written = sql::checkpoint(&mut Tx(&tx), cp, &self.defs, LOG_CHUNK_BYTES)?;
        tx.commit().map_err(backend)?;
        Ok(written)
    }

    fn partitions(&mut self) -> Result<Vec<PartitionInfo>, StoreError> {
        let mut st = self.conn.prepare(&q(sql::PARTITIONS)).map_err(backend)?;
        let mut rows = st.query([]).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(backend)? {
            let c = (|| {
                Ok(PartitionColumns {
                    topic: r.get(0)?,
                    partition: r.get(1)?,
                    epoch: r.get(2)?,
                    owner: r.get(3)?,
                    next_offset: r.get(4)?,
                    meta: r.get(5)?,
                    checkpointed_at: r.get(6)?,
                })
            })()
            .map_err(backend)?;
            out.push(c.info()?);
        }
        Ok(out)
    }

    fn month_rows(&mut self, month: Option<Month>) -> Result<Vec<StoredRow>, StoreError> {
        rows_of(&self.conn, None, month)
    }

    fn combined_watermark(&mut self) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(sql::COMBINED_WATERMARK, [], |r| r.get(0))
            .optional()
            .map_err(backend)
    }

    fn revisions(&mut self, month: Option<Month>) -> Result<Vec<RevisionRecord>, StoreError> {
        let mut st = self.conn.prepare(&q(sql::REVISIONS)).map_err(backend)?;
        let mut rows = st.query([month.map(|m| m.to_string())]).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(backend)? {
            let c = (|| {
                Ok(RevisionColumns {
                    month: r.get(0)?,
                    measure: r.get(1)?,
                    region: r.get(2)?,
                    origin: r.get(3)?,
                    revision: r.get(4)?,
                    reason: r.get(5)?,
                    recorded_at: r.get(6)?,
                })
            })()
            .map_err(backend)?;
            out.push(c.record()?);
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
    let mut st = conn.prepare(&q(sql::MONTH_ROWS)).map_err(backend)?;
    let mut rows = st
        .query(params![pid, month.map(|m| m.to_string())])
        .map_err(backend)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(backend)? {
        let c = (|| {
            Ok(RowColumns {
                month: r.get(0)?,
                measure: r.get(1)?,
                region: r.get(2)?,
                requests: r.get(3)?,
                within_target: r.get(4)?,
                succeeded: r.get(5)?,
                no_response: r.get(6)?,
                buckets: r.get(7)?,
                histogram: r.get(8)?,
                max_ms: r.get(9)?,
                revision: r.get(10)?,
                days: r.get(11)?,
                origin: r.get(12)?,
            })
        })()
        .map_err(backend)?;
        out.push(c.stored()?);
    }
    Ok(out)
}
