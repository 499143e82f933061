//! `srv-opr replay FILE… [--out DIR] [--parse-only]`: the pipeline over JSON Lines files, or
//! only their validation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use crate::config::Config;
use crate::engine::aggregate::Aggregates;
use crate::engine::pipeline::{Pipeline, PipelineStats};
use crate::error::Error;
use crate::sink::deadletter::JsonlDeadLetters;
use crate::sink::month::Summary;
use crate::sink::outdir::OutDir;
use crate::sink::outputs::{Origin, write_outputs};
use crate::source::files::{Input, drive, inputs_from_paths, open_all, source_names};
use crate::source::parse_only::parse_only;

use super::progress::ProgressBar;

/// `replay`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Input files, read as concurrent sources (a request file and a response file correlate).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output directory (created if missing; only the files written are replaced).
    #[arg(long, default_value = "replay-out", value_name = "DIR")]
    out: PathBuf,
    /// Never show a progress bar (it only shows when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Only read and validate every line; print counts as JSON and write no files. The rate
    /// it reports bounds what a full replay can reach.
    #[arg(long)]
    parse_only: bool,
    #[command(flatten)]
    exemptions: super::args::Exemptions,
}

/// Runs `replay` and says what it did.
pub(crate) fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let cfg = &*a.exemptions.apply(cfg)?;
    let inputs = inputs_from_paths(&a.files);
    if a.parse_only {
        let r = parse_only(
            cfg.settings.input.max_event_bytes,
            &cfg.settings.input.ignore_types,
            &inputs,
        )?;
        let json = serde_json::to_string_pretty(&r)
            .map_err(|e| Error::Internal(format!("cannot encode the counts: {e}")))?;
        crate::outln!("{json}")?;
        return Ok(());
    }
    let outcome = replay(cfg, &inputs, &a.out, !a.no_progress)?;
    let s = &outcome.summary;
    tracing::info!(
        events = s.events_read,
        dead_letters = s.dead_letters_total,
        seconds = format!("{:.2}", s.wall_seconds),
        events_per_second = format!("{:.0}", s.events_per_second),
        out = %a.out.display(),
        "replay done"
    );
    Ok(())
}

/// What a replay (or a run) produced.
pub struct ReplayOutcome {
    /// The month aggregates.
    pub aggregates: Aggregates,
    /// Event accounting.
    pub stats: PipelineStats,
    /// The summary as written.
    pub summary: Summary,
}

/// Replays `inputs` through the pipeline and writes the month outputs and `deadletter.jsonl`
/// into `out`, all appearing together at the end; a progress bar on a terminal when
/// `progress`.
pub fn replay(
    cfg: &Config,
    inputs: &[Input],
    out: &Path,
    progress: bool,
) -> Result<ReplayOutcome, Error> {
    // The schemes opr-inputs.csv maps through, checked before any event is read: a scheme
    // naming a measure the definitions lack is a configuration error now, not after the replay.
    crate::config::schemes::all(cfg)?;
    let outdir = OutDir::create(out)?;
    let outcome = replay_into(cfg, inputs, &outdir, progress)?;
    outdir.publish()?;
    Ok(outcome)
}

/// The pipeline configuration of `cfg`, streaming every missed request into `outdir`'s
/// `evidence/*.csv.gz` when `[evidence] sample = "all"` (the stream, to finish before
/// publishing).
pub(crate) fn with_evidence_stream(
    cfg: &Config,
    outdir: &OutDir,
) -> Result<
    (
        crate::engine::pipeline::PipelineConfig,
        Option<Arc<crate::sink::evidence_stream::EvidenceStream>>,
    ),
    Error,
> {
    let mut p = cfg.pipeline()?;
    if !cfg.settings.evidence.all {
        return Ok((p, None));
    }
    let stream = Arc::new(crate::sink::evidence_stream::EvidenceStream::create(
        outdir,
        &cfg.definitions.measure_ids(),
    )?);
    p.misses = Some(stream.clone());
    Ok((p, Some(stream)))
}

/// [`replay`] into an output directory the caller publishes (with more files of its own).
pub(crate) fn replay_into(
    cfg: &Config,
    inputs: &[Input],
    outdir: &OutDir,
    progress: bool,
) -> Result<ReplayOutcome, Error> {
    let started = Instant::now();
    crate::config::schemes::all(cfg)?;
    let counter = Arc::new(AtomicU64::new(0));
    let mut sources = open_all(inputs, cfg.settings.input.max_event_bytes, counter.clone())?;
    let total: Option<u64> = inputs.iter().map(Input::size).sum();
    let bar = ProgressBar::new(total, counter, progress);
    let dl_file = outdir.file("deadletter.jsonl")?;
    let (pipeline_cfg, stream) = with_evidence_stream(cfg, outdir)?;
    let mut pipeline = Pipeline::new(
        &pipeline_cfg,
        source_names(inputs),
        JsonlDeadLetters::new(dl_file),
    );
    let watermark = drive(
        &mut sources,
        &mut pipeline,
        crate::source::files::Timing::of(cfg),
        &mut |events| bar.update(events, started),
    )?;
    bar.finish();
    let (aggregates, stats, sink) = pipeline.into_parts();
    sink.into_inner().commit()?;
    if let Some(s) = stream {
        s.finish()?;
    }
    let summary = write_outputs(
        outdir,
        cfg,
        &aggregates,
        &stats,
        watermark,
        Origin {
            inputs: inputs.iter().map(Input::name).collect(),
            started,
            months: None,
        },
    )?;
    Ok(ReplayOutcome {
        aggregates,
        stats,
        summary,
    })
}
