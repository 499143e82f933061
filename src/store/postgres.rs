//! The shared state store: PostgreSQL, for a consumer group spread over machines. Every instance
//! checkpoints its partitions into it and whoever is assigned a partition restores it from
//! there. A checkpoint is one transaction of a few statements whatever its size: records go in
//! as arrays (`unnest`), not row by row, so the cost does not grow with round trips.

use postgres::{Client, NoTls, Transaction};

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
];

/// A state-log chunk's size: a checkpoint is a few values, none of them huge.
const LOG_CHUNK_BYTES: usize = 4 << 20;

/// Serialises migrations and identity checks of instances starting together.
const LOCK_KEY: i64 = 0x0073_7276_2d6f_7072; // "srv-opr" in ASCII

/// A connection to the PostgreSQL store.
pub struct PgStore {
    client: Client,
    defs: Definitions,
}

fn backend(e: postgres::Error) -> StoreError {
    StoreError::Backend(format!("PostgreSQL state store: {e}"))
}

impl PgStore {
    /// Connects to `url` (the password, if any, apart) and prepares the schema.
    pub fn open(
        url: &str,
        password: Option<&str>,
        id: &Identity,
        defs: &Definitions,
    ) -> Result<PgStore, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(|e| {
            StoreError::Refused(format!(
                "state.url {} is not a PostgreSQL URL: {e}",
                super::redacted(url)
            ))
        })?;
        if let Some(pw) = password {
            config.password(pw);
        }
        config.application_name("srv-opr");
        let client = config.connect(NoTls).map_err(|e| {
            StoreError::Backend(format!(
                "cannot connect to the PostgreSQL state store {}: {e}",
                super::redacted(url)
            ))
        })?;
        let mut store = PgStore {
            client,
            defs: defs.clone(),
        };
        store.prepare(id)?;
        Ok(store)
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
        let get = |tx: &mut Transaction<'_>, key: &str| -> Result<Option<String>, StoreError> {
            if version == 0 {
                return Ok(None);
            }
            Ok(tx
                .query_opt("SELECT value FROM store_meta WHERE key = $1", &[&key])
                .map_err(backend)?
                .map(|r| r.get(0)))
        };
        let (topics, group, stored_defs) = (
            get(&mut tx, "topics")?,
            get(&mut tx, "group")?,
            get(&mut tx, "definitions")?,
        );
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
            tracing::info!(version = v + 1, "state store schema migrated");
        }
        tx.execute("DELETE FROM srv_opr_schema", &[])
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO srv_opr_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )
        .map_err(backend)?;
        let mut set = |key: &str, value: &str| {
            tx.execute(
                "INSERT INTO store_meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&key, &value],
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
                "INSERT INTO config_changes (previous, adopted, at) VALUES ($1, $2, $3)",
                &[previous, &id.definitions, &now().to_rfc3339_exact()],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }
}

fn meta_of(text: Option<String>) -> Result<Option<SavedMeta>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t)
            .map_err(|e| StoreError::Backend(format!("a stored partition meta is damaged: {e}")))
    })
    .transpose()
}

fn rows_of(
    client: &mut impl postgres::GenericClient,
    pid: Option<i64>,
    month: Option<Month>,
) -> Result<Vec<StoredRow>, StoreError> {
    let month_text = month.map(|m| m.to_string());
    let rows = client
        .query(
            "SELECT r.month, r.measure, r.region, r.requests, r.within_target, r.succeeded,
                    r.no_response, r.buckets, r.histogram, r.max_ms, r.revision,
                    p.topic || '/' || p.partition
             FROM month_rows r JOIN partitions p ON p.pid = r.pid
             WHERE ($1::BIGINT IS NULL OR r.pid = $1) AND ($2::TEXT IS NULL OR r.month = $2)
             ORDER BY r.pid, r.month, r.measure, r.region",
            &[&pid, &month_text],
        )
        .map_err(backend)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let m: String = r.get(0);
        let region: String = r.get(2);
        let buckets: String = r.get(7);
        let (buckets, samples) = buckets_from(&buckets)?;
        out.push(StoredRow {
            origin: r.get(11),
            month: Month::parse(&m).ok_or_else(|| {
                StoreError::Backend(format!("a stored month {m:?} is not YYYY-MM"))
            })?,
            measure: r.get(1),
            region: Region::parse(&region).map(|r| r as usize).ok_or_else(|| {
                StoreError::Backend(format!("a stored region {region:?} is unknown"))
            })?,
            row: SavedRow {
                requests: r.get::<_, i64>(3) as u64,
                within_target: r.get::<_, i64>(4) as u64,
                succeeded: r.get::<_, i64>(5) as u64,
                no_response: r.get::<_, i64>(6) as u64,
                buckets,
                samples,
                histogram: r.get(8),
                max_ms: r.get::<_, Option<i64>>(9).map(|v| v as u64),
                revision: r.get::<_, i64>(10) as u32,
            },
        });
    }
    Ok(out)
}

