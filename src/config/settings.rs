//! The service settings of `srv-opr.toml`, each declared once: its typed field, its doc, and the
//! rule its value keeps (`deserialize_with`, from `rules.rs`), one struct per table (`[time]`,
//! `[exemptions]`, `[input]`, `[evidence]`, `[kafka]`, `[http]`, `[state]`, `[alerts]`), with
//! the checks that look at more than one setting beside it. Its default is the line of the same
//! name in `config/srv-opr.toml` (built in; a test holds the two to the same keys).
//!
//! Adding a setting: a field here (with its rule when its type does not say enough), its
//! default in `config/srv-opr.toml`, and its line in `docs/configuration.md`.

use super::rules::{self, Check};
use super::secrets::{Secret, SecretError, SecretSource, mask_url};
use crate::engine::time::Dur;
use serde::Deserialize;

pub use super::rules::MAX_EVIDENCE_SAMPLE;

/// The built-in `srv-opr.toml` (identical to `config/srv-opr.toml`).
pub(crate) const DEFAULT_SETTINGS: &str = include_str!("../../config/srv-opr.toml");

/// Validated service settings, in the file's order of tables.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Event time and correlation windows.
    pub time: TimeSettings,
    /// The exemption register.
    pub exemptions: ExemptionSettings,
    /// Input limits.
    pub input: InputSettings,
    /// The evidence kept of missed requests.
    pub evidence: EvidenceSettings,
    /// Kafka (`run`).
    pub kafka: KafkaSettings,
    /// The HTTP endpoint of `run` and `demo` (`/metrics`, `/healthz`, `/readyz`).
    pub http: HttpSettings,
    /// The state store of `run` and `rollup`.
    pub state: StateSettings,
    /// The alert evaluator of `run` and the generated Prometheus rules.
    pub alerts: AlertSettings,
}

/// `[time]`: how event time is judged.
#[derive(Debug, Clone, Deserialize)]
pub struct TimeSettings {
    /// IANA zone of the reporting months (`Europe/London`).
    #[serde(deserialize_with = "rules::zone")]
    pub zone: String,
    /// How far behind the newest event another may arrive and still be on time.
    #[serde(deserialize_with = "rules::duration")]
    pub allowed_lateness: Dur,
    /// How long decided requests are remembered past their longest deadline.
    #[serde(deserialize_with = "rules::duration")]
    pub dedupe_horizon: Dur,
    /// How long a response waits for its request; `None` (`"auto"`) means the longest deadline.
    #[serde(deserialize_with = "rules::auto_or_duration")]
    pub orphan_wait: Option<Dur>,
    /// Cap on responses waiting for their requests.
    #[serde(deserialize_with = "rules::waiting_responses")]
    pub max_waiting_responses: usize,
    /// A month is complete when no gap between its valid events (nor before the first, nor after
    /// the last) is longer than this (issue 33).
    #[serde(deserialize_with = "rules::coverage_gap")]
    pub coverage_max_gap: Dur,
}

/// `[exemptions]`: where the exemption register is.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExemptionSettings {
    /// The register's file (relative to the configuration directory); empty: `exemptions.toml`
    /// there when there is one.
    #[serde(deserialize_with = "rules::trimmed")]
    pub file: String,
}

/// `[input]`: limits on what is read.
#[derive(Debug, Clone, Deserialize)]
pub struct InputSettings {
    /// Events larger than this many bytes are `oversized`.
    #[serde(deserialize_with = "rules::event_bytes")]
    pub max_event_bytes: usize,
    /// Event types (other than srv-opr's own) that are counted per type and otherwise left
    /// alone, instead of being `unknown_type` dead letters (issue 32).
    pub ignore_types: Vec<String>,
}

impl InputSettings {
    /// Each ignored type a name of 1 to 64 characters, not one srv-opr reads, kept once.
    fn finish(&mut self, c: &mut Check<'_>) {
        let mut kept: Vec<String> = Vec::new();
        for t in &self.ignore_types {
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
            } else if !kept.iter().any(|x| x == t) {
                kept.push(t.to_string());
            }
        }
        self.ignore_types = kept;
    }
}

