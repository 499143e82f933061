//! Wiring: builds the components of each command from the configuration and runs them.
//! `main` parses the command line and calls these; nothing here decides exit codes.

use std::fmt::Write as _;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::config::Config;
use crate::engine::aggregate::Aggregates;
use crate::engine::merge::PartitionMerge;
use crate::engine::pipeline::{Pipeline, PipelineStats};
use crate::engine::time::Ts;
use crate::simulate::{SimConfig, SimStats, Simulator};
use crate::sink::deadletter::JsonlDeadLetters;
use crate::sink::outdir::OutDir;
use crate::sink::rollup::{Summary, failures_csv, opr_inputs_csv, rpl_csv, rpl_lines};
use crate::source::files::{Input, drive, open_all, source_names};

/// What a replay produced.
pub struct ReplayOutcome {
    /// The month aggregates.
    pub aggregates: Aggregates,
    /// Event accounting.
    pub stats: PipelineStats,
    /// The summary as written.
    pub summary: Summary,
}

/// A progress bar on stderr when it is a terminal, nothing otherwise.
struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    counter: Arc<AtomicU64>,
}

impl ProgressBar {
    fn new(total: Option<u64>, counter: Arc<AtomicU64>, enabled: bool) -> ProgressBar {
        let bar = (enabled && io::stderr().is_terminal()).then(|| {
            let b = match total {
                Some(t) => indicatif::ProgressBar::new(t),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            b.set_style(style);
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
            b
        });
        ProgressBar { bar, counter }
    }

    fn update(&self, events: u64, started: Instant) {
        if let Some(b) = &self.bar {
            b.set_position(self.counter.load(Ordering::Relaxed));
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            b.set_message(format!(
                "{events} events, {:.0} events/s",
                events as f64 / secs
            ));
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Replays `inputs` through the pipeline and writes `rpl.csv`, `failures.csv`,
/// `deadletter.jsonl` and `summary.json` into `out`.
pub fn replay(
    cfg: &Config,
    inputs: &[Input],
    out: &Path,
    progress: bool,
) -> anyhow::Result<ReplayOutcome> {
    let started = Instant::now();
    let outdir = OutDir::create(out)?;
    let counter = Arc::new(AtomicU64::new(0));
    let mut sources = open_all(inputs, cfg.settings.input.max_event_bytes, counter.clone())?;
    let total: Option<u64> = inputs.iter().map(Input::size).sum();
    let bar = ProgressBar::new(total, counter, progress);
    let dl_file = outdir.file("deadletter.jsonl")?;
    let mut pipeline = Pipeline::new(
        &cfg.pipeline().map_err(anyhow::Error::msg)?,
        source_names(inputs),
        JsonlDeadLetters::new(dl_file),
    );
    let watermark = drive(
        &mut sources,
        &mut pipeline,
        cfg.settings.time.allowed_lateness,
        &mut |events| bar.update(events, started),
    )?;
    bar.finish();
    let (aggregates, stats, sink) = pipeline.into_parts();
    sink.into_inner().commit()?;
    let summary = write_outputs(
        &outdir,
        cfg,
        &aggregates,
        &stats,
        watermark,
        inputs.iter().map(Input::name).collect(),
        started,
    )?;
    Ok(ReplayOutcome {
        aggregates,
        stats,
        summary,
    })
}

/// Every known scheme (built in, or from the configuration's `opr/` directory), for mapping the
/// streaming measures into score inputs.
pub fn schemes(cfg: &Config) -> anyhow::Result<Vec<crate::score::scheme::Scheme>> {
    crate::config::SCHEMES
        .iter()
        .map(|(year, _)| {
            load_scheme(cfg, year).map_err(|e| match e {
                ScoreError::Usage(m) | ScoreError::Failed(m) => anyhow::anyhow!(m),
            })
        })
        .collect()
}

/// Writes `rpl.csv`, `failures.csv` and `summary.json`.
pub fn write_outputs(
    outdir: &OutDir,
    cfg: &Config,
    aggregates: &Aggregates,
    stats: &PipelineStats,
    watermark: Ts,
    inputs: Vec<String>,
    started: Instant,
) -> anyhow::Result<Summary> {
    let lines = rpl_lines(aggregates, None);
    outdir.write("rpl.csv", rpl_csv(&lines).as_bytes())?;
    outdir.write("failures.csv", failures_csv(&lines).as_bytes())?;
    outdir.write(
        "opr-inputs.csv",
        opr_inputs_csv(&lines, &schemes(cfg)?).as_bytes(),
    )?;
    let measures: Vec<&str> = cfg
        .definitions
        .measures
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    let dir = OutDir::create(&outdir.path().join("evidence"))?;
    for (name, text) in crate::sink::rollup::evidence_files(&lines, &measures) {
        dir.write(&name, text.as_bytes())?;
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
    let mut json = serde_json::to_vec_pretty(&summary)?;
    json.push(b'\n');
    outdir.write("summary.json", &json)?;
    Ok(summary)
}

/// What a parse-only pass found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ParseOnly {
    /// Lines read, blank included.
    pub lines: u64,
    /// Blank lines.
    pub blank_lines: u64,
    /// Valid requests.
    pub requests: u64,
    /// Valid responses.
    pub responses: u64,
    /// Invalid events by reason.
    pub invalid: std::collections::BTreeMap<&'static str, u64>,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Lines per second.
    pub lines_per_second: f64,
}

/// Reads and validates every line of `inputs` (decode only: no correlation, no output files).
/// The rate at which a file can merely be read and parsed: the bound on a full replay.
pub fn parse_only(cfg: &Config, inputs: &[Input]) -> anyhow::Result<ParseOnly> {
    use crate::engine::event::{Event, decode};
    use crate::source::lines::{LineReader, is_blank};
    let started = Instant::now();
    let limit = cfg.settings.input.max_event_bytes;
    let mut r = ParseOnly::default();
    let mut invalid = [0u64; 13];
    for input in inputs {
        let mut reader = LineReader::new(input.open(Arc::new(AtomicU64::new(0)))?, limit);
        while let Some(line) = reader.next_line()? {
            r.lines += 1;
            let bytes = reader.bytes(&line);
            if is_blank(bytes) && !line.is_oversized() {
                r.blank_lines += 1;
                continue;
            }
            match decode(bytes, limit) {
                Ok(Event::Request(_)) => r.requests += 1,
                Ok(Event::Response(_)) => r.responses += 1,
                Err(reason) => invalid[reason.index()] += 1,
            }
        }
    }
    r.invalid = crate::engine::event::DeadReason::ALL
        .iter()
        .filter(|d| invalid[d.index()] > 0)
        .map(|d| (d.as_str(), invalid[d.index()]))
        .collect();
    r.wall_seconds = started.elapsed().as_secs_f64();
    r.lines_per_second = r.lines as f64 / r.wall_seconds.max(1e-9);
    Ok(r)
}

/// Where `simulate` writes.
pub enum SimTarget {
    /// Standard output.
    Stdout,
    /// A file; gzip when the name ends in `.gz`.
    File(PathBuf),
    /// A Kafka topic, one message per line keyed by `id`.
    Kafka(crate::kafka::produce::ProducerSettings),
}

/// Runs the simulator into `target`.
pub fn simulate(sim: SimConfig, target: &SimTarget) -> anyhow::Result<SimStats> {
    match target {
        SimTarget::Stdout => {
            let stdout = io::stdout();
            let mut w = io::BufWriter::with_capacity(1 << 16, stdout.lock());
            Ok(Simulator::new(sim).run(&mut w)?)
        }
        SimTarget::Kafka(settings) => {
            let mut producer = crate::kafka::produce::LineProducer::new(settings).map_err(|e| {
                anyhow::anyhow!(
                    "cannot create a Kafka producer for {}: {e}",
                    settings.brokers
                )
            })?;
            let stats = Simulator::new(sim).run(&mut producer)?;
            let produced = producer.finish(std::time::Duration::from_secs(120))?;
            tracing::info!(
                topic = %settings.topic,
                delivered = produced.delivered,
                unkeyed = produced.unkeyed,
                seconds = format!("{:.2}", produced.seconds),
                messages_per_second = format!("{:.0}", produced.delivered as f64 / produced.seconds.max(1e-9)),
                "produced"
            );
            if produced.delivered != stats.lines {
                anyhow::bail!(
                    "{} lines simulated but {} delivered",
                    stats.lines,
                    produced.delivered
                );
            }
            Ok(stats)
        }
        SimTarget::File(p) => {
            let parent = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let outdir = OutDir::create(parent)?;
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| anyhow::anyhow!("{} is not a file name", p.display()))?;
            let mut f = outdir.file(name)?;
            let stats = if name.ends_with(".gz") {
                let mut gz = flate2::write::GzEncoder::new(&mut f, flate2::Compression::fast());
                let s = Simulator::new(sim).run(&mut gz)?;
                gz.finish()?;
                s
            } else {
                Simulator::new(sim).run(&mut f)?
            };
            f.commit()?;
            Ok(stats)
        }
    }
}

/// Simulates `sim` into memory and replays it into `out` (the demo's engine): the same
/// pipeline and files as `replay`, without writing the events themselves.
pub fn simulate_and_replay(
    cfg: &Config,
    sim: SimConfig,
    out: &Path,
) -> anyhow::Result<(ReplayOutcome, SimStats)> {
    let mut bytes = Vec::new();
    let sim_stats = Simulator::new(sim).run(&mut bytes)?;
    let inputs = vec![Input::Memory("simulated".into(), Arc::new(bytes))];
    let outcome = replay(cfg, &inputs, out, true)?;
    Ok((outcome, sim_stats))
}

/// A human-readable table of a month's RPLs against TPL and MPL.
pub fn month_table(agg: &Aggregates, month: crate::engine::calendar::Month) -> String {
    use crate::engine::aggregate::rpl_percent;
    let defs = agg.definitions();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:<8} {:>10} {:>10} {:>9} {:>6} {:>6}  status",
        "measure", "region", "requests", "hits", "RPL %", "TPL", "MPL"
    );
    for (m, mi, block) in agg.blocks() {
        if m != month {
            continue;
        }
        let measure = &defs.measures[mi as usize];
        let all = block.all();
        let rows = block
            .regions
            .iter()
            .zip(["north", "central", "south"])
            .chain(std::iter::once((&all, "all")));
        for (row, region) in rows {
            if row.requests == 0 {
                continue;
            }
            let hits = row.hits(measure.basis);
            let rpl = rpl_percent(hits, row.requests).unwrap_or_default();
            let value: f64 = rpl.parse().unwrap_or(0.0);
            let status = match (measure.tpl, measure.mpl) {
                (Some(t), Some(mpl)) => {
                    let t: f64 = t.to_string().parse().unwrap_or(100.0);
                    let mpl: f64 = mpl.to_string().parse().unwrap_or(0.0);
                    if value >= t {
                        "ok"
                    } else if value > mpl {
                        "BELOW TPL"
                    } else {
                        "BELOW MPL"
                    }
                }
                _ => "-",
            };
            let lvl = |d: Option<rust_decimal::Decimal>| {
                d.map(|d| d.to_string()).unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                s,
                "{:<16} {:<8} {:>10} {:>10} {:>9} {:>6} {:>6}  {}",
                measure.id,
                region,
                row.requests,
                hits,
                rpl,
                lvl(measure.tpl),
                lvl(measure.mpl),
                status
            );
        }
    }
    s
}

/// What `score` was asked.
pub struct ScoreRequest {
    /// A regulatory year (`RY23/24`: the scheme in the config directory, else built in) or a path.
    pub scheme: String,
    /// Input CSV files.
    pub inputs: Vec<PathBuf>,
    /// £m at risk, overriding (or supplying) the scheme's.
    pub margin: Option<rust_decimal::Decimal>,
    /// What-ifs, `MEASURE.COMPONENT[.REGION]=VALUE`.
    pub what_if: Vec<String>,
    /// Where to write `score.csv` and `score.json`.
    pub out: Option<PathBuf>,
}

/// Why `score` failed: the request or configuration (exit 2), or the inputs (exit 1).
#[derive(Debug)]
pub enum ScoreError {
    /// Bad usage or scheme.
    Usage(String),
    /// Bad inputs or I/O.
    Failed(String),
}

/// Loads the scheme named by `arg` (a year or a path), validated against the streaming measures.
pub fn load_scheme(cfg: &Config, arg: &str) -> Result<crate::score::scheme::Scheme, ScoreError> {
    let config_dir = cfg.dir.as_deref();
    use crate::score::scheme;
    let streaming: Vec<String> = cfg
        .definitions
        .measures
        .iter()
        .map(|m| m.id.clone())
        .collect();
    let (name, text) = if scheme::RegYear::parse(arg).is_some() {
        let file = config_dir.map(|d| {
            d.join("opr")
                .join(format!("{}.toml", arg.replace('/', "-")))
        });
        match file.filter(|f| f.is_file()) {
            Some(f) => {
                let text = std::fs::read_to_string(&f)
                    .map_err(|e| ScoreError::Usage(format!("cannot read {}: {e}", f.display())))?;
                (f.display().to_string(), text)
            }
            None => match crate::config::SCHEMES.iter().find(|(y, _)| *y == arg) {
                Some((y, text)) => (format!("built-in scheme {y}"), text.to_string()),
                None => {
                    let known: Vec<&str> = crate::config::SCHEMES.iter().map(|(y, _)| *y).collect();
                    return Err(ScoreError::Usage(format!(
                        "no scheme for {arg} (built in: {}; or give a path)",
                        known.join(", ")
                    )));
                }
            },
        }
    } else {
        let text = std::fs::read_to_string(arg)
            .map_err(|e| ScoreError::Usage(format!("cannot read scheme {arg}: {e}")))?;
        (arg.to_string(), text)
    };
    scheme::parse(&name, &text, &streaming).map_err(|p| {
        ScoreError::Usage(format!(
            "{} problem(s) in the scheme:\n{}",
            p.len(),
            p.join("\n")
        ))
    })
}

/// The margin at risk: `given` (which must be positive), else the scheme's.
pub fn margin_of(
    scheme: &crate::score::scheme::Scheme,
    given: Option<rust_decimal::Decimal>,
) -> Result<rust_decimal::Decimal, ScoreError> {
    match (given, scheme.margin_at_risk) {
        (Some(m), _) if m > rust_decimal::Decimal::ZERO => Ok(m),
        (Some(m), _) => Err(ScoreError::Usage(format!(
            "--margin must be positive, found {m}"
        ))),
        (None, Some(m)) => Ok(m),
        (None, None) => Err(ScoreError::Usage(format!(
            "the margin at risk of {} is not known: pass --margin <£m>",
            scheme.year
        ))),
    }
}

/// Reads and parses score input files; every problem in every file is reported at once.
pub fn read_inputs(paths: &[PathBuf]) -> Result<Vec<crate::score::inputs::InputRow>, ScoreError> {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScoreError::Failed(format!("cannot read {}: {e}", path.display())))?;
        match crate::score::inputs::parse(&path.display().to_string(), &text) {
            Ok(mut r) => rows.append(&mut r),
            Err(mut e) => problems.append(&mut e),
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(ScoreError::Failed(format!(
            "{} problem(s) in the inputs:\n{}",
            problems.len(),
            problems.join("\n")
        )))
    }
}

