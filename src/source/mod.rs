//! Event sources: reading lines from files (plain or gzip) and driving the pipeline with them.
//!
//! - `lines`: splitting a byte stream into lines (CRLF, BOM, size cap).
//! - `files`: JSON Lines files as concurrent sources ordered by watermark.
//! - `batch`: checked lines handed from the reading thread to the pipeline's.

pub mod batch;
pub mod files;
pub mod lines;
