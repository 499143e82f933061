//! `srv-opr alert-rules`: the Prometheus recording and alerting rules of the configured
//! measures and `[alerts]` settings, the same alerts `run` evaluates in process.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::Error;
use crate::ops::alerts::rules::generate;
use crate::sink::outdir::OutDir;

/// `alert-rules`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write the rules (`-` for standard output).
    #[arg(
        long,
        default_value = "deploy/prometheus/rules/srv-opr.yml",
        value_name = "FILE"
    )]
    out: PathBuf,
}

/// Writes the rules (to standard output with `--out -`).
pub fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let text = generate(&cfg.definitions, &cfg.settings.alerts);
    if a.out.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    // Whole or not at all: Prometheus may be reading the rules directory.
    let dir = a
        .out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = a
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("--out {} names no file", a.out.display())))?;
    let out = OutDir::create(dir)?;
    out.write(name, text.as_bytes())?;
    out.publish()?;
    eprintln!(
        "srv-opr: alert rules for {} measures written to {} (check them with `promtool check \
         rules {}`)",
        cfg.definitions.measures.len(),
        a.out.display(),
        a.out.display()
    );
    Ok(())
}
