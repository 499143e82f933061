//! Hot-path benchmarks, reported as events per second (criterion `Throughput::Elements`):
//!
//! - `decode/fast_path` vs `decode/serde_only`: decoding and validating one event, with the
//!   word-at-a-time scanner and with serde_json alone (the reference it replaced);
//! - `replay/read_and_parse` vs `replay/end_to_end`: the same in-memory JSON Lines read and
//!   decoded only (the bound), and replayed through correlation and aggregation.
//!
//! `cargo bench --bench pipeline`; the events are simulated (seeded) at start-up.

use std::hint::black_box;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use srv_opr::config::Config;
use srv_opr::engine::event::{decode, decode_with_serde_only};
use srv_opr::engine::pipeline::{DeadLetter, DeadLetterSink, Pipeline};
use srv_opr::simulate::{SimConfig, Simulator};
use srv_opr::source::files::{Input, drive, open_all, source_names};
use srv_opr::source::lines::LineReader;

/// Counts dead letters and drops them: the bench measures the pipeline, not a file system.
struct Discard(u64);

impl DeadLetterSink for Discard {
    fn write(&mut self, _: &DeadLetter<'_>) -> io::Result<()> {
        self.0 += 1;
        Ok(())
    }
}

fn events() -> Vec<u8> {
    let mut bytes = Vec::new();
    Simulator::new(SimConfig {
        seed: 42,
        rate: 1.5,
        max_requests: Some(150_000),
        ..SimConfig::default()
    })
    .run(&mut bytes)
    .expect("simulating into memory cannot fail");
    bytes
}

fn benches(c: &mut Criterion) {
    let bytes = Arc::new(events());
    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let n = lines.len() as u64;
    let cfg = Config::builtin().expect("built-in configuration is valid");
    let pcfg = cfg.pipeline().expect("pipeline configuration");

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(n));
    g.sample_size(20);
    g.bench_function("fast_path", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| decode(black_box(l), 65_536).is_ok())
                .count()
        })
    });
    g.bench_function("serde_only", |b| {
        b.iter(|| {
            lines
                .iter()
                .filter(|l| decode_with_serde_only(black_box(l), 65_536).is_ok())
                .count()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("read_and_parse", |b| {
        b.iter(|| {
            let mut r = LineReader::new(io::Cursor::new(&bytes[..]), 65_536);
            let mut ok = 0u64;
            while let Some(line) = r.next_line().expect("reading memory cannot fail") {
                ok += decode(r.bytes(&line), 65_536).is_ok() as u64;
            }
            ok
        })
    });
    g.bench_function("end_to_end", |b| {
        b.iter(|| {
            let inputs = vec![Input::Memory("bench".into(), bytes.clone())];
            let mut sources =
                open_all(&inputs, 65_536, Arc::new(AtomicU64::new(0))).expect("memory input opens");
            let mut p = Pipeline::new(&pcfg, source_names(&inputs), Discard(0));
            drive(
                &mut sources,
                &mut p,
                srv_opr::source::files::Timing::of(&cfg),
                &mut |_| {},
            )
            .expect("replay of memory cannot fail");
            p.stats().events
        })
    });
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
