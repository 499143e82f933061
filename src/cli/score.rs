//! `srv-opr score`: a regulatory year scored from its RPLs (the seed's Table 7), with what-ifs;
//! and the pieces `report` shares: reading score inputs, the margin, writing `score.csv` and
//! `score.json`.

use std::path::PathBuf;

use rust_decimal::Decimal;

use crate::config::Config;
use crate::config::schemes;
use crate::error::Error;
use crate::score::inputs::{self, InputRow};
use crate::score::model::{self, Override, Report};
use crate::score::scheme::Scheme;
use crate::score::{Problems, ScoreError, render};
use crate::sink::outdir::OutDir;

use super::args::Margin;

/// `score`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The scheme: a regulatory year (RY23/24, RY24/25: from `<config>/opr/` or built in) or a
    /// path to a scheme file.
    #[arg(long, value_name = "YEAR|FILE")]
    scheme: String,
    /// Input CSV files: measure,component,region,period,value[,numerator,denominator].
    #[arg(long, value_name = "FILE", num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// A replay/rollup output directory: short for --inputs DIR/opr-inputs.csv.
    #[arg(long, value_name = "DIR")]
    from_rollup: Option<PathBuf>,
    /// Margin at risk in £m (required when the scheme does not know it).
    #[arg(long, value_name = "£M")]
    margin: Option<String>,
    /// What-if, repeatable: MEASURE.COMPONENT[.REGION]=VALUE (e.g. SDM1.FIRST-TIME-WAN.north=97.0).
    #[arg(long, value_name = "OVERRIDE")]
    what_if: Vec<String>,
    /// Write score.csv and score.json here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Score months whose events do not cover them (`complete = false` in the roll-up's
    /// `summary.json`) all the same; each is named in a warning.
    #[arg(long)]
    allow_incomplete: bool,
}

/// Scores the year and prints the table (and what-ifs).
pub(crate) fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let mut inputs = a.inputs.clone();
    if let Some(dir) = &a.from_rollup {
        inputs.insert(0, dir.join("opr-inputs.csv"));
    }
    if inputs.is_empty() {
        return Err(Error::Usage(
            "give --inputs FILE… and/or --from-rollup DIR".into(),
        ));
    }
    let margin = Margin::of(a.margin.as_deref())?;
    let scheme = schemes::find(cfg, &a.scheme)?;
    let margin = margin_of(&scheme, margin)?;
    let overrides: Vec<Override> = a
        .what_if
        .iter()
        .map(|w| Override::parse(w, &scheme))
        .collect::<Result<_, _>>()?;
    let rows = read_inputs(&inputs)?;
    let incomplete = match &a.from_rollup {
        Some(dir) => incomplete_in_rollup(dir, &rows)?,
        None => Vec::new(),
    };
    if !incomplete.is_empty() && !a.allow_incomplete {
        return Err(Error::Usage(format!(
            "{}: a year's score would average {} with full months; give --allow-incomplete to \
             score {} all the same",
            incomplete.join("; "),
            if incomplete.len() == 1 { "it" } else { "them" },
            if incomplete.len() == 1 { "it" } else { "them" },
        )));
    }
    let mut base = model::score(&scheme, &rows, margin, &[]).map_err(ScoreError::Inputs)?;
    for m in &incomplete {
        base.warnings
            .push(format!("{m}; scored by --allow-incomplete"));
    }
    let report = if overrides.is_empty() {
        base.clone()
    } else {
        model::score(&scheme, &rows, margin, &overrides).map_err(ScoreError::Inputs)?
    };
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    let mut text = render::table(&report);
    if !overrides.is_empty() {
        text.push('\n');
        text.push_str(&render::what_if_diff(&base, &report));
    }
    if let Some(out) = &a.out {
        let dir = OutDir::create(out)?;
        write_score(&dir, &report)?;
        dir.publish()?;
    }
    crate::outp!("{text}")?;
    Ok(())
}

/// The months of a roll-up's score inputs whose events do not cover them, as its
/// `summary.json` says (`coverage`; a roll-up from before issue 33 says nothing, and nothing is
/// refused), each with its gaps.
fn incomplete_in_rollup(dir: &std::path::Path, rows: &[InputRow]) -> Result<Vec<String>, Error> {
    let path = dir.join("summary.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let summary: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{} is not the summary of a roll-up: {e}",
            path.display()
        ))
    })?;
    let Some(coverage) = summary.get("coverage").and_then(|c| c.as_object()) else {
        return Ok(Vec::new());
    };
    let scored: std::collections::BTreeSet<String> =
        rows.iter().map(|r| r.period.to_string()).collect();
    Ok(coverage
        .iter()
        .filter(|(m, c)| scored.contains(*m) && c["complete"] == false)
        .map(|(m, c)| {
            let gaps: Vec<String> = c["gaps"]
                .as_array()
                .map(|g| {
                    g.iter()
                        .take(3)
                        .map(|x| {
                            format!(
                                "{} to {}",
                                x[0].as_str().unwrap_or("?"),
                                x[1].as_str().unwrap_or("?")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{m} is not complete ({}): no valid event from {}",
                path.display(),
                gaps.join(", from ")
            )
        })
        .collect())
}

/// The margin at risk: `given` (which must be positive), else the scheme's.
pub(crate) fn margin_of(scheme: &Scheme, given: Option<Decimal>) -> Result<Decimal, ScoreError> {
    match (given, scheme.margin_at_risk) {
        (Some(m), _) if m > Decimal::ZERO => Ok(m),
        (Some(m), _) => Err(ScoreError::NonPositiveMargin(m)),
        (None, Some(m)) => Ok(m),
        (None, None) => Err(ScoreError::UnknownMargin(scheme.year.to_string())),
    }
}

/// Reads and parses score input files; every problem in every file is reported at once.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<InputRow>, Error> {
    let mut rows = Vec::new();
    let mut problems = Problems::default();
    for path in paths {
        let text = crate::textfile::read(path, crate::textfile::INPUT_LIMIT, "score-input file")?;
        match inputs::parse(&path.display().to_string(), &text) {
            Ok(mut r) => rows.append(&mut r),
            Err(e) => problems.append(e),
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(ScoreError::Inputs(problems).into())
    }
}

/// Writes `score.csv` and `score.json` of a year's score into `dir`.
pub(crate) fn write_score(dir: &OutDir, report: &Report) -> Result<(), Error> {
    dir.write("score.csv", render::score_csv(report).as_bytes())?;
    let mut json = render::score_json(report)
        .map_err(|e| Error::Internal(format!("cannot encode score.json: {e}")))?;
    json.push('\n');
    dir.write("score.json", json.as_bytes())?;
    Ok(())
}
