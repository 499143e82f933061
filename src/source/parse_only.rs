//! `replay --parse-only`: every line read and validated, nothing correlated, nothing written.
//! The rate at which a file can merely be read and parsed, which bounds a full replay.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use crate::engine::event::{DeadReason, Event, decode, ignored_type};

use super::SourceError;
use super::files::Input;
use super::lines::{LineReader, is_blank};

/// What a parse-only pass found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ParseOnly {
    /// Lines read, blank included.
    pub lines: u64,
    /// Blank lines.
    pub blank_lines: u64,
    /// Valid requests.
    pub requests: u64,
    /// Valid responses.
    pub responses: u64,
    /// Valid availability events (their interface not checked: no definitions here).
    pub availability: u64,
    /// Invalid events by reason.
    pub invalid: std::collections::BTreeMap<&'static str, u64>,
    /// Lines of the types `input.ignore_types` lists, by type (not invalid: left alone).
    pub ignored_by_type: std::collections::BTreeMap<String, u64>,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Lines per second.
    pub lines_per_second: f64,
}

/// Reads and validates every line of `inputs` (decode only: no correlation, no output files).
/// The rate at which a file can merely be read and parsed: the bound on a full replay.
pub fn parse_only(
    max_event_bytes: usize,
    ignore_types: &[String],
    inputs: &[Input],
) -> Result<ParseOnly, SourceError> {
    let started = Instant::now();
    let limit = max_event_bytes;
    let mut r = ParseOnly::default();
    let mut invalid = [0u64; DeadReason::COUNT];
    for input in inputs {
        let mut reader = LineReader::new(input.open(Arc::new(AtomicU64::new(0)))?, limit);
        while let Some(line) = reader.next_line()? {
            r.lines += 1;
            let bytes = reader.bytes(&line);
            if is_blank(bytes) && !line.is_oversized() {
                r.blank_lines += 1;
                continue;
            }
            match decode(bytes, limit) {
                Ok(Event::Request(_)) => r.requests += 1,
                Ok(Event::Response(_)) => r.responses += 1,
                Ok(Event::Availability(_)) => r.availability += 1,
                Err(reason) => match ignored_type(bytes, reason, ignore_types) {
                    Some(t) => *r.ignored_by_type.entry(t.into_owned()).or_insert(0) += 1,
                    None => invalid[reason.index()] += 1,
                },
            }
        }
    }
    r.invalid = DeadReason::ALL
        .iter()
        .filter(|d| invalid[d.index()] > 0)
        .map(|d| (d.as_str(), invalid[d.index()]))
        .collect();
    r.wall_seconds = started.elapsed().as_secs_f64();
    r.lines_per_second = r.lines as f64 / r.wall_seconds.max(1e-9);
    Ok(r)
}
