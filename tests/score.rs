//! The OPR scoring core against the seed's Table 7 and hand-worked cases below target
//! (DOMAIN.md's model), through the library and through the `srv-opr score` binary.

use std::path::Path;
use std::process::Command;

use rust_decimal::Decimal;
use srv_opr::score::inputs;
use srv_opr::score::model::{Override, Report, score};
use srv_opr::score::render::{fixed, score_csv};
use srv_opr::score::scheme::{self, Scheme};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn ry2324() -> Scheme {
    let text = std::fs::read_to_string(root().join("config/opr/RY23-24.toml")).unwrap();
    scheme::parse("RY23-24.toml", &text, &[]).unwrap()
}

fn seed_rows() -> Vec<inputs::InputRow> {
    let text = std::fs::read_to_string(root().join("tests/fixtures/seed-ry2324.csv")).unwrap();
    inputs::parse("seed-ry2324.csv", &text).unwrap()
}

fn measure<'a>(r: &'a Report, id: &str) -> &'a srv_opr::score::model::MeasureScore {
    r.measures.iter().find(|m| m.measure == id).unwrap()
}

/// Equal to 20 decimal places: thirds are not exact in a 28-digit decimal, so two exact routes to
/// the same third may differ in the last digit.
fn same(a: Decimal, b: Decimal) -> bool {
    (a - b).abs() < d("0.00000000000000000001")
}

fn within(got: Decimal, want: &str, tol: &str) -> bool {
    (got - d(want)).abs() <= d(tol)
}

#[test]
fn reproduces_the_seeds_table_7() {
    let s = ry2324();
    let r = score(&s, &seed_rows(), s.margin_at_risk.unwrap(), &[]).unwrap();
    // £m retained and lost, within £0.002m (SPEC §7), and retained % to the digit shown.
    for (id, kept, lost, pct) in [
        ("SUM1", "2.086", "0", "100"),
        ("SDM1", "2.086", "0", "100"),
        ("SDM2", "2.086", "0", "100"),
        ("VMM1", "1.080", "0.261", "81"),
        ("VMM2", "1.041", "0.298", "78"),
    ] {
        let m = measure(&r, id);
        assert!(within(m.kept, kept, "0.002"), "{id} kept {}", m.kept);
        assert!(within(m.lost, lost, "0.002"), "{id} lost {}", m.lost);
        assert_eq!(fixed(m.retained_share.unwrap() * d("100"), 0), pct, "{id}");
    }
    // The seed's totals are sums of rounded cells: 8.379 and 0.559.
    assert!(within(r.total_kept, "8.379", "0.002"), "{}", r.total_kept);
    assert!(within(r.total_lost, "0.559", "0.002"), "{}", r.total_lost);
    assert_eq!(r.total_kept + r.total_lost, d("8.938"), "totals are exact");
    // Each system measure: 8.938 × 7/30 exactly, not × 23.33 %.
    assert_eq!(fixed(measure(&r, "SUM1").allocation, 4), "2.0855");

    // RPLs to the two decimals shown.
    let rpl = |id: &str, scope: &str| {
        fixed(
            measure(&r, id)
                .parts
                .iter()
                .find(|p| p.scope == scope)
                .unwrap()
                .rpl,
            2,
        )
    };
    assert_eq!(rpl("SUM1", "non-regional"), "99.93");
    assert_eq!(rpl("SDM1", "north"), "99.30");
    assert_eq!(rpl("SDM1", "central"), "99.96");
    // The seed shows 99.97: it averaged unrounded monthly data; from the rounded components the
    // mean is (100 + 99.92 + 99.98 + 100) / 4 = 99.975 exactly (SPEC §7).
    assert_eq!(measure(&r, "SDM1").parts[2].rpl, d("99.975"));
    assert_eq!(rpl("SDM2", "north"), "100.00");
    assert_eq!(rpl("SDM2", "central"), "99.75");
    assert_eq!(rpl("SDM2", "south"), "99.75");
    // The seed shows 99.85 for mechanism A; the rounded components give 99.863 (SPEC §7).
    assert_eq!(rpl("SDM2", "non-regional"), "99.86");
    // VMM1 from sub-questions: 29/12, shown as 2.42.
    assert_eq!(
        fixed(measure(&r, "VMM1").vmm.as_ref().unwrap().score, 2),
        "2.42"
    );
    // SDM2 shares its allocation 3 : 1 between its A and B parts.
    let sdm2 = measure(&r, "SDM2");
    assert_eq!(
        sdm2.parts[0].allocation * d("1") / sdm2.allocation,
        d("0.75")
    );
    // Zero-weighted measures: SUM2's RPLs are reported and move no money; SDM3 has no input: n/a.
    let sum2 = measure(&r, "SUM2");
    assert_eq!(
        srv_opr::score::render::assessment(sum2),
        "North = 98.17% Central = 99.07% South = 99.12%"
    );
    assert_eq!((sum2.kept, sum2.lost), (Decimal::ZERO, Decimal::ZERO));
    assert!(!measure(&r, "SDM3").assessed);

    let csv = score_csv(&r);
    assert!(
        csv.starts_with("measure,weight,assessment,retained_percent,retained_gbp_m,lost_gbp_m\n")
    );
    assert!(
        csv.contains("\nSUM1,23.3333,Non-regional = 99.93%,100.00,2.085533,0.000000\n"),
        "{csv}"
    );
    assert!(
        csv.contains("\nVMM2,15.0000,2.33 out of 3,77.67,1.041277,0.299423\n"),
        "{csv}"
    );
    assert!(
        csv.lines().last().unwrap().starts_with("Total,100.0000,,"),
        "{csv}"
    );
}

