//! `srv-opr run`: the consumer group. One [`Pipeline`] per assigned partition (a request and its
//! responses share a partition, and a request is decided on its own partition's watermark);
//! dead letters go to a Kafka topic; the partitions' aggregates merge into the month outputs.
//!
//! Threads: one fetch thread owns the consumer. It polls, copies each message's key and value
//! into a batch for the worker that owns the partition, and serves the rebalance callbacks.
//! Worker threads own the partitions' pipelines and do the decoding and correlating, so fetching
//! and processing overlap instead of sharing one core. A batch per worker keeps each partition's
//! messages in offset order; bounded channels push back on the fetch thread when workers lag.
//!
//! Partition state leaves through one seam, `StateHandOver`, on revocation and at shutdown,
//! after everything fetched for the partition has been processed. This version keeps state in
//! memory only (durable checkpoints come with the state-store issue): it consumes each assigned
//! partition from the beginning and commits no offsets, so a revoked partition's state is
//! dropped and its new owner recomputes it: nothing is counted twice or lost.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::partition::partition_of;
use super::produce::{DeliveryCounter, send_waiting};
use crate::config::Config;
use crate::engine::aggregate::Aggregates;
use crate::engine::correlate::Pos;
use crate::engine::event::DeadReason;
use crate::engine::merge::PartitionMerge;
use crate::engine::pipeline::{DeadLetter, DeadLetterSink, Pipeline, PipelineStats, SourceName};
use crate::engine::time::{Ts, now};
use crate::ops::live::{Live, PartView};
use crate::store::{Checkpoint, Identity, Store, StoreError};

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

    /// Waits up to `wait` for every dead letter to be acknowledged, sending again those a
    /// restarting broker refused for a moment (see `DeliveryCounter`).
    fn flush(&self, wait: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            self.producer.flush(left).map_err(anyhow::Error::from)?;
            let again: Vec<crate::kafka::produce::Retry> = self
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
                anyhow::bail!("dead letters still refused when the wait ended");
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
                send_waiting(&self.producer, record)?;
            }
        }
    }

    fn first_error(&self) -> String {
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

/// How `run` ends.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop once every assigned partition has been read to its end (a catch-up job, and tests);
    /// pending requests are then decided as at the end of a replay.
    pub until_caught_up: bool,
    /// With `until_caught_up`: being caught up only counts once this is set (the demo sets it
    /// when its simulator has delivered everything).
    pub input_complete: Option<Arc<AtomicBool>>,
    /// Adopt the current measure definitions if the state store was made under others.
    pub accept_config_change: bool,
}

/// What `run` leaves behind.
pub struct RunOutcome {
    /// The partitions' aggregates, merged; its watermark is the combined one.
    pub aggregates: Aggregates,
    /// Event accounting over the partitions held at the end.
    pub stats: PipelineStats,
    /// Partitions held at the end (`topic/partition`).
    pub partitions: Vec<String>,
    /// Dead letters produced.
    pub dead_letters_sent: u64,
    /// Partitions handed over (revoked) during the run.
    pub handed_over: u64,
}

/// One partition's state, owned by its worker.
pub struct PartState {
    /// The partition's pipeline (correlator, aggregates, accounting).
    pub pipeline: Pipeline<KafkaDeadLetters>,
    /// Largest valid `at` seen (the watermark is this minus the allowed lateness).
    pub max_at: Ts,
    /// The next offset to process.
    pub next_offset: i64,
    /// When the partition last delivered a message (wall clock).
    pub last_event: Instant,
    topic: String,
    partition: i32,
    partition_count: i32,
    published: Instant,
    dirty: bool,
    /// The store's fencing epoch for this partition (0 without a store).
    epoch: i64,
    /// Events since the last checkpoint.
    since_checkpoint: u64,
    /// When the last checkpoint was written (or the partition assigned).
    checkpointed: Instant,
    /// Bytes of the partition's state log in the store.
    log_bytes: u64,
}

/// Why a partition's state is leaving its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOverCause {
    /// The group took the partition away (another member will own it).
    Revoked,
    /// The service is stopping.
    Shutdown,
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

/// Messages copied out of librdkafka for one worker: keys and values back to back in `data`.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
    opened: Option<Instant>,
}

struct Item {
    slot: u32,
    offset: i64,
    /// `u32::MAX`: no key.
    key_len: u32,
    value_len: u32,
}

const NO_KEY: u32 = u32::MAX;
/// A batch goes to its worker at this many messages…
const BATCH_ITEMS: usize = 2048;
/// …or this many bytes…
const BATCH_BYTES: usize = 1 << 20;
/// …or when it is this old, so a trickle of live traffic is not held back.
const BATCH_AGE: Duration = Duration::from_millis(20);
/// Batches queued per worker before the fetch thread waits.
const QUEUE_DEPTH: usize = 8;
/// How often a worker publishes its partitions to the live view.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

