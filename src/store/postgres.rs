//! The shared state store: PostgreSQL, for a consumer group spread over machines. Every instance
//! checkpoints its partitions into it and whoever is assigned a partition restores it from
//! there. A checkpoint is one transaction of a few statements whatever its size: the state log
//! goes in as arrays (`unnest`), not chunk by chunk, so the cost does not grow with round
//! trips. The other statements are the ones both backends share (`sql.rs`).
//!
//! A lost connection (a database restart, a failover) is ridden through: the operation is
//! retried whole on new connections for `state.reconnect_timeout` ([`PgStore::riding_through`]).

use std::time::{Duration, Instant};

use postgres::Client;

use super::pgtls::PgTls;

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
        pid BIGSERIAL PRIMARY KEY,
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        epoch BIGINT NOT NULL,
        owner TEXT NOT NULL,
        next_offset BIGINT NOT NULL DEFAULT 0,
        max_at BIGINT NOT NULL DEFAULT -9223372036854775808,
        watermark BIGINT NOT NULL DEFAULT -9223372036854775808,
        meta TEXT,
        records BIGINT NOT NULL DEFAULT 0,
        waiting BIGINT NOT NULL DEFAULT 0,
        log_bytes BIGINT NOT NULL DEFAULT 0,
        checkpoints BIGINT NOT NULL DEFAULT 0,
        checkpointed_at TEXT,
        UNIQUE (topic, partition)
    );
    -- A partition's correlator state as a log: each checkpoint appends its changed records and
    -- waiting responses as chunks (codec.rs); now and then a full snapshot replaces the log.
    CREATE TABLE state_log (
        pid BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        base BOOLEAN NOT NULL,
        bytes BYTEA NOT NULL,
        PRIMARY KEY (pid, seq)
    );
    -- Stored out of line without compression: pglz on megabytes of random keys gains little
    -- and made a snapshot five times slower.
    ALTER TABLE state_log ALTER COLUMN bytes SET STORAGE EXTERNAL;
    CREATE TABLE month_rows (
        pid BIGINT NOT NULL,
        month TEXT NOT NULL,
        measure TEXT NOT NULL,
        region TEXT NOT NULL,
        requests BIGINT NOT NULL,
        within_target BIGINT NOT NULL,
        succeeded BIGINT NOT NULL,
        no_response BIGINT NOT NULL,
        buckets TEXT NOT NULL,
        histogram BYTEA,
        max_ms BIGINT,
        revision BIGINT NOT NULL,
        PRIMARY KEY (pid, month, measure, region)
    );
    CREATE TABLE revisions (
        id BIGSERIAL PRIMARY KEY,
        month TEXT NOT NULL,
        measure TEXT NOT NULL,
        region TEXT NOT NULL,
        origin TEXT NOT NULL,
        revision BIGINT NOT NULL,
        reason TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE TABLE progress (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        combined_watermark BIGINT NOT NULL
    );
    CREATE TABLE config_changes (
        id BIGSERIAL PRIMARY KEY,
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
        pid BIGINT NOT NULL,
        month TEXT NOT NULL,
        minute INTEGER NOT NULL,
        cells BYTEA NOT NULL,
        PRIMARY KEY (pid, month, minute)
    );
    CREATE TABLE register_history (
        id BIGSERIAL PRIMARY KEY,
        month TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        ids TEXT NOT NULL,
        register TEXT NOT NULL,
        added TEXT NOT NULL,
        withdrawn TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    ",
    // 3 → 4: month sign-offs (signoff.rs), append-only: no row is ever changed or deleted,
    // nor the table truncated.
    "
    CREATE TABLE signoffs (
        id BIGSERIAL PRIMARY KEY,
        month TEXT NOT NULL,
        view TEXT NOT NULL,
        signed_at TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        document TEXT NOT NULL
    );
    CREATE FUNCTION srv_opr_signoffs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'sign-offs are append-only: sign again to record a new one';
    END $$;
    CREATE TRIGGER signoffs_never_changed BEFORE UPDATE OR DELETE ON signoffs
        FOR EACH ROW EXECUTE FUNCTION srv_opr_signoffs_append_only();
    CREATE TRIGGER signoffs_never_truncated BEFORE TRUNCATE ON signoffs
        FOR EACH STATEMENT EXECUTE FUNCTION srv_opr_signoffs_append_only();
    ",
    // 4 → 5: month rows keep the acknowledgement segment and their counts by service user
    // (issue 32); a row written before has neither.
    "
    ALTER TABLE month_rows ADD COLUMN acked BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE month_rows ADD COLUMN ack_histogram BYTEA;
    ALTER TABLE month_rows ADD COLUMN after_ack_histogram BYTEA;
    ALTER TABLE month_rows ADD COLUMN users TEXT;
    ",
];

/// A state-log chunk's size: a checkpoint is a few values, none of them huge.
const LOG_CHUNK_BYTES: usize = 4 << 20;

/// Serialises migrations and identity checks of instances starting together.
const LOCK_KEY: i64 = 0x0073_7276_2d6f_7072; // "srv-opr" in ASCII

/// The state log's chunks in one statement, numbered after the partition's last.
const APPEND_LOG: &str = "
    INSERT INTO state_log (pid, seq, base, bytes)
    SELECT $1, n.next + t.i, t.b, t.c
    FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM state_log WHERE pid = $1) n,
         unnest($2::BIGINT[], $3::BOOL[], $4::BYTEA[]) AS t(i, b, c)";