/// Scores a year: prints the Table 7–shaped table (and what-if differences) and, with `out`,
/// writes `score.csv` and `score.json`. Warnings go to the log.
pub fn score(cfg: &Config, req: &ScoreRequest) -> Result<String, ScoreError> {
    use crate::score::{model, render};
    let scheme = load_scheme(cfg, &req.scheme)?;
    let margin = margin_of(&scheme, req.margin)?;
    let overrides: Vec<model::Override> = req
        .what_if
        .iter()
        .map(|w| model::Override::parse(w, &scheme))
        .collect::<Result<_, _>>()
        .map_err(ScoreError::Usage)?;
    let rows = read_inputs(&req.inputs)?;
    let fail = |p: Vec<String>| {
        ScoreError::Failed(format!(
            "{} problem(s) in the inputs:\n{}",
            p.len(),
            p.join("\n")
        ))
    };
    let base = model::score(&scheme, &rows, margin, &[]).map_err(fail)?;
    let report = if overrides.is_empty() {
        base.clone()
    } else {
        model::score(&scheme, &rows, margin, &overrides).map_err(fail)?
    };
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    let mut text = render::table(&report);
    if !overrides.is_empty() {
        text.push('\n');
        text.push_str(&render::what_if_diff(&base, &report));
    }
    if let Some(out) = &req.out {
        let dir = OutDir::create(out).map_err(|e| ScoreError::Failed(e.to_string()))?;
        write_score(&dir, &report)?;
    }
    Ok(text)
}