/// One measure below target, by hand from DOMAIN.md's model, for each mechanism.
#[test]
fn worked_cases_below_target() {
    let s = ry2324();
    let margin = d("8.938");
    let alloc = d("8.938") * d("7") / d("30");
    let with = |overrides: &[&str]| -> Report {
        let o: Vec<Override> = overrides
            .iter()
            .map(|t| Override::parse(t, &s).unwrap())
            .collect();
        score(&s, &seed_rows(), margin, &o).unwrap()
    };
    // Mechanism A at 99.00 (TPL 99.50, MPL 98.00): keeps 2/3 of £2.0855m = £1.390m, loses £0.695m.
    // All five SUM1 components at 99.00 make its RPL 99.00.
    let r = with(&[
        "SUM1.DUIS=99",
        "SUM1.RDI=99",
        "SUM1.SMKI-REPO=99",
        "SUM1.SMKI-SERVICE=99",
        "SUM1.SSI=99",
    ]);
    let m = measure(&r, "SUM1");
    assert_eq!(fixed(m.kept, 3), "1.390");
    assert_eq!(fixed(m.lost, 3), "0.695");
    assert!(same(m.kept, alloc * d("2") / d("3")), "{}", m.kept);
    // At exactly TPL: all kept. At exactly MPL and below: nothing.
    let all = |v: &str| {
        ["DUIS", "RDI", "SMKI-REPO", "SMKI-SERVICE", "SSI"].map(|c| format!("SUM1.{c}={v}"))
    };
    let at = |v: &str| {
        let o = all(v);
        let refs: Vec<&str> = o.iter().map(String::as_str).collect();
        measure(&with(&refs), "SUM1").kept
    };
    assert!(same(at("99.5"), alloc));
    assert_eq!(at("98"), Decimal::ZERO);
    assert_eq!(at("90"), Decimal::ZERO);

    // Mechanism B: SDM1 north's FIRST-TIME-WAN at 85.21 makes north (100+100+85.21+100)/4 =
    // 96.3025, share (96.3025−96)/3 = 0.100833…; north holds a third of the allocation.
    let r = with(&["SDM1.FIRST-TIME-WAN.north=85.21"]);
    let m = measure(&r, "SDM1");
    assert_eq!(m.parts[0].rpl, d("96.3025"));
    let north_kept = alloc / d("3") * (d("0.3025") / d("3"));
    assert!(same(m.parts[0].kept, north_kept), "{}", m.parts[0].kept);
    assert!(same(m.kept, north_kept + alloc / d("3") * d("2")));
    assert_eq!(fixed(m.lost, 3), "0.625");

    // Mechanism A+B: PM4.3 central at 97.5 (share 0.5) loses half of central's B allocation:
    // B is a quarter of SDM2's allocation, central a third of that.
    let r = with(&["SDM2.PM4.3.central=97.5"]);
    let m = measure(&r, "SDM2");
    assert!(same(m.lost, alloc / d("4") / d("3") / d("2")), "{}", m.lost);
    assert_eq!(fixed(m.lost, 3), "0.087");

    // VMM at 1.5 of 3 keeps half of 15 %.
    let r = with(&["VMM2.score=1.5"]);
    assert!(same(
        measure(&r, "VMM2").kept,
        d("8.938") * d("0.15") / d("2")
    ));
}

