//! The service settings of `srv-opr.toml`, validated into typed values: one concern, one table
//! per section (`[time]`, `[input]`, `[evidence]`, `[kafka]`, `[state]`, `[http]`, `[alerts]` with its
//! Alertmanager client), each checked and reported with every problem at once.

use serde::Deserialize;
use toml::Table;

use super::layer::{self, Origins};
use super::problems::Problems;
use super::secrets::{Secret, SecretError, SecretSource, mask_url};
use crate::engine::time::Dur;

/// The built-in `srv-opr.toml` (identical to `config/srv-opr.toml`).
pub const DEFAULT_SETTINGS: &str = include_str!("../../config/srv-opr.toml");

/// Validated service settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Event time and correlation windows.
    pub time: TimeSettings,
    /// Input limits.
    pub input: InputSettings,
    /// The evidence kept of missed requests.
    pub evidence: EvidenceSettings,
    /// The exemption register.
    pub exemptions: ExemptionSettings,
    /// Kafka (`run`).
    pub kafka: KafkaSettings,
    /// The HTTP endpoint of `run` and `demo` (`/metrics`, `/healthz`, `/readyz`).
    pub http: HttpSettings,
    /// The state store of `run` and `rollup`.
    pub state: StateSettings,
    /// The alert evaluator of `run` and the generated Prometheus rules.
    pub alerts: AlertSettings,
}

/// `[evidence]`: how many missed requests are kept by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvidenceSettings {
    /// At most this many per month, measure, region and failure bucket (`evidence/*.csv`).
    pub sample: usize,
    /// Every missed request too, streamed as decided (`evidence/*.csv.gz`).
    pub all: bool,
}

/// The most requests `[evidence] sample` may keep per row and bucket.
pub const MAX_EVIDENCE_SAMPLE: usize = 1000;

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
    /// A pipeline-health condition (brokers unreachable or refusing, no partition, a stall, the
    /// store unreachable) holds this long before its alert fires (instead of `for`).
    pub health_for: Dur,
    /// An interface down for longer than this raises `SrvInterfaceDown` (issue 30).
    pub interface_down_for: Dur,
    /// Events processed and the watermark unmoved for this long.
    pub watermark_stuck_window: Dur,
    /// Window of the dead-letter ratio.
    pub dead_letter_window: Dur,
    /// Dead letters above this percentage of the window's events.
    pub dead_letter_percent: f64,
    /// Where alerts are sent (an empty URL: nowhere).
    pub alertmanager: AlertmanagerSettings,
    /// Active alerts are sent again this often.
    pub resend_interval: Dur,
}

/// The `alertmanager_…` keys of `[alerts]`: where and how alerts are sent.
#[derive(Debug, Clone, Default)]
pub struct AlertmanagerSettings {
    /// Base URL, `http://HOST:PORT` or `https://HOST:PORT` (a path is kept as a prefix), or
    /// empty for none.
    pub url: String,
    /// CA certificates (PEM) that an `https://` Alertmanager's certificate must chain to
    /// (empty: the system's trust store).
    pub ca_file: String,
    /// A client certificate (PEM) for an Alertmanager that asks for one, and its key.
    pub cert_file: String,
    /// The client certificate's key (PEM).
    pub key_file: String,
    /// Basic-auth user (with `password`).
    pub username: String,
    /// Basic-auth password.
    pub password: SecretSource,
    /// A bearer token instead of basic auth (a proxy in front of Alertmanager).
    pub bearer_token: SecretSource,
    /// Each notification's whole exchange, connecting included, ends after this long.
    pub timeout: Dur,
}