/// The combined watermark, never lowered (`GREATEST`; SQLite's is a two-argument `MAX`).
const RAISE_COMBINED_WATERMARK: &str = "
    INSERT INTO progress (id, combined_watermark)
    SELECT 1, MIN(watermark) FROM partitions WHERE watermark > $1 HAVING COUNT(*) > 0
    ON CONFLICT (id) DO UPDATE SET combined_watermark =
        GREATEST(progress.combined_watermark, excluded.combined_watermark)";

/// A connection to the PostgreSQL store.
pub struct PgStore {
    client: Client,
    defs: Definitions,
    /// What a new connection needs: the parsed URL (with the password; never printed) and TLS.
    config: postgres::Config,
    tls: PgTls,
    /// How long an operation whose connection was lost is retried (zero: it is not).
    ride_through: Duration,
    /// New connections made in place of lost ones.
    reconnects: u64,
    /// The schema version: this build's for a writer (it migrates), possibly older for a
    /// reader (which never changes the database).
    version: i64,
}

/// Whether an error means the connection is gone, or the server cannot serve for now (shutting
/// down, starting, in recovery), rather than a refusal of the statement: worth a new connection.
fn lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Connection exceptions (08…), administrator, crash and startup shutdowns (57P0x), and
        // a transaction the server aborted to resolve a conflict (40001, 40P01).
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c.starts_with("57P0") || c == "40001" || c == "40P01"
        }
        // No SQLSTATE: the socket itself failed (reset, refused, timed out).
        None => std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

fn backend(e: postgres::Error) -> StoreError {
    let text = format!("PostgreSQL state store: {}", crate::diagnostic::chain(&e));
    if lost(&e) {
        StoreError::Unavailable(text)
    } else {
        StoreError::Backend(text)
    }
}

/// The longest wait between two attempts to reach the database again.
const RETRY_CEILING: Duration = Duration::from_secs(5);

/// How often a store still unreachable says so again.
const STILL_UNREACHABLE_EVERY: Duration = Duration::from_secs(30);

impl PgStore {
    /// Connects to `url` (the password, if any, apart) and prepares the schema; TLS as the
    /// URL says, else `verify-full` ([`PgTls`]).
    pub fn open(
        url: &str,
        password: Option<&str>,
        id: &Identity,
        defs: &Definitions,
    ) -> Result<PgStore, StoreError> {
        PgStore::open_tls(url, password, &PgTls::default(), id, defs)
    }

