//! `srv-opr report --year RY23/24`: the year's months (from the state store, or a replay of
//! event files), scored with the external inputs, and written for the people who receive it:
//! the roll-up files, `score.csv`/`score.json`, the workbook, the charts and `index.html`.

use std::path::PathBuf;
use std::time::Instant;

use rust_decimal::Decimal;

use crate::config::{Config, schemes};
use crate::engine::aggregate::Aggregates;
use crate::engine::calendar::Month;
use crate::error::Error;
use crate::report::{Year, charts, html, workbook};
use crate::score::inputs::{self, InputRow};
use crate::score::model::{self, Report};
use crate::score::scheme::{RegYear, Scheme};
use crate::score::{ScoreError, render};
use crate::sink::month::{opr_inputs_csv, rpl_lines};
use crate::sink::outdir::OutDir;
use crate::sink::outputs::{Origin, write_outputs};
use crate::source::files::{Input, inputs_from_paths};
use crate::store::load::load_months;

use super::args::Margin;
use super::replay::replay_into;
use super::score::{margin_of, read_inputs, write_score};

/// `report`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The regulatory year (April–March), e.g. RY23/24.
    #[arg(
        long,
        value_name = "RYxx/yy",
        required_unless_present = "month",
        conflicts_with = "month"
    )]
    year: Option<String>,
    /// One month of the streaming measures instead of a year (no external input needed): the
    /// analyst's month as an HTML page and a workbook.
    #[arg(long, value_name = "YYYY-MM")]
    month: Option<String>,
    /// Score inputs for the components that do not come from events (SUM1, SDM1's install
    /// components, VMM1/VMM2…): measure,component,region,period,value[,numerator,denominator].
    #[arg(long, value_name = "FILE", num_args = 1..)]
    inputs: Vec<PathBuf>,
    /// Margin at risk in £m (required when the scheme does not know it).
    #[arg(long, value_name = "£M")]
    margin: Option<String>,
    /// Replay these event files for the year's figures instead of reading the state store.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    replay: Vec<PathBuf>,
    /// Output directory (default ./report-RYxx-yy).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Put months whose events do not cover them (`complete = false`: a gap longer than
    /// `time.coverage_max_gap`) into the year all the same; each is flagged.
    #[arg(long)]
    allow_incomplete: bool,
    #[command(flatten)]
    exemptions: super::args::Exemptions,
}

/// Builds the year's report and says where it is.
pub(crate) fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let cfg = &*a.exemptions.apply(cfg)?;
    if let Some(month) = &a.month {
        return month_main(cfg, month, &a);
    }
    let year = a.year.clone().unwrap_or_default();
    let margin = Margin::of(a.margin.as_deref())?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("report-{}", year.replace('/', "-"))));
    let req = ReportRequest {
        year: year.clone(),
        inputs: a.inputs,
        margin,
        replay: inputs_from_paths(&a.replay),
        out: out.clone(),
        allow_incomplete: a.allow_incomplete,
    };
    let r = report(cfg, &req)?;
    for w in &r.score.warnings {
        eprintln!("srv-opr: warning: {w}");
    }
    crate::outp!("{}", render::table(&r.score))?;
    let months: Vec<String> = r
        .months
        .iter()
        .map(|(m, fin)| format!("{m}{}", if *fin { "" } else { " (not final)" }))
        .collect();
    eprintln!(
        "srv-opr: {} from events: {}",
        year,
        if months.is_empty() {
            "no months".to_string()
        } else {
            months.join(", ")
        }
    );
    eprintln!(
        "srv-opr: figures gathered in {:.2} s; score, workbook, {} charts and the page written \
         in {:.2} s",
        r.gather_seconds,
        r.files.iter().filter(|f| f.ends_with(".png")).count(),
        r.render_seconds
    );
    eprintln!(
        "srv-opr: report written to {} (open {})",
        out.display(),
        out.join("index.html").display()
    );
    Ok(())
}

