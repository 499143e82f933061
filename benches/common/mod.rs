//! Set-up shared by the benches: simulated traffic replayed through one pipeline.

use srv_opr::config::Config;
use srv_opr::engine::correlate::Pos;
use srv_opr::engine::pipeline::{Pipeline, SourceName, VecDeadLetters};
use srv_opr::engine::time::parse_rfc3339;
use srv_opr::simulate::{SimConfig, Simulator};

/// `[from, to)` of seeded traffic at `rate` requests/s, through one pipeline, finished.
pub fn replayed(
    cfg: &Config,
    from: &str,
    to: &str,
    rate: f64,
    seed: u64,
) -> Pipeline<VecDeadLetters> {
    let p = |s: &str| parse_rfc3339(s.as_bytes()).expect("time");
    let mut bytes = Vec::new();
    Simulator::new(SimConfig {
        seed,
        start: p(from),
        end: p(to),
        rate,
        ..SimConfig::default()
    })
    .run(&mut bytes)
    .expect("simulate");
    let mut pipeline = Pipeline::new(
        &cfg.pipeline().expect("pipeline"),
        vec![SourceName {
            name: "t/0".into(),
            separator: '/',
        }],
        VecDeadLetters::default(),
    );
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
    pipeline
}
