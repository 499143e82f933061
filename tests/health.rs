//! The pipeline's health as a state of its own (issue 33), against real brokers: `run` pointed
//! at a port where no broker answers, `run` whose broker is killed mid-run, and `run` whose
//! password is changed at the broker mid-run. Each raises its alert in `/metrics`, puts a banner
//! at the top of the status page, makes `srv-opr status --check` exit 2 and `/readyz` answer 503
//! saying which; the outage's alert resolves when the broker is back.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::support::kafka_node::{java_tool, quiet_port};
use crate::support::{
    KillOnDrop, OwnServer, create_topic_on, free_port, get_json, http_get, spawn_srv_run,
    wait_until,
};

/// Whether `srv_alert_active` is 1 for the alert `name`.
fn active(metrics: &str, name: &str) -> bool {
    metrics
        .lines()
        .any(|l| l.starts_with(&format!("srv_alert_active{{alert=\"{name}\"")) && l.ends_with(" 1"))
}

/// `srv-opr status --url http://ADDR --check`: its exit code and output.
fn check(addr: &str) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(["status", "--url", &format!("http://{addr}"), "--check"])
        .output()
        .unwrap();
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Waits until `alert` fires: in `/metrics`, in `status --check` (exit 2, its first line the
/// overall state naming it), and on the page's banner. Returns `/readyz`'s answer then.
fn wait_for_critical(d: &Path, addr: &str, alert: &str, secs: u64) -> (u16, String) {
    wait_until(d, &["run.log"], &format!("{alert} firing"), secs, || {
        let (_, metrics) = http_get(addr, "/metrics");
        if !active(&metrics, alert) {
            return Err("not in /metrics yet".into());
        }
        let (code, text) = check(addr);
        if code != Some(2) || !text.lines().next().unwrap_or("").contains(alert) {
            return Err(format!("status --check exit {code:?}: {text}"));
        }
        Ok(())
    });
    let (_, page) = http_get(addr, "/");
    assert!(
        page.contains("<div id=\"health\" class=\"banner crit\" data-state=\"critical\""),
        "the banner is the first thing on the page: {}",
        &page[..page.len().min(3000)]
    );
    let body = page.split("<body>").nth(1).unwrap_or("");
    assert!(
        body.trim_start().starts_with("<div id=\"health\""),
        "the banner comes first"
    );
    http_get(addr, "/readyz")
}

#[test]
fn no_broker_at_all_is_critical_within_two_minutes_with_the_default_timings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let env: Vec<(String, String)> = vec![
        (
            "SRV_OPR__KAFKA__BROKERS".into(),
            format!("127.0.0.1:{}", quiet_port()),
        ),
        ("SRV_OPR__HTTP__LISTEN".into(), addr.clone()),
        ("SRV_OPR__STATE__URL".into(), String::new()),
    ];
    let started = Instant::now();
    let mut run = spawn_srv_run(d, &env, "out", "run.log");
    let _run = KillOnDrop(run.id());
    let (code, ready) = wait_for_critical(d, &addr, "SrvKafkaUnreachable", 120);
    eprintln!(
        "SrvKafkaUnreachable fired {} s after the start",
        started.elapsed().as_secs()
    );
    assert_eq!(code, 503, "{ready}");
    assert!(ready.starts_with("no Kafka broker answers"), "{ready}");
    let s = get_json(&addr, "/status.json").unwrap();
    assert_eq!(s["health"]["state"], "critical", "{s}");
    assert!(
        s["health"]["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("No Kafka broker answers since"),
        "{s}"
    );
    let (_, metrics) = http_get(&addr, "/metrics");
    assert!(metrics.contains("\nsrv_kafka_brokers_up 0\n"), "{metrics}");
    assert!(
        !active(&metrics, "SrvNoPartitionAssigned"),
        "one alert for one cause: no broker, not also no partition"
    );
    // The page's URL or the JSON's serve as --url (issue 33: the JSON's was doubled).
    for url in [
        format!("http://{addr}/status.json"),
        format!("http://{addr}/"),
        format!("http://{addr}/index.html"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_srv-opr"))
            .args(["status", "--url", &url, "--check"])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{url}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // `status --json | head -1`: the reader gone, it ends quietly with exit 0 (issue 33).
    crate::replay::cli::ends_quietly_on_a_closed_pipe(
        &["status", "--url", &format!("http://{addr}"), "--json"],
        d,
    );
    crate::replay::cli::ends_quietly_on_a_closed_pipe(
        &["status", "--url", &format!("http://{addr}")],
        d,
    );
    stop(&mut run);
}

/// Stops `run` as a supervisor does (SIGTERM) and waits for it: it stops whatever the brokers
/// do.
fn stop(run: &mut std::process::Child) {
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    let status = run.wait().unwrap();
    assert!(
        status.code().is_some(),
        "stopped by the signal's handler: {status:?}"
    );
}

/// The secured listeners' material of the broker `scripts/kafka` started on `port`.
fn tls_env(port: u16) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(format!("/tmp/srv-opr-kafka-{port}/tls/env")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_broker_killed_and_a_password_changed_mid_run_each_raise_their_alert() {
    const PORT: u16 = 29392;
    let (broker, plain) = OwnServer::kafka(PORT);
    let tls = tls_env(PORT);
    let password = std::fs::read_to_string(&tls["PASSWORD_FILE"])
        .unwrap()
        .trim()
        .to_string();
    let topic = "health-events";
    create_topic_on(&plain, topic, 3);
    create_topic_on(&plain, &format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    std::fs::create_dir_all(d.join("config")).unwrap();
    std::fs::write(
        d.join("config/srv-opr.toml"),
        format!(
            "[kafka]\nbrokers = {:?}\ntopics = [{topic:?}]\ngroup_id = \"health\"\n\
             dead_letter_topic = \"{topic}-dead\"\n\n[kafka.properties]\n\
             \"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanisms\" = \"SCRAM-SHA-512\"\n\
             \"sasl.username\" = \"srv-opr\"\n\"ssl.ca.location\" = {:?}\n\n[kafka.secrets]\n\
             \"sasl.password\" = \"SRV_OPR_KAFKA_PASSWORD\"\n\n[http]\nlisten = {addr:?}\n\n\
             [state]\nurl = \"\"\n\n[alerts]\ninterval = \"1s\"\nhealth_for = \"3s\"\n",
            tls["SASL_SSL"], tls["CA"]
        ),
    )
    .unwrap();
    let env = vec![("SRV_OPR_KAFKA_PASSWORD".to_string(), password.clone())];
    let mut run = spawn_srv_run(d, &env, "out", "run.log");
    let _run = KillOnDrop(run.id());
    let ready = || http_get(&addr, "/readyz");
    wait_until(d, &["run.log"], "ready over SASL_SSL", 90, || {
        let (code, body) = ready();
        (code == 200).then_some(()).ok_or(body)
    });
    assert_eq!(check(&addr).0, Some(0), "{}", check(&addr).1);

    // The broker killed: down for 30 s.
    let restart = broker.restart_in_background(30);
    let (code, body) = wait_for_critical(d, &addr, "SrvKafkaUnreachable", 60);
    assert_eq!(code, 503);
    assert!(body.starts_with("no Kafka broker answers"), "{body}");
    restart.join().unwrap();
    wait_until(
        d,
        &["run.log"],
        "resolved once the broker is back",
        90,
        || {
            let (_, metrics) = http_get(&addr, "/metrics");
            let (code, body) = ready();
            (!active(&metrics, "SrvKafkaUnreachable") && code == 200)
                .then_some(())
                .ok_or(body)
        },
    );
    assert_eq!(check(&addr).0, Some(0), "{}", check(&addr).1);

    // The password changed at the broker, which is restarted: every new connection is refused.
    let o = java_tool(
        "org.apache.kafka.tools.ConfigCommand",
        &[
            "--bootstrap-server",
            &plain,
            "--alter",
            "--add-config",
            "SCRAM-SHA-512=[password=changed-at-the-broker-71c4]",
            "--entity-type",
            "users",
            "--entity-name",
            "srv-opr",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    broker.restart_in_background(0).join().unwrap();
    let (code, body) = wait_for_critical(d, &addr, "SrvKafkaRefused", 90);
    assert_eq!(code, 503);
    assert!(
        body.starts_with("the Kafka brokers refuse this client's credentials"),
        "{body}"
    );
    let (_, metrics) = http_get(&addr, "/metrics");
    assert!(
        metrics.contains("srv_kafka_connection_refused{reason=\"authentication\"} 1"),
        "{metrics}"
    );
    assert!(
        !active(&metrics, "SrvKafkaUnreachable"),
        "a refusal is not an outage"
    );
    let (_, text) = check(&addr);
    assert!(text.contains("credentials"), "{text}");
    let log = std::fs::read_to_string(d.join("run.log")).unwrap();
    assert!(!log.contains(&password), "the password was logged");
    assert!(!text.contains(&password));
    stop(&mut run);
}
