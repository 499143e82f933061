//! What the two SQL backends share: every statement but the few where the dialects differ
//! (written with `$N` placeholders; SQLite reads the same text with `?N`), how a claim restores
//! a partition and a checkpoint writes one, and how stored rows, partitions and revisions are
//! read back. Each backend implements [`Tx`] with its own client, a few lines per statement.

use super::api::{
    Checkpoint, Claim, PartitionInfo, RevisionRecord, SavedPartition, StoredRow, Written,
};
use super::codec::{
    LogReplay, Replayed, buckets_from, buckets_text, days_from, days_text, encode_changes,
};
use super::error::{StoreError, month_of};
use super::identity::{Identity, IdentityAction};
use super::rows::{RowWrite, blocks_of, revision_reason, row_writes};
use crate::engine::aggregate::SavedRow;
use crate::engine::calendar::Month;
use crate::engine::definitions::Definitions;
use crate::engine::domain::Region;
use crate::engine::pipeline::{SavedMeta, SavedPipeline};
use crate::engine::time::now;

/// Claims a partition: its epoch rises, and its checkpoint's place is returned.
pub(super) const CLAIM: &str = "
    INSERT INTO partitions (topic, partition, epoch, owner) VALUES ($1, $2, 1, $3)
    ON CONFLICT (topic, partition)
    DO UPDATE SET epoch = partitions.epoch + 1, owner = excluded.owner
    RETURNING pid, epoch, next_offset, max_at, meta, log_bytes";

/// A partition's state log, in order.
pub(super) const STATE_LOG: &str = "SELECT base, bytes FROM state_log WHERE pid = $1 ORDER BY seq";

/// A checkpoint's partition row, under the epoch it was claimed with (no row: fenced).
pub(super) const CHECKPOINT_PARTITION: &str = "
    UPDATE partitions SET next_offset = $1, max_at = $2, meta = $3,
        checkpoints = checkpoints + 1, checkpointed_at = $4, watermark = $8
    WHERE topic = $5 AND partition = $6 AND epoch = $7 RETURNING pid";

/// A snapshot replaces the partition's state log.
pub(super) const CLEAR_LOG: &str = "DELETE FROM state_log WHERE pid = $1";

/// The partition's record counts and log size after a checkpoint.
pub(super) const SET_COUNTS: &str = "
    UPDATE partitions SET records = $2, waiting = $3,
        log_bytes = CASE WHEN $4 THEN $5 ELSE log_bytes + $5 END
    WHERE pid = $1";

/// A month row's revision before it is written.
pub(super) const ROW_REVISION: &str = "
    SELECT revision FROM month_rows
    WHERE pid = $1 AND month = $2 AND measure = $3 AND region = $4";

/// A month row that no longer counts anything.
pub(super) const DELETE_ROW: &str = "
    DELETE FROM month_rows WHERE pid = $1 AND month = $2 AND measure = $3 AND region = $4";

/// A month row, written whole.
pub(super) const PUT_ROW: &str = "
    INSERT INTO month_rows (pid, month, measure, region, requests, within_target, succeeded,
        no_response, buckets, histogram, max_ms, revision, days, acked, ack_histogram,
        after_ack_histogram, users)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
    ON CONFLICT (pid, month, measure, region) DO UPDATE SET
        requests = excluded.requests, within_target = excluded.within_target,
        succeeded = excluded.succeeded, no_response = excluded.no_response,
        buckets = excluded.buckets, histogram = excluded.histogram,
        max_ms = excluded.max_ms, revision = excluded.revision, days = excluded.days,
        acked = excluded.acked, ack_histogram = excluded.ack_histogram,
        after_ack_histogram = excluded.after_ack_histogram, users = excluded.users";

