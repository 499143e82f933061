//! The same events in another order (within the allowed lateness) or split across several files
//! in any way give the identical `rpl.csv` and `failures.csv` (SPEC §2: outcomes depend only on
//! the events' timestamps).

use std::collections::BTreeMap;
use std::path::PathBuf;

use srv_opr::event::decode;
use srv_opr::simulate::{Rng, SimConfig, Simulator};
use srv_opr::time::{NANOS_PER_SEC, parse_rfc3339};

use crate::support::{Replayed, replay};

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
        disorder: srv_opr::time::Dur::from_secs(20),
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
        let base = replay(&write_files(dir.path(), &[lines.clone()]));
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
    let base = replay(&write_files(dir.path(), &[lines.clone()]));
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
    let base = replay(&write_files(dir.path(), &[lines.clone()]));
    let is_request = |l: &Vec<u8>| l.windows(18).any(|w| w == br#""type":"request","#);
    let requests: Vec<Vec<u8>> = lines.iter().filter(|l| is_request(l)).cloned().collect();
    let responses: Vec<Vec<u8>> = lines.iter().filter(|l| !is_request(l)).cloned().collect();
    let d = tempfile::tempdir().unwrap();
    // Responses first on the command line: order of files must not matter either.
    let split = replay(&write_files(d.path(), &[responses, requests]));
    assert_same(&base, &split, "requests and responses in separate files");
    assert_eq!(split.summary["late_events"], 0);
}
