//! What passes between the fetch thread and a worker: a partition's state (owned by exactly one
//! of them at a time), why it moves, and the work a worker is sent.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use super::batch::Batch;
use super::deadletter::KafkaDeadLetters;
use crate::engine::clock::SourceClock;
use crate::engine::pipeline::Pipeline;

/// One partition's state, owned by its worker.
pub(crate) struct PartState {
    /// The partition's pipeline (correlator, aggregates, accounting).
    pub(super) pipeline: Pipeline<KafkaDeadLetters>,
    /// The partition's event-time clock: the newest `at` its watermark follows (the watermark is
    /// that minus the allowed lateness), which an outlier far ahead cannot move alone.
    pub(super) clock: SourceClock,
    /// The next offset to process.
    pub(super) next_offset: i64,
    /// When the partition last delivered a message (wall clock).
    pub(super) last_event: Instant,
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) partition_count: i32,
    pub(super) published: Instant,
    pub(super) dirty: bool,
    /// The store's fencing epoch for this partition (0 without a store).
    pub(super) epoch: i64,
    /// Events since the last checkpoint.
    pub(super) since_checkpoint: u64,
    /// When the last checkpoint was written (or the partition assigned).
    pub(super) checkpointed: Instant,
    /// Bytes of the partition's state log in the store, as its worker's writer last wrote it.
    pub(super) log_bytes: Arc<AtomicU64>,
}

/// Why a partition's state is leaving its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandOverCause {
    /// The group took the partition away (another member will own it).
    Revoked,
    /// The service is stopping.
    Shutdown,
}

/// What the fetch thread sends a worker.
pub(super) enum Work {
    /// Take a partition's state under this slot.
    Assign(u32, Box<PartState>),
    /// Process these messages.
    Batch(Batch),
    /// Process everything before this, checkpoint the slots (their hand-over), then send their
    /// state back.
    Release(
        Vec<u32>,
        HandOverCause,
        SyncSender<Vec<(u32, Box<PartState>)>>,
    ),
}