/// A revision of a final month's row, in the history.
pub(super) const PUT_REVISION: &str = "
    INSERT INTO revisions (month, measure, region, origin, revision, reason, recorded_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Month rows of one partition (or all, `$1` null) and one month (or all, `$2` null), in the
/// column order [`RowColumns`] reads.
pub(super) const MONTH_ROWS: &str = "
    SELECT r.month, r.measure, r.region, r.requests, r.within_target, r.succeeded,
           r.no_response, r.buckets, r.histogram, r.max_ms, r.revision, r.days,
           p.topic || '/' || p.partition,
           r.acked, r.ack_histogram, r.after_ack_histogram, r.users
    FROM month_rows r JOIN partitions p ON p.pid = r.pid
    WHERE (CAST($1 AS BIGINT) IS NULL OR r.pid = $1) AND (CAST($2 AS TEXT) IS NULL OR r.month = $2)
    ORDER BY r.pid, r.month, r.measure, r.region";

/// [`MONTH_ROWS`] of a store of schema `version`: one written before version 2 has no counts
/// by day, one before version 5 no acknowledgement segments or users, read as none (a reader
/// never migrates a store).
pub(super) fn month_rows(version: i64) -> &'static str {
    static BEFORE_5: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static BEFORE_2: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let before_5 = || {
        MONTH_ROWS.replace(
            "r.acked, r.ack_histogram, r.after_ack_histogram, r.users",
            "CAST(0 AS BIGINT), NULL, NULL, CAST(NULL AS TEXT)",
        )
    };
    if version >= 5 {
        MONTH_ROWS
    } else if version >= 2 {
        BEFORE_5.get_or_init(before_5)
    } else {
        BEFORE_2.get_or_init(|| before_5().replace("r.days,", "CAST(NULL AS TEXT),"))
    }
}

