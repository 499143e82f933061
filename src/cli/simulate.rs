//! `srv-opr simulate`: seeded synthetic SRV traffic with injected traps, to a file, standard
//! output or a Kafka topic.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::engine::calendar::Month;
use crate::engine::time::{Dur, Ts, parse_rfc3339};
use crate::error::Error;
use crate::kafka::KafkaError;
use crate::kafka::produce::{LineProducer, ProducerSettings};
use crate::simulate::{Quality, SimConfig, SimStats, Simulator};
use crate::sink::outdir::OutDir;

use super::args::{MonthArg, Property, QualityArg, positive};

/// `simulate`'s arguments.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
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
    /// A librdkafka producer property, repeatable: -X linger.ms=50. Applied over the
    /// configuration's [kafka.properties] and [kafka.secrets] (so a secured cluster's settings,
    /// and the password from the environment, serve `run` and `simulate` alike).
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
    /// Device alerts (`"type":"alert"`) per request, as DUIS carries them beside the service
    /// responses (0 to 100; `input.ignore_types = ["alert"]` leaves them alone).
    #[arg(long, default_value_t = 0.0)]
    alerts: f64,
    /// Share of requests future-dated: an `execute_at` a minute to three days after the
    /// request, the answer after it.
    #[arg(long, default_value_t = 0.0)]
    future_dated: f64,
    /// Service users the requests come from, in turn (1 to 65,535).
    #[arg(long, default_value_t = 6)]
    users: u32,
    /// Print what was generated (counts by kind) as JSON on stderr.
    #[arg(long)]
    stats: bool,
}

/// Runs `simulate` and says what it generated when asked.
pub(crate) fn main(cfg: &Config, a: Args) -> Result<(), Error> {
    let sim = sim_config(cfg, &a)?;
    let target = match (&a.out, &a.kafka, &a.topic) {
        (Some(p), _, _) => SimTarget::File(p.clone()),
        (None, Some(brokers), Some(topic)) => {
            if let Some(r) = a.produce_rate {
                positive("produce-rate", r)?;
            }
            let k = &cfg.settings.kafka;
            let mut properties = k.properties.clone();
            for (p, s) in k.resolve_secrets().map_err(KafkaError::from)? {
                properties.push((p, s.expose().to_string()));
            }
            for kv in &a.kafka_property {
                let p: Property = kv.parse()?;
                properties.push((p.key, p.value));
            }
            SimTarget::Kafka(ProducerSettings {
                brokers: brokers.clone(),
                topic: topic.clone(),
                rate: a.produce_rate,
                properties,
            })
        }
        _ => SimTarget::Stdout,
    };
    let stats = simulate(sim, &target)?;
    if a.stats {
        let json = serde_json::to_string(&stats)
            .map_err(|e| Error::Internal(format!("cannot encode the counts: {e}")))?;
        eprintln!("{json}");
    }
    Ok(())
}

/// The month `--month` names, with its bounds in the configured zone.
pub(super) fn month_bounds(cfg: &Config, month: &str) -> Result<(Month, Ts, Ts), Error> {
    let MonthArg(m) = month.parse()?;
    let cal = cfg.pipeline()?.calendar;
    Ok((m, cal.start_of(m), cal.end_of(m)))
}

/// The simulation `a` asks for.
fn sim_config(cfg: &Config, a: &Args) -> Result<SimConfig, Error> {
    let usage = |m: &str| Error::Usage(m.to_string());
    let (start, end) = match (&a.month, &a.from, &a.to) {
        (Some(m), _, _) => {
            let (_, s, e) = month_bounds(cfg, m)?;
            (s, e)
        }
        (None, Some(f), Some(t)) => {
            let p = |s: &str| {
                parse_rfc3339(s.as_bytes())
                    .ok_or_else(|| Error::Usage(format!("{s:?} is not an RFC 3339 timestamp")))
            };
            (p(f)?, p(t)?)
        }
        _ => {
            return Err(usage(
                "say which time to simulate: --month YYYY-MM, or --from and --to",
            ));
        }
    };
    if end <= start {
        return Err(usage("--to must be after --from"));
    }
    positive("rate", a.rate)?;
    for (name, v) in [
        ("acks", a.acks),
        ("duplicates", a.duplicates),
        ("bad", a.bad),
        ("late", a.late),
        ("future-dated", a.future_dated),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::Usage(format!(
                "--{name} must be a share between 0 and 1"
            )));
        }
    }
    if !(0.0..=100.0).contains(&a.alerts) {
        return Err(Error::Usage(
            "--alerts must be a number of alerts per request, 0 to 100".into(),
        ));
    }
    if !(1..=65_535).contains(&a.users) {
        return Err(usage(
            "--users must be a number of service users, 1 to 65535",
        ));
    }
    let disorder = Dur::parse(&a.disorder).map_err(|e| Error::Usage(format!("--disorder: {e}")))?;
    let mut quality = [Quality::default(); 3];
    for q in &a.quality {
        q.parse::<QualityArg>()?.apply(&mut quality)?;
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
        alerts: a.alerts,
        future_dated: a.future_dated,
        future_before_end: false,
        users: a.users,
    })
}

/// Where `simulate` writes.
pub(crate) enum SimTarget {
    /// Standard output.
    Stdout,
    /// A file; gzip when the name ends in `.gz`.
    File(PathBuf),
    /// A Kafka topic, one message per line keyed by `id`.
    Kafka(ProducerSettings),
}

/// Runs the simulator into `target`.
pub(crate) fn simulate(sim: SimConfig, target: &SimTarget) -> Result<SimStats, Error> {
    match target {
        SimTarget::Stdout => {
            let stdout = io::stdout();
            let mut w = io::BufWriter::with_capacity(1 << 16, stdout.lock());
            Ok(Simulator::new(sim).run(&mut w)?)
        }
        SimTarget::Kafka(settings) => {
            let mut producer = LineProducer::new(settings)?;
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
                return Err(KafkaError::Undelivered {
                    simulated: stats.lines,
                    delivered: produced.delivered,
                }
                .into());
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
                .ok_or_else(|| Error::Usage(format!("{} is not a file name", p.display())))?;
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
            outdir.publish()?;
            Ok(stats)
        }
    }
}
