//! The service settings of `srv-opr.toml`: time zone, lateness, horizons and input limits,
//! validated into typed values.

use serde::Deserialize;
use toml::Table;

use super::layer::{self, Origins};
use super::{DEFAULT_SETTINGS, Problems};
use crate::engine::time::Dur;

/// Validated service settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Event time and correlation windows.
    pub time: TimeSettings,
    /// Input limits.
    pub input: InputSettings,
    /// Kafka (`run`).
    pub kafka: KafkaSettings,
    /// The HTTP endpoint of `run` and `demo` (`/metrics`, `/healthz`, `/readyz`).
    pub http: HttpSettings,
    /// The state store of `run` and `rollup`.
    pub state: StateSettings,
    /// The alert evaluator of `run` and the generated Prometheus rules.
    pub alerts: AlertSettings,
}

/// `[alerts]`: when a measure or the pipeline raises an alert, and where alerts go.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Evaluate every…
    pub interval: Dur,
    /// A condition holds this long before its alert fires.
    pub hold: Dur,
    /// Fewest requests in a window for a measure alert.
    pub min_requests: u64,
    /// Fast burn: long and short windows.
    pub fast_burn_windows: (Dur, Dur),
    /// Fast burn: times the budget ratio.
    pub fast_burn_rate: f64,
    /// Slow burn: long and short windows.
    pub slow_burn_windows: (Dur, Dur),
    /// Slow burn: times the budget ratio.
    pub slow_burn_rate: f64,
    /// No requests for this long…
    pub no_data_window: Dur,
    /// …after some in this long before it.
    pub no_data_lookback: Dur,
    /// Consumer lag and nothing processed for this long.
    pub stall_window: Dur,
    /// Events processed and the watermark unmoved for this long.
    pub watermark_stuck_window: Dur,
    /// Window of the dead-letter ratio.
    pub dead_letter_window: Dur,
    /// Dead letters above this percentage of the window's events.
    pub dead_letter_percent: f64,
    /// Alertmanager base URL (`http://HOST:PORT`), or empty.
    pub alertmanager_url: String,
    /// Active alerts are sent again this often.
    pub resend_interval: Dur,
}

/// `[state]`: where `run` checkpoints its partitions and `rollup` reads them.
#[derive(Debug, Clone)]
pub struct StateSettings {
    /// `sqlite://PATH` (embedded, one instance), `postgres://…` (shared by the group), or empty
    /// for none (state in memory only: a restart reads every partition from the beginning).
    pub url: String,
    /// Environment variable holding the PostgreSQL password (kept out of the URL and the logs).
    pub password_env: String,
    /// Checkpoint a partition after this many events…
    pub checkpoint_events: u64,
    /// …or this long after its previous checkpoint, whichever comes first.
    pub checkpoint_interval: Dur,
}

/// `[http]`: where `run` serves its metrics and health endpoints.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Listen address, `127.0.0.1:9898` by default; empty to serve nothing.
    pub listen: String,
    /// `/readyz` answers 503 while the held partitions lag by more messages than this.
    pub ready_max_lag: u64,
}

/// `[kafka]`: the consumer group of `run`.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Consumer group id.
    pub group_id: String,
    /// Where dead letters are produced.
    pub dead_letter_topic: String,
    /// Dead-letter messages whose partition does not match their key.
    pub verify_partitioning: bool,
    /// A partition silent this long (wall clock) stops holding the watermark back.
    pub idle_timeout: Dur,
    /// Events further ahead of the wall clock are `future_timestamp`.
    pub max_future_skew: Dur,
    /// Threads that decode and correlate (partitions are spread over them); 0 = one fewer than
    /// the machine's cores, at least one.
    pub workers: usize,
    /// How long a stop (SIGINT/SIGTERM) may take to drain and hand over every partition.
    pub shutdown_timeout: Dur,
    /// Extra librdkafka properties.
    pub properties: Vec<(String, String)>,
    /// librdkafka properties read from environment variables: (property, variable).
    pub secrets: Vec<(String, String)>,
}

/// A secret value: shown as `*****` by `Debug` and `Display`, so it cannot reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(v: String) -> Secret {
        Secret(v)
    }

    /// The value, for handing to librdkafka only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("*****")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("*****")
    }
}

/// librdkafka properties that hold secrets: refused under `[kafka.properties]`.
const SECRET_PROPERTIES: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.config",
];

