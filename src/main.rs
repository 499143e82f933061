//! The `srv-opr` command line: parses arguments, loads configuration, calls the library, and
//! decides the exit code in one place (0 success, 2 bad usage or configuration, 1 anything else,
//! always with a one-line reason on stderr).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use srv_opr::app::{self, SimTarget};
use srv_opr::config::{Config, ConfigError};
use srv_opr::engine::calendar::{Calendar, Month};
use srv_opr::engine::domain::Region;
use srv_opr::engine::time::{Dur, Ts, parse_rfc3339};
use srv_opr::simulate::{Quality, SimConfig};
use srv_opr::source::files::inputs_from_paths;

// The pipeline allocates small, short-lived buffers (waiting responses, bucket vectors,
// histograms); mimalloc serves those markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--margin 8.938` (also `£8.938m`) as exact £m.
fn parse_margin(m: Option<&str>) -> Result<Option<rust_decimal::Decimal>, Failure> {
    m.map(|m| {
        m.trim_start_matches('£')
            .trim_end_matches('m')
            .parse::<rust_decimal::Decimal>()
    })
    .transpose()
    .map_err(|_| Failure::usage("--margin must be a number of £m, e.g. 8.938"))
}

/// Service Request events to the regulator's performance figures (OPR).
#[derive(Parser, Debug)]
#[command(name = "srv-opr", version, about, long_about = None)]
struct Cli {
    /// Configuration directory holding srv-opr.toml and measures.toml (each optional: the
    /// built-in defaults stand in). Default: ./config if it exists.
    #[arg(long, global = true, env = "SRV_OPR_CONFIG", value_name = "DIR")]
    config: Option<PathBuf>,

    /// Log filter (`info`, `debug`, `srv_opr=trace`…); also RUST_LOG.
    #[arg(long, global = true, value_name = "FILTER")]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Replay JSON Lines files (.jsonl, .jsonl.gz; `-` for stdin) through the pipeline.
    Replay(ReplayArgs),
    /// Generate seeded synthetic SRV traffic as JSON Lines.
    Simulate(SimulateArgs),
    /// The whole live path with no set-up: an embedded broker, the simulator producing a month
    /// into it, `run` consuming it with /metrics up, and the month's RPLs against TPL and MPL.
    Demo(DemoArgs),
    /// Score a regulatory year: RPLs to margin retained (the seed's Table 7).
    Score(ScoreArgs),
    /// Consume SRV events from Kafka ([kafka] in srv-opr.toml) in a consumer group.
    Run(RunArgs),
    /// A month's outputs from the state store of `run` ([state] url), without Kafka.
    Rollup(RollupArgs),
    /// Prometheus recording and alerting rules for the configured measures and [alerts]: the
    /// same alerts `run` evaluates in process.
    AlertRules(AlertRulesArgs),
    /// A regulatory year for the people who receive it: the months' roll-ups (from the state
    /// store, or a replay of event files), the score, an XLSX workbook shaped like the RIGs
    /// Annex 1, charts and a one-page HTML summary.
    Report(ReportArgs),
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// The regulatory year (April–March), e.g. RY23/24.
    #[arg(long, value_name = "RYxx/yy")]
    year: String,
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
}

#[derive(Args, Debug)]
struct AlertRulesArgs {
    /// Where to write the rules (`-` for standard output).
    #[arg(
        long,
        default_value = "deploy/prometheus/rules/srv-opr.yml",
        value_name = "FILE"
    )]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct RollupArgs {
    /// The month, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM")]
    month: String,
    /// Output directory (default ./rollup-YYYY-MM).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
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
}

#[derive(Args, Debug)]
struct ScoreArgs {
    /// The scheme: a regulatory year (RY23/24, RY24/25: from <config>/opr/ or built in) or a
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
}

#[derive(Args, Debug)]
struct ReplayArgs {
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
}

