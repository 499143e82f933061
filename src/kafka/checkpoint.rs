//! When a worker checkpoints its partitions: every `state.checkpoint_interval` or
//! `state.checkpoint_events`, and always on hand-over; and the rule that makes a checkpoint
//! safe: the dead letters of the events it covers are acknowledged by Kafka first (a
//! regular checkpoint is postponed while they are not; a hand-over goes without one). The
//! worker takes each checkpoint's delta; its writer thread writes it (`writer`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::KafkaError;
use super::deadletter::KafkaDeadLetters;
use super::handoff::PartState;
use super::writer::{Job, Writer};
use crate::diagnostic::chain;
use crate::store::snapshot_due;

/// A worker's checkpointing: its writer, which owns its store connection (none: state in
/// memory only).
pub(super) struct Checkpointer {
    pub(super) writer: Option<Writer>,
    pub(super) every_events: u64,
    pub(super) interval: Duration,
    pub(super) dead: KafkaDeadLetters,
    /// Regular checkpoints wait until then: the dead letters they must cover were not yet
    /// acknowledged by Kafka (a broker outage).
    pub(super) postponed_until: Option<Instant>,
}

impl Checkpointer {
    /// Checkpoints the partitions that are due (all of `parts` when `force`, and then waits
    /// until the store has them: a hand-over). Fails with the first failure the writer
    /// reported.
    pub(super) fn run<'a>(
        &mut self,
        parts: impl Iterator<Item = &'a mut Box<PartState>>,
        force: bool,
    ) -> Result<(), KafkaError> {
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        writer.absorb()?;
        let result = self.take_due(parts, force);
        if force && let Some(writer) = &mut self.writer {
            writer.settle()?;
        }
        result
    }

    fn take_due<'a>(
        &mut self,
        parts: impl Iterator<Item = &'a mut Box<PartState>>,
        force: bool,
    ) -> Result<(), KafkaError> {
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
                tracing::warn!(error = %chain(&e), partitions = due.len(),
                    "hand-over without a final checkpoint: dead letters not acknowledged by \
                     Kafka; the next owner resumes from the previous checkpoint");
                return Ok(());
            }
            tracing::warn!(error = %chain(&e), "checkpoint postponed: dead letters not yet acknowledged");
            self.postponed_until = Some(Instant::now() + self.interval.max(Duration::from_secs(1)));
            return Ok(());
        }
        self.postponed_until = None;
        if self.dead.failures() > 0 {
            return Err(self.dead.failed());
        }
        for s in due {
            self.write(s)?;
        }
        Ok(())
    }

    /// Takes the partition's delta and hands it to the writer.
    fn write(&mut self, s: &mut PartState) -> Result<(), KafkaError> {
        let Some(writer) = &mut self.writer else {
            return Ok(());
        };
        let started = Instant::now();
        let full = snapshot_due(
            s.log_bytes.load(Ordering::Relaxed),
            s.pipeline.snapshot_bytes(),
        );
        let delta = s.pipeline.take_delta(full)?;
        writer.submit(Job {
            topic: s.topic.clone(),
            partition: s.partition,
            epoch: s.epoch,
            next_offset: s.next_offset,
            max_at: s.clock.max_at().0,
            delta,
            full,
            log_bytes: s.log_bytes.clone(),
            taking: started.elapsed(),
        })?;
        s.since_checkpoint = 0;
        s.checkpointed = Instant::now();
        // The live view shows the checkpoint's age: publish the new one.
        s.dirty = true;
        Ok(())
    }
}