/// Writes `score.csv` and `score.json` of a year's score into `dir`.
fn write_score(dir: &OutDir, report: &crate::score::model::Report) -> Result<(), ScoreError> {
    use crate::score::render;
    let io = |e: std::io::Error| ScoreError::Failed(e.to_string());
    dir.write("score.csv", render::score_csv(report).as_bytes())
        .map_err(io)?;
    let mut json = render::score_json(report).map_err(|e| ScoreError::Failed(e.to_string()))?;
    json.push('\n');
    dir.write("score.json", json.as_bytes()).map_err(io)
}

/// What `rollup` found in the store.
pub struct RollupOutcome {
    /// The month's aggregates merged over partitions, with the store's combined watermark.
    pub aggregates: Aggregates,
    /// Event accounting summed over partitions (all months: the store counts events, not
    /// events per month).
    pub stats: PipelineStats,
    /// The month is final (the combined watermark passed its end + the longest deadline).
    pub is_final: bool,
    /// Partitions that contributed.
    pub partitions: Vec<String>,
    /// Revisions recorded for the month.
    pub revisions: Vec<crate::store::RevisionRecord>,
}

/// What a store holds for some months, merged over its partitions.
pub struct StoreLoad {
    /// The months' aggregates, merged, with the store's combined watermark.
    pub aggregates: Aggregates,
    /// Event accounting summed over partitions (all months: the store counts events, not
    /// events per month).
    pub stats: PipelineStats,
    /// Partitions that contributed (`topic/partition`).
    pub partitions: Vec<String>,
    /// The combined watermark.
    pub watermark: Ts,
    /// The open store, for further queries.
    pub store: Box<dyn crate::store::Store>,
}

