//! Missed requests on their way out of the core as they are decided (`[evidence] sample =
//! "all"`): what one carries and the sink trait a shell implements (`sink::evidence_stream`
//! writes them to `evidence/<measure>.csv.gz`).

use std::io;

use crate::engine::calendar::Month;
use crate::engine::catalog::Bucket;
use crate::engine::domain::Region;

/// One request's miss in one measure, as decided.
#[derive(Debug, Clone, Copy)]
pub struct Missed<'a> {
    /// The month it counts in.
    pub month: Month,
    /// The measure's id.
    pub measure: &'a str,
    /// Its region.
    pub region: Region,
    /// Its failure bucket.
    pub bucket: Bucket,
    /// Its id, user and device ([`crate::engine::correlate::evidence_text`]).
    pub evidence: &'a str,
}

/// Where every missed request goes. Shared by the pipelines of a process (one per partition),
/// so it takes `&self`. A failure to write is fatal, as a dead letter's is: evidence that was
/// asked for never silently goes missing.
pub trait MissSink: Send + Sync + std::fmt::Debug {
    /// Writes one miss.
    fn missed(&self, m: &Missed<'_>) -> io::Result<()>;
}
