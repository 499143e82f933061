//! Month sign-off and restatements (issue 31) on the store of a real `run`: the trap-laden
//! fixture through the real broker; March signed once final, April refused until then; late
//! March requests produced after the sign-off and consumed; `restatements` lists exactly the
//! fields that differ between `rollup` before and after, with both values and the late events
//! that moved them; `--check` exits 0 before and 1 after; an exemption added after the sign-off
//! is named; the store refuses to change or delete a sign-off.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{brokers, create_topic, produce_lines, unique};

fn srv(dir: &Path, args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: exit {:?}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The figures of `rpl.csv` compared by `restatements` (all but the key, `revision`, `final`).
const FIELDS: &[&str] = &[
    "requests",
    "within_target",
    "succeeded",
    "no_response",
    "rpl_percent",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "exempted",
];

/// `rpl.csv` as (measure, region) → column → value.
fn rows(text: &str) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            let cols: BTreeMap<String, String> = header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect();
            ((cols["measure"].clone(), cols["region"].clone()), cols)
        })
        .collect()
}

/// The independent expectation: every figure that differs between two `rpl.csv` texts, as
/// (measure, region, field, before, after).
fn diff(before: &str, after: &str) -> Vec<(String, String, String, String, String)> {
    let (a, b) = (rows(before), rows(after));
    let mut keys: Vec<&(String, String)> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    let none = BTreeMap::new();
    for k in keys {
        let (x, y) = (a.get(k).unwrap_or(&none), b.get(k).unwrap_or(&none));
        for f in FIELDS {
            let (s, c) = (
                x.get(*f).cloned().unwrap_or_default(),
                y.get(*f).cloned().unwrap_or_default(),
            );
            if s != c {
                out.push((k.0.clone(), k.1.clone(), f.to_string(), s, c));
            }
        }
    }
    out
}

/// The rows of `restatements.csv` as [`diff`] gives them.
fn keys(rows: &[BTreeMap<String, String>]) -> Vec<(String, String, String, String, String)> {
    rows.iter()
        .map(|r| {
            (
                r["measure"].clone(),
                r["region"].clone(),
                r["field"].clone(),
                r["signed"].clone(),
                r["current"].clone(),
            )
        })
        .collect()
}

