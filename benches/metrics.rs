//! The cost of a `/metrics` scrape: `Metrics::render` over a live view of 6 partitions, each
//! holding 13 months of counts and response-time histograms for the 12 built-in measures × 4
//! regions (the issue's "10 measures × 4 regions" and more), reported as time per scrape.
//!
//! `cargo bench --bench metrics`. (Whether scraping slows the pipeline is measured with the
//! Kafka bench: `BENCH_SCRAPE=1 cargo bench --bench kafka_consume`.)

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

use srv_opr::config::Config;
use srv_opr::correlate::Pos;
use srv_opr::live::{Live, PartView};
use srv_opr::metrics::Metrics;
use srv_opr::pipeline::{Pipeline, SourceName, VecDeadLetters};
use srv_opr::simulate::{SimConfig, Simulator};
use srv_opr::time::parse_rfc3339;

fn scrape(c: &mut Criterion) {
    let cfg = Config::builtin().expect("config");
    // 13 months of thin traffic: every month, measure and region has counts and a histogram.
    let p = |s: &str| parse_rfc3339(s.as_bytes()).expect("time");
    let mut bytes = Vec::new();
    Simulator::new(SimConfig {
        seed: 5,
        start: p("2024-01-01T00:00:00Z"),
        end: p("2025-02-01T00:00:00Z"),
        rate: 0.02,
        ..SimConfig::default()
    })
    .run(&mut bytes)
    .expect("simulate");
    let mut pipeline = Pipeline::new(
        &cfg,
        vec![SourceName {
            name: "t/0".into(),
            separator: '/',
        }],
        VecDeadLetters::default(),
    )
    .expect("pipeline");
    for (i, line) in bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        pipeline
            .process(line, Pos::new(0, i as u64))
            .expect("process");
    }
    pipeline.finish().expect("finish");
    let live = Arc::new(Live::new(Duration::from_secs(30)));
    for partition in 0..6 {
        let c = pipeline.correlator();
        let view = PartView::capture(
            pipeline.stats(),
            c.pending(),
            c.waiting(),
            pipeline.aggregates(),
            Instant::now(),
            1000,
            Some(Instant::now()),
        );
        live.publish("srv", partition, view);
        live.set_end_offset("srv", partition, 2000);
    }
    let metrics = Metrics::new(
        Arc::new(cfg.definitions.clone()),
        srv_opr::calendar::Calendar::new(&cfg.settings.time.zone).expect("zone"),
        live,
        true,
        Some(Default::default()),
    )
    .expect("metrics");
    let text = metrics.render().expect("render");
    println!(
        "one scrape: {} bytes, {} series",
        text.len(),
        text.lines().filter(|l| !l.starts_with('#')).count()
    );
    c.bench_function("metrics/render", |b| {
        b.iter(|| black_box(metrics.render().expect("render")))
    });
}

criterion_group!(benches, scrape);
criterion_main!(benches);
