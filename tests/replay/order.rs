//! The same events in another order (within the allowed lateness) or split across several files
//! in any way give the identical `rpl.csv` and `failures.csv` (SPEC §2: outcomes depend only on
//! the events' timestamps).

use std::collections::BTreeMap;
use std::path::PathBuf;

use srv_opr::engine::event::decode;
use srv_opr::engine::time::{NANOS_PER_SEC, parse_rfc3339};
use srv_opr::simulate::{Rng, SimConfig, Simulator};

use crate::support::replay::{Replayed, replay};

/// Simulated traffic across the March/April 2024 edge, with every injected trap.
fn events(seed: u64) -> Vec<Vec<u8>> {
    let p = |s: &str| parse_rfc3339(s.as_bytes()).unwrap();
    let cfg = SimConfig {
        seed,
        start: p("2024-03-29T00:00:00Z"),
        end: p("2024-04-04T00:00:00Z"),
        rate: 0.06,
        bad: 0.01,
        duplicates: 0.01,
        disorder: srv_opr::engine::time::Dur::from_secs(20),
        ..SimConfig::default()
    };
    let mut bytes = Vec::new();
    Simulator::new(cfg).run(&mut bytes).unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Reorders lines: each valid event moves by up to `max_shift_s` seconds of event time (invalid
/// lines travel with the event before them).
fn shuffle_within(lines: &[Vec<u8>], max_shift_s: i64, rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut keyed: Vec<(i64, usize, Vec<u8>)> = Vec::new();
    let mut last = i64::MIN;
    for (i, l) in lines.iter().enumerate() {
        if let Ok(e) = decode(l, 65_536) {
            last = e.at().0 + rng.below((max_shift_s * NANOS_PER_SEC) as u64) as i64;
        }
        keyed.push((last, i, l.clone()));
    }
    keyed.sort_by_key(|(k, i, _)| (*k, *i));
    keyed.into_iter().map(|(_, _, l)| l).collect()
}

fn write_files(dir: &std::path::Path, files: &[Vec<Vec<u8>>]) -> Vec<PathBuf> {
    files
        .iter()
        .enumerate()
        .map(|(i, lines)| {
            let p = dir.join(format!("part{i}.jsonl"));
            let mut text = Vec::new();
            for l in lines {
                text.extend_from_slice(l);
                text.push(b'\n');
            }
            std::fs::write(&p, text).unwrap();
            p
        })
        .collect()
}

fn dead_by_reason(r: &Replayed) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for d in &r.dead {
        *m.entry(d["reason"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

fn assert_same(a: &Replayed, b: &Replayed, what: &str) {
    assert_eq!(a.rpl, b.rpl, "rpl.csv differs: {what}");
    assert_eq!(a.failures, b.failures, "failures.csv differs: {what}");
    assert_eq!(
        dead_by_reason(a),
        dead_by_reason(b),
        "dead letters differ: {what}"
    );
}

#[test]
fn reordering_within_the_lateness_bound_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for seed in [3, 4] {
        let lines = events(seed);
        let base = replay(&write_files(dir.path(), std::slice::from_ref(&lines)));
        assert!(base.rpl.lines().count() > 50, "{}", base.rpl);
        assert!(base.dead.len() > 10);
        let mut rng = Rng::new(seed * 101);
        // Four minutes of disorder on top of the simulator's own: still inside the 5 min lateness.
        let shuffled = shuffle_within(&lines, 240, &mut rng);
        assert_ne!(shuffled, lines);
        let other = replay(&write_files(dir.path(), &[shuffled]));
        assert_same(&base, &other, &format!("seed {seed}, shuffled"));
        assert_eq!(other.summary["late_events"], 0);
    }
}

#[test]
fn splitting_into_files_in_any_way_changes_nothing() {
    let lines = events(5);
    let dir = tempfile::tempdir().unwrap();
    let base = replay(&write_files(dir.path(), std::slice::from_ref(&lines)));
    let mut rng = Rng::new(77);
    for parts in [2usize, 3, 5] {
        let mut files = vec![Vec::new(); parts];
        for l in &lines {
            files[rng.below(parts as u64) as usize].push(l.clone());
        }
        let d = tempfile::tempdir().unwrap();
        let split = replay(&write_files(d.path(), &files));
        assert_same(&base, &split, &format!("{parts} random parts"));
    }
}

#[test]
fn a_request_file_and_a_response_file_correlate() {
    let lines = events(6);
    let dir = tempfile::tempdir().unwrap();
    let base = replay(&write_files(dir.path(), std::slice::from_ref(&lines)));
    let is_request = |l: &Vec<u8>| l.windows(18).any(|w| w == br#""type":"request","#);
    let requests: Vec<Vec<u8>> = lines.iter().filter(|l| is_request(l)).cloned().collect();
    let responses: Vec<Vec<u8>> = lines.iter().filter(|l| !is_request(l)).cloned().collect();
    let d = tempfile::tempdir().unwrap();
    // Responses first on the command line: order of files must not matter either.
    let split = replay(&write_files(d.path(), &[responses, requests]));
    assert_same(&base, &split, "requests and responses in separate files");
    assert_eq!(split.summary["late_events"], 0);
}

mod arbitrary {
    //! Property: for arbitrary small event sets, any emission order in which no event trails
    //! the newest by more than the allowed lateness gives the same outputs.

    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use proptest::prelude::*;
    use srv_opr::config::Config;
    use srv_opr::engine::pipeline::{Pipeline, VecDeadLetters};
    use srv_opr::engine::time::{NANOS_PER_MILLI, Ts};
    use srv_opr::sink::month::{failures_csv, rpl_csv, rpl_lines};
    use srv_opr::source::files::{Input, drive, open_all, source_names};

    fn run(lines: &[String]) -> (String, String, Vec<String>) {
        let cfg = Config::builtin().unwrap();
        let inputs = vec![Input::Memory(
            "mem".into(),
            Arc::new(lines.join("\n").into_bytes()),
        )];
        let mut sources = open_all(&inputs, 65_536, Arc::new(AtomicU64::new(0))).unwrap();
        let mut p = Pipeline::new(
            &cfg.pipeline().unwrap(),
            source_names(&inputs),
            VecDeadLetters::default(),
        );
        drive(
            &mut sources,
            &mut p,
            srv_opr::source::files::Timing::of(&cfg),
            &mut |_| {},
        )
        .unwrap();
        let (agg, _, dead) = p.into_parts();
        let l = rpl_lines(&agg, None);
        let mut reasons: Vec<String> = dead.0.iter().map(|d| d.0.as_str().to_string()).collect();
        reasons.sort();
        (rpl_csv(&l), failures_csv(&l), reasons)
    }

    /// One request id: (srv, region, copies of the request, responses as (delay ms, code)).
    type Spec = (usize, usize, usize, Vec<(i64, usize)>);

    fn spec() -> impl Strategy<Value = Spec> {
        (
            0usize..4,
            0usize..3,
            1usize..3,
            proptest::collection::vec((-2_000i64..60_000, 0usize..5), 0..4),
        )
    }

    fn lines_of(specs: &[Spec], orphans: usize) -> Vec<(i64, String)> {
        const SRV: [(&str, &str); 4] = [
            ("CSP-HAN-TEST", "csp"),
            ("8.11", "dsp"),
            ("4.1.1", "s1sp"),
            ("11.1", "dsp"),
        ];
        const REGION: [&str; 3] = ["north", "central", "south"];
        const CODE: [&str; 5] = ["I0", "I99", "E20", "E21", "I0"];
        // Around the March/April BST edge, one request every 7 s.
        let base = 1_711_925_000_000i64;
        let ts = |ms: i64| Ts(ms * NANOS_PER_MILLI).to_rfc3339_exact();
        let mut out = Vec::new();
        for (i, (s, r, copies, resps)) in specs.iter().enumerate() {
            let at = base + i as i64 * 7_000;
            let (srv, prov) = SRV[*s];
            for _ in 0..*copies {
                out.push((at, format!(r#"{{"type":"request","id":"r{i}","srv":"{srv}","region":"{}","provider":"{prov}","at":"{}"}}"#, REGION[*r], ts(at))));
            }
            for (d, c) in resps {
                out.push((
                    at + d,
                    format!(
                        r#"{{"type":"response","id":"r{i}","code":"{}","at":"{}"}}"#,
                        CODE[*c],
                        ts(at + d)
                    ),
                ));
            }
        }
        for k in 0..orphans {
            let at = base + k as i64 * 11_000;
            out.push((
                at,
                format!(
                    r#"{{"type":"response","id":"orphan{k}","code":"I0","at":"{}"}}"#,
                    ts(at)
                ),
            ));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_order_within_lateness_gives_the_same_outputs(
            specs in proptest::collection::vec(spec(), 1..40),
            orphans in 0usize..3,
            jitter in proptest::collection::vec(0i64..240_000, 200),
        ) {
            let events = lines_of(&specs, orphans);
            let mut in_time: Vec<(i64, usize, String)> = events.iter().enumerate().map(|(i, (at, l))| (*at, i, l.clone())).collect();
            in_time.sort();
            let mut shuffled: Vec<(i64, usize, String)> = events
                .iter()
                .enumerate()
                .map(|(i, (at, l))| (at + jitter[i % jitter.len()], i, l.clone()))
                .collect();
            shuffled.sort();
            let a = run(&in_time.into_iter().map(|x| x.2).collect::<Vec<_>>());
            let b = run(&shuffled.into_iter().map(|x| x.2).collect::<Vec<_>>());
            prop_assert_eq!(a, b);
        }
    }
}