/// Loads `months` from the configured state store (`[state] url`): each partition's rows form
/// its blocks, and partitions merge (counts and histograms add) exactly as `run` merges them.
pub fn load_store(
    cfg: &Config,
    months: &[crate::engine::calendar::Month],
) -> anyhow::Result<StoreLoad> {
    use crate::store::{Identity, open_configured};
    let url = &cfg.settings.state.url;
    if url.is_empty() {
        anyhow::bail!("state.url is empty: there is no store to read (set [state] url)");
    }
    if let Some(path) = url.strip_prefix("sqlite://")
        && !Path::new(path).exists()
    {
        anyhow::bail!("the state store {path} does not exist (has `run` checkpointed yet?)");
    }
    let mut store = open_configured(cfg, &Identity::reader(cfg))?;
    let pcfg = cfg.pipeline().map_err(anyhow::Error::msg)?;
    let mut merge = PartitionMerge::new(pcfg.definitions, pcfg.calendar);
    let parts = store.partitions()?;
    let mut names = Vec::new();
    for p in &parts {
        if let Some(meta) = &p.meta {
            merge.add_counters(&meta.stats, meta.aggregate_stats);
            names.push(format!("{}/{}", p.topic, p.partition));
        }
    }
    let mut by_origin: std::collections::BTreeMap<String, Vec<crate::store::StoredRow>> =
        Default::default();
    for month in months {
        for r in store.month_rows(Some(*month))? {
            by_origin.entry(r.origin.clone()).or_default().push(r);
        }
    }
    for (_, rows) in by_origin {
        merge.add_blocks(crate::store::blocks_of(rows, &cfg.definitions)?)?;
    }
    let watermark = store.combined_watermark()?.map_or(Ts::MIN, Ts);
    let (aggregates, stats) = merge.finish(watermark);
    Ok(StoreLoad {
        aggregates,
        stats,
        partitions: names,
        watermark,
        store,
    })
}

