//! The OPR scoring core: from Reported Performance Levels to margin retained (SPEC §7).
//!
//! Pure computation (no I/O, no tokio), exact in `rust_decimal` at every step:
//! - `ratio`: weights as exact fractions (7/30 stays 7/30);
//! - `scheme`: a regulatory year's scheme (`config/opr/*.toml`), validated;
//! - `inputs`: score input rows (`measure,component,region,period,value[,numerator,denominator]`);
//! - `model`: the computation, steps 1–5 of SPEC §7, every intermediate figure kept;
//! - `what_if`: what-ifs, a component's annual RPL (or a VMM score) replaced;
//! - `render`: the Table 7–shaped text, `score.csv` and `score.json`: the one place that rounds.
//!
//! It imports nothing from the streaming core but the domain's vocabulary (the regions): it
//! reads RPLs, wherever they come from.

pub mod inputs;
pub mod model;
mod problems;
pub mod ratio;
pub mod render;
pub mod scheme;
pub mod what_if;

pub use problems::{Problems, ScoreError};