    /// [`PgStore::open`], with `tls` where the URL does not say. The first connection is not
    /// retried: a wrong address or password fails at once.
    pub(crate) fn open_tls(
        url: &str,
        password: Option<&str>,
        tls: &PgTls,
        id: &Identity,
        defs: &Definitions,
    ) -> Result<PgStore, StoreError> {
        let (bare, tls) = PgTls::split(url, tls)?;
        let mut config: postgres::Config = bare.parse().map_err(|e| {
            StoreError::Refused(format!(
                "state.url {} is not a PostgreSQL URL: {e}",
                crate::config::secrets::mask_url(url)
            ))
        })?;
        if let Some(pw) = password {
            config.password(pw);
        }
        config.application_name("srv-opr");
        if id.read_only {
            // Every transaction of a reader's sessions (reconnections too) is read-only: reading
            // never changes the store, even by mistake.
            let options = match config.get_options() {
                Some(o) if !o.trim().is_empty() => {
                    format!("{o} -c default_transaction_read_only=on")
                }
                _ => "-c default_transaction_read_only=on".to_string(),
            };
            config.options(&options);
        }
        let client = tls.connect(&mut config.clone()).map_err(|e| {
            StoreError::Backend(format!(
                "cannot connect to the PostgreSQL state store {} ({}): {}",
                crate::config::secrets::mask_url(&bare),
                tls.describe(),
                crate::diagnostic::chain(&e)
            ))
        })?;
        let mut store = PgStore {
            client,
            defs: defs.clone(),
            config,
            tls,
            ride_through: Duration::ZERO,
            reconnects: 0,
            version: SCHEMA_VERSION,
        };
        if id.read_only {
            store.inspect(id)?;
        } else {
            store.prepare(id)?;
        }
        Ok(store)
    }

    /// Rides through a lost connection: an operation that fails because the connection went
    /// (or the server is restarting) is retried whole on new connections, backing off to one try
    /// every 5 s, for up to `timeout`. Retrying whole is safe: a checkpoint whose commit was
    /// lost with the connection writes the same values again (the state log's records are
    /// replaced, not added to; a month row's revision is recorded only when it rises), and a
    /// claim raises the epoch once more.
    pub fn riding_through(mut self, timeout: Duration) -> PgStore {
        self.ride_through = timeout;
        self
    }

    /// Runs `op` (one transaction, or one read), again on a new connection while the failure
    /// is a lost connection and `ride_through` has not passed.
    fn retrying<T>(
        &mut self,
        what: &str,
        mut op: impl FnMut(&mut Client, &Definitions) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        let mut attempts = 0u32;
        let mut said = started;
        loop {
            let result = if attempts > 0 || self.client.is_closed() {
                self.reconnect()
                    .and_then(|()| op(&mut self.client, &self.defs))
            } else {
                op(&mut self.client, &self.defs)
            };
            let why = match result {
                Err(StoreError::Unavailable(why)) => why,
                other => {
                    if other.is_ok() {
                        super::reach::answered();
                    }
                    if attempts > 0 && other.is_ok() {
                        tracing::info!(
                            what,
                            attempts,
                            waited_ms = started.elapsed().as_millis() as u64,
                            "PostgreSQL state store reachable again: carrying on"
                        );
                    }
                    return other;
                }
            };
            let waited = started.elapsed();
            if waited >= self.ride_through {
                return Err(StoreError::Unavailable(if attempts == 0 {
                    why
                } else {
                    format!(
                        "{why} (still unreachable after {attempts} attempts over {} s: \
                         state.reconnect_timeout)",
                        waited.as_secs()
                    )
                }));
            }
            attempts += 1;
            super::reach::lost(&why);
            if attempts == 1 {
                tracing::warn!(what, error = %why,
                    retry_for_s = self.ride_through.as_secs(),
                    "PostgreSQL state store unreachable: retrying on a new connection");
                said = Instant::now();
            } else if said.elapsed() >= STILL_UNREACHABLE_EVERY {
                tracing::warn!(what, error = %why, attempts, waited_s = waited.as_secs(),
                    "PostgreSQL state store still unreachable");
                said = Instant::now();
            }
            std::thread::sleep(wait.min(self.ride_through - waited));
            wait = (wait * 2).min(RETRY_CEILING);
        }
    }

