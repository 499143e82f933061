//! Event sources: reading lines from files (plain or gzip) and driving the pipeline with them.
//!
//! - `lines`: splitting a byte stream into lines (CRLF, BOM, size cap).
//! - `files`: JSON Lines files as concurrent sources ordered by watermark.
//! - `parse_only`: reading and validating without correlating (`replay --parse-only`).
//! - `batch`: checked lines handed from the reading thread to the pipeline's.

pub mod batch;
pub mod files;
pub mod lines;
pub mod parse_only;

use std::io;
use std::path::PathBuf;

/// Why an event source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// Which.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A directory was named as an input.
    #[error("{}: is a directory, not an event file", path.display())]
    Directory {
        /// Which.
        path: PathBuf,
    },
    /// Reading an input failed part-way (a truncated or damaged gzip, a disk error). The whole
    /// replay fails: figures without the rest of the file would be wrong without saying so.
    #[error("{name}: reading failed after {at} bytes of the file ({out} bytes of events read)")]
    Read {
        /// The input.
        name: String,
        /// Bytes of the file read when it failed (compressed, for gzip).
        at: u64,
        /// Bytes of events (decompressed) read before it.
        out: u64,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading failed, or the pipeline's dead-letter sink did (the message says which).
    #[error(transparent)]
    Io(#[from] io::Error),
}
