//! A worker thread and the partitions' state it owns: it takes batches in order, runs each
//! message through its partition's pipeline (after the partitioning and future-timestamp
//! checks), publishes to the live view, checkpoints when due, and hands partitions back on
//! release.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use super::KafkaError;
use super::batch::Batch;
use super::checkpoint::Checkpointer;
use super::handoff::{HandOverCause, PartState, Work};
use super::partition::partition_of;
use crate::config::Config;
use crate::config::settings::KafkaSettings;
use crate::engine::correlate::Pos;
use crate::engine::event::DeadReason;
use crate::engine::time::{Dur, now};
use crate::ops::live::{Live, PartView};

/// How often a worker publishes its partitions to the live view.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// The worker thread: owns its partitions' state, processes batches in order.
pub(super) fn worker_loop(
    rx: Receiver<Work>,
    pool: SyncSender<Batch>,
    cfg: Config,
    live: Arc<Live>,
    failed: Arc<AtomicBool>,
    mut ck: Checkpointer,
) -> Result<(), KafkaError> {
    let result = worker_body(&rx, &pool, &cfg, &live, &mut ck);
    if result.is_err() {
        failed.store(true, Ordering::Relaxed);
    }
    result
}

fn worker_body(
    rx: &Receiver<Work>,
    pool: &SyncSender<Batch>,
    cfg: &Config,
    live: &Live,
    ck: &mut Checkpointer,
) -> Result<(), KafkaError> {
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
                if ck.writer.is_none() && cause == HandOverCause::Revoked {
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
                process(&batch, &mut parts, k, lateness)?;
                live.add_processed(batch.len() as u64);
                batch.clear();
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

/// Runs a batch's messages through their partitions' pipelines, in order.
fn process(
    batch: &Batch,
    parts: &mut BTreeMap<u32, Box<PartState>>,
    k: &KafkaSettings,
    lateness: Dur,
) -> Result<(), KafkaError> {
    // The wall clock once per batch: the guard is minutes wide.
    let limit = Some(now().plus(k.max_future_skew));
    let arrived = Instant::now();
    let mut current: Option<(u32, &mut Box<PartState>)> = None;
    for m in batch.messages() {
        if current.as_ref().is_none_or(|(s, _)| *s != m.slot) {
            current = parts.get_mut(&m.slot).map(|p| (m.slot, p));
        }
        let Some((_, part)) = current.as_mut() else {
            return Err(KafkaError::UnknownSlot(m.slot));
        };
        part.next_offset = m.offset + 1;
        part.last_event = arrived;
        part.dirty = true;
        part.since_checkpoint += 1;
        let pos = Pos::new(0, m.offset.max(0) as u64);
        if k.verify_partitioning
            && let Some(key) = m.key
            && partition_of(key, part.partition_count) != part.partition
        {
            part.pipeline
                .reject(DeadReason::WrongPartition, pos, m.value)?;
            continue;
        }
        part.pipeline.set_future_limit(limit);
        if let Some(t) = part.pipeline.process(m.value, pos)?
            && part.clock.observe(t)
        {
            part.pipeline.advance(part.clock.max_at().minus(lateness))?;
        }
        let held_back = part.clock.take_held_back();
        if held_back > 0 {
            part.pipeline.count_watermark_outliers(held_back);
        }
    }
    Ok(())
}

pub(super) fn publish(live: &Live, s: &mut PartState) {
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