enum Work {
    Assign(u32, Box<PartState>),
    Batch(Batch),
    /// Process everything before this, checkpoint the slots (their hand-over), then send their
    /// state back.
    Release(
        Vec<u32>,
        HandOverCause,
        SyncSender<Vec<(u32, Box<PartState>)>>,
    ),
}

struct Worker {
    tx: SyncSender<Work>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    filling: Batch,
}

struct Assigned {
    slot: u32,
    worker: usize,
    next_offset: i64,
}

/// The fetch thread's side of the workers: batching, assignment, hand-over. Lives in the
/// consumer's context because the rebalance callbacks need it; only the fetch thread locks it.
struct Dispatcher {
    /// What each partition's pipeline is built from.
    pipeline: crate::engine::pipeline::PipelineConfig,
    dead: KafkaDeadLetters,
    live: Arc<Live>,
    /// The fetch thread's own store connection, for claims (workers have theirs).
    store: Option<Box<dyn Store>>,
    owner: String,
    workers: Vec<Worker>,
    pool: Receiver<Batch>,
    /// Topic index → partition → assignment.
    topics: Vec<(String, i32, Vec<Option<Assigned>>)>,
    next_slot: u32,
    handed_over: u64,
    /// Subscribed to one topic by name: every message is of `topics[0]`, so the hot path need not
    /// read (and UTF-8 check) each message's topic name.
    single_topic: bool,
    /// A failure inside a rebalance callback, reported by the fetch loop.
    error: Option<anyhow::Error>,
}

impl Dispatcher {
    fn topic_index(&self, topic: &str) -> Option<usize> {
        self.topics.iter().position(|(t, _, _)| t == topic)
    }

    fn assigned(&self) -> impl Iterator<Item = (&str, i32, &Assigned)> {
        self.topics.iter().flat_map(|(t, _, ps)| {
            ps.iter()
                .enumerate()
                .filter_map(move |(p, a)| a.as_ref().map(|a| (t.as_str(), p as i32, a)))
        })
    }

    /// Takes new partitions: restores each from the store and sets the offset in `tpl` that
    /// consumption resumes from (the checkpoint's, never Kafka's committed one: offsets belong
    /// to the state they were checkpointed with).
    fn assign(&mut self, consumer: &BaseConsumer<RunContext>, tpl: &mut TopicPartitionList) {
        for (topic, partition) in owned_list(tpl) {
            match self.assign_one(consumer, &topic, partition) {
                Ok(Some(offset)) => {
                    if let Err(e) = tpl.set_partition_offset(&topic, partition, offset) {
                        self.error.get_or_insert(anyhow::anyhow!(
                            "cannot set the start offset of {topic}/{partition}: {e}"
                        ));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.error.get_or_insert(e);
                }
            }
        }
        self.live.set_assigned(self.assigned().count());
    }

    /// Claims and restores one partition for a worker; returns the offset to start from, if it
    /// is not Kafka's choice (no store: the earliest, as nothing is committed).
    fn assign_one(
        &mut self,
        consumer: &BaseConsumer<RunContext>,
        topic: &str,
        partition: i32,
    ) -> anyhow::Result<Option<Offset>> {
        let ti = match self.topic_index(topic) {
            Some(i) => i,
            None => {
                let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
                let n = md
                    .topics()
                    .first()
                    .map_or(0, |t| t.partitions().len() as i32);
                self.topics.push((topic.to_string(), n, Vec::new()));
                self.topics.len() - 1
            }
        };
        let count = self.topics[ti].1;
        let p = usize::try_from(partition)
            .map_err(|_| anyhow::anyhow!("negative partition {partition} of {topic}"))?;
        if self.topics[ti].2.len() <= p {
            self.topics[ti].2.resize_with(p + 1, || None);
        }
        if self.topics[ti].2[p].is_some() {
            return Ok(None);
        }
        let name = SourceName {
            name: format!("{topic}/{partition}"),
            separator: '/',
        };
        let (pipeline, epoch, next_offset, max_at, start, log_bytes) = match &mut self.store {
            None => (
                Pipeline::new(&self.pipeline, vec![name], self.dead.clone()),
                0,
                0,
                Ts::MIN,
                None,
                0,
            ),
            Some(store) => {
                let claim = store.claim(topic, partition, &self.owner)?;
                match claim.saved {
                    None => {
                        let mut p = Pipeline::new(&self.pipeline, vec![name], self.dead.clone());
                        p.track_changes();
                        tracing::info!(
                            topic,
                            partition,
                            epoch = claim.epoch,
                            "no checkpoint yet: reading the partition from the beginning"
                        );
                        (p, claim.epoch, 0, Ts::MIN, Some(Offset::Beginning), 0)
                    }
                    Some(saved) => {
                        let records = saved.pipeline.entries.len();
                        let p = Pipeline::restore(
                            &self.pipeline,
                            vec![name],
                            self.dead.clone(),
                            saved.pipeline,
                        )
                        .map_err(|e| anyhow::anyhow!("cannot restore {topic}/{partition}: {e}"))?;
                        tracing::info!(
                            topic,
                            partition,
                            epoch = claim.epoch,
                            offset = saved.next_offset,
                            records,
                            pending = p.correlator().pending(),
                            "restored from checkpoint"
                        );
                        (
                            p,
                            claim.epoch,
                            saved.next_offset,
                            Ts(saved.max_at),
                            Some(Offset::Offset(saved.next_offset)),
                            saved.log_bytes,
                        )
                    }
                }
            }
        };
        let slot = self.next_slot;
        self.next_slot += 1;
        // Spread partitions evenly: a topic's partitions round-robin over the workers.
        let worker = (ti + p) % self.workers.len();
        let state = PartState {
            pipeline,
            max_at,
            next_offset,
            last_event: Instant::now(),
            topic: topic.to_string(),
            partition,
            partition_count: count,
            published: Instant::now(),
            dirty: true,
            epoch,
            since_checkpoint: 0,
            checkpointed: Instant::now(),
            log_bytes,
        };
        self.send(worker, Work::Assign(slot, Box::new(state)))?;
        self.topics[ti].2[p] = Some(Assigned {
            slot,
            worker,
            next_offset,
        });
        tracing::info!(topic, partition, worker, "partition assigned");
        Ok(start)
    }

    fn send(&mut self, worker: usize, work: Work) -> anyhow::Result<()> {
        if self.workers[worker].tx.send(work).is_err() {
            return Err(self.worker_failed(worker));
        }
        Ok(())
    }

    /// The worker has gone: its own error says why.
    fn worker_failed(&mut self, worker: usize) -> anyhow::Error {
        match self.workers[worker].handle.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => anyhow::anyhow!("worker {worker} panicked"),
            _ => anyhow::anyhow!("worker {worker} stopped"),
        }
    }

