//! The exemption register (issue 29) against an oracle written here from the issue's rule,
//! independently of the code under test: it reads the register with the `toml` crate and jiff,
//! takes the SPEC oracle's judgment of every standing request (`support::oracle`) and exempts
//! each from a view under the first window in file order that applies to the view and covers
//! its `at`, measure, region, provider and SRV. Every cell of `rpl.csv`, `rpl.pmr.csv` and
//! `exemptions.csv` is held to it: from a replay, and from the store of a `run` (SQLite and
//! PostgreSQL) through `rollup --exemptions` long after the month was final.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use srv_opr::config::Config;
use srv_opr::engine::domain::Basis;
use srv_opr::simulate::{Quality, SimConfig, Simulator};

use crate::support::oracle::{Judged, oracle};

/// A register like an analyst's: four reasons, two views, overlapping windows, one across the
/// March/April edge (midnight BST, 23:00 UTC), scopes by provider, SRV, region and measure.
const REGISTER: &str = r#"
# The incident that took DUIS down across the month edge: every view, every scope.
[[exemption]]
id = "INC000001065262"
reason = "exceptional_event"
from = "2024-03-31T21:30:00Z"
to = "2024-04-01T02:00:00+01:00"
approved_by = "Head of Performance"
approved_at = "2024-04-05"
note = "Category 2; E20 in every region"

# Planned maintenance of the S1SP, overlapping the incident: the PMR view only.
[[exemption]]
id = "CHG0034127"
reason = "planned_maintenance"
from = "2024-03-31T23:30:00Z"
to = "2024-04-01T03:00:00Z"
providers = ["s1sp"]
views = ["pmr"]

# A duplicate of an earlier incident, two SRVs in two regions, both views named.
[[exemption]]
id = "INC0000001066209"
reason = "duplicate_incident"
from = "2024-03-30T10:00:00Z"
to = "2024-03-30T16:00:00Z"
srvs = ["8.11", "4.1.1"]
regions = ["south", "central"]
views = ["opr", "pmr"]

[[exemption]]
id = "OTHER-3"
reason = "other"
from = "2024-04-02T00:00:00+01:00"
to = "2024-04-02T06:00:00+01:00"
measures = ["PM4.3", "MP242-BILLING", "PM1.1-S1SP"]
views = ["pmr"]
"#;

/// One window as the oracle reads it.
struct Window {
    id: String,
    reason: String,
    from: i64,
    to: i64,
    views: Option<Vec<String>>,
    scope: BTreeMap<String, Vec<String>>,
}

/// The register read with the `toml` crate and jiff, and its views (`opr` first, then as first
/// named).
fn read_register(text: &str) -> (Vec<Window>, Vec<String>) {
    let t: toml::Table = text.parse().unwrap();
    let mut views = vec!["opr".to_string()];
    let mut out = Vec::new();
    for e in t["exemption"].as_array().unwrap() {
        let s = |k: &str| e.get(k).and_then(|v| v.as_str()).map(String::from);
        let list = |k: &str| {
            e.get(k).map(|v| {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            })
        };
        let ns = |k: &str| {
            let ts: jiff::Timestamp = s(k).unwrap().parse().unwrap();
            ts.as_nanosecond() as i64
        };
        let named = list("views");
        for v in named.iter().flatten() {
            if !views.contains(v) {
                views.push(v.clone());
            }
        }
        let mut scope = BTreeMap::new();
        for k in ["measures", "regions", "providers", "srvs"] {
            if let Some(l) = list(k) {
                scope.insert(k.to_string(), l);
            }
        }
        out.push(Window {
            id: s("id").unwrap(),
            reason: s("reason").unwrap(),
            from: ns("from"),
            to: ns("to"),
            views: named,
            scope,
        });
    }
    (out, views)
}

