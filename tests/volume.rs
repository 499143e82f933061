//! A simulated month at volume (about two million events, every trap injected) replayed by
//! `srv-opr`, checked count for count against an independent oracle written here from SPEC §2:
//! it loads every event, groups by id and applies the rules directly, with no watermark, timer or
//! state machine. Heavy: run it alone with `cargo test --test tests volume::`.

use std::collections::BTreeMap;

use srv_opr::cli;
use srv_opr::config::Config;
use srv_opr::engine::calendar::Month;
use srv_opr::engine::domain::Region;
use srv_opr::simulate::{Quality, SimConfig, SimStats, Simulator};
use srv_opr::source::files::inputs_from_paths;

use crate::support::oracle::{Counts, oracle};

fn simulate(cfg: SimConfig) -> (Vec<u8>, SimStats) {
    let mut bytes = Vec::new();
    let stats = Simulator::new(cfg).run(&mut bytes).unwrap();
    (bytes, stats)
}

/// `rpl.csv`'s counts by month, measure and region, as the oracle keeps them.
fn rpl_counts(rpl: &str) -> BTreeMap<(Month, String, &'static str), Counts> {
    let mut got = BTreeMap::new();
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
                acked: n(15),
            },
        );
    }
    got
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
    let got = rpl_counts(&rpl);
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
            .any(|l| l.starts_with("2024-03,PM4.3,all,") && l.contains(",true,"))
    );
}

/// Issue 32 at volume: a trap-laden simulated month with device alerts (20,000 or so),
/// future-dated requests (3,000 or so, some executing in April) and 60 service users, replayed
/// with `ignore_types = ["alert"]`. Every count of `rpl.csv` (`acked` too) and of `users.csv`
/// equals the oracle's over the events without the alerts; the dead letters are those of that
/// set alone, and `ignored_by_type` counts the alerts.
#[test]
fn a_duis_shaped_month_matches_the_oracle_with_alerts_future_dated_requests_and_users() {
    let mut cfg = Config::builtin().unwrap();
    cfg.settings.input.ignore_types = vec!["alert".into()];
    let p = |s: &str| srv_opr::engine::time::parse_rfc3339(s.as_bytes()).unwrap();
    let mut quality = [Quality::default(); 3];
    quality[Region::Central as usize] = Quality {
        slow: 0.02,
        error: 0.01,
        lost: 0.005,
    };
    let (bytes, sim) = simulate(SimConfig {
        seed: 32,
        start: p("2024-03-01T00:00:00Z"),
        end: p("2024-04-01T00:00:00Z"),
        rate: 0.1,
        quality,
        bad: 0.002,
        duplicates: 0.004,
        alerts: 0.075,
        future_dated: 0.011,
        users: 60,
        disorder: srv_opr::engine::time::Dur::from_secs(60),
        ..SimConfig::default()
    });
    assert!(sim.alerts > 15_000 && sim.future_dated > 2_500, "{sim:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("month.jsonl");
    std::fs::write(&file, &bytes).unwrap();
    let out = dir.path().join("out");
    cli::replay::replay(&cfg, &inputs_from_paths(&[&file]), &out, false).unwrap();

    let all: Vec<&[u8]> = bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let is_alert = |l: &[u8]| srv_opr::engine::event::type_of(l).as_deref() == Some("alert");
    let alerts = all.iter().filter(|l| is_alert(l)).count() as u64;
    assert_eq!(alerts, sim.alerts);
    let lines: Vec<&[u8]> = all.iter().copied().filter(|l| !is_alert(l)).collect();
    let want = oracle(&cfg, &lines);

    // rpl.csv, `acked` included.
    let rpl = std::fs::read_to_string(out.join("rpl.csv")).unwrap();
    let got = rpl_counts(&rpl);
    assert_eq!(got.len(), want.rows.len());
    for (k, w) in &want.rows {
        assert_eq!(got.get(k), Some(w), "{k:?}");
    }
    // Future-dated requests executing in April count there.
    assert!(
        want.rows
            .keys()
            .any(|(m, id, _)| *m == Month::new(2024, 4) && id == "MP242-IC")
    );

    // users.csv, row for row.
    let users = std::fs::read_to_string(out.join("users.csv")).unwrap();
    let mut got_users: BTreeMap<(Month, String, String), Counts> = BTreeMap::new();
    for l in users.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        got_users.insert(
            (
                Month::parse(f[0]).unwrap(),
                f[1].to_string(),
                f[2].to_string(),
            ),
            Counts {
                requests: n(3),
                within: n(4),
                succeeded: n(5),
                no_response: n(6),
                acked: 0,
            },
        );
    }
    assert_eq!(got_users, want.users);
    let names: std::collections::BTreeSet<&str> =
        want.users.keys().map(|(_, _, u)| u.as_str()).collect();
    assert_eq!(names.len(), 60, "{names:?}");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["dead_letters_total"].as_u64().unwrap(),
        want.dead.values().sum::<u64>()
    );
    for (reason, n) in &want.dead {
        assert_eq!(
            summary["dead_letters"][reason].as_u64(),
            Some(*n),
            "{reason}"
        );
    }
    assert_eq!(summary["ignored_by_type"]["alert"].as_u64(), Some(alerts));
    assert_eq!(want.dead["unknown_type"], sim.unknown_type);
    assert_eq!(summary["duplicates"].as_u64(), Some(want.duplicates));
}
