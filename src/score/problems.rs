//! What can be wrong in a scheme, its inputs or a scoring ([`Problems`], all of them, each
//! naming where) and why a year could not be scored ([`ScoreError`]).

use std::fmt;

use rust_decimal::Decimal;

/// Problems found in a scheme, in score inputs or while scoring, each naming where
/// (`file:line`, a measure, a component); all of them, not the first. A reader that stops
/// keeping them past a few hundred (a file of a million bad rows) still counts the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// The problems kept, in the order found.
    pub list: Vec<String>,
    /// How many more were found and not kept.
    pub more: usize,
}

impl Problems {
    /// Problems, all kept.
    pub fn new(list: Vec<String>) -> Problems {
        Problems { list, more: 0 }
    }

    /// How many problems were found, kept or not.
    pub fn total(&self) -> usize {
        self.list.len() + self.more
    }

    /// Adds `other`'s problems after these.
    pub fn append(&mut self, mut other: Problems) {
        self.list.append(&mut other.list);
        self.more += other.more;
    }
}

impl std::ops::Deref for Problems {
    type Target = Vec<String>;
    fn deref(&self) -> &Vec<String> {
        &self.list
    }
}

impl fmt::Display for Problems {
    /// The first problems, then how many more: never millions of lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 50;
        // A problem quoting a huge line of a file (a TOML error shows the line) is cut.
        let shown: Vec<String> = self.list[..self.list.len().min(SHOWN)]
            .iter()
            .map(|p| crate::echo::cut_middle(p, 600))
            .collect();
        f.write_str(&shown.join("\n"))?;
        let hidden = self.total() - self.list.len().min(SHOWN);
        if hidden > 0 {
            write!(f, "\n… and {hidden} more")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Why a year could not be scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// `--margin` is zero or negative.
    #[error("--margin must be positive, found {0}")]
    NonPositiveMargin(Decimal),
    /// Neither the scheme nor the command line gives the margin at risk.
    #[error("the margin at risk of {0} is not known: pass --margin <£m>")]
    UnknownMargin(String),
    /// A `--what-if` that does not name a component of the scheme, or no number.
    #[error("{0}")]
    WhatIf(String),
    /// The inputs have problems.
    #[error("{} problem(s) in the inputs:\n{}", .0.total(), .0)]
    Inputs(Problems),
    /// The inputs of a report have problems; the streaming-derived components are named so a
    /// component given twice can be told apart.
    #[error("{} problem(s) in the inputs (the streaming-derived rows are {streaming}):\n{problems}", problems.total())]
    Report {
        /// `SDM2.X, …`: the components that come from events.
        streaming: String,
        /// What was wrong.
        problems: Problems,
    },
    /// The streaming rows srv-opr wrote itself do not parse: a bug.
    #[error("internal: the streaming inputs do not parse: {}", .0.join("; "))]
    Streaming(Problems),
}