impl Window {
    fn applies(&self, view: &str, j: &Judged) -> bool {
        let in_scope =
            |k: &str, v: &str| self.scope.get(k).is_none_or(|l| l.iter().any(|x| x == v));
        self.views
            .as_ref()
            .is_none_or(|vs| vs.iter().any(|v| v == view))
            && j.at >= self.from
            && j.at < self.to
            && in_scope("measures", &j.measure)
            && in_scope("regions", j.region.as_str())
            && in_scope("providers", j.provider.as_str())
            && in_scope("srvs", &j.srv)
    }
}

/// `100 × n / d` with four decimals, half away from zero, in integers.
fn percent(n: u64, d: u64) -> String {
    let scaled = (n as u128 * 1_000_000 * 2 + d as u128) / (2 * d as u128);
    format!("{}.{:04}", scaled / 10_000, scaled % 10_000)
}

/// A row of a view: requests, within target, succeeded, no response, exempted.
type Cells = [u64; 5];

/// A view's rows: (month, measure, region) → counts and RPL text.
type ViewRows = BTreeMap<(String, String, String), (Cells, String)>;

/// Every view's rows, and the lines of `exemptions.csv`.
type Expected = (BTreeMap<String, ViewRows>, Vec<String>);

/// The oracle's views: per view, (month, measure, region) → counts; and `exemptions.csv` as
/// a set of lines.
fn expected(cfg: &Config, events: &[u8], register: &str) -> Expected {
    let lines: Vec<&[u8]> = events
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let o = oracle(cfg, &lines);
    let (windows, views) = read_register(register);
    let basis: BTreeMap<&str, Basis> = cfg
        .definitions
        .measures
        .iter()
        .map(|m| (m.id.as_str(), m.basis))
        .collect();
    let mut out = BTreeMap::new();
    let mut exemptions: BTreeMap<(String, String, usize, String, String), u64> = BTreeMap::new();
    let mut before: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for j in &o.judged {
        for region in [j.region.as_str(), "all"] {
            *before
                .entry((j.month.to_string(), j.measure.clone(), region.to_string()))
                .or_default() += 1;
        }
    }
    for view in &views {
        let mut rows: BTreeMap<(String, String, String), Cells> = BTreeMap::new();
        for j in &o.judged {
            let by = windows.iter().position(|w| w.applies(view, j));
            for region in [j.region.as_str(), "all"] {
                let key = (j.month.to_string(), j.measure.clone(), region.to_string());
                let c = rows.entry(key).or_default();
                match by {
                    Some(w) => {
                        c[4] += 1;
                        *exemptions
                            .entry((
                                view.clone(),
                                j.month.to_string(),
                                w,
                                j.measure.clone(),
                                region.to_string(),
                            ))
                            .or_default() += 1;
                    }
                    None => {
                        c[0] += 1;
                        c[1] += j.within as u64;
                        c[2] += j.succeeded as u64;
                        c[3] += j.no_response as u64;
                    }
                }
            }
        }
        let with_rpl = rows
            .into_iter()
            .filter(|(_, c)| c[0] > 0)
            .map(|(k, c)| {
                let hits = match basis[k.1.as_str()] {
                    Basis::Trt => c[1],
                    Basis::Success => c[2],
                };
                let rpl = percent(hits, c[0]);
                (k, (c, rpl))
            })
            .collect();
        out.insert(view.clone(), with_rpl);
    }
    let exemption_lines = exemptions
        .into_iter()
        .map(|((view, month, w, measure, region), n)| {
            let of = before[&(month.clone(), measure.clone(), region.clone())];
            format!(
                "{view},{month},{},{},{measure},{region},{n},{}",
                windows[w].id,
                windows[w].reason,
                percent(n, of)
            )
        })
        .collect();
    (out, exemption_lines)
}

/// `rpl.csv` (or a view's) as the oracle's rows, by its header's names.
fn rows_of(text: &str) -> ViewRows {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (m, me, r) = (col("month"), col("measure"), col("region"));
    let cols = [
        col("requests"),
        col("within_target"),
        col("succeeded"),
        col("no_response"),
        col("exempted"),
    ];
    let rpl = col("rpl_percent");
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let c = cols.map(|i| f[i].parse::<u64>().unwrap());
            (
                (f[m].to_string(), f[me].to_string(), f[r].to_string()),
                (c, f[rpl].to_string()),
            )
        })
        .collect()
}