    /// Copies one message into its worker's batch.
    fn push(&mut self, msg: &rdkafka::message::BorrowedMessage<'_>) -> anyhow::Result<()> {
        let partition = msg.partition();
        let ti = if self.single_topic && !self.topics.is_empty() {
            Some(0)
        } else {
            self.topic_index(msg.topic())
        };
        let assigned = ti.and_then(|ti| {
            self.topics[ti]
                .2
                .get_mut(usize::try_from(partition).ok()?)?
                .as_mut()
        });
        let Some(a) = assigned else {
            // librdkafka drops a revoked partition's queued messages; one that still slips
            // through belongs to the partition's new owner, which reads it itself.
            tracing::debug!(
                topic = msg.topic(),
                partition,
                offset = msg.offset(),
                "message of a partition not held"
            );
            return Ok(());
        };
        a.next_offset = msg.offset() + 1;
        let (slot, worker) = (a.slot, a.worker);
        let b = &mut self.workers[worker].filling;
        if b.opened.is_none() {
            b.opened = Some(Instant::now());
        }
        let key_len = match msg.key() {
            Some(k) => {
                b.data.extend_from_slice(k);
                k.len() as u32
            }
            None => NO_KEY,
        };
        // A null value is `malformed_json` (SPEC §1): it decodes as an empty event.
        let value = msg.payload().unwrap_or(&[]);
        b.data.extend_from_slice(value);
        b.items.push(Item {
            slot,
            offset: msg.offset(),
            key_len,
            value_len: value.len() as u32,
        });
        if b.items.len() >= BATCH_ITEMS || b.data.len() >= BATCH_BYTES {
            self.flush_worker(worker)?;
        }
        Ok(())
    }

