//! How an error reads to a person: its `source` chain on one line, with every secret the process
//! knows masked, and a warning that repeats many times a second (a broker down) logged once and
//! then summarised. A leaf every layer may use (in logs and in the problems it reports); it
//! imports nothing of the crate.

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Every secret value this process has read (passwords, key material), longest first: no text
/// that passes through [`redact`] may show one.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// What a secret is replaced with.
pub const MASK: &str = "*****";

/// Remembers `value` as a secret, so [`redact`] masks it wherever it appears.
pub(crate) fn register_secret(value: &str) {
    if value.is_empty() {
        return;
    }
    let mut s = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !s.iter().any(|v| v == value) {
        s.push(value.to_string());
        // Longest first, so a secret that contains another is masked whole.
        s.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// `text` with every registered secret replaced by [`MASK`]: for whatever a library says
/// (librdkafka's logs and errors echo property values).
pub fn redact(text: &str) -> String {
    let s = SECRETS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = text.to_string();
    for v in s.iter() {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), MASK);
        }
    }
    out
}

/// An error and its `source` chain, joined by `: `, skipping a cause whose text its parent
/// already ends with (a wrapper that repeats its cause), every secret masked.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    redact(&out)
}

/// A writer that masks every registered secret in what passes through it: the log's last line
/// of defence, for a library that logs a header or a property at a debug or trace level. The
/// log formatter hands it one whole event per write, so a secret is never split across two.
pub struct Redacting<W>(pub W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let any = !SECRETS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty();
        if any {
            self.0
                .write_all(redact(&String::from_utf8_lossy(buf)).as_bytes())?;
        } else {
            self.0.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Summarises a warning that repeats: the first of a kind is logged at once; the same kind again
/// within `every` is only counted, and the next one after that is logged with the count held
/// back. A broker that stays down then costs one line per kind every `every`, not dozens a
/// second (3.5 million lines a day at librdkafka's reconnect rate).
pub(crate) struct Repeats {
    every: Duration,
    seen: Mutex<BTreeMap<String, Seen>>,
}

struct Seen {
    logged: Instant,
    held_back: u64,
}

/// Kinds of warning remembered at most (a flood of distinct ones is not summarised further).
const MAX_KINDS: usize = 1024;

impl Repeats {
    /// A summariser logging each kind at most once per `every`.
    pub const fn new(every: Duration) -> Repeats {
        Repeats {
            every,
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether an occurrence of `kind` at `now` is logged: `Some(n)` with the `n` like it held
    /// back since the last one logged, or `None` when it is only counted.
    pub(crate) fn admit(&self, kind: &str, now: Instant) -> Option<u64> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match seen.get_mut(kind) {
            Some(s) if now.saturating_duration_since(s.logged) < self.every => {
                s.held_back += 1;
                None
            }
            Some(s) => {
                let n = std::mem::take(&mut s.held_back);
                s.logged = now;
                Some(n)
            }
            None => {
                if seen.len() >= MAX_KINDS {
                    seen.clear();
                }
                seen.insert(
                    kind.to_string(),
                    Seen {
                        logged: now,
                        held_back: 0,
                    },
                );
                Some(0)
            }
        }
    }

    /// Seconds between two lines of a kind (for the message that states it).
    pub(crate) fn every_secs(&self) -> u64 {
        self.every.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_warning_is_logged_once_then_once_per_interval_with_its_count() {
        let r = Repeats::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(r.admit("down", at(0)), Some(0));
        // 40 a second for 30 s: counted, not logged.
        let held = (1..1200)
            .filter(|i| r.admit("down", at(i * 25)).is_some())
            .count();
        assert_eq!(held, 0);
        // Another kind is its own.
        assert_eq!(r.admit("auth", at(100)), Some(0));
        assert_eq!(r.admit("down", at(30_000)), Some(1199));
        assert_eq!(r.admit("down", at(30_001)), None);
        // After a quiet spell the next one is logged at once.
        assert_eq!(r.admit("down", at(600_000)), Some(1));
    }

    #[test]
    fn the_log_writer_masks_registered_secrets() {
        register_secret("Basic c3J2Om9wci1sb2c=");
        let mut w = Redacting(Vec::new());
        std::io::Write::write_all(&mut w, b"header: Basic c3J2Om9wci1sb2c=\n").unwrap();
        assert_eq!(String::from_utf8(w.0).unwrap(), "header: *****\n");
    }

    #[test]
    fn registered_secrets_are_masked_wherever_they_appear() {
        register_secret("hunter2-diagnostic");
        register_secret("hunter2-diagnostic-longer");
        assert_eq!(
            redact("a hunter2-diagnostic-longer b hunter2-diagnostic"),
            "a ***** b *****"
        );
        let e = std::io::Error::other("property sasl.pasword set to hunter2-diagnostic");
        assert!(!chain(&e).contains("hunter2"), "{}", chain(&e));
    }
}