/// `[state]`: where `run` checkpoints its partitions and `rollup` reads them.
#[derive(Debug, Clone)]
pub struct StateSettings {
    /// `sqlite://PATH` (embedded, one instance), `postgres://…` (shared by the group), or empty
    /// for none (state in memory only: a restart reads every partition from the beginning).
    pub url: String,
    /// The PostgreSQL password (`password_env` or `password_file`; kept out of the URL and the
    /// logs).
    pub password: SecretSource,
    /// PostgreSQL's TLS where the URL does not say: libpq's `sslmode`, `sslrootcert`, `sslcert`,
    /// `sslkey` (empty paths: none).
    pub sslmode: String,
    /// CA certificates for the server's certificate (empty: the system's).
    pub sslrootcert: String,
    /// A client certificate (empty: none).
    pub sslcert: String,
    /// Its key (empty: none).
    pub sslkey: String,
    /// Checkpoint a partition after this many events…
    pub checkpoint_events: u64,
    /// …or this long after its previous checkpoint, whichever comes first.
    pub checkpoint_interval: Dur,
    /// How long an operation whose PostgreSQL connection was lost (a restart, a failover) is
    /// retried on new connections before it fails (zero: never retried).
    pub reconnect_timeout: Dur,
}

/// `[http]`: where `run` serves its metrics and health endpoints.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Listen address, `127.0.0.1:9898` by default; empty to serve nothing.
    pub listen: String,
    /// The exporter-toolkit web configuration (TLS, client certificates, basic auth), as
    /// Prometheus' own exporters read it; empty for plain HTTP without authentication.
    pub web_config_file: String,
    /// `/readyz` answers 503 while the held partitions lag by more messages than this.
    pub ready_max_lag: u64,
    /// Whether `run` accepts Alertmanager's webhook (`POST /api/v1/availability/alertmanager`)
    /// and produces its alerts into the availability topic as availability events.
    pub alertmanager_webhook: bool,
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
    /// Where the Alertmanager webhook's availability events are produced; empty: the first of
    /// `topics`. Always one of `topics` (checked), so `run` reads them back.
    pub availability_topic: String,
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
    /// librdkafka properties that are secrets, and where each is read from.
    pub secrets: Vec<(String, SecretSource)>,
}

/// librdkafka properties that hold secrets: refused under `[kafka.properties]`.
pub const SECRET_PROPERTIES: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.password",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.config",
];

impl KafkaSettings {
    /// The topic the Alertmanager webhook's availability events go to.
    pub fn availability_topic(&self) -> &str {
        if self.availability_topic.is_empty() {
            self.topics.first().map_or("", String::as_str)
        } else {
            &self.availability_topic
        }
    }

    /// Reads the secrets (`[kafka.secrets]` from the environment, `[kafka.secret_files]` from
    /// files); one that cannot be read is an error naming it.
    pub fn resolve_secrets(&self) -> Result<Vec<(String, Secret)>, SecretError> {
        self.secrets
            .iter()
            .filter_map(|(prop, source)| {
                let setting = match source {
                    SecretSource::File(_) => format!("[kafka.secret_files] {prop:?}"),
                    _ => format!("[kafka.secrets] {prop:?}"),
                };
                source
                    .read(&setting)
                    .transpose()
                    .map(|r| r.map(|s| (prop.clone(), s)))
            })
            .collect()
    }
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
    /// A month is complete when no gap between its valid events (nor before the first, nor after
    /// the last) is longer than this (issue 33).
    pub coverage_max_gap: Dur,
}

/// The largest `input.max_event_bytes`: 64 MiB, 64 times Kafka's default message limit (a
/// line buffer holds two events of it).
pub const MAX_EVENT_BYTES: i64 = 64 << 20;

/// The largest `time.max_waiting_responses`: a waiting response keeps its id and fields, about
/// a hundred bytes, so 100 million is about 10 GB.
pub const MAX_WAITING_RESPONSES: i64 = 100_000_000;

/// `[exemptions]`: where the exemption register is.
#[derive(Debug, Clone, Default)]
pub struct ExemptionSettings {
    /// The register's file (relative to the configuration directory); empty: `exemptions.toml`
    /// there when there is one.
    pub file: String,
}

