//! Correlation: each request matched with its final response in event time (SPEC §2).
//!
//! - `correlator`: the state machine (requests, responses, watermark, decisions, revisions,
//!   orphans, conflicts) and what it outputs;
//! - `interface`: what it takes (requests, responses) and gives (verdicts, outputs);
//! - `key`: request keys (128-bit hashes of the ids), their hasher, event positions;
//! - `changes`: which keys changed since the last checkpoint;
//! - `checkpoint`: the shapes a checkpoint stores, and the restore.
//!
//! State per request id (keyed by a 128-bit hash of the id) is one 40-byte `Entry`: pending
//! until the watermark passes its final response or its deadline, then a compact decided record
//! until the watermark passes its `at` + the longest deadline + `dedupe_horizon`. Responses whose
//! request has not been seen wait (with their raw bytes, for the dead letter they may become) in
//! a separate, capped map. Nothing else is kept, so memory follows what is pending.

mod changes;
mod checkpoint;
mod correlator;
mod decided;
mod interface;
mod key;

pub use checkpoint::{Changes, SavedEntry, SavedWaiting};
pub use correlator::{Correlator, CorrelatorConfig, CorrelatorStats};
pub use interface::{
    Decision, Displaced, Evidence, Output, Req, Resp, StoredDead, Verdict, evidence_text,
};
pub use key::{KeyHasher, KeyMap, KeySet, Pos, key_of};