    /// A new connection in place of the lost one.
    fn reconnect(&mut self) -> Result<(), StoreError> {
        let client = self.tls.connect(&mut self.config.clone()).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot reconnect to the PostgreSQL state store: {}",
                crate::diagnostic::chain(&e)
            ))
        })?;
        self.client = client;
        self.reconnects += 1;
        Ok(())
    }

    /// New connections made so far in place of lost ones.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// A reader's check: the database holds a store of a schema this build reads, made under
    /// the same definitions. Nothing is created, migrated or written.
    fn inspect(&mut self, id: &Identity) -> Result<(), StoreError> {
        let there: bool = self
            .client
            .query_one("SELECT to_regclass('srv_opr_schema') IS NOT NULL", &[])
            .map_err(backend)?
            .get(0);
        if !there {
            return Err(StoreError::Absent(
                "the PostgreSQL database holds no srv-opr state store (has `run` checkpointed \
                 into it yet?)"
                    .into(),
            ));
        }
        let version: i64 = self
            .client
            .query_opt("SELECT version FROM srv_opr_schema", &[])
            .map_err(backend)?
            .map_or(0, |r| r.get(0));
        if version > SCHEMA_VERSION {
            return Err(StoreError::Refused(format!(
                "the state store has schema version {version}, newer than this srv-opr knows \
                 ({SCHEMA_VERSION}): upgrade srv-opr"
            )));
        }
        if version == 0 {
            return Err(StoreError::Absent(
                "the PostgreSQL state store was never written (schema version 0)".into(),
            ));
        }
        let mut t = Tx(&mut self.client);
        let (topics, group, stored) = (t.meta("topics")?, t.meta("group")?, t.meta("definitions")?);
        check_identity(
            id,
            Some(version),
            topics.as_deref(),
            group.as_deref(),
            stored.as_deref(),
        )?;
        self.version = version;
        Ok(())
    }

    fn prepare(&mut self, id: &Identity) -> Result<(), StoreError> {
        let mut tx = self.client.transaction().map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .map_err(backend)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS srv_opr_schema (version BIGINT NOT NULL)")
            .map_err(backend)?;
        let version: i64 = tx
            .query_opt("SELECT version FROM srv_opr_schema", &[])
            .map_err(backend)?
            .map_or(0, |r| r.get(0));
        let mut t = Tx(&mut tx);
        let (topics, group, stored_defs) = if version == 0 {
            (None, None, None)
        } else {
            (t.meta("topics")?, t.meta("group")?, t.meta("definitions")?)
        };
        let action = check_identity(
            id,
            Some(version),
            topics.as_deref(),
            group.as_deref(),
            stored_defs.as_deref(),
        )?;
        for (v, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.batch_execute(sql).map_err(|e| {
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
        tx.execute("DELETE FROM srv_opr_schema", &[])
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO srv_opr_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .map_err(backend)?;
        sql::apply_identity(&mut Tx(&mut tx), id, &action)?;
        tx.commit().map_err(backend)
    }
}

/// One PostgreSQL transaction (or the client itself, for reads), as the shared logic drives it.
struct Tx<'a, C: postgres::GenericClient>(&'a mut C);

impl<C: postgres::GenericClient> sql::Tx for Tx<'_, C> {
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claimed, StoreError> {
        let r = self
            .0
            .query_one(sql::CLAIM, &[&topic, &partition, &owner])
            .map_err(backend)?;
        Ok(Claimed {
            pid: r.get(0),
            epoch: r.get(1),
            next_offset: r.get(2),
            max_at: r.get(3),
            meta: r.get(4),
            log_bytes: r.get(5),
        })
    }

    fn replay_log(&mut self, pid: i64, log: &mut LogReplay) -> Result<(), StoreError> {
        for r in self.0.query(sql::STATE_LOG, &[&pid]).map_err(backend)? {
            let bytes: &[u8] = r.get(1);
            log.apply(bytes, r.get(0))?;
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
        Ok(self
            .0
            .query_opt(
                sql::CHECKPOINT_PARTITION,
                &[
                    &cp.next_offset,
                    &cp.max_at,
                    &meta,
                    &stamp,
                    &cp.topic,
                    &cp.partition,
                    &cp.epoch,
                    &cp.delta.meta.watermark,
                ],
            )
            .map_err(backend)?
            .map(|r| r.get(0)))
    }

    fn clear_log(&mut self, pid: i64) -> Result<(), StoreError> {
        self.0
            .execute(sql::CLEAR_LOG, &[&pid])
            .map(|_| ())
            .map_err(backend)
    }

    fn append_log(&mut self, pid: i64, full: bool, chunks: &[Vec<u8>]) -> Result<(), StoreError> {
        let bases: Vec<bool> = (0..chunks.len()).map(|i| full && i == 0).collect();
        let offsets: Vec<i64> = (0..chunks.len() as i64).collect();
        let chunks: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        self.0
            .execute(APPEND_LOG, &[&pid, &offsets, &bases, &chunks])
            .map(|_| ())
            .map_err(backend)
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
                sql::SET_COUNTS,
                &[&pid, &records, &waiting, &full, &log_bytes],
            )
            .map(|_| ())
            .map_err(backend)
    }

    fn row_revision(&mut self, pid: i64, w: &RowWrite<'_>) -> Result<Option<i64>, StoreError> {
        Ok(self
            .0
            .query_opt(sql::ROW_REVISION, &[&pid, &w.month, &w.measure, &w.region])
            .map_err(backend)?
            .map(|r| r.get(0)))
    }

    fn delete_row(&mut self, pid: i64, w: &RowWrite<'_>) -> Result<usize, StoreError> {
        self.0
            .execute(sql::DELETE_ROW, &[&pid, &w.month, &w.measure, &w.region])
            .map(|n| n as usize)
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
            .execute(
                sql::PUT_ROW,
                &[
                    &pid,
                    &w.month,
                    &w.measure,
                    &w.region,
                    &(row.requests as i64),
                    &(row.within_target as i64),
                    &(row.succeeded as i64),
                    &(row.no_response as i64),
                    &buckets,
                    &row.histogram,
                    &row.max_ms.map(|v| v as i64),
                    &(row.revision as i64),
                    &days,
                    &(row.acked as i64),
                    &row.ack_histogram,
                    &row.after_ack_histogram,
                    &sql::users_text(row),
                ],
            )
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
            .execute(
                sql::PUT_REVISION,
                &[
                    &w.month,
                    &w.measure,
                    &w.region,
                    &origin,
                    &(w.row.revision as i64),
                    &reason,
                    &stamp,
                ],
            )
            .map(|_| ())
            .map_err(backend)
    }

    fn raise_combined_watermark(&mut self) -> Result<(), StoreError> {
        self.0
            .execute(RAISE_COMBINED_WATERMARK, &[&i64::MIN])
            .map(|_| ())
            .map_err(backend)
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .0
            .query_opt(sql::META_GET, &[&key])
            .map_err(backend)?
            .map(|r| r.get(0)))
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0
            .execute(sql::META_SET, &[&key, &value])
            .map(|_| ())
            .map_err(backend)
    }

    fn config_change(&mut self, previous: &str, adopted: &str, at: &str) -> Result<(), StoreError> {
        self.0
            .execute(sql::CONFIG_CHANGE, &[&previous, &adopted, &at])
            .map(|_| ())
            .map_err(backend)
    }

    fn get_cells(
        &mut self,
        pid: i64,
        month: &str,
        minute: i32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .0
            .query_opt(sql::GET_CELLS, &[&pid, &month, &minute])
            .map_err(backend)?
            .map(|r| r.get(0)))
    }

    fn put_cells(
        &mut self,
        pid: i64,
        month: &str,
        minute: i32,
        blob: &[u8],
    ) -> Result<(), StoreError> {
        self.0
            .execute(sql::PUT_CELLS, &[&pid, &month, &minute, &blob])
            .map(|_| ())
            .map_err(backend)
    }

    fn delete_cells(&mut self, pid: i64, month: &str, minute: i32) -> Result<(), StoreError> {
        self.0
            .execute(sql::DELETE_CELLS, &[&pid, &month, &minute])
            .map(|_| ())
            .map_err(backend)
    }
    fn month_texts(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .0
            .query(sql::MONTHS, &[])
            .map_err(backend)?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn combined(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .0
            .query_opt(sql::COMBINED_WATERMARK, &[])
            .map_err(backend)?
            .map(|r| r.get(0)))
    }

    fn latest_register(&mut self, month: &str) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .0
            .query_opt(sql::LATEST_REGISTER, &[&month])
            .map_err(backend)?
            .map(|r| (r.get(0), r.get(1))))
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
                sql::PUT_REGISTER,
                &[&month, &sha256, &ids, &register, &added, &withdrawn, &at],
            )
            .map(|_| ())
            .map_err(backend)
    }
}

