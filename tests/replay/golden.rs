//! Golden fixtures, each figure derived by hand from SPEC §2 (the comments say how).

use crate::support::replay::{fixture, replay};

fn counts(row: &[String]) -> [u64; 4] {
    [3, 4, 5, 6].map(|i| row[i].parse().unwrap())
}

#[test]
fn spec_worked_example() {
    let r = replay(&[fixture("spec_example.jsonl")]);
    // The table of SPEC §2: requests, within_target, succeeded, no_response.
    assert_eq!(counts(&r.row("2024-03", "PM4.3", "north")), [1, 1, 1, 0]);
    assert_eq!(counts(&r.row("2024-04", "PM4.3", "north")), [1, 0, 0, 0]);
    assert_eq!(counts(&r.row("2024-04", "SRV8.11", "south")), [2, 0, 1, 0]);
    assert_eq!(
        counts(&r.row("2024-04", "SRV8.11", "central")),
        [2, 0, 1, 1]
    );
    assert_eq!(counts(&r.row("2024-04", "SRV8.11", "all")), [4, 0, 2, 1]);
    // A is answered in exactly its 25 s TRT.
    assert_eq!(r.row("2024-03", "PM4.3", "north")[11], "25000");
    // A's acknowledgement came 200 ms after it, its final response 24.8 s after that (within
    // the histogram's 0.1 %); B was never acknowledged.
    let a = r.row("2024-03", "PM4.3", "north");
    assert_eq!((a[15].as_str(), a[16].as_str()), ("1", "200"));
    let after: u64 = a[18].parse().unwrap();
    assert!(after.abs_diff(24_800) <= 25, "{after}");
    assert_eq!(&r.row("2024-04", "PM4.3", "north")[15..], ["0", "", "", ""]);
    // Failure buckets as the SPEC lists them.
    for line in [
        "2024-04,PM4.3,north,E20,1",
        "2024-04,SRV8.11,south,slow,1",
        "2024-04,SRV8.11,south,E21,1",
        "2024-04,SRV8.11,central,no_response,1",
        "2024-04,SRV8.11,central,slow,1",
    ] {
        assert!(
            r.failures.lines().any(|l| l == line),
            "{line} missing:\n{}",
            r.failures
        );
    }
    // The evidence names the requests behind each bucket (no user or device in these events).
    assert_eq!(
        r.evidence["PM4.3.csv"],
        "month,measure,region,bucket,id,user,device\n2024-04,PM4.3,north,E20,B,,\n"
    );
    assert_eq!(
        r.evidence["SRV8.11.csv"],
        "month,measure,region,bucket,id,user,device\n\
         2024-04,SRV8.11,central,no_response,E,,\n\
         2024-04,SRV8.11,central,slow,G,,\n\
         2024-04,SRV8.11,south,E21,D,,\n\
         2024-04,SRV8.11,south,slow,C,,\n"
    );
    let dead = r.dead_reasons();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(
        dead.iter()
            .any(|(why, o)| why == "orphan_response" && o.ends_with("spec_example.jsonl:13"))
    );
    assert!(
        dead.iter()
            .any(|(why, o)| why == "malformed_json" && o.ends_with("spec_example.jsonl:15"))
    );
    // E's second copy is a duplicate; D's I0 is a second final response: a duplicate too.
    assert_eq!(r.summary["duplicates"], 2);
    // March is final (the watermark passed 1 April + 24 h); April is not.
    assert_eq!(r.row("2024-03", "PM4.3", "north")[13], "true");
    assert_eq!(r.row("2024-04", "PM4.3", "north")[13], "false");
    assert_eq!(
        r.rpl,
        std::fs::read_to_string(fixture("spec_example.rpl.csv")).unwrap()
    );
    assert_eq!(
        r.failures,
        std::fs::read_to_string(fixture("spec_example.failures.csv")).unwrap()
    );
}

