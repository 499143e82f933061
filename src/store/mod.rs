//! The durable state store: each partition's checkpoint (consumed offset, correlator records,
//! waiting responses, month aggregates) written in one transaction, its fencing epoch, and the
//! revision history of final months; read back on assignment and by `rollup`.
//!
//! One interface ([`Store`]), two backends chosen by URL: SQLite (`sqlite://PATH`, embedded,
//! one instance) and PostgreSQL (`postgres://…`, shared by the consumer group). Every
//! connection checks on open that the store was made for the same topics, group and
//! definitions (SPEC §3), and migrates an older schema.
//!
//! Fencing: claiming a partition raises its epoch; a checkpoint names the epoch it was claimed
//! under and is refused once another instance has claimed the partition since, so a former
//! owner can never overwrite its successor's state.

mod api;
pub mod cells;
pub mod codec;
mod error;
mod identity;
pub mod load;
mod open;
pub mod pgtls;
pub mod postgres;
pub mod reach;
mod rows;
pub mod signoff;
mod sql;
pub mod sqlite;

pub use api::{Checkpoint, SavedPartition, Store, Written};

pub(crate) use api::{RegisterStamp, RevisionRecord, snapshot_due};
pub use error::StoreError;
pub(crate) use identity::owner_name;
pub use identity::{Identity, SCHEMA_VERSION};
pub use open::open;
pub(crate) use open::{open_configured, redacted};