/// `report --month`: one month of the streaming measures, from the store (the month and the
/// one before, for the change) or a replay, as `index.html` and `srv-opr-YYYY-MM.xlsx` beside
/// the month's roll-up files.
fn month_main(cfg: &Config, month: &str, a: &Args) -> Result<(), Error> {
    let m = month.parse::<crate::cli::args::MonthArg>()?.0;
    if !a.inputs.is_empty() || a.margin.is_some() || a.allow_incomplete {
        return Err(Error::Usage(
            "--month reports the streaming measures alone: --inputs, --margin and \
             --allow-incomplete are for a year's score"
                .into(),
        ));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("report-{m}")));
    let started = Instant::now();
    let outdir = OutDir::create(&out)?;
    let months = [m.prev(), m];
    let (aggregates, source, signoff) = if a.replay.is_empty() {
        let l = load_and_write(cfg, &outdir, &months, &[m], started)?;
        let signoff = signed_months(cfg, Some(m)).into_iter().next();
        (
            l.aggregates,
            format!("the state store ({} partitions)", l.partitions.len()),
            signoff,
        )
    } else {
        let files = inputs_from_paths(&a.replay);
        let agg = replay_into(cfg, &files, &outdir, false)?.aggregates;
        (agg, format!("a replay of {} files", files.len()), None)
    };
    let r = crate::report::monthly::MonthReport::of(&aggregates, m, signoff, source);
    let workbook = format!("srv-opr-{m}.xlsx");
    let xlsx = crate::report::monthly::workbook(&r).map_err(crate::report::ReportError::from)?;
    outdir.write(&workbook, &xlsx)?;
    outdir.write(
        "index.html",
        crate::report::monthly::html(&r, &workbook).as_bytes(),
    )?;
    outdir.publish()?;
    crate::outln!(
        "{m}: {} measure rows, coverage {}, {}",
        r.lines.len(),
        if r.coverage.complete {
            "complete"
        } else {
            "NOT complete"
        },
        if r.is_final { "final" } else { "not final yet" }
    )?;
    eprintln!(
        "srv-opr: the month's report written to {} (open {})",
        out.display(),
        out.join("index.html").display()
    );
    Ok(())
}

/// `months` from the state store, their roll-up files (of `written`) written into `outdir`.
fn load_and_write(
    cfg: &Config,
    outdir: &OutDir,
    months: &[Month],
    written: &[Month],
    started: Instant,
) -> Result<crate::store::load::StoreLoad, Error> {
    let l = load_months(cfg, &cfg.pipeline()?, months).map_err(Error::ReportStore)?;
    write_outputs(
        outdir,
        cfg,
        &l.aggregates,
        &l.stats,
        l.watermark,
        Origin {
            inputs: l.partitions.clone(),
            started,
            months: Some(written),
        },
    )?;
    Ok(l)
}

/// Each signed month (of `month` alone, when given) against its latest sign-off, `opr` view
/// (issue 31); none, with a warning, when the store's sign-offs cannot be read.
fn signed_months(cfg: &Config, month: Option<Month>) -> Vec<crate::signoff::SignedMonth> {
    match crate::signoff::compare_all(cfg, month, Some(crate::engine::exemption::OPR)) {
        Ok(c) => crate::signoff::summarise(&c),
        Err(e) => {
            tracing::warn!(error = %crate::diagnostic::chain(&e), "the sign-offs could not be read: the report shows the months as not signed");
            Vec::new()
        }
    }
}

/// What `report` was asked.
pub(crate) struct ReportRequest {
    /// The regulatory year, `RY23/24`.
    pub year: String,
    /// Score inputs for the components that do not come from events (SUM1, SDM1's install
    /// components, VMM…).
    pub inputs: Vec<PathBuf>,
    /// £m at risk, overriding (or supplying) the scheme's.
    pub margin: Option<Decimal>,
    /// Event files to replay instead of reading the state store.
    pub replay: Vec<Input>,
    /// The output directory.
    pub out: PathBuf,
    /// Put incomplete months into the year all the same (flagged).
    pub allow_incomplete: bool,
}

/// What `report` wrote.
pub(crate) struct ReportOutcome {
    /// The year's score.
    pub score: Report,
    /// Files written, relative to the output directory.
    pub files: Vec<String>,
    /// Months of the year with figures from events, and whether each is final.
    pub months: Vec<(Month, bool)>,
    /// Seconds spent gathering the figures (store read or replay).
    pub gather_seconds: f64,
    /// Seconds spent scoring and writing the workbook, charts and page.
    pub render_seconds: f64,
}