impl Store for PgStore {
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claim, StoreError> {
        let mut tx = self.client.transaction().map_err(backend)?;
        let row = tx
            .query_one(
                "INSERT INTO partitions (topic, partition, epoch, owner) VALUES ($1, $2, 1, $3)
                 ON CONFLICT (topic, partition)
                 DO UPDATE SET epoch = partitions.epoch + 1, owner = excluded.owner
                 RETURNING pid, epoch, next_offset, max_at, meta, log_bytes",
                &[&topic, &partition, &owner],
            )
            .map_err(backend)?;
        let (pid, epoch, next_offset, max_at): (i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let saved = match meta_of(row.get(4))? {
            None => None,
            Some(meta) => {
                let mut log = LogReplay::default();
                for r in tx
                    .query(
                        "SELECT base, bytes FROM state_log WHERE pid = $1 ORDER BY seq",
                        &[&pid],
                    )
                    .map_err(backend)?
                {
                    let bytes: &[u8] = r.get(1);
                    log.apply(bytes, r.get(0))?;
                }
                let super::codec::Replayed {
                    entries,
                    waiting,
                    texts,
                } = log.finish();
                let rows = rows_of(&mut tx, Some(pid), None)?;
                Some(SavedPartition {
                    next_offset,
                    max_at,
                    log_bytes: row.get::<_, i64>(5) as u64,
                    pipeline: SavedPipeline {
                        meta,
                        entries,
                        waiting,
                        texts,
                        blocks: blocks_of(rows, &self.defs)?,
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
        let writes = row_writes(cp.delta, &self.defs)?;
        let stamp = now().to_rfc3339_exact();
        let mut tx = self.client.transaction().map_err(backend)?;
        let pid: Option<i64> = tx
            .query_opt(
                "UPDATE partitions SET next_offset = $1, max_at = $2, meta = $3,
                     checkpoints = checkpoints + 1, checkpointed_at = $4, watermark = $8
                 WHERE topic = $5 AND partition = $6 AND epoch = $7 RETURNING pid",
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
            .map(|r| r.get(0));
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
        // The snapshot replaces the log; a delta is appended to it.
        if changes.full {
            tx.execute("DELETE FROM state_log WHERE pid = $1", &[&pid])
                .map_err(backend)?;
        }
        let chunks = encode_changes(changes, LOG_CHUNK_BYTES);
        if changes.full || chunks.iter().any(|c| c.len() > 1) {
            let bases: Vec<bool> = (0..chunks.len()).map(|i| changes.full && i == 0).collect();
            let offsets: Vec<i64> = (0..chunks.len() as i64).collect();
            tx.execute(
                "INSERT INTO state_log (pid, seq, base, bytes)
                 SELECT $1, n.next + t.i, t.b, t.c
                 FROM (SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM state_log WHERE pid = $1) n,
                      unnest($2::BIGINT[], $3::BOOL[], $4::BYTEA[]) AS t(i, b, c)",
                &[&pid, &offsets, &bases, &chunks],
            )
            .map_err(backend)?;
            written.log_bytes = chunks.iter().map(|c| c.len() as u64).sum();
        }
        tx.execute(
            "UPDATE partitions SET records = $2, waiting = $3,
                 log_bytes = CASE WHEN $4 THEN $5 ELSE log_bytes + $5 END
             WHERE pid = $1",
            &[
                &pid,
                &(cp.delta.records as i64),
                &(cp.delta.waiting as i64),
                &changes.full,
                &(written.log_bytes as i64),
            ],
        )
        .map_err(backend)?;
        for w in &writes {
            if w.delete {
                written.rows += tx
                    .execute(
                        "DELETE FROM month_rows
                         WHERE pid = $1 AND month = $2 AND measure = $3 AND region = $4",
                        &[&pid, &w.month, &w.measure, &w.region],
                    )
                    .map_err(backend)? as usize;
                continue;
            }
            let row = w.row;
            let before: i64 = tx
                .query_opt(
                    "SELECT revision FROM month_rows
                     WHERE pid = $1 AND month = $2 AND measure = $3 AND region = $4",
                    &[&pid, &w.month, &w.measure, &w.region],
                )
                .map_err(backend)?
                .map_or(0, |r| r.get(0));
            tx.execute(
                "INSERT INTO month_rows (pid, month, measure, region, requests, within_target,
                     succeeded, no_response, buckets, histogram, max_ms, revision)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (pid, month, measure, region) DO UPDATE SET
                     requests = excluded.requests, within_target = excluded.within_target,
                     succeeded = excluded.succeeded, no_response = excluded.no_response,
                     buckets = excluded.buckets, histogram = excluded.histogram,
                     max_ms = excluded.max_ms, revision = excluded.revision",
                &[
                    &pid,
                    &w.month,
                    &w.measure,
                    &w.region,
                    &(row.requests as i64),
                    &(row.within_target as i64),
                    &(row.succeeded as i64),
                    &(row.no_response as i64),
                    &buckets_text(row),
                    &row.histogram,
                    &row.max_ms.map(|v| v as i64),
                    &(row.revision as i64),
                ],
            )
            .map_err(backend)?;
            written.rows += 1;
            if i64::from(row.revision) > before {
                tx.execute(
                    "INSERT INTO revisions (month, measure, region, origin, revision, reason,
                         recorded_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &w.month,
                        &w.measure,
                        &w.region,
                        &format!("{}/{}", cp.topic, cp.partition),
                        &(row.revision as i64),
                        &revision_reason(cp, row),
                        &stamp,
                    ],
                )
                .map_err(backend)?;
                written.revisions += 1;
            }
        }
        // The combined watermark: the minimum over partitions that have seen events (SPEC §2),
        // never going back.
        tx.execute(
            "INSERT INTO progress (id, combined_watermark)
             SELECT 1, MIN(watermark) FROM partitions WHERE watermark > $1 HAVING COUNT(*) > 0
             ON CONFLICT (id) DO UPDATE SET combined_watermark =
                 GREATEST(progress.combined_watermark, excluded.combined_watermark)",
            &[&i64::MIN],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(written)
    }

    fn partitions(&mut self) -> Result<Vec<PartitionInfo>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT topic, partition, epoch, owner, next_offset, meta, checkpointed_at
                 FROM partitions ORDER BY topic, partition",
                &[],
            )
            .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(PartitionInfo {
                topic: r.get(0),
                partition: r.get(1),
                epoch: r.get(2),
                owner: r.get(3),
                next_offset: r.get(4),
                meta: meta_of(r.get(5))?,
                checkpointed_at: r.get(6),
            });
        }
        Ok(out)
    }

    fn month_rows(&mut self, month: Option<Month>) -> Result<Vec<StoredRow>, StoreError> {
        rows_of(&mut self.client, None, month)
    }

    fn combined_watermark(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .client
            .query_opt("SELECT combined_watermark FROM progress WHERE id = 1", &[])
            .map_err(backend)?
            .map(|r| r.get(0)))
    }

    fn revisions(&mut self, month: Option<Month>) -> Result<Vec<RevisionRecord>, StoreError> {
        let month_text = month.map(|m| m.to_string());
        let rows = self
            .client
            .query(
                "SELECT month, measure, region, origin, revision, reason, recorded_at
                 FROM revisions WHERE $1::TEXT IS NULL OR month = $1 ORDER BY id",
                &[&month_text],
            )
            .map_err(backend)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let m: String = r.get(0);
            out.push(RevisionRecord {
                month: Month::parse(&m).ok_or_else(|| {
                    StoreError::Backend(format!("a stored month {m:?} is not YYYY-MM"))
                })?,
                measure: r.get(1),
                region: r.get(2),
                origin: r.get(3),
                revision: r.get::<_, i64>(4) as u32,
                reason: r.get(5),
                recorded_at: r.get(6),
            });
        }
        Ok(out)
    }
}