#[derive(Args, Debug)]
struct SimulateArgs {
    /// Calendar month to simulate, in the configured time zone (e.g. 2024-03).
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"])]
    month: Option<String>,
    /// Start of the traffic (RFC 3339), instead of --month.
    #[arg(long, value_name = "RFC3339", requires = "to")]
    from: Option<String>,
    /// End of the traffic (RFC 3339, exclusive).
    #[arg(long, value_name = "RFC3339", requires = "from")]
    to: Option<String>,
    /// Mean requests per second over a day.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Stop after this many requests.
    #[arg(long, value_name = "N")]
    requests: Option<u64>,
    /// Seed: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file (.gz compresses); standard output when absent.
    #[arg(long, short, value_name = "FILE", conflicts_with = "kafka")]
    out: Option<PathBuf>,
    /// Produce to Kafka instead (bootstrap servers), one message per line keyed by `id` with the
    /// murmur2_random partitioner.
    #[arg(long, value_name = "BROKERS", requires = "topic")]
    kafka: Option<String>,
    /// The topic to produce to (with --kafka).
    #[arg(long, value_name = "TOPIC", requires = "kafka")]
    topic: Option<String>,
    /// Messages per second to produce at (wall clock); as fast as possible when absent.
    #[arg(long, value_name = "N", requires = "kafka")]
    produce_rate: Option<f64>,
    /// A librdkafka producer property, repeatable: -X security.protocol=SASL_SSL.
    #[arg(short = 'X', value_name = "KEY=VALUE", requires = "kafka")]
    kafka_property: Vec<String>,
    /// Quality of a region, repeatable: `central:slow=0.03,error=0.01,lost=0.002`
    /// (shares of requests; defaults slow=0.004, error=0.002, lost=0.0005).
    #[arg(long, value_name = "REGION:K=V,…")]
    quality: Vec<String>,
    /// Share of requests acknowledged with I99.
    #[arg(long, default_value_t = 0.6)]
    acks: f64,
    /// Share of requests (and, separately, of finals) sent twice.
    #[arg(long, default_value_t = 0.002)]
    duplicates: f64,
    /// Share of requests followed by a bad line (malformed, unknown region, orphan, …).
    #[arg(long, default_value_t = 0.0005)]
    bad: f64,
    /// Share of events held back beyond the allowed lateness (late events).
    #[arg(long, default_value_t = 0.0)]
    late: f64,
    /// Greatest disorder: an event never trails the newest by more than this.
    #[arg(long, default_value = "2s")]
    disorder: String,
    /// Print what was generated (counts by kind) as JSON on stderr.
    #[arg(long)]
    stats: bool,
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Month to simulate.
    #[arg(long, default_value = "2024-03")]
    month: String,
    /// Mean requests per second (0.4 ≈ 1 million requests in a month).
    #[arg(long, default_value_t = 0.4)]
    rate: f64,
    /// Where to write the month's files.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Keep serving /metrics after the month is done, until Ctrl-C.
    #[arg(long)]
    keep_serving: bool,
}

/// An error with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(m: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: m.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        // A store that belongs to something else is a configuration problem, not a failure.
        let refused = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<srv_opr::store::StoreError>(),
                Some(srv_opr::store::StoreError::Refused(_))
            )
        });
        Failure {
            code: if refused { 2 } else { 1 },
            message: format!("{e:#}"),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure {
            code: 2,
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let mut lines = f.message.lines();
            // First line is the one-line reason; the rest (e.g. every config problem) follows.
            eprintln!("srv-opr: error: {}", lines.next().unwrap_or("failed"));
            for l in lines {
                eprintln!("  {l}");
            }
            ExitCode::from(f.code)
        }
    }
}

fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(String::from)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn load_config(dir: Option<PathBuf>) -> Result<Config, Failure> {
    let dir = dir.or_else(|| {
        let d = PathBuf::from("config");
        d.is_dir().then_some(d)
    });
    if let Some(d) = &dir
        && !d.is_dir()
    {
        return Err(Failure::usage(format!(
            "configuration directory {} does not exist",
            d.display()
        )));
    }
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("SRV_OPR__"))
        .collect();
    Ok(Config::load(dir.as_deref(), &env)?)
}

