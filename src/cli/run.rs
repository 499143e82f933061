//! `srv-opr run`: the consumer group with its endpoint and alerts, until a signal (or, with
//! `--until-caught-up`, the end of what is there), then the month outputs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::config::Config;
use crate::engine::pipeline::PipelineConfig;
use crate::error::Error;
use crate::kafka::consumer::{self, RunOptions};
use crate::ops::endpoint::{self, Endpoint};
use crate::sink::outdir::OutDir;
use crate::sink::outputs::{Origin, write_outputs};

use super::replay::ReplayOutcome;
use super::signals::watch_signals;

/// `run`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Where the month outputs are written when the run stops.
    #[arg(long, default_value = "run-out", value_name = "DIR")]
    out: PathBuf,
    /// Stop once every assigned partition is read to its end, deciding what is pending (a
    /// catch-up job); otherwise run until SIGINT or SIGTERM.
    #[arg(long)]
    until_caught_up: bool,
    /// Adopt the current measure definitions when the state store was made under others.
    #[arg(long)]
    accept_config_change: bool,
    #[command(flatten)]
    exemptions: super::args::Exemptions,
}

/// Runs the service until it is stopped.
pub(crate) fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let cfg = &*a.exemptions.apply(cfg)?;
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone(), cfg.settings.kafka.shutdown_timeout);
    // Checked before consuming: the outputs at the stop map through them.
    crate::config::schemes::all(cfg)?;
    let pipeline = cfg.pipeline()?;
    // Alertmanager's webhook produces into the availability topic, which this run reads back.
    let intake: Option<Arc<dyn crate::ops::webhook::Intake>> =
        if cfg.settings.http.alertmanager_webhook && !cfg.settings.http.listen.is_empty() {
            Some(Arc::new(crate::kafka::intake::AvailabilityIntake::new(
                cfg,
            )?))
        } else {
            None
        };
    let endpoint = endpoint::start(cfg, &pipeline, false, intake)?;
    let opts = RunOptions {
        until_caught_up: a.until_caught_up,
        input_complete: None,
        keep_pending: false,
        accept_config_change: a.accept_config_change,
        dead_letter_limit: None,
    };
    run(cfg, &pipeline, &a.out, &opts, &stop, &endpoint)?;
    Ok(())
}

/// Consumes Kafka until stopped (or caught up) and writes the month outputs into `out`.
pub(crate) fn run(
    cfg: &Config,
    pipeline: &PipelineConfig,
    out: &Path,
    opts: &RunOptions,
    stop: &AtomicBool,
    endpoint: &Endpoint,
) -> Result<ReplayOutcome, Error> {
    let started = Instant::now();
    let outdir = OutDir::create(out)?;
    let mut pipeline = pipeline.clone();
    let stream = if cfg.settings.evidence.all {
        let (p, s) = crate::cli::replay::with_evidence_stream(cfg, &outdir)?;
        pipeline.misses = p.misses;
        s
    } else {
        None
    };
    let outcome = consumer::run(cfg, &pipeline, opts, stop, endpoint.live.clone())?;
    if let Some(s) = stream {
        s.finish()?;
    }
    let summary = write_outputs(
        &outdir,
        cfg,
        &outcome.aggregates,
        &outcome.stats,
        outcome.aggregates.watermark(),
        Origin {
            inputs: outcome.partitions.clone(),
            started,
            months: None,
        },
    )?;
    outdir.publish()?;
    tracing::info!(
        events = outcome.stats.events,
        partitions = outcome.partitions.len(),
        dead_letters = outcome.dead_letters_sent,
        handed_over = outcome.handed_over,
        out = %out.display(),
        "run stopped; outputs written"
    );
    Ok(ReplayOutcome {
        aggregates: outcome.aggregates,
        stats: outcome.stats,
        summary,
    })
}
