//! The month outputs of a replay, a run, a roll-up or a report's year, written together: the
//! one place that decides which files a set of figures becomes (SPEC §5).

use std::io;
use std::time::Instant;

use crate::config::Config;
use crate::config::schemes::SchemeError;
use crate::engine::aggregate::Aggregates;
use crate::engine::pipeline::PipelineStats;
use crate::engine::time::Ts;

use super::month::{
    Summary, availability_csv, availability_lines, evidence_files, exemptions_csv, failures_csv,
    opr_inputs_csv, rpl_csv, rpl_lines, rpl_lines_of, sum1_inputs, users_csv,
};
use super::outdir::OutDir;

/// Why the outputs could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file could not be written (the message names it).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A scheme to map the streaming measures through could not be had.
    #[error(transparent)]
    Scheme(#[from] SchemeError),
    /// `summary.json` could not be encoded.
    #[error("cannot encode summary.json")]
    Summary(#[source] serde_json::Error),
}

/// Where a set of outputs comes from: `summary.json`'s inputs and start, and the months whose
/// availability to write (`None`: every month the timelines span).
pub struct Origin<'a> {
    /// The inputs `summary.json` names (files, partitions).
    pub inputs: Vec<String>,
    /// When gathering the figures began.
    pub started: Instant,
    /// The months of the outputs, when the command asked for some.
    pub months: Option<&'a [crate::engine::calendar::Month]>,
}

/// Writes a run's month outputs into `outdir`: `rpl.csv`, `failures.csv`, `users.csv`,
/// `opr-inputs.csv`,
/// `evidence/`, `exemptions.csv`, `rpl.<view>.csv` for each view of the register besides
/// `opr`, `availability.csv` (and `availability.<view>.csv`) of `months` (all when `None`: the
/// month rows are those `aggregates` hold, but the timelines span every month), and
/// `summary.json`: the same set whichever command produced the figures. They
/// appear when the caller publishes `outdir`, with whatever else it wrote.
pub fn write_outputs(
    outdir: &OutDir,
    cfg: &Config,
    aggregates: &Aggregates,
    stats: &PipelineStats,
    watermark: Ts,
    origin: Origin<'_>,
) -> Result<Summary, SinkError> {
    let Origin {
        inputs,
        started,
        months,
    } = origin;
    let lines = rpl_lines(aggregates, None);
    outdir.write("rpl.csv", rpl_csv(&lines).as_bytes())?;
    // The register's other views, each its own rpl.<view>.csv; and what every view exempted.
    for (view, name) in aggregates.register().views.iter().enumerate().skip(1) {
        let view_lines = rpl_lines_of(aggregates, None, view);
        outdir.write(&format!("rpl.{name}.csv"), rpl_csv(&view_lines).as_bytes())?;
    }
    outdir.write(
        "exemptions.csv",
        exemptions_csv(aggregates, None).as_bytes(),
    )?;
    outdir.write("failures.csv", failures_csv(&lines).as_bytes())?;
    outdir.write("users.csv", users_csv(&lines, &cfg.definitions).as_bytes())?;
    // Interface availability (issue 30), per view like the RPLs.
    let mut opr_availability = Vec::new();
    for (view, name) in aggregates.register().views.iter().enumerate() {
        let lines = availability_lines(aggregates, view, months);
        let file = if view == 0 {
            "availability.csv".to_string()
        } else {
            format!("availability.{name}.csv")
        };
        outdir.write(&file, availability_csv(&lines).as_bytes())?;
        if view == 0 {
            opr_availability = lines;
        }
    }
    let schemes = crate::config::schemes::all(cfg)?;
    let mut inputs_text = opr_inputs_csv(&lines, &schemes);
    inputs_text.push_str(&sum1_inputs(&opr_availability, &schemes));
    outdir.write("opr-inputs.csv", inputs_text.as_bytes())?;
    let measures = cfg.definitions.measure_ids();
    for (name, text) in evidence_files(&lines, &measures) {
        outdir.write(&format!("evidence/{name}"), text.as_bytes())?;
    }
    let summary = Summary::new(
        stats,
        aggregates,
        watermark,
        &cfg.definitions.sha256,
        &cfg.sources,
        inputs,
        started.elapsed().as_secs_f64(),
    );
    let mut json = serde_json::to_vec_pretty(&summary).map_err(SinkError::Summary)?;
    json.push(b'\n');
    outdir.write("summary.json", &json)?;
    Ok(summary)
}