#[test]
fn bad_inputs_name_their_rows() {
    let s = ry2324();
    let text = "measure,component,region,period,value\n\
                SUM1,DUIS,,2023-04,99.9\n\
                SUM1,DUIS,,RY23/24,99.9\n\
                SUM1,DUIS,,2023-04,99.8\n\
                SUM1,NOPE,,2023-04,99\n\
                SUM1,RDI,,2023-04,101\n\
                SDM1,CH-ACCEPTED,,2023-04,100\n\
                VMM1,score,,RY23/24,3.5\n\
                SUM1,SSI,,2024-04,100\n";
    let rows = inputs::parse("bad.csv", text).unwrap();
    let errs = score(&s, &rows, d("8.938"), &[]).unwrap_err().join("\n");
    for needle in [
        "bad.csv:4: the same row twice",
        "bad.csv:5: SUM1 has no component \"NOPE\"",
        "bad.csv:6: value 101 is outside 0–100",
        "bad.csv:7: SDM1.CH-ACCEPTED is regional",
        "bad.csv:8: value 3.5 is outside 0–3",
        "bad.csv:9: month 2024-04 is outside RY23/24",
        "both annual and monthly rows",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
    }
}

#[test]
fn monthly_rows_are_averaged_and_missing_months_warned() {
    let s = ry2324();
    // SUM1's DUIS given for two months only; everything else annual from the seed.
    let mut rows: Vec<_> = seed_rows()
        .into_iter()
        .filter(|r| r.component != "DUIS")
        .collect();
    let text =
        "measure,component,region,period,value\nSUM1,DUIS,,2023-04,99.5\nSUM1,DUIS,,2023-05,100\n";
    rows.extend(inputs::parse("m.csv", text).unwrap());
    let r = score(&s, &rows, d("8.938"), &[]).unwrap();
    let duis = measure(&r, "SUM1")
        .components
        .iter()
        .find(|c| c.component == "DUIS")
        .unwrap();
    assert_eq!(duis.annual, Some(d("99.75")));
    assert_eq!(duis.missing_months.len(), 10);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("SUM1 DUIS: scored from 2 month(s); missing 2023-06")),
        "{:?}",
        r.warnings
    );
    // A weighted component with no input at all is an error.
    let rows: Vec<_> = seed_rows()
        .into_iter()
        .filter(|r| r.component != "DUIS")
        .collect();
    let e = score(&s, &rows, d("8.938"), &[]).unwrap_err();
    assert!(
        e.iter().any(|e| e.contains("no input for SUM1 DUIS")),
        "{e:?}"
    );
}