/// `[evidence]`: how many missed requests are kept by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct EvidenceSettings {
    /// At most this many per month, measure, region and failure bucket (`evidence/*.csv`);
    /// written as a number or `"all"`.
    #[serde(deserialize_with = "rules::sample")]
    pub sample: usize,
    /// Every missed request too, streamed as decided (`evidence/*.csv.gz`): `sample = "all"`.
    #[serde(skip)]
    pub all: bool,
}

impl EvidenceSettings {
    /// `"all"` (read as 0): every missed request streamed, and the largest sample kept.
    fn finish(&mut self) {
        if self.sample == 0 {
            self.sample = crate::engine::aggregate::SAMPLE_SIZE;
            self.all = true;
        }
    }
}

/// `[kafka]`: the consumer group of `run`.
#[derive(Debug, Clone, Deserialize)]
pub struct KafkaSettings {
    /// `bootstrap.servers`.
    #[serde(deserialize_with = "rules::brokers")]
    pub brokers: String,
    /// Topics to consume.
    #[serde(deserialize_with = "rules::topics")]
    pub topics: Vec<String>,
    /// Consumer group id.
    pub group_id: String,
    /// Where dead letters are produced.
    pub dead_letter_topic: String,
    /// Where the Alertmanager webhook's availability events are produced; empty: the first of
    /// `topics`. Always one of `topics` (checked), so `run` reads them back.
    #[serde(deserialize_with = "rules::trimmed")]
    pub availability_topic: String,
    /// Dead-letter messages whose partition does not match their key.
    pub verify_partitioning: bool,
    /// A partition silent this long (wall clock) stops holding the watermark back.
    #[serde(deserialize_with = "rules::duration")]
    pub idle_timeout: Dur,
    /// Events further ahead of the wall clock are `future_timestamp`.
    #[serde(deserialize_with = "rules::duration")]
    pub max_future_skew: Dur,
    /// Threads that decode and correlate (partitions are spread over them); 0 = one fewer than
    /// the machine's cores, at least one.
    #[serde(deserialize_with = "rules::workers")]
    pub workers: usize,
    /// How long a stop (SIGINT/SIGTERM) may take to drain and hand over every partition.
    #[serde(deserialize_with = "rules::duration")]
    pub shutdown_timeout: Dur,
    /// Extra librdkafka properties (`[kafka.properties]`); none of [`SECRET_PROPERTIES`].
    #[serde(deserialize_with = "rules::texts")]
    pub properties: Vec<(String, String)>,
    /// librdkafka properties that are secrets, and where each is read from: `[kafka.secrets]`
    /// names environment variables, `[kafka.secret_files]` files.
    #[serde(deserialize_with = "env_secrets")]
    pub secrets: Vec<(String, SecretSource)>,
    /// `[kafka.secret_files]`, joined to `secrets` once read.
    #[serde(deserialize_with = "rules::texts")]
    secret_files: Vec<(String, String)>,
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

/// `[kafka.secrets]`: property → the environment variable holding it.
fn env_secrets<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<(String, SecretSource)>, D::Error> {
    let v = rules::texts(d)?;
    Ok(v.into_iter()
        .map(|(p, e)| (p, SecretSource::Env(e)))
        .collect())
}

impl KafkaSettings {
    /// No secret among the plain properties, each secret from one place, and the availability
    /// topic one that is read.
    fn finish(&mut self, c: &mut Check<'_>) {
        for (key, _) in &self.properties {
            if SECRET_PROPERTIES.contains(&key.as_str()) {
                c.push(
                    &format!("kafka.properties.{key}"),
                    "is a secret: name an environment variable under [kafka.secrets], or a file \
                     under [kafka.secret_files], instead"
                        .into(),
                );
            }
        }
        for (p, path) in std::mem::take(&mut self.secret_files) {
            if self.secrets.iter().any(|(q, _)| *q == p) {
                c.push(
                    &format!("kafka.secret_files.{p}"),
                    "is also under [kafka.secrets]: read it from one place".into(),
                );
            } else {
                self.secrets.push((p, SecretSource::File(path.into())));
            }
        }
        let a = &self.availability_topic;
        if !a.is_empty() && !self.topics.contains(a) {
            c.push(
                "kafka.availability_topic",
                format!(
                    "{a:?} is not one of kafka.topics {:?}: `run` would never read the events \
                     the Alertmanager webhook produces there",
                    self.topics
                ),
            );
        }
    }

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
    pub(crate) fn resolve_secrets(&self) -> Result<Vec<(String, Secret)>, SecretError> {
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

/// `[http]`: where `run` serves its metrics and health endpoints.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    /// Listen address, `127.0.0.1:9898` by default; empty to serve nothing.
    #[serde(deserialize_with = "rules::listen")]
    pub listen: String,
    /// The exporter-toolkit web configuration (TLS, client certificates, basic auth), as
    /// Prometheus' own exporters read it; empty for plain HTTP without authentication.
    #[serde(deserialize_with = "rules::trimmed")]
    pub web_config_file: String,
    /// `/readyz` answers 503 while the held partitions lag by more messages than this.
    #[serde(deserialize_with = "rules::messages")]
    pub ready_max_lag: u64,
    /// Whether `run` accepts Alertmanager's webhook (`POST /api/v1/availability/alertmanager`)
    /// and produces its alerts into the availability topic as availability events.
    pub alertmanager_webhook: bool,
}

/// `[state]`: where `run` checkpoints its partitions and `rollup` reads them.
#[derive(Debug, Clone, Deserialize)]
pub struct StateSettings {
    /// `sqlite://PATH` (embedded, one instance), `postgres://…` (shared by the group), or empty
    /// for none (state in memory only: a restart reads every partition from the beginning).
    #[serde(deserialize_with = "rules::store_url")]
    pub url: String,
    /// The PostgreSQL password, from `password_env` or `password_file` (kept out of the URL and
    /// the logs).
    #[serde(skip)]
    pub password: SecretSource,
    /// The environment variable holding the password.
    pub password_env: String,
    /// Or the file holding it.
    pub password_file: String,
    /// PostgreSQL's TLS where the URL does not say: libpq's `sslmode`, `sslrootcert`, `sslcert`,
    /// `sslkey` (empty paths: none).
    #[serde(deserialize_with = "rules::sslmode")]
    pub sslmode: String,
    /// CA certificates for the server's certificate (empty: the system's).
    pub sslrootcert: String,
    /// A client certificate (empty: none).
    pub sslcert: String,
    /// Its key (empty: none).
    pub sslkey: String,
    /// Checkpoint a partition after this many events…
    #[serde(deserialize_with = "rules::checkpoint_events")]
    pub checkpoint_events: u64,
    /// …or this long after its previous checkpoint, whichever comes first.
    #[serde(deserialize_with = "rules::duration")]
    pub checkpoint_interval: Dur,
    /// How long an operation whose PostgreSQL connection was lost (a restart, a failover) is
    /// retried on new connections before it fails (zero: never retried).
    #[serde(deserialize_with = "rules::duration")]
    pub reconnect_timeout: Dur,
}

impl StateSettings {
    /// The password's source from its two keys, one at most.
    fn finish(&mut self, c: &mut Check<'_>) {
        let read = SecretSource::of(&self.password_env, &self.password_file);
        self.password = c.secret("state.password", read);
    }
}

/// `[alerts]`: when a measure or the pipeline raises an alert, and where alerts go.
#[derive(Debug, Clone, Deserialize)]
pub struct AlertSettings {
    /// Evaluate every…
    #[serde(deserialize_with = "rules::positive")]
    pub interval: Dur,
    /// A condition holds this long before its alert fires (`for`).
    #[serde(rename = "for", deserialize_with = "rules::duration")]
    pub hold: Dur,
    /// Fewest requests in a window for a measure alert.
    #[serde(deserialize_with = "rules::count")]
    pub min_requests: u64,
    /// Fast burn: long and short windows.
    #[serde(deserialize_with = "rules::windows")]
    pub fast_burn_windows: (Dur, Dur),
    /// Fast burn: times the budget ratio.
    #[serde(deserialize_with = "rules::rate")]
    pub fast_burn_rate: f64,
    /// Slow burn: long and short windows.
    #[serde(deserialize_with = "rules::windows")]
    pub slow_burn_windows: (Dur, Dur),
    /// Slow burn: times the budget ratio.
    #[serde(deserialize_with = "rules::rate")]
    pub slow_burn_rate: f64,
    /// No requests for this long…
    #[serde(deserialize_with = "rules::positive")]
    pub no_data_window: Dur,
    /// …after some in this long before it.
    #[serde(deserialize_with = "rules::positive")]
    pub no_data_lookback: Dur,
    /// Consumer lag and nothing processed for this long.
    #[serde(deserialize_with = "rules::positive")]
    pub stall_window: Dur,
    /// A pipeline-health condition (brokers unreachable or refusing, no partition, a stall, the
    /// store unreachable) holds this long before its alert fires (instead of `for`).
    #[serde(deserialize_with = "rules::duration")]
    pub health_for: Dur,
    /// An interface down for longer than this raises `SrvInterfaceDown` (issue 30).
    #[serde(deserialize_with = "rules::positive")]
    pub interface_down_for: Dur,
    /// Events processed and the watermark unmoved for this long.
    #[serde(deserialize_with = "rules::positive")]
    pub watermark_stuck_window: Dur,
    /// Window of the dead-letter ratio.
    #[serde(deserialize_with = "rules::positive")]
    pub dead_letter_window: Dur,
    /// Dead letters above this percentage of the window's events.
    #[serde(deserialize_with = "rules::percent")]
    pub dead_letter_percent: f64,
    /// Where alerts are sent (the `alertmanager_…` keys, read on their own: an empty URL:
    /// nowhere).
    #[serde(skip)]
    pub alertmanager: AlertmanagerSettings,
    /// Active alerts are sent again this often.
    #[serde(deserialize_with = "rules::positive")]
    pub resend_interval: Dur,
}

/// The `alertmanager_…` keys of `[alerts]`: where and how alerts are sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AlertmanagerSettings {
    /// Base URL, `http://HOST:PORT` or `https://HOST:PORT` (a path is kept as a prefix), or
    /// empty for none.
    #[serde(rename = "alertmanager_url", deserialize_with = "rules::base_url")]
    pub url: String,
    /// CA certificates (PEM) that an `https://` Alertmanager's certificate must chain to
    /// (empty: the system's trust store).
    #[serde(rename = "alertmanager_ca_file", deserialize_with = "rules::trimmed")]
    pub ca_file: String,
    /// A client certificate (PEM) for an Alertmanager that asks for one, and its key.
    #[serde(rename = "alertmanager_cert_file", deserialize_with = "rules::trimmed")]
    pub cert_file: String,
    /// The client certificate's key (PEM).
    #[serde(rename = "alertmanager_key_file", deserialize_with = "rules::trimmed")]
    pub key_file: String,
    /// Basic-auth user (with `password`).
    #[serde(rename = "alertmanager_username", deserialize_with = "rules::trimmed")]
    pub username: String,
    /// Basic-auth password, from `alertmanager_password_env` or `_file`.
    #[serde(skip)]
    pub password: SecretSource,
    /// A bearer token instead of basic auth (a proxy in front of Alertmanager), from
    /// `alertmanager_bearer_token_env` or `_file`.
    #[serde(skip)]
    pub bearer_token: SecretSource,
    /// Each notification's whole exchange, connecting included, ends after this long.
    #[serde(rename = "alertmanager_timeout", deserialize_with = "rules::positive")]
    pub timeout: Dur,
    /// The environment variable holding the password (`alertmanager_password_env`).
    #[serde(rename = "alertmanager_password_env")]
    pub password_env: String,
    /// Or the file holding it (`alertmanager_password_file`).
    #[serde(rename = "alertmanager_password_file")]
    pub password_file: String,
    /// The environment variable holding the bearer token (`alertmanager_bearer_token_env`).
    #[serde(rename = "alertmanager_bearer_token_env")]
    pub bearer_token_env: String,
    /// Or the file holding it (`alertmanager_bearer_token_file`).
    #[serde(rename = "alertmanager_bearer_token_file")]
    pub bearer_token_file: String,
}

impl AlertmanagerSettings {
    /// A URL without credentials in it, one kind of authentication at most, a certificate
    /// with its key, TLS files only for `https://`.
    fn finish(&mut self, c: &mut Check<'_>) {
        let url = &self.url;
        let https = url.starts_with("https://");
        if !url.is_empty() && !https && !url.starts_with("http://") {
            c.push(
                "alerts.alertmanager_url",
                format!(
                    "{:?} must be http://HOST:PORT or https://HOST:PORT (or empty for none)",
                    mask_url(url)
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
                    mask_url(url)
                ),
            );
        }
        let password = SecretSource::of(&self.password_env, &self.password_file);
        let bearer_token = SecretSource::of(&self.bearer_token_env, &self.bearer_token_file);
        if let (Ok(p), Ok(b)) = (&password, &bearer_token) {
            // A user without a password, or a password without a user.
            if self.username.is_empty() == p.is_set() {
                c.push(
                    "alerts.alertmanager_username",
                    "basic auth needs both a user and a password (alertmanager_password_env or \
                     _file)"
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
        self.password = c.secret("alerts.alertmanager_password", password);
        self.bearer_token = c.secret("alerts.alertmanager_bearer_token", bearer_token);
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            c.push(
                "alerts.alertmanager_cert_file",
                "a client certificate needs its key (alertmanager_key_file), and a key its \
                 certificate"
                    .into(),
            );
        }
        let tls_files = !(self.ca_file.is_empty() && self.cert_file.is_empty());
        if tls_files && !https && !self.url.is_empty() {
            c.push(
                "alerts.alertmanager_ca_file",
                "TLS files need an https:// alertmanager_url".into(),
            );
        }
    }
}

impl Settings {
    /// The checks that look at more than one setting, and the values read from two keys.
    pub(super) fn finish(&mut self, c: &mut Check<'_>) {
        self.input.finish(c);
        self.evidence.finish();
        self.kafka.finish(c);
        self.state.finish(c);
        self.alerts.alertmanager.finish(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml::{Table, Value};

    /// Every key of the built-in `srv-opr.toml` is a setting read into [`Settings`] (or, for
    /// the `alertmanager_…` keys, [`AlertmanagerSettings`]), and every setting has its default
    /// there (serde refuses a missing one).
    #[test]
    fn the_defaults_file_and_the_settings_have_the_same_keys() {
        let table: Table = DEFAULT_SETTINGS.parse().unwrap();
        let mut unread = Vec::new();
        let read: Result<Settings, _> =
            serde_ignored::deserialize(Value::Table(table.clone()), |path| {
                unread.push(path.to_string())
            });
        assert!(read.is_ok(), "{:?}", read.err());
        let mut by_alertmanager = Vec::new();
        let read: Result<AlertmanagerSettings, _> =
            serde_ignored::deserialize(table["alerts"].clone(), |path| {
                by_alertmanager.push(format!("alerts.{path}"))
            });
        assert!(read.is_ok(), "{:?}", read.err());
        unread.retain(|k| by_alertmanager.contains(k));
        assert!(unread.is_empty(), "keys no setting reads: {unread:?}");
    }

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
            secret_files: vec![],
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
