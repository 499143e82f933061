//! `srv-opr alert-rules`: the Prometheus recording and alerting rules of the configured
//! measures and `[alerts]` settings, the same alerts `run` evaluates in process.

use std::path::PathBuf;

use crate::config::Config;
use crate::error::Error;
use crate::ops::alerts::rules::generate;

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
    let failed = |what: &str, path: &std::path::Path, e: std::io::Error| {
        Error::Output(std::io::Error::new(
            e.kind(),
            format!("cannot {what} {}: {e}", path.display()),
        ))
    };
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| failed("create", dir, e))?;
    }
    std::fs::write(&a.out, &text).map_err(|e| failed("write", &a.out, e))?;
    eprintln!(
        "srv-opr: alert rules for {} measures written to {} (check them with `promtool check \
         rules {}`)",
        cfg.definitions.measures.len(),
        a.out.display(),
        a.out.display()
    );
    Ok(())
}
