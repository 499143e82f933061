//! `srv-opr run` against a bare rdkafka consumer that only reads the messages, on the same topic
//! of a real broker, side by side in one run (issue 4's reference).
//!
//! ```sh
//! KAFKA_BOOTSTRAP_SERVERS=$(scripts/kafka start) BENCH_EVENTS=2000000 \
//!   cargo bench --bench kafka_consume
//! ```
//!
//! It simulates `BENCH_EVENTS` events (about; default 2 M) into a fresh 6-partition topic, then
//! alternates the two consumers `BENCH_ROUNDS` times (default 3, each in a new consumer group
//! reading from the beginning) and prints every rate, the medians and their ratio. Then
//! (`BENCH_LAG=0` skips it) it measures the lag `run` keeps while the simulator produces the same
//! number of events as fast as it can into a fresh topic. `BENCH_SCRAPE=1` adds rounds of `run`
//! with `/metrics` rendered every 100 ms (does scraping slow the pipeline?).
//!
//! `BENCH_TUNINGS` tries sets of librdkafka properties on both consumers, in the same rounds:
//! sets separated by `;`, each a comma-separated list of `name=value` (an empty set is the
//! shipped defaults), e.g. `BENCH_TUNINGS=';fetch.queue.backoff.ms=10'`. Each set's medians and
//! ratio are printed; the bare consumer's best set is the reference `run` is held to.
//! `BENCH_WORKERS` sets `run`'s `kafka.workers`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use srv_opr::config::Config;
use srv_opr::kafka::consumer::{RunOptions, run};
use srv_opr::kafka::produce::{LineProducer, ProducerSettings};
use srv_opr::ops::live::Live;
use srv_opr::simulate::{SimConfig, Simulator};

const PARTITIONS: i32 = 6;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A set of librdkafka properties of `BENCH_TUNINGS`.
type Tuning = Vec<(String, String)>;

/// `BENCH_TUNINGS` parsed: at least the empty set (the defaults).
fn tunings() -> Vec<Tuning> {
    let spec = std::env::var("BENCH_TUNINGS").unwrap_or_default();
    spec.split(';')
        .map(|set| {
            set.split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                    None => panic!("BENCH_TUNINGS: {p:?} is not name=value"),
                })
                .collect()
        })
        .collect()
}

