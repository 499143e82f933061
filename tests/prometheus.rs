//! The generated Prometheus rules against the real tools: the committed rules file is what
//! `srv-opr alert-rules` generates, `promtool check rules` accepts it, `promtool test rules`
//! passes the hand-written cases, and every metric the rules and the Grafana dashboard name is
//! one `/metrics` exposes. (`scripts/test` installs Debian's `prometheus` for `promtool`.)

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use srv_opr::config::Config;
use srv_opr::ops::live::Live;
use srv_opr::ops::metrics::Metrics;

const RULES: &str = "deploy/prometheus/rules/srv-opr.yml";
const RULE_TESTS: &str = "deploy/prometheus/rules/srv-opr.test.yml";
const DASHBOARD: &str = "deploy/grafana/provisioning/dashboards/srv-opr.json";

fn promtool(args: &[&str]) -> std::process::Output {
    let o = Command::new("promtool").args(args).output().unwrap_or_else(|e| {
        panic!("promtool is not installed ({e}): run scripts/test, which installs Debian's prometheus")
    });
    assert!(
        o.status.success(),
        "promtool {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn the_committed_rules_are_what_alert_rules_generates() {
    let cfg = Config::builtin().unwrap();
    let generated = srv_opr::ops::alerts::rules::generate(&cfg.definitions, &cfg.settings.alerts);
    let committed = std::fs::read_to_string(RULES).unwrap();
    assert!(
        generated == committed,
        "{RULES} is stale: run `cargo run -- alert-rules --out {RULES}` and commit it"
    );
}

#[test]
fn promtool_accepts_the_rules_and_passes_their_cases() {
    promtool(&["check", "rules", RULES]);
    promtool(&["test", "rules", RULE_TESTS]);
}

/// `/metrics` of a live view holding one partition with a month of counts (so per-partition and
/// month series exist), with a store configured and an alert board holding a projection.
fn exposed() -> Vec<String> {
    let cfg = Config::builtin().unwrap();
    let live = Arc::new(Live::new(std::time::Duration::from_secs(30)));
    let mut view = crate::support::part_view(
        srv_opr::engine::time::Ts(1_710_000_000_000_000_000),
        5,
        BTreeMap::from([(
            srv_opr::engine::calendar::Month::new(2024, 3),
            vec![
                [srv_opr::ops::live::Counts {
                    requests: 10,
                    within_target: 9,
                    succeeded: 10,
                    no_response: 0,
                }; 3];
                cfg.definitions.measures.len()
            ],
        )]),
    );
    view.unsaved_since = Some(Instant::now());
    // Lines of an ignored type (issue 32): their counter appears.
    view.stats.ignored_by_type.insert("alert".into(), 3);
    // An interface down: the availability families appear (issue 30).
    let mut down = srv_opr::engine::availability::Timeline::default();
    down.record(
        srv_opr::engine::time::parse_rfc3339(b"2024-03-10T10:00:00Z").unwrap(),
        srv_opr::engine::availability::State::Down,
    );
    view.availability = vec![down; cfg.definitions.interfaces.len()];
    live.publish("t", 0, view);
    live.set_end_offset("t", 0, 10);
    // No broker up and the last refusal an authentication failure: the health families appear
    // (issue 33).
    live.link.brokers(0, std::time::SystemTime::now());
    live.link.error(
        Some(rdkafka::error::RDKafkaErrorCode::Authentication),
        "SASL authentication error",
    );
    // A signed month (issue 31): its restated fields appear.
    live.set_signoffs(srv_opr::ops::live::SignoffsRead {
        months: vec![srv_opr::signoff::SignedMonth {
            month: "2024-02".into(),
            view: "opr".into(),
            signed_at: "2024-03-05T10:00:00Z".into(),
            signed_by: "analyst".into(),
            forced: false,
            is_final: true,
            restated_fields: 3,
            causes: vec!["late events: 1 (applied after the month was final)".into()],
            changes: Vec::new(),
        }],
        ..Default::default()
    });
    let metrics = Metrics::new(
        Arc::new(cfg.definitions.clone()),
        srv_opr::engine::calendar::Calendar::new(&cfg.settings.time.zone).unwrap(),
        live,
        true,
        Some(Arc::new(std::sync::Mutex::new(
            srv_opr::ops::alerts::AlertBoard {
                firing: Vec::new(),
                projected: BTreeMap::from([((0, 0), 99.5)]),
                ..Default::default()
            },
        ))),
    )
    .and_then(|m| {
        m.with_availability(srv_opr::ops::interfaces::Interfaces::new(
            Arc::new(srv_opr::engine::exemption::Register::default()),
            &srv_opr::config::schemes::all(&cfg).unwrap(),
        ))
    })
    .and_then(|m| m.with_signoffs())
    .unwrap();
    let text = metrics.render().unwrap();
    // Every family says what it is in plain words: no help text with a run of spaces (a line
    // continuation once left 18 in three of them).
    for help in text.lines().filter(|l| l.starts_with("# HELP ")) {
        assert!(!help.contains("  "), "{help}");
    }
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .flat_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next().unwrap_or("").to_string();
            match it.next() {
                Some("histogram") => vec![
                    format!("{name}_bucket"),
                    format!("{name}_sum"),
                    format!("{name}_count"),
                    name,
                ],
                _ => vec![name],
            }
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_metric_the_rules_and_the_dashboard_name_is_exposed() {
    let exposed = exposed();
    for name in [
        "srv_response_time_seconds",
        "srv_checkpoint_age_seconds",
        "srv_alert_active",
        "srv_consumer_lag",
        "srv_error_budget_remaining",
    ] {
        assert!(exposed.contains(&name.to_string()), "{name}: {exposed:?}");
    }
    for file in [RULES, DASHBOARD] {
        let text = std::fs::read_to_string(file).unwrap();
        let used = srv_opr::ops::alerts::rules::metric_names(&text);
        assert!(used.len() >= 5, "{file}: {used:?}");
        for name in used {
            assert!(
                exposed.contains(&name),
                "{file} uses {name}, which /metrics lacks"
            );
        }
    }
    // The dashboard is valid JSON with panels.
    let d: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    assert!(d["panels"].as_array().is_some_and(|p| p.len() >= 6));
}

#[test]
fn a_response_time_histogram_has_an_edge_at_every_trt() {
    let cfg = Config::builtin().unwrap();
    let live = Arc::new(Live::new(std::time::Duration::from_secs(30)));
    let metrics = Metrics::new(
        Arc::new(cfg.definitions.clone()),
        srv_opr::engine::calendar::Calendar::new(&cfg.settings.time.zone).unwrap(),
        live,
        false,
        None,
    )
    .unwrap();
    let text = metrics.render().unwrap();
    for le in ["25", "30", "86400"] {
        let series = format!(
            "srv_response_time_seconds_bucket{{measure=\"PM4.3\",region=\"north\",le=\"{le}\"}}"
        );
        assert!(text.contains(&series), "{series} missing");
    }
    assert!(
        !text.contains("srv_checkpoint_age_seconds"),
        "no store, no checkpoint age"
    );
}

#[test]
fn readyz_waits_for_partitions_and_for_the_lag_to_fall_below_the_threshold() {
    let cfg = Config::builtin().unwrap();
    let live = Arc::new(Live::new(std::time::Duration::from_secs(30)));
    let metrics = Arc::new(
        Metrics::new(
            Arc::new(cfg.definitions.clone()),
            srv_opr::engine::calendar::Calendar::new(&cfg.settings.time.zone).unwrap(),
            live.clone(),
            false,
            None,
        )
        .unwrap(),
    );
    let routes = srv_opr::ops::http::routes::Routes {
        metrics,
        live: live.clone(),
        max_lag: 1000,
        status: None,
        intake: None,
    };
    let server = srv_opr::ops::http::serve("127.0.0.1:0", None, routes).unwrap();
    let addr = server.addr.to_string();
    let (status, body) = crate::support::http_get(&addr, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no partition"), "{body}");
    let view = |next_offset| {
        crate::support::part_view(srv_opr::engine::time::Ts::MIN, next_offset, BTreeMap::new())
    };
    live.set_assigned(1);
    live.publish("t", 0, view(0));
    live.set_end_offset("t", 0, 5000);
    let (status, body) = crate::support::http_get(&addr, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("catching up: 5000 messages behind"), "{body}");
    live.publish("t", 0, view(4500));
    let (status, body) = crate::support::http_get(&addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("500 messages behind"), "{body}");
}
