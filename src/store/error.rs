//! Why a store operation failed: one error for both backends, saying which and what to do.

use crate::engine::calendar::Month;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another instance claimed the partition after this one: the checkpoint was not written.
    #[error(
        "{topic}/{partition} was claimed by another instance since this one claimed it \
         (epoch {held}): checkpoint refused"
    )]
    Fenced {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The epoch this instance held.
        held: i64,
    },
    /// The store belongs to something else (newer version, other topic, group or definitions).
    #[error("{0}")]
    Refused(String),
    /// The database said no.
    #[error("{0}")]
    Backend(String),
    /// The connection to the database was lost or could not be made again (a restart, a
    /// failover, a network cut): worth retrying on a new connection.
    #[error("{0}")]
    Unavailable(String),
    /// There is no store to read.
    #[error("{0}")]
    Absent(String),
    /// A stored row does not decode.
    #[error(transparent)]
    Damaged(#[from] crate::engine::aggregate::RowError),
    /// A stored row holds counts no run can make (more hits than requests, a negative count):
    /// the store was damaged or edited, and nothing is rolled up from it.
    #[error("{0}")]
    Impossible(String),
    /// The password cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::config::secrets::SecretError),
}

/// A stored month's text back, or why it is not one.
pub(super) fn month_of(text: &str) -> Result<Month, StoreError> {
    Month::parse(text).ok_or_else(|| {
        StoreError::Backend(format!(
            "a stored month {:?} is not YYYY-MM",
            crate::echo::cut(text, 16)
        ))
    })
}
