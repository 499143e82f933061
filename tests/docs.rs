//! The documentation's examples, run: the example events of `docs/events.md` replayed, and
//! every statement the page makes about them checked against the files `replay` writes.

use std::process::Command;

/// The first `jsonl` block of `docs/events.md`.
fn example() -> String {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md")).unwrap();
    let block = page
        .split("```jsonl\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("docs/events.md has a jsonl example");
    block.to_string()
}

#[test]
fn the_events_page_example_does_what_the_page_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("example.jsonl"), example()).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["replay", "example.jsonl", "--out", "o"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |f: &str| std::fs::read_to_string(d.join("o").join(f)).unwrap();
    let rpl = read("rpl.csv");
    let row = |m: &str, r: &str| -> Vec<String> {
        rpl.lines()
            .find(|l| l.starts_with(&format!("2024-03,{m},{r},")))
            .unwrap_or_else(|| panic!("{m} {r} not in rpl.csv:\n{rpl}"))
            .split(',')
            .map(String::from)
            .collect()
    };
    // A1: a hit for SRV8.11 and PM1.1-DSP; 400 ms to its acknowledgement, ~4.1 s after.
    let a1 = row("SRV8.11", "north");
    assert_eq!(&a1[3..7], ["1", "1", "1", "0"]);
    assert_eq!((a1[15].as_str(), a1[16].as_str()), ("1", "400"));
    let after: u64 = a1[18].parse().unwrap();
    assert!(after.abs_diff(4100) <= 10, "{after}");
    // PM1.1-DSP north is A1 alone: D4, future-dated, is not on demand.
    assert_eq!(&row("PM1.1-DSP", "north")[3..5], ["1", "1"]);
    // B2: a miss, bucket E20, for PM1.1-DSP and MP242-TARIFF.
    assert_eq!(&row("PM1.1-DSP", "central")[3..5], ["1", "0"]);
    assert_eq!(&row("MP242-TARIFF", "central")[3..6], ["1", "0", "0"]);
    let failures = read("failures.csv");
    for l in [
        "2024-03,PM1.1-DSP,central,E20,1",
        "2024-03,MP242-TARIFF,central,E20,1",
    ] {
        assert!(failures.lines().any(|x| x == l), "{l}: {failures}");
    }
    // C3: counted once its request came.
    assert_eq!(&row("SRV8.11", "south")[3..5], ["1", "1"]);
    // D4: MP242-TARIFF counts it, a success, in March.
    assert_eq!(&row("MP242-TARIFF", "north")[3..6], ["1", "1", "1"]);
    // Availability: five complete minutes down.
    let availability = read("availability.csv");
    assert!(
        availability
            .lines()
            .any(|l| l.starts_with("2024-03,DUIS,") && l.split(',').nth(3) == Some("5")),
        "{availability}"
    );
    // The user of A1 in users.csv.
    assert!(read("users.csv").contains("2024-03,SRV8.11,90-B3-D5-1F-30-01-00-00,1,1,1,0,"));
    // E5 and F6: dead letters, E5's with its detail.
    let dead: Vec<serde_json::Value> = read("deadletter.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0]["reason"], "missing_field");
    assert_eq!(dead[0]["detail"], "`code` is a number, not a string");
    assert_eq!(dead[1]["reason"], "unknown_type");
    // No month covered.
    assert!(rpl.lines().skip(1).all(|l| l.ends_with(",false")), "{rpl}");
}