impl Store for PgStore {
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claim, StoreError> {
        self.retrying("claim", |client, defs| {
            let mut tx = client.transaction().map_err(backend)?;
            let claim = sql::claim(&mut Tx(&mut tx), topic, partition, owner, defs)?;
            tx.commit().map_err(backend)?;
            Ok(claim)
        })
    }

    fn checkpoint(&mut self, cp: &Checkpoint<'_>) -> Result<Written, StoreError> {
        self.retrying("checkpoint", |client, defs| {
            let mut tx = client.transaction().map_err(backend)?;
            let written = sql::checkpoint(&mut Tx(&mut tx), cp, defs, LOG_CHUNK_BYTES)?;
            tx.commit().map_err(backend)?;
            Ok(written)
        })
    }

    fn partitions(&mut self) -> Result<Vec<PartitionInfo>, StoreError> {
        self.retrying("read partitions", |client, _| {
            let rows = client.query(sql::PARTITIONS, &[]).map_err(backend)?;
            rows.into_iter()
                .map(|r| {
                    PartitionColumns {
                        topic: r.get(0),
                        partition: r.get(1),
                        epoch: r.get(2),
                        owner: r.get(3),
                        next_offset: r.get(4),
                        meta: r.get(5),
                        checkpointed_at: r.get(6),
                    }
                    .info()
                })
                .collect()
        })
    }