    fn flush_worker(&mut self, worker: usize) -> anyhow::Result<()> {
        if self.workers[worker].filling.items.is_empty() {
            return Ok(());
        }
        let fresh = self.pool.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.workers[worker].filling, fresh);
        self.send(worker, Work::Batch(full))
    }

    /// Sends every batch, or only those older than [`BATCH_AGE`].
    fn flush(&mut self, only_old: bool) -> anyhow::Result<()> {
        for w in 0..self.workers.len() {
            let old = self.workers[w]
                .filling
                .opened
                .is_some_and(|t| t.elapsed() >= BATCH_AGE);
            if !only_old || old {
                self.flush_worker(w)?;
            }
        }
        Ok(())
    }

    /// Takes partitions back from their workers once everything fetched for them is processed,
    /// and gives their state to the store.
    fn release(
        &mut self,
        list: &[(String, i32)],
        cause: HandOverCause,
    ) -> anyhow::Result<Vec<PartState>> {
        self.flush(false)?;
        let mut by_worker: Vec<Vec<u32>> = vec![Vec::new(); self.workers.len()];
        for (topic, partition) in list {
            let Some(ti) = self.topic_index(topic) else {
                continue;
            };
            let Some(a) = usize::try_from(*partition)
                .ok()
                .and_then(|p| self.topics[ti].2.get_mut(p))
                .and_then(Option::take)
            else {
                continue;
            };
            by_worker[a.worker].push(a.slot);
        }
        let mut replies = Vec::new();
        for (w, slots) in by_worker.into_iter().enumerate() {
            if slots.is_empty() {
                continue;
            }
            let (tx, rx) = mpsc::sync_channel(1);
            self.send(w, Work::Release(slots, cause, tx))?;
            replies.push((w, rx));
        }
        let mut states = Vec::new();
        for (w, rx) in replies {
            match rx.recv() {
                Ok(got) => states.extend(got.into_iter().map(|(_, s)| *s)),
                Err(_) => return Err(self.worker_failed(w)),
            }
        }
        if cause == HandOverCause::Revoked && !states.is_empty() {
            let names: Vec<String> = states
                .iter()
                .map(|s| format!("{}/{}", s.topic, s.partition))
                .collect();
            tracing::info!(partitions = ?names, "partitions revoked: drained, handing over");
        }
        for s in &states {
            if cause == HandOverCause::Revoked {
                self.live.retire(&s.topic, s.partition);
                self.handed_over += 1;
            }
        }
        self.live.set_assigned(self.assigned().count());
        Ok(states)
    }
}

/// The consumer's context: rebalance callbacks and statistics.
struct RunContext {
    dispatcher: Mutex<Dispatcher>,
}

impl RunContext {
    fn lock(&self) -> std::sync::MutexGuard<'_, Dispatcher> {
        self.dispatcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn owned_list(tpl: &rdkafka::TopicPartitionList) -> Vec<(String, i32)> {
    // Owned at once: holding rdkafka's list across the consumer's drop has hung processes
    // (rust-rdkafka issue 509).
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ClientContext for RunContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // Broker outages and request errors: librdkafka retries them; the operator sees them.
        tracing::warn!(error = %error, reason, "kafka client");
        self.lock().live.count_kafka_error();
    }

    fn stats(&self, statistics: Statistics) {
        let d = self.lock();
        for (topic, t) in &statistics.topics {
            for (p, s) in &t.partitions {
                // -1 is librdkafka's "not known yet"; partition -1 is its internal one.
                if *p >= 0 && s.ls_offset >= 0 {
                    d.live.set_end_offset(topic, *p, s.ls_offset);
                }
            }
        }
    }
}

impl ConsumerContext for RunContext {
    /// Revocation: drain, checkpoint and let go. Assignment: restore from the store and start
    /// each partition at its checkpoint's offset. (rdkafka's own `rebalance` assigns with the
    /// offsets as librdkafka gave them, so it is replaced whole, keeping its protocol handling.)
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.lock().assign(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let list = owned_list(tpl);
                {
                    let mut d = self.lock();
                    if let Err(e) = d.release(&list, HandOverCause::Revoked) {
                        d.error.get_or_insert(e);
                    }
                }
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let code: rdkafka::error::RDKafkaErrorCode = other.into();
                tracing::warn!(error = %code, "rebalance error");
                // As rdkafka does: give up the assignment; the group assigns again.
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "applying the rebalance");
            self.lock().live.count_kafka_error();
        }
    }
}

/// The worker thread: owns its partitions' state, processes batches in order.
fn worker_loop(
    rx: Receiver<Work>,
    pool: SyncSender<Batch>,
    cfg: Config,
    live: Arc<Live>,
    failed: Arc<AtomicBool>,
    mut ck: Checkpointer,
) -> anyhow::Result<()> {
    let result = worker_body(&rx, &pool, &cfg, &live, &mut ck);
    if result.is_err() {
        failed.store(true, Ordering::Relaxed);
    }
    result
}

/// A worker's checkpointing: its own store connection (none: state in memory only).
struct Checkpointer {
    store: Option<Box<dyn Store>>,
    every_events: u64,
    interval: Duration,
    /// Checkpointed offsets for the fetch thread to commit to Kafka (for lag monitoring only).
    commits: mpsc::Sender<(String, i32, i64)>,
    dead: KafkaDeadLetters,
    /// Regular checkpoints wait until then: the dead letters they must cover were not yet
    /// acknowledged by Kafka (a broker outage).
    postponed_until: Option<Instant>,
}

