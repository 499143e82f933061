//! Month sign-off and restatements (issue 31): what was submitted for a month is recorded in
//! the state store, append-only, and any later change to it is listed field by field with what
//! moved it. `sign` reads a month's current figures from the store and records a sign-off;
//! `review` compares every signed month with now; `compare` (no I/O) lists what changed since
//! a sign-off, and why.

pub mod compare;
mod error;
mod review;
mod sign;

pub use error::SignOffError;
pub use review::{Compared, SHOWN_CHANGES, SignedMonth, compare_all, summarise};
pub use sign::{Current, Request, current, sign, view_index};
