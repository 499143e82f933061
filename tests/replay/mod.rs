//! The file pipeline:
//!
//! - `golden`: the SPEC's worked example and a trap-laden fixture, every figure hand-checked.
//! - `order`: replaying the same events reordered (within the lateness bound) or split into
//!   several files gives the identical `rpl.csv`.
//! - `cli`: the `srv-opr` binary: exit codes, gzip, several files, simulate → replay, demo.
//! - `coverage`: a month's `complete`: a whole month, a part of one, a day missing.

pub(crate) mod cli;
mod coverage;
mod golden;
mod order;