/// `report`: a regulatory year's roll-ups (from the state store, or a replay of event files),
/// its score with the external inputs, and the workbook, charts and HTML summary.
pub(crate) fn report(cfg: &Config, req: &ReportRequest) -> Result<ReportOutcome, Error> {
    let year = RegYear::parse(&req.year).ok_or_else(|| {
        Error::Usage(format!(
            "--year {:?} is not a regulatory year like RY23/24",
            req.year
        ))
    })?;
    let scheme = schemes::find(cfg, &req.year)?;
    let margin = margin_of(&scheme, req.margin)?;
    let external = read_inputs(&req.inputs)?;
    let months: Vec<Month> = year
        .months()
        .iter()
        .filter_map(|m| Month::parse(m))
        .collect();
    let started = Instant::now();
    let outdir = OutDir::create(&req.out)?;
    let mut files: Vec<String> = ["rpl.csv", "failures.csv", "opr-inputs.csv", "summary.json"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !req.replay.is_empty() {
        files.push("deadletter.jsonl".into());
    }
    // The year's figures: a replay writes its own outputs as it goes; from the store the
    // year's months are loaded and written like a roll-up of twelve months.
    let aggregates = if req.replay.is_empty() {
        let l = load_and_write(cfg, &outdir, &months, &months, started)?;
        l.aggregates
    } else {
        replay_into(cfg, &req.replay, &outdir, false)?.aggregates
    };
    let gather_seconds = started.elapsed().as_secs_f64();
    // A month the events do not cover would be averaged with full ones: refused unless asked.
    let incomplete = incomplete_months(&aggregates, &months);
    if !incomplete.is_empty() && !req.allow_incomplete {
        return Err(Error::Usage(format!(
            "{}: a year's score would average {} with full months; give --allow-incomplete \
             to put {} in all the same (flagged), or replay the missing events",
            incomplete.join("; "),
            if incomplete.len() == 1 { "it" } else { "them" },
            if incomplete.len() == 1 { "it" } else { "them" },
        )));
    }
    let rendering = Instant::now();
    // Each month's sign-off against its figures now (issue 31), where the store keeps them.
    let signoffs: Vec<crate::signoff::SignedMonth> = if req.replay.is_empty() {
        signed_months(cfg, None)
            .into_iter()
            .filter(|s| months.iter().any(|m| m.to_string() == s.month))
            .collect()
    } else {
        Vec::new()
    };
    let (score, mut written) = render_report(
        cfg,
        &req.year,
        &scheme,
        margin,
        &aggregates,
        Besides {
            external,
            signoffs: &signoffs,
            incomplete: &incomplete,
        },
        &outdir,
    )?;
    files.append(&mut written);
    // The year's files appear together, or none of them (a full disk half way).
    outdir.publish()?;
    let month_flags = months
        .iter()
        .filter(|m| aggregates.months().contains(m))
        .map(|m| (*m, aggregates.is_final(*m)))
        .collect();
    Ok(ReportOutcome {
        score,
        files,
        months: month_flags,
        gather_seconds,
        render_seconds: rendering.elapsed().as_secs_f64(),
    })
}

/// Each of `months` with requests whose events do not cover it, said with its gaps:
/// `2024-02 is not complete: no valid event from … to …`.
pub fn incomplete_months(aggregates: &Aggregates, months: &[Month]) -> Vec<String> {
    let with_rows = aggregates.months();
    let gap = crate::engine::time::Dur(aggregates.coverage_max_gap());
    months
        .iter()
        .filter(|m| with_rows.contains(m))
        .filter_map(|m| {
            let j = aggregates.completeness(*m);
            (!j.complete).then(|| {
                let gaps: Vec<String> = j
                    .gaps
                    .iter()
                    .take(3)
                    .map(|(a, b)| format!("{} to {}", a.to_rfc3339_millis(), b.to_rfc3339_millis()))
                    .collect();
                let more = j.gaps.len().saturating_sub(3);
                format!(
                    "{m} is not complete: no valid event from {}{} (time.coverage_max_gap {gap})",
                    gaps.join(", from "),
                    if more > 0 {
                        format!(" and {more} more gaps")
                    } else {
                        String::new()
                    }
                )
            })
        })
        .collect()
}

/// What a report shows besides the year's aggregates.
pub struct Besides<'a> {
    /// Score input rows given with `--inputs` (the components not derived from the stream).
    pub external: Vec<InputRow>,
    /// Each signed month against its latest sign-off (none from a replay).
    pub signoffs: &'a [crate::signoff::SignedMonth],
    /// The year's months its events do not cover, said with their gaps
    /// ([`incomplete_months`]): put in by `--allow-incomplete`, flagged in the score.
    pub incomplete: &'a [String],
}

