//! `srv-opr alert-rules`: the Prometheus recording and alerting rules of the configured
//! measures and `[alerts]` settings, the same alerts `run` evaluates in process.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::Error;
use crate::ops::alerts::rules::generate;
use crate::sink::outdir::OutDir;

/// `alert-rules`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Where to write the rules; standard output without it (or with `-`).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Writes the rules: to standard output, or to `--out` whole.
pub(crate) fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let text = generate(&cfg.definitions, &cfg.settings.alerts);
    let Some(out_path) = a.out.filter(|p| p.as_os_str() != "-") else {
        crate::outp!("{text}")?;
        return Ok(());
    };
    // Whole or not at all: Prometheus may be reading the rules directory.
    let dir = out_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = out_path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("--out {} names no file", out_path.display())))?;
    let dest = OutDir::create(dir)?;
    dest.write(name, text.as_bytes())?;
    dest.publish()?;
    eprintln!(
        "srv-opr: alert rules for {} measures written to {} (check them with `promtool check \
         rules {}`)",
        cfg.definitions.measures.len(),
        out_path.display(),
        out_path.display()
    );
    Ok(())
}
