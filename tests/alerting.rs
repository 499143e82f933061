//! End to end with the real things: `srv-opr run` consumes simulated traffic from the real
//! Kafka broker in which the central region is degraded (north and south perfect); a real
//! Prometheus scrapes its `/metrics` and evaluates the rules `srv-opr alert-rules` generates;
//! a real Alertmanager receives the in-process evaluator's alerts. Through their HTTP APIs:
//! the degraded region's alert fires in Prometheus and the healthy ones do not, and Alertmanager
//! holds the alert `run` sent. (`scripts/test` installs Debian's `prometheus` and
//! `prometheus-alertmanager`; each server here runs on 127.0.0.1 with ports of its own.)

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::tls::{Pki, bcrypt, https_get};
use crate::support::{
    KillOnDrop, brokers, create_topic_on, free_port, get_json, spawn_srv_run, srv_ok, unique,
    wait_until,
};

/// A server of the test: killed and reaped when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &Path, program: &str, args: &[String], log: &str) -> Server {
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(log)).unwrap())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{program} is not installed ({e}): run scripts/test, which installs it")
        });
    Server(child)
}

/// A real Alertmanager on 127.0.0.1:`port` that accepts every alert; with `web`, the web
/// configuration (TLS, basic auth) it serves with, as production ones are set up.
fn alertmanager(dir: &Path, port: u16, web: Option<&str>) -> Server {
    let sink = "route:\n  receiver: sink\n  group_wait: 1s\nreceivers:\n  - name: sink\n";
    alertmanager_with(dir, port, web, sink)
}

/// [`alertmanager`] with the configuration `config`.
fn alertmanager_with(dir: &Path, port: u16, web: Option<&str>, config: &str) -> Server {
    std::fs::write(dir.join("alertmanager.yml"), config).unwrap();
    let mut args = vec![
        "--config.file=alertmanager.yml".to_string(),
        "--storage.path=am-data".into(),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // No gossip: a single Alertmanager, and nothing bound beyond 127.0.0.1.
        "--cluster.listen-address=".into(),
    ];
    if let Some(web) = web {
        std::fs::write(dir.join("am-web.yml"), web).unwrap();
        args.push("--web.config.file=am-web.yml".into());
    }
    spawn(dir, "prometheus-alertmanager", &args, "alertmanager.log")
}

/// A real Prometheus on 127.0.0.1:`port` reading the `prometheus.yml` the test wrote in `dir`.
fn prometheus(dir: &Path, port: u16) -> Server {
    spawn(
        dir,
        "prometheus",
        &[
            "--config.file=prometheus.yml".into(),
            "--storage.tsdb.path=prom-data".into(),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        "prometheus.log",
    )
}

/// The web configuration of a server with TLS from `pki` and one basic-auth user.
fn web_config(pki: &Pki, user: &str, password: &str) -> String {
    format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {user}: '{}'\n",
        pki.server_cert.display(),
        pki.server_key.display(),
        bcrypt(password)
    )
}

/// Polls `check` until it returns `Ok`, or fails with what was last seen and the logs.
fn wait_for<T>(dir: &Path, what: &str, secs: u64, check: impl FnMut() -> Result<T, String>) -> T {
    let logs = ["run.log", "prometheus.log", "alertmanager.log"];
    wait_until(dir, &logs, what, secs, check)
}

