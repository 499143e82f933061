//! One client configuration for every Kafka client srv-opr creates (our defaults first, then
//! `[kafka.properties]`, then the secrets from the environment, so an operator's settings always
//! win), and what every client context does with what librdkafka says: its logs and errors go to
//! the log with every secret masked, because librdkafka echoes property values.

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use super::KafkaError;
use crate::config::Config;
use crate::config::secrets::Secret;
use crate::config::settings::SECRET_PROPERTIES;
use crate::diagnostic::redact;

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

/// Sets `-X`-style properties over `cc`. The value of a secret property (`sasl.password`, …),
/// or of anything named like one (a misspelt `sasl.pasword` too), is remembered as a secret, so
/// it is masked wherever librdkafka echoes it.
pub fn set_properties(cc: &mut ClientConfig, properties: &[(String, String)]) {
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

/// A librdkafka log line, at its level, with secrets masked.
pub(super) fn log(level: RDKafkaLogLevel, fac: &str, message: &str) {
    let message = redact(message);
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(fac, "librdkafka: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(fac, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(fac, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(fac, "librdkafka: {message}"),
    }
}
