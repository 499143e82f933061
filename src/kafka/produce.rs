//! Producing JSON Lines to a Kafka topic, one message per line, keyed by the event's `id` with
//! the `murmur2_random` partitioner (the Java client's default), so a request and its responses
//! share a partition. Used by `simulate --kafka`.
//!
//! Delivery is checked, not assumed: every delivery report is counted and a failure makes
//! [`LineProducer::finish`] return an error naming how many messages were lost and why.

use std::io::{self, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use super::partition::key_of_line;
use crate::diagnostic::redact;

/// A message to send again: topic, payload and headers.
pub(crate) type Retry = (String, Vec<u8>, Vec<(String, Vec<u8>)>);

/// Counts delivery reports.
#[derive(Default)]
pub struct DeliveryCounter {
    pub(crate) delivered: AtomicU64,
    pub(crate) failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Keep messages failed with "unknown partition" to send again instead of counting them
    /// lost. A broker restarting reports its topics without partitions for a moment, and
    /// librdkafka fails what it had queued for them; a topic's partitions never go away, so
    /// this failure is transient.
    pub(crate) retry_unknown_partition: bool,
    /// Keep messages the broker refused as too large to send again cut to a quarter (with
    /// `truncated` and `original_bytes` headers), down to none of the payload: a dead letter
    /// must always fit its topic, whose `max.message.bytes` may be below the events' topic's.
    pub(crate) shrink_too_large: bool,
    pub(crate) retries: Mutex<Vec<Retry>>,
}

impl ClientContext for DeliveryCounter {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        super::client::log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        super::client::warn_retried("kafka producer", &error, reason);
    }
}

impl DeliveryCounter {
    /// A counter that keeps "unknown partition" failures to send again (the dead letters of
    /// `run`); see the field's note.
    pub(crate) fn retrying_unknown_partitions() -> DeliveryCounter {
        DeliveryCounter {
            retry_unknown_partition: true,
            shrink_too_large: true,
            ..DeliveryCounter::default()
        }
    }

    fn keep_for_retry(&self, entry: Retry) {
        match self.retries.lock() {
            Ok(mut r) => r.push(entry),
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The first delivery error librdkafka reported, if any.
    pub(crate) fn first_error(&self) -> Option<String> {
        self.first_error.lock().ok().and_then(|e| e.clone())
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::UnknownPartition), m))
                if self.retry_unknown_partition =>
            {
                self.keep_for_retry(retry_of(m));
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), m))
                if self.shrink_too_large && m.payload().is_some_and(|p| !p.is_empty()) =>
            {
                let (topic, payload, headers) = retry_of(m);
                let (payload, headers) = shrunk(payload, headers);
                self.keep_for_retry((topic, payload, headers));
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock()
                    && first.is_none()
                {
                    *first = Some(redact(&e.to_string()));
                }
            }
        }
    }
}

/// A delivered-or-failed message as a [`Retry`].
fn retry_of(m: &rdkafka::message::BorrowedMessage<'_>) -> Retry {
    use rdkafka::Message;
    use rdkafka::message::Headers;
    let headers = m.headers().map_or_else(Vec::new, |h| {
        h.iter()
            .map(|x| (x.key.to_string(), x.value.unwrap_or_default().to_vec()))
            .collect()
    });
    (
        m.topic().to_string(),
        m.payload().unwrap_or_default().to_vec(),
        headers,
    )
}

/// A dead letter's payload cut to a quarter (to nothing under 256 bytes), its headers saying
/// so: `truncated` = `true` and `original_bytes` = the size first sent (kept across cuts).
pub(crate) fn shrunk(
    mut payload: Vec<u8>,
    mut headers: Vec<(String, Vec<u8>)>,
) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let original = headers
        .iter()
        .find(|(k, _)| k == ORIGINAL_BYTES)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| payload.len().to_string().into_bytes());
    let keep = if payload.len() < 256 {
        0
    } else {
        payload.len() / 4
    };
    payload.truncate(keep);
    headers.retain(|(k, _)| k != TRUNCATED && k != ORIGINAL_BYTES);
    headers.push((TRUNCATED.into(), b"true".to_vec()));
    headers.push((ORIGINAL_BYTES.into(), original));
    (payload, headers)
}

/// The header of a dead letter whose payload was cut.
pub(crate) const TRUNCATED: &str = "truncated";

/// The header with the size of the original message, when cut.
pub(crate) const ORIGINAL_BYTES: &str = "original_bytes";

/// Sends a record, waiting while librdkafka's local queue is full (serving delivery reports in
/// the meantime) instead of failing: a full queue is back-pressure, not an error.
pub(crate) fn send_waiting(
    producer: &BaseProducer<DeliveryCounter>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                producer.poll(Duration::from_millis(50));
                record = r;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// What was produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Produced {
    /// Messages acknowledged by the broker.
    pub delivered: u64,
    /// Messages sent with a null key (lines without a plain `id`: random partition).
    pub unkeyed: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Where and how to produce.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Target topic.
    pub topic: String,
    /// Messages per second (wall clock); `None` is as fast as possible.
    pub rate: Option<f64>,
    /// Extra librdkafka properties (`key=value`), applied last.
    pub properties: Vec<(String, String)>,
}

