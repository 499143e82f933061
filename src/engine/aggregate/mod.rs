//! Month aggregates: per month × measure × region, the counts, failure buckets, response-time
//! and acknowledgement-segment histograms and per-user counts of decided requests (SPEC §2
//! Outcomes, §5 `rpl.csv`, `users.csv`).
//!
//! Synchronous and I/O-free. Aggregates *merge* (counts add, histograms add), so partitions and
//! processes can be combined in any order; region `all` is never stored but merged from the three
//! regions when read, so the hot path touches one row per measure.
//!
//! - `aggregates`: the blocks of one partition or run, applying decisions and revisions, merging;
//! - `row`: one month × measure × region, and how a decision lands in it;
//! - `exempt`: what the exemption register takes out of the rows, per view;
//! - `cells`: counts per minute of request due time, kept by the store so any register can be
//!   applied to any month later;
//! - `coverage`: which stretches of each month the valid events cover (a month's `complete`);
//! - `users`: a row's counts by service user, keyed without hashing on the hot path;
//! - `histogram`: the per-row hdrhistogram and the live fixed-bucket histogram;
//! - `checkpoint`: rows as the store keeps them, change tracking, restore.

mod aggregates;
mod cells;
mod checkpoint;
mod coverage;
mod exempt;
mod histogram;
mod row;
mod users;

pub use aggregates::{Aggregates, Block};

pub(crate) use aggregates::AggregateStats;
pub(crate) use cells::CellCounts;
pub use cells::{CellDeltas, SavedCell};
pub(crate) use checkpoint::RowError;
pub use checkpoint::SavedRow;
pub use coverage::Judged;
pub(crate) use coverage::{Coverage, JOIN as COVERAGE_JOIN, SavedCoverage};
pub use exempt::{Exempted, Tally};
pub use histogram::{RtHist, SEGMENT_ACK, SEGMENT_AFTER_ACK, SEGMENT_RESPONSE, Segments};
pub(crate) use row::outcome;
pub use row::{Days, Row, SAMPLE_SIZE, rpl_decimal, rpl_percent};
pub use users::Users;