fn tuning_name(t: &Tuning) -> String {
    if t.is_empty() {
        return "defaults".into();
    }
    t.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn bare(brokers: &str, topic: &str, expected: u64, tuning: &Tuning) -> f64 {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", brokers)
        .set("group.id", format!("bare-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        // The same prefetch depth and back-off as `run` uses, so the comparison is of the work,
        // not the queue.
        .set("queued.min.messages", "1000000")
        .set("fetch.queue.backoff.ms", "10");
    for (k, v) in tuning {
        cc.set(k, v);
    }
    let consumer: BaseConsumer = cc.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut started = Instant::now();
    let (mut n, mut bytes) = (0u64, 0u64);
    while n < expected {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(500)) {
            if n == 0 {
                // Both consumers are timed from their first message: joining is not the work.
                started = Instant::now();
            }
            n += 1;
            bytes += m.payload().map_or(0, |p| p.len() as u64);
        }
    }
    std::hint::black_box(bytes);
    n as f64 / started.elapsed().as_secs_f64()
}

/// A fresh store of `mode` for one round.
fn store_url(mode: &str, dir: &std::path::Path, round: u64) -> String {
    match mode {
        "sqlite" => format!("sqlite://{}/round-{round}.db", dir.display()),
        "postgres" => {
            let server = std::env::var("BENCH_POSTGRES")
                .expect("BENCH_POSTGRES (a PostgreSQL URL) for BENCH_STORES=postgres");
            let db = format!("bench_{}_{round}", std::process::id());
            srv_opr::store::pgtls::client(&server)
                .expect("postgres")
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .expect("create database");
            srv_opr::store::pgtls::with_database(&server, &db)
        }
        other => panic!("BENCH_STORES: unknown store {other:?} (off, sqlite, postgres)"),
    }
}

/// One `run` until caught up: its rate from its first event processed to its last (the live
/// service never "ends", so its rate is the consuming), and the tail after it (deciding what is
/// still pending, handing over) reported apart.
fn timed_run(cfg: &Config, n: u64, scrape: bool) -> (f64, f64) {
    let live = Arc::new(Live::new(Duration::from_secs(30)));
    let watch = live.clone();
    // With `scrape`, a scraper renders `/metrics` every 100 ms while `run` works (Prometheus
    // would every 15 s): the cost a scrape puts on the pipeline, and each scrape's time.
    let done = Arc::new(AtomicBool::new(false));
    let scraper = scrape.then(|| {
        let metrics = srv_opr::ops::metrics::Metrics::new(
            Arc::new(cfg.definitions.clone()),
            srv_opr::engine::calendar::Calendar::new(&cfg.settings.time.zone).expect("zone"),
            live.clone(),
            !cfg.settings.state.url.is_empty(),
            Some(Default::default()),
        )
        .expect("metrics");
        let done = done.clone();
        std::thread::spawn(move || {
            let mut times = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                std::hint::black_box(metrics.render().expect("render"));
                times.push(t.elapsed().as_secs_f64() * 1e3);
                std::thread::sleep(Duration::from_millis(100));
            }
            times
        })
    });
    let first = std::thread::spawn(move || {
        while watch.events_processed() == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        let first = Instant::now();
        while watch.events_processed() < n {
            std::thread::sleep(Duration::from_micros(200));
        }
        (first, Instant::now())
    });
    let outcome = run(
        cfg,
        &cfg.pipeline().expect("pipeline"),
        &RunOptions {
            until_caught_up: true,
            ..RunOptions::default()
        },
        &AtomicBool::new(false),
        live,
    )
    .expect("run");
    let ended = Instant::now();
    done.store(true, Ordering::Relaxed);
    if let Some(s) = scraper {
        let mut times = s.join().expect("scraper");
        if !times.is_empty() {
            let m = median(&mut times);
            println!(
                "  {} scrapes during the run: median {m:.2} ms, longest {:.2} ms",
                times.len(),
                times.last().copied().unwrap_or(0.0)
            );
        }
    }
    let (started, consumed) = first.join().expect("watcher");
    assert_eq!(outcome.stats.events, n, "run read every event");
    (
        n as f64 / consumed.duration_since(started).as_secs_f64(),
        ended.duration_since(consumed).as_secs_f64(),
    )
}

/// A fresh topic of `PARTITIONS` partitions.
fn create_topic(
    admin: &AdminClient<DefaultClientContext>,
    rt: &tokio::runtime::Runtime,
    topic: &str,
) {
    let created = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .expect("create topic");
    for r in created {
        r.expect("create topic");
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing useful: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let brokers = std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .expect("set KAFKA_BOOTSTRAP_SERVERS (scripts/kafka start prints it)");
    let events = env_or("BENCH_EVENTS", 2_000_000);
    let rounds = env_or("BENCH_ROUNDS", 3);
    let topic = format!("bench-{}", std::process::id());

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("admin");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    create_topic(&admin, &rt, &topic);

    // About 2.6 events per request with the default mix.
    let requests = (events as f64 / 2.6) as u64;
    let mut producer = LineProducer::new(&ProducerSettings {
        brokers: brokers.clone(),
        topic: topic.clone(),
        rate: None,
        properties: vec![],
    })
    .expect("producer");
    let sim = Simulator::new(SimConfig {
        seed: 8,
        rate: 1.5,
        max_requests: Some(requests),
        ..SimConfig::default()
    })
    .run(&mut producer)
    .expect("simulate");
    let produced = producer
        .finish(Duration::from_secs(300))
        .expect("delivered");
    let n = produced.delivered;
    println!(
        "produced {n} events in {:.1} s ({:.0} msg/s, lz4, idempotent)",
        produced.seconds,
        n as f64 / produced.seconds
    );
    assert_eq!(sim.lines, n);

    let mut cfg = Config::builtin().expect("built-in configuration");
    cfg.settings.kafka.brokers = brokers.clone();
    cfg.settings.kafka.topics = vec![topic.clone()];
    cfg.settings.kafka.dead_letter_topic = format!("{topic}-dead");
    cfg.settings.state.url = String::new();
    // `BENCH_WORKERS` sets `kafka.workers` (default 0: cores − 1).
    cfg.settings.kafka.workers = env_or("BENCH_WORKERS", 0) as usize;
    // `BENCH_STORES=off,sqlite,postgres` adds rounds of `run` checkpointing into each store
    // (postgres needs BENCH_POSTGRES, a server URL; each round gets a fresh database or file).
    let stores: Vec<String> = std::env::var("BENCH_STORES")
        .unwrap_or_else(|_| "off".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let scratch = tempfile::tempdir().expect("temp dir");
    let (mut bare_rates, mut run_rates) = (Vec::new(), Vec::new());
    // `BENCH_SCRAPE=1` adds rounds of `run` scraped every 100 ms.
    let scrape = env_or("BENCH_SCRAPE", 0) == 1;
    let mut scraped_rates = Vec::new();
    let mut store_rates: Vec<Vec<f64>> = vec![Vec::new(); stores.len()];
    let tunings = tunings();
    // Rates of the tunings after the first, (bare, run) per round.
    let mut tuned: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); tunings.len()];
    for round in 0..rounds {
        for (i, t) in tunings.iter().enumerate().skip(1) {
            let b = bare(&brokers, &topic, n, t);
            cfg.settings.kafka.properties = t.clone();
            cfg.settings.kafka.group_id = format!("run-{}-{round}-tuning{i}", std::process::id());
            let (r, _) = timed_run(&cfg, n, false);
            println!(
                "round {round}, {}: bare consumer {b:.0} msg/s, srv-opr run {r:.0} events/s \
                 ({:.0} %)",
                tuning_name(t),
                100.0 * r / b
            );
            tuned[i].0.push(b);
            tuned[i].1.push(r);
        }
        cfg.settings.kafka.properties = tunings[0].clone();
        let b = bare(&brokers, &topic, n, &tunings[0]);
        for (i, mode) in stores.iter().enumerate().skip(1) {
            cfg.settings.state.url = store_url(mode, scratch.path(), round);
            cfg.settings.kafka.group_id = format!("run-{}-{round}-{mode}", std::process::id());
            let (r, tail) = timed_run(&cfg, n, false);
            println!(
                "round {round}: srv-opr run checkpointing into {mode}: {r:.0} events/s \
                 (then {tail:.2} s to hand over)"
            );
            store_rates[i].push(r);
        }
        cfg.settings.state.url = String::new();
        cfg.settings.kafka.group_id = format!("run-{}-{round}", std::process::id());
        if scrape {
            cfg.settings.kafka.group_id = format!("run-{}-{round}-scraped", std::process::id());
            let (r, _) = timed_run(&cfg, n, true);
            println!("round {round}: srv-opr run scraped every 100 ms: {r:.0} events/s");
            scraped_rates.push(r);
            cfg.settings.kafka.group_id = format!("run-{}-{round}", std::process::id());
        }
        let (r, tail) = timed_run(&cfg, n, false);
        println!(
            "round {round}: bare consumer {b:.0} msg/s, srv-opr run {r:.0} events/s ({:.0} %); \
             then {tail:.2} s to decide what was pending and hand over",
            100.0 * r / b
        );
        bare_rates.push(b);
        run_rates.push(r);
        store_rates[0].push(r);
    }
    let (b, r) = (median(&mut bare_rates), median(&mut run_rates));
    println!(
        "median: bare consumer {b:.0} msg/s, srv-opr run {r:.0} events/s: {:.0} % of the bare rate",
        100.0 * r / b
    );
    if tunings.len() > 1 {
        tuned[0] = (bare_rates.clone(), run_rates.clone());
        println!("\nmedians by tuning ({rounds} rounds each, interleaved):");
        let mut best = (0.0, String::new());
        for (t, (bs, rs)) in tunings.iter().zip(tuned.iter_mut()) {
            let (tb, tr) = (median(bs), median(rs));
            let name = tuning_name(t);
            println!(
                "  {name}: bare consumer {tb:.0} msg/s, srv-opr run {tr:.0} events/s ({:.0} %)",
                100.0 * tr / tb
            );
            if tb > best.0 {
                best = (tb, name);
            }
        }
        println!(
            "the bare consumer's best: {} at {:.0} msg/s; srv-opr run (its defaults) at {:.0} % \
             of it",
            best.1,
            best.0,
            100.0 * r / best.0
        );
    }

    if scrape {
        let m = median(&mut scraped_rates);
        println!(
            "median: srv-opr run scraped every 100 ms {m:.0} events/s, {:.1} % below unscraped \
             ({r:.0} events/s)",
            100.0 * (1.0 - m / r)
        );
    }
    let off = median(&mut store_rates[0].clone());
    for (i, mode) in stores.iter().enumerate().skip(1) {
        let m = median(&mut store_rates[i]);
        println!(
            "median: srv-opr run checkpointing into {mode} {m:.0} events/s, {:.1} % below no \
             store ({off:.0} events/s)",
            100.0 * (1.0 - m / off)
        );
    }

    if env_or("BENCH_LAG", 1) == 1 {
        lag_at_full_speed(&brokers, &admin, &rt, &mut cfg, requests);
    }
}

/// `run` consuming while the simulator produces as fast as it can into a fresh topic: the lag
/// (messages sent but not yet processed) sampled every 100 ms, and how long `run` needs to catch
/// up once the simulator has finished.
fn lag_at_full_speed(
    brokers: &str,
    admin: &AdminClient<DefaultClientContext>,
    rt: &tokio::runtime::Runtime,
    cfg: &mut Config,
    requests: u64,
) {
    let topic = format!("bench-{}-live", std::process::id());
    create_topic(admin, rt, &topic);
    cfg.settings.kafka.topics = vec![topic.clone()];
    cfg.settings.kafka.dead_letter_topic = format!("{topic}-dead");
    cfg.settings.kafka.group_id = format!("run-{}-live", std::process::id());

    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Live::new(Duration::from_secs(30)));
    let producing = {
        let (sent, done, brokers, topic) = (sent.clone(), done.clone(), brokers.to_string(), topic);
        std::thread::spawn(move || {
            let counter = sent.clone();
            let mut producer = LineProducer::new(&ProducerSettings {
                brokers,
                topic,
                rate: None,
                properties: vec![],
            })
            .expect("producer")
            .with_gate(Box::new(move |n| counter.store(n, Ordering::Relaxed)));
            let started = Instant::now();
            let sim = Simulator::new(SimConfig {
                seed: 9,
                rate: 1.5,
                max_requests: Some(requests),
                ..SimConfig::default()
            })
            .run(&mut producer)
            .expect("simulate");
            let produced = producer
                .finish(Duration::from_secs(300))
                .expect("delivered");
            sent.store(produced.delivered, Ordering::Relaxed);
            done.store(true, Ordering::Relaxed);
            assert_eq!(sim.lines, produced.delivered);
            (
                produced.delivered,
                started.elapsed().as_secs_f64(),
                Instant::now(),
            )
        })
    };
    let sampling = {
        let (sent, done, live) = (sent.clone(), done.clone(), live.clone());
        std::thread::spawn(move || {
            let mut lags = Vec::new();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let processed = live.events_processed();
                lags.push(sent.load(Ordering::Relaxed).saturating_sub(processed));
            }
            lags
        })
    };
    let outcome = run(
        cfg,
        &cfg.pipeline().expect("pipeline"),
        &RunOptions {
            until_caught_up: true,
            input_complete: Some(done),
            ..RunOptions::default()
        },
        &AtomicBool::new(false),
        live,
    )
    .expect("run");
    let caught_up = Instant::now();
    let (n, secs, finished) = producing.join().expect("producer");
    let mut lags = sampling.join().expect("sampler");
    assert_eq!(outcome.stats.events, n, "run read every event");
    lags.sort_unstable();
    let pick = |q: f64| lags.get(((lags.len() as f64 - 1.0) * q) as usize).copied();
    println!(
        "lag at the simulator's full speed ({n} events in {secs:.1} s, {:.0} msg/s): \
         median {:?}, p99 {:?}, max {:?} messages behind; caught up {:.2} s after the last \
         delivery",
        n as f64 / secs,
        pick(0.5).unwrap_or(0),
        pick(0.99).unwrap_or(0),
        lags.last().copied().unwrap_or(0),
        caught_up.saturating_duration_since(finished).as_secs_f64()
    );
}
