//! The embedded state store: one SQLite file in WAL mode, for a single instance. An operator can
//! open it with the `sqlite3` shell: `SELECT * FROM month_totals` shows the month aggregates
//! merged over partitions, `revisions` the history of final months. The statements are the
//! ones both backends share (`sql.rs`), read with SQLite's `?N` placeholders.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::api::{Checkpoint, Claim, PartitionInfo, RevisionRecord, Store, StoredRow, Written};
use super::codec::LogReplay;
use super::error::StoreError;
use super::identity::{Identity, SCHEMA_VERSION, check_identity};
use super::rows::RowWrite;
use super::sql::{self, Claimed, PartitionColumns, RevisionColumns, RowColumns, Tx as _};
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
    // 2 → 3: counts per minute of request `at`, so an exemption register can be applied to
    // any month later (cells.rs); and the registers applied to each final month, in order.
    "
    CREATE TABLE minute_cells (
        pid INTEGER NOT NULL,
        month TEXT NOT NULL,
        minute INTEGER NOT NULL,
        cells BLOB NOT NULL,
        PRIMARY KEY (pid, month, minute)
    ) WITHOUT ROWID;
    CREATE TABLE register_history (
        id INTEGER PRIMARY KEY,
        month TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        ids TEXT NOT NULL,
        register TEXT NOT NULL,
        added TEXT NOT NULL,
        withdrawn TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    ",
    // 3 → 4: month sign-offs (signoff.rs), append-only: no row is ever changed or deleted.
    "
    CREATE TABLE signoffs (
        id INTEGER PRIMARY KEY,
        month TEXT NOT NULL,
        view TEXT NOT NULL,
        signed_at TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        document TEXT NOT NULL
    );
    CREATE TRIGGER signoffs_never_changed BEFORE UPDATE ON signoffs
    BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only: sign again to record a new one'); END;
    CREATE TRIGGER signoffs_never_deleted BEFORE DELETE ON signoffs
    BEGIN SELECT RAISE(ABORT, 'sign-offs are append-only: they are never deleted'); END;
    ",
    // 4 → 5: month rows keep the acknowledgement segment and their counts by service user
    // (issue 32); a row written before has neither.
    "
    ALTER TABLE month_rows ADD COLUMN acked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE month_rows ADD COLUMN ack_histogram BLOB;
    ALTER TABLE month_rows ADD COLUMN after_ack_histogram BLOB;
    ALTER TABLE month_rows ADD COLUMN users TEXT;
    ",
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
    /// The file, for every error (a malformed or foreign file must be named).
    path: String,
    /// The file's schema version: this build's for a writer (it migrates), possibly older for
    /// a reader (which never changes the file).
    version: i64,
}