/// `traps.jsonl` (61 lines): one trap per request id, PM4.3 (CSP-HAN-TEST, TRT 25 s) unless said.
#[test]
fn every_trap_counts_exactly() {
    let r = replay(&[fixture("traps.jsonl")]);

    // North, March: t01 ack only (no_response), t02 exactly 25 s (within), t03 25.001 s (slow),
    // t10 within (its later conflicting copy is dropped), t12 E20 (its equal-`at` copy is
    // dropped: first in line order stands), t14 E-BUSY (bucket `other`), t16 within (CRLF line),
    // t17 within (22:59:59.999Z on 31 March is still March), t21 no_response revised to within
    // by a late response after March was final → revision 1.
    let north = r.row("2024-03", "PM4.3", "north");
    assert_eq!(counts(&north), [9, 5, 6, 1]);
    assert_eq!(north[7], "55.5556");
    assert_eq!(north[11], "25001");
    assert_eq!(north[12], "1", "revision");
    assert_eq!(north[13], "true", "final");
    // t01 was acknowledged 500 ms after it and never answered in time: acknowledged, with no
    // time after the acknowledgement. t09's acknowledgement was stamped before it: dead.
    assert_eq!(&north[15..], ["1", "500", "500", ""]);
    assert_eq!(r.row("2024-03", "PM4.3", "south")[15], "0");
    // Central: t04 I0 and E21 at the same instant (E21 wins), t05 E3 and E20 at the same instant
    // (both failures: E20 < E3 in byte order).
    assert_eq!(counts(&r.row("2024-03", "PM4.3", "central")), [2, 0, 0, 0]);
    // South: t06 (response before its request arrived), t07 (duplicate request and final),
    // t09 (an ack and a final stamped before the request are dead; the later I0 counts),
    // t11 (moved to south by an earlier conflicting request).
    assert_eq!(counts(&r.row("2024-03", "PM4.3", "south")), [4, 4, 4, 0]);
    let all = r.row("2024-03", "PM4.3", "all");
    assert_eq!(counts(&all), [15, 9, 10, 1]);
    assert_eq!(all[12], "1", "the all row is revised with north");
    // April: t18 at 23:00:00Z on 31 March is midnight BST, and t20.
    assert_eq!(counts(&r.row("2024-04", "PM4.3", "north")), [2, 2, 2, 0]);
    assert_eq!(r.row("2024-04", "PM4.3", "north")[13], "false");
    // SRV 8.11 (TRT 30 s): t15 answered at exactly 24 h (succeeded, slow), t19 at 24 h + 1 ms
    // (no response within the deadline).
    assert_eq!(counts(&r.row("2024-03", "SRV8.11", "north")), [2, 0, 1, 1]);
    assert_eq!(r.row("2024-03", "MP242-IC", "north")[7], "50.0000");

    for line in [
        "2024-03,PM4.3,north,E20,1",
        "2024-03,PM4.3,north,no_response,1",
        "2024-03,PM4.3,north,other,1",
        "2024-03,PM4.3,north,slow,1",
        "2024-03,PM4.3,central,E20,1",
        "2024-03,PM4.3,central,E21,1",
        "2024-03,SRV8.11,north,no_response,1",
        "2024-03,SRV8.11,north,slow,1",
    ] {
        assert!(
            r.failures.lines().any(|l| l == line),
            "{line} missing:\n{}",
            r.failures
        );
    }

    let mut dead = r.dead_reasons();
    dead.iter_mut()
        .for_each(|(_, o)| *o = o.rsplit(':').next().unwrap().to_string());
    dead.sort_by_key(|(_, line)| line.parse::<u32>().unwrap());
    let want: Vec<(&str, &str)> = vec![
        ("orphan_response", "19"),
        ("response_before_request", "21"),
        ("response_before_request", "22"),
        ("conflicting_request", "25"),
        ("conflicting_request", "27"), // displaced by the earlier copy on line 28
        ("conflicting_request", "31"),
        ("oversized", "37"),
        ("malformed_json", "38"),
        ("unknown_type", "39"),
        ("missing_field", "40"),
        ("bad_timestamp", "41"),
        ("unknown_region", "42"),
        ("unknown_provider", "43"),
        ("too_late", "60"), // t01's response, more than the 7-day horizon behind
        ("too_late", "61"), // a request older than 24 h + 7 days
    ];
    let got: Vec<(&str, &str)> = dead.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got, want);
    let displaced = r
        .dead
        .iter()
        .find(|d| d["origin"].as_str().unwrap().ends_with(":27"))
        .unwrap();
    assert_eq!(displaced["reconstructed"], true);
    assert!(displaced["raw"].as_str().unwrap().contains(r#""id":"t11""#));

    let s = &r.summary;
    assert_eq!(s["events_read"], 59);
    assert_eq!(s["blank_lines"], 2);
    assert_eq!(
        s["duplicates"], 4,
        "t04 and t05 second finals, t07 request and final"
    );
    assert_eq!(s["unmeasured_requests"], 1, "t13, SRV 99.99");
    assert_eq!(s["late_events"], 1, "t21's response");
    assert_eq!(s["revised_requests"], 1);
    assert_eq!(s["dead_letters_total"], 15);
    assert_eq!(s["dead_letters"]["too_late"], 2);
    // One result per event: the results add up to the events read, and their dead letters to
    // the dead letters written (line 27's displaced request moved from accepted).
    let by = s["events_by_type_result"].as_object().unwrap();
    let sum = |f: &dyn Fn(&str) -> bool| -> u64 {
        by.iter()
            .filter(|(k, _)| f(k))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum()
    };
    assert_eq!(sum(&|_| true), 59, "{by:?}");
    assert_eq!(sum(&|k| k.ends_with("/dead_letter")), 15, "{by:?}");
    assert_eq!(by["request/accepted"], 19, "{by:?}");
    assert_eq!(by["request/dead_letter"], 4, "{by:?}");

    assert_eq!(
        r.rpl,
        std::fs::read_to_string(fixture("traps.rpl.csv")).unwrap()
    );
    assert_eq!(
        r.failures,
        std::fs::read_to_string(fixture("traps.failures.csv")).unwrap()
    );
}

#[test]
fn bucket_counts_add_up_to_misses_in_every_row() {
    let r = replay(&[fixture("traps.jsonl")]);
    for line in r.rpl.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let requests: u64 = f[3].parse().unwrap();
        let hits: u64 = if f[1].starts_with("MP242") {
            f[5].parse().unwrap()
        } else {
            f[4].parse().unwrap()
        };
        let prefix = format!("{},{},{},", f[0], f[1], f[2]);
        let misses: u64 = r
            .failures
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(misses, requests - hits, "{line}");
    }
}

