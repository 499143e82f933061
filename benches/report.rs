//! The cost of `report` beyond gathering the figures: scoring a regulatory year (streaming rows
//! from a replayed year of traffic plus the external inputs), drawing its 17 charts in SVG and
//! PNG, building the workbook and the HTML page, and writing them all to a directory. The issue
//! asks for under a second.
//!
//! `cargo bench --bench report`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

mod common;

use srv_opr::cli;
use srv_opr::config::Config;
use srv_opr::config::schemes;
use srv_opr::sink::outdir::OutDir;

fn render(c: &mut Criterion) {
    let cfg = Config::builtin().expect("config");
    // A year at 0.01 requests/s: every month, measure and region has counts and misses.
    let pipeline = common::replayed(
        &cfg,
        "2023-04-01T00:00:00Z",
        "2024-04-01T00:00:00Z",
        0.01,
        8,
    );
    let (aggregates, _, _) = pipeline.into_parts();
    let scheme = schemes::find(&cfg, "RY23/24")
        .map_err(|_| "scheme")
        .expect("scheme");
    let external = cli::score::read_inputs(&[format!(
        "{}/config/opr/RY23-24-external.csv",
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
                cli::report::render_report(
                    &cfg,
                    "RY23/24",
                    &scheme,
                    margin,
                    &aggregates,
                    cli::report::Besides {
                        external: external.clone(),
                        signoffs: &[],
                        incomplete: &[],
                    },
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