impl KafkaSettings {
    /// Reads the secrets from `env` (name → value); a missing variable is an error naming it.
    pub fn resolve_secrets(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, Secret)>, MissingSecret> {
        self.secrets
            .iter()
            .map(|(prop, var)| {
                env(var)
                    .map(|v| (prop.clone(), Secret::new(v)))
                    .ok_or_else(|| MissingSecret {
                        property: prop.clone(),
                        variable: var.clone(),
                    })
            })
            .collect()
    }
}

/// A `[kafka.secrets]` property whose environment variable is not set.
#[derive(Debug, Clone, thiserror::Error)]
#[error("[kafka.secrets] {property:?} reads environment variable {variable}, which is not set")]
pub struct MissingSecret {
    /// The librdkafka property.
    pub property: String,
    /// The variable it reads.
    pub variable: String,
}

/// `[time]`: how event time is judged.
#[derive(Debug, Clone)]
pub struct TimeSettings {
    /// IANA zone of the reporting months (`Europe/London`).
    pub zone: String,
    /// How far behind the newest event another may arrive and still be on time.
    pub allowed_lateness: Dur,
    /// How long decided requests are remembered past their longest deadline.
    pub dedupe_horizon: Dur,
    /// How long a response waits for its request; `None` means the longest deadline.
    pub orphan_wait: Option<Dur>,
    /// Cap on responses waiting for their requests.
    pub max_waiting_responses: usize,
}

