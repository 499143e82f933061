//! The cost of `report` beyond gathering the figures: scoring a regulatory year (streaming rows
//! from a replayed year of traffic plus the external inputs), drawing its 17 charts in SVG and
//! PNG, building the workbook and the HTML page, and writing them all to a directory. The issue
//! asks for under a second.
//!
//! `cargo bench --bench report`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use srv_opr::app;
use srv_opr::config::Config;
use srv_opr::correlate::Pos;
use srv_opr::pipeline::{Pipeline, SourceName, VecDeadLetters};
use srv_opr::simulate::{SimConfig, Simulator};
use srv_opr::sink::outdir::OutDir;
use srv_opr::time::parse_rfc3339;

fn render(c: &mut Criterion) {
    let cfg = Config::builtin().expect("config");
    let p = |s: &str| parse_rfc3339(s.as_bytes()).expect("time");
    // A year at 0.01 requests/s: every month, measure and region has counts and misses.
    let mut bytes = Vec::new();
    Simulator::new(SimConfig {
        seed: 8,
        start: p("2023-04-01T00:00:00Z"),
        end: p("2024-04-01T00:00:00Z"),
        rate: 0.01,
        ..SimConfig::default()
    })
    .run(&mut bytes)
    .expect("simulate");
    let mut pipeline = Pipeline::new(
        &cfg,
        vec![SourceName {
            name: "year.jsonl".into(),
            separator: ':',
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
            .process(line, Pos::new(0, i as u64 + 1))
            .expect("process");
    }
    pipeline.finish().expect("finish");
    let (aggregates, _, _) = pipeline.into_parts();
    let scheme = app::load_scheme(&cfg, "RY23/24")
        .map_err(|_| "scheme")
        .expect("scheme");
    let external = app::read_inputs(&[format!(
        "{}/tests/fixtures/external-ry2324.csv",
        env!("CARGO_MANIFEST_DIR")
    )
    .into()])
    .map_err(|_| "inputs")
    .expect("inputs");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = OutDir::create(dir.path()).expect("outdir");
    let margin = scheme.margin_at_risk.expect("RY23/24 knows its margin");
    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    g.bench_function("score_charts_workbook_page", |b| {
        b.iter(|| {
            black_box(
                app::render_report(
                    &cfg,
                    "RY23/24",
                    &scheme,
                    margin,
                    &aggregates,
                    external.clone(),
                    &out,
                )
                .map_err(|_| "render")
                .expect("render"),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