/// `[input]`: limits on what is read.
#[derive(Debug, Clone)]
pub struct InputSettings {
    /// Events larger than this many bytes are `oversized`.
    pub max_event_bytes: usize,
    /// Event types (other than srv-opr's own) that are counted per type and otherwise left
    /// alone, instead of being `unknown_type` dead letters (issue 32).
    pub ignore_types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    time: RawTime,
    input: RawInput,
    evidence: RawEvidence,
    exemptions: RawExemptions,
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
    #[serde(default = "default_health_for")]
    health_for: String,
    #[serde(default = "default_interface_down_for")]
    interface_down_for: String,
    watermark_stuck_window: String,
    dead_letter_window: String,
    dead_letter_percent: f64,
    alertmanager_url: String,
    alertmanager_ca_file: String,
    alertmanager_cert_file: String,
    alertmanager_key_file: String,
    alertmanager_username: String,
    alertmanager_password_env: String,
    alertmanager_password_file: String,
    alertmanager_bearer_token_env: String,
    alertmanager_bearer_token_file: String,
    alertmanager_timeout: String,
    resend_interval: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    sample: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    url: String,
    password_env: String,
    password_file: String,
    sslmode: String,
    sslrootcert: String,
    sslcert: String,
    sslkey: String,
    checkpoint_events: i64,
    checkpoint_interval: String,
    reconnect_timeout: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: String,
    web_config_file: String,
    ready_max_lag: i64,
    #[serde(default = "default_true")]
    alertmanager_webhook: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafka {
    brokers: String,
    topics: Vec<String>,
    group_id: String,
    dead_letter_topic: String,
    #[serde(default)]
    availability_topic: String,
    verify_partitioning: bool,
    idle_timeout: String,
    max_future_skew: String,
    workers: i64,
    shutdown_timeout: String,
    properties: Table,
    secrets: Table,
    secret_files: Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    zone: String,
    allowed_lateness: String,
    dedupe_horizon: String,
    orphan_wait: String,
    max_waiting_responses: i64,
    #[serde(default = "default_coverage_max_gap")]
    coverage_max_gap: String,
}

/// `time.coverage_max_gap` when a configuration file from before issue 33 lacks it.
fn default_coverage_max_gap() -> String {
    "6h".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExemptions {
    file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    max_event_bytes: i64,
    #[serde(default)]
    ignore_types: Vec<String>,
}

/// Layers the defaults, the file (`(name, text)`) and the environment, then validates.
pub(super) fn load(
    file: Option<&(String, String)>,
    env: &[(String, String)],
    problems: &mut Problems,
    sources: &mut Vec<String>,
) -> Option<Settings> {
    let (raw, origins) = merged(file, env, problems, sources)?;
    let mut check = Check {
        origins: &origins,
        problems,
    };
    settings(raw, &mut check)
}

/// The built-in settings with the file and then the environment layered over them, shape-checked
/// (values of the wrong type or under unknown keys are reported and not merged), and where each
/// value came from.
fn merged(
    file: Option<&(String, String)>,
    env: &[(String, String)],
    problems: &mut Problems,
    sources: &mut Vec<String>,
) -> Option<(Raw, Origins)> {
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
    // The merged table has the schema's shape, so it deserialises; its values are validated
    // next, every problem reported at once.
    match toml::Value::Table(merged).try_into() {
        Ok(r) => Some((r, origins)),
        Err(e) => {
            problems.push("srv-opr.toml", "", e.to_string());
            None
        }
    }
}

/// Validation of merged values: each problem is reported under the file or variable the value
/// came from, and a bad value gives `None`.
struct Check<'a> {
    origins: &'a Origins,
    problems: &'a mut Problems,
}

impl Check<'_> {
    fn origin(&self, key: &str) -> String {
        self.origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "built-in srv-opr.toml".to_string())
    }

    fn push(&mut self, key: &str, problem: String) {
        let origin = self.origin(key);
        self.problems.push(&origin, key, problem);
    }

    /// A duration, not negative.
    fn dur(&mut self, key: &str, text: &str) -> Option<Dur> {
        match Dur::parse(text) {
            Ok(d) if d.0 >= 0 => Some(d),
            Ok(_) => {
                self.push(key, "must not be negative".into());
                None
            }
            Err(e) => {
                self.push(key, e.to_string());
                None
            }
        }
    }

    /// A duration longer than zero.
    fn positive_dur(&mut self, key: &str, text: &str) -> Option<Dur> {
        let d = self.dur(key, text)?;
        if d.0 == 0 {
            self.push(key, "must be longer than zero".into());
            return None;
        }
        Some(d)
    }

    /// A size or count from `lo` to `hi`. Every size setting has an upper bound, so that no
    /// value can ask for an allocation the process cannot make (a line buffer is twice
    /// `input.max_event_bytes`: 99999999999999 aborted the process instead of being refused).
    fn within(&mut self, key: &str, v: i64, lo: i64, hi: i64, unit: &str) -> Option<usize> {
        if (lo..=hi).contains(&v) {
            Some(v as usize)
        } else {
            self.push(key, format!("must be {lo} to {hi} {unit}, found {v}"));
            None
        }
    }

    /// A percentage above 0 and at most 100 (a threshold above 100 could never be crossed).
    fn percent(&mut self, key: &str, v: f64) -> Option<f64> {
        if v.is_finite() && v > 0.0 && v <= 100.0 {
            Some(v)
        } else {
            self.push(
                key,
                format!("must be a percentage above 0 and at most 100, found {v}"),
            );
            None
        }
    }

    /// A rate above zero.
    fn rate(&mut self, key: &str, v: f64) -> Option<f64> {
        if v.is_finite() && v > 0.0 {
            Some(v)
        } else {
            self.push(key, format!("must be above zero, found {v}"));
            None
        }
    }

    /// Two windows, long then short.
    fn pair(&mut self, key: &str, v: &[String]) -> Option<(Dur, Dur)> {
        match v {
            [long, short] => {
                let (l, s) = (
                    self.positive_dur(key, long)?,
                    self.positive_dur(key, short)?,
                );
                if s >= l {
                    self.push(
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
                self.push(
                    key,
                    "must be two windows, long then short: [\"1h\", \"5m\"]".into(),
                );
                None
            }
        }
    }

    /// A secret's source from its `{key}_env` and `{key}_file` settings.
    fn secret(&mut self, key: &str, env: &str, file: &str) -> Option<SecretSource> {
        SecretSource::of(env, file)
            .map_err(|e| self.push(&format!("{key}_file"), e))
            .ok()
    }

    /// A free-form table's string values (`kafka.properties`, `kafka.secrets`).
    fn strings(&mut self, table: &Table, prefix: &str) -> Vec<(String, String)> {
        table
            .iter()
            .filter_map(|(key, v)| match v.as_str() {
                Some(s) => Some((key.clone(), s.to_string())),
                None => {
                    self.push(&format!("{prefix}.{key}"), "must be a string".into());
                    None
                }
            })
            .collect()
    }
}

/// The settings from merged values, every problem of every section reported (in the file's order
/// of tables) before any is given up on.
fn settings(raw: Raw, c: &mut Check<'_>) -> Option<Settings> {
    let time = time(raw.time, c);
    let input = input(raw.input, c);
    let evidence = evidence(&raw.evidence, c);
    let kafka = kafka(raw.kafka, c);
    let http = http(raw.http, c);
    let state = state(raw.state, c);
    let alerts = alerts(raw.alerts, c);
    Some(Settings {
        time: time?,
        exemptions: ExemptionSettings {
            file: raw.exemptions.file.trim().to_string(),
        },
        evidence: evidence?,
        input: input?,
        kafka: kafka?,
        http: http?,
        state: state?,
        alerts: alerts?,
    })
}

/// `[time]`.
fn time(r: RawTime, c: &mut Check<'_>) -> Option<TimeSettings> {
    let allowed_lateness = c.dur("time.allowed_lateness", &r.allowed_lateness);
    let dedupe_horizon = c.dur("time.dedupe_horizon", &r.dedupe_horizon);
    let orphan_wait = if r.orphan_wait == "auto" {
        Some(None)
    } else {
        c.dur("time.orphan_wait", &r.orphan_wait).map(Some)
    };
    if let Err(e) = crate::engine::calendar::Calendar::new(&r.zone) {
        c.push("time.zone", crate::diagnostic::chain(&e));
    }
    let coverage_max_gap = c
        .dur("time.coverage_max_gap", &r.coverage_max_gap)
        .and_then(|d| {
            if d.0 < crate::engine::aggregate::COVERAGE_JOIN {
                c.push(
                    "time.coverage_max_gap",
                    "must be at least 15m (events closer than that are one stretch)".into(),
                );
                None
            } else {
                Some(d)
            }
        });
    let max_waiting = c.within(
        "time.max_waiting_responses",
        r.max_waiting_responses,
        1,
        MAX_WAITING_RESPONSES,
        "responses",
    );
    Some(TimeSettings {
        zone: r.zone,
        allowed_lateness: allowed_lateness?,
        dedupe_horizon: dedupe_horizon?,
        orphan_wait: orphan_wait?,
        max_waiting_responses: max_waiting?,
        coverage_max_gap: coverage_max_gap?,
    })
}

/// `[input]`.
fn input(r: RawInput, c: &mut Check<'_>) -> Option<InputSettings> {
    let mut ignore_types: Vec<String> = Vec::new();
    for t in &r.ignore_types {
        let t = t.trim();
        if t.is_empty() || t.len() > 64 {
            c.push(
                "input.ignore_types",
                format!(
                    "{:?} is not a type name (1 to 64 characters)",
                    crate::echo::cut(t, 64)
                ),
            );
        } else if ["request", "response", "availability"].contains(&t) {
            c.push(
                "input.ignore_types",
                format!("{t:?} is a type srv-opr reads: it cannot be ignored"),
            );
        } else if !ignore_types.iter().any(|x| x == t) {
            ignore_types.push(t.to_string());
        }
    }
    let max_event_bytes = c.within(
        "input.max_event_bytes",
        r.max_event_bytes,
        1,
        MAX_EVENT_BYTES,
        "bytes",
    );
    Some(InputSettings {
        max_event_bytes: max_event_bytes?,
        ignore_types,
    })
}

/// `[evidence]`.
fn evidence(r: &RawEvidence, c: &mut Check<'_>) -> Option<EvidenceSettings> {
    match r.sample.trim() {
        "all" => Some(EvidenceSettings {
            sample: crate::engine::aggregate::SAMPLE_SIZE,
            all: true,
        }),
        n => match n.parse::<usize>() {
            Ok(k) if (1..=MAX_EVIDENCE_SAMPLE).contains(&k) => Some(EvidenceSettings {
                sample: k,
                all: false,
            }),
            _ => {
                c.push(
                    "evidence.sample",
                    format!(
                        "must be a number of requests from 1 to {MAX_EVIDENCE_SAMPLE}, or \"all\"; \
                         found {:?}",
                        crate::echo::cut(n, 32)
                    ),
                );
                None
            }
        },
    }
}

/// `[kafka]`.
fn kafka(k: RawKafka, c: &mut Check<'_>) -> Option<KafkaSettings> {
    let idle_timeout = c.dur("kafka.idle_timeout", &k.idle_timeout);
    let max_future_skew = c.dur("kafka.max_future_skew", &k.max_future_skew);
    let shutdown_timeout = c.dur("kafka.shutdown_timeout", &k.shutdown_timeout);
    // librdkafka only warns without bootstrap servers, and `run` would wait out its whole
    // assignment limit before failing with a question about the topics.
    if k.brokers.split(',').all(|b| b.trim().is_empty()) {
        c.push(
            "kafka.brokers",
            "is empty: name the Kafka bootstrap servers, e.g. \"127.0.0.1:9092\"".to_string(),
        );
    }
    if k.workers < 0 || k.workers > 256 {
        c.push(
            "kafka.workers",
            format!("must be 0 (automatic) to 256, found {}", k.workers),
        );
    }
    let properties = c.strings(&k.properties, "kafka.properties");
    for (key, _) in &properties {
        if SECRET_PROPERTIES.contains(&key.as_str()) {
            c.push(
                &format!("kafka.properties.{key}"),
                "is a secret: name an environment variable under [kafka.secrets], or a file \
                 under [kafka.secret_files], instead"
                    .into(),
            );
        }
    }
    let secrets = kafka_secrets(&k.secrets, &k.secret_files, c);
    if k.topics.is_empty() || k.topics.iter().any(String::is_empty) {
        c.push("kafka.topics", "name at least one topic".into());
    }
    let availability_topic = k.availability_topic.trim().to_string();
    if !availability_topic.is_empty() && !k.topics.contains(&availability_topic) {
        c.push(
            "kafka.availability_topic",
            format!(
                "{availability_topic:?} is not one of kafka.topics {:?}: `run` would never read \
                 the events the Alertmanager webhook produces there",
                k.topics
            ),
        );
    }
    Some(KafkaSettings {
        brokers: k.brokers,
        topics: k.topics,
        group_id: k.group_id,
        dead_letter_topic: k.dead_letter_topic,
        availability_topic,
        verify_partitioning: k.verify_partitioning,
        idle_timeout: idle_timeout?,
        max_future_skew: max_future_skew?,
        workers: k.workers.clamp(0, 256) as usize,
        shutdown_timeout: shutdown_timeout?,
        properties,
        secrets,
    })
}

/// `[http]`.
fn http(r: RawHttp, c: &mut Check<'_>) -> Option<HttpSettings> {
    let listen = r.listen.trim().to_string();
    if !listen.is_empty() && listen.parse::<std::net::SocketAddr>().is_err() {
        c.push(
            "http.listen",
            format!("{listen:?} is not an address like 127.0.0.1:9898 (or empty for none)"),
        );
    }
    let ready_max_lag = c.within(
        "http.ready_max_lag",
        r.ready_max_lag,
        0,
        i64::MAX,
        "messages",
    );
    Some(HttpSettings {
        listen,
        web_config_file: r.web_config_file.trim().to_string(),
        ready_max_lag: ready_max_lag? as u64,
        alertmanager_webhook: r.alertmanager_webhook,
    })
}

/// `[state]`.
fn state(st: RawState, c: &mut Check<'_>) -> Option<StateSettings> {
    let url = st.url.trim().to_string();
    if !url.is_empty()
        && !url.starts_with("sqlite://")
        && !url.starts_with("postgres://")
        && !url.starts_with("postgresql://")
    {
        // Whatever the scheme, a URL may carry a password: never echo one.
        c.push(
            "state.url",
            format!(
                "{:?} is neither sqlite://PATH nor postgres://… (nor empty for none)",
                mask_url(&url)
            ),
        );
    }
    let password = c.secret("state.password", &st.password_env, &st.password_file);
    if !["disable", "prefer", "require", "verify-ca", "verify-full"].contains(&st.sslmode.as_str())
    {
        c.push(
            "state.sslmode",
            format!(
                "{:?} is not disable, prefer, require, verify-ca or verify-full",
                st.sslmode
            ),
        );
    }
    let checkpoint_interval = c.dur("state.checkpoint_interval", &st.checkpoint_interval);
    let checkpoint_events = c.within(
        "state.checkpoint_events",
        st.checkpoint_events,
        1,
        1_000_000_000,
        "events",
    );
    let reconnect_timeout = c.dur("state.reconnect_timeout", &st.reconnect_timeout);
    Some(StateSettings {
        url,
        password: password?,
        sslmode: st.sslmode,
        sslrootcert: st.sslrootcert,
        sslcert: st.sslcert,
        sslkey: st.sslkey,
        checkpoint_events: checkpoint_events? as u64,
        checkpoint_interval: checkpoint_interval?,
        reconnect_timeout: reconnect_timeout?,
    })
}

/// `[kafka.secrets]` (property → environment variable) and `[kafka.secret_files]` (property →
/// file), in one list; a property in both is a mistake.
fn kafka_secrets(env: &Table, files: &Table, c: &mut Check<'_>) -> Vec<(String, SecretSource)> {
    let mut out: Vec<(String, SecretSource)> = c
        .strings(env, "kafka.secrets")
        .into_iter()
        .map(|(p, v)| (p, SecretSource::Env(v)))
        .collect();
    for (p, path) in c.strings(files, "kafka.secret_files") {
        if out.iter().any(|(q, _)| *q == p) {
            c.push(
                &format!("kafka.secret_files.{p}"),
                "is also under [kafka.secrets]: read it from one place".into(),
            );
        } else {
            out.push((p, SecretSource::File(path.into())));
        }
    }
    out
}

/// The `alertmanager_…` keys of `[alerts]`, validated: a URL without credentials in it, one
/// kind of authentication at most, a certificate with its key, TLS files only for `https://`.
fn alertmanager(a: &RawAlerts, c: &mut Check<'_>) -> Option<AlertmanagerSettings> {
    let url = a.alertmanager_url.trim().trim_end_matches('/').to_string();
    let https = url.starts_with("https://");
    if !url.is_empty() && !https && !url.starts_with("http://") {
        c.push(
            "alerts.alertmanager_url",
            format!(
                "{:?} must be http://HOST:PORT or https://HOST:PORT (or empty for none)",
                mask_url(&url)
            ),
        );
    }
    let authority = url.split("://").nth(1).unwrap_or("").split('/').next();
    if authority.is_some_and(|h| h.contains('@')) {
        c.push(
            "alerts.alertmanager_url",
            format!(
                "{:?} carries credentials: set alerts.alertmanager_username and \
                 alerts.alertmanager_password_env (or _file) instead",
                mask_url(&url)
            ),
        );
    }
    let password = c.secret(
        "alerts.alertmanager_password",
        &a.alertmanager_password_env,
        &a.alertmanager_password_file,
    );
    let bearer_token = c.secret(
        "alerts.alertmanager_bearer_token",
        &a.alertmanager_bearer_token_env,
        &a.alertmanager_bearer_token_file,
    );
    let username = a.alertmanager_username.trim().to_string();
    if let (Some(p), Some(b)) = (&password, &bearer_token) {
        // A user without a password, or a password without a user.
        if username.is_empty() == p.is_set() {
            c.push(
                "alerts.alertmanager_username",
                "basic auth needs both a user and a password (alertmanager_password_env or _file)"
                    .into(),
            );
        }
        if p.is_set() && b.is_set() {
            c.push(
                "alerts.alertmanager_bearer_token_env",
                "choose basic auth or a bearer token, not both".into(),
            );
        }
    }
    let (cert, key) = (
        a.alertmanager_cert_file.trim(),
        a.alertmanager_key_file.trim(),
    );
    if cert.is_empty() != key.is_empty() {
        c.push(
            "alerts.alertmanager_cert_file",
            "a client certificate needs its key (alertmanager_key_file), and a key its certificate"
                .into(),
        );
    }
    let ca = a.alertmanager_ca_file.trim();
    let tls_files = !(ca.is_empty() && cert.is_empty());
    if tls_files && !https && !url.is_empty() {
        c.push(
            "alerts.alertmanager_ca_file",
            "TLS files need an https:// alertmanager_url".into(),
        );
    }
    Some(AlertmanagerSettings {
        url,
        ca_file: ca.to_string(),
        cert_file: cert.to_string(),
        key_file: key.to_string(),
        username,
        password: password?,
        bearer_token: bearer_token?,
        timeout: c.positive_dur("alerts.alertmanager_timeout", &a.alertmanager_timeout)?,
    })
}

/// `[alerts]`, validated. The first bad window or rate ends the table's checks (the others
/// follow from the same mistake more often than not).
fn alerts(a: RawAlerts, c: &mut Check<'_>) -> Option<AlertSettings> {
    let am = alertmanager(&a, c);
    let alerts = (|| {
        Some(AlertSettings {
            interval: c.positive_dur("alerts.interval", &a.interval)?,
            hold: c.dur("alerts.for", &a.hold)?,
            min_requests: a.min_requests.max(0) as u64,
            fast_burn_windows: c.pair("alerts.fast_burn_windows", &a.fast_burn_windows)?,
            fast_burn_rate: c.rate("alerts.fast_burn_rate", a.fast_burn_rate)?,
            slow_burn_windows: c.pair("alerts.slow_burn_windows", &a.slow_burn_windows)?,
            slow_burn_rate: c.rate("alerts.slow_burn_rate", a.slow_burn_rate)?,
            no_data_window: c.positive_dur("alerts.no_data_window", &a.no_data_window)?,
            no_data_lookback: c.positive_dur("alerts.no_data_lookback", &a.no_data_lookback)?,
            stall_window: c.positive_dur("alerts.stall_window", &a.stall_window)?,
            health_for: c.dur("alerts.health_for", &a.health_for)?,
            interface_down_for: c
                .positive_dur("alerts.interface_down_for", &a.interface_down_for)?,
            watermark_stuck_window: c
                .positive_dur("alerts.watermark_stuck_window", &a.watermark_stuck_window)?,
            dead_letter_window: c
                .positive_dur("alerts.dead_letter_window", &a.dead_letter_window)?,
            dead_letter_percent: c.percent("alerts.dead_letter_percent", a.dead_letter_percent)?,
            alertmanager: am?,
            resend_interval: c.positive_dur("alerts.resend_interval", &a.resend_interval)?,
        })
    })();
    if a.min_requests < 0 {
        c.push("alerts.min_requests", "must not be negative".into());
    }
    alerts
}

/// `alerts.health_for` when a configuration file from before issue 33 lacks it.
fn default_health_for() -> String {
    "30s".into()
}

/// `http.alertmanager_webhook` when a configuration file from before issue 30 lacks it.
fn default_true() -> bool {
    true
}

/// `alerts.interface_down_for` when a configuration file from before issue 30 lacks it.
fn default_interface_down_for() -> String {
    "5m".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_secrets_resolve_from_their_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "settings-secret-1\n").unwrap();
        let k = KafkaSettings {
            brokers: "b".into(),
            topics: vec!["t".into()],
            group_id: "g".into(),
            dead_letter_topic: "d".into(),
            availability_topic: String::new(),
            verify_partitioning: true,
            idle_timeout: Dur::from_secs(30),
            max_future_skew: Dur::from_secs(300),
            workers: 0,
            shutdown_timeout: Dur::from_secs(30),
            properties: vec![],
            secrets: vec![(
                "sasl.password".into(),
                SecretSource::File(dir.path().join("pw")),
            )],
        };
        let resolved = k.resolve_secrets().unwrap();
        assert_eq!(resolved[0].1.expose(), "settings-secret-1");
        assert!(!format!("{resolved:?}").contains("settings-secret"));
        let k = KafkaSettings {
            secrets: vec![(
                "sasl.password".into(),
                SecretSource::Env("SRV_OPR_TEST_UNSET_VARIABLE".into()),
            )],
            ..k
        };
        let err = k.resolve_secrets().unwrap_err();
        assert!(
            err.to_string()
                .contains("[kafka.secrets] \"sasl.password\" reads environment variable"),
            "{err}"
        );
    }
}