/// A row's counts by user as the store keeps them: a JSON array of `[user, requests,
/// within_target, succeeded, no_response]`.
pub(super) fn users_text(row: &SavedRow) -> String {
    let list: Vec<(&str, u64, u64, u64, u64)> = row
        .users
        .iter()
        .map(|(u, c)| (u.as_str(), c[0], c[1], c[2], c[3]))
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

/// [`users_text`] back.
fn users_from(text: &str) -> Result<Vec<(String, [u64; 4])>, StoreError> {
    let list: Vec<(String, u64, u64, u64, u64)> = serde_json::from_str(text).map_err(|e| {
        StoreError::Backend(format!("a stored month row's users do not decode: {e}"))
    })?;
    Ok(list
        .into_iter()
        .map(|(u, r, w, s, n)| (u, [r, w, s, n]))
        .collect())
}

/// A partition's counts of one minute.
pub(super) const GET_CELLS: &str =
    "SELECT cells FROM minute_cells WHERE pid = $1 AND month = $2 AND minute = $3";

/// A partition's counts of one minute, written whole.
pub(super) const PUT_CELLS: &str = "
    INSERT INTO minute_cells (pid, month, minute, cells) VALUES ($1, $2, $3, $4)
    ON CONFLICT (pid, month, minute) DO UPDATE SET cells = excluded.cells";

/// A minute that no longer counts anything.
pub(super) const DELETE_CELLS: &str =
    "DELETE FROM minute_cells WHERE pid = $1 AND month = $2 AND minute = $3";

/// The counts of some minutes of a month (`$2` ≤ minute < `$3`), of every partition or of one
/// (`$4`/`$5`, topic and partition), in the column order [`read_cells`] reads.
pub(super) const CELLS: &str = "
    SELECT p.topic || '/' || p.partition, c.minute, c.cells
    FROM minute_cells c JOIN partitions p ON p.pid = c.pid
    WHERE c.month = $1 AND c.minute >= $2 AND c.minute < $3
      AND (CAST($4 AS TEXT) IS NULL OR (p.topic = $4 AND p.partition = $5))
    ORDER BY c.pid, c.minute";

/// The latest register recorded against a month.
pub(super) const LATEST_REGISTER: &str =
    "SELECT sha256, ids FROM register_history WHERE month = $1 ORDER BY id DESC LIMIT 1";

/// A register recorded against a month.
pub(super) const PUT_REGISTER: &str = "
    INSERT INTO register_history (month, sha256, ids, register, added, withdrawn, recorded_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The registers recorded against a month, oldest first, in the column order
/// [`RegisterColumns`] reads.
pub(super) const REGISTER_HISTORY: &str = "
    SELECT month, sha256, ids, register, added, withdrawn, recorded_at
    FROM register_history WHERE month = $1 ORDER BY id";

/// The months some partition holds rows of.
pub(super) const MONTHS: &str = "SELECT DISTINCT month FROM month_rows ORDER BY month";

/// The months of [`MONTHS`], parsed.
pub(super) fn months_of(texts: Vec<String>) -> Result<Vec<Month>, StoreError> {
    texts.iter().map(|t| month_of(t)).collect()
}

/// Every partition, in the column order [`PartitionColumns`] reads.
pub(super) const PARTITIONS: &str = "
    SELECT topic, partition, epoch, owner, next_offset, meta, checkpointed_at
    FROM partitions ORDER BY topic, partition";

/// The combined watermark last checkpointed.
pub(super) const COMBINED_WATERMARK: &str = "SELECT combined_watermark FROM progress WHERE id = 1";

/// The revision history of one month (or all, `$1` null), oldest first, in the column order
/// [`RevisionColumns`] reads.
pub(super) const REVISIONS: &str = "
    SELECT month, measure, region, origin, revision, reason, recorded_at, id
    FROM revisions WHERE CAST($1 AS TEXT) IS NULL OR month = $1 ORDER BY id";

/// One of the store's identity values (topics, group, definitions).
pub(super) const META_GET: &str = "SELECT value FROM store_meta WHERE key = $1";

/// Sets one of them.
pub(super) const META_SET: &str = "
    INSERT INTO store_meta (key, value) VALUES ($1, $2)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value";

/// An accepted change of definitions, in the history.
pub(super) const CONFIG_CHANGE: &str =
    "INSERT INTO config_changes (previous, adopted, at) VALUES ($1, $2, $3)";

/// A claimed partition's row.
pub(super) struct Claimed {
    pub pid: i64,
    pub epoch: i64,
    pub next_offset: i64,
    pub max_at: i64,
    pub meta: Option<String>,
    pub log_bytes: i64,
}

/// What a backend does inside one transaction, statement by statement; the logic around the
/// statements is here, once.
pub(super) trait Tx {
    /// [`CLAIM`].
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claimed, StoreError>;
    /// [`STATE_LOG`] into `log`, chunk by chunk.
    fn replay_log(&mut self, pid: i64, log: &mut LogReplay) -> Result<(), StoreError>;
    /// [`MONTH_ROWS`] of one partition.
    fn rows(&mut self, pid: i64) -> Result<Vec<StoredRow>, StoreError>;
    /// [`CHECKPOINT_PARTITION`]: the partition's pid, or `None` when another instance claimed
    /// it since.
    fn checkpoint_partition(
        &mut self,
        cp: &Checkpoint<'_>,
        meta: &str,
        stamp: &str,
    ) -> Result<Option<i64>, StoreError>;
    /// [`CLEAR_LOG`].
    fn clear_log(&mut self, pid: i64) -> Result<(), StoreError>;
    /// Appends `chunks` to the state log (the first is the base of a snapshot when `full`):
    /// the one statement whose form differs between the dialects.
    fn append_log(&mut self, pid: i64, full: bool, chunks: &[Vec<u8>]) -> Result<(), StoreError>;
    /// [`SET_COUNTS`].
    fn set_counts(
        &mut self,
        pid: i64,
        records: i64,
        waiting: i64,
        full: bool,
        log_bytes: i64,
    ) -> Result<(), StoreError>;
    /// [`ROW_REVISION`].
    fn row_revision(&mut self, pid: i64, w: &RowWrite<'_>) -> Result<Option<i64>, StoreError>;
    /// [`DELETE_ROW`]: rows deleted.
    fn delete_row(&mut self, pid: i64, w: &RowWrite<'_>) -> Result<usize, StoreError>;
    /// [`PUT_ROW`], with the row's buckets and counts by day as text.
    fn put_row(
        &mut self,
        pid: i64,
        w: &RowWrite<'_>,
        buckets: &str,
        days: &str,
    ) -> Result<(), StoreError>;
    /// [`PUT_REVISION`].
    fn put_revision(
        &mut self,
        w: &RowWrite<'_>,
        origin: &str,
        reason: &str,
        stamp: &str,
    ) -> Result<(), StoreError>;
    /// Raises the combined watermark to the minimum over partitions that have seen events
    /// (SPEC §2), never lowering it: the other statement whose form differs.
    fn raise_combined_watermark(&mut self) -> Result<(), StoreError>;
    /// [`META_GET`].
    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError>;
    /// [`META_SET`].
    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError>;
    /// [`CONFIG_CHANGE`].
    fn config_change(&mut self, previous: &str, adopted: &str, at: &str) -> Result<(), StoreError>;
    /// [`GET_CELLS`].
    fn get_cells(
        &mut self,
        pid: i64,
        month: &str,
        minute: i32,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// [`PUT_CELLS`].
    fn put_cells(
        &mut self,
        pid: i64,
        month: &str,
        minute: i32,
        blob: &[u8],
    ) -> Result<(), StoreError>;
    /// [`DELETE_CELLS`].
    fn delete_cells(&mut self, pid: i64, month: &str, minute: i32) -> Result<(), StoreError>;
    /// [`MONTHS`], as text.
    fn month_texts(&mut self) -> Result<Vec<String>, StoreError>;
    /// [`COMBINED_WATERMARK`].
    fn combined(&mut self) -> Result<Option<i64>, StoreError>;
    /// [`LATEST_REGISTER`]: its SHA-256 and ids text.
    fn latest_register(&mut self, month: &str) -> Result<Option<(String, String)>, StoreError>;
    /// [`PUT_REGISTER`], the ids as [`ids_text`].
    #[allow(clippy::too_many_arguments)]
    fn put_register(
        &mut self,
        month: &str,
        sha256: &str,
        ids: &str,
        register: &str,
        added: &str,
        withdrawn: &str,
        at: &str,
    ) -> Result<(), StoreError>;
}

/// Records `stamp` against every final month whose latest record is another register (see
/// [`super::Store::record_register`]).
pub(super) fn record_register(
    tx: &mut impl Tx,
    stamp: &super::api::RegisterStamp,
    final_at: &dyn Fn(Month) -> i64,
) -> Result<Vec<Month>, StoreError> {
    let Some(combined) = tx.combined()? else {
        return Ok(Vec::new());
    };
    let mut recorded = Vec::new();
    let stamped_at = now().to_rfc3339_exact();
    for text in tx.month_texts()? {
        let month = month_of(&text)?;
        if final_at(month) >= combined {
            continue;
        }
        let latest = tx.latest_register(&text)?;
        if latest.as_ref().is_some_and(|(sha, _)| *sha == stamp.sha256) {
            continue;
        }
        // With no record yet, the month was counted under no register until now.
        let before = latest.map(|(_, ids)| ids_of(&ids)).unwrap_or_default();
        let (added, withdrawn) = id_changes(&before, &stamp.ids);
        tx.put_register(
            &text,
            &stamp.sha256,
            &ids_text(&stamp.ids),
            &stamp.text,
            &ids_text(&added),
            &ids_text(&withdrawn),
            &stamped_at,
        )?;
        recorded.push(month);
    }
    Ok(recorded)
}

/// Claims a partition and reads its last checkpoint back.
pub(super) fn claim(
    tx: &mut impl Tx,
    topic: &str,
    partition: i32,
    owner: &str,
    defs: &Definitions,
) -> Result<Claim, StoreError> {
    let c = tx.claim(topic, partition, owner)?;
    let saved = match meta_of(c.meta)? {
        None => None,
        Some(meta) => {
            let mut log = LogReplay::for_log_of(c.log_bytes.max(0) as u64);
            tx.replay_log(c.pid, &mut log)?;
            let Replayed {
                entries,
                decided,
                waiting,
                texts,
            } = log.finish();
            let blocks = blocks_of(tx.rows(c.pid)?, defs)?;
            Some(SavedPartition {
                next_offset: c.next_offset,
                max_at: c.max_at,
                log_bytes: c.log_bytes as u64,
                pipeline: SavedPipeline {
                    meta,
                    entries,
                    decided,
                    waiting,
                    texts,
                    blocks,
                },
            })
        }
    };
    Ok(Claim {
        epoch: c.epoch,
        saved,
    })
}

/// Writes one partition's checkpoint: its row under its epoch, its state log (appended, or
/// replaced by a snapshot), its changed month rows with the revisions of final months, and
/// the combined watermark. A checkpoint is a few statements whatever its size.
pub(super) fn checkpoint(
    tx: &mut impl Tx,
    cp: &Checkpoint<'_>,
    defs: &Definitions,
    chunk_bytes: usize,
) -> Result<Written, StoreError> {
    let meta = serde_json::to_string(&cp.delta.meta)
        .map_err(|e| StoreError::Backend(format!("cannot encode partition meta: {e}")))?;
    let writes = row_writes(cp.delta, defs)?;
    let stamp = now().to_rfc3339_exact();
    let Some(pid) = tx.checkpoint_partition(cp, &meta, &stamp)? else {
        return Err(StoreError::Fenced {
            topic: cp.topic.to_string(),
            partition: cp.partition,
            held: cp.epoch,
        });
    };
    let changes = &cp.delta.changes;
    let mut written = Written {
        records: changes.entries.len() + changes.decided.len() + changes.removed.len(),
        ..Written::default()
    };
    // The snapshot replaces the log; a delta is appended to it.
    if changes.full {
        tx.clear_log(pid)?;
    }
    let chunks = encode_changes(changes, chunk_bytes);
    if changes.full || chunks.iter().any(|c| c.len() > 1) {
        tx.append_log(pid, changes.full, &chunks)?;
        written.log_bytes = chunks.iter().map(|c| c.len() as u64).sum();
    }
    tx.set_counts(
        pid,
        cp.delta.records as i64,
        cp.delta.waiting as i64,
        changes.full,
        written.log_bytes as i64,
    )?;
    let origin = format!("{}/{}", cp.topic, cp.partition);
    for w in &writes {
        if w.delete {
            written.rows += tx.delete_row(pid, w)?;
            continue;
        }
        let before = tx.row_revision(pid, w)?.unwrap_or(0);
        tx.put_row(pid, w, &buckets_text(w.row), &days_text(w.row))?;
        written.rows += 1;
        if i64::from(w.row.revision) > before {
            tx.put_revision(w, &origin, &revision_reason(cp, w.row), &stamp)?;
            written.revisions += 1;
        }
    }
    written.minutes = write_cells(tx, pid, &origin, &cp.delta.cells)?;
    tx.raise_combined_watermark()?;
    Ok(written)
}

/// Adds a checkpoint's counts per minute to the partition's stored minutes; the minutes
/// written (or emptied).
fn write_cells(
    tx: &mut impl Tx,
    pid: i64,
    origin: &str,
    cells: &[crate::engine::aggregate::SavedCell],
) -> Result<usize, StoreError> {
    let mut written = 0;
    let mut rest = cells;
    // The deltas come sorted by month and minute: one read and one write per minute.
    while let Some(first) = rest.first() {
        let n = rest
            .iter()
            .take_while(|c| c.month == first.month && c.minute == first.minute)
            .count();
        let (group, tail) = rest.split_at(n);
        rest = tail;
        let month = first.month.to_string();
        let minute = i32::from(first.minute);
        let mut m = match tx.get_cells(pid, &month, minute)? {
            Some(blob) => super::cells::decode(
                &blob,
                &format!("partition {origin}, {month} minute {minute}"),
            )?,
            None => super::cells::Minute::new(),
        };
        super::cells::add(&mut m, &group.iter().collect::<Vec<_>>());
        if m.is_empty() {
            tx.delete_cells(pid, &month, minute)?;
        } else {
            tx.put_cells(pid, &month, minute, &super::cells::encode(&m))?;
        }
        written += 1;
    }
    Ok(written)
}

/// Decodes rows of [`CELLS`] (`(origin, minute, blob)`) of `month` into cells.
pub(super) fn read_cells(
    month: Month,
    rows: impl IntoIterator<Item = (String, i64, Vec<u8>)>,
) -> Result<Vec<crate::engine::aggregate::SavedCell>, StoreError> {
    let mut out = Vec::new();
    for (origin, minute, blob) in rows {
        let minute = u16::try_from(minute).map_err(|_| {
            StoreError::Backend(format!(
                "partition {origin}: a stored minute {minute} of {month} is out of range"
            ))
        })?;
        let m = super::cells::decode(
            &blob,
            &format!("partition {origin}, {month} minute {minute}"),
        )?;
        out.extend(super::cells::cells_of(month, minute, m));
    }
    Ok(out)
}

/// Records what the identity check decided (a new store's identity, an accepted change).
pub(super) fn apply_identity(
    tx: &mut impl Tx,
    id: &Identity,
    action: &IdentityAction,
) -> Result<(), StoreError> {
    if action.set_topics
        && let Some(t) = &id.topics
    {
        tx.set_meta("topics", t)?;
    }
    if action.set_group
        && let Some(g) = &id.group
    {
        tx.set_meta("group", g)?;
    }
    if action.set_definitions {
        tx.set_meta("definitions", &id.definitions)?;
    }
    if let Some(previous) = &action.changed_from {
        tx.config_change(previous, &id.definitions, &now().to_rfc3339_exact())?;
    }
    Ok(())
}

/// A partition's meta as stored (JSON), if it was ever checkpointed.
pub(super) fn meta_of(text: Option<String>) -> Result<Option<SavedMeta>, StoreError> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| {
            StoreError::Backend(format!(
                "a stored partition meta is damaged: {}",
                crate::echo::cut(&e.to_string(), 200)
            ))
        })
    })
    .transpose()
}

/// A month row's columns, in [`MONTH_ROWS`]'s order.
pub(super) struct RowColumns {
    pub month: String,
    pub measure: String,
    pub region: String,
    pub requests: i64,
    pub within_target: i64,
    pub succeeded: i64,
    pub no_response: i64,
    pub buckets: String,
    pub histogram: Option<Vec<u8>>,
    pub max_ms: Option<i64>,
    pub revision: i64,
    /// Counts by day ([`days_text`]); `None` in rows written before schema version 2.
    pub days: Option<String>,
    pub origin: String,
    /// Acknowledged requests (0 in rows written before schema version 5).
    pub acked: i64,
    pub ack_histogram: Option<Vec<u8>>,
    pub after_ack_histogram: Option<Vec<u8>>,
    /// Counts by user ([`users_text`]); `None` before schema version 5.
    pub users: Option<String>,
}

impl RowColumns {
    /// The row as the store's readers take it, once its counts are possible: a store edited or
    /// damaged into more hits than requests, or a negative count, is refused with the
    /// partition and month named, never rolled up into an RPL above 100 % or a count near 2^64.
    pub fn stored(self) -> Result<StoredRow, StoreError> {
        let impossible = |what: String| {
            StoreError::Impossible(format!(
                "the stored month row {} {} {} of partition {} holds impossible counts ({what}): \
                 the store was damaged or edited, and nothing is rolled up from it",
                crate::echo::cut(&self.month, 16),
                crate::echo::cut(&self.measure, 64),
                crate::echo::cut(&self.region, 16),
                self.origin
            ))
        };
        let count =
            |name: &str, v: i64| u64::try_from(v).map_err(|_| impossible(format!("{name} {v}")));
        let requests = count("requests", self.requests)?;
        let within_target = count("within_target", self.within_target)?;
        let succeeded = count("succeeded", self.succeeded)?;
        let no_response = count("no_response", self.no_response)?;
        for (name, v) in [
            ("within_target", within_target),
            ("succeeded", succeeded),
            ("no_response", no_response),
        ] {
            if v > requests {
                return Err(impossible(format!("{name} {v} > requests {requests}")));
            }
        }
        // A request without a final response within its deadline never succeeded.
        if succeeded + no_response > requests {
            return Err(impossible(format!(
                "succeeded {succeeded} + no_response {no_response} > requests {requests}"
            )));
        }
        let max_ms = self.max_ms.map(|v| count("max_ms", v)).transpose()?;
        let acked = count("acked", self.acked)?;
        if acked > requests {
            return Err(impossible(format!("acked {acked} > requests {requests}")));
        }
        let users = self
            .users
            .as_deref()
            .map(users_from)
            .transpose()?
            .unwrap_or_default();
        if users
            .iter()
            .any(|(_, [r, w, s, n])| w > r || s > r || n > r)
        {
            return Err(impossible("a user's counts above its requests".into()));
        }
        let revision = u32::try_from(self.revision)
            .map_err(|_| impossible(format!("revision {}", self.revision)))?;
        let (buckets, samples) = buckets_from(&self.buckets)?;
        let missed = buckets
            .iter()
            .try_fold(0u64, |sum, (_, n)| sum.checked_add(*n));
        if missed.is_none_or(|m| m > requests) {
            return Err(impossible(format!(
                "failure buckets above requests {requests}"
            )));
        }
        let days = self
            .days
            .as_deref()
            .map(days_from)
            .transpose()?
            .unwrap_or_default();
        let by_day = days
            .iter()
            .try_fold(0u64, |sum, (_, [r, w, s])| {
                (w <= r && s <= r).then_some(())?;
                sum.checked_add(*r)
            })
            .filter(|d| *d <= requests);
        if by_day.is_none() {
            return Err(impossible(format!(
                "counts by day above requests {requests}"
            )));
        }
        Ok(StoredRow {
            month: month_of(&self.month)?,
            region: Region::parse(&self.region)
                .map(|r| r as usize)
                .ok_or_else(|| {
                    StoreError::Backend(format!(
                        "a stored region {:?} is unknown",
                        crate::echo::cut(&self.region, 16)
                    ))
                })?,
            origin: self.origin,
            measure: self.measure,
            row: SavedRow {
                requests,
                within_target,
                succeeded,
                no_response,
                buckets,
                samples,
                histogram: self.histogram,
                max_ms,
                revision,
                days,
                acked,
                ack_histogram: self.ack_histogram,
                after_ack_histogram: self.after_ack_histogram,
                users,
            },
        })
    }
}

/// A partition's columns, in [`PARTITIONS`]'s order.
pub(super) struct PartitionColumns {
    pub topic: String,
    pub partition: i32,
    pub epoch: i64,
    pub owner: String,
    pub next_offset: i64,
    pub meta: Option<String>,
    pub checkpointed_at: Option<String>,
}

impl PartitionColumns {
    /// The partition as the store knows it.
    pub fn info(self) -> Result<PartitionInfo, StoreError> {
        let meta = meta_of(self.meta).map_err(|e| {
            StoreError::Backend(format!(
                "partition {}/{}: {e}",
                crate::echo::cut(&self.topic, 64),
                self.partition
            ))
        })?;
        Ok(PartitionInfo {
            topic: self.topic,
            partition: self.partition,
            epoch: self.epoch,
            owner: self.owner,
            next_offset: self.next_offset,
            meta,
            checkpointed_at: self.checkpointed_at,
        })
    }
}

/// A revision's columns, in [`REVISIONS`]'s order.
pub(super) struct RevisionColumns {
    pub id: i64,
    pub month: String,
    pub measure: String,
    pub region: String,
    pub origin: String,
    pub revision: i64,
    pub reason: String,
    pub recorded_at: String,
}

impl RevisionColumns {
    /// The revision as the history records it.
    pub fn record(self) -> Result<RevisionRecord, StoreError> {
        Ok(RevisionRecord {
            id: self.id,
            month: month_of(&self.month)?,
            measure: self.measure,
            region: self.region,
            origin: self.origin,
            revision: self.revision as u32,
            reason: self.reason,
            recorded_at: self.recorded_at,
        })
    }
}

/// Ids as the history keeps them: a JSON array.
pub(super) fn ids_text(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

/// [`ids_text`] back (a damaged list reads as none).
pub(super) fn ids_of(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// What a newly recorded register changes against the last: (added, withdrawn) ids.
pub(super) fn id_changes(before: &[String], now: &[String]) -> (Vec<String>, Vec<String>) {
    let added = now
        .iter()
        .filter(|i| !before.contains(i))
        .cloned()
        .collect();
    let withdrawn = before
        .iter()
        .filter(|i| !now.contains(i))
        .cloned()
        .collect();
    (added, withdrawn)
}

/// A register record's columns, in [`REGISTER_HISTORY`]'s order.
pub(super) struct RegisterColumns {
    pub month: String,
    pub sha256: String,
    pub ids: String,
    pub register: String,
    pub added: String,
    pub withdrawn: String,
    pub recorded_at: String,
}

impl RegisterColumns {
    /// The record.
    pub fn record(self) -> Result<super::api::RegisterRecord, StoreError> {
        Ok(super::api::RegisterRecord {
            month: month_of(&self.month)?,
            sha256: self.sha256,
            ids: ids_of(&self.ids),
            text: self.register,
            added: ids_of(&self.added),
            withdrawn: ids_of(&self.withdrawn),
            recorded_at: self.recorded_at,
        })
    }
}