/// A `Write` that produces each complete line as one message.
pub struct LineProducer {
    producer: BaseProducer<DeliveryCounter>,
    topic: String,
    partial: Vec<u8>,
    sent: u64,
    unkeyed: u64,
    rate: Option<f64>,
    started: Instant,
    gate: Option<Gate>,
}

/// Called with the number of messages sent so far, every 1,024 messages; it may wait (the demo
/// holds its producer back so the embedded broker's small log never overtakes the consumer).
pub type Gate = Box<dyn FnMut(u64) + Send>;

impl LineProducer {
    /// Connects a producer (idempotent, `murmur2_random`, lz4), after a probe that fails at once
    /// on a wrong password or an untrusted certificate ([`super::probe`]).
    pub fn new(s: &ProducerSettings) -> Result<LineProducer, super::KafkaError> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &s.brokers)
            .set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000");
        super::client::set_properties(&mut cfg, &s.properties);
        super::client::drop_consumer_only(&mut cfg);
        let _ = super::probe::probe_or_carry_on(&cfg)?;
        let producer = cfg
            .create_with_context(DeliveryCounter::default())
            .map_err(super::KafkaError::client(format!(
                "cannot create a Kafka producer for {}",
                s.brokers
            )))?;
        Ok(LineProducer {
            producer,
            topic: s.topic.clone(),
            partial: Vec::new(),
            sent: 0,
            unkeyed: 0,
            rate: s.rate,
            started: Instant::now(),
            gate: None,
        })
    }

    /// Installs a [`Gate`].
    pub fn with_gate(mut self, gate: Gate) -> LineProducer {
        self.gate = Some(gate);
        self
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        let key = key_of_line(line);
        if key.is_none() {
            self.unkeyed += 1;
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).payload(line);
        if let Some(k) = key {
            record = record.key(k);
        }
        send_waiting(&self.producer, record)
            .map_err(|e| io::Error::other(format!("cannot produce to {}: {e}", self.topic)))?;
        self.sent += 1;
        if self.sent % 1024 == 0 {
            self.producer.poll(Duration::ZERO);
            if let Some(rate) = self.rate {
                let due = Duration::from_secs_f64(self.sent as f64 / rate);
                if let Some(wait) = due.checked_sub(self.started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            if let Some(gate) = &mut self.gate {
                gate(self.sent);
            }
        }
        Ok(())
    }

    /// Waits for every message to be acknowledged (up to `timeout`) and reports.
    pub fn finish(mut self, timeout: Duration) -> io::Result<Produced> {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.send(&last)?;
        }
        self.producer
            .flush(timeout)
            .map_err(|e| io::Error::other(format!("flushing to {}: {e}", self.topic)))?;
        let ctx = self.producer.context();
        let failed = ctx.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = ctx
                .first_error
                .lock()
                .ok()
                .and_then(|f| f.clone())
                .unwrap_or_default();
            return Err(io::Error::other(format!(
                "{failed} of {} messages were not delivered to {} (first error: {first})",
                self.sent, self.topic
            )));
        }
        Ok(Produced {
            delivered: ctx.delivered.load(Ordering::Relaxed),
            unkeyed: self.unkeyed,
            seconds: self.started.elapsed().as_secs_f64(),
        })
    }
}

impl Write for LineProducer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if self.partial.is_empty() {
                self.send(&rest[..i])?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..i]);
                self.send(&line)?;
            }
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.producer.poll(Duration::ZERO);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_dead_letter_is_cut_to_a_quarter_then_to_nothing_saying_so() {
        let headers = vec![("reason".to_string(), b"oversized".to_vec())];
        let (p, h) = shrunk(vec![b'x'; 4096], headers);
        assert_eq!(p.len(), 1024);
        let get = |h: &[(String, Vec<u8>)], k: &str| {
            h.iter()
                .find(|(x, _)| x == k)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(get(&h, TRUNCATED).as_deref(), Some("true"));
        assert_eq!(get(&h, ORIGINAL_BYTES).as_deref(), Some("4096"));
        assert_eq!(get(&h, "reason").as_deref(), Some("oversized"));
        // Cut again: the original size stays the first one, each header once.
        let (p, h) = shrunk(p, h);
        assert_eq!(p.len(), 256);
        let (p, h) = shrunk(p, h);
        assert_eq!(p.len(), 64);
        let (p, h) = shrunk(p, h);
        assert!(p.is_empty());
        assert_eq!(get(&h, ORIGINAL_BYTES).as_deref(), Some("4096"));
        assert_eq!(h.iter().filter(|(k, _)| k == TRUNCATED).count(), 1);
    }
}
