//! The availability events srv-opr receives itself (Alertmanager's webhook) produced into the
//! availability topic, so they take the path every event takes (partition, pipeline,
//! checkpoint) and survive a restart: the HTTP answer waits for the broker's acknowledgement.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError as RdError;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::KafkaError;
use super::client::producer_config;
use crate::config::Config;
use crate::diagnostic::redact;
use crate::ops::webhook::{Intake, Record};

/// How long a notification's events may take to reach the broker before the answer is 503
/// (Alertmanager's own webhook timeout is 10 s unless configured).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(8);

/// librdkafka's logs and errors, masked, like every other client's.
struct Logged;

impl ClientContext for Logged {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        super::client::log(level, fac, message);
    }

    fn error(&self, error: RdError, reason: &str) {
        super::client::warn_retried("kafka availability intake", &error, reason);
    }
}

/// A producer of `run`'s brokers writing the availability topic (idempotent, acks from every
/// in-sync replica, the Java client's partitioner: the message key is the interface).
pub struct AvailabilityIntake {
    producer: FutureProducer<Logged>,
    topic: String,
}

impl AvailabilityIntake {
    /// The intake of `cfg` (`kafka.availability_topic`, else the first of `kafka.topics`).
    pub fn new(cfg: &Config) -> Result<AvailabilityIntake, KafkaError> {
        let timeout = DELIVERY_TIMEOUT.as_millis().to_string();
        let cc = producer_config(
            cfg,
            &[
                ("partitioner", "murmur2_random"),
                ("enable.idempotence", "true"),
                ("linger.ms", "0"),
                ("message.timeout.ms", timeout.as_str()),
            ],
        )?;
        let producer = cc.create_with_context(Logged).map_err(KafkaError::client(
            "cannot create the Kafka producer of the Alertmanager webhook",
        ))?;
        Ok(AvailabilityIntake {
            producer,
            topic: cfg.settings.kafka.availability_topic().to_string(),
        })
    }
}

impl Intake for AvailabilityIntake {
    fn produce<'a>(
        &'a self,
        records: &'a [Record],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let mut pending = Vec::with_capacity(records.len());
            for r in records {
                let record = FutureRecord::to(&self.topic)
                    .key(r.key.as_bytes())
                    .payload(r.line.as_bytes());
                match self.producer.send_result(record) {
                    Ok(delivery) => pending.push(delivery),
                    Err((e, _)) => {
                        return Err(format!(
                            "cannot queue an event for {}: {}",
                            self.topic,
                            redact(&e.to_string())
                        ));
                    }
                }
            }
            for delivery in pending {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => {
                        return Err(format!(
                            "the broker did not take an event for {}: {}",
                            self.topic,
                            redact(&e.to_string())
                        ));
                    }
                    Err(_) => return Err("the producer closed before delivering".into()),
                }
            }
            Ok(())
        })
    }

    fn topic(&self) -> &str {
        &self.topic
    }
}
