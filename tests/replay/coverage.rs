//! A month's `complete` (issue 33): simulated traffic over a whole month, over its last day
//! only, and over a month with one day missing, replayed; `rpl.csv`, `availability.csv` and
//! `summary.json` each say which months the events cover, and the gap that breaks one.

use std::path::Path;
use std::process::Command;

/// `srv-opr ARGS` in `dir`, which must succeed.
fn srv(dir: &Path, args: &[&str]) {
    crate::support::srv_ok(dir, args, &[]);
}

/// `simulate` over `[from, to)` at a low rate into `name`.
fn simulate(dir: &Path, name: &str, from: &str, to: &str) {
    srv(
        dir,
        &[
            "simulate", "--from", from, "--to", to, "--rate", "0.01", "--seed", "7", "--out", name,
        ],
    );
}

/// `complete` of each `rpl.csv` row of `month` (the last column, named by the header).
fn complete(out: &Path, month: &str) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("rpl.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "complete").unwrap();
    lines
        .filter(|l| l.starts_with(month))
        .map(|l| l.split(',').nth(col).unwrap().to_string())
        .collect()
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_whole_month_is_complete_and_a_part_or_a_month_with_a_day_missing_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // March 2024 in Europe/London: 00:00Z on the 1st to 23:00Z on the 31st (BST from the 31st).
    simulate(
        d,
        "march.jsonl",
        "2024-03-01T00:00:00Z",
        "2024-03-31T23:00:00Z",
    );
    srv(d, &["replay", "march.jsonl", "--out", "whole"]);
    let rows = complete(&d.join("whole"), "2024-03");
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|c| c == "true"), "{rows:?}");
    let s = summary(&d.join("whole"));
    assert_eq!(s["coverage"]["2024-03"]["complete"], true, "{s}");
    assert_eq!(s["coverage"]["2024-03"]["gaps"], serde_json::json!([]));

    // Events from 29 February only: February is not complete.
    simulate(
        d,
        "leap.jsonl",
        "2024-02-29T00:00:00Z",
        "2024-03-01T00:00:00Z",
    );
    srv(d, &["replay", "leap.jsonl", "--out", "leap"]);
    let rows = complete(&d.join("leap"), "2024-02");
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|c| c == "false"), "{rows:?}");
    let s = summary(&d.join("leap"));
    let gaps = &s["coverage"]["2024-02"]["gaps"];
    assert_eq!(gaps.as_array().unwrap().len(), 1, "{gaps}");
    assert_eq!(gaps[0][0], "2024-02-01T00:00:00.000Z");
    assert!(
        gaps[0][1].as_str().unwrap().starts_with("2024-02-29T00:"),
        "{gaps}"
    );

    // `score` and `report` refuse to put February into a year, saying which month and why,
    // unless told to.
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["score", "--scheme", "RY23/24", "--from-rollup", "leap"])
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("2024-02 is not complete") && err.contains("--allow-incomplete"),
        "{err}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args([
            "score",
            "--scheme",
            "RY23/24",
            "--from-rollup",
            "leap",
            "--allow-incomplete",
        ])
        .args(["--out", "scored", "--inputs"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/opr/RY23-24-external.csv"
        ))
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let score = std::fs::read_to_string(d.join("scored/score.json")).unwrap();
    assert!(
        score.contains("2024-02 is not complete") && score.contains("--allow-incomplete"),
        "flagged in the score: {score}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args([
            "report",
            "--year",
            "RY23/24",
            "--replay",
            "leap.jsonl",
            "--out",
            "rep",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("2024-02 is not complete"), "{err}");
    let published = std::fs::read_dir(d.join("rep")).map_or(0, |r| r.count());
    assert_eq!(published, 0, "nothing published");

    // March with the 10th missing: one gap, over that day.
    simulate(d, "a.jsonl", "2024-03-01T00:00:00Z", "2024-03-10T00:00:00Z");
    simulate(d, "b.jsonl", "2024-03-11T00:00:00Z", "2024-03-31T23:00:00Z");
    srv(d, &["replay", "a.jsonl", "b.jsonl", "--out", "holed"]);
    let rows = complete(&d.join("holed"), "2024-03");
    assert!(rows.iter().all(|c| c == "false"), "{rows:?}");
    let gaps = summary(&d.join("holed"))["coverage"]["2024-03"]["gaps"].clone();
    assert_eq!(gaps.as_array().unwrap().len(), 1, "{gaps}");
    assert!(
        gaps[0][0].as_str().unwrap().starts_with("2024-03-09T23:")
            || gaps[0][0].as_str().unwrap().starts_with("2024-03-10T00:0"),
        "{gaps}"
    );
    assert!(
        gaps[0][1].as_str().unwrap().starts_with("2024-03-11T00:"),
        "{gaps}"
    );

    // A gap of a day is allowed when the limit is longer: the same files, complete.
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["replay", "a.jsonl", "b.jsonl", "--out", "lenient"])
        .env("SRV_OPR__TIME__COVERAGE_MAX_GAP", "26h")
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success());
    let rows = complete(&d.join("lenient"), "2024-03");
    assert!(rows.iter().all(|c| c == "true"), "{rows:?}");
    // Below 15 minutes the limit is refused, saying why.
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["replay", "a.jsonl", "--out", "refused"])
        .env("SRV_OPR__TIME__COVERAGE_MAX_GAP", "5m")
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("time.coverage_max_gap") && err.contains("at least 15m"),
        "{err}"
    );
}