/// The rendering half of `report`: from a year's aggregates, the score (streaming rows from
/// `aggregates`, plus `external` rows), `score.csv`/`score.json`, the charts, the workbook and
/// the page, written into `outdir`. Returns the score and the files written.
pub fn render_report(
    cfg: &Config,
    year: &str,
    scheme: &Scheme,
    margin: Decimal,
    aggregates: &Aggregates,
    besides: Besides<'_>,
    outdir: &OutDir,
) -> Result<(Report, Vec<String>), Error> {
    let Besides {
        external,
        signoffs,
        incomplete,
    } = besides;
    let months: Vec<Month> = RegYear::parse(year)
        .map(|y| y.months().iter().filter_map(|m| Month::parse(m)).collect())
        .unwrap_or_default();
    let lines = rpl_lines(aggregates, Some(&months));
    if lines.is_empty() {
        tracing::warn!(year = %year, "no requests in the year: the report has only the external inputs");
    }
    let mut streaming_text = opr_inputs_csv(&lines, std::slice::from_ref(scheme));
    // SUM1 from availability events, where there were any (issue 30).
    let availability = crate::sink::month::availability_lines(aggregates, 0, Some(&months));
    streaming_text.push_str(&crate::sink::month::sum1_inputs(
        &availability,
        std::slice::from_ref(scheme),
    ));
    let mut rows = inputs::parse("the year's opr-inputs.csv", &streaming_text)
        .map_err(ScoreError::Streaming)?;
    rows.extend(external);
    // Warnings (months missing) are in the score for the caller to show.
    let mut score =
        model::score(scheme, &rows, margin, &[]).map_err(|problems| ScoreError::Report {
            streaming: streaming_components(scheme),
            problems,
        })?;
    // Incomplete months reach here only when allowed (`--allow-incomplete`): flagged.
    for m in incomplete {
        score
            .warnings
            .push(format!("{m}; put into the year by --allow-incomplete"));
    }
    write_score(outdir, &score)?;
    let mut files = vec!["score.csv".to_string(), "score.json".to_string()];
    let y = Year {
        label: year.to_string(),
        months: months.clone(),
        defs: &cfg.definitions,
        scheme,
        lines: &lines,
        aggregates,
        inputs: &rows,
        score: &score,
        signoffs,
    };
    let charts = charts(&y)?;
    for c in &charts {
        outdir.write(&format!("charts/{}.svg", c.stem), c.svg.as_bytes())?;
        outdir.write(&format!("charts/{}.png", c.stem), &c.png)?;
        files.push(format!("charts/{}.svg", c.stem));
        files.push(format!("charts/{}.png", c.stem));
    }
    let workbook_name = format!("opr-{}.xlsx", year.replace('/', "-"));
    let xlsx = workbook::build(&y, &charts)?;
    outdir.write(&workbook_name, &xlsx)?;
    let page = html::page(&y, &charts, &workbook_name);
    outdir.write("index.html", page.as_bytes())?;
    files.extend([workbook_name, "index.html".into()]);
    Ok((score, files))
}

/// The scheme's components that come from events (`SDM2.PM4.3, …`), for a message about a
/// component given both ways.
fn streaming_components(scheme: &Scheme) -> String {
    scheme
        .measures
        .iter()
        .flat_map(|m| {
            m.components
                .iter()
                .filter(|c| c.from.is_some())
                .map(move |c| format!("{}.{}", m.id, c.id))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
