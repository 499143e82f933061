//! Why signing a month or reading its sign-offs failed, in the terms `srv-opr` reports them.

use crate::engine::calendar::UnknownZone;
use crate::store::StoreError;

/// Why signing a month, or comparing signed months with their figures now, failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SignOffError {
    /// The request does not fit the register or the month (a view it does not name, a month
    /// not yet final): said in the user's terms.
    #[error("{0}")]
    Usage(String),
    /// The configured time zone is unknown.
    #[error(transparent)]
    Zone(#[from] UnknownZone),
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}
