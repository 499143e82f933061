//! Interface availability (issue 30) against an oracle written here from the issue's rule,
//! minute by minute and independently of the code under test: a minute of the local month
//! (Europe/London, read with jiff) is down when the interface was down for all of it, and is not
//! downtime when it lies in a window of the register that applies to the view and names the
//! interface (or names no interface); RT is the month's elapsed minutes. A regulatory year of
//! events with every trap (blips, minute, month and clock-change edges, repeated downs, lines out
//! of order, maintenance inside and across an outage, a PMR-only window, a window scoped only by
//! measure) is replayed with its register; `availability.csv` and `availability.pmr.csv` must
//! equal the oracle's line for line, and `score` must take SUM1 from them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use rust_decimal::Decimal;

const REGISTER: &str = r#"
# Planned maintenance inside the August incident, on two of the three interfaces it hit.
[[exemption]]
id = "CHG-IN"
reason = "planned_maintenance"
from = "2023-08-14T12:00:00+01:00"
to = "2023-08-14T13:00:00+01:00"
interfaces = ["DUIS", "RDI"]

# Maintenance that ends inside an outage.
[[exemption]]
id = "CHG-ACROSS"
reason = "planned_maintenance"
from = "2023-11-05T01:30:00Z"
to = "2023-11-05T04:00:00Z"
interfaces = ["SMKI-REPO"]

# Out of the PMR only.
[[exemption]]
id = "INC-PMR"
reason = "exceptional_event"
from = "2024-01-10T08:00:00Z"
to = "2024-01-10T10:00:00Z"
interfaces = ["SSI"]
views = ["pmr"]

# Scoped by measure only: no `interfaces` key, so every interface (absent = all).
[[exemption]]
id = "REQ-SCOPED"
reason = "other"
from = "2023-06-01T10:15:00Z"
to = "2023-06-01T11:00:00Z"
measures = ["PM4.3"]
"#;

/// The year's events, in file order (some deliberately out of order).
const EVENTS: &[(&str, &str, &str)] = &[
    ("SSI", "up", "2023-04-01T00:00:00+01:00"),
    // A blip inside one minute, and one across a minute edge: no complete minute.
    ("DUIS", "down", "2023-04-12T10:00:10Z"),
    ("DUIS", "up", "2023-04-12T10:00:50Z"),
    ("RDI", "down", "2023-04-20T10:00:30Z"),
    ("RDI", "up", "2023-04-20T10:01:30Z"),
    // Across minute edges, the up line first: 4 complete minutes.
    ("RDI", "up", "2023-05-03T10:05:10Z"),
    ("RDI", "down", "2023-05-03T10:00:30Z"),
    // Under a window scoped only by measure.
    ("SMKI-SERVICE", "down", "2023-06-01T10:00:00Z"),
    ("SMKI-SERVICE", "up", "2023-06-01T10:30:00Z"),
    // The seed's August incident on three interfaces, DUIS's down repeated.
    ("DUIS", "down", "2023-08-14T09:12:00+01:00"),
    ("RDI", "down", "2023-08-14T09:12:00+01:00"),
    ("SMKI-REPO", "down", "2023-08-14T09:12:00+01:00"),
    ("DUIS", "down", "2023-08-14T09:30:00+01:00"),
    ("SMKI-REPO", "up", "2023-08-14T15:40:00+01:00"),
    ("DUIS", "up", "2023-08-14T15:40:00+01:00"),
    ("RDI", "up", "2023-08-14T15:40:00+01:00"),
    // Across the August/September edge (midnight BST).
    ("SSI", "down", "2023-08-31T23:50:00+01:00"),
    ("SSI", "up", "2023-09-01T00:20:00+01:00"),
    // Across the autumn clock change: 00:30 BST to 02:30 GMT is three hours.
    ("SMKI-SERVICE", "down", "2023-10-29T00:30:00+01:00"),
    ("SMKI-SERVICE", "up", "2023-10-29T02:30:00+00:00"),
    // An outage whose start a maintenance window covers.
    ("SMKI-REPO", "down", "2023-11-05T03:00:00Z"),
    ("SMKI-REPO", "up", "2023-11-05T05:00:00Z"),
    // The PMR-only window over half an outage.
    ("SSI", "down", "2024-01-10T09:00:00Z"),
    ("SSI", "up", "2024-01-10T11:00:00Z"),
    // Repeated ups and downs, out of order.
    ("RDI", "up", "2024-02-01T10:30:00Z"),
    ("RDI", "down", "2024-02-01T10:10:00Z"),
    ("RDI", "up", "2024-02-01T10:40:00Z"),
    ("RDI", "down", "2024-02-01T10:00:00Z"),
    // Across the spring clock change: 00:30 GMT to 03:00 BST is 90 minutes.
    ("DUIS", "down", "2024-03-31T00:30:00+00:00"),
    ("DUIS", "up", "2024-03-31T03:00:00+01:00"),
    // The year's end: known up to midnight BST on 1 April.
    ("SSI", "up", "2024-04-01T00:00:00+01:00"),
];

