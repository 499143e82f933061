//! Integration tests of the file pipeline, in one test binary:
//!
//! - `golden`: the SPEC's worked example and a trap-laden fixture, every figure hand-checked.
//! - `order`: replaying the same events reordered (within the lateness bound) or split into
//!   several files gives the identical `rpl.csv`.
//! - `cli`: the `srv-opr` binary: exit codes, gzip, several files, simulate → replay, demo.
//!
//! The volume test against an independent oracle lives in its own binary (`tests/volume.rs`).

mod cli;
mod golden;
mod order;
mod support;
