//! The fetch thread's side of the workers: assigning partitions (claimed in the store,
//! restored from their checkpoint, started at its offset), batching each message for the worker
//! that owns its partition, and releasing partitions once everything fetched for them is done.
//! It lives in the consumer's context because the rebalance callbacks need it; only the fetch
//! thread locks it.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::KafkaError;
use super::batch::Batch;
use super::deadletter::KafkaDeadLetters;
use super::handoff::{HandOverCause, PartState, Work};
use crate::engine::clock::SourceClock;
use crate::engine::pipeline::{Pipeline, PipelineConfig, SourceName};
use crate::engine::time::Ts;
use crate::ops::live::Live;
use crate::store::Store;

/// The fetch thread's handle on a worker thread.
pub(super) struct Worker {
    pub(super) tx: SyncSender<Work>,
    pub(super) handle: Option<JoinHandle<Result<(), KafkaError>>>,
    /// The batch being filled for it.
    pub(super) filling: Batch,
}

/// A partition held: its slot, its worker and the next offset fetched.
pub(super) struct Assigned {
    pub(super) slot: u32,
    pub(super) worker: usize,
    pub(super) next_offset: i64,
}

/// A partition claimed: (pipeline, epoch, next offset, largest `at`, start offset, log bytes).
type Claimed = (
    Pipeline<KafkaDeadLetters>,
    i64,
    i64,
    Ts,
    Option<Offset>,
    u64,
);

/// The fetch thread's side of the workers: batching, assignment, hand-over. Lives in the
/// consumer's context because the rebalance callbacks need it; only the fetch thread locks it.
pub(super) struct Dispatcher {
    /// What each partition's pipeline is built from.
    pub(super) pipeline: PipelineConfig,
    pub(super) dead: KafkaDeadLetters,
    pub(super) live: Arc<Live>,
    /// The fetch thread's own store connection, for claims (workers have theirs).
    pub(super) store: Option<Box<dyn Store>>,
    pub(super) owner: String,
    pub(super) workers: Vec<Worker>,
    pub(super) pool: Receiver<Batch>,
    /// Topic index → partition → assignment.
    pub(super) topics: Vec<(String, i32, Vec<Option<Assigned>>)>,
    pub(super) next_slot: u32,
    pub(super) handed_over: u64,
    /// Subscribed to one topic by name: every message is of `topics[0]`, so the hot path need not
    /// read (and UTF-8 check) each message's topic name.
    pub(super) single_topic: bool,
    /// A failure inside a rebalance callback, reported by the fetch loop.
    pub(super) error: Option<KafkaError>,
}

impl Dispatcher {
    fn topic_index(&self, topic: &str) -> Option<usize> {
        self.topics.iter().position(|(t, _, _)| t == topic)
    }

    pub(super) fn assigned(&self) -> impl Iterator<Item = (&str, i32, &Assigned)> {
        self.topics.iter().flat_map(|(t, _, ps)| {
            ps.iter()
                .enumerate()
                .filter_map(move |(p, a)| a.as_ref().map(|a| (t.as_str(), p as i32, a)))
        })
    }

