//! A simulated month at volume (about two million events, every trap injected) replayed by
//! `srv-opr`, checked count for count against an independent oracle written here from SPEC §2:
//! it loads every event, groups by id and applies the rules directly, with no watermark, timer or
//! state machine. Heavy: run it alone with `cargo test --test tests volume::`.

use std::collections::{BTreeMap, HashMap};

use srv_opr::cli;
use srv_opr::config::Config;
use srv_opr::engine::calendar::{Calendar, Month};
use srv_opr::engine::domain::{Provider, Region};
use srv_opr::engine::event::{Event, decode};
use srv_opr::simulate::{Quality, SimConfig, SimStats, Simulator};
use srv_opr::source::files::inputs_from_paths;

#[derive(Clone)]
struct OReq {
    at: i64,
    srv: String,
    region: Region,
    provider: Provider,
    line: usize,
}

#[derive(Default, Debug, PartialEq, Eq, Clone, Copy)]
struct Counts {
    requests: u64,
    within: u64,
    succeeded: u64,
    no_response: u64,
}

struct Oracle {
    rows: BTreeMap<(Month, String, &'static str), Counts>,
    dead: BTreeMap<&'static str, u64>,
    duplicates: u64,
    unmeasured: u64,
}

fn oracle(cfg: &Config, lines: &[&[u8]]) -> Oracle {
    let defs = &cfg.definitions;
    let mut cal = Calendar::new(&cfg.settings.time.zone).unwrap();
    let mut dead: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut reqs: HashMap<String, Vec<OReq>> = HashMap::new();
    let mut resps: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        match decode(l, cfg.settings.input.max_event_bytes) {
            Err(r) => *dead.entry(r.as_str()).or_default() += 1,
            Ok(Event::Request(r)) => reqs.entry(r.id.to_string()).or_default().push(OReq {
                at: r.at.0,
                srv: r.srv.to_string(),
                region: r.region,
                provider: r.provider,
                line: i,
            }),
            Ok(Event::Response(r)) => resps
                .entry(r.id.to_string())
                .or_default()
                .push((r.at.0, r.code.to_string())),
        }
    }
    let mut rows: BTreeMap<(Month, String, &'static str), Counts> = BTreeMap::new();
    let mut duplicates = 0;
    let mut unmeasured = 0;
    for (id, copies) in &reqs {
        // The earliest `at` stands; on a tie, the first line.
        let standing = copies
            .iter()
            .min_by_key(|r| (r.at, r.line))
            .unwrap()
            .clone();
        for c in copies.iter().filter(|c| c.line != standing.line) {
            let same = c.at == standing.at
                && c.srv == standing.srv
                && c.region == standing.region
                && c.provider == standing.provider;
            if same {
                duplicates += 1;
            } else {
                *dead.entry("conflicting_request").or_default() += 1;
            }
        }
        let mut finals: Vec<(i64, String)> = Vec::new();
        for (at, code) in resps.get(id).map(Vec::as_slice).unwrap_or(&[]) {
            if *at < standing.at {
                *dead.entry("response_before_request").or_default() += 1;
            } else if !defs.ack_codes.contains(code) {
                finals.push((*at, code.clone()));
            }
        }
        duplicates += finals.len().saturating_sub(1) as u64;
        let success = |c: &str| defs.success_codes.iter().any(|s| s == c);
        let fin = finals.iter().min_by(|a, b| {
            a.0.cmp(&b.0)
                .then(success(&a.1).cmp(&success(&b.1)))
                .then(a.1.as_bytes().cmp(b.1.as_bytes()))
        });
        let rules = defs.rules_for(&standing.srv, standing.provider);
        if rules.is_empty() {
            unmeasured += 1;
        }
        let month = cal.month_of(srv_opr::engine::time::Ts(standing.at));
        for rule in rules {
            let m = &defs.measures[rule.measure as usize];
            let within_deadline = fin.filter(|(at, _)| at - standing.at <= rule.deadline.0);
            let ok = within_deadline.is_some_and(|(_, c)| success(c));
            let wt = ok && within_deadline.is_some_and(|(at, _)| at - standing.at <= rule.trt.0);
            for region in [standing.region.as_str(), "all"] {
                let c = rows.entry((month, m.id.clone(), region)).or_default();
                c.requests += 1;
                c.within += wt as u64;
                c.succeeded += ok as u64;
                c.no_response += within_deadline.is_none() as u64;
            }
        }
    }
    for id in resps.keys().filter(|id| !reqs.contains_key(*id)) {
        *dead.entry("orphan_response").or_default() += resps[id].len() as u64;
    }
    Oracle {
        rows,
        dead,
        duplicates,
        unmeasured,
    }
}

fn simulate(cfg: SimConfig) -> (Vec<u8>, SimStats) {
    let mut bytes = Vec::new();
    let stats = Simulator::new(cfg).run(&mut bytes).unwrap();
    (bytes, stats)
}

#[test]
fn a_simulated_month_matches_the_oracle_count_for_count() {
    let cfg = Config::builtin().unwrap();
    let mut quality = [Quality::default(); 3];
    quality[Region::South as usize] = Quality {
        slow: 0.03,
        error: 0.01,
        lost: 0.004,
    };
    let p = |s: &str| srv_opr::engine::time::parse_rfc3339(s.as_bytes()).unwrap();
    let (bytes, sim) = simulate(SimConfig {
        seed: 20240331,
        start: p("2024-03-01T00:00:00Z"),
        end: p("2024-04-02T00:00:00Z"),
        rate: 0.24,
        quality,
        bad: 0.002,
        duplicates: 0.004,
        disorder: srv_opr::engine::time::Dur::from_secs(60),
        ..SimConfig::default()
    });
    assert!(sim.lines > 1_500_000, "{sim:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("month.jsonl");
    std::fs::write(&file, &bytes).unwrap();
    let out = dir.path().join("out");
    cli::replay::replay(&cfg, &inputs_from_paths(&[&file]), &out, false).unwrap();

    let lines: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let want = oracle(&cfg, &lines);

    let rpl = std::fs::read_to_string(out.join("rpl.csv")).unwrap();
    let mut got: BTreeMap<(Month, String, &'static str), Counts> = BTreeMap::new();
    for l in rpl.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let region = match f[2] {
            "north" => "north",
            "central" => "central",
            "south" => "south",
            _ => "all",
        };
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        got.insert(
            (Month::parse(f[0]).unwrap(), f[1].to_string(), region),
            Counts {
                requests: n(3),
                within: n(4),
                succeeded: n(5),
                no_response: n(6),
            },
        );
    }
    assert_eq!(got.len(), want.rows.len());
    for (k, w) in &want.rows {
        assert_eq!(got.get(k), Some(w), "{k:?}");
    }

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for (reason, n) in &want.dead {
        assert_eq!(
            summary["dead_letters"][reason].as_u64(),
            Some(*n),
            "{reason}"
        );
    }
    assert_eq!(
        summary["dead_letters_total"].as_u64().unwrap(),
        want.dead.values().sum::<u64>()
    );
    assert_eq!(summary["duplicates"].as_u64(), Some(want.duplicates));
    assert_eq!(
        summary["unmeasured_requests"].as_u64(),
        Some(want.unmeasured)
    );
    assert_eq!(summary["late_events"], 0);
    // The injected traps are all there, and the oracle agrees with the simulator's own count.
    assert_eq!(want.dead["malformed_json"], sim.malformed);
    assert_eq!(want.dead["orphan_response"], sim.orphan_responses);
    assert_eq!(
        want.dead["response_before_request"],
        sim.response_before_request
    );
    assert_eq!(want.dead["conflicting_request"], sim.conflicting_requests);
    assert_eq!(want.unmeasured, sim.unmeasured_requests);
    // March is final; the degraded south region is visibly worse.
    let south = &got[&(Month::new(2024, 3), "PM4.3".into(), "south")];
    let north = &got[&(Month::new(2024, 3), "PM4.3".into(), "north")];
    assert!(south.within * north.requests < north.within * south.requests);
    assert!(
        rpl.lines()
            .any(|l| l.starts_with("2024-03,PM4.3,all,") && l.ends_with(",true"))
    );
}
