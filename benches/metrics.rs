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

mod common;

use srv_opr::config::Config;
use srv_opr::ops::live::{Live, PartView};
use srv_opr::ops::metrics::Metrics;

fn scrape(c: &mut Criterion) {
    let cfg = Config::builtin().expect("config");
    // 13 months of thin traffic: every month, measure and region has counts and a histogram.
    let pipeline = common::replayed(
        &cfg,
        "2024-01-01T00:00:00Z",
        "2025-02-01T00:00:00Z",
        0.02,
        5,
    );
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
        srv_opr::engine::calendar::Calendar::new(&cfg.settings.time.zone).expect("zone"),
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