/// `rollup`: a month's outputs (SPEC §5) from the state store of a `run`, without Kafka.
pub fn rollup(
    cfg: &Config,
    month: crate::engine::calendar::Month,
    out: &Path,
) -> anyhow::Result<RollupOutcome> {
    let started = Instant::now();
    let loaded = load_store(cfg, &[month])?;
    let StoreLoad {
        aggregates: merged,
        stats,
        partitions: names,
        watermark,
        mut store,
    } = loaded;
    let is_final = merged.is_final(month);
    if !is_final {
        tracing::warn!(%month, watermark = %watermark,
            "the month is not final yet: its figures can still change as events arrive");
    }
    let revisions = store.revisions(Some(month))?;
    let outdir = OutDir::create(out)?;
    write_outputs(
        &outdir,
        cfg,
        &merged,
        &stats,
        watermark,
        names.clone(),
        started,
    )?;
    Ok(RollupOutcome {
        aggregates: merged,
        stats,
        is_final,
        partitions: names,
        revisions,
    })
}

/// The HTTP endpoint of `run` and `demo`, over a fresh live view.
pub struct Endpoint {
    /// What the workers publish and the endpoint reads.
    pub live: Arc<crate::ops::live::Live>,
    /// The server, while it runs (none when `http.listen` is empty).
    pub server: Option<crate::ops::http::HttpServer>,
    /// The alert evaluator, while it runs.
    pub alerts: crate::ops::alerts::AlertsHandle,
}