/// Traffic from 28 March to 4 April 2024 with every trap, the south degraded.
fn events() -> Vec<u8> {
    let p = |s: &str| srv_opr::engine::time::parse_rfc3339(s.as_bytes()).unwrap();
    let mut quality = [Quality::default(); 3];
    quality[2] = Quality {
        slow: 0.03,
        error: 0.02,
        lost: 0.005,
    };
    let mut bytes = Vec::new();
    Simulator::new(SimConfig {
        seed: 2929,
        start: p("2024-03-28T00:00:00Z"),
        end: p("2024-04-04T00:00:00Z"),
        rate: 0.05,
        quality,
        bad: 0.005,
        duplicates: 0.005,
        disorder: srv_opr::engine::time::Dur::from_secs(30),
        ..SimConfig::default()
    })
    .run(&mut bytes)
    .unwrap();
    bytes
}

fn srv(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The outputs in `out` equal the oracle's, for `months` (all when `None`).
fn assert_equals_oracle(out: &Path, want: &Expected, months: Option<&[&str]>) {
    let keep = |m: &str| months.is_none_or(|ms| ms.contains(&m));
    for (view, rows) in &want.0 {
        let file = if view == "opr" {
            "rpl.csv".to_string()
        } else {
            format!("rpl.{view}.csv")
        };
        let got = rows_of(&std::fs::read_to_string(out.join(&file)).unwrap());
        let got: BTreeMap<_, _> = got.into_iter().filter(|(k, _)| keep(&k.0)).collect();
        let rows: BTreeMap<_, _> = rows
            .iter()
            .filter(|(k, _)| keep(&k.0))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got.len(), rows.len(), "{file}: rows");
        for (k, w) in &rows {
            assert_eq!(
                got.get(k),
                Some(w),
                "{file} {k:?}: [requests, within, succeeded, no_response, exempted], rpl"
            );
        }
    }
    let text = std::fs::read_to_string(out.join("exemptions.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("view,month,exemption,reason,measure,region,requests_exempted,share_percent")
    );
    let mut got: Vec<String> = lines
        .filter(|l| keep(l.split(',').nth(1).unwrap()))
        .map(String::from)
        .collect();
    let mut want: Vec<String> = want
        .1
        .iter()
        .filter(|l| keep(l.split(',').nth(1).unwrap()))
        .cloned()
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "exemptions.csv");
}