fn run(cli: Cli) -> Result<(), Failure> {
    let cfg = load_config(cli.config)?;
    match cli.command {
        Command::Score(a) => {
            let mut inputs = a.inputs.clone();
            if let Some(dir) = &a.from_rollup {
                inputs.insert(0, dir.join("opr-inputs.csv"));
            }
            if inputs.is_empty() {
                return Err(Failure::usage(
                    "give --inputs FILE… and/or --from-rollup DIR",
                ));
            }
            let margin = parse_margin(a.margin.as_deref())?;
            let req = app::ScoreRequest {
                scheme: a.scheme,
                inputs,
                margin,
                what_if: a.what_if,
                out: a.out,
            };
            match app::score(&cfg, &req) {
                Ok(text) => {
                    print!("{text}");
                    Ok(())
                }
                Err(app::ScoreError::Usage(m)) => Err(Failure::usage(m)),
                Err(app::ScoreError::Failed(m)) => Err(Failure {
                    code: 1,
                    message: m,
                }),
            }
        }
        Command::Report(a) => {
            let margin = parse_margin(a.margin.as_deref())?;
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("report-{}", a.year.replace('/', "-"))));
            let req = app::ReportRequest {
                year: a.year.clone(),
                inputs: a.inputs,
                margin,
                replay: inputs_from_paths(&a.replay),
                out: out.clone(),
            };
            match app::report(&cfg, &req) {
                Ok(r) => {
                    for w in &r.score.warnings {
                        eprintln!("srv-opr: warning: {w}");
                    }
                    print!("{}", srv_opr::score::render::table(&r.score));
                    let months: Vec<String> = r
                        .months
                        .iter()
                        .map(|(m, fin)| format!("{m}{}", if *fin { "" } else { " (not final)" }))
                        .collect();
                    eprintln!(
                        "srv-opr: {} from events: {}",
                        a.year,
                        if months.is_empty() {
                            "no months".to_string()
                        } else {
                            months.join(", ")
                        }
                    );
                    eprintln!(
                        "srv-opr: figures gathered in {:.2} s; score, workbook, {} charts and the \
                         page written in {:.2} s",
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
                Err(app::ScoreError::Usage(m)) => Err(Failure::usage(m)),
                Err(app::ScoreError::Failed(m)) => Err(Failure {
                    code: 1,
                    message: m,
                }),
            }
        }
        Command::Replay(a) if a.parse_only => {
            let r = app::parse_only(&cfg, &inputs_from_paths(&a.files))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&r).map_err(anyhow::Error::from)?
            );
            Ok(())
        }
        Command::Replay(a) => {
            let inputs = inputs_from_paths(&a.files);
            let outcome = app::replay(&cfg, &inputs, &a.out, !a.no_progress)?;
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
        Command::Simulate(a) => {
            let sim = sim_config(&cfg, &a)?;
            let target = match (&a.out, &a.kafka, &a.topic) {
                (Some(p), _, _) => SimTarget::File(p.clone()),
                (None, Some(brokers), Some(topic)) => {
                    if a.produce_rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                        return Err(Failure::usage("--produce-rate must be a positive number"));
                    }
                    let properties = a
                        .kafka_property
                        .iter()
                        .map(|kv| {
                            kv.split_once('=')
                                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                                .ok_or_else(|| {
                                    Failure::usage(format!("-X {kv:?}: expected KEY=VALUE"))
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    SimTarget::Kafka(srv_opr::kafka::produce::ProducerSettings {
                        brokers: brokers.clone(),
                        topic: topic.clone(),
                        rate: a.produce_rate,
                        properties,
                    })
                }
                _ => SimTarget::Stdout,
            };
            let stats = app::simulate(sim, &target)?;
            if a.stats {
                eprintln!(
                    "{}",
                    serde_json::to_string(&stats).map_err(anyhow::Error::from)?
                );
            }
            Ok(())
        }
        Command::Demo(a) => demo(&cfg, &a),
        Command::AlertRules(a) => {
            let text =
                srv_opr::ops::alerts::rules::generate(&cfg.definitions, &cfg.settings.alerts);
            if a.out.as_os_str() == "-" {
                print!("{text}");
            } else {
                if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
                }
                std::fs::write(&a.out, &text)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", a.out.display()))?;
                eprintln!(
                    "srv-opr: alert rules for {} measures written to {} (check them with \
                     `promtool check rules {}`)",
                    cfg.definitions.measures.len(),
                    a.out.display(),
                    a.out.display()
                );
            }
            Ok(())
        }
        Command::Rollup(a) => {
            let month = srv_opr::engine::calendar::Month::parse(&a.month)
                .ok_or_else(|| Failure::usage(format!("--month {:?} is not YYYY-MM", a.month)))?;
            let out = a
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("rollup-{month}")));
            let r = app::rollup(&cfg, month, &out)?;
            if !r.is_final {
                eprintln!(
                    "srv-opr: warning: {month} is not final yet (watermark {}): its figures can \
                     still change",
                    r.aggregates.watermark()
                );
            }
            for rev in &r.revisions {
                eprintln!(
                    "srv-opr: revision {} of {} {} {} ({}): {}",
                    rev.revision, rev.month, rev.measure, rev.region, rev.origin, rev.reason
                );
            }
            eprintln!(
                "srv-opr: rollup of {month} from {} partitions written to {}",
                r.partitions.len(),
                out.display()
            );
            Ok(())
        }
        Command::Run(a) => {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            watch_signals(stop.clone(), cfg.settings.kafka.shutdown_timeout);
            let endpoint = app::endpoint(&cfg, false)?;
            app::run(
                &cfg,
                &a.out,
                &srv_opr::kafka::run::RunOptions {
                    until_caught_up: a.until_caught_up,
                    input_complete: None,
                    accept_config_change: a.accept_config_change,
                },
                &stop,
                &endpoint,
            )?;
            Ok(())
        }
    }
}

