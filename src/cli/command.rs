//! The command line parsed ([`Cli`], one subcommand per command) and each command dispatched
//! to its file, with the configuration it asks for; [`out`], where every command's results go.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::error::Error;

use super::{
    alert_rules, check, demo, replay, report, rollup, run, score, signals, signoff, simulate,
    status,
};

/// Writes `text` to standard output and flushes it.
pub fn out(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()?;
    Ok(())
}

/// Service Request events to the regulator's performance figures (OPR).
#[derive(Parser, Debug)]
#[command(name = "srv-opr", version, about, long_about = None)]
pub struct Cli {
    /// Configuration directory holding srv-opr.toml and measures.toml (each optional: the
    /// built-in defaults stand in). Default: ./config if it exists.
    #[arg(long, global = true, env = "SRV_OPR_CONFIG", value_name = "DIR")]
    pub config: Option<PathBuf>,

    /// Log filter (`info`, `debug`, `srv_opr=trace`…); also RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay JSON Lines files (.jsonl, .jsonl.gz; `-` for stdin) through the pipeline.
    Replay(replay::Args),
    /// Generate seeded synthetic SRV traffic as JSON Lines.
    Simulate(simulate::Args),
    /// The whole live path with no set-up: an embedded broker, the simulator producing a month
    /// into it, `run` consuming it with /metrics up, and the month's RPLs against TPL and MPL.
    Demo(demo::Args),
    /// Score a regulatory year: RPLs to margin retained (the seed's Table 7).
    Score(score::Args),
    /// Consume SRV events from Kafka ([kafka] in srv-opr.toml) in a consumer group.
    Run(run::Args),
    /// A month's outputs from the state store of `run` ([state] url), without Kafka.
    Rollup(rollup::Args),
    /// Prometheus recording and alerting rules for the configured measures and [alerts]: the
    /// same alerts `run` evaluates in process.
    AlertRules(alert_rules::Args),
    /// The status page of a running `run` in a terminal (its /status.json); with --check, a
    /// monitoring check (exit 2 critical, 1 warning, 0 none, 3 unknown).
    Status(status::Args),
    /// Record what is submitted for a month: its figures as the state store holds them now,
    /// who signs and why, append-only. A month not final yet needs --force --reason.
    Signoff(signoff::SignArgs),
    /// What changed in signed months since their latest sign-off, field by field, and what
    /// moved it; with --check, exit 1 when anything did.
    Restatements(signoff::RestatementsArgs),
    /// Try every connection `run` would make with this configuration (brokers, TLS and
    /// authentication, topics, the state store, Alertmanager): one line each; exit 0 only when
    /// all work.
    Check(check::Args),
    /// A regulatory year for the people who receive it: the months' roll-ups (from the state
    /// store, or a replay of event files), the score, an XLSX workbook shaped like the RIGs
    /// Annex 1, charts and a one-page HTML summary.
    Report(report::Args),
}

impl Cli {
    /// Loads the configuration and runs the command; the exit code on success (0 but for
    /// `status --check`).
    pub fn run(self) -> Result<u8, Error> {
        let cfg = load_config(self.config)?;
        // `run` and `demo` drain on a signal and watch for it themselves; `status` writes
        // nothing; every other command stops at once, leaving no temporary file.
        if !matches!(
            self.command,
            Command::Run(_) | Command::Demo(_) | Command::Status(_)
        ) {
            signals::stop_cleanly_on_signals();
        }
        let done = match self.command {
            Command::Status(a) => return status::main(&cfg, a),
            Command::Check(a) => return check::main(&cfg, a),
            Command::Restatements(a) => return signoff::restatements_main(&cfg, a),
            Command::Replay(a) => replay::main(&cfg, a),
            Command::Simulate(a) => simulate::main(&cfg, a),
            Command::Demo(a) => demo::main(&cfg, a),
            Command::Score(a) => score::main(&cfg, a),
            Command::Run(a) => run::main(&cfg, a),
            Command::Rollup(a) => rollup::main(&cfg, a),
            Command::AlertRules(a) => alert_rules::main(&cfg, a),
            Command::Report(a) => report::main(&cfg, a),
            Command::Signoff(a) => signoff::sign_main(&cfg, a),
        };
        done.map(|()| 0)
    }
}

/// The configuration of `dir` (default `./config` when it exists), with `SRV_OPR__…` from the
/// environment over it.
fn load_config(dir: Option<PathBuf>) -> Result<Config, Error> {
    let dir = dir.or_else(|| {
        let d = PathBuf::from("config");
        d.is_dir().then_some(d)
    });
    if let Some(d) = &dir
        && !d.is_dir()
    {
        return Err(Error::Usage(format!(
            "configuration directory {} does not exist",
            d.display()
        )));
    }
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SRV_OPR__"))
        .collect();
    Ok(Config::load(dir.as_deref(), &env)?)
}