/// `input.ignore_types` (issue 32): the trap fixture with alerts mixed in (some stamped years
/// ahead, some malformed but for their type) and one line of a type not listed. Replayed with
/// `ignore_types = ["alert"]`, every figure is the fixture's own, the dead letters are the
/// fixture's plus the unlisted line's `unknown_type`, no alert moves the watermark, and
/// `ignored_by_type` counts the alerts; without the setting each alert is a dead letter.
#[test]
fn listed_types_are_counted_and_left_alone_and_others_stay_dead_letters() {
    let traps = std::fs::read_to_string(fixture("traps.jsonl")).unwrap();
    let mut mixed = String::new();
    let mut alerts = 0;
    for (i, line) in traps.lines().enumerate() {
        mixed.push_str(line);
        mixed.push('\n');
        let alert = match i % 3 {
            0 => format!(
                r#"{{"type":"alert","code":"0x8F1C","device":"00-0A-{i:02}","at":"2031-01-01T00:00:{:02}Z"}}"#,
                i % 60
            ),
            1 => format!(r#"{{ "type" : "alert", "seq": {i}, "at": "not a time" }}"#),
            _ => format!(
                r#"{{"at":"2024-03-15T00:00:00Z","type":"alert","n":[{i},{{"deep":true}}]}}"#
            ),
        };
        mixed.push_str(&alert);
        mixed.push('\n');
        alerts += 1;
    }
    mixed.push_str(r#"{"type":"dcc_alert","at":"2024-03-15T00:00:00Z"}"#);
    mixed.push('\n');
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(&path, &mixed).unwrap();

    let base = replay(&[fixture("traps.jsonl")]);
    // The fixture has an alert of its own (t91, an `unknown_type` dead letter there).
    let own = traps
        .lines()
        .filter(|l| l.contains(r#""type":"alert""#))
        .count();
    assert_eq!(own, 1);
    let mut cfg = srv_opr::config::Config::builtin().unwrap();
    cfg.settings.input.ignore_types = vec!["alert".into()];
    let got = crate::support::replay::replay_with(&cfg, std::slice::from_ref(&path));
    assert_eq!(got.rpl, base.rpl);
    assert_eq!(got.failures, base.failures);
    assert_eq!(
        got.summary["ignored_by_type"],
        serde_json::json!({"alert": alerts + own})
    );
    assert_eq!(got.summary["watermark"], base.summary["watermark"]);
    assert_eq!(
        got.summary["events_read"],
        base.summary["events_read"].as_u64().unwrap() - own as u64 + 1
    );
    let reasons = |r: &crate::support::replay::Replayed| -> Vec<String> {
        let mut v: Vec<String> = r.dead_reasons().into_iter().map(|(x, _)| x).collect();
        v.sort();
        v
    };
    // t91's `unknown_type` is gone, the unlisted line's is there: the same list.
    let want = reasons(&base);
    assert_eq!(reasons(&got), want);

    // The parse-only pass counts them the same way.
    let parsed = srv_opr::source::parse_only::parse_only(
        65_536,
        &["alert".to_string()],
        &srv_opr::source::files::inputs_from_paths(std::slice::from_ref(&path)),
    )
    .unwrap();
    assert_eq!(parsed.ignored_by_type["alert"], (alerts + own) as u64);
    assert_eq!(parsed.invalid.get("unknown_type"), Some(&1));

    // Not listed: every alert is an `unknown_type` dead letter, as the contract says.
    let plain = crate::support::replay::replay_with(
        &srv_opr::config::Config::builtin().unwrap(),
        std::slice::from_ref(&path),
    );
    assert_eq!(plain.dead_count("unknown_type"), alerts + own + 1);
    assert_eq!(plain.summary["ignored_by_type"], serde_json::json!({}));
}