/// Starts `/metrics`, `/healthz` and `/readyz` on `http.listen`. With `fallback`, a busy address
/// falls back to a free port on 127.0.0.1 (the demo must work next to a running service).
pub fn endpoint(cfg: &Config, fallback: bool) -> anyhow::Result<Endpoint> {
    let idle = cfg.settings.kafka.idle_timeout.to_std();
    let live = Arc::new(crate::ops::live::Live::new(idle));
    let defs = Arc::new(cfg.definitions.clone());
    let calendar = crate::engine::calendar::Calendar::new(&cfg.settings.time.zone)
        .map_err(anyhow::Error::msg)?;
    let alerts = crate::ops::alerts::spawn(
        cfg.settings.alerts.clone(),
        defs.clone(),
        calendar.clone(),
        live.clone(),
    )?;
    let listen = cfg.settings.http.listen.as_str();
    if listen.is_empty() {
        return Ok(Endpoint {
            live,
            server: None,
            alerts,
        });
    }
    let metrics = Arc::new(
        crate::ops::metrics::Metrics::new(
            defs,
            calendar,
            live.clone(),
            !cfg.settings.state.url.is_empty(),
            Some(alerts.board.clone()),
        )
        .map_err(|e| anyhow::anyhow!("metrics registry: {e}"))?,
    );
    let max_lag = cfg.settings.http.ready_max_lag;
    let server = match crate::ops::http::serve(listen, metrics.clone(), live.clone(), max_lag) {
        Ok(s) => s,
        Err(e) if fallback => {
            tracing::warn!(error = %e, "using a free port instead");
            crate::ops::http::serve("127.0.0.1:0", metrics, live.clone(), max_lag)?
        }
        Err(e) => return Err(e),
    };
    Ok(Endpoint {
        live,
        server: Some(server),
        alerts,
    })
}

