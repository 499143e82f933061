//! `srv-opr check`'s Kafka half: with the configuration `run` would use, can the brokers be
//! reached, do they accept this client's TLS and credentials, and do the topics `run` reads and
//! writes exist, with how many partitions. Nothing is consumed or produced.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};

use crate::config::Config;

/// One connection tried: what, and what came of it (`Ok`: what succeeded).
pub(crate) type Line = (String, Result<String, String>);

/// How long each metadata request may take.
const METADATA_FOR: Duration = Duration::from_secs(10);

/// The brokers, then each topic `run` uses: the events' topics, the dead-letter topic and the
/// availability topic (when set).
pub fn check(cfg: &Config) -> Vec<Line> {
    let k = &cfg.settings.kafka;
    let protocol = k
        .properties
        .iter()
        .find(|(p, _)| p == "security.protocol")
        .map_or("PLAINTEXT", |(_, v)| v.as_str())
        .to_string();
    let user = k
        .properties
        .iter()
        .find(|(p, _)| p == "sasl.username")
        .map(|(_, v)| format!(" as {v}"))
        .unwrap_or_default();
    let what = format!("kafka brokers {} ({protocol}{user})", k.brokers);
    // A metadata request for a topic that does not exist must not create it (brokers with
    // auto.create.topics.enable do, for a producer that allows it).
    let cc = match super::client::producer_config(cfg, &[("allow.auto.create.topics", "false")]) {
        Ok(cc) => cc,
        Err(e) => return vec![(what, Err(crate::diagnostic::chain(&e)))],
    };
    match super::probe::probe(&cc) {
        Ok(true) => {}
        Ok(false) => {
            return vec![(
                what,
                Err(
                    "no broker answered within 10 s (kafka.brokers: the address, the port, \
                     a firewall; or a listener of another protocol)"
                        .into(),
                ),
            )];
        }
        Err(e) => return vec![(what, Err(crate::diagnostic::chain(&e)))],
    }
    let producer: BaseProducer = match cc.create() {
        Ok(p) => p,
        Err(e) => return vec![(what, Err(crate::diagnostic::redact(&e.to_string())))],
    };
    let mut out = Vec::new();
    match producer.client().fetch_metadata(None, METADATA_FOR) {
        Ok(md) => out.push((
            what,
            Ok(format!(
                "connected{}; the cluster has {} and {} this client may see",
                if protocol.starts_with("SASL") {
                    ", authenticated"
                } else if protocol == "SSL" {
                    ", TLS verified"
                } else {
                    ""
                },
                counted(md.brokers().len(), "broker"),
                counted(md.topics().len(), "topic")
            )),
        )),
        Err(e) => {
            out.push((what, Err(crate::diagnostic::redact(&e.to_string()))));
            return out;
        }
    }
    let mut topics: Vec<(String, &str)> = k
        .topics
        .iter()
        .map(|t| (t.clone(), "events topic"))
        .collect();
    if !k.dead_letter_topic.is_empty() {
        topics.push((k.dead_letter_topic.clone(), "dead-letter topic"));
    }
    if !k.availability_topic.is_empty() {
        topics.push((k.availability_topic.clone(), "availability topic"));
    }
    for (topic, role) in topics {
        let what = format!("kafka {role} {topic}");
        let result = match producer.client().fetch_metadata(Some(&topic), METADATA_FOR) {
            Err(e) => Err(crate::diagnostic::redact(&e.to_string())),
            Ok(md) => match md.topics().iter().find(|t| t.name() == topic) {
                None => Err("the cluster does not list it".to_string()),
                Some(t) => match t.error() {
                    Some(code) => Err(format!(
                        "{} (does it exist, and may this client describe it?)",
                        rdkafka::error::RDKafkaErrorCode::from(code)
                    )),
                    None if t.partitions().is_empty() => {
                        Err("it has no partition (does it exist?)".into())
                    }
                    None => Ok(counted(t.partitions().len(), "partition")),
                },
            },
        };
        out.push((what, result));
    }
    out
}

/// `1 broker`, `3 brokers`.
fn counted(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
