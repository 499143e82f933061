//! One client configuration for every Kafka client srv-opr creates (our defaults first, then
//! `[kafka.properties]`, then the secrets from the environment, so an operator's settings always
//! win), and what every client context does with what librdkafka says: its logs and errors go to
//! the log with every secret masked, because librdkafka echoes property values.

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use super::KafkaError;
use crate::config::Config;
use crate::config::secrets::Secret;
use crate::config::settings::SECRET_PROPERTIES;
use crate::diagnostic::{Repeats, redact};

/// Client errors and librdkafka's warnings repeat while a broker is down (dozens a second, as
/// librdkafka reconnects): each kind is logged once, then at most once per 30 s with a count.
static REPEATS: Repeats = Repeats::new(std::time::Duration::from_secs(30));

/// The configuration of a client of `cfg`'s brokers, over `defaults`.
pub fn client_config(cfg: &Config, defaults: &[(&str, &str)]) -> Result<ClientConfig, KafkaError> {
    let k = &cfg.settings.kafka;
    let secrets = k.resolve_secrets()?;
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &k.brokers);
    for (p, v) in defaults {
        cc.set(*p, *v);
    }
    for (p, v) in &k.properties {
        cc.set(p, v);
    }
    for (p, s) in &secrets {
        cc.set(p, s.expose());
    }
    Ok(cc)
}

/// [`client_config`] for a producer: the consumer's own properties (`fetch.wait.max.ms`, …)
/// left out, which librdkafka would only warn about (CONFWARN) and ignore.
pub(crate) fn producer_config(
    cfg: &Config,
    defaults: &[(&str, &str)],
) -> Result<ClientConfig, KafkaError> {
    let mut cc = client_config(cfg, defaults)?;
    drop_consumer_only(&mut cc);
    Ok(cc)
}

/// Removes the properties only a consumer takes.
pub(crate) fn drop_consumer_only(cc: &mut ClientConfig) {
    for k in CONSUMER_ONLY {
        cc.remove(k);
    }
}

/// Consumer properties a producer does not take.
const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "auto.offset.reset",
    "isolation.level",
    "enable.partition.eof",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "fetch.queue.backoff.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "fetch.wait.max.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "partition.assignment.strategy",
    "group.protocol",
];

/// Sets `-X`-style properties over `cc`. The value of a secret property (`sasl.password`, …),
/// or of anything named like one (a misspelt `sasl.pasword` too), is remembered as a secret, so
/// it is masked wherever librdkafka echoes it.
pub(crate) fn set_properties(cc: &mut ClientConfig, properties: &[(String, String)]) {
    for (k, v) in properties {
        let lower = k.to_ascii_lowercase();
        let secret_like = [
            "pass",
            "pasw",
            "pwd",
            "secret",
            "pem",
            "token",
            "credential",
        ]
        .iter()
        .any(|w| lower.contains(w));
        if SECRET_PROPERTIES.contains(&k.as_str()) || secret_like {
            // Registers it with the mask.
            let _ = Secret::new(v.clone());
        }
        cc.set(k, v);
    }
}

/// An error librdkafka retries itself (`what` says which client saw it), with secrets masked:
/// logged as a warning once per kind, then at most every 30 s with how many were held back.
pub(super) fn warn_retried(what: &str, error: &rdkafka::error::KafkaError, reason: &str) {
    let kind = match error.rdkafka_error_code() {
        Some(code) => format!("{what}: {code:?}"),
        None => format!("{what}: {error}"),
    };
    match REPEATS.admit(&kind, std::time::Instant::now()) {
        None => {}
        Some(0) => {
            tracing::warn!(error = %redact(&error.to_string()), reason = %redact(reason), "{what}")
        }
        Some(n) => tracing::warn!(
            error = %redact(&error.to_string()),
            reason = %redact(reason),
            repeated = n,
            "{what} (again; the same error {n} times more since it was last logged, at most \
             every {} s)",
            REPEATS.every_secs()
        ),
    }
}

/// An error the operator must act on (`what` says what it means), logged once per kind, then
/// at most every 30 s with how many were held back.
pub(super) fn error_repeated(what: &str, error: &rdkafka::error::KafkaError) {
    let kind = format!("{what}: {error}");
    match REPEATS.admit(&kind, std::time::Instant::now()) {
        None => {}
        Some(0) => tracing::error!(error = %redact(&error.to_string()), "{what}"),
        Some(n) => tracing::error!(
            error = %redact(&error.to_string()),
            repeated = n,
            "{what} (again; {n} times more since it was last logged)"
        ),
    }
}

/// A librdkafka log line, at its level, with secrets masked; warnings and errors of a facility
/// are summarised as [`warn_retried`]'s are.
pub(super) fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    let message = redact(message);
    let loud = matches!(
        level,
        RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning
    );
    let repeated = if loud {
        match REPEATS.admit(
            &format!("librdkafka {fac} {}", level as i32),
            std::time::Instant::now(),
        ) {
            None => return,
            Some(n) => n,
        }
    } else {
        0
    };
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(fac, repeated, "librdkafka: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(fac, repeated, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(fac, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(fac, "librdkafka: {message}"),
    }
}