const INTERFACES: [&str; 5] = ["DUIS", "RDI", "SMKI-REPO", "SMKI-SERVICE", "SSI"];

fn ts(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_second()
}

/// A window as the oracle reads the register: `[from, to)` in seconds, its views (`None`: all)
/// and interfaces (`None`: all).
struct Window {
    from: i64,
    to: i64,
    views: Option<Vec<String>>,
    interfaces: Option<Vec<String>>,
}

fn windows() -> Vec<Window> {
    let doc: toml::Table = REGISTER.parse().unwrap();
    let list = |e: &toml::Table, k: &str| {
        e.get(k).map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
    };
    doc["exemption"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = e.as_table().unwrap();
            Window {
                from: ts(e["from"].as_str().unwrap()),
                to: ts(e["to"].as_str().unwrap()),
                views: list(e, "views"),
                interfaces: list(e, "interfaces"),
            }
        })
        .collect()
}

/// The oracle's `availability.csv` for `view`, minute by minute.
fn oracle(view: &str) -> Vec<String> {
    let tz = jiff::tz::TimeZone::get("Europe/London").unwrap();
    let month_start = |y: i16, m: i8| {
        jiff::civil::date(y, m, 1)
            .to_zoned_datetime(tz.clone())
            .unwrap()
            .timestamp()
            .as_second()
    };
    let bound = EVENTS.iter().map(|(_, _, at)| ts(at)).max().unwrap();
    let ws = windows();
    let mut lines = Vec::new();
    for k in 0..12 {
        let (y, m) = if k < 9 { (2023, 4 + k) } else { (2024, k - 8) };
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let (start, end) = (month_start(y, m), month_start(ny, nm).min(bound));
        for interface in INTERFACES {
            // State changes, down winning at one instant.
            let mut changes: BTreeMap<i64, bool> = BTreeMap::new();
            for (i, s, at) in EVENTS {
                if *i == interface {
                    let e = changes.entry(ts(at)).or_insert(false);
                    *e |= *s == "down";
                }
            }
            let down_at = |t: i64| changes.range(..=t).next_back().is_some_and(|(_, d)| *d);
            let (mut rt, mut down, mut exempt) = (0u32, 0u32, 0u32);
            let mut s = start;
            while s + 60 <= end {
                rt += 1;
                let whole = down_at(s) && changes.range(s + 1..s + 60).all(|(_, d)| *d);
                if whole {
                    down += 1;
                    let ex = ws.iter().any(|w| {
                        w.views.as_ref().is_none_or(|v| v.iter().any(|x| x == view))
                            && w.interfaces
                                .as_ref()
                                .is_none_or(|v| v.iter().any(|x| x == interface))
                            && s >= w.from
                            && s < w.to
                    });
                    exempt += u32::from(ex);
                }
                s += 60;
            }
            let pct =
                Decimal::from(rt - (down - exempt)) * Decimal::ONE_HUNDRED / Decimal::from(rt);
            lines.push(format!(
                "{y}-{m:02},{interface},{rt},{down},{exempt},{},true",
                pct.normalize()
            ));
        }
    }
    lines
}