#[test]
fn a_register_replayed_over_trap_laden_events_equals_the_oracle_cell_for_cell() {
    let cfg = Config::builtin().unwrap();
    let bytes = events();
    let want = expected(&cfg, &bytes, REGISTER);
    // The register does exempt something in each view, across the edge and on both sides.
    let views: Vec<&String> = want.0.keys().collect();
    assert_eq!(views, ["opr", "pmr"]);
    for id in [
        "INC000001065262",
        "CHG0034127",
        "INC0000001066209",
        "OTHER-3",
    ] {
        assert!(
            want.1.iter().any(|l| l.contains(id)),
            "{id} exempts nothing"
        );
    }
    assert!(
        want.1
            .iter()
            .any(|l| l.contains(",2024-03,INC000001065262,"))
    );
    assert!(
        want.1
            .iter()
            .any(|l| l.contains(",2024-04,INC000001065262,"))
    );

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("events.jsonl"), &bytes).unwrap();
    std::fs::write(d.join("register.toml"), REGISTER).unwrap();
    let o = srv(
        d,
        &[
            "replay",
            "events.jsonl",
            "--exemptions",
            "register.toml",
            "--out",
            "out",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_equals_oracle(&d.join("out"), &want, None);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("out/summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["exemptions_sha256"].as_str().map(str::len),
        Some(64)
    );
    assert_eq!(summary["views"], serde_json::json!(["opr", "pmr"]));

    // No register: the same as before issue 29 but for the column, every row exempting none.
    let o = srv(d, &["replay", "events.jsonl", "--out", "plain"], &[]);
    assert!(o.status.success());
    let plain = std::fs::read_to_string(d.join("plain/rpl.csv")).unwrap();
    assert!(
        plain
            .lines()
            .skip(1)
            .all(|l| l.split(',').nth(14) == Some("0"))
    );
    assert!(!d.join("plain/rpl.pmr.csv").exists());
    assert_eq!(
        std::fs::read_to_string(d.join("plain/exemptions.csv")).unwrap(),
        "view,month,exemption,reason,measure,region,requests_exempted,share_percent\n"
    );
    let none = expected(&cfg, &bytes, "exemption = []");
    assert_equals_oracle(&d.join("plain"), &none, None);
}

#[test]
fn a_register_that_cannot_be_read_stops_the_command_never_a_silent_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("e.jsonl"), "").unwrap();
    std::fs::write(
        d.join("bad.toml"),
        "[[exemption]]\nid = \"A\"\nreason = \"storm\"\n",
    )
    .unwrap();
    for (args, says) in [
        (&["--exemptions", "missing.toml"][..], "missing.toml"),
        (
            &["--exemptions", "bad.toml"][..],
            "exemption[0] (id \"A\").reason",
        ),
    ] {
        let o = srv(
            d,
            &[&["replay", "e.jsonl", "--out", "o"][..], args].concat(),
            &[],
        );
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{e}");
        assert!(e.contains(says), "{e}");
        assert!(!d.join("o/rpl.csv").exists());
    }
    // The configuration directory's exemptions.toml is used when present, and is as strict.
    std::fs::create_dir(d.join("config")).unwrap();
    std::fs::copy(d.join("bad.toml"), d.join("config/exemptions.toml")).unwrap();
    let o = srv(d, &["replay", "e.jsonl", "--out", "o"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("config/exemptions.toml"));
}