    /// Takes new partitions: restores each from the store and sets the offset in `tpl` that
    /// consumption resumes from (the checkpoint's, never Kafka's committed one: offsets belong
    /// to the state they were checkpointed with).
    pub(super) fn assign(
        &mut self,
        consumer: &BaseConsumer<impl ConsumerContext>,
        tpl: &mut TopicPartitionList,
    ) {
        for (topic, partition) in owned_list(tpl) {
            match self.assign_one(consumer, &topic, partition) {
                Ok(Some(offset)) => {
                    if let Err(e) = tpl.set_partition_offset(&topic, partition, offset) {
                        self.error.get_or_insert(KafkaError::Client {
                            what: format!("cannot set the start offset of {topic}/{partition}"),
                            source: e,
                        });
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
        consumer: &BaseConsumer<impl ConsumerContext>,
        topic: &str,
        partition: i32,
    ) -> Result<Option<Offset>, KafkaError> {
        let ti = match self.topic_index(topic) {
            Some(i) => i,
            None => {
                let md = consumer
                    .fetch_metadata(Some(topic), Duration::from_secs(10))
                    .map_err(KafkaError::client(format!(
                        "reading the metadata of {topic}"
                    )))?;
                let n = md
                    .topics()
                    .first()
                    .map_or(0, |t| t.partitions().len() as i32);
                self.topics.push((topic.to_string(), n, Vec::new()));
                self.topics.len() - 1
            }
        };
        let count = self.topics[ti].1;
        let p = usize::try_from(partition).map_err(|_| KafkaError::NegativePartition {
            topic: topic.to_string(),
            partition,
        })?;
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
        let (pipeline, epoch, next_offset, max_at, start, log_bytes) =
            self.claim(topic, partition, name)?;
        let slot = self.next_slot;
        self.next_slot += 1;
        // Spread partitions evenly: a topic's partitions round-robin over the workers.
        let worker = (ti + p) % self.workers.len();
        let state = PartState {
            pipeline,
            clock: SourceClock::restored(max_at, self.pipeline.correlator.dedupe_horizon),
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
            log_bytes: Arc::new(AtomicU64::new(log_bytes)),
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

    /// Claims a partition in the store (raising its epoch) and builds its pipeline: restored
    /// from its checkpoint, or new. Returns the pipeline, the epoch, the next offset, the
    /// largest `at` seen, where consumption starts (the checkpoint's offset; `None`: Kafka's
    /// choice, the earliest, as nothing is committed without a store) and the state log's size.
    fn claim(
        &mut self,
        topic: &str,
        partition: i32,
        name: SourceName,
    ) -> Result<Claimed, KafkaError> {
        Ok(match &mut self.store {
            None => (
                Pipeline::new(&self.pipeline, vec![name], self.dead.clone()),
                0,
                0,
                Ts::MIN,
                None,
                0,
            ),
            Some(store) => {
                let started = Instant::now();
                let claim = store.claim(topic, partition, &self.owner)?;
                let read = started.elapsed();
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
                        let records = saved.pipeline.entries.len() + saved.pipeline.decided.len();
                        let mut p = Pipeline::restore(
                            &self.pipeline,
                            vec![name],
                            self.dead.clone(),
                            saved.pipeline,
                        )
                        .map_err(|source| KafkaError::Restore {
                            partition: format!("{topic}/{partition}"),
                            source,
                        })?;
                        // What the register exempts of the requests decided before the
                        // checkpoint, from the partition's counts per minute: the register
                        // may not be the one the partition was counted under.
                        let mut calendar = self.pipeline.calendar.clone();
                        p.add_exempted(&crate::store::load::exempted_of(
                            &mut **store,
                            &self.pipeline.register,
                            &self.pipeline.definitions,
                            &mut calendar,
                            None,
                            Some((topic, partition)),
                        )?);
                        tracing::info!(
                            topic,
                            partition,
                            epoch = claim.epoch,
                            offset = saved.next_offset,
                            records,
                            pending = p.correlator().pending(),
                            seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
                            reading_seconds = format!("{:.2}", read.as_secs_f64()),
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
        })
    }

    fn send(&mut self, worker: usize, work: Work) -> Result<(), KafkaError> {
        if self.workers[worker].tx.send(work).is_err() {
            return Err(self.worker_failed(worker));
        }
        Ok(())
    }

    /// The worker has gone: its own error says why.
    fn worker_failed(&mut self, worker: usize) -> KafkaError {
        match self.workers[worker].handle.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => KafkaError::Worker(worker, "panicked"),
            _ => KafkaError::Worker(worker, "stopped"),
        }
    }

    /// Copies one message into its worker's batch.
    pub(super) fn push(&mut self, msg: &BorrowedMessage<'_>) -> Result<(), KafkaError> {
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
        // A null value is `malformed_json` (SPEC §1): it decodes as an empty event.
        b.push(slot, msg.offset(), msg.key(), msg.payload().unwrap_or(&[]));
        if b.is_full() {
            self.flush_worker(worker)?;
        }
        Ok(())
    }

    fn flush_worker(&mut self, worker: usize) -> Result<(), KafkaError> {
        if self.workers[worker].filling.is_empty() {
            return Ok(());
        }
        let fresh = self.pool.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.workers[worker].filling, fresh);
        self.send(worker, Work::Batch(full))
    }

    /// Sends every batch, or only those held longer than a batch should wait.
    pub(super) fn flush(&mut self, only_old: bool) -> Result<(), KafkaError> {
        for w in 0..self.workers.len() {
            if !only_old || self.workers[w].filling.is_old() {
                self.flush_worker(w)?;
            }
        }
        Ok(())
    }

    /// Takes partitions back from their workers once everything fetched for them is processed,
    /// and gives their state to the store.
    pub(super) fn release(
        &mut self,
        list: &[(String, i32)],
        cause: HandOverCause,
    ) -> Result<Vec<PartState>, KafkaError> {
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

/// The topic-partitions of a list, owned at once: holding rdkafka's list across the consumer's
/// drop has hung processes (rust-rdkafka issue 509).
pub(super) fn owned_list(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}
