//! `srv-opr demo`: the whole live path with no set-up. An embedded Kafka broker (librdkafka's
//! mock cluster), the simulator producing a month into it with one region degraded, `run`
//! consuming it with the status page and `/metrics` up; then the month's RPLs against TPL and
//! MPL, the alerts firing, and the month's regulatory-year report from the demo's own store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rust_decimal::Decimal;

use crate::config::Config;
use crate::engine::calendar::Month;
use crate::engine::domain::Region;
use crate::engine::time::Dur;
use crate::error::Error;
use crate::kafka::KafkaError;
use crate::kafka::consumer::RunOptions;
use crate::kafka::produce::{LineProducer, ProducerSettings};
use crate::ops::endpoint;
use crate::ops::live::Live;
use crate::report::month_table::{month_table, top_users};
use crate::score::render::fixed;
use crate::score::scheme::RegYear;
use crate::simulate::{Quality, SimConfig, SimStats, Simulator};

use super::args::positive;
use super::replay::ReplayOutcome;
use super::report::{ReportRequest, report};
use super::run::run;
use super::signals::watch_signals;
use super::simulate::month_bounds;

/// `demo`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Month to simulate.
    #[arg(long, default_value = "2024-03")]
    month: String,
    /// Mean requests per second (0.4 ≈ 1 million requests in a month).
    #[arg(long, default_value_t = 0.4)]
    rate: f64,
    /// Where to write the month's files.
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
    /// Keep serving the status page and /metrics after the month is done, until Ctrl-C.
    #[arg(long)]
    keep_serving: bool,
}

/// Runs the demo and prints what a person wants to see of it.
pub(crate) fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let (month, start, end) = month_bounds(cfg, &a.month)?;
    positive("rate", a.rate)?;
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
        // DUIS's device alerts share the topic: the demo's configuration leaves them alone.
        alerts: 0.5,
        // Some requests are scheduled ahead (measured from their execution, in the success
        // measures: the TRT measures take on-demand requests), from forty service users.
        future_dated: 0.02,
        // Each runs within the month, so the live view ends on the month the table shows.
        future_before_end: true,
        users: 40,
        ..SimConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone(), cfg.settings.kafka.shutdown_timeout);
    eprintln!(
        "srv-opr demo: an embedded Kafka broker (librdkafka's mock cluster), {month} simulated at {} \
         requests/s into a 6-partition topic (central degraded), consumed by `run`…",
        a.rate
    );
    let started = Instant::now();
    let outcome = demo_live(cfg, sim, &a.out, a.keep_serving, &stop, |addr| {
        if let Some(addr) = addr {
            eprintln!(
                "status page while it runs: {addr}/ (the same as data: {addr}/status.json; \
                 metrics: {addr}/metrics)"
            );
        }
    })?;
    let secs = started.elapsed().as_secs_f64();
    crate::outln!("{}", month_table(&outcome.run.aggregates, month))?;
    crate::outln!(
        "service users with the most misses (users.csv has every user):\n{}",
        top_users(&outcome.run.aggregates, month, 3)
    )?;
    crate::outln!(
        "{} of the requests were future-dated: measured from their execute_at, in the month they \
         ran",
        outcome.sim.future_dated
    )?;
    crate::outln!(
        "{} requests still await their response or deadline: pending, in no figure yet (the \
         table, the files, the store, the status page and the report all leave them out; a \
         replay of the same events to its end would decide them)",
        outcome.pending
    )?;
    if outcome.alerts.is_empty() {
        crate::outln!("alerts firing at the end: none")?;
    } else {
        crate::outln!("alerts firing at the end (also sent to alerts.alertmanager_url when set):")?;
        for a in &outcome.alerts {
            crate::outln!("  {a}")?;
        }
    }
    crate::outln!(
        "{} events ({} requests simulated) consumed from 6 partitions, {} dead letters (to the \
         dead-letter topic), {} device alerts left alone (input.ignore_types); {:.1} s in all",
        outcome.run.stats.events,
        outcome.sim.requests,
        outcome.run.stats.dead_letters_total(),
        outcome.run.stats.ignored_by_type.values().sum::<u64>(),
        secs,
    )?;
    crate::outln!(
        "files: {0}/ (rpl.csv, failures.csv, users.csv, opr-inputs.csv, evidence/, summary.json); \
         the state store \
         {0}/state.db holds each partition's checkpoint: \
         SRV_OPR__STATE__URL=sqlite://{0}/state.db srv-opr rollup --month YYYY-MM reads a month \
         back from it",
        a.out.display()
    )?;
    if let (Some(addr), None) = (&outcome.metrics, &outcome.serving) {
        crate::outln!(
            "(the status page {addr}/ and {addr}/metrics closed with the demo; --keep-serving \
             keeps them up)"
        )?;
    }
    demo_report(cfg, &a.out, month)?;
    if let (Some(addr), Some(endpoint)) = (&outcome.metrics, outcome.serving) {
        crate::outln!(
            "serving the status page {addr}/ (and {addr}/status.json, {addr}/metrics) until \
             Ctrl-C; `srv-opr status --url {addr}` shows it in a terminal"
        )?;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(endpoint);
    }
    Ok(())
}