/// `restatements.csv` rows as maps.
fn restated(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            header
                .iter()
                .zip(rec.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn a_signed_month_restated_by_late_requests_and_a_later_exemption_says_what_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let topic = unique("signoff");
    create_topic(&topic, 1);
    create_topic(&format!("{topic}-dead"), 1);
    let mut cc = rdkafka::config::ClientConfig::new();
    cc.set("bootstrap.servers", brokers());
    let traps = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/traps.jsonl"
    ))
    .unwrap();
    let lines: Vec<&str> = traps.lines().filter(|l| !l.trim().is_empty()).collect();
    produce_lines(&cc, &topic, 1, &lines);
    let env: Vec<(String, String)> = [
        ("SRV_OPR__KAFKA__BROKERS", brokers()),
        ("SRV_OPR__KAFKA__TOPICS", format!("[\"{topic}\"]")),
        ("SRV_OPR__KAFKA__GROUP_ID", unique("signoff")),
        ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", format!("{topic}-dead")),
        ("SRV_OPR__HTTP__LISTEN", String::new()),
        ("SRV_OPR__STATE__URL", "sqlite://state.db".to_string()),
        // Every event in one go; no wall-clock skew limit on 2024's events.
        ("SRV_OPR__KAFKA__MAX_FUTURE_SKEW", "5m".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    ok(
        &srv(d, &["run", "--until-caught-up", "--out", "run-1"], &env),
        "run 1",
    );
    ok(
        &srv(
            d,
            &["rollup", "--month", "2024-03", "--out", "before"],
            &env,
        ),
        "rollup before",
    );

    // March is final (the fixture's watermark passed 1 April + 24 h); April is not.
    let signed = ok(
        &srv(
            d,
            &[
                "signoff",
                "--month",
                "2024-03",
                "--by",
                "Head of Performance",
                "--note",
                "as submitted to Ofgem",
            ],
            &env,
        ),
        "signoff of March",
    );
    assert!(
        signed.contains("signed 2024-03 (opr view) as sign-off 1"),
        "{signed}"
    );
    let april = srv(d, &["signoff", "--month", "2024-04", "--by", "x"], &env);
    assert_eq!(april.status.code(), Some(2));
    let why = String::from_utf8_lossy(&april.stderr);
    assert!(
        why.contains("2024-04 is not final") && why.contains("2024-05-01T23:00:00"),
        "{why}"
    );
    let check = srv(d, &["restatements", "--check"], &env);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // April signed before it is final, saying why: recorded as such.
    let forced = ok(
        &srv(
            d,
            &[
                "signoff",
                "--month",
                "2024-04",
                "--by",
                "Duty analyst",
                "--force",
                "--reason",
                "interim figures for the board",
            ],
            &env,
        ),
        "forced signoff of April",
    );
    assert!(
        forced.contains("NOT FINAL, signed with --force: interim figures for the board"),
        "{forced}"
    );
    let no_reason = srv(
        d,
        &["signoff", "--month", "2024-04", "--by", "x", "--force"],
        &env,
    );
    assert_eq!(no_reason.status.code(), Some(2));
    let o = ok(
        &srv(
            d,
            &["restatements", "--month", "2024-03", "--out", "r0"],
            &env,
        ),
        "r0",
    );
    assert!(o.contains("unchanged"), "{o}");
    assert_eq!(
        std::fs::read_to_string(d.join("r0/restatements.csv")).unwrap(),
        "month,view,measure,region,field,signed,current,signed_at,signed_by,causes\n"
    );

    // Late March requests, inside the dedupe horizon: one answered within its TRT in north,
    // one never answered in south; then an April event that moves the watermark on.
    let late = [
        r#"{"type":"request","id":"late-n","srv":"CSP-HAN-TEST","region":"north","provider":"csp","at":"2024-03-30T12:00:00Z"}"#,
        r#"{"type":"response","id":"late-n","code":"I0","at":"2024-03-30T12:00:02Z"}"#,
        r#"{"type":"request","id":"late-s","srv":"CSP-HAN-TEST","region":"south","provider":"csp","at":"2024-03-30T12:05:00Z"}"#,
        r#"{"type":"request","id":"bump","srv":"CSP-HAN-TEST","region":"north","provider":"csp","at":"2024-04-02T00:30:00Z"}"#,
    ];
    produce_lines(&cc, &topic, 1, &late);
    ok(
        &srv(d, &["run", "--until-caught-up", "--out", "run-2"], &env),
        "run 2",
    );
    ok(
        &srv(d, &["rollup", "--month", "2024-03", "--out", "after"], &env),
        "rollup after",
    );
    let before = std::fs::read_to_string(d.join("before/rpl.csv")).unwrap();
    let after = std::fs::read_to_string(d.join("after/rpl.csv")).unwrap();
    let want = diff(&before, &after);
    assert!(
        !want.is_empty(),
        "the late requests changed nothing:\n{after}"
    );

    ok(
        &srv(
            d,
            &["restatements", "--month", "2024-03", "--out", "r1"],
            &env,
        ),
        "r1",
    );
    let got = restated(&std::fs::read_to_string(d.join("r1/restatements.csv")).unwrap());
    let got_keys = keys(&got);
    assert_eq!(
        got_keys, want,
        "exactly the changed fields, signed and current"
    );
    for r in &got {
        assert_eq!(r["month"], "2024-03");
        assert_eq!(r["view"], "opr");
        assert_eq!(r["signed_by"], "Head of Performance");
        // One late request in north and one in south: `all` saw both.
        let n = match r["region"].as_str() {
            "all" => 2,
            _ => 1,
        };
        assert_eq!(
            r["causes"],
            format!("late events: {n} (applied after the month was final)"),
            "{r:?}"
        );
    }
    let check = srv(d, &["restatements", "--check"], &env);
    assert_eq!(check.status.code(), Some(1));
    // April, signed before it was final, moved by the request of 2 April counted since.
    ok(
        &srv(
            d,
            &["restatements", "--month", "2024-04", "--out", "r-april"],
            &env,
        ),
        "april",
    );
    let april = restated(&std::fs::read_to_string(d.join("r-april/restatements.csv")).unwrap());
    assert!(!april.is_empty());
    for r in &april {
        assert!(r["causes"].contains("signed before it was final"), "{r:?}");
    }
    let json = ok(
        &srv(d, &["restatements", "--json", "--month", "2024-03"], &env),
        "json",
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), got.len());

    // An exemption added after the sign-off, over t01–t03 (north, 10 March 10:00–10:05).
    std::fs::write(
        d.join("register.toml"),
        "[[exemption]]\nid = \"INC-AFTER-SIGNOFF\"\nreason = \"exceptional_event\"\n\
         from = \"2024-03-10T10:00:00Z\"\nto = \"2024-03-10T10:05:00Z\"\nregions = [\"north\"]\n",
    )
    .unwrap();
    ok(
        &srv(
            d,
            &[
                "restatements",
                "--month",
                "2024-03",
                "--exemptions",
                "register.toml",
                "--out",
                "r2",
            ],
            &env,
        ),
        "r2",
    );
    let got = restated(&std::fs::read_to_string(d.join("r2/restatements.csv")).unwrap());
    let north: Vec<&BTreeMap<String, String>> = got
        .iter()
        .filter(|r| r["measure"] == "PM4.3" && r["region"] == "north")
        .collect();
    assert!(!north.is_empty(), "{got:?}");
    for r in &north {
        assert!(
            r["causes"].contains("exemption INC-AFTER-SIGNOFF added"),
            "{r:?}"
        );
    }
    // South is outside the exemption's scope: late events only.
    for r in got.iter().filter(|r| r["region"] == "south") {
        assert!(!r["causes"].contains("INC-AFTER-SIGNOFF"), "{r:?}");
    }
    // Without the register, the late events' fields again.
    let got = restated(&std::fs::read_to_string(d.join("r1/restatements.csv")).unwrap());

    // The annual report from the store: March signed, restated, with its causes; the other
    // months not signed; the workbook has the same on its Sign-off sheet.
    let external = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/opr/RY23-24-external.csv"
    );
    // The fixture has no traffic of these two components: the year's figures, given.
    std::fs::write(
        d.join("more-inputs.csv"),
        "measure,component,region,period,value\nSDM2,PM1.4-DSP,,RY23/24,99.9\n\
         SDM2,PM1.1-S1SP,,RY23/24,99.9\n",
    )
    .unwrap();
    ok(
        &srv(
            d,
            &[
                "report",
                "--year",
                "RY23/24",
                "--inputs",
                external,
                "--inputs",
                "more-inputs.csv",
                "--out",
                "report",
                // The fixture's events cover no whole month (issue 33).
                "--allow-incomplete",
            ],
            &env,
        ),
        "report",
    );
    let page = std::fs::read_to_string(d.join("report/index.html")).unwrap();
    let table = page
        .split("<table id=\"signoff\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("no sign-off table: {page}"));
    let march = table
        .split("<tr")
        .find(|r| r.contains("data-month=\"2024-03\""))
        .unwrap();
    assert!(
        march.contains("class=\"restated\"")
            && march.contains("Head of Performance")
            && march.contains("late events"),
        "{march}"
    );
    let april = table
        .split("<tr")
        .find(|r| r.contains("data-month=\"2023-04\""))
        .unwrap();
    assert!(april.contains("not signed"), "{april}");

    // Live: a running instance's sign-off watcher finds March restated: /metrics counts its
    // fields, the in-process alert fires, the status page shows it first, with its cause.
    let port = crate::support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let live_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "SRV_OPR__HTTP__LISTEN")
        .cloned()
        .chain([
            ("SRV_OPR__HTTP__LISTEN".to_string(), addr.clone()),
            ("SRV_OPR__ALERTS__INTERVAL".to_string(), "1s".to_string()),
            ("SRV_OPR__ALERTS__FOR".to_string(), "0s".to_string()),
        ])
        .collect();
    let mut run = crate::support::spawn_srv_run(d, &live_env, "run-live", "run-live.log");
    let _run = crate::support::KillOnDrop(run.id());
    let fields = got.len();
    let status = crate::support::wait_until(
        d,
        &["run-live.log"],
        "SrvSignedMonthRestated firing",
        60,
        || {
            let s = crate::support::get_json(&addr, "/status.json")?;
            let firing = s["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["alert"] == "SrvSignedMonthRestated"));
            if firing {
                Ok(s)
            } else {
                Err(s["alerts"].to_string())
            }
        },
    );
    let march = status["signoffs"]
        .as_array()
        .and_then(|l| l.iter().find(|m| m["month"] == "2024-03"))
        .unwrap_or_else(|| panic!("{}", status["signoffs"]));
    assert_eq!(march["month"], "2024-03");
    assert_eq!(march["restated_fields"], fields);
    assert!(
        march["causes"].to_string().contains("late events"),
        "{march}"
    );
    let (_, metrics) = crate::support::http_get(&addr, "/metrics");
    assert!(
        metrics.contains(&format!(
            "srv_signed_month_restated_fields{{month=\"2024-03\",view=\"opr\"}} {fields}"
        )),
        "{metrics}"
    );
    let terminal = srv(
        d,
        &["status", "--url", &format!("http://{addr}")],
        &live_env,
    );
    let terminal = String::from_utf8_lossy(&terminal.stdout);
    assert!(
        terminal.contains(&format!(
            "signed months: 2; 2024-03 (opr) RESTATED: {fields} fields (late events"
        )),
        "{terminal}"
    );
    let (_, page) = crate::support::http_get(&addr, "/");
    assert!(
        page.contains("Signed months: 2 restated since signed"),
        "{page}"
    );
    run.kill().unwrap();
    run.wait().unwrap();

    // A second sign-off of March is recorded; the first stays; the store refuses to rewrite
    // either.
    ok(
        &srv(
            d,
            &["signoff", "--month", "2024-03", "--by", "Finance Director"],
            &env,
        ),
        "second signoff",
    );
    let check = srv(d, &["restatements", "--check", "--month", "2024-03"], &env);
    assert_eq!(check.status.code(), Some(0), "the latest sign-off stands");
    let db = rusqlite::Connection::open(d.join("state.db")).unwrap();
    let n: i64 = db
        .query_row("SELECT COUNT(*) FROM signoffs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3, "two of March, one of April");
    let e = db
        .execute("UPDATE signoffs SET document = '{}' WHERE id = 1", [])
        .unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    assert!(db.execute("DELETE FROM signoffs", []).is_err());
}

/// The same on PostgreSQL with three instances sharing six partitions' worth of keys over three
/// partitions: March signed once the group has made it final; one instance SIGKILLed; late
/// March requests produced; the database restarted under the group (a crash: connections cut,
/// recovery); `restatements` lists exactly what changed, and the sign-off survives unchanged,
/// which the database itself refuses to rewrite.
#[test]
fn on_postgres_with_three_instances_a_signoff_survives_kills_and_a_database_restart() {
    use crate::store_kafka::{group_env, spawn_run};
    use crate::support::{KillOnDrop, OwnServer, free_port, wait_until};
    use srv_opr::kafka::partition::partition_of;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (pg, url) = OwnServer::postgres(free_port());
    let topic = unique("signoff-pg");
    create_topic(&topic, 3);
    create_topic(&format!("{topic}-dead"), 1);
    let mut cc = rdkafka::config::ClientConfig::new();
    cc.set("bootstrap.servers", brokers());
    // Nine requests on 2 April per partition, so every partition's watermark passes March's
    // finality (the combined watermark is their minimum; a lone event weeks ahead of a
    // partition's clock needs eight others to move it).
    let bumps = |at: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut per = [0; 3];
        for i in 0.. {
            let id = format!("bump-{at}-{i}");
            let p = partition_of(id.as_bytes(), 3) as usize;
            if per[p] < 9 {
                per[p] += 1;
                out.push(format!(
                    r#"{{"type":"request","id":"{id}","srv":"CSP-HAN-TEST","region":"north","provider":"csp","at":"{at}"}}"#
                ));
            }
            if per.iter().all(|n| *n == 9) {
                break;
            }
        }
        out
    };
    let traps = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/traps.jsonl"
    ))
    .unwrap();
    let mut lines: Vec<String> = traps
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    lines.extend(bumps("2024-04-02T00:00:00Z"));
    let text: Vec<&str> = lines.iter().map(String::as_str).collect();
    produce_lines(&cc, &topic, 3, &text);

    let group = unique("signoff-pg");
    let mut env = group_env(&brokers(), &topic, &group, &url);
    env.push(("SRV_OPR__STATE__RECONNECT_TIMEOUT".into(), "60s".into()));
    let mut a = spawn_run(d, &env, "a.log", &[]);
    let _a = KillOnDrop(a.id());
    let mut b = spawn_run(d, &env, "b.log", &[]);
    let _b = KillOnDrop(b.id());
    let mut c = spawn_run(d, &env, "c.log", &[]);
    let _c = KillOnDrop(c.id());
    let logs = ["a.log", "b.log", "c.log"];

    // Signed as soon as the group has made March final (refused before, exit 2).
    let signed = wait_until(d, &logs, "March final and signed", 120, || {
        let o = srv(
            d,
            &[
                "signoff",
                "--month",
                "2024-03",
                "--by",
                "Head of Performance",
            ],
            &env,
        );
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        match o.status.code() {
            Some(0) => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
            // Not final yet, or nothing checkpointed yet.
            Some(2) => Err(err),
            Some(1) if err.contains("holds no figures") || err.contains("holds no srv-opr") => {
                Err(err)
            }
            code => panic!("signoff: {code:?} {err}"),
        }
    });
    assert!(signed.contains("as sign-off 1"), "{signed}");
    ok(
        &srv(
            d,
            &["rollup", "--month", "2024-03", "--out", "before"],
            &env,
        ),
        "rollup before",
    );
    let check = srv(d, &["restatements", "--check"], &env);
    assert_eq!(check.status.code(), Some(0));
    let document = |what: &str| -> (i64, String) {
        let mut db = srv_opr::store::pgtls::client(&url).unwrap();
        let row = db
            .query_one("SELECT COUNT(*), MIN(document) FROM signoffs", &[])
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        (row.get(0), row.get(1))
    };
    let first = document("after signing");

    // One member SIGKILLed; late March requests and a later bump; the database crashes and
    // comes back while the other two work.
    b.kill().unwrap();
    b.wait().unwrap();
    let mut late = vec![
        r#"{"type":"request","id":"late-n","srv":"CSP-HAN-TEST","region":"north","provider":"csp","at":"2024-03-30T12:00:00Z"}"#.to_string(),
        r#"{"type":"response","id":"late-n","code":"I0","at":"2024-03-30T12:00:02Z"}"#.to_string(),
        r#"{"type":"request","id":"late-s","srv":"CSP-HAN-TEST","region":"south","provider":"csp","at":"2024-03-30T12:05:00Z"}"#.to_string(),
    ];
    late.extend(bumps("2024-04-02T00:30:00Z"));
    let restart = pg.restart_in_background(3);
    let text: Vec<&str> = late.iter().map(String::as_str).collect();
    produce_lines(&cc, &topic, 3, &text);
    restart.join().unwrap();

    // Exactly the fields rollup's before and after differ in, once the group has them all.
    // Once the group has both (a restatement names two late events on `all`), nothing more
    // changes March: then rollup and restatements are read for the comparison.
    wait_until(
        d,
        &logs,
        "the restatement of both late requests",
        120,
        || {
            let o = srv(
                d,
                &["restatements", "--month", "2024-03", "--out", "r"],
                &env,
            );
            if !o.status.success() {
                return Err(String::from_utf8_lossy(&o.stderr).into_owned());
            }
            let got = restated(&std::fs::read_to_string(d.join("r/restatements.csv")).unwrap());
            let all_late = got
                .iter()
                .any(|r| r["region"] == "all" && r["causes"].starts_with("late events: 2"));
            if all_late {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    );
    ok(
        &srv(d, &["rollup", "--month", "2024-03", "--out", "after"], &env),
        "rollup after",
    );
    ok(
        &srv(
            d,
            &["restatements", "--month", "2024-03", "--out", "r"],
            &env,
        ),
        "restatements",
    );
    let before = std::fs::read_to_string(d.join("before/rpl.csv")).unwrap();
    let after = std::fs::read_to_string(d.join("after/rpl.csv")).unwrap();
    let want = diff(&before, &after);
    let got = restated(&std::fs::read_to_string(d.join("r/restatements.csv")).unwrap());
    let got_keys = keys(&got);
    assert_eq!(got_keys, want);
    let check = srv(d, &["restatements", "--check"], &env);
    assert_eq!(check.status.code(), Some(1));

    // The sign-off survived the kill and the crash as it was written; the database refuses to
    // change, delete or truncate it.
    assert_eq!(document("after the restart"), first);
    let mut db = srv_opr::store::pgtls::client(&url).unwrap();
    for statement in [
        "UPDATE signoffs SET document = '{}'",
        "DELETE FROM signoffs",
        "TRUNCATE signoffs",
    ] {
        let e = db.batch_execute(statement).unwrap_err();
        assert!(
            format!("{e:?}").contains("append-only"),
            "{statement}: {e:?}"
        );
    }
    for child in [&mut a, &mut c] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