/// Sets `stop` on SIGINT or SIGTERM (the run loop checks it between polls). The stop must be
/// over within `deadline` (`kafka.shutdown_timeout`), or the process exits 1 without outputs; a
/// second signal exits at once.
fn watch_signals(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    deadline: srv_opr::engine::time::Dur,
) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            tracing::error!("cannot watch for signals: SIGTERM will not stop the run cleanly");
            return;
        };
        rt.block_on(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot watch SIGTERM");
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("signal received: draining and handing over the partitions");
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let deadline = deadline.to_std();
            tokio::select! {
                _ = tokio::time::sleep(deadline) => {
                    eprintln!(
                        "srv-opr: the shutdown deadline of {deadline:?} (kafka.shutdown_timeout) \
                         passed before the partitions were handed over; exiting without outputs"
                    );
                }
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("srv-opr: second signal: exiting without outputs");
                }
                _ = term.recv() => {
                    eprintln!("srv-opr: second signal: exiting without outputs");
                }
            }
            std::process::exit(1);
        });
    });
}

fn month_bounds(cfg: &Config, month: &str) -> Result<(Month, Ts, Ts), Failure> {
    let m = Month::parse(month)
        .ok_or_else(|| Failure::usage(format!("--month {month:?} is not YYYY-MM")))?;
    let cal = Calendar::new(&cfg.settings.time.zone).map_err(Failure::usage)?;
    Ok((m, cal.start_of(m), cal.end_of(m)))
}

fn sim_config(cfg: &Config, a: &SimulateArgs) -> Result<SimConfig, Failure> {
    let (start, end) = match (&a.month, &a.from, &a.to) {
        (Some(m), _, _) => {
            let (_, s, e) = month_bounds(cfg, m)?;
            (s, e)
        }
        (None, Some(f), Some(t)) => {
            let p = |s: &str| {
                parse_rfc3339(s.as_bytes())
                    .ok_or_else(|| Failure::usage(format!("{s:?} is not an RFC 3339 timestamp")))
            };
            (p(f)?, p(t)?)
        }
        _ => {
            return Err(Failure::usage(
                "say which time to simulate: --month YYYY-MM, or --from and --to",
            ));
        }
    };
    if end <= start {
        return Err(Failure::usage("--to must be after --from"));
    }
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err(Failure::usage("--rate must be a positive number"));
    }
    for (name, v) in [
        ("acks", a.acks),
        ("duplicates", a.duplicates),
        ("bad", a.bad),
        ("late", a.late),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(Failure::usage(format!(
                "--{name} must be a share between 0 and 1"
            )));
        }
    }
    let disorder =
        Dur::parse(&a.disorder).map_err(|e| Failure::usage(format!("--disorder: {e}")))?;
    let mut quality = [Quality::default(); 3];
    for q in &a.quality {
        let (region, kvs) = q.split_once(':').ok_or_else(|| {
            Failure::usage(format!("--quality {q:?}: expected REGION:key=value,…"))
        })?;
        let r = Region::parse(region)
            .ok_or_else(|| Failure::usage(format!("--quality: unknown region {region:?}")))?;
        let slot = &mut quality[r as usize];
        for kv in kvs.split(',') {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| Failure::usage(format!("--quality {q:?}: expected key=value")))?;
            let v: f64 = v
                .parse()
                .ok()
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "--quality {q:?}: {k} must be a share between 0 and 1"
                    ))
                })?;
            match k {
                "slow" => slot.slow = v,
                "error" => slot.error = v,
                "lost" => slot.lost = v,
                _ => {
                    return Err(Failure::usage(format!(
                        "--quality: unknown key {k:?} (slow, error, lost)"
                    )));
                }
            }
        }
        if slot.slow + slot.error + slot.lost > 1.0 {
            return Err(Failure::usage(format!(
                "--quality {q:?}: the shares add up to more than 1"
            )));
        }
    }
    Ok(SimConfig {
        seed: a.seed,
        start,
        end,
        rate: a.rate,
        max_requests: a.requests,
        quality,
        acks: a.acks,
        duplicates: a.duplicates,
        bad: a.bad,
        late: a.late,
        disorder,
        local_offsets: 0.2,
    })
}

