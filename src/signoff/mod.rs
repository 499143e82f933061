//! Month sign-off and restatements (issue 31): what was submitted for a month is recorded in
//! the state store, append-only, and any later change to it is listed field by field with what
//! moved it. `sign` reads a month's current figures from the store and records a sign-off;
//! `review` compares every signed month with now; `compare` (no I/O) lists what changed since
//! a sign-off, and why.

pub mod compare;
mod error;
mod review;
mod sign;

pub(crate) use error::SignOffError;
pub(crate) use review::compare_all;
pub(crate) use review::summarise;
pub use review::{SHOWN_CHANGES, SignedMonth};
pub use sign::Request;
pub(crate) use sign::sign;