fn srv(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn a_year_of_availability_events_replayed_with_its_register_equals_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text: String = EVENTS
        .iter()
        .map(|(i, s, at)| {
            format!("{{\"type\":\"availability\",\"interface\":\"{i}\",\"state\":\"{s}\",\"at\":\"{at}\"}}\n")
        })
        .collect();
    // Bad input is a dead letter with its reason, and changes nothing.
    text.push_str(
        "{\"type\":\"availability\",\"interface\":\"NOPE\",\"state\":\"down\",\"at\":\"2023-09-09T09:00:00Z\"}\n\
         {\"type\":\"availability\",\"interface\":\"DUIS\",\"state\":\"sideways\",\"at\":\"2023-09-09T09:00:00Z\"}\n\
         {\"type\":\"availability\",\"interface\":\"DUIS\",\"state\":\"down\",\"at\":\"2023-09-09 09:00\"}\n",
    );
    std::fs::write(d.join("year.jsonl"), text).unwrap();
    std::fs::write(d.join("register.toml"), REGISTER).unwrap();
    let o = srv(
        d,
        &[
            "replay",
            "year.jsonl",
            "--exemptions",
            "register.toml",
            "--out",
            "out",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (view, file) in [("opr", "availability.csv"), ("pmr", "availability.pmr.csv")] {
        let got = std::fs::read_to_string(d.join("out").join(file)).unwrap();
        let mut lines = got.lines();
        assert_eq!(
            lines.next(),
            Some(
                "month,interface,minutes,down_minutes,exempted_minutes,availability_percent,\
                 final,complete"
            )
        );
        // `complete` (issue 33) is summary.json's coverage of the month: the figures before it
        // are the oracle's.
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("out/summary.json")).unwrap())
                .unwrap();
        let got: Vec<&str> = lines.collect();
        let want = oracle(view);
        for (g, w) in got.iter().zip(&want) {
            let (figures, complete) = g.rsplit_once(',').unwrap();
            assert_eq!(figures, w, "{file}");
            let month = &g[..7];
            let covered = summary["coverage"][month]["complete"] == true;
            assert_eq!(complete, covered.to_string(), "{file}: {g}");
        }
        assert_eq!(got.len(), want.len(), "{file}: {got:?}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["dead_letters"]["unknown_interface"], 1);
    assert_eq!(summary["dead_letters"]["bad_state"], 1);
    assert_eq!(summary["dead_letters"]["bad_timestamp"], 1);
    assert_eq!(
        summary["events_by_type_result"]["availability/accepted"]
            .as_u64()
            .unwrap()
            + summary["events_by_type_result"]["availability/late"]
                .as_u64()
                .unwrap_or(0),
        EVENTS.len() as u64
    );

    // SUM1 scored from the events: the other components from the seed's figures (SUM1's own
    // lines taken out: given twice is an error naming both sources).
    let seed = format!(
        "{}/tests/fixtures/seed-ry2324.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let without: String = std::fs::read_to_string(&seed)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("SUM1,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.join("others.csv"), &without).unwrap();
    let inputs = std::fs::read_to_string(d.join("out/opr-inputs.csv")).unwrap();
    let sum1: Vec<&str> = inputs.lines().filter(|l| l.starts_with("SUM1,")).collect();
    assert_eq!(sum1.len(), 60, "{inputs}");
    // The August incident on DUIS: 388 complete minutes, 60 of them maintenance.
    assert!(
        sum1.iter()
            .any(|l| l.starts_with("SUM1,DUIS,,2023-08,99.2652329749")
                && l.ends_with(",44312,44640")),
        "{sum1:?}"
    );
    let o = srv(
        d,
        &[
            "score",
            "--scheme",
            "RY23/24",
            "--inputs",
            "others.csv",
            "--from-rollup",
            "out",
            "--out",
            "score",
            // The availability events alone cover no month (issue 33's `complete`).
            "--allow-incomplete",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let score: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("score/score.json")).unwrap())
            .unwrap();
    let m = score["measures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["measure"] == "SUM1")
        .unwrap()
        .clone();
    let dec = |v: &serde_json::Value| v.as_str().unwrap().parse::<Decimal>().unwrap();
    assert!(dec(&m["lost"]).is_zero(), "{m}");
    assert!(dec(&m["kept"]) > Decimal::ZERO, "{m}");
    // SUM1's RPL is the mean of the interfaces' annual figures, each the mean of its months.
    let annual: Vec<Decimal> = m["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| dec(&c["annual"]))
        .collect();
    assert_eq!(annual.len(), 5);
    let rpl = dec(&m["parts"][0]["rpl"]);
    let mean = annual.iter().sum::<Decimal>() / Decimal::from(5);
    assert!((rpl - mean).abs() < Decimal::new(1, 20), "{rpl} {mean}");
    // Given both ways: an error that names both sources.
    let o = srv(
        d,
        &[
            "score",
            "--scheme",
            "RY23/24",
            "--inputs",
            &format!(
                "{}/config/opr/RY23-24-external.csv",
                env!("CARGO_MANIFEST_DIR")
            ),
            "--from-rollup",
            "out",
            "--allow-incomplete",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("SUM1")
            && err.contains("RY23-24-external.csv")
            && err.contains("opr-inputs.csv"),
        "{err}"
    );
}

/// The same year through the real broker into `run` with a SQLite store: SIGKILLed after a
/// checkpoint in the middle of the August outage (DUIS, RDI and SMKI-REPO down), restarted on the
/// rest; `rollup` of each month gives the replay's lines.
#[test]
fn run_killed_mid_outage_and_restarted_gives_the_replays_availability_from_rollup() {
    use crate::support::{
        KillOnDrop, brokers, create_topic, free_port, get_json, produce_lines, spawn_srv_run,
        unique, wait_until,
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("register.toml"), REGISTER).unwrap();
    let lines: Vec<String> = EVENTS
        .iter()
        .map(|(i, s, at)| {
            format!("{{\"type\":\"availability\",\"interface\":\"{i}\",\"state\":\"{s}\",\"at\":\"{at}\"}}")
        })
        .collect();
    std::fs::write(d.join("year.jsonl"), lines.join("\n") + "\n").unwrap();
    let o = srv(
        d,
        &[
            "replay",
            "year.jsonl",
            "--exemptions",
            "register.toml",
            "--out",
            "replay",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Up to DUIS's repeated down: the outage is open on three interfaces.
    let cut = EVENTS
        .iter()
        .position(|(i, s, at)| *i == "DUIS" && *s == "down" && at.starts_with("2023-08-14T09:30"))
        .unwrap()
        + 1;
    let brokers = brokers();
    let topic = unique("availability");
    create_topic(&topic, 3);
    create_topic(&format!("{topic}-dead"), 1);
    let mut cc = rdkafka::config::ClientConfig::new();
    cc.set("bootstrap.servers", &brokers);
    let text: Vec<&str> = lines.iter().map(String::as_str).collect();
    produce_lines(&cc, &topic, 3, &text[..cut]);
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env: Vec<(String, String)> = [
        ("SRV_OPR__KAFKA__BROKERS", brokers.clone()),
        ("SRV_OPR__KAFKA__TOPICS", format!("[\"{topic}\"]")),
        ("SRV_OPR__KAFKA__GROUP_ID", unique("g")),
        ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", format!("{topic}-dead")),
        ("SRV_OPR__KAFKA__IDLE_TIMEOUT", "1s".to_string()),
        ("SRV_OPR__HTTP__LISTEN", addr.clone()),
        ("SRV_OPR__STATE__URL", "sqlite://state.db".to_string()),
        ("SRV_OPR__STATE__CHECKPOINT_INTERVAL", "1s".to_string()),
        ("SRV_OPR__ALERTS__FOR", "0s".to_string()),
        ("SRV_OPR__ALERTS__INTERVAL", "1s".to_string()),
        (
            "SRV_OPR__EXEMPTIONS__FILE",
            d.join("register.toml").to_string_lossy().into_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut run = spawn_srv_run(d, &env, "run-1", "run-1.log");
    let guard = KillOnDrop(run.id());
    // Every event read (the August outage is in the interfaces' view: a lag of 0 alone can be
    // read before the partition's end offset is known) and checkpointed since.
    wait_until(d, &["run-1.log"], "caught up and checkpointed", 120, || {
        let s = get_json(&addr, "/status.json")?;
        let p = &s["pipeline"];
        let seen = s["interfaces"].as_array().is_some_and(|is| {
            is.iter()
                .any(|i| i["interface"] == "DUIS" && i["down_minutes"] == 18)
        });
        let done = seen
            && p["lag_messages"] == 0
            && p["checkpoint_age_seconds"].as_f64() == Some(0.0)
            && p["partitions"].as_array().is_some_and(|ps| !ps.is_empty());
        if done {
            Ok(())
        } else {
            Err(format!("{p} {}", s["interfaces"]))
        }
    });
    // Live, mid-outage: three interfaces down since 09:12 BST, known up to 09:30 (the newest
    // event), 18 complete minutes each of August's 19,290 so far; SUM1's TPL of 99.50 % allows
    // 223 minutes in August, so 205 are left.
    let (code, metrics) = crate::support::http_get(&addr, "/metrics");
    assert_eq!(code, 200);
    let gauge = |name: &str, interface: &str| -> Option<f64> {
        let key = format!("{name}{{interface=\"{interface}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.parse().ok())
    };
    for i in ["DUIS", "RDI", "SMKI-REPO"] {
        assert_eq!(gauge("srv_interface_up", i), Some(0.0), "{i}");
        assert_eq!(
            gauge("srv_interface_month_to_date_down_minutes", i),
            Some(18.0),
            "{i}"
        );
        assert_eq!(
            gauge("srv_interface_downtime_left_minutes", i),
            Some(205.0),
            "{i}"
        );
        let p = gauge("srv_interface_month_to_date_availability_percent", i).unwrap();
        assert!((p - 100.0 * 19_272.0 / 19_290.0).abs() < 1e-9, "{i} {p}");
    }
    for i in ["SMKI-SERVICE", "SSI"] {
        assert_eq!(gauge("srv_interface_up", i), Some(1.0), "{i}");
        assert_eq!(
            gauge("srv_interface_month_to_date_down_minutes", i),
            Some(0.0),
            "{i}"
        );
    }
    // Down for 18 minutes of event time, more than alerts.interface_down_for: SrvInterfaceDown
    // fires for each of the three, in process (status and /metrics), not for the other two; the
    // month so far is above SUM1's TPL, so SrvInterfaceBelowTarget does not.
    let firing = wait_until(d, &["run-1.log"], "SrvInterfaceDown firing", 60, || {
        let s = get_json(&addr, "/status.json")?;
        let mut down: Vec<String> = s["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["alert"] == "SrvInterfaceDown")
            .filter_map(|a| a["measure"].as_str().map(str::to_string))
            .collect();
        down.sort();
        if down.len() == 3 {
            Ok((s, down))
        } else {
            Err(format!("{}", s["alerts"]))
        }
    });
    assert_eq!(firing.1, ["SUM1.DUIS", "SUM1.RDI", "SUM1.SMKI-REPO"]);
    assert!(
        !firing.0["alerts"]
            .to_string()
            .contains("SrvInterfaceBelowTarget"),
        "{}",
        firing.0["alerts"]
    );
    let (_, metrics) = crate::support::http_get(&addr, "/metrics");
    assert!(
        metrics.contains(
            "srv_alert_active{alert=\"SrvInterfaceDown\",measure=\"SUM1.DUIS\",region=\"\",severity=\"critical\"} 1"
        ),
        "{metrics}"
    );
    // The status page and /status.json: the three down first, in words.
    let interfaces = firing.0["interfaces"].as_array().unwrap().clone();
    assert_eq!(interfaces.len(), 5, "{interfaces:?}");
    for i in &interfaces {
        let down = ["DUIS", "RDI", "SMKI-REPO"].contains(&i["interface"].as_str().unwrap());
        assert_eq!(i["state"], if down { "down" } else { "up" }, "{i}");
        assert_eq!(i["month"], "2023-08");
        assert_eq!(i["down_minutes"], if down { 18 } else { 0 }, "{i}");
        assert_eq!(
            i["downtime_left_minutes"],
            if down { 205 } else { 223 },
            "{i}"
        );
    }
    let (code, page) = crate::support::http_get(&addr, "/");
    assert_eq!(code, 200);
    let section = page
        .split("<section id=\"interfaces\"")
        .nth(1)
        .and_then(|x| x.split("</section>").next())
        .unwrap_or_else(|| panic!("no interfaces section: {page}"));
    assert!(section.contains("Interfaces: 3 down"), "{section}");
    let first_row = section.split("<tr data-interface=").nth(1).unwrap();
    assert!(first_row.contains("data-state=\"down\""), "{section}");
    // SIGKILL: no drain, no hand-over, no outputs.
    run.kill().unwrap();
    run.wait().unwrap();
    drop(guard);
    produce_lines(&cc, &topic, 3, &text[cut..]);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.retain(|(k, _)| *k != "SRV_OPR__HTTP__LISTEN");
    env.push(("SRV_OPR__HTTP__LISTEN", ""));
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["run", "--until-caught-up", "--out", "run-2"])
        .envs(env.iter().copied())
        .current_dir(d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let replayed = std::fs::read_to_string(d.join("replay/availability.csv")).unwrap();
    for view_file in ["availability.csv", "availability.pmr.csv"] {
        let whole = std::fs::read_to_string(d.join("replay").join(view_file)).unwrap();
        // run's own outputs at its stop: every month.
        let ran = std::fs::read_to_string(d.join("run-2").join(view_file)).unwrap();
        assert_eq!(ran, whole, "{view_file} of run");
    }
    // rollup of each month: that month's lines of the replay (months without a request: the
    // store knows them from the timelines).
    for month in ["2023-08", "2023-10", "2024-01", "2024-03"] {
        let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
            .args([
                "rollup",
                "--month",
                month,
                "--out",
                &format!("rollup-{month}"),
            ])
            .envs(env.iter().copied())
            .current_dir(d)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        let got =
            std::fs::read_to_string(d.join(format!("rollup-{month}/availability.csv"))).unwrap();
        let want: Vec<&str> = replayed
            .lines()
            .filter(|l| l.starts_with("month,") || l.starts_with(month))
            .collect();
        assert_eq!(got.lines().collect::<Vec<_>>(), want, "{month}");
    }
}