/// `run`: consumes Kafka until stopped (or caught up) and writes the month outputs into `out`.
pub fn run(
    cfg: &Config,
    out: &Path,
    opts: &crate::kafka::run::RunOptions,
    stop: &std::sync::atomic::AtomicBool,
    endpoint: &Endpoint,
) -> anyhow::Result<ReplayOutcome> {
    let started = Instant::now();
    let outdir = OutDir::create(out)?;
    let outcome = crate::kafka::run::run(cfg, opts, stop, endpoint.live.clone())?;
    let summary = write_outputs(
        &outdir,
        cfg,
        &outcome.aggregates,
        &outcome.stats,
        outcome.aggregates.watermark(),
        outcome.partitions.clone(),
        started,
    )?;
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

/// What the live demo produced.
pub struct DemoOutcome {
    /// The consumer's outputs, as `run` writes them.
    pub run: ReplayOutcome,
    /// What the simulator produced.
    pub sim: SimStats,
    /// Where `/metrics` was served.
    pub metrics: Option<std::net::SocketAddr>,
    /// The alerts firing at the end (in-process evaluator), as a person reads them.
    pub alerts: Vec<String>,
}

/// `demo`: the whole live path with no set-up: an embedded broker (librdkafka's mock cluster)
/// with a 6-partition topic, the simulator producing into it on one thread, `run` consuming it
/// on this one until everything produced is processed, and `/metrics` up meanwhile. With
/// `keep_serving`, the endpoint stays up afterwards until `stop` is set.
pub fn demo_live(
    cfg: &Config,
    sim: SimConfig,
    out: &Path,
    keep_serving: bool,
    stop: &std::sync::atomic::AtomicBool,
    on_ready: impl FnOnce(Option<std::net::SocketAddr>),
) -> anyhow::Result<DemoOutcome> {
    use std::sync::atomic::AtomicBool;
    let mock = rdkafka::mocking::MockCluster::new(1)
        .map_err(|e| anyhow::anyhow!("cannot start the embedded broker: {e}"))?;
    let mut cfg = cfg.clone();
    let k = &mut cfg.settings.kafka;
    k.brokers = mock.bootstrap_servers();
    k.topics = vec!["srv-events".into()];
    k.group_id = "srv-opr-demo".into();
    k.dead_letter_topic = "srv-events-dead-letters".into();
    // The demo's own broker speaks plaintext, whatever the configuration says for production.
    k.properties = vec![
        // The mock broker holds an empty fetch for the full wait; the producer, paced on the
        // consumer, would wait with it.
        ("fetch.wait.max.ms".into(), "10".into()),
    ];
    k.secrets.clear();
    // A fresh store beside the outputs: the embedded broker starts empty every time, so an old
    // checkpoint's offsets would point past its end. `rollup` can read it afterwards.
    std::fs::create_dir_all(out)?;
    let db = out.join("state.db");
    for suffix in ["", "-wal", "-shm"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if f.exists() {
            std::fs::remove_file(&f)
                .map_err(|e| anyhow::anyhow!("cannot remove the old {}: {e}", f.display()))?;
        }
    }
    cfg.settings.state.url = format!("sqlite://{}", db.display());
    // A month goes by in seconds: evaluate alerts every second, firing at once.
    cfg.settings.alerts.interval = crate::engine::time::Dur::from_secs(1);
    cfg.settings.alerts.hold = crate::engine::time::Dur::ZERO;
    mock.create_topic("srv-events", 6, 1)?;
    mock.create_topic("srv-events-dead-letters", 1, 1)?;
    let endpoint = endpoint(&cfg, true)?;
    let addr = endpoint.server.as_ref().map(|s| s.addr);
    on_ready(addr);

    let produced = Arc::new(AtomicBool::new(false));
    let settings = crate::kafka::produce::ProducerSettings {
        brokers: cfg.settings.kafka.brokers.clone(),
        topic: "srv-events".into(),
        rate: None,
        properties: vec![],
    };
    let done = produced.clone();
    let live = endpoint.live.clone();
    let simulator = std::thread::Builder::new()
        .name("srv-opr-simulator".into())
        .spawn(move || {
            let r = (|| -> anyhow::Result<(SimStats, u64)> {
                // The mock broker keeps only about 5 MB per partition: stay at most this many
                // messages ahead of the consumer, or the log would drop what is not yet read.
                const AHEAD: u64 = 100_000;
                let gate = Box::new(move |sent: u64| {
                    while sent > live.events_processed() + AHEAD {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                });
                let mut producer =
                    crate::kafka::produce::LineProducer::new(&settings)?.with_gate(gate);
                let stats = Simulator::new(sim).run(&mut producer)?;
                let produced = producer.finish(std::time::Duration::from_secs(120))?;
                Ok((stats, produced.delivered))
            })();
            done.store(true, Ordering::Relaxed);
            r
        })?;
    let opts = crate::kafka::run::RunOptions {
        until_caught_up: true,
        input_complete: Some(produced),
        accept_config_change: false,
    };
    let outcome = run(&cfg, out, &opts, stop, &endpoint);
    let (sim_stats, delivered) = simulator
        .join()
        .map_err(|_| anyhow::anyhow!("the simulator panicked"))??;
    let outcome = outcome?;
    if outcome.stats.events != delivered {
        anyhow::bail!(
            "{delivered} messages were produced but {} consumed: the embedded broker dropped \
             some (its log is small) or the consumer lost them",
            outcome.stats.events
        );
    }
    if keep_serving && addr.is_some() {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let alerts = endpoint
        .alerts
        .board
        .lock()
        .map(|b| b.summaries.clone())
        .unwrap_or_default();
    drop(endpoint);
    drop(mock);
    Ok(DemoOutcome {
        run: outcome,
        sim: sim_stats,
        metrics: addr,
        alerts,
    })
}

/// What `report` was asked.
pub struct ReportRequest {
    /// The regulatory year, `RY23/24`.
    pub year: String,
    /// Score inputs for the components that do not come from events (SUM1, SDM1's install
    /// components, VMM…).
    pub inputs: Vec<PathBuf>,
    /// £m at risk, overriding (or supplying) the scheme's.
    pub margin: Option<rust_decimal::Decimal>,
    /// Event files to replay instead of reading the state store.
    pub replay: Vec<Input>,
    /// The output directory.
    pub out: PathBuf,
}

/// What `report` wrote.
pub struct ReportOutcome {
    /// The year's score.
    pub score: crate::score::model::Report,
    /// Files written, relative to the output directory.
    pub files: Vec<String>,
    /// Months of the year with figures from events, and whether each is final.
    pub months: Vec<(crate::engine::calendar::Month, bool)>,
    /// Seconds spent gathering the figures (store read or replay).
    pub gather_seconds: f64,
    /// Seconds spent scoring and writing the workbook, charts and page.
    pub render_seconds: f64,
}

/// `report`: a regulatory year's roll-ups (from the state store, or a replay of event files),
/// its score with the external inputs, and the workbook, charts and HTML summary.
pub fn report(cfg: &Config, req: &ReportRequest) -> Result<ReportOutcome, ScoreError> {
    use crate::engine::calendar::Month;
    use crate::score::scheme::RegYear;
    let failed = |e: anyhow::Error| ScoreError::Failed(format!("{e:#}"));
    let io = |e: std::io::Error| ScoreError::Failed(e.to_string());
    let year = RegYear::parse(&req.year).ok_or_else(|| {
        ScoreError::Usage(format!(
            "--year {:?} is not a regulatory year like RY23/24",
            req.year
        ))
    })?;
    let scheme = load_scheme(cfg, &req.year)?;
    let margin = margin_of(&scheme, req.margin)?;
    let external = read_inputs(&req.inputs)?;
    let months: Vec<Month> = year
        .months()
        .iter()
        .filter_map(|m| Month::parse(m))
        .collect();
    let started = Instant::now();
    let outdir = OutDir::create(&req.out).map_err(io)?;
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
        let l = load_store(cfg, &months).map_err(|e| {
            ScoreError::Failed(format!(
                "{e:#}; to report from event files instead, give --replay FILE…"
            ))
        })?;
        write_outputs(
            &outdir,
            cfg,
            &l.aggregates,
            &l.stats,
            l.watermark,
            l.partitions.clone(),
            started,
        )
        .map_err(failed)?;
        l.aggregates
    } else {
        replay(cfg, &req.replay, &req.out, false)
            .map_err(failed)?
            .aggregates
    };
    let gather_seconds = started.elapsed().as_secs_f64();
    let rendering = Instant::now();
    let (score, mut written) = render_report(
        cfg,
        &req.year,
        &scheme,
        margin,
        &aggregates,
        external,
        &outdir,
    )?;
    files.append(&mut written);
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

/// The rendering half of `report`: from a year's aggregates, the score (streaming rows from
/// `aggregates`, plus `external` rows), `score.csv`/`score.json`, the charts, the workbook and
/// the page, written into `outdir`. Returns the score and the files written.
#[allow(clippy::too_many_arguments)]
pub fn render_report(
    cfg: &Config,
    year: &str,
    scheme: &crate::score::scheme::Scheme,
    margin: rust_decimal::Decimal,
    aggregates: &Aggregates,
    external: Vec<crate::score::inputs::InputRow>,
    outdir: &OutDir,
) -> Result<(crate::score::model::Report, Vec<String>), ScoreError> {
    use crate::engine::calendar::Month;
    use crate::score::{inputs, model, scheme::RegYear};
    let io = |e: std::io::Error| ScoreError::Failed(e.to_string());
    let months: Vec<Month> = RegYear::parse(year)
        .map(|y| y.months().iter().filter_map(|m| Month::parse(m)).collect())
        .unwrap_or_default();
    let lines = rpl_lines(aggregates, Some(&months));
    if lines.is_empty() {
        tracing::warn!(year = %year, "no requests in the year: the report has only the external inputs");
    }
    let streaming_text = opr_inputs_csv(&lines, std::slice::from_ref(scheme));
    let mut rows = inputs::parse("the year's opr-inputs.csv", &streaming_text).map_err(|p| {
        ScoreError::Failed(format!(
            "internal: the streaming inputs do not parse: {}",
            p.join("; ")
        ))
    })?;
    rows.extend(external);
    let fail = |p: Vec<String>| {
        ScoreError::Failed(format!(
            "{} problem(s) in the inputs (the streaming-derived rows are {}):\n{}",
            p.len(),
            scheme
                .measures
                .iter()
                .flat_map(|m| m
                    .components
                    .iter()
                    .filter(|c| c.from.is_some())
                    .map(move |c| format!("{}.{}", m.id, c.id)))
                .collect::<Vec<_>>()
                .join(", "),
            p.join("\n")
        ))
    };
    // Warnings (months missing) are in the score for the caller to show.
    let score = model::score(scheme, &rows, margin, &[]).map_err(fail)?;
    write_score(outdir, &score)?;
    let mut files = vec!["score.csv".to_string(), "score.json".to_string()];
    let y = crate::report::Year {
        label: year.to_string(),
        months: months.clone(),
        defs: &cfg.definitions,
        scheme,
        lines: &lines,
        aggregates,
        inputs: &rows,
        score: &score,
    };
    let charts = crate::report::charts(&y).map_err(ScoreError::Failed)?;
    let chart_dir = OutDir::create(&outdir.path().join("charts")).map_err(io)?;
    for c in &charts {
        chart_dir
            .write(&format!("{}.svg", c.stem), c.svg.as_bytes())
            .map_err(io)?;
        chart_dir
            .write(&format!("{}.png", c.stem), &c.png)
            .map_err(io)?;
        files.push(format!("charts/{}.svg", c.stem));
        files.push(format!("charts/{}.png", c.stem));
    }
    let workbook_name = format!("opr-{}.xlsx", year.replace('/', "-"));
    let xlsx = crate::report::workbook::build(&y, &charts).map_err(ScoreError::Failed)?;
    outdir.write(&workbook_name, &xlsx).map_err(io)?;
    let page = crate::report::html::page(&y, &charts, &workbook_name);
    outdir.write("index.html", page.as_bytes()).map_err(io)?;
    files.extend([workbook_name, "index.html".into()]);
    Ok((score, files))
}
