//! Dead letters produced to their topic: the original bytes as the value, `reason` and `origin`
//! (and `reconstructed` when so) as headers. Shared by every partition's pipeline; a checkpoint
//! waits until the dead letters it covers are acknowledged.
//!
//! A dead letter always fits its topic: the copy of an `oversized` event keeps its first
//! `input.max_event_bytes`, and one the broker (or the producer's `message.max.bytes`) still
//! refuses as too large is sent again cut to a quarter, to nothing at last, each time with the
//! headers `truncated` = `true` and `original_bytes`. A copy of a message just under the
//! broker's limit once exceeded the dead-letter topic's and stopped `run`, at every restart.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::KafkaError;
use super::produce::{DeliveryCounter, ORIGINAL_BYTES, Retry, TRUNCATED, send_waiting};
use crate::engine::pipeline::{DeadLetter, DeadLetterSink};

/// Dead letters produced to a topic: the original bytes as value, `reason` and `origin` (and
/// `reconstructed` when so) as headers. Shared by every partition's pipeline.
#[derive(Clone)]
pub(crate) struct KafkaDeadLetters {
    pub(super) producer: Arc<BaseProducer<DeliveryCounter>>,
    pub(super) topic: String,
    pub(super) sent: Arc<AtomicU64>,
    /// The most of an event's bytes a dead letter carries (`input.max_event_bytes`).
    pub(super) max_payload: usize,
}

/// Sends one dead letter, cutting it while the producer itself refuses it as too large (its
/// `message.max.bytes`); what the broker refuses comes back through the delivery report.
fn send_dead(
    producer: &BaseProducer<DeliveryCounter>,
    topic: &str,
    mut payload: std::borrow::Cow<'_, [u8]>,
    mut headers: Vec<(String, Vec<u8>)>,
) -> Result<(), rdkafka::error::KafkaError> {
    use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
    loop {
        let mut h = OwnedHeaders::new();
        for (k, v) in &headers {
            h = h.insert(Header {
                key: k.as_str(),
                value: Some(v.as_slice()),
            });
        }
        let record = BaseRecord::<[u8], [u8]>::to(topic)
            .payload(payload.as_ref())
            .headers(h);
        match send_waiting(producer, record) {
            Err(RdError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge))
                if !payload.is_empty() =>
            {
                let (p, hs) = super::produce::shrunk(payload.into_owned(), headers);
                payload = std::borrow::Cow::Owned(p);
                headers = hs;
            }
            other => return other,
        }
    }
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
            for (topic, payload, headers) in again {
                send_dead(&self.producer, &topic, payload.into(), headers)
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
        let mut headers = vec![
            ("reason".to_string(), dl.reason.as_str().as_bytes().to_vec()),
            ("origin".to_string(), dl.origin.as_bytes().to_vec()),
        ];
        if dl.reason == crate::engine::event::DeadReason::MissingField
            && let Some(d) = crate::engine::event::missing_field_detail(dl.raw)
        {
            headers.push(("detail".into(), d.into_bytes()));
        }
        if dl.reconstructed {
            headers.push(("reconstructed".into(), b"true".to_vec()));
        }
        let payload = if dl.raw.len() > self.max_payload {
            headers.push((TRUNCATED.into(), b"true".to_vec()));
            headers.push((ORIGINAL_BYTES.into(), dl.raw.len().to_string().into_bytes()));
            &dl.raw[..self.max_payload]
        } else {
            dl.raw
        };
        send_dead(&self.producer, &self.topic, payload.into(), headers).map_err(|e| {
            io::Error::other(format!("cannot write dead letter to {}: {e}", self.topic))
        })?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