    fn month_rows(&mut self, month: Option<Month>) -> Result<Vec<StoredRow>, StoreError> {
        let version = self.version;
        self.retrying("read month rows", |client, _| {
            rows_of(client, version, None, month)
        })
    }

    fn combined_watermark(&mut self) -> Result<Option<i64>, StoreError> {
        self.retrying("read the combined watermark", |client, _| {
            Ok(client
                .query_opt(sql::COMBINED_WATERMARK, &[])
                .map_err(backend)?
                .map(|r| r.get(0)))
        })
    }

    fn revisions(&mut self, month: Option<Month>) -> Result<Vec<RevisionRecord>, StoreError> {
        let month_text = month.map(|m| m.to_string());
        self.retrying("read revisions", |client, _| {
            let rows = client
                .query(sql::REVISIONS, &[&month_text])
                .map_err(backend)?;
            rows.into_iter()
                .map(|r| {
                    RevisionColumns {
                        id: r.get(7),
                        month: r.get(0),
                        measure: r.get(1),
                        region: r.get(2),
                        origin: r.get(3),
                        revision: r.get(4),
                        reason: r.get(5),
                        recorded_at: r.get(6),
                    }
                    .record()
                })
                .collect()
        })
    }

    fn record_register(
        &mut self,
        stamp: &super::api::RegisterStamp,
        final_at: &dyn Fn(Month) -> i64,
    ) -> Result<Vec<Month>, StoreError> {
        if self.version < 3 {
            return Ok(Vec::new());
        }
        self.retrying("record the register", |client, _| {
            let mut tx = client.transaction().map_err(backend)?;
            // One instance at a time: two recording the same month would record it twice.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&(LOCK_KEY + 1)])
                .map_err(backend)?;
            let recorded = sql::record_register(&mut Tx(&mut tx), stamp, final_at)?;
            tx.commit().map_err(backend)?;
            Ok(recorded)
        })
    }

    fn register_history(
        &mut self,
        month: Month,
    ) -> Result<Vec<super::api::RegisterRecord>, StoreError> {
        if self.version < 3 {
            return Ok(Vec::new());
        }
        let text = month.to_string();
        self.retrying("read the register history", |client, _| {
            client
                .query(sql::REGISTER_HISTORY, &[&text])
                .map_err(backend)?
                .into_iter()
                .map(|r| {
                    sql::RegisterColumns {
                        month: r.get(0),
                        sha256: r.get(1),
                        ids: r.get(2),
                        register: r.get(3),
                        added: r.get(4),
                        withdrawn: r.get(5),
                        recorded_at: r.get(6),
                    }
                    .record()
                })
                .collect()
        })
    }

