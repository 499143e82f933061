//! Where results go: files written atomically into an output directory.
//!
//! - `outdir`: create the directory, write each file under a temporary name, rename when done
//!   (so a reader never sees half a file and only the files a command writes are replaced).
//! - `deadletter`: dead letters as JSON Lines.
//! - `evidence_stream`: every missed request as decided, gzip per measure (`[evidence] sample =
//!   "all"`).
//! - `outputs`: the set of month output files, written together.
//! - `month`: the month outputs' texts (`rpl.csv`, `failures.csv`, `evidence/`, `opr-inputs.csv`,
//!   `availability.csv`, `exemptions.csv`, `summary.json`), a file each.

pub mod deadletter;
pub mod evidence_stream;
pub mod month;
pub mod outdir;
pub mod outputs;