fn demo(cfg: &Config, a: &DemoArgs) -> Result<(), Failure> {
    let (month, start, end) = month_bounds(cfg, &a.month)?;
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err(Failure::usage("--rate must be a positive number"));
    }
    let mut quality = [Quality::default(); 3];
    // One region struggles, so the table shows what a miss looks like.
    quality[Region::Central as usize] = Quality {
        slow: 0.012,
        error: 0.003,
        lost: 0.001,
    };
    let sim = SimConfig {
        seed: 2024,
        start,
        end,
        rate: a.rate,
        quality,
        ..SimConfig::default()
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    watch_signals(stop.clone(), cfg.settings.kafka.shutdown_timeout);
    eprintln!(
        "srv-opr demo: an embedded Kafka broker (librdkafka's mock cluster), {month} simulated at {} \
         requests/s into a 6-partition topic (central degraded), consumed by `run`…",
        a.rate
    );
    let started = std::time::Instant::now();
    let outcome = app::demo_live(cfg, sim, &a.out, a.keep_serving, &stop, |addr| {
        if let Some(addr) = addr {
            eprintln!("metrics while it runs: curl http://{addr}/metrics");
        }
    })?;
    let secs = started.elapsed().as_secs_f64();
    println!("{}", app::month_table(&outcome.run.aggregates, month));
    if outcome.alerts.is_empty() {
        println!("alerts firing at the end: none");
    } else {
        println!("alerts firing at the end (also sent to alerts.alertmanager_url when set):");
        for a in &outcome.alerts {
            println!("  {a}");
        }
    }
    println!(
        "{} events ({} requests simulated) consumed from 6 partitions, {} dead letters (to the \
         dead-letter topic); {:.1} s in all",
        outcome.run.stats.events,
        outcome.sim.requests,
        outcome.run.stats.dead_letters_total(),
        secs,
    );
    println!(
        "files: {0}/ (rpl.csv, failures.csv, opr-inputs.csv, evidence/, summary.json); the state store \
         {0}/state.db holds each partition's checkpoint: \
         SRV_OPR__STATE__URL=sqlite://{0}/state.db srv-opr rollup --month YYYY-MM reads a month \
         back from it",
        a.out.display()
    );
    if let (Some(addr), false) = (outcome.metrics, a.keep_serving) {
        println!(
            "(the metrics endpoint http://{addr}/metrics closed with the demo; --keep-serving keeps it up)"
        );
    }
    Ok(demo_report(cfg, &a.out, month)?)
}

/// The demo month in its regulatory year's report, read back from the demo's state store. The
/// components that do not come from events are the seed's RY23/24 figures, so only a month of
/// RY23/24 gets one.
fn demo_report(cfg: &Config, out: &std::path::Path, month: Month) -> anyhow::Result<()> {
    const EXTERNAL: &str = include_str!("../config/opr/RY23-24-external.csv");
    let year = srv_opr::score::scheme::RegYear::of_month(&month.to_string());
    if year.map(|y| y.start) != Some(2023) {
        println!("report: none (the demo carries the other OPR components for RY23/24 only)");
        return Ok(());
    }
    let external = out.join("RY23-24-external.csv");
    std::fs::write(&external, EXTERNAL)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", external.display()))?;
    let mut cfg = cfg.clone();
    cfg.settings.state.url = format!("sqlite://{}", out.join("state.db").display());
    let dir = out.join("report");
    let req = app::ReportRequest {
        year: "RY23/24".into(),
        inputs: vec![external],
        margin: None,
        replay: Vec::new(),
        out: dir.clone(),
    };
    let r = app::report(&cfg, &req).map_err(|e| match e {
        app::ScoreError::Usage(m) | app::ScoreError::Failed(m) => anyhow::anyhow!(m),
    })?;
    let total = r
        .score
        .measures
        .iter()
        .map(|m| m.kept)
        .sum::<rust_decimal::Decimal>();
    println!(
        "report: {}/index.html and opr-RY23-24.xlsx: {month} from the store ({} components \
         scored from that month alone), the other OPR components from the seed's RY23/24 \
         figures; £{}m of £{}m retained (built in {:.2} s)",
        dir.display(),
        r.score.warnings.len(),
        srv_opr::score::render::fixed(total, 3),
        srv_opr::score::render::fixed(r.score.margin_at_risk, 3),
        r.gather_seconds + r.render_seconds
    );
    Ok(())
}