/// `[input]`: limits on what is read.
#[derive(Debug, Clone)]
pub struct InputSettings {
    /// Events larger than this many bytes are `oversized`.
    pub max_event_bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    time: RawTime,
    input: RawInput,
    kafka: RawKafka,
    http: RawHttp,
    state: RawState,
    alerts: RawAlerts,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    interval: String,
    #[serde(rename = "for")]
    hold: String,
    min_requests: i64,
    fast_burn_windows: Vec<String>,
    fast_burn_rate: f64,
    slow_burn_windows: Vec<String>,
    slow_burn_rate: f64,
    no_data_window: String,
    no_data_lookback: String,
    stall_window: String,
    watermark_stuck_window: String,
    dead_letter_window: String,
    dead_letter_percent: f64,
    alertmanager_url: String,
    resend_interval: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    url: String,
    password_env: String,
    checkpoint_events: i64,
    checkpoint_interval: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: String,
    ready_max_lag: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafka {
    brokers: String,
    topics: Vec<String>,
    group_id: String,
    dead_letter_topic: String,
    verify_partitioning: bool,
    idle_timeout: String,
    max_future_skew: String,
    workers: i64,
    shutdown_timeout: String,
    properties: Table,
    secrets: Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    zone: String,
    allowed_lateness: String,
    dedupe_horizon: String,
    orphan_wait: String,
    max_waiting_responses: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    max_event_bytes: i64,
}

/// Layers the defaults, the file (`(name, text)`) and the environment, then validates.
pub(super) fn load(
    file: Option<&(String, String)>,
    env: &[(String, String)],
    problems: &mut Problems,
    sources: &mut Vec<String>,
) -> Option<Settings> {
    let schema: Table = match DEFAULT_SETTINGS.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push("built-in srv-opr.toml", "", e.to_string());
            return None;
        }
    };
    let mut merged = schema.clone();
    let mut origins = Origins::new();
    if let Some((name, text)) = file {
        match text.parse::<Table>() {
            Ok(t) => layer::merge(&mut merged, &schema, &t, "", name, &mut origins, problems),
            Err(e) => problems.push(name, "", format!("not valid TOML: {e}")),
        }
    }
    for (source, t) in layer::env_layer(env, &schema, problems) {
        sources.push(source.clone());
        layer::merge(
            &mut merged,
            &schema,
            &t,
            "",
            &source,
            &mut origins,
            problems,
        );
    }
    // Values of the wrong type or under unknown keys were reported and not merged, so the merged
    // table has the schema's shape: validate every value in it, reporting all problems at once.
    let raw: Raw = match toml::Value::Table(merged).try_into() {
        Ok(r) => r,
        Err(e) => {
            problems.push("srv-opr.toml", "", e.to_string());
            return None;
        }
    };
    let origin = |key: &str| {
        origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "built-in srv-opr.toml".to_string())
    };
    let dur = |key: &str, text: &str, problems: &mut Problems| match Dur::parse(text) {
        Ok(d) if d.0 >= 0 => Some(d),
        Ok(_) => {
            problems.push(&origin(key), key, "must not be negative".into());
            None
        }
        Err(e) => {
            problems.push(&origin(key), key, e.to_string());
            None
        }
    };
    let allowed_lateness = dur(
        "time.allowed_lateness",
        &raw.time.allowed_lateness,
        problems,
    );
    let dedupe_horizon = dur("time.dedupe_horizon", &raw.time.dedupe_horizon, problems);
    let orphan_wait = if raw.time.orphan_wait == "auto" {
        Some(None)
    } else {
        dur("time.orphan_wait", &raw.time.orphan_wait, problems).map(Some)
    };
    if let Err(e) = crate::engine::calendar::Calendar::new(&raw.time.zone) {
        problems.push(
            &origin("time.zone"),
            "time.zone",
            crate::diagnostic::chain(&e),
        );
    }
    let positive = |key: &str, v: i64, problems: &mut Problems| {
        if v <= 0 {
            problems.push(&origin(key), key, format!("must be at least 1, found {v}"));
            None
        } else {
            Some(v as usize)
        }
    };
    let max_waiting = positive(
        "time.max_waiting_responses",
        raw.time.max_waiting_responses,
        problems,
    );
    let max_event_bytes = positive("input.max_event_bytes", raw.input.max_event_bytes, problems);
    let k = raw.kafka;
    let idle_timeout = dur("kafka.idle_timeout", &k.idle_timeout, problems);
    let max_future_skew = dur("kafka.max_future_skew", &k.max_future_skew, problems);
    let shutdown_timeout = dur("kafka.shutdown_timeout", &k.shutdown_timeout, problems);
    if k.workers < 0 || k.workers > 256 {
        problems.push(
            &origin("kafka.workers"),
            "kafka.workers",
            format!("must be 0 (automatic) to 256, found {}", k.workers),
        );
    }
    let listen = raw.http.listen.trim().to_string();
    if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(
            &origin("http.listen"),
            "http.listen",
            format!("{listen:?} is not an address like 127.0.0.1:9898 (or empty for none)"),
        );
    }
    let st = raw.state;
    let url = st.url.trim().to_string();
    if !url.is_empty()
        && !url.starts_with("sqlite://")
        && !url.starts_with("postgres://")
        && !url.starts_with("postgresql://")
    {
        problems.push(
            &origin("state.url"),
            "state.url",
            format!("{url:?} is neither sqlite://PATH nor postgres://… (nor empty for none)"),
        );
    }
    let checkpoint_interval = dur(
        "state.checkpoint_interval",
        &st.checkpoint_interval,
        problems,
    );
    let checkpoint_events = positive("state.checkpoint_events", st.checkpoint_events, problems);
    let strings = |table: &Table, prefix: &str, problems: &mut Problems| -> Vec<(String, String)> {
        table
            .iter()
            .filter_map(|(key, v)| match v.as_str() {
                Some(s) => Some((key.clone(), s.to_string())),
                None => {
                    let path = format!("{prefix}.{key}");
                    problems.push(&origin(&path), &path, "must be a string".into());
                    None
                }
            })
            .collect()
    };
    let properties = strings(&k.properties, "kafka.properties", problems);
    let secrets = strings(&k.secrets, "kafka.secrets", problems);
    for (key, _) in &properties {
        if SECRET_PROPERTIES.contains(&key.as_str()) {
            let path = format!("kafka.properties.{key}");
            problems.push(
                &origin(&path),
                &path,
                "is a secret: name an environment variable under [kafka.secrets] instead".into(),
            );
        }
    }
    if k.topics.is_empty() || k.topics.iter().any(String::is_empty) {
        problems.push(
            &origin("kafka.topics"),
            "kafka.topics",
            "name at least one topic".into(),
        );
    }
    let a = raw.alerts;
    let positive_dur = |key: &str, text: &str, problems: &mut Problems| {
        let d = dur(key, text, problems)?;
        if d.0 == 0 {
            problems.push(&origin(key), key, "must be longer than zero".into());
            return None;
        }
        Some(d)
    };
    let pair = |key: &str, v: &[String], problems: &mut Problems| -> Option<(Dur, Dur)> {
        match v {
            [long, short] => {
                let (l, s) = (
                    positive_dur(key, long, problems)?,
                    positive_dur(key, short, problems)?,
                );
                if s >= l {
                    problems.push(
                        &origin(key),
                        key,
                        format!(
                            "the short window ({short}) must be shorter than the long ({long})"
                        ),
                    );
                    return None;
                }
                Some((l, s))
            }
            _ => {
                problems.push(
                    &origin(key),
                    key,
                    "must be two windows, long then short: [\"1h\", \"5m\"]".into(),
                );
                None
            }
        }
    };
    let rate = |key: &str, v: f64, problems: &mut Problems| {
        if v.is_finite() && v > 0.0 {
            Some(v)
        } else {
            problems.push(&origin(key), key, format!("must be above zero, found {v}"));
            None
        }
    };
    let am = a.alertmanager_url.trim().trim_end_matches('/').to_string();
    if !am.is_empty() && !am.starts_with("http://") {
        problems.push(
            &origin("alerts.alertmanager_url"),
            "alerts.alertmanager_url",
            format!("{am:?} must be http://HOST:PORT (or empty for none)"),
        );
    }
    let alerts = (|| {
        Some(AlertSettings {
            interval: positive_dur("alerts.interval", &a.interval, problems)?,
            hold: dur("alerts.for", &a.hold, problems)?,
            min_requests: a.min_requests.max(0) as u64,
            fast_burn_windows: pair("alerts.fast_burn_windows", &a.fast_burn_windows, problems)?,
            fast_burn_rate: rate("alerts.fast_burn_rate", a.fast_burn_rate, problems)?,
            slow_burn_windows: pair("alerts.slow_burn_windows", &a.slow_burn_windows, problems)?,
            slow_burn_rate: rate("alerts.slow_burn_rate", a.slow_burn_rate, problems)?,
            no_data_window: positive_dur("alerts.no_data_window", &a.no_data_window, problems)?,
            no_data_lookback: positive_dur(
                "alerts.no_data_lookback",
                &a.no_data_lookback,
                problems,
            )?,
            stall_window: positive_dur("alerts.stall_window", &a.stall_window, problems)?,
            watermark_stuck_window: positive_dur(
                "alerts.watermark_stuck_window",
                &a.watermark_stuck_window,
                problems,
            )?,
            dead_letter_window: positive_dur(
                "alerts.dead_letter_window",
                &a.dead_letter_window,
                problems,
            )?,
            dead_letter_percent: rate(
                "alerts.dead_letter_percent",
                a.dead_letter_percent,
                problems,
            )?,
            alertmanager_url: am.clone(),
            resend_interval: positive_dur("alerts.resend_interval", &a.resend_interval, problems)?,
        })
    })();
    if a.min_requests < 0 {
        problems.push(
            &origin("alerts.min_requests"),
            "alerts.min_requests",
            "must not be negative".into(),
        );
    }
    Some(Settings {
        time: TimeSettings {
            zone: raw.time.zone,
            allowed_lateness: allowed_lateness?,
            dedupe_horizon: dedupe_horizon?,
            orphan_wait: orphan_wait?,
            max_waiting_responses: max_waiting?,
        },
        input: InputSettings {
            max_event_bytes: max_event_bytes?,
        },
        kafka: KafkaSettings {
            brokers: k.brokers,
            topics: k.topics,
            group_id: k.group_id,
            dead_letter_topic: k.dead_letter_topic,
            verify_partitioning: k.verify_partitioning,
            idle_timeout: idle_timeout?,
            max_future_skew: max_future_skew?,
            workers: k.workers.clamp(0, 256) as usize,
            shutdown_timeout: shutdown_timeout?,
            properties,
            secrets,
        },
        http: HttpSettings {
            listen,
            ready_max_lag: raw.http.ready_max_lag.max(0) as u64,
        },
        state: StateSettings {
            url,
            password_env: st.password_env,
            checkpoint_events: checkpoint_events? as u64,
            checkpoint_interval: checkpoint_interval?,
        },
        alerts: alerts?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s} {s:?}"), "***** *****");
        let k = KafkaSettings {
            brokers: "b".into(),
            topics: vec!["t".into()],
            group_id: "g".into(),
            dead_letter_topic: "d".into(),
            verify_partitioning: true,
            idle_timeout: Dur::from_secs(30),
            max_future_skew: Dur::from_secs(300),
            workers: 0,
            shutdown_timeout: Dur::from_secs(30),
            properties: vec![],
            secrets: vec![("sasl.password".into(), "PW".into())],
        };
        let resolved = k
            .resolve_secrets(|v| (v == "PW").then(|| "hunter2".to_string()))
            .unwrap();
        assert_eq!(resolved[0].1.expose(), "hunter2");
        assert!(!format!("{resolved:?}").contains("hunter2"));
        let err = k.resolve_secrets(|_| None).unwrap_err();
        assert!(err.to_string().contains("environment variable PW"), "{err}");
    }
}
