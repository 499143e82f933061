//! The command line: one file per command (its clap arguments, its run and what it prints),
//! the values they parse (`args`), and the dispatch. `main` only parses, starts logging, calls
//! [`Cli::run`] and turns the error's kind into the exit code.
//!
//! The library functions a command is made of (`replay::replay`, `run::run`, …) are public, so
//! tests and benches drive exactly what the binary does.

/// `println!` for a command's results: an `Err` instead of a panic when standard output fails
/// (a closed pipe, `| head`, which `main` ends quietly with exit 0; a full disk).
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {
        $crate::cli::out(&format!("{}\n", format_args!($($t)*)))
    };
}

/// `print!` likewise.
#[macro_export]
macro_rules! outp {
    ($($t:tt)*) => {
        $crate::cli::out(&format!($($t)*))
    };
}

pub mod alert_rules;
pub mod args;
pub mod check;
pub mod demo;
pub mod replay;
pub mod report;
pub mod rollup;
pub mod run;
pub mod score;
pub mod signoff;
pub mod simulate;
pub mod status;

mod command;
mod progress;
mod signals;

pub use command::{Cli, out};
