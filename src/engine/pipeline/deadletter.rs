//! Dead letters on their way out of the core: what one carries, the sink trait the shells
//! implement (a file, a Kafka topic), and how a source names positions in their origins.

use std::io;

use crate::engine::event::DeadReason;

/// A dead letter on its way out.
#[derive(Debug)]
pub struct DeadLetter<'a> {
    /// Why.
    pub reason: DeadReason,
    /// `path:line` or `topic/partition/offset`.
    pub origin: String,
    /// The event's bytes.
    pub raw: &'a [u8],
    /// `raw` was rebuilt from stored fields.
    pub reconstructed: bool,
}

/// Where dead letters go. A failure to write one is fatal to the pipeline: bad input may never
/// disappear.
pub trait DeadLetterSink {
    /// Writes one dead letter.
    fn write(&mut self, dl: &DeadLetter<'_>) -> io::Result<()>;
}

/// A sink that keeps dead letters in memory (tests, `demo`).
#[derive(Debug, Default)]
pub struct VecDeadLetters(pub Vec<(DeadReason, String, Vec<u8>)>);

impl DeadLetterSink for VecDeadLetters {
    fn write(&mut self, dl: &DeadLetter<'_>) -> io::Result<()> {
        self.0.push((dl.reason, dl.origin.clone(), dl.raw.to_vec()));
        Ok(())
    }
}

/// How a source names positions in dead-letter origins.
#[derive(Debug, Clone)]
pub struct SourceName {
    /// File path, or `topic/partition`.
    pub name: String,
    /// `:` for `path:line`, `/` for `topic/partition/offset`.
    pub separator: char,
}
