//! One client configuration for every Kafka client srv-opr creates: our defaults first, then
//! `[kafka.properties]`, then the secrets from the environment, so an operator's settings
//! always win.

use rdkafka::config::ClientConfig;

use super::KafkaError;
use crate::config::Config;

/// The configuration of a client of `cfg`'s brokers, over `defaults`.
pub fn client_config(cfg: &Config, defaults: &[(&str, &str)]) -> Result<ClientConfig, KafkaError> {
    let k = &cfg.settings.kafka;
    let secrets = k.resolve_secrets(|v| std::env::var(v).ok())?;
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