/// A counter's value in a `/metrics` text (0 when absent).
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Every connection secured as in production: `run` serves `/metrics` over TLS with basic auth
/// (an exporter-toolkit web configuration), Prometheus scrapes it with `scheme: https`, its CA
/// and a password; `run` sends its alerts to an Alertmanager over TLS with basic auth. A second
/// `run` with a wrong Alertmanager password, logging at trace level for the HTTP client, counts
/// each refusal and never shows a password, in any log or file.
#[test]
fn a_degraded_region_fires_in_prometheus_and_reaches_alertmanager() {
    let brokers = brokers();
    let topic = unique("alerting");
    create_topic_on(&brokers, &topic, 6);
    create_topic_on(&brokers, &format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A month in which central misses about 2 % of its TRTs (below TPL 99, above MPL 96) and
    // north and south miss nothing.
    srv_ok(
        d,
        &[
            "simulate",
            "--month",
            "2024-03",
            "--rate",
            "0.1",
            "--seed",
            "31",
            "--bad",
            "0",
            "--quality",
            "central:slow=0.02,error=0,lost=0",
            "--quality",
            "north:slow=0,error=0,lost=0",
            "--quality",
            "south:slow=0,error=0,lost=0",
            "--kafka",
            &brokers,
            "--topic",
            &topic,
        ],
        &[],
    );

    const SCRAPE: &str = "scrape-pass-right-9";
    const AM_RIGHT: &str = "am-pass-right-1";
    const AM_WRONG: &str = "am-pass-wrong-2";
    let pki = Pki::create(d, "srv");
    std::fs::write(d.join("web.yml"), web_config(&pki, "prometheus", SCRAPE)).unwrap();
    std::fs::write(d.join("scrape-password"), SCRAPE).unwrap();
    std::fs::write(d.join("am-password"), format!("{AM_RIGHT}\n")).unwrap();
    std::fs::write(d.join("am-wrong"), AM_WRONG).unwrap();

    let (http, http2, am, prom) = (free_port(), free_port(), free_port(), free_port());
    let env: Vec<(String, String)> = vec![
        ("SRV_OPR__KAFKA__BROKERS".into(), brokers.clone()),
        ("SRV_OPR__KAFKA__TOPICS".into(), format!("[\"{topic}\"]")),
        ("SRV_OPR__KAFKA__GROUP_ID".into(), unique("alerting")),
        (
            "SRV_OPR__KAFKA__DEAD_LETTER_TOPIC".into(),
            format!("{topic}-dead"),
        ),
        ("SRV_OPR__HTTP__LISTEN".into(), format!("127.0.0.1:{http}")),
        ("SRV_OPR__HTTP__WEB_CONFIG_FILE".into(), "web.yml".into()),
        ("SRV_OPR__STATE__URL".into(), "sqlite://state.db".into()),
        ("SRV_OPR__ALERTS__INTERVAL".into(), "1s".into()),
        ("SRV_OPR__ALERTS__FOR".into(), "0s".into()),
        (
            "SRV_OPR__ALERTS__ALERTMANAGER_URL".into(),
            format!("https://localhost:{am}"),
        ),
        (
            "SRV_OPR__ALERTS__ALERTMANAGER_CA_FILE".into(),
            pki.ca.display().to_string(),
        ),
        (
            "SRV_OPR__ALERTS__ALERTMANAGER_USERNAME".into(),
            "srv-opr".into(),
        ),
        (
            "SRV_OPR__ALERTS__ALERTMANAGER_PASSWORD_FILE".into(),
            "am-password".into(),
        ),
        ("SRV_OPR__ALERTS__RESEND_INTERVAL".into(), "2s".into()),
    ];
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The rules Prometheus evaluates come from the same configuration.
    srv_ok(d, &["alert-rules", "--out", "rules.yml"], &envs);

    let _am = alertmanager(d, am, Some(&web_config(&pki, "srv-opr", AM_RIGHT)));

    let mut run = spawn_srv_run(d, &env, "run-out", "run.log");
    let _run = KillOnDrop(run.id());
    // The same, another group, with the wrong Alertmanager password and the HTTP client's every
    // line logged (ureq's trace level shows the headers it sends).
    let wrong_env: Vec<(String, String)> = env
        .iter()
        .cloned()
        .map(|(k, v)| match k.as_str() {
            "SRV_OPR__KAFKA__GROUP_ID" => (k, unique("alerting-wrong")),
            "SRV_OPR__HTTP__LISTEN" => (k, format!("127.0.0.1:{http2}")),
            "SRV_OPR__STATE__URL" => (k, "sqlite://state-wrong.db".into()),
            "SRV_OPR__ALERTS__ALERTMANAGER_PASSWORD_FILE" => (k, "am-wrong".into()),
            _ => (k, v),
        })
        .chain([(
            "RUST_LOG".to_string(),
            "debug,ureq=trace,ureq_proto=trace".to_string(),
        )])
        .collect();
    let mut wrong = spawn_srv_run(d, &wrong_env, "run-wrong-out", "run-wrong.log");
    let _wrong = KillOnDrop(wrong.id());

    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - \
             rules.yml\nscrape_configs:\n  - job_name: srv-opr\n    scheme: https\n    \
             tls_config:\n      ca_file: {}\n    basic_auth:\n      username: prometheus\n      \
             password_file: scrape-password\n    static_configs:\n      - \
             targets: [\"127.0.0.1:{http}\"]\n",
            pki.ca.display()
        ),
    )
    .unwrap();
    let _prom = prometheus(d, prom);

    let prom_addr = format!("127.0.0.1:{prom}");
    wait_for(
        d,
        "Prometheus scrapes srv-opr over TLS with basic auth",
        60,
        || {
            let v = get_json(&prom_addr, "/api/v1/targets")?;
            let t = &v["data"]["activeTargets"][0];
            if t["health"] == "up"
                && t["scrapeUrl"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("https://"))
            {
                Ok(())
            } else {
                Err(t.to_string())
            }
        },
    );
    let firing = wait_for(
        d,
        "Prometheus fires SrvRplBelowTarget for central",
        180,
        || {
            let v = get_json(&prom_addr, "/api/v1/alerts")?;
            let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
            let firing: Vec<serde_json::Value> = alerts
                .into_iter()
                .filter(|a| a["state"] == "firing")
                .collect();
            let central = firing.iter().any(|a| {
                a["labels"]["alertname"] == "SrvRplBelowTarget"
                    && a["labels"]["region"] == "central"
            });
            if central {
                Ok(firing)
            } else {
                Err(format!("{firing:?}"))
            }
        },
    );
    // Let the last events in: the healthy regions must not fire at any point.
    std::thread::sleep(Duration::from_secs(3));
    let v = get_json(&prom_addr, "/api/v1/alerts").unwrap();
    for a in v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .chain(&firing)
    {
        let region = a["labels"]["region"].as_str().unwrap_or("");
        assert!(
            region != "north" && region != "south",
            "a healthy region alerts: {a}"
        );
    }

    // The in-process evaluator sent its own alert to Alertmanager (Prometheus here sends none).
    let am_get = |path: &str| {
        let (status, body) = https_get(
            &format!("https://localhost:{am}{path}"),
            &pki.ca,
            Some(("srv-opr", AM_RIGHT)),
        );
        if status != 200 {
            return Err(format!("{path}: HTTP {status}: {body}"));
        }
        serde_json::from_str::<serde_json::Value>(&body).map_err(|e| format!("{path}: {e}"))
    };
    wait_for(d, "Alertmanager holds run's alert for central", 60, || {
        let v = am_get("/api/v2/alerts")?;
        let list = v.as_array().cloned().unwrap_or_default();
        let found = list.iter().any(|a| {
            a["labels"]["alertname"] == "SrvRplBelowTarget"
                && a["labels"]["region"] == "central"
                && a["labels"]["service"] == "srv-opr"
        });
        let healthy = list.iter().find(|a| {
            let r = a["labels"]["region"].as_str().unwrap_or("");
            r == "north" || r == "south"
        });
        assert!(
            healthy.is_none(),
            "a healthy region reached Alertmanager: {healthy:?}"
        );
        if found {
            Ok(())
        } else {
            Err(format!("{list:?}"))
        }
    });

    // /metrics shows the same alert as srv_alert_active.
    let metrics_of = |port: u16| {
        https_get(
            &format!("https://127.0.0.1:{port}/metrics"),
            &pki.ca,
            Some(("prometheus", SCRAPE)),
        )
    };
    let (status, metrics) = metrics_of(http);
    assert_eq!(status, 200, "{metrics}");
    assert!(
        metrics.lines().any(|l| l.starts_with("srv_alert_active{")
            && l.contains("alert=\"SrvRplBelowTarget\"")
            && l.contains("region=\"central\"")
            && l.ends_with(" 1")),
        "srv_alert_active does not show the central alert"
    );
    assert!(metrics.contains("srv_response_time_seconds_bucket{"));
    assert!(metrics.contains("srv_checkpoint_age_seconds "));
    assert_eq!(counter(&metrics, "srv_alert_notifications_failed_total"), 0);

    // The status page is served with the same TLS and basic auth as /metrics.
    let page = |path: &str, auth: Option<(&str, &str)>| {
        https_get(&format!("https://localhost:{http}{path}"), &pki.ca, auth)
    };
    let (status, body) = page("/", Some(("prometheus", SCRAPE)));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("srv-opr status") && body.contains("data-alert=\"SrvRplBelowTarget\""));
    assert_eq!(page("/", None).0, 401, "the page without credentials");
    assert_eq!(page("/status.json", Some(("prometheus", "wrong"))).0, 401);
    let (status, body) = page("/status.json", Some(("prometheus", SCRAPE)));
    assert_eq!(status, 200, "{body}");
    // `srv-opr status` reads it over TLS (the CA given) with the user and password file, and
    // `--check` exits 1: a warning fires, nothing critical.
    let status_cmd = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_srv-opr"))
            .args([
                "status",
                "--url",
                &format!("https://localhost:{http}"),
                "--check",
            ])
            .args(extra)
            .current_dir(d)
            .output()
            .unwrap()
    };
    let ca = pki.ca.display().to_string();
    let o = status_cmd(&[
        "--ca-file",
        &ca,
        "--user",
        "prometheus",
        "--password-file",
        "scrape-password",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("WARNING") && text.contains("SrvRplBelowTarget"),
        "{text}"
    );
    assert!(!text.contains(SCRAPE), "the password is never printed");
    // Without the CA the certificate is not trusted; without the password, refused: unknown.
    for extra in [
        &["--user", "prometheus", "--password-file", "scrape-password"][..],
        &["--ca-file", &ca][..],
    ] {
        let o = status_cmd(extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(err.contains("UNKNOWN") && !err.contains(SCRAPE), "{err}");
    }

    // The wrong password: refused, counted, logged with the reason.
    wait_for(d, "the wrong password's refusals are counted", 120, || {
        let (status, m) = metrics_of(http2);
        let n = counter(&m, "srv_alert_notifications_failed_total");
        if status == 200 && n >= 2 {
            Ok(())
        } else {
            Err(format!("HTTP {status}, {n} counted"))
        }
    });

    for (child, name) in [(&mut run, "run"), (&mut wrong, "run-wrong")] {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "{name} did not stop cleanly"
        );
    }
    let log = std::fs::read_to_string(d.join("run.log")).unwrap();
    assert!(log.contains("alert firing"), "the alert is in the log");
    let wrong_log = std::fs::read_to_string(d.join("run-wrong.log")).unwrap();
    assert!(
        wrong_log
            .lines()
            .any(|l| l.contains("cannot notify Alertmanager")
                && l.contains("401")
                && l.contains("Unauthorized")),
        "the refusal is not logged with its reason"
    );
    // ureq's trace level dumps the bytes it sends in hex, the Authorization header's too, cut
    // across lines where no mask can find it: those lines never reach the log.
    assert!(
        !wrong_log.contains("6175 7468 6f72 697a 6174 696f 6e3a"),
        "the HTTP client's wire dump (with the Authorization header) is in the log"
    );
    // ureq's own debug line of each request: its log reached the file.
    assert!(
        wrong_log.contains(&format!("POST https://localhost:{am}/api/v2/alerts")),
        "the HTTP client's debug lines are not in the log"
    );

    // No password, nor the basic-auth header made of one, in any log or file srv-opr wrote.
    let basic = |u: &str, p: &str| openssl::base64::encode_block(format!("{u}:{p}").as_bytes());
    let secrets = [
        AM_RIGHT.to_string(),
        AM_WRONG.to_string(),
        SCRAPE.to_string(),
        basic("srv-opr", AM_RIGHT),
        basic("srv-opr", AM_WRONG),
    ];
    let mut files = vec![
        d.join("run.log"),
        d.join("run-wrong.log"),
        d.join("state.db"),
        d.join("state-wrong.db"),
    ];
    for out in ["run-out", "run-wrong-out"] {
        for e in crate::support::tls::files_under(&d.join(out)) {
            files.push(e);
        }
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "{} shows a secret", f.display());
        }
    }
}