impl Checkpointer {
    /// Checkpoints the partitions that are due (all of `parts` when `force`).
    fn run<'a>(
        &mut self,
        parts: impl Iterator<Item = &'a mut Box<PartState>>,
        force: bool,
    ) -> anyhow::Result<()> {
        if self.store.is_none() {
            return Ok(());
        }
        if !force && self.postponed_until.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let due: Vec<&mut Box<PartState>> = parts
            .filter(|s| {
                force
                    || s.since_checkpoint >= self.every_events
                    || (s.since_checkpoint > 0 && s.checkpointed.elapsed() >= self.interval)
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        // Dead letters of the events a checkpoint covers must be in Kafka before it says they
        // were processed; otherwise a crash right after it would lose them.
        // A hand-over waits longer; a regular checkpoint is postponed instead (librdkafka keeps
        // retrying, and fails the messages only after `message.timeout.ms`, which stops `run`).
        let wait = if force { 30 } else { 5 };
        if let Err(e) = self.dead.flush(Duration::from_secs(wait)) {
            if force {
                // The broker is away (a restart, an outage): hand the partitions over without a
                // checkpoint rather than stop. Their previous checkpoints stand, so whoever owns
                // them next re-reads the events since, counting nothing twice and producing
                // these dead letters again (some may then be in the topic twice).
                tracing::warn!(error = %e, partitions = due.len(),
                    "hand-over without a final checkpoint: dead letters not acknowledged by \
                     Kafka; the next owner resumes from the previous checkpoint");
                return Ok(());
            }
            tracing::warn!(error = %e, "checkpoint postponed: dead letters not yet acknowledged");
            self.postponed_until = Some(Instant::now() + self.interval.max(Duration::from_secs(1)));
            return Ok(());
        }
        self.postponed_until = None;
        if self.dead.failures() > 0 {
            anyhow::bail!(
                "{} dead letters could not be written to {} ({}): stopped rather than lose them",
                self.dead.failures(),
                self.dead.topic,
                self.dead.first_error()
            );
        }
        for s in due {
            self.write(s)?;
        }
        Ok(())
    }

    fn write(&mut self, s: &mut PartState) -> anyhow::Result<()> {
        let Some(store) = &mut self.store else {
            return Ok(());
        };
        let started = Instant::now();
        let full = crate::store::snapshot_due(s.log_bytes, s.pipeline.snapshot_bytes());
        let delta = s.pipeline.take_delta(full).map_err(anyhow::Error::msg)?;
        let cp = Checkpoint {
            topic: &s.topic,
            partition: s.partition,
            epoch: s.epoch,
            next_offset: s.next_offset,
            max_at: s.max_at.0,
            delta: &delta,
        };
        match store.checkpoint(&cp) {
            Ok(w) => {
                tracing::debug!(topic = %s.topic, partition = s.partition, offset = s.next_offset,
                    records = w.records, rows = w.rows, revisions = w.revisions, full,
                    bytes = w.log_bytes, ms = started.elapsed().as_millis() as u64, "checkpoint");
                s.log_bytes = if full {
                    w.log_bytes
                } else {
                    s.log_bytes + w.log_bytes
                };
                if w.revisions > 0 {
                    tracing::warn!(topic = %s.topic, partition = s.partition,
                        revisions = w.revisions,
                        "late events changed final months: revisions recorded in the store");
                }
            }
            Err(e @ StoreError::Fenced { .. }) => {
                return Err(anyhow::anyhow!(e).context(
                    "another instance owns this partition now; stopping so that it alone \
                     writes its state",
                ));
            }
            Err(e) => return Err(anyhow::anyhow!(e).context("writing a checkpoint")),
        }
        s.since_checkpoint = 0;
        s.checkpointed = Instant::now();
        // The live view shows the checkpoint's age: publish the new one.
        s.dirty = true;
        // The fetch thread may be gone at the very end; the checkpoint is what matters.
        let _ = self
            .commits
            .send((s.topic.clone(), s.partition, s.next_offset));
        Ok(())
    }
}

fn worker_body(
    rx: &Receiver<Work>,
    pool: &SyncSender<Batch>,
    cfg: &Config,
    live: &Live,
    ck: &mut Checkpointer,
) -> anyhow::Result<()> {
    let k = &cfg.settings.kafka;
    let lateness = cfg.settings.time.allowed_lateness;
    let mut parts: BTreeMap<u32, Box<PartState>> = BTreeMap::new();
    loop {
        let work = match rx.recv_timeout(PUBLISH_EVERY) {
            Ok(w) => w,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Quiet: make sure the live view shows the last batch processed, and that a
                // partition's last events reach the store.
                for s in parts.values_mut() {
                    if s.dirty {
                        publish(live, s);
                    }
                }
                ck.run(parts.values_mut(), false)?;
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match work {
            Work::Assign(slot, state) => {
                parts.insert(slot, state);
            }
            Work::Release(slots, cause, reply) => {
                let mut out = Vec::new();
                for slot in slots {
                    if let Some(mut s) = parts.remove(&slot) {
                        publish(live, &mut s);
                        out.push((slot, s));
                    }
                }
                // The hand-over: a last checkpoint of each, after everything fetched for it.
                ck.run(out.iter_mut().map(|(_, s)| s), true)?;
                if ck.store.is_none() && cause == HandOverCause::Revoked {
                    for (_, s) in &out {
                        tracing::warn!(
                            topic = %s.topic,
                            partition = s.partition,
                            next_offset = s.next_offset,
                            pending = s.pipeline.correlator().pending(),
                            "partition revoked: no state store, so its state is dropped and its \
                             new owner recomputes it from the beginning"
                        );
                    }
                }
                // The fetch thread waits for this reply; if it has gone, so has the run.
                let _ = reply.send(out);
            }
            Work::Batch(mut batch) => {
                // The wall clock once per batch: the guard is minutes wide.
                let limit = Some(now().plus(k.max_future_skew));
                let arrived = Instant::now();
                let mut at = 0usize;
                let mut current: Option<(u32, &mut Box<PartState>)> = None;
                for item in &batch.items {
                    let key = if item.key_len == NO_KEY {
                        None
                    } else {
                        let k = &batch.data[at..at + item.key_len as usize];
                        at += item.key_len as usize;
                        Some(k)
                    };
                    let raw = &batch.data[at..at + item.value_len as usize];
                    at += item.value_len as usize;
                    if current.as_ref().is_none_or(|(s, _)| *s != item.slot) {
                        current = parts.get_mut(&item.slot).map(|p| (item.slot, p));
                    }
                    let Some((_, part)) = current.as_mut() else {
                        anyhow::bail!(
                            "message for slot {} that this worker does not hold",
                            item.slot
                        );
                    };
                    part.next_offset = item.offset + 1;
                    part.last_event = arrived;
                    part.dirty = true;
                    part.since_checkpoint += 1;
                    let pos = Pos::new(0, item.offset.max(0) as u64);
                    if k.verify_partitioning
                        && let Some(key) = key
                        && partition_of(key, part.partition_count) != part.partition
                    {
                        part.pipeline.reject(DeadReason::WrongPartition, pos, raw)?;
                        continue;
                    }
                    part.pipeline.set_future_limit(limit);
                    if let Some(t) = part.pipeline.process(raw, pos)?
                        && t > part.max_at
                    {
                        part.max_at = t;
                        part.pipeline.advance(t.minus(lateness))?;
                    }
                }
                live.add_processed(batch.items.len() as u64);
                batch.items.clear();
                batch.data.clear();
                batch.opened = None;
                let _ = pool.try_send(batch);
                for s in parts.values_mut() {
                    if s.dirty && s.published.elapsed() >= PUBLISH_EVERY {
                        publish(live, s);
                    }
                }
                ck.run(parts.values_mut(), false)?;
            }
        }
    }
    Ok(())
}

fn publish(live: &Live, s: &mut PartState) {
    let c = s.pipeline.correlator();
    let view = PartView::capture(
        s.pipeline.stats(),
        c.pending(),
        c.waiting(),
        s.pipeline.aggregates(),
        s.last_event,
        s.next_offset,
        // Without a store (epoch 0) nothing is ever checkpointed, and no age is shown.
        (s.epoch > 0 && s.since_checkpoint > 0).then_some(s.checkpointed),
    );
    live.publish(&s.topic, s.partition, view);
    s.published = Instant::now();
    s.dirty = false;
}

fn worker_count(cfg: &Config) -> usize {
    match cfg.settings.kafka.workers {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1),
        n => n,
    }
}

/// Consumes the configured topics in the configured group until `stop` is set (or, with
/// `until_caught_up`, until every assigned partition is read to its end).
pub fn run(
    cfg: &Config,
    opts: &RunOptions,
    stop: &AtomicBool,
    live: Arc<Live>,
) -> anyhow::Result<RunOutcome> {
    let k = &cfg.settings.kafka;
    let mut pc = client_config(cfg, &[("linger.ms", "20")])?;
    pc.set("enable.idempotence", "true");
    let dead = KafkaDeadLetters {
        producer: Arc::new(pc.create_with_context(DeliveryCounter::retrying_unknown_partitions())?),
        topic: k.dead_letter_topic.clone(),
        sent: Arc::new(AtomicU64::new(0)),
    };

    // One store connection for the fetch thread's claims and one per worker (each thread owns
    // its own: SQLite and PostgreSQL connections are not shared).
    let st = &cfg.settings.state;
    let identity = Identity::of_run(cfg, opts.accept_config_change);
    let open_store = || -> anyhow::Result<Option<Box<dyn Store>>> {
        if st.url.is_empty() {
            return Ok(None);
        }
        Ok(Some(crate::store::open_configured(cfg, &identity)?))
    };
    let claims = open_store()?;
    match &claims {
        Some(_) => tracing::info!(store = %crate::store::redacted(&st.url),
            every_events = st.checkpoint_events, interval = %st.checkpoint_interval,
            "state store open"),
        None => tracing::warn!(
            "no state store (state.url is empty): a restart reads every partition from the \
             beginning"
        ),
    }
    let (commit_tx, commit_rx) = mpsc::channel::<(String, i32, i64)>();

    let failed = Arc::new(AtomicBool::new(false));
    let (pool_tx, pool_rx) = mpsc::sync_channel::<Batch>(64);
    let mut workers = Vec::new();
    for i in 0..worker_count(cfg) {
        let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let (pool, c, l, f) = (pool_tx.clone(), cfg.clone(), live.clone(), failed.clone());
        let ck = Checkpointer {
            store: open_store()?,
            every_events: st.checkpoint_events,
            interval: st.checkpoint_interval.to_std(),
            commits: commit_tx.clone(),
            dead: dead.clone(),
            postponed_until: None,
        };
        let handle = std::thread::Builder::new()
            .name(format!("srv-opr-worker-{i}"))
            .spawn(move || worker_loop(rx, pool, c, l, f, ck))?;
        workers.push(Worker {
            tx,
            handle: Some(handle),
            filling: Batch::default(),
        });
    }
    drop(pool_tx);
    let context = RunContext {
        dispatcher: Mutex::new(Dispatcher {
            pipeline: cfg.pipeline().map_err(anyhow::Error::msg)?,
            dead: dead.clone(),
            live: live.clone(),
            store: claims,
            owner: crate::store::owner_name(),
            workers,
            pool: pool_rx,
            topics: Vec::new(),
            next_slot: 0,
            handed_over: 0,
            single_topic: cfg.settings.kafka.topics.len() == 1
                && !cfg.settings.kafka.topics[0].starts_with('^'),
            error: None,
        }),
    };

    // A deep prefetch queue: with librdkafka's default (100,000 messages over all partitions) the
    // loop waited on fetches most of the time (BENCHMARKS.md). Statistics every 5 s give the
    // partitions' end offsets for the lag metric.
    let mut cc = client_config(
        cfg,
        &[
            ("queued.min.messages", "1000000"),
            ("statistics.interval.ms", "5000"),
        ],
    )?;
    cc.set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer<RunContext> = cc.create_with_context(context)?;
    let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let started = Instant::now();
    let mut last_check = Instant::now();
    let mut polled: u32 = 0;
    tracing::info!(brokers = %k.brokers, topics = ?k.topics, group = %k.group_id,
        workers = consumer.context().lock().workers.len(), "consuming");
    let fetch_result = (|| -> anyhow::Result<()> {
        while !stop.load(Ordering::Relaxed) {
            let polled_msg = consumer.poll(Duration::from_millis(100));
            // One lock per message: the push and the check for a rebalance callback's failure.
            let mut d = consumer.context().lock();
            let poll_producer = match polled_msg {
                None => {
                    d.flush(false)?;
                    true
                }
                Some(Err(e)) => {
                    // librdkafka retries broker and network errors itself; say what happened.
                    tracing::warn!(error = %e, "consumer");
                    d.live.count_kafka_error();
                    // A fatal error (e.g. a static member fenced by its own successor after a
                    // broker restart) leaves the consumer unusable: stop, so the supervisor
                    // restarts the process, which restores its partitions from the store.
                    if let Some((code, reason)) = consumer.client().fatal_error() {
                        anyhow::bail!(
                            "fatal Kafka client error, the consumer cannot go on: {code}: \
                             {reason}"
                        );
                    }
                    false
                }
                Some(Ok(m)) => {
                    d.push(&m)?;
                    polled = polled.wrapping_add(1);
                    if polled % 256 == 0 {
                        d.flush(true)?;
                        true
                    } else {
                        false
                    }
                }
            };
            if let Some(e) = d.error.take() {
                return Err(e);
            }
            drop(d);
            if poll_producer {
                dead.producer.poll(Duration::ZERO);
                commit_checkpointed(&consumer, &commit_rx, CommitMode::Async);
            }
            if failed.load(Ordering::Relaxed) || dead.failures() > 0 {
                break;
            }
            let input_complete = opts
                .input_complete
                .as_ref()
                .is_none_or(|f| f.load(Ordering::Relaxed));
            if opts.until_caught_up
                && input_complete
                && last_check.elapsed() >= Duration::from_millis(200)
            {
                last_check = Instant::now();
                if caught_up(&consumer, started)? {
                    break;
                }
            }
        }
        Ok(())
    })();

    // Stop: everything fetched is processed, then every partition is handed over. The deadline
    // (kafka.shutdown_timeout) is enforced by the caller's watchdog, which can end the process
    // even if a broker call here hangs.
    let outcome = {
        let ctx = consumer.context();
        let mut d = ctx.lock();
        let held: Vec<(String, i32)> = d.assigned().map(|(t, p, _)| (t.to_string(), p)).collect();
        let released = match &fetch_result {
            Ok(()) if !failed.load(Ordering::Relaxed) => d.release(&held, HandOverCause::Shutdown),
            _ => Err(anyhow::anyhow!("not handing over after a failure")),
        };
        let handed_over = d.handed_over;
        // Workers end when their channels close.
        let mut worker_errors = Vec::new();
        for (i, w) in d.workers.iter_mut().enumerate() {
            let (tx, _) = mpsc::sync_channel(1);
            drop(std::mem::replace(&mut w.tx, tx));
            if let Some(h) = w.handle.take() {
                match h.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => worker_errors.push(e),
                    Err(_) => worker_errors.push(anyhow::anyhow!("worker {i} panicked")),
                }
            }
        }
        fetch_result?;
        if let Some(e) = worker_errors.into_iter().next() {
            return Err(e);
        }
        (released?, handed_over)
    };
    // The hand-over's checkpoints, committed before leaving (lag monitoring sees the truth).
    commit_checkpointed(&consumer, &commit_rx, CommitMode::Sync);
    // Leave the group now: the remaining revoke has nothing left to hand over.
    drop(consumer);

    let (states, handed_over) = outcome;
    let pcfg = cfg.pipeline().map_err(anyhow::Error::msg)?;
    let mut merge = PartitionMerge::new(pcfg.definitions, pcfg.calendar);
    let mut combined = Ts::MAX;
    let mut names = Vec::new();
    for mut part in states {
        if opts.until_caught_up {
            part.pipeline.finish()?;
            combined = combined.min(part.pipeline.watermark());
        }
        publish(&live, &mut part);
        let (agg, s, _) = part.pipeline.into_parts();
        merge.add(&agg, &s);
        names.push(format!("{}/{}", part.topic, part.partition));
    }
    if !opts.until_caught_up {
        // Idle partitions do not hold the combined watermark back (SPEC §2).
        combined = live.combined_watermark().unwrap_or(Ts::MIN);
    }
    dead.flush(Duration::from_secs(30))
        .map_err(|e| anyhow::anyhow!("flushing dead letters to {}: {e}", dead.topic))?;
    if dead.failures() > 0 {
        anyhow::bail!(
            "{} dead letters could not be written to {} ({}): stopped rather than lose them",
            dead.failures(),
            dead.topic,
            dead.first_error()
        );
    }
    // No partition held at the end: nothing is final.
    let watermark = if names.is_empty() || combined == Ts::MAX {
        Ts::MIN
    } else {
        combined
    };
    let (aggregates, stats) = merge.finish(watermark);
    Ok(RunOutcome {
        aggregates,
        stats,
        partitions: names,
        dead_letters_sent: dead.sent.load(Ordering::Relaxed),
        handed_over,
    })
}