    fn months(&mut self) -> Result<Vec<Month>, StoreError> {
        self.read_months()
    }

    fn sign_off(&mut self, s: &super::signoff::SignOff) -> Result<i64, StoreError> {
        use super::signoff::{PUT_SIGNOFF, SIGNOFF_ID};
        if self.version < 4 {
            return Err(super::signoff::too_old(self.version));
        }
        let month = s.month.map(|m| m.to_string()).unwrap_or_default();
        let (token, document) = (s.token()?, s.document()?);
        // Retried on a new connection after a lost one: the token makes a second insert of
        // the same sign-off a no-op, so it is recorded once.
        self.retrying("record a sign-off", |client, _| {
            client
                .execute(
                    PUT_SIGNOFF,
                    &[&month, &s.view, &s.signed_at, &token, &document],
                )
                .map_err(backend)?;
            Ok(client
                .query_one(SIGNOFF_ID, &[&token])
                .map_err(backend)?
                .get(0))
        })
    }

    fn signoffs(
        &mut self,
        month: Option<Month>,
    ) -> Result<Vec<super::signoff::SignOff>, StoreError> {
        if self.version < 4 {
            return Ok(Vec::new());
        }
        let text = month.map(|m| m.to_string());
        self.retrying("read sign-offs", |client, _| {
            client
                .query(super::signoff::SIGNOFFS, &[&text])
                .map_err(backend)?
                .into_iter()
                .map(|r| {
                    super::signoff::SignOff::of_row(
                        r.get(0),
                        &r.get::<_, String>(1),
                        r.get(2),
                        &r.get::<_, String>(3),
                    )
                })
                .collect()
        })
    }

    fn revision_mark(&mut self) -> Result<i64, StoreError> {
        self.retrying("read the revision history's mark", |client, _| {
            Ok(client
                .query_one(super::signoff::REVISION_MARK, &[])
                .map_err(backend)?
                .get(0))
        })
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
        let (month_text, from, to) = (
            month.to_string(),
            i32::from(minutes.0),
            i32::from(minutes.1),
        );
        let (topic, part) = (partition.map(|p| p.0.to_string()), partition.map(|p| p.1));
        self.retrying("read counts per minute", |client, _| {
            let rows = client
                .query(sql::CELLS, &[&month_text, &from, &to, &topic, &part])
                .map_err(backend)?;
            sql::read_cells(
                month,
                rows.into_iter()
                    .map(|r| (r.get(0), i64::from(r.get::<_, i32>(1)), r.get(2))),
            )
        })
    }
}

impl PgStore {
    /// [`Store::months`], inside the trait's retries.
    fn read_months(&mut self) -> Result<Vec<Month>, StoreError> {
        self.retrying("read months", |client, _| {
            let rows = client.query(sql::MONTHS, &[]).map_err(backend)?;
            sql::months_of(rows.into_iter().map(|r| r.get(0)).collect())
        })
    }
}

fn rows_of(
    client: &mut impl postgres::GenericClient,
    version: i64,
    pid: Option<i64>,
    month: Option<Month>,
) -> Result<Vec<StoredRow>, StoreError> {
    let month_text = month.map(|m| m.to_string());
    let rows = client
        .query(sql::month_rows(version), &[&pid, &month_text])
        .map_err(backend)?;
    rows.into_iter()
        .map(|r| {
            RowColumns {
                month: r.get(0),
                measure: r.get(1),
                region: r.get(2),
                requests: r.get(3),
                within_target: r.get(4),
                succeeded: r.get(5),
                no_response: r.get(6),
                buckets: r.get(7),
                histogram: r.get(8),
                max_ms: r.get(9),
                revision: r.get(10),
                days: r.get(11),
                origin: r.get(12),
                acked: r.get(13),
                ack_histogram: r.get(14),
                after_ack_histogram: r.get(15),
                users: r.get(16),
            }
            .stored()
        })
        .collect()
}
