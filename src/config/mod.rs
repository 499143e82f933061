//! Configuration: where it comes from and what it means.
//!
//! - `layer`: built-in defaults ← `srv-opr.toml` ← `SRV_OPR__…` environment, with shape checks.
//! - `settings`: the service settings (`srv-opr.toml`): time zone, lateness, horizons, limits.
//! - `schemes`: the one place that finds an OPR scheme (a year, or a path).
//! - `measures`: the regulatory definitions (`measures.toml`): codes, SRV classes, TRT table,
//!   measures; read from a file alone, never from the environment, and fingerprinted (SHA-256).
//!
//! Loading never stops at the first problem: every problem of every file is collected into
//! [`Problems`] and reported at once, each naming its file and key.

pub mod exemptions;
pub mod layer;
mod load;
pub mod measures;
mod problems;
mod read;
mod rules;
pub mod schemes;
pub mod secrets;
pub mod settings;

pub use load::Config;
pub use problems::{ConfigError, Problems};
pub use settings::Settings;
