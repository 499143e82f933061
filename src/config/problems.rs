//! Configuration problems: every one found, each naming its file and key, reported at once
//! ([`Problems`], [`ConfigError`]).

use std::fmt;

/// Every configuration problem found, each as `source: key: problem`.
#[derive(Debug, Default, Clone)]
pub struct Problems(pub(super) Vec<String>);

impl Problems {
    /// Records one problem. A problem that echoes a huge value is cut in its middle, keeping
    /// the key before it and the reason after it.
    pub fn push(&mut self, source: &str, key: &str, problem: String) {
        let line = if key.is_empty() {
            format!("{source}: {problem}")
        } else {
            format!("{source}: {key}: {problem}")
        };
        self.0.push(crate::echo::cut_middle(&line, MAX_LINE));
    }

    /// No problem found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, one line each.
    pub fn lines(&self) -> &[String] {
        &self.0
    }
}

/// Longest problem line kept whole.
const MAX_LINE: usize = 600;

/// Problems shown at most; the rest are counted.
pub(crate) const MAX_SHOWN: usize = 50;

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().take(MAX_SHOWN).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        if self.0.len() > MAX_SHOWN {
            write!(f, "\n… and {} more", self.0.len() - MAX_SHOWN)?;
        }
        Ok(())
    }
}

/// The configuration could not be loaded; carries every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{} configuration problem(s):\n{problems}", problems.len())]
pub struct ConfigError {
    /// What was wrong, all of it.
    pub problems: Problems,
}
