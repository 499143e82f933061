//! The one place the synchronous core is driven: raw event → decode → catalog → correlator →
//! aggregates and the dead-letter sink, with the per-event accounting of SPEC §2 and §6
//! (`srv_events_total{type,result}`).
//!
//! Sources (files, Kafka partitions) own the reading and the watermark arithmetic;
//! they call [`Pipeline::process`] per event and [`Pipeline::advance`] when their watermark moves.
//!
//! - `driver`: the [`Pipeline`] of one scope, and what it is built from;
//! - `check`: the stateless half (decode, validate, key), which a reading thread runs ahead;
//! - `accounting`: each event's type and result, and the counters;
//! - `deadletter`: dead letters on their way out, the sink the shells implement;
//! - `misses`: every missed request as decided, when the evidence asked for all;
//! - `checkpoint`: the delta a checkpoint writes, and the restore.

mod accounting;
mod check;
mod checkpoint;
mod deadletter;
mod driver;
mod misses;

pub use accounting::PipelineStats;

pub(crate) use accounting::{EventResult, EventType};
pub use check::{Checked, check};
pub use checkpoint::SavedBlock;
pub(crate) use checkpoint::{Delta, RestoreError, SavedMeta, SavedPipeline};
pub use deadletter::{DeadLetter, DeadLetterSink, SourceName, VecDeadLetters};
pub use driver::Pipeline;
pub(crate) use driver::PipelineConfig;
pub(crate) use misses::MissSink;
pub use misses::Missed;