/// `run` over the events on the real broker into `store` (no register: the counts per minute are
/// what it keeps), then `rollup` of each month with the register: the oracle's figures, for a
/// month final long before the register existed.
fn from_the_store_of_a_run(store_url: &str, env: &[(&str, &str)]) {
    let cfg = Config::builtin().unwrap();
    let bytes = events();
    let want = expected(&cfg, &bytes, REGISTER);
    let brokers = crate::support::brokers();
    let topic = crate::support::unique("exempt");
    crate::support::create_topic(&topic, 3);
    crate::support::create_topic(&format!("{topic}-dead"), 1);
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut cc = rdkafka::config::ClientConfig::new();
    cc.set("bootstrap.servers", &brokers);
    crate::support::produce_lines(&cc, &topic, 3, &lines);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("register.toml"), REGISTER).unwrap();
    let mut env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    env.extend([
        ("SRV_OPR__KAFKA__BROKERS", brokers.clone()),
        ("SRV_OPR__KAFKA__TOPICS", format!("[\"{topic}\"]")),
        ("SRV_OPR__KAFKA__GROUP_ID", crate::support::unique("g")),
        ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", format!("{topic}-dead")),
        ("SRV_OPR__HTTP__LISTEN", String::new()),
        ("SRV_OPR__STATE__URL", store_url.to_string()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let o = srv(d, &["run", "--until-caught-up", "--out", "run-out"], &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // March is final (the events run to 4 April); April is not, and its undecided requests are
    // decided only at the end of a replay, so only its exemptions could be compared.
    let month = "2024-03";
    let rollup = |out: &str, register: Option<&str>| {
        let mut args = vec!["rollup", "--month", month, "--out", out];
        if let Some(r) = register {
            args.extend(["--exemptions", r]);
        }
        let o = srv(d, &args, &env);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let said = rollup("rollup-1", Some("register.toml"));
    assert_equals_oracle(&d.join("rollup-1"), &want, Some(&[month]));
    // March was final under no register: applying one restates it, and every row whose figures
    // it changes is revised once (in each view), the others not.
    assert!(
        said.contains("2024-03 restated by the exemption register applied now")
            && said.contains("added INC000001065262, CHG0034127, INC0000001066209, OTHER-3"),
        "{said}"
    );
    let revisions = |out: &str, file: &str| -> BTreeMap<(String, String), (u64, u64)> {
        let text = std::fs::read_to_string(d.join(out).join(file)).unwrap();
        let mut lines = text.lines();
        let h: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |n: &str| h.iter().position(|x| *x == n).unwrap();
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    (f[col("measure")].to_string(), f[col("region")].to_string()),
                    (
                        f[col("revision")].parse().unwrap(),
                        f[col("exempted")].parse().unwrap(),
                    ),
                )
            })
            .collect()
    };
    for file in ["rpl.csv", "rpl.pmr.csv"] {
        for (k, (rev, exempted)) in revisions("rollup-1", file) {
            assert_eq!(rev, u64::from(exempted > 0), "{file} {k:?}");
        }
    }
    // `run` with the register records it against the final month: the restatement is then in
    // the store's history, and a rollup with the same register says when it was recorded.
    let o = srv(
        d,
        &[
            "run",
            "--until-caught-up",
            "--exemptions",
            "register.toml",
            "--out",
            "run-2",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = rollup("rollup-2", Some("register.toml"));
    assert!(
        said.contains("2024-03 restated by the exemption register recorded "),
        "{said}"
    );
    assert_equals_oracle(&d.join("rollup-2"), &want, Some(&[month]));
    assert_eq!(
        revisions("rollup-2", "rpl.csv"),
        revisions("rollup-1", "rpl.csv")
    );
    // Withdrawn again (a rollup with none): back to the figures without, each changed row revised
    // a second time.
    let said = rollup("rollup-3", None);
    assert!(said.contains("withdrawn INC000001065262"), "{said}");
    let none = expected(&cfg, &events(), "exemption = []");
    assert_equals_oracle(&d.join("rollup-3"), &none, Some(&[month]));
    let before = revisions("rollup-1", "rpl.csv");
    for (k, (rev, _)) in revisions("rollup-3", "rpl.csv") {
        let was_exempted = before.get(&k).is_none_or(|(_, e)| *e > 0);
        assert_eq!(rev, if was_exempted { 2 } else { 0 }, "{k:?}");
    }
}

#[test]
fn a_register_applied_from_the_sqlite_store_of_a_run_equals_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    from_the_store_of_a_run(&url, &[]);
}

#[test]
fn a_register_applied_from_the_postgres_store_of_a_run_equals_the_oracle() {
    from_the_store_of_a_run(&crate::support::fresh_postgres_database(), &[]);
}

/// `run` with the register live, on the real broker with a SQLite store: `/metrics`
/// (`srv_month_to_date_exempted`, from the instance's own tallies) and `/status.json` (the
/// group's, from the store's counts per minute) hold the oracle's `opr` exemptions of April (the
/// month of the watermark) for every measure and region, and every region's requests and hits
/// leave them out; each exemption is listed, none active (their windows are long past).
#[test]
fn a_live_run_shows_the_month_to_dates_exemptions_as_the_oracle_counts_them() {
    use crate::support::{free_port, get_json, http_get, spawn_srv_run, wait_until};
    let cfg = Config::builtin().unwrap();
    let bytes = events();
    let (views, _) = expected(&cfg, &bytes, REGISTER);
    let april = |v: &str| -> BTreeMap<(String, String), Cells> {
        views[v]
            .iter()
            .filter(|((m, _, _), _)| m == "2024-04")
            .map(|((_, me, r), (c, _))| ((me.clone(), r.clone()), *c))
            .collect()
    };
    let opr = april("opr");
    assert!(
        opr.values().any(|c| c[4] > 0),
        "the test needs exemptions in April"
    );
    let brokers = crate::support::brokers();
    let topic = crate::support::unique("exempt-live");
    crate::support::create_topic(&topic, 3);
    crate::support::create_topic(&format!("{topic}-dead"), 1);
    let text = String::from_utf8(bytes).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut cc = rdkafka::config::ClientConfig::new();
    cc.set("bootstrap.servers", &brokers);
    crate::support::produce_lines(&cc, &topic, 3, &lines);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let register = d.join("register.toml");
    std::fs::write(&register, REGISTER).unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("SRV_OPR__KAFKA__BROKERS", brokers.clone()),
        ("SRV_OPR__KAFKA__TOPICS", format!("[\"{topic}\"]")),
        ("SRV_OPR__KAFKA__GROUP_ID", crate::support::unique("g")),
        ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", format!("{topic}-dead")),
        ("SRV_OPR__HTTP__LISTEN", addr.clone()),
        ("SRV_OPR__STATE__URL", "sqlite://state.db".to_string()),
        ("SRV_OPR__STATE__CHECKPOINT_INTERVAL", "1s".to_string()),
        (
            "SRV_OPR__EXEMPTIONS__FILE",
            register.to_string_lossy().into_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut run = spawn_srv_run(d, &env, "run-out", "run.log");
    let metric = |text: &str, name: &str, measure: &str, region: &str| -> Option<u64> {
        let labels = format!("{name}{{measure=\"{measure}\",region=\"{region}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&labels))
            .and_then(|v| v.parse().ok())
    };
    let regions = ["north", "central", "south"];
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let s = wait_until(d, &["run.log"], "the oracle's exemptions live", 180, || {
            let (code, text) = http_get(&addr, "/metrics");
            if code != 200 {
                return Err(format!("/metrics {code}"));
            }
            let s = get_json(&addr, "/status.json")?;
            if s["month"]["month"] != "2024-04" || s["month"]["source"] != "group" {
                return Err(format!("month {}", s["month"]));
            }
            for ((measure, region), c) in &opr {
                if !regions.contains(&region.as_str()) {
                    continue;
                }
                let live = metric(&text, "srv_month_to_date_exempted", measure, region);
                let page = s["measures"]
                    .as_array()
                    .and_then(|ms| ms.iter().find(|m| m["measure"] == measure.as_str()))
                    .and_then(|m| m["regions"].as_array())
                    .and_then(|rs| rs.iter().find(|r| r["region"] == region.as_str()))
                    .map(|r| r["exempted"].as_u64());
                if live != Some(c[4]) || page != Some(Some(c[4])) {
                    return Err(format!(
                        "{measure} {region}: /metrics {live:?}, /status.json {page:?}, oracle {}",
                        c[4]
                    ));
                }
            }
            Ok((s, text))
        });
        let (s, text) = s;
        use sha2::Digest;
        let sha: String = sha2::Sha256::digest(REGISTER.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(s["instance"]["exemptions_sha256"], sha.as_str());
        let listed: Vec<(String, bool)> = s["exemptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["id"].as_str().unwrap().to_string(), e["active"] == true))
            .collect();
        assert_eq!(
            listed,
            [
                "INC000001065262",
                "CHG0034127",
                "INC0000001066209",
                "OTHER-3"
            ]
            .map(|id| (id.to_string(), false))
        );
        for id in ["INC000001065262", "OTHER-3"] {
            assert!(
                text.lines().any(|l| l.starts_with("srv_exemption_active{")
                    && l.contains(&format!("exemption=\"{id}\""))
                    && l.ends_with(" 0")),
                "{id} in {text}"
            );
        }
        // The requests the page counts are the oracle's opr view's, exempted ones left out, for
        // every request of April the run decided (all but those still awaiting an answer at the
        // stream's end, on 3 and 4 April, long after the windows).
        let requests = |measure: &str, region: &str| -> u64 {
            s["measures"]
                .as_array()
                .and_then(|ms| ms.iter().find(|m| m["measure"] == measure))
                .and_then(|m| m["regions"].as_array())
                .and_then(|rs| rs.iter().find(|r| r["region"] == region))
                .and_then(|r| r["requests"].as_u64())
                .unwrap()
        };
        for ((measure, region), c) in &opr {
            if regions.contains(&region.as_str()) {
                assert!(requests(measure, region) <= c[0], "{measure} {region}");
            }
        }
    }));
    let _ = run.kill();
    let _ = run.wait();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e);
    }
}
