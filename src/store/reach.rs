//! Whether this process's state store answers: set while a store operation retries a lost
//! connection (`state.reconnect_timeout`), cleared when one succeeds. One process has one
//! configured store, so this is process-wide, as the log is; the alert evaluator, `/readyz` and
//! the status page read it.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

static DOWN: Mutex<Option<(SystemTime, String)>> = Mutex::new(None);

/// The store stopped answering (`why`: the error, no secret in it); the first time is kept.
pub fn lost(why: &str) {
    let mut d = DOWN.lock().unwrap_or_else(PoisonError::into_inner);
    if d.is_none() {
        *d = Some((SystemTime::now(), why.to_string()));
    }
}

/// The store answered.
pub fn answered() {
    *DOWN.lock().unwrap_or_else(PoisonError::into_inner) = None;
}

/// Since when the store has been unreachable, and why (`None` while it answers).
pub fn unreachable() -> Option<(SystemTime, String)> {
    DOWN.lock().unwrap_or_else(PoisonError::into_inner).clone()
}