/// What SQLite said, with what to do when the file itself is the problem. The store's path is
/// added by [`SqliteStore::named`], which every operation's error passes through.
fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    let damaged = matches!(e.sqlite_error_code(), Some(DatabaseCorrupt | NotADatabase));
    if damaged {
        StoreError::Backend(format!(
            "{e} (the file is damaged or is not a state store: restore it from a backup, or \
             move it away and let `run` rebuild the state from Kafka's retention)"
        ))
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// The tables every srv-opr SQLite store has (schema version 1 onwards).
const TABLES: &[&str] = &[
    "store_meta",
    "partitions",
    "state_log",
    "month_rows",
    "revisions",
    "progress",
];

/// `path` as an SQLite `file:` URI with `query` (`immutable=1`): the characters a URI gives a
/// meaning to are escaped.
fn file_uri(path: &str, query: &str) -> String {
    let mut uri = String::from("file:");
    for b in path.bytes() {
        match b {
            b'%' | b'?' | b'#' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(b as char),
        }
    }
    uri.push('?');
    uri.push_str(query);
    uri
}

/// A shared statement with SQLite's placeholders (`$1` → `?1`: the same numbered parameter).
fn q(statement: &str) -> String {
    statement.replace('$', "?")
}

impl SqliteStore {
    /// Opens the store at `path`: a writer (`run`) creates and migrates it as needed; a reader
    /// ([`Identity::read_only`]) opens it read-only and never changes it.
    pub fn open(path: &str, id: &Identity, defs: &Definitions) -> Result<SqliteStore, StoreError> {
        if path.is_empty() {
            return Err(StoreError::Refused(
                "state.url sqlite:// names no file".into(),
            ));
        }
        let opened = if id.read_only {
            SqliteStore::open_reader(path, id, defs)
        } else {
            SqliteStore::open_writer(path, id, defs)
        };
        opened.map_err(|e| named(path, e))
    }

    fn open_writer(
        path: &str,
        id: &Identity,
        defs: &Definitions,
    ) -> Result<SqliteStore, StoreError> {
        if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            // SQLite takes an empty file for an empty database; it may be a store truncated by
            // accident, whose partitions will now be read again from Kafka's retention.
            tracing::warn!(
                path,
                "the state store file is empty (0 bytes): starting a new store in it, every \
                 partition from the beginning of what Kafka retains"
            );
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Backend(format!("cannot open it: {e}")))?;
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
            path: path.to_string(),
            version: SCHEMA_VERSION,
        };
        store.migrate()?;
        store.check(id)?;
        Ok(store)
    }

    /// A reader's connection: read-only, so a store on a read-only disk, an immutable file or
    /// one `run` is writing can be read, and reading never changes it (no migration, no
    /// identity written, no lock taken beyond SQLite's shared one). A missing, empty or foreign
    /// file is refused for what it is; an older schema is read as it is.
    fn open_reader(
        path: &str,
        id: &Identity,
        defs: &Definitions,
    ) -> Result<SqliteStore, StoreError> {
        use rusqlite::OpenFlags;
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                StoreError::Absent("it does not exist (has `run` checkpointed yet?)".into())
            }
            _ => StoreError::Backend(format!("cannot read it: {e}")),
        })?;
        if !meta.is_file() {
            return Err(StoreError::Refused("it is not a file".into()));
        }
        if meta.len() == 0 {
            return Err(StoreError::Absent(
                "it is empty (0 bytes), so it is not a state store: `run` has not checkpointed \
                 into it yet, or it was truncated"
                    .into(),
            ));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let read = |uri: &str| -> Result<(Connection, i64), rusqlite::Error> {
            let conn = Connection::open_with_flags(uri, flags)?;
            conn.busy_timeout(Duration::from_secs(30))?;
            let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok((conn, version))
        };
        let (conn, version) = match read(&file_uri(path, "mode=ro")) {
            Ok(x) => x,
            // A WAL file's readers need its shared-memory file, which a read-only directory
            // cannot hold: such a store is read as immutable (nobody can be writing it there).
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
                read(&file_uri(path, "immutable=1")).map_err(backend)?
            }
            Err(e) => return Err(backend(e)),
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::Refused(format!(
                "it has schema version {version}, newer than this srv-opr knows \
                 ({SCHEMA_VERSION}): upgrade srv-opr"
            )));
        }
        let mut missing = Vec::new();
        for t in TABLES {
            let there: bool = conn
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                    [t],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if !there {
                missing.push(*t);
            }
        }
        if missing.len() == TABLES.len() {
            return Err(StoreError::Refused(
                "it is an SQLite database but not an srv-opr state store (none of its tables)"
                    .into(),
            ));
        }
        if !missing.is_empty() || version == 0 {
            return Err(StoreError::Refused(format!(
                "it is not a whole srv-opr state store (schema version {version}; no table {}): \
                 damaged, or made by something else",
                missing.join(", no table ")
            )));
        }
        let mut store = SqliteStore {
            conn,
            defs: defs.clone(),
            path: path.to_string(),
            version,
        };
        let mut t = Tx(&store.conn);
        let (topics, group, stored) = (t.meta("topics")?, t.meta("group")?, t.meta("definitions")?);
        check_identity(
            id,
            Some(version),
            topics.as_deref(),
            group.as_deref(),
            stored.as_deref(),
        )?;
        store.version = version;
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
            // A new store is made by running every migration: one line says so, not five.
            if version > 0 {
                tracing::info!(version = v + 1, "state store schema migrated");
            }
        }
        if version == 0 {
            tracing::info!(schema = SCHEMA_VERSION, "state store created");
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

    /// `r` with this store's file named in its error.
    fn named<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        r.map_err(|e| named(&self.path, e))
    }
}

