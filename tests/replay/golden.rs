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
    assert_eq!(
        &r.row("2024-04", "PM4.3", "north")[15..19],
        ["0", "", "", ""]
    );
    // A few seconds of events cover no month (issue 33): every row says so.
    assert_eq!(r.row("2024-04", "PM4.3", "north")[19], "false");
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
    assert_eq!(&north[15..19], ["1", "500", "500", ""]);
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

/// Future-dated requests, the acknowledgement segment and users (issue 32), figures by hand.
/// Measures: the built-in ones and `CPM2-8.11`, a TRT measure (30 s) of future-dated 8.11s.
///
/// - F1 (north, U1) arrives 30 March, runs 2 April 06:00Z, answered 5 s later, acknowledged
///   250 ms after arrival: April, within CPM2's TRT, succeeded in MP242-IC; not in SRV8.11 or
///   PM1.1-DSP (on demand only). F8 repeats F1 with another `execute_at`: a duplicate (the
///   contract's four fields and `at` decide), F1's execution time stands.
/// - F2, F3, F4: `execute_at` before `at`, 32 days after it, a number: `bad_timestamp`.
/// - F5 (north, U2): `execute_at` equal to `at` is on demand: March, within 2 s.
/// - F6 (south, no user) runs 1 April 09:00 London (08:00Z), never answered: April, no response.
/// - F7 (central) on demand 31 March 00:00Z, answered in 3 s; its acknowledgement (stamped 1 s
///   after it) comes after a request of 10 April moved the watermark past March's end: a late
///   event that revises March's final row (`acked` 1, revision 1).
#[test]
fn future_dated_requests_acknowledgements_and_users_count_where_they_ran() {
    let measures = format!(
        "{}\n[[measure]]\nid = \"CPM2-8.11\"\nname = \"Future-dated 8.11\"\nbasis = \"trt\"\n\
         timing = \"future_dated\"\nsrvs = [\"8.11\"]\ntrt = \"30s\"\ndeadline = \"24h\"\n\
         regional = false\n",
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/measures.toml")
        )
        .unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("measures.toml"), measures).unwrap();
    let cfg = srv_opr::config::Config::load(Some(dir.path()), &[]).unwrap();
    let req = |id: &str, region: &str, extra: &str, at: &str| {
        format!(
            r#"{{"type":"request","id":"{id}","srv":"8.11","region":"{region}","provider":"dsp"{extra},"at":"{at}"}}"#
        )
    };
    let resp = |id: &str, code: &str, at: &str| {
        format!(r#"{{"type":"response","id":"{id}","code":"{code}","at":"{at}"}}"#)
    };
    let lines = [
        req(
            "F1",
            "north",
            r#","user":"U1","execute_at":"2024-04-02T06:00:00Z""#,
            "2024-03-30T10:00:00Z",
        ),
        resp("F1", "I99", "2024-03-30T10:00:00.250Z"),
        req("F8", "north", "", "2024-03-30T10:00:00Z")
            .replace("F8", "F1")
            .replace(r#""at""#, r#""execute_at":"2024-04-03T06:00:00Z","at""#),
        req(
            "F2",
            "north",
            r#","execute_at":"2024-03-30T09:59:59Z""#,
            "2024-03-30T10:00:00Z",
        ),
        req(
            "F3",
            "north",
            r#","execute_at":"2024-05-01T10:00:00.001Z""#,
            "2024-03-30T10:00:00Z",
        ),
        req(
            "F4",
            "north",
            r#","execute_at":1711965600"#,
            "2024-03-30T10:00:00Z",
        ),
        req(
            "F5",
            "north",
            r#","user":"U2","execute_at":"2024-03-30T11:00:00Z""#,
            "2024-03-30T11:00:00Z",
        ),
        resp("F5", "I0", "2024-03-30T11:00:02Z"),
        req("F7", "central", "", "2024-03-31T00:00:00Z"),
        resp("F7", "I0", "2024-03-31T00:00:03Z"),
        req(
            "F6",
            "south",
            r#","execute_at":"2024-04-01T09:00:00+01:00""#,
            "2024-03-31T12:00:00Z",
        ),
        resp("F1", "I0", "2024-04-02T06:00:05Z"),
        req("F9", "north", "", "2024-04-10T00:00:00Z").replace("8.11", "4.4.1"),
        resp("F7", "I99", "2024-03-31T00:00:01Z"),
    ];
    let path = dir.path().join("duis.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    srv_opr::cli::replay::replay(
        &cfg,
        &srv_opr::source::files::inputs_from_paths(std::slice::from_ref(&path)),
        &out,
        false,
    )
    .unwrap();
    let r = crate::support::replay::read_outputs(&out);
    let c = |m: &str, id: &str, region: &str| counts(&r.row(m, id, region));
    // March, on demand: F5 north, F7 central.
    assert_eq!(c("2024-03", "SRV8.11", "north"), [1, 1, 1, 0]);
    assert_eq!(c("2024-03", "SRV8.11", "central"), [1, 1, 1, 0]);
    assert_eq!(c("2024-03", "MP242-IC", "all"), [2, 2, 2, 0]);
    // F7's late acknowledgement: acknowledged, 1 s, and a revision of the final month's row.
    let f7 = r.row("2024-03", "SRV8.11", "central");
    assert_eq!((f7[12].as_str(), f7[13].as_str()), ("1", "true"));
    assert_eq!(&f7[15..18], ["1", "1000", "1000"]);
    assert_eq!(
        f7[18], "2000",
        "3 s to the answer, 1 s of it to the acknowledgement"
    );
    assert_eq!(r.row("2024-03", "SRV8.11", "north")[15], "0");
    // April, future-dated: F1 within CPM2's TRT (5 s from its execution), F6 no response.
    assert_eq!(c("2024-04", "CPM2-8.11", "north"), [1, 1, 1, 0]);
    assert_eq!(c("2024-04", "CPM2-8.11", "south"), [1, 0, 0, 1]);
    assert_eq!(c("2024-04", "MP242-IC", "all"), [2, 1, 1, 1]);
    let f1 = r.row("2024-04", "CPM2-8.11", "north");
    assert_eq!(f1[11], "5000", "measured from execute_at");
    assert_eq!(&f1[15..17], ["1", "250"]);
    let after: u64 = f1[18].parse().unwrap();
    let exact = (((2 * 24 + 20) * 3600 + 5) * 1000 - 250) as u64;
    assert!(after.abs_diff(exact) * 1000 <= exact, "{after} vs {exact}");
    assert!(!r.rpl.contains("2024-04,SRV8.11,") && !r.rpl.contains("2024-04,PM1.1-DSP,"));
    assert!(!r.rpl.contains("2024-03,CPM2-8.11,"));
    // Dead letters: the three bad `execute_at`s; F1's copy is a duplicate.
    let mut dead: Vec<String> = r.dead_reasons().into_iter().map(|(x, _)| x).collect();
    dead.sort();
    assert_eq!(dead, ["bad_timestamp", "bad_timestamp", "bad_timestamp"]);
    assert_eq!(r.summary["duplicates"], 1);
    assert_eq!(r.summary["late_events"], 1);
    // users.csv: regions pooled, `-` for none.
    let users = std::fs::read_to_string(out.join("users.csv")).unwrap();
    for line in [
        "2024-03,SRV8.11,-,1,1,1,0,100.0000",
        "2024-03,SRV8.11,U2,1,1,1,0,100.0000",
        "2024-03,MP242-IC,U2,1,1,1,0,100.0000",
        "2024-04,CPM2-8.11,-,1,0,0,1,0.0000",
        "2024-04,CPM2-8.11,U1,1,1,1,0,100.0000",
        "2024-04,MP242-IC,U1,1,1,1,0,100.0000",
    ] {
        assert!(users.lines().any(|l| l == line), "{line} missing:\n{users}");
    }
    assert_eq!(users.lines().count(), 1 + 10, "{users}");
}

/// `[evidence] sample = "all"` (issue 32): every missed request of the SPEC's example is in
/// `evidence/<measure>.csv.gz`, bucket for bucket what `failures.csv` counts per region; a
/// number keeps at most that many per row and bucket.
#[test]
fn evidence_all_streams_every_miss_and_a_number_caps_the_sample() {
    use std::io::Read;
    let mut cfg = srv_opr::config::Config::builtin().unwrap();
    cfg.settings.evidence.all = true;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    srv_opr::cli::replay::replay(
        &cfg,
        &srv_opr::source::files::inputs_from_paths(&[fixture("spec_example.jsonl")]),
        &out,
        false,
    )
    .unwrap();
    let r = crate::support::replay::read_outputs(&out);
    let mut streamed: std::collections::BTreeMap<String, u64> = Default::default();
    let mut files = 0;
    for m in &cfg.definitions.measures {
        let path = out.join(format!("evidence/{}.csv.gz", m.id));
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        files += 1;
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("month,measure,region,bucket,id,user,device")
        );
        for l in lines {
            let f: Vec<&str> = l.split(',').collect();
            *streamed.entry(f[..4].join(",")).or_default() += 1;
        }
    }
    assert_eq!(files, cfg.definitions.measures.len());
    let counted: std::collections::BTreeMap<String, u64> = r
        .failures
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(2).is_none_or(|x| x != "all"))
        .map(|l| {
            let (k, n) = l.rsplit_once(',').unwrap();
            (k.to_string(), n.parse().unwrap())
        })
        .collect();
    assert!(!counted.is_empty());
    assert_eq!(streamed, counted);

    // A cap of three: at most three requests per row and bucket in the sampled files, where
    // the default keeps twenty.
    let p = |s: &str| srv_opr::engine::time::parse_rfc3339(s.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    srv_opr::simulate::Simulator::new(srv_opr::simulate::SimConfig {
        start: p("2024-03-10T00:00:00Z"),
        end: p("2024-03-11T00:00:00Z"),
        rate: 0.2,
        quality: [srv_opr::simulate::Quality {
            slow: 0.05,
            error: 0.05,
            lost: 0.05,
        }; 3],
        ..Default::default()
    })
    .run(&mut bytes)
    .unwrap();
    let day = dir.path().join("day.jsonl");
    std::fs::write(&day, bytes).unwrap();
    let mut cfg = srv_opr::config::Config::builtin().unwrap();
    cfg.settings.evidence.sample = 3;
    let r = crate::support::replay::replay_with(&cfg, std::slice::from_ref(&day));
    let base = replay(std::slice::from_ref(&day));
    let rows = |e: &std::collections::BTreeMap<String, String>| -> Vec<String> {
        e.values()
            .flat_map(|t| {
                t.lines()
                    .skip(1)
                    .map(|l| l.split(',').take(4).collect::<Vec<_>>().join(","))
            })
            .collect()
    };
    let (capped, full) = (rows(&r.evidence), rows(&base.evidence));
    assert!(capped.len() < full.len(), "{capped:?}");
    let mut per: std::collections::BTreeMap<&String, usize> = Default::default();
    for k in &capped {
        *per.entry(k).or_default() += 1;
    }
    assert!(per.values().all(|n| *n <= 3) && per.values().any(|n| *n == 3));
    assert_eq!(r.rpl, base.rpl);
}
