//! The one place that finds an OPR scheme: a regulatory year (`RY23/24`: the configuration
//! directory's `opr/RY23-24.toml`, else the built-in copy) or a path to a scheme file, parsed
//! and validated against the streaming measures the definitions hold.

use std::path::PathBuf;

use super::load::Config;
use crate::score::Problems;
use crate::score::scheme::{self, RegYear, Scheme};

/// The built-in OPR schemes by regulatory year (identical to `config/opr/*.toml`).
pub(crate) const BUILT_IN: [(&str, &str); 2] = [
    ("RY23/24", include_str!("../../config/opr/RY23-24.toml")),
    ("RY24/25", include_str!("../../config/opr/RY24-25.toml")),
];

/// Why a scheme could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// A year with neither a file in the configuration directory nor a built-in scheme.
    #[error("no scheme for {year} (built in: {known}; or give a path)")]
    Unknown {
        /// The year asked for.
        year: String,
        /// The built-in years.
        known: String,
    },
    /// The scheme file could not be read (or is too large, or not text).
    #[error("scheme")]
    Read(#[source] crate::textfile::TextFileError),
    /// The scheme is invalid: every problem.
    #[error("{} problem(s) in the scheme:\n{problems}", problems.len())]
    Invalid {
        /// What was wrong.
        problems: Problems,
    },
}

/// The scheme named by `arg`: a regulatory year or a path.
pub fn find(cfg: &Config, arg: &str) -> Result<Scheme, SchemeError> {
    let streaming: Vec<String> = cfg
        .definitions
        .measures
        .iter()
        .map(|m| m.id.clone())
        .collect();
    let (name, text) = if RegYear::parse(arg).is_some() {
        let file = cfg.dir.as_deref().map(|d| {
            d.join("opr")
                .join(format!("{}.toml", arg.replace('/', "-")))
        });
        // A file there in any form (a dangling link, a directory) is read, and fails loudly:
        // never the built-in scheme while the user's file is there.
        let found = file.filter(|f| std::fs::symlink_metadata(f).is_ok());
        match found {
            Some(f) => (f.display().to_string(), read(&f)?),
            None => match BUILT_IN.iter().find(|(y, _)| *y == arg) {
                Some((y, text)) => (format!("built-in scheme {y}"), text.to_string()),
                None => {
                    let known: Vec<&str> = BUILT_IN.iter().map(|(y, _)| *y).collect();
                    return Err(SchemeError::Unknown {
                        year: arg.to_string(),
                        known: known.join(", "),
                    });
                }
            },
        }
    } else {
        let text = read(&PathBuf::from(arg))?;
        (arg.to_string(), text)
    };
    scheme::parse(&name, &text, &streaming).map_err(|problems| SchemeError::Invalid { problems })
}

/// Every known scheme (built in, or from the configuration's `opr/` directory), for mapping the
/// streaming measures into score inputs.
pub fn all(cfg: &Config) -> Result<Vec<Scheme>, SchemeError> {
    BUILT_IN.iter().map(|(year, _)| find(cfg, year)).collect()
}

fn read(path: &std::path::Path) -> Result<String, SchemeError> {
    crate::textfile::read(path, crate::textfile::CONFIG_LIMIT, "scheme file")
        .map_err(SchemeError::Read)
}