/// `e` with the store's file named: a malformed, foreign or unreadable file must say which.
fn named(path: &str, e: StoreError) -> StoreError {
    let at = |m: String| format!("SQLite state store {path}: {m}");
    match e {
        StoreError::Refused(m) => StoreError::Refused(at(m)),
        StoreError::Backend(m) => StoreError::Backend(at(m)),
        StoreError::Unavailable(m) => StoreError::Unavailable(at(m)),
        StoreError::Absent(m) => StoreError::Absent(at(m)),
        StoreError::Impossible(m) => StoreError::Impossible(at(m)),
        other @ (StoreError::Fenced { .. } | StoreError::Damaged(_) | StoreError::Secret(_)) => {
            other
        }
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
        rows_of(self.0, SCHEMA_VERSION, Some(pid), None)
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
                    days,
                    row.acked as i64,
                    row.ack_histogram.as_deref(),
                    row.after_ack_histogram.as_deref(),
                    sql::users_text(row)
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

    fn get_cells(
        &mut self,
        pid: i64,
        month: &str,
        minute: i32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.0
            .prepare_cached(&q(sql::GET_CELLS))
            .and_then(|mut st| {
                st.query_row(params![pid, month, minute], |r| r.get(0))
                    .optional()
            })
            .map_err(backend)
    }

    fn put_cells(
        &mut self,
        pid: i64,
        month: &str,
        minute: i32,
        blob: &[u8],
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(&q(sql::PUT_CELLS))
            .and_then(|mut st| st.execute(params![pid, month, minute, blob]))
            .map(|_| ())
            .map_err(backend)
    }

    fn delete_cells(&mut self, pid: i64, month: &str, minute: i32) -> Result<(), StoreError> {
        self.0
            .prepare_cached(&q(sql::DELETE_CELLS))
            .and_then(|mut st| st.execute(params![pid, month, minute]))
            .map(|_| ())
            .map_err(backend)
    }
    fn month_texts(&mut self) -> Result<Vec<String>, StoreError> {
        let mut st = self.0.prepare(sql::MONTHS).map_err(backend)?;
        st.query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(backend)
    }

    fn combined(&mut self) -> Result<Option<i64>, StoreError> {
        self.0
            .query_row(sql::COMBINED_WATERMARK, [], |r| r.get(0))
            .optional()
            .map_err(backend)
    }

    fn latest_register(&mut self, month: &str) -> Result<Option<(String, String)>, StoreError> {
        self.0
            .query_row(&q(sql::LATEST_REGISTER), [month], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(backend)
    }

    fn put_register(
        &mut self,
        month: &str,
        sha256: &str,
        ids: &str,
        register: &str,
        added: &str,
        withdrawn: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.0
            .execute(
                &q(sql::PUT_REGISTER),
                params![month, sha256, ids, register, added, withdrawn, at],
            )
            .map(|_| ())
            .map_err(backend)
    }
}

impl Store for SqliteStore {
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claim, StoreError> {
        let claimed = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let claim = sql::claim(&mut Tx(&tx), topic, partition, owner, &self.defs)?;
            tx.commit().map_err(backend)?;
            Ok(claim)
        })();
        self.named(claimed)
    }

    fn checkpoint(&mut self, cp: &Checkpoint<'_>) -> Result<Written, StoreError> {
        let written = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let written = sql::checkpoint(&mut Tx(&tx), cp, &self.defs, LOG_CHUNK_BYTES)?;
            tx.commit().map_err(backend)?;
            Ok(written)
        })();
        self.named(written)
    }

    fn partitions(&mut self) -> Result<Vec<PartitionInfo>, StoreError> {
        let read = self.read_partitions();
        self.named(read)
    }

    fn month_rows(&mut self, month: Option<Month>) -> Result<Vec<StoredRow>, StoreError> {
        let read = rows_of(&self.conn, self.version, None, month);
        self.named(read)
    }

    fn combined_watermark(&mut self) -> Result<Option<i64>, StoreError> {
        let read = self
            .conn
            .query_row(sql::COMBINED_WATERMARK, [], |r| r.get(0))
            .optional()
            .map_err(backend);
        self.named(read)
    }

    fn revisions(&mut self, month: Option<Month>) -> Result<Vec<RevisionRecord>, StoreError> {
        let read = self.read_revisions(month);
        self.named(read)
    }

    fn cells(
        &mut self,
        month: Month,
        minutes: (u16, u16),
        partition: Option<(&str, i32)>,
    ) -> Result<Vec<crate::engine::aggregate::SavedCell>, StoreError> {
        if self.version < 3 {
            return Ok(Vec::new());
        }
        let read = (|| {
            let mut st = self.conn.prepare(&q(sql::CELLS)).map_err(backend)?;
            let rows = st
                .query_map(
                    params![
                        month.to_string(),
                        minutes.0,
                        minutes.1,
                        partition.map(|p| p.0),
                        partition.map(|p| p.1)
                    ],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Vec<u8>>(2)?,
                        ))
                    },
                )
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(backend)?;
            sql::read_cells(month, rows)
        })();
        self.named(read)
    }

    fn record_register(
        &mut self,
        stamp: &super::api::RegisterStamp,
        final_at: &dyn Fn(Month) -> i64,
    ) -> Result<Vec<Month>, StoreError> {
        if self.version < 3 {
            return Ok(Vec::new());
        }
        let recorded = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let recorded = sql::record_register(&mut Tx(&tx), stamp, final_at)?;
            tx.commit().map_err(backend)?;
            Ok(recorded)
        })();
        self.named(recorded)
    }

    fn register_history(
        &mut self,
        month: Month,
    ) -> Result<Vec<super::api::RegisterRecord>, StoreError> {
        if self.version < 3 {
            return Ok(Vec::new());
        }
        let read = (|| {
            let mut st = self
                .conn
                .prepare(&q(sql::REGISTER_HISTORY))
                .map_err(backend)?;
            let rows = st
                .query_map([month.to_string()], |r| {
                    Ok(sql::RegisterColumns {
                        month: r.get(0)?,
                        sha256: r.get(1)?,
                        ids: r.get(2)?,
                        register: r.get(3)?,
                        added: r.get(4)?,
                        withdrawn: r.get(5)?,
                        recorded_at: r.get(6)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(backend)?;
            rows.into_iter().map(sql::RegisterColumns::record).collect()
        })();
        self.named(read)
    }

    fn sign_off(&mut self, s: &super::signoff::SignOff) -> Result<i64, StoreError> {
        use super::signoff::{PUT_SIGNOFF, SIGNOFF_ID};
        if self.version < 4 {
            return Err(super::signoff::too_old(self.version));
        }
        let written = (|| {
            let month = s.month.map(|m| m.to_string()).unwrap_or_default();
            let token = s.token()?;
            self.conn
                .execute(
                    &q(PUT_SIGNOFF),
                    params![month, s.view, s.signed_at, token, s.document()?],
                )
                .map_err(backend)?;
            self.conn
                .query_row(&q(SIGNOFF_ID), [token], |r| r.get::<_, i64>(0))
                .map_err(backend)
        })();
        self.named(written)
    }

    fn signoffs(
        &mut self,
        month: Option<Month>,
    ) -> Result<Vec<super::signoff::SignOff>, StoreError> {
        if self.version < 4 {
            return Ok(Vec::new());
        }
        let read = (|| {
            let mut st = self
                .conn
                .prepare(&q(super::signoff::SIGNOFFS))
                .map_err(backend)?;
            let rows = st
                .query_map([month.map(|m| m.to_string())], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(backend)?;
            rows.into_iter()
                .map(|(id, m, view, doc)| super::signoff::SignOff::of_row(id, &m, view, &doc))
                .collect()
        })();
        self.named(read)
    }

    fn revision_mark(&mut self) -> Result<i64, StoreError> {
        let read = self
            .conn
            .query_row(super::signoff::REVISION_MARK, [], |r| r.get::<_, i64>(0))
            .map_err(backend);
        self.named(read)
    }

    fn months(&mut self) -> Result<Vec<Month>, StoreError> {
        let read = (|| {
            let mut st = self.conn.prepare(sql::MONTHS).map_err(backend)?;
            let texts = st
                .query_map([], |r| r.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(backend)?;
            sql::months_of(texts)
        })();
        self.named(read)
    }
}

impl SqliteStore {
    fn read_partitions(&mut self) -> Result<Vec<PartitionInfo>, StoreError> {
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

    fn read_revisions(&mut self, month: Option<Month>) -> Result<Vec<RevisionRecord>, StoreError> {
        let mut st = self.conn.prepare(&q(sql::REVISIONS)).map_err(backend)?;
        let mut rows = st.query([month.map(|m| m.to_string())]).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(backend)? {
            let c = (|| {
                Ok(RevisionColumns {
                    id: r.get(7)?,
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

/// Month rows of one partition (or all), of one month (or all), from a store of schema
/// `version`.
fn rows_of(
    conn: &Connection,
    version: i64,
    pid: Option<i64>,
    month: Option<Month>,
) -> Result<Vec<StoredRow>, StoreError> {
    let mut st = conn
        .prepare(&q(sql::month_rows(version)))
        .map_err(backend)?;
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
                acked: r.get(13)?,
                ack_histogram: r.get(14)?,
                after_ack_histogram: r.get(15)?,
                users: r.get(16)?,
            })
        })()
        .map_err(backend)?;
        out.push(c.stored()?);
    }
    Ok(out)
}