/// Every file under `dir`.
/// The in-process evaluator against a real Alertmanager served over TLS with basic auth, as
/// production ones are, without Kafka: a live view in which central falls below TPL fires an
/// alert that Alertmanager lists; when central recovers the evaluator sends it resolved and
/// Alertmanager lists it no more. A second evaluator with a wrong password is refused (401), and
/// counts each refusal in `srv_alert_notifications_failed_total`.
#[test]
fn alerts_reach_alertmanager_over_https_and_resolve_there() {
    use srv_opr::config::secrets::SecretSource;
    use srv_opr::ops::live::{Counts, Live};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::create(d, "am");
    let am = free_port();
    let _am = alertmanager(d, am, Some(&web_config(&pki, "srv-opr", "am-pass-right-1")));
    let base = format!("https://localhost:{am}");
    let get = |path: &str| {
        let (status, body) = https_get(
            &format!("{base}{path}"),
            &pki.ca,
            Some(("srv-opr", "am-pass-right-1")),
        );
        if status != 200 {
            return Err(format!("{path}: HTTP {status}: {body}"));
        }
        serde_json::from_str::<serde_json::Value>(&body).map_err(|e| format!("{path}: {e}"))
    };
    wait_for(d, "Alertmanager up", 30, || {
        get("/api/v2/status").map(|_| ())
    });
    // It does require the password.
    let (status, _) = https_get(&format!("{base}/api/v2/status"), &pki.ca, None);
    assert_eq!(status, 401);

    let mut cfg = srv_opr::config::Config::builtin().unwrap();
    let a = &mut cfg.settings.alerts;
    a.interval = srv_opr::engine::time::Dur::from_millis(100);
    a.hold = srv_opr::engine::time::Dur::ZERO;
    a.alertmanager.url = base.clone();
    a.alertmanager.ca_file = pki.ca.display().to_string();
    a.alertmanager.username = "srv-opr".into();
    std::fs::write(d.join("am-password"), "am-pass-right-1\n").unwrap();
    a.alertmanager.password = SecretSource::File(d.join("am-password"));
    let mut wrong = cfg.settings.alerts.clone();
    std::fs::write(d.join("am-wrong"), "am-pass-wrong-2").unwrap();
    wrong.alertmanager.password = SecretSource::File(d.join("am-wrong"));

    let live = Arc::new(Live::new(Duration::from_secs(30)));
    let n = cfg.definitions.measures.len();
    let publish = |central_hits: u64| {
        let counts = |hits| Counts {
            requests: 10_000,
            within_target: hits,
            succeeded: hits,
            no_response: 0,
        };
        let month = vec![[counts(10_000), counts(central_hits), counts(10_000)]; n];
        live.publish(
            "t",
            0,
            // 2024-03-15 in event time.
            crate::support::part_view(
                srv_opr::engine::time::Ts(1_710_460_800_000_000_000),
                1,
                BTreeMap::from([(srv_opr::engine::calendar::Month::new(2024, 3), month)]),
            ),
        );
    };
    publish(9_700);
    live.set_assigned(1);
    let defs = Arc::new(cfg.definitions.clone());
    let calendar = srv_opr::engine::calendar::Calendar::new(&cfg.settings.time.zone).unwrap();
    let alerts = srv_opr::ops::alerts::spawn(
        cfg.settings.alerts.clone(),
        defs.clone(),
        calendar.clone(),
        live.clone(),
        Default::default(),
    )
    .unwrap();
    let refused = srv_opr::ops::alerts::spawn(
        wrong,
        defs.clone(),
        calendar.clone(),
        live.clone(),
        Default::default(),
    )
    .unwrap();
    let central = |v: &serde_json::Value| {
        v.as_array().is_some_and(|l| {
            l.iter().any(|a| {
                a["labels"]["alertname"] == "SrvRplBelowTarget"
                    && a["labels"]["region"] == "central"
                    && a["labels"]["measure"] == "PM4.3"
            })
        })
    };
    wait_for(d, "Alertmanager lists the firing alert", 30, || {
        let v = get("/api/v2/alerts")?;
        if central(&v) {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });
    // The wrong password: each notification refused and counted, none delivered.
    wait_for(d, "the refused notifications are counted", 30, || {
        let n = refused.board.lock().unwrap().notify_errors;
        if n >= 2 {
            Ok(())
        } else {
            Err(format!("{n} counted"))
        }
    });
    let metrics = srv_opr::ops::metrics::Metrics::new(
        defs.clone(),
        calendar.clone(),
        live.clone(),
        false,
        Some(refused.board.clone()),
    )
    .unwrap()
    .render()
    .unwrap();
    let failed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("srv_alert_notifications_failed_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(failed >= 2, "srv_alert_notifications_failed_total {failed}");
    drop(refused);

    // Central recovers: 10,000 of 10,000.
    publish(10_000);
    wait_for(d, "Alertmanager drops the resolved alert", 30, || {
        let v = get("/api/v2/alerts")?;
        if central(&v) {
            Err(v.to_string())
        } else {
            Ok(())
        }
    });
    let board = alerts.board.lock().unwrap().clone();
    assert!(board.firing.is_empty(), "{:?}", board.firing);
    assert_eq!(board.notify_errors, 0);
}

/// The YAML blocks of `docs/operating.md` marked as run by this file, in order: the Prometheus
/// rule of interface outages and the Alertmanager receiver of the webhook.
fn operating_page_blocks() -> Vec<String> {
    let page =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operating.md")).unwrap();
    page.split("<!-- tested: tests/alerting.rs reads this block -->")
        .skip(1)
        .map(|part| {
            let body = part.split_once("```yaml\n").expect("a yaml block").1;
            body.split_once("```").expect("its end").0.to_string()
        })
        .collect()
}

/// A scrape target of the test, as an interface's probe is: answers every request with one
/// sample until dropped, then refuses connections.
struct Probe {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probe {
    fn start(port: u16) -> Probe {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "probe_answered 1\n";
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Probe {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Now, in event time.
fn now() -> srv_opr::engine::time::Ts {
    srv_opr::engine::time::Ts(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64,
    )
}

/// The complete minutes of `[from, to)` (London's minutes are UTC's: its offsets are hours).
fn complete_minutes(from: srv_opr::engine::time::Ts, to: srv_opr::engine::time::Ts) -> i64 {
    const MINUTE: i64 = 60_000_000_000;
    (to.0.div_euclid(MINUTE) - (from.0 + MINUTE - 1).div_euclid(MINUTE)).max(0)
}

/// SUM1 from the monitoring people already run, every part real: Prometheus scrapes an
/// interface's probe (labelled `interface: DUIS`) with the operating page's rule; the probe is stopped
/// late in a minute until 3 s into the minute after next; the alert fires, Alertmanager calls `run`'s webhook over TLS
/// with basic auth (the operating page's receiver), the webhook produces into the real broker, `run`
/// consumes it back; the probe comes back, the alert resolves, Alertmanager sends that too.
/// The events' times are the outage's within the scrape and evaluation intervals (1 s each,
/// allowed 6 s), and `run` counts the one complete minute between them as down.
#[test]
fn an_outage_seen_by_prometheus_reaches_run_through_alertmanagers_webhook() {
    use crate::support::read_topic;
    use srv_opr::engine::time::{Dur, parse_rfc3339};

    let brokers = brokers();
    let topic = unique("sum1-webhook");
    create_topic_on(&brokers, &topic, 3);
    create_topic_on(&brokers, &format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    const HOOK: &str = "hook-pass-right-7";
    let pki = Pki::create(d, "srv");
    std::fs::write(d.join("web.yml"), web_config(&pki, "alertmanager", HOOK)).unwrap();
    std::fs::write(d.join("hook-password"), HOOK).unwrap();
    let (http, am, prom, probe_port) = (free_port(), free_port(), free_port(), free_port());
    let env: Vec<(String, String)> = [
        ("SRV_OPR__KAFKA__BROKERS", brokers.clone()),
        ("SRV_OPR__KAFKA__TOPICS", format!("[\"{topic}\"]")),
        ("SRV_OPR__KAFKA__GROUP_ID", unique("sum1-webhook")),
        ("SRV_OPR__KAFKA__DEAD_LETTER_TOPIC", format!("{topic}-dead")),
        ("SRV_OPR__KAFKA__IDLE_TIMEOUT", "1s".into()),
        ("SRV_OPR__HTTP__LISTEN", format!("127.0.0.1:{http}")),
        ("SRV_OPR__HTTP__WEB_CONFIG_FILE", "web.yml".into()),
        ("SRV_OPR__STATE__URL", "sqlite://state.db".into()),
        ("SRV_OPR__ALERTS__INTERVAL", "1s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut run = spawn_srv_run(d, &env, "run-out", "run.log");
    let _run = KillOnDrop(run.id());
    let status = || -> Result<serde_json::Value, String> {
        let (code, body) = https_get(
            &format!("https://localhost:{http}/status.json"),
            &pki.ca,
            Some(("alertmanager", HOOK)),
        );
        if code != 200 {
            return Err(format!("HTTP {code}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| e.to_string())
    };
    wait_for(d, "run holds its partitions", 60, || {
        let s = status()?;
        let p = &s["pipeline"]["partitions"];
        if p.as_array().is_some_and(|ps| ps.len() == 3) {
            Ok(())
        } else {
            Err(p.to_string())
        }
    });

    let blocks = operating_page_blocks();
    assert_eq!(blocks.len(), 2, "the page's rule and receiver");
    std::fs::write(d.join("interfaces.rules.yml"), &blocks[0]).unwrap();
    let receiver = blocks[1]
        .replace(
            "https://srv-opr.example:9898",
            &format!("https://localhost:{http}"),
        )
        .replace(
            "/etc/alertmanager/srv-opr-password",
            &d.join("hook-password").display().to_string(),
        )
        .replace(
            "/etc/alertmanager/srv-opr-ca.pem",
            &pki.ca.display().to_string(),
        );
    assert_eq!(
        receiver.matches(&d.display().to_string()).count(),
        2,
        "{receiver}"
    );
    let _am = alertmanager_with(d, am, None, &receiver);
    let probe = Probe::start(probe_port);
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - interfaces.rules.yml\nalerting:\n  alertmanagers:\n    - \
             static_configs:\n        - targets: [\"127.0.0.1:{am}\"]\nscrape_configs:\n  - \
             job_name: dcc-interfaces\n    static_configs:\n      - targets: \
             [\"127.0.0.1:{probe_port}\"]\n        labels: {{interface: DUIS}}\n"
        ),
    )
    .unwrap();
    let _prom = prometheus(d, prom);
    let prom_addr = format!("127.0.0.1:{prom}");
    wait_for(d, "Prometheus scrapes the probe", 60, || {
        let v = get_json(&prom_addr, "/api/v1/targets")?;
        let t = &v["data"]["activeTargets"][0];
        if t["health"] == "up" && t["labels"]["interface"] == "DUIS" {
            Ok(())
        } else {
            Err(t.to_string())
        }
    });
    // Stopped late in a minute (so that even 6 s later is still in it), back 3 s into the
    // minute after next: exactly one complete minute down, whatever the intervals' seconds.
    wait_for(d, "the 40th to 50th second of a minute", 70, || {
        let second = now().0.div_euclid(1_000_000_000).rem_euclid(60);
        if (40..=50).contains(&second) {
            Ok(())
        } else {
            Err(format!("second {second}"))
        }
    });
    let stopped = now();
    drop(probe);
    let interface = |s: &serde_json::Value| -> serde_json::Value {
        s["interfaces"]
            .as_array()
            .and_then(|l| l.iter().find(|i| i["interface"] == "DUIS").cloned())
            .unwrap_or_default()
    };
    wait_for(d, "run sees DUIS down", 60, || {
        let i = interface(&status()?);
        if i["state"] == "down" {
            Ok(())
        } else {
            Err(i.to_string())
        }
    });
    const MINUTE: i64 = 60_000_000_000;
    let back = (stopped.0.div_euclid(MINUTE) + 2) * MINUTE + 3_000_000_000;
    std::thread::sleep(Duration::from_nanos((back - now().0).max(0) as u64));
    let restarted = now();
    let _probe = Probe::start(probe_port);
    let seen = wait_for(d, "run sees DUIS up again", 90, || {
        let i = interface(&status()?);
        if i["state"] == "up" {
            Ok(i)
        } else {
            Err(i.to_string())
        }
    });

    // What the webhook produced: DUIS down and up, at the outage's edges.
    let events: Vec<serde_json::Value> = read_topic(&topic, 3, 2)
        .into_iter()
        .map(|(_, key, payload)| {
            assert_eq!(key.as_deref(), Some(&b"DUIS"[..]));
            serde_json::from_slice(&payload).unwrap()
        })
        .collect();
    let at = |state: &str| {
        let e = events
            .iter()
            .find(|e| e["state"] == state)
            .unwrap_or_else(|| panic!("no {state} event: {events:?}"));
        assert_eq!(e["type"], "availability");
        assert_eq!(e["interface"], "DUIS");
        parse_rfc3339(e["at"].as_str().unwrap().as_bytes()).unwrap()
    };
    let (down, up) = (at("down"), at("up"));
    let slack = Dur::from_secs(6);
    assert!(
        down >= stopped.minus(Dur::from_secs(1)) && down <= stopped.plus(slack),
        "down at {down}, stopped at {stopped}"
    );
    assert!(
        up >= restarted.minus(Dur::from_secs(1)) && up <= restarted.plus(slack),
        "up at {up}, restarted at {restarted}"
    );
    assert_eq!(complete_minutes(down, up), 1, "{down} to {up}");
    assert_eq!(seen["down_minutes"], 1, "{seen}");
    let (_, metrics) = https_get(
        &format!("https://localhost:{http}/metrics"),
        &pki.ca,
        Some(("alertmanager", HOOK)),
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "srv_interface_month_to_date_down_minutes{interface=\"DUIS\"} 1"),
        "{metrics}"
    );
    // Every event the webhook produced was valid.
    let dead: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("srv_dead_letters_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(dead.is_empty(), "{dead:?}");
    // Stopped: the month's row in run's own availability.csv.
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(run.wait().unwrap().success(), "run did not stop cleanly");
    let month = seen["month"].as_str().unwrap().to_string();
    let csv = std::fs::read_to_string(d.join("run-out/availability.csv")).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with(&format!("{month},DUIS,")))
        .unwrap_or_else(|| panic!("{csv}"));
    let fields: Vec<&str> = row.split(',').collect();
    assert_eq!(fields[3], "1", "down_minutes: {row}");
}
