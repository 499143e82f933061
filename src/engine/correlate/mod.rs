//! Correlation: each request matched with its final response in event time (SPEC §2).
//!
//! - `correlator`: the state machine (requests, responses, watermark, decisions, revisions,
//!   orphans, conflicts) and what it outputs;
//! - `interface`: what it takes (requests, responses) and gives (verdicts, outputs);
//! - `entry`: the records (a request's, a waiting response's), their flags and saved forms;
//! - `decided`: decided requests kept compactly for the dedupe horizon;
//! - `key`: request keys (128-bit hashes of the ids), their hasher, event positions;
//! - `changes`: which keys changed since the last checkpoint;
//! - `checkpoint`: the changes a checkpoint writes, and the restore.
//!
//! State per request id (keyed by a 128-bit hash of the id) is one 56-byte `Entry` while the
//! request is pending, until the watermark passes its final response or its deadline. Then it
//! is decided, and kept until the watermark passes its due time + the longest deadline +
//! `dedupe_horizon`. Meanwhile it lives in `decided`, a compact table of 33 bytes a record that
//! needs no expiry timer (what does not fit stays in the map); a checkpoint writes it as its
//! 34 bytes, known by 79 bits of its key. Responses whose request has not been seen wait in a
//! separate, capped map, with their raw bytes for the dead letter they may become. Nothing else is kept,
//! so memory follows what is pending and the horizon.

mod changes;
mod checkpoint;
mod correlator;
mod decided;
mod entry;
mod interface;
mod key;

pub use checkpoint::Changes;
pub use correlator::Correlator;
pub(crate) use correlator::{CorrelatorConfig, CorrelatorStats};
pub(crate) use decided::SAVED_DECIDED_BYTES;
pub use decided::{SAVED_DECIDED_BYTES_V3, SavedDecided, last_of_each, reduced_key};
pub use entry::{SavedEntry, SavedWaiting};
pub(crate) use interface::evidence_parts;
pub use interface::{Decision, Evidence, Output, Req, Resp, Revision, Verdict, evidence_text};
pub(crate) use key::KeyMap;
pub use key::{KeyHasher, Pos, key_of};
