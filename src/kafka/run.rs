//! `srv-opr run`: the consumer group. One [`Pipeline`] per assigned partition (a request and its
//! responses share a partition, and a request is decided on its own partition's watermark);
//! dead letters go to a Kafka topic; the partitions' aggregates merge into the month outputs.
//!
//! This first version keeps state in memory only (durable checkpoints come with the state-store
//! issue), so it consumes each assigned partition from the beginning and commits no offsets: a
//! restart recomputes everything rather than count anything twice or lose it.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use super::partition::partition_of;
use super::produce::{DeliveryCounter, send_waiting};
use crate::aggregate::Aggregates;
use crate::config::Config;
use crate::correlate::Pos;
use crate::event::DeadReason;
use crate::pipeline::{DeadLetter, DeadLetterSink, Pipeline, PipelineStats, SourceName};
use crate::time::Ts;

/// Dead letters produced to a topic: the original bytes as value, `reason` and `origin` (and
/// `reconstructed` when so) as headers. Shared by every partition's pipeline.
#[derive(Clone)]
pub struct KafkaDeadLetters {
    producer: Arc<BaseProducer<DeliveryCounter>>,
    topic: String,
    sent: Arc<AtomicU64>,
}

impl KafkaDeadLetters {
    fn failures(&self) -> u64 {
        self.producer.context().failed.load(Ordering::Relaxed)
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

/// How `run` ends.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop once every assigned partition has been read to its end (a catch-up job, and tests);
    /// pending requests are then decided as at the end of a replay.
    pub until_caught_up: bool,
}

/// What `run` leaves behind.
pub struct RunOutcome {
    /// The partitions' aggregates, merged; its watermark is the combined one.
    pub aggregates: Aggregates,
    /// Event accounting over all partitions.
    pub stats: PipelineStats,
    /// Partitions consumed (`topic/partition`).
    pub partitions: Vec<String>,
    /// Dead letters produced.
    pub dead_letters_sent: u64,
}

struct Part {
    pipeline: Pipeline<KafkaDeadLetters>,
    max_at: Ts,
    next_offset: i64,
    last_event: Instant,
}

/// A client configuration: our defaults first, then `[kafka.properties]` and the secrets, so an
/// operator's settings always win.
fn client_config(cfg: &Config, defaults: &[(&str, &str)]) -> anyhow::Result<ClientConfig> {
    let k = &cfg.settings.kafka;
    let secrets = k
        .resolve_secrets(|v| std::env::var(v).ok())
        .map_err(anyhow::Error::msg)?;
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

fn now() -> Ts {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Ts(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// Consumes the configured topics in the configured group until `stop` is set (or, with
/// `until_caught_up`, until every assigned partition is read to its end).
pub fn run(cfg: &Config, opts: &RunOptions, stop: &AtomicBool) -> anyhow::Result<RunOutcome> {
    let k = &cfg.settings.kafka;
    let lateness = cfg.settings.time.allowed_lateness;
    // A deep prefetch queue: with librdkafka's default (100,000 messages over all partitions) the
    // loop waited on fetches most of the time (27 % CPU, half the rate; BENCHMARKS.md).
    let mut cc = client_config(cfg, &[("queued.min.messages", "1000000")])?;
    cc.set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = cc.create()?;
    let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let mut pc = client_config(cfg, &[("linger.ms", "20")])?;
    pc.set("enable.idempotence", "true");
    let dead = KafkaDeadLetters {
        producer: Arc::new(pc.create_with_context(DeliveryCounter::default())?),
        topic: k.dead_letter_topic.clone(),
        sent: Arc::new(AtomicU64::new(0)),
    };

    let mut partition_counts: HashMap<String, i32> = HashMap::new();
    let mut parts: BTreeMap<String, BTreeMap<i32, Part>> = BTreeMap::new();
    let started = Instant::now();
    tracing::info!(brokers = %k.brokers, topics = ?k.topics, group = %k.group_id, "consuming");
    while !stop.load(Ordering::Relaxed) {
        let msg = match consumer.poll(Duration::from_millis(200)) {
            None => {
                dead.producer.poll(Duration::ZERO);
                if opts.until_caught_up && caught_up(&consumer, &parts, started)? {
                    break;
                }
                continue;
            }
            Some(Err(e)) => {
                // librdkafka retries broker and network errors itself; say what happened.
                tracing::warn!(error = %e, "consumer");
                continue;
            }
            Some(Ok(m)) => m,
        };
        // Borrowed from the message: no allocation per event for the lookups below.
        let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
        let count = match partition_counts.get(topic) {
            Some(n) => *n,
            None => {
                let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
                let n = md
                    .topics()
                    .first()
                    .map_or(0, |t| t.partitions().len() as i32);
                partition_counts.insert(topic.to_string(), n);
                n
            }
        };
        if !parts.contains_key(topic) {
            parts.insert(topic.to_string(), BTreeMap::new());
        }
        let of_topic = parts
            .get_mut(topic)
            .ok_or_else(|| anyhow::anyhow!("{topic} vanished"))?;
        let part = match of_topic.entry(partition) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let name = SourceName {
                    name: format!("{topic}/{partition}"),
                    separator: '/',
                };
                let pipeline =
                    Pipeline::new(cfg, vec![name], dead.clone()).map_err(anyhow::Error::msg)?;
                tracing::info!(topic = %topic, partition, "partition assigned");
                e.insert(Part {
                    pipeline,
                    max_at: Ts::MIN,
                    next_offset: 0,
                    last_event: Instant::now(),
                })
            }
        };
        part.next_offset = offset + 1;
        part.last_event = Instant::now();
        let pos = Pos::new(0, offset.max(0) as u64);
        // A null value is `malformed_json` (SPEC §1): it decodes as an empty event.
        let raw = msg.payload().unwrap_or(&[]);
        if k.verify_partitioning
            && let Some(key) = msg.key()
            && partition_of(key, count) != partition
        {
            part.pipeline.reject(DeadReason::WrongPartition, pos, raw)?;
            continue;
        }
        part.pipeline
            .set_future_limit(Some(now().plus(k.max_future_skew)));
        if let Some(at) = part.pipeline.process(raw, pos)?
            && at > part.max_at
        {
            part.max_at = at;
            part.pipeline.advance(at.minus(lateness))?;
        }
        if dead.failures() > 0 {
            anyhow::bail!(
                "dead letters could not be written to {}: stopping rather than lose them",
                dead.topic
            );
        }
    }

    let mut aggregates: Option<Aggregates> = None;
    let mut stats = PipelineStats::default();
    let mut combined = Ts::MAX;
    let mut names = Vec::new();
    let idle = std::time::Duration::from_nanos(k.idle_timeout.0.max(0) as u64);
    for (topic, partition, mut part) in parts
        .into_iter()
        .flat_map(|(t, ps)| ps.into_iter().map(move |(p, part)| (t.clone(), p, part)))
    {
        let wm = part.pipeline.watermark();
        // Idle partitions do not hold the combined watermark back.
        if part.last_event.elapsed() < idle || opts.until_caught_up {
            combined = combined.min(wm);
        }
        if opts.until_caught_up {
            part.pipeline.finish()?;
        }
        let (agg, s, _) = part.pipeline.into_parts();
        stats.add(&s);
        match &mut aggregates {
            Some(a) => a.merge(&agg),
            None => aggregates = Some(agg),
        }
        names.push(format!("{topic}/{partition}"));
    }
    dead.producer
        .flush(Duration::from_secs(30))
        .map_err(|e| anyhow::anyhow!("flushing dead letters to {}: {e}", dead.topic))?;
    if dead.failures() > 0 {
        anyhow::bail!(
            "{} dead letters could not be written to {}",
            dead.failures(),
            dead.topic
        );
    }
    let aggregates = match aggregates {
        Some(a) => a.with_watermark(if combined == Ts::MAX {
            Ts::MIN
        } else {
            combined
        }),
        None => Aggregates::new(
            Arc::new(cfg.definitions.clone()),
            crate::calendar::Calendar::new(&cfg.settings.time.zone).map_err(anyhow::Error::msg)?,
        ),
    };
    Ok(RunOutcome {
        aggregates,
        stats,
        partitions: names,
        dead_letters_sent: dead.sent.load(Ordering::Relaxed),
    })
}

/// Every assigned partition read to its high watermark (and at least one assigned).
fn caught_up(
    consumer: &BaseConsumer,
    parts: &BTreeMap<String, BTreeMap<i32, Part>>,
    started: Instant,
) -> anyhow::Result<bool> {
    // Copy the assignment into owned data at once: holding rdkafka's list across the consumer's
    // drop has hung processes (rust-rdkafka issue 509).
    let assigned: Vec<(String, i32)> = consumer
        .assignment()?
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect();
    if assigned.is_empty() {
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!(
                "no partition was assigned within 60 s (is the topic there, and the group free?)"
            );
        }
        return Ok(false);
    }
    for (topic, partition) in assigned {
        let (low, high) = consumer.fetch_watermarks(&topic, partition, Duration::from_secs(10))?;
        let next = parts
            .get(&topic)
            .and_then(|ps| ps.get(&partition))
            .map_or(low, |p| p.next_offset.max(low));
        if next < high {
            return Ok(false);
        }
    }
    Ok(true)
}