/// The demo month in its regulatory year's report, read back from the demo's state store. The
/// components that do not come from events are the seed's RY23/24 figures, so only a month of
/// RY23/24 gets one.
fn demo_report(cfg: &Config, out: &Path, month: Month) -> Result<(), Error> {
    const EXTERNAL: &str = include_str!("../../config/opr/RY23-24-external.csv");
    let year = RegYear::of_month(&month.to_string());
    if year.map(|y| y.start) != Some(2023) {
        crate::outln!("report: none (the demo carries the other OPR components for RY23/24 only)")?;
        return Ok(());
    }
    let external = out.join("RY23-24-external.csv");
    std::fs::write(&external, EXTERNAL).map_err(|e| {
        Error::Output(std::io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", external.display()),
        ))
    })?;
    let mut cfg = cfg.clone();
    cfg.settings.state.url = format!("sqlite://{}", out.join("state.db").display());
    let dir = out.join("report");
    let req = ReportRequest {
        year: "RY23/24".into(),
        inputs: vec![external],
        margin: None,
        replay: Vec::new(),
        out: dir.clone(),
        allow_incomplete: false,
    };
    let r = report(&cfg, &req)?;
    let total = r.score.measures.iter().map(|m| m.kept).sum::<Decimal>();
    crate::outln!(
        "report: {}/index.html and opr-RY23-24.xlsx: {month} from the store ({} components \
         scored from that month alone), the other OPR components from the seed's RY23/24 \
         figures; £{}m of £{}m retained (built in {:.2} s)",
        dir.display(),
        r.score.warnings.len(),
        fixed(total, 3),
        fixed(r.score.margin_at_risk, 3),
        r.gather_seconds + r.render_seconds
    )?;
    Ok(())
}

/// What the live demo produced.
pub(crate) struct DemoOutcome {
    /// The consumer's outputs, as `run` writes them.
    pub run: ReplayOutcome,
    /// What the simulator produced.
    pub sim: SimStats,
    /// Where the status page and `/metrics` were served.
    pub metrics: Option<String>,
    /// The alerts firing at the end (in-process evaluator), as a person reads them.
    pub alerts: Vec<String>,
    /// Requests still awaiting their response or deadline at the end (in no figure yet).
    pub pending: u64,
    /// With `keep_serving`: the endpoint, still serving (it stops when dropped).
    pub serving: Option<endpoint::Endpoint>,
}

/// The topic the demo's simulator produces into, and its partitions.
const TOPIC: &str = "srv-events";
const PARTITIONS: i32 = 6;

/// `demo`: the whole live path with no set-up: an embedded broker (librdkafka's mock cluster)
/// with a 6-partition topic, the simulator producing into it on one thread, `run` consuming it
/// on this one until everything produced is processed, and the status page and `/metrics` up
/// meanwhile. With `keep_serving`, the endpoint is handed back still serving.
pub(crate) fn demo_live(
    cfg: &Config,
    sim: SimConfig,
    out: &Path,
    keep_serving: bool,
    stop: &AtomicBool,
    on_ready: impl FnOnce(Option<&str>),
) -> Result<DemoOutcome, Error> {
    let mock =
        MockCluster::new(1).map_err(KafkaError::client("cannot start the embedded broker"))?;
    let cfg = embedded(cfg, &mock.bootstrap_servers(), out)?;
    for (topic, partitions) in [(TOPIC, PARTITIONS), ("srv-events-dead-letters", 1)] {
        mock.create_topic(topic, partitions, 1)
            .map_err(KafkaError::client(format!(
                "cannot create the demo's topic {topic}"
            )))?;
    }
    let pipeline = cfg.pipeline()?;
    // No Alertmanager webhook: the demo's embedded broker is gone when it ends.
    let endpoint = endpoint::start(&cfg, &pipeline, true, None)?;
    let addr = endpoint.server.as_ref().map(|s| s.url());
    on_ready(addr.as_deref());
    let produced = Arc::new(AtomicBool::new(false));
    let simulator = produce(&cfg, sim, endpoint.live.clone(), produced.clone())?;
    let opts = RunOptions {
        until_caught_up: true,
        input_complete: Some(produced),
        // One number per fact: the table and the files are what the store, the status page and
        // the report say (a request still awaiting its response or deadline stays pending).
        keep_pending: true,
        accept_config_change: false,
        // The embedded broker made the topic with librdkafka's default limit and cannot be
        // asked for it (no DescribeConfigs): asking only waited 10 s and warned.
        dead_letter_limit: Some(1_000_000),
    };
    let outcome = run(&cfg, &pipeline, out, &opts, stop, &endpoint);
    let (sim_stats, delivered) = simulator
        .join()
        .map_err(|_| Error::Internal("the simulator panicked".into()))??;
    let outcome = outcome?;
    // Every message is an event read or a line of an ignored type (the device alerts).
    let consumed = outcome.stats.events + outcome.stats.ignored_by_type.values().sum::<u64>();
    if consumed != delivered {
        return Err(KafkaError::Lost {
            produced: delivered,
            consumed,
        }
        .into());
    }
    let alerts = final_alerts(&endpoint, cfg.settings.alerts.interval.to_std());
    let mut calendar = pipeline.calendar.clone();
    let pending = endpoint.live.snapshot(|ts| calendar.month_of(ts)).pending;
    let serving = (keep_serving && addr.is_some()).then_some(endpoint);
    drop(mock);
    Ok(DemoOutcome {
        run: outcome,
        sim: sim_stats,
        metrics: addr,
        alerts,
        pending,
        serving,
    })
}

