//! Dead letters produced to their topic: the original bytes as the value, `reason` and `origin`
//! (and `reconstructed` when so) as headers. Shared by every partition's pipeline; a checkpoint
//! waits until the dead letters it covers are acknowledged.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::KafkaError;
use super::produce::{DeliveryCounter, Retry, send_waiting};
use crate::engine::pipeline::{DeadLetter, DeadLetterSink};

/// Dead letters produced to a topic: the original bytes as value, `reason` and `origin` (and
/// `reconstructed` when so) as headers. Shared by every partition's pipeline.
#[derive(Clone)]
pub struct KafkaDeadLetters {
    pub(super) producer: Arc<BaseProducer<DeliveryCounter>>,
    pub(super) topic: String,
    pub(super) sent: Arc<AtomicU64>,
}

impl KafkaDeadLetters {
    pub(super) fn failures(&self) -> u64 {
        self.producer.context().failed.load(Ordering::Relaxed)
    }

    /// Waits up to `wait` for every dead letter to be acknowledged, sending again those a
    /// restarting broker refused for a moment (see `DeliveryCounter`).
    pub(super) fn flush(&self, wait: Duration) -> Result<(), KafkaError> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.producer
                .flush(left)
                .map_err(KafkaError::client("flushing dead letters"))?;
            let again: Vec<Retry> = self
                .producer
                .context()
                .retries
                .lock()
                .map(|mut r| std::mem::take(&mut *r))
                .unwrap_or_default();
            if again.is_empty() {
                return Ok(());
            }
            tracing::warn!(messages = again.len(), topic = %self.topic,
                "dead letters refused for an unknown partition (a broker restarting?): sending \
                 them again");
            if Instant::now() >= deadline {
                // Keep them for the next flush.
                if let Ok(mut r) = self.producer.context().retries.lock() {
                    r.extend(again);
                }
                return Err(KafkaError::StillRefused);
            }
            std::thread::sleep(Duration::from_millis(200).min(left));
            for (topic, payload, headers) in &again {
                let mut h = OwnedHeaders::new();
                for (k, v) in headers {
                    h = h.insert(Header {
                        key: k.as_str(),
                        value: Some(v.as_slice()),
                    });
                }
                let record = BaseRecord::<[u8], [u8]>::to(topic)
                    .payload(payload)
                    .headers(h);
                send_waiting(&self.producer, record)
                    .map_err(KafkaError::client("sending dead letters again"))?;
            }
        }
    }

    /// The error that stops `run`: dead letters that could not be written.
    pub(super) fn failed(&self) -> KafkaError {
        KafkaError::DeadLetters {
            failed: self.failures(),
            topic: self.topic.clone(),
            reason: self.first_error(),
        }
    }

    pub(super) fn first_error(&self) -> String {
        self.producer
            .context()
            .first_error()
            .unwrap_or_else(|| "no reason given".into())
    }
}

impl DeadLetterSink for KafkaDeadLetters {
    fn write(&mut self, dl: &DeadLetter<'_>) -> io::Result<()> {
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: "reason",
                value: Some(dl.reason.as_str()),
            })
            .insert(Header {
                key: "origin",
                value: Some(dl.origin.as_str()),
            });
        if dl.reconstructed {
            headers = headers.insert(Header {
                key: "reconstructed",
                value: Some("true"),
            });
        }
        let record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .payload(dl.raw)
            .headers(headers);
        send_waiting(&self.producer, record).map_err(|e| {
            io::Error::other(format!("cannot write dead letter to {}: {e}", self.topic))
        })?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