#[test]
fn the_binary_prints_table_7_and_writes_score_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["score", "--scheme", "RY23/24", "--inputs"])
        .arg(root().join("tests/fixtures/seed-ry2324.csv"))
        .args(["--out", "out"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "Service availability (SUM1)",
        "23.33%",
        "2.086",
        "1.080",
        "0.261",
        "1.041",
        "81%",
        "78%",
        "Total",
    ] {
        assert!(table.contains(needle), "{needle} missing:\n{table}");
    }
    let csv = std::fs::read_to_string(dir.path().join("out/score.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/score.json")).unwrap())
            .unwrap();
    assert_eq!(json["year"], "RY23/24");
    assert_eq!(json["measures"][1]["parts"][0]["rpl"], "99.3025");

    // RY24/25 has no known margin at risk: --margin is required, and its absence is a usage error.
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["score", "--scheme", "RY24/25", "--inputs"])
        .arg(root().join("tests/fixtures/seed-ry2324.csv"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--margin"));
}

/// simulate → replay → `score --from-rollup`: the streaming components come from the replay's
/// `opr-inputs.csv` (with their counts), the others from a hand-written CSV.
#[test]
fn score_from_a_rollup_takes_the_streaming_components_from_opr_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o
    };
    run(&[
        "simulate", "--month", "2024-03", "--rate", "0.03", "--seed", "3", "--out", "ev.jsonl",
    ]);
    run(&["replay", "ev.jsonl", "--out", "out"]);
    let opr = std::fs::read_to_string(dir.path().join("out/opr-inputs.csv")).unwrap();
    assert!(opr.starts_with("measure,component,region,period,value,numerator,denominator\n"));
    // Every streaming-derived component of the scheme is there, regional ones per region.
    for prefix in [
        "SDM2,PM4.3,north,2024-03,",
        "SDM2,PM4.3,central,2024-03,",
        "SDM2,PM4.3,south,2024-03,",
        "SDM2,PM1.1-DSP,,2024-03,",
        "SDM2,PM1.4-DSP,,2024-03,",
        "SDM2,PM1.1-S1SP,,2024-03,",
        "SDM1,SRV8.11,north,2024-03,",
    ] {
        assert!(
            opr.lines().any(|l| l.starts_with(prefix)),
            "{prefix} missing:\n{opr}"
        );
    }
    // Its value is the rpl.csv figure, unrounded, and its counts are the row's.
    let rpl = std::fs::read_to_string(dir.path().join("out/rpl.csv")).unwrap();
    let rpl_row: Vec<&str> = rpl
        .lines()
        .find(|l| l.starts_with("2024-03,PM4.3,north,"))
        .unwrap()
        .split(',')
        .collect();
    let opr_row: Vec<&str> = opr
        .lines()
        .find(|l| l.starts_with("SDM2,PM4.3,north,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(fixed(d(opr_row[4]), 4), rpl_row[7]);
    assert_eq!((opr_row[5], opr_row[6]), (rpl_row[4], rpl_row[3]));

    // The other components: the seed's rows without SDM2's.
    let seed = std::fs::read_to_string(root().join("tests/fixtures/seed-ry2324.csv")).unwrap();
    let others: String = seed
        .lines()
        .filter(|l| !l.starts_with("SDM2,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("others.csv"), others).unwrap();
    let o = run(&[
        "score",
        "--scheme",
        "RY23/24",
        "--from-rollup",
        "out",
        "--inputs",
        "others.csv",
        "--out",
        "s",
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s/score.json")).unwrap())
            .unwrap();
    let sdm2 = &json["measures"][2];
    assert_eq!(sdm2["measure"], "SDM2");
    let north = sdm2["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["component"] == "PM4.3" && c["region"] == "north")
        .unwrap();
    assert_eq!(north["months"]["2024-03"].as_str().unwrap(), opr_row[4]);
    assert_eq!(north["missing_months"].as_array().unwrap().len(), 11);
    // One month of twelve: the missing months are named in a warning.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("SDM2 PM4.3 north: scored from 1 month(s); missing 2023-04"),
        "{stderr}"
    );

    // What-if from the command line prints the money difference.
    let o = run(&[
        "score",
        "--scheme",
        "RY23/24",
        "--inputs",
        root()
            .join("tests/fixtures/seed-ry2324.csv")
            .to_str()
            .unwrap(),
        "--what-if",
        "SDM1.FIRST-TIME-WAN.north=85.21",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("What-if") && text.contains("SDM1   2.086 → 1.460  (-0.625)"),
        "{text}"
    );
}

#[test]
fn pooled_components_use_the_counts_and_zero_weighted_measures_are_reported_not_scored() {
    // A scheme whose only weighted measure pools its component's months.
    let text = r#"
year = "RY23/24"
title = "pooled"
margin_at_risk = "1"
[[measure]]
id = "P"
name = "Pooled"
weight = "1"
mechanism = "A"
tpl = "99"
mpl = "96"
combine = "pooled"
  [[measure.component]]
  id = "C"
[[measure]]
id = "Z"
name = "Zero"
weight = "0"
mechanism = "B"
tpl = "99"
mpl = "96"
  [[measure.component]]
  id = "Q"
"#;
    let s = scheme::parse("pooled.toml", text, &[]).unwrap();
    let rows = inputs::parse(
        "p.csv",
        "measure,component,region,period,value,numerator,denominator\n\
         P,C,,2023-04,50,1,2\n\
         P,C,,2023-05,100,98,98\n\
         Z,Q,north,RY23/24,97\nZ,Q,central,RY23/24,98\nZ,Q,south,RY23/24,99\n",
    )
    .unwrap();
    let r = score(&s, &rows, d("1"), &[]).unwrap();
    // Pooled: 100 × (1 + 98) / (2 + 98) = 99, not the mean of 50 and 100.
    let p = measure(&r, "P");
    assert_eq!(p.parts[0].rpl, d("99"));
    assert_eq!(p.kept, d("1"));
    // Zero-weighted: its RPLs are reported, no money moves.
    let z = measure(&r, "Z");
    assert!(z.assessed);
    assert_eq!(
        srv_opr::score::render::assessment(z),
        "North = 97.00% Central = 98.00% South = 99.00%"
    );
    assert_eq!(
        (z.allocation, z.kept, z.lost),
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO)
    );
    // Pooling without counts is an error that says so.
    let rows = inputs::parse(
        "p.csv",
        "measure,component,region,period,value\nP,C,,2023-04,50\n",
    )
    .unwrap();
    let e = score(&s, &rows, d("1"), &[]).unwrap_err().join("\n");
    assert!(e.contains("needs numerator and denominator"), "{e}");
}

#[test]
fn a_bad_scheme_is_refused_by_the_binary_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(root().join("config/opr/RY23-24.toml")).unwrap();
    let bad = good
        .replacen("weight = \"7/30\"", "weight = \"1/4\"", 1)
        .replacen("tpl = \"99.50\"", "tpl = \"97.00\"", 1);
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["score", "--scheme", "bad.toml", "--inputs"])
        .arg(root().join("tests/fixtures/seed-ry2324.csv"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("weights add up to 61/60, not 100 %"), "{e}");
    assert!(e.contains("TPL (97.00) must be above MPL (98.00)"), "{e}");
}

#[test]
fn the_ry24_25_scheme_weighs_60_15_25() {
    let text = std::fs::read_to_string(root().join("config/opr/RY24-25.toml")).unwrap();
    let s = scheme::parse("RY24-25.toml", &text, &[]).unwrap();
    assert_eq!(s.margin_at_risk, None);
    let w = |id: &str| s.measure(id).unwrap().weight.to_string();
    assert_eq!(
        (w("SUM1"), w("SDM1"), w("SDM2"), w("VMM1"), w("VMM2")),
        (
            "1/5".into(),
            "1/5".into(),
            "1/5".into(),
            "3/20".into(),
            "1/4".into()
        )
    );
}

/// A measure scored in full keeps its whole allocation and loses exactly nothing: no
/// `-0.0000000000000000000000000001` from thirds that do not add back up (issue 33), and no
/// negative zero anywhere in `score.json`.
#[test]
fn a_full_score_loses_exactly_nothing_and_no_output_holds_a_negative_zero() {
    let r = score(&ry2324(), &seed_rows(), d("8.938"), &[]).unwrap();
    for m in &r.measures {
        assert!(m.lost >= Decimal::ZERO, "{}: lost {}", m.measure, m.lost);
        assert!(m.kept <= m.allocation, "{}: kept {}", m.measure, m.kept);
        assert_eq!(m.kept + m.lost, m.allocation, "{}", m.measure);
        for p in &m.parts {
            assert!(
                p.lost >= Decimal::ZERO,
                "{} {}: {}",
                m.measure,
                p.scope,
                p.lost
            );
        }
    }
    let sdm1 = measure(&r, "SDM1");
    assert_eq!(sdm1.lost, Decimal::ZERO, "every part full");
    assert_eq!(sdm1.kept, sdm1.allocation);
    let json = srv_opr::score::render::score_json(&r).unwrap();
    assert!(!json.contains("\"-0"), "{json}");
    assert!(!score_csv(&r).contains(",-0"), "{}", score_csv(&r));
}
