//! What a store keeps and does: the [`Store`] trait every backend implements, and the
//! records it takes and gives (claims, checkpoints, partitions, month rows, revisions,
//! registers).

use crate::engine::aggregate::SavedRow;
use crate::engine::calendar::Month;
use crate::engine::pipeline::{Delta, SavedMeta, SavedPipeline};

use super::error::StoreError;
use super::signoff;

/// A partition claimed: the epoch to checkpoint under, and the state to resume from.
#[derive(Debug)]
pub struct Claim {
    /// The fencing epoch.
    pub epoch: i64,
    /// The previous checkpoint, if the partition has one.
    pub saved: Option<SavedPartition>,
}

/// A partition's last checkpoint.
#[derive(Debug)]
pub struct SavedPartition {
    /// The next offset to read.
    pub next_offset: i64,
    /// Largest valid event `at` seen (ns), from which the partition's watermark follows.
    pub max_at: i64,
    /// Bytes of its state log (deltas since the last full snapshot, and that snapshot).
    pub log_bytes: u64,
    /// The pipeline's state.
    pub pipeline: SavedPipeline,
}

/// One partition's checkpoint.
#[derive(Debug)]
pub struct Checkpoint<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// The epoch the partition was claimed under.
    pub epoch: i64,
    /// The next offset to read: every event before it is in this checkpoint.
    pub next_offset: i64,
    /// Largest valid event `at` seen (ns).
    pub max_at: i64,
    /// What changed since the previous checkpoint.
    pub delta: &'a Delta,
}

/// What a checkpoint wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Records written or deleted.
    pub records: usize,
    /// Bytes appended to the partition's state log.
    pub log_bytes: u64,
    /// Month rows written.
    pub rows: usize,
    /// Rows of final months whose revision rose (each recorded in the history).
    pub revisions: usize,
    /// Minutes whose counts were written.
    pub minutes: usize,
}

/// A partition as the store knows it.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Fencing epoch.
    pub epoch: i64,
    /// Who claimed it last (host and process).
    pub owner: String,
    /// Next offset to read.
    pub next_offset: i64,
    /// Counters and watermarks, if checkpointed at least once.
    pub meta: Option<SavedMeta>,
    /// When it was last checkpointed (RFC 3339).
    pub checkpointed_at: Option<String>,
}

/// One stored month row of one partition.
#[derive(Debug, Clone)]
pub struct StoredRow {
    /// The partition (`topic/partition`).
    pub origin: String,
    /// Month.
    pub month: Month,
    /// Measure id.
    pub measure: String,
    /// Region index (0 north, 1 central, 2 south).
    pub region: usize,
    /// The row.
    pub row: SavedRow,
}

/// A recorded revision of a final month's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRecord {
    /// Its place in the history (later ones larger).
    pub id: i64,
    /// Month.
    pub month: Month,
    /// Measure id.
    pub measure: String,
    /// Region name.
    pub region: String,
    /// Topic/partition whose late events changed it.
    pub origin: String,
    /// The partition row's revision after the change.
    pub revision: u32,
    /// Why.
    pub reason: String,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
}

/// One register recorded against a final month: what its figures were counted under from then
/// on (issue 29). The first is the one in force when the month became final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRecord {
    /// Month.
    pub month: Month,
    /// SHA-256 of the register's file (empty: no register).
    pub sha256: String,
    /// Its exemption ids.
    pub ids: Vec<String>,
    /// Its file's text (empty: no register).
    pub text: String,
    /// Ids it added to the previous record's.
    pub added: Vec<String>,
    /// Ids of the previous record it no longer has.
    pub withdrawn: Vec<String>,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
}

/// The register in force, as [`Store::record_register`] records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterStamp {
    /// SHA-256 of its file (empty: none).
    pub sha256: String,
    /// Its ids, in file order.
    pub ids: Vec<String>,
    /// Its file's text.
    pub text: String,
}

impl RegisterStamp {
    /// The stamp of `register`.
    pub fn of(register: &crate::engine::exemption::Register) -> RegisterStamp {
        RegisterStamp {
            sha256: register.sha256.clone().unwrap_or_default(),
            ids: register.exemptions.iter().map(|e| e.id.clone()).collect(),
            text: register.text.clone(),
        }
    }
}

/// The state store: one connection, used by one thread.
pub trait Store: Send {
    /// Claims a partition for `owner`: raises its epoch and reads its last checkpoint.
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claim, StoreError>;

    /// Writes one partition's checkpoint in one transaction; refused with
    /// [`StoreError::Fenced`] if the partition was claimed since `cp.epoch`.
    fn checkpoint(&mut self, cp: &Checkpoint<'_>) -> Result<Written, StoreError>;

    /// Every partition known.
    fn partitions(&mut self) -> Result<Vec<PartitionInfo>, StoreError>;

    /// The month rows of every partition (of one month, or all).
    fn month_rows(&mut self, month: Option<Month>) -> Result<Vec<StoredRow>, StoreError>;

    /// The combined watermark last checkpointed (ns), if any.
    fn combined_watermark(&mut self) -> Result<Option<i64>, StoreError>;

    /// The revision history (of one month, or all), oldest first.
    fn revisions(&mut self, month: Option<Month>) -> Result<Vec<RevisionRecord>, StoreError>;

    /// The months some partition holds rows of, oldest first.
    fn months(&mut self) -> Result<Vec<Month>, StoreError>;

    /// The counts per minute of `month`, minutes `minutes.0` up to (not including)
    /// `minutes.1`, of every partition or of `partition` (topic, number); none from a store
    /// older than schema version 3.
    fn cells(
        &mut self,
        month: Month,
        minutes: (u16, u16),
        partition: Option<(&str, i32)>,
    ) -> Result<Vec<crate::engine::aggregate::SavedCell>, StoreError>;

    /// Records `stamp` against every month final by `final_before` (its end plus the longest
    /// deadline before it, as `ends` says: month → that instant) whose latest record is of
    /// another register: the months recorded. A store older than schema 3 records nothing.
    fn record_register(
        &mut self,
        stamp: &RegisterStamp,
        final_at: &dyn Fn(Month) -> i64,
    ) -> Result<Vec<Month>, StoreError>;

    /// The registers recorded against `month`, oldest first.
    fn register_history(&mut self, month: Month) -> Result<Vec<RegisterRecord>, StoreError>;

    /// Records a sign-off (append-only; recording the same one twice, a retry, adds nothing):
    /// its id. A store older than schema 4 cannot hold one (a reader never migrates it).
    fn sign_off(&mut self, s: &signoff::SignOff) -> Result<i64, StoreError>;

    /// The sign-offs of `month` (or all), oldest first; none from a store older than schema 4.
    fn signoffs(&mut self, month: Option<Month>) -> Result<Vec<signoff::SignOff>, StoreError>;

    /// The revision history's largest id (0 when empty): what a sign-off has seen.
    fn revision_mark(&mut self) -> Result<i64, StoreError>;
}

/// Whether a partition's next checkpoint should write a full snapshot that replaces its state
/// log, rather than append a delta: once the log holds more than twice what a snapshot would
/// (plus 4 MiB, so small states are not rewritten for nothing). Restoring then reads at most
/// about three snapshots' worth, and snapshots cost at most as many bytes as the deltas did.
pub(crate) fn snapshot_due(log_bytes: u64, snapshot_bytes: u64) -> bool {
    log_bytes > 2 * snapshot_bytes + (4 << 20)
}
