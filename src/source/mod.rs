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
    /// Reading failed, or the pipeline's dead-letter sink did (the message says which).
    #[error(transparent)]
    Io(#[from] io::Error),
}