/// The alerts firing on the run's final figures. The evaluator last judged them up to an
/// interval before the run ended, so its summaries could count fewer requests than the table
/// and the files: the live view is marked finished (the partitions' last views are in it) and
/// the board is read once an evaluation that started after that has finished.
fn final_alerts(endpoint: &endpoint::Endpoint, interval: Duration) -> Vec<String> {
    endpoint.live.set_finished();
    let board = &endpoint.alerts.board;
    let read = || {
        board
            .lock()
            .map(|b| (b.evaluations, b.summaries.clone()))
            .unwrap_or_default()
    };
    let (first, _) = read();
    let deadline = Instant::now() + interval * 3 + Duration::from_secs(1);
    loop {
        let (n, summaries) = read();
        if n >= first + 2 || Instant::now() >= deadline {
            return summaries;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `cfg` pointed at the embedded broker at `brokers`, with a fresh state store beside the
/// outputs in `out` and alerts evaluated every second.
fn embedded(cfg: &Config, brokers: &str, out: &Path) -> Result<Config, Error> {
    let mut cfg = cfg.clone();
    let k = &mut cfg.settings.kafka;
    k.brokers = brokers.to_string();
    k.topics = vec![TOPIC.into()];
    k.group_id = "srv-opr-demo".into();
    k.dead_letter_topic = "srv-events-dead-letters".into();
    // The demo's own broker speaks plaintext, whatever the configuration says for production.
    k.properties = vec![
        // The mock broker holds an empty fetch for the full wait; the producer, paced on the
        // consumer, would wait with it.
        ("fetch.wait.max.ms".into(), "10".into()),
    ];
    k.secrets.clear();
    // The simulated device alerts on the same topic: counted, not dead letters.
    if cfg.settings.input.ignore_types.is_empty() {
        cfg.settings.input.ignore_types = vec!["alert".into()];
    }
    // A fresh store beside the outputs: the embedded broker starts empty every time, so an old
    // checkpoint's offsets would point past its end. `rollup` can read it afterwards.
    std::fs::create_dir_all(out)?;
    let db = out.join("state.db");
    for suffix in ["", "-wal", "-shm"] {
        let f = PathBuf::from(format!("{}{suffix}", db.display()));
        if f.exists() {
            std::fs::remove_file(&f).map_err(|e| {
                Error::Output(std::io::Error::new(
                    e.kind(),
                    format!("cannot remove the old {}: {e}", f.display()),
                ))
            })?;
        }
    }
    cfg.settings.state.url = format!("sqlite://{}", db.display());
    // A month goes by in seconds: evaluate alerts every second, firing at once.
    cfg.settings.alerts.interval = Dur::from_secs(1);
    cfg.settings.alerts.hold = Dur::ZERO;
    Ok(cfg)
}

/// The simulator's thread: what it simulated, and how many messages were acknowledged.
type SimulatorThread = JoinHandle<Result<(SimStats, u64), Error>>;

/// The simulator on a thread of its own, producing `sim` into the embedded broker, paced on
/// what the consumer has processed; sets `done` when it has delivered everything (or failed).
/// Its result: what it simulated and how many messages were acknowledged.
fn produce(
    cfg: &Config,
    sim: SimConfig,
    live: Arc<Live>,
    done: Arc<AtomicBool>,
) -> Result<SimulatorThread, Error> {
    let settings = ProducerSettings {
        brokers: cfg.settings.kafka.brokers.clone(),
        topic: TOPIC.into(),
        rate: None,
        properties: vec![],
    };
    let thread = std::thread::Builder::new()
        .name("srv-opr-simulator".into())
        .spawn(move || {
            let r = (|| -> Result<(SimStats, u64), Error> {
                // The mock broker keeps only about 5 MB per partition: stay at most this many
                // messages ahead of the consumer, or the log would drop what is not yet read.
                const AHEAD: u64 = 100_000;
                let gate = Box::new(move |sent: u64| {
                    while sent > live.events_processed() + AHEAD {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                });
                let mut producer = LineProducer::new(&settings)?.with_gate(gate);
                let stats = Simulator::new(sim).run(&mut producer)?;
                let produced = producer.finish(Duration::from_secs(120))?;
                Ok((stats, produced.delivered))
            })();
            done.store(true, Ordering::Relaxed);
            r
        })
        .map_err(KafkaError::Thread)?;
    Ok(thread)
}