/// Commits the offsets workers have checkpointed. The commit only serves lag monitoring (the
/// store's offsets are the ones `run` resumes from), so it is asynchronous and best effort.
fn commit_checkpointed(
    consumer: &BaseConsumer<RunContext>,
    done: &Receiver<(String, i32, i64)>,
    mode: CommitMode,
) {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in done.try_iter() {
        if let Err(e) = tpl.add_partition_offset(&topic, partition, Offset::Offset(offset)) {
            tracing::debug!(error = %e, topic, partition, "offset not committed");
        }
    }
    if tpl.count() == 0 {
        return;
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        tracing::debug!(error = %e, "committing checkpointed offsets");
    }
}

/// Every assigned partition fetched to its high watermark (and at least one assigned).
fn caught_up(consumer: &BaseConsumer<RunContext>, started: Instant) -> anyhow::Result<bool> {
    let held: Vec<(String, i32, i64)> = consumer
        .context()
        .lock()
        .assigned()
        .map(|(t, p, a)| (t.to_string(), p, a.next_offset))
        .collect();
    if held.is_empty() {
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!(
                "no partition was assigned within 60 s (is the topic there, and the group free?)"
            );
        }
        return Ok(false);
    }
    for (topic, partition, next) in held {
        match cached_watermarks(consumer, &topic, partition) {
            Some((low, high)) if next.max(low) >= high => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// The partition's low and high watermarks as of the last fetch response, without a broker round
/// trip (`rd_kafka_get_watermark_offsets`; rdkafka does not wrap it). A network query here, every
/// few hundred milliseconds, queued behind the fetches and stalled consumption. `None` until a
/// fetch response has told them.
fn cached_watermarks(
    consumer: &BaseConsumer<RunContext>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` lives; `topic` is a NUL-terminated
    // string that outlives the call; librdkafka only writes the two out-parameters.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some((low.max(0), high))
}
