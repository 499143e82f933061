//! A worker's checkpoint writer: a thread of its own that owns the worker's store connection
//! and writes the worker's checkpoints in the order they were taken, so that the worker goes
//! on processing while the store writes (at national catch-up rates a checkpoint is megabytes
//! of state log, which kept the worker from its work; BENCHMARKS.md, issue 19). At most one
//! checkpoint waits behind the one being written: a slow store slows the worker down instead of
//! piling deltas up in memory. A failure ends the writer; the worker learns of it at its next
//! look and stops the run, and nothing after the failed checkpoint is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::KafkaError;
use crate::engine::calendar::{Calendar, Month};
use crate::engine::pipeline::Delta;
use crate::engine::time::Dur;
use crate::store::{Checkpoint, RegisterStamp, Store, StoreError};

/// Records the exemption register in force against each month as it becomes final (and against
/// final months a changed register now applies to), after the writer's checkpoints: the
/// history `rollup` reads a month's restatements from (issue 29).
pub(super) struct Recorder {
    stamp: RegisterStamp,
    calendar: Calendar,
    longest_deadline: Dur,
    /// When it last looked.
    looked: Option<Instant>,
}

impl Recorder {
    /// How often it looks, at most: finality moves with the combined watermark, slowly.
    const EVERY: Duration = Duration::from_secs(10);

    /// The recorder of `cfg`'s register.
    pub(super) fn new(
        cfg: &crate::config::Config,
        pipeline: &crate::engine::pipeline::PipelineConfig,
    ) -> Result<Recorder, KafkaError> {
        Ok(Recorder {
            stamp: RegisterStamp::of(&cfg.register),
            calendar: pipeline.calendar.clone(),
            longest_deadline: cfg.definitions.longest_deadline,
            looked: None,
        })
    }

    /// Records, if it is time to look again.
    fn record(&mut self, store: &mut dyn Store) -> Result<(), StoreError> {
        if self.looked.is_some_and(|t| t.elapsed() < Self::EVERY) {
            return Ok(());
        }
        self.looked = Some(Instant::now());
        let (calendar, longest) = (&self.calendar, self.longest_deadline);
        let final_at = |m: Month| calendar.end_of(m).plus(longest).0;
        let months = store.record_register(&self.stamp, &final_at)?;
        if !months.is_empty() {
            tracing::info!(months = ?months.iter().map(ToString::to_string).collect::<Vec<_>>(),
                register = %if self.stamp.sha256.is_empty() { "none" } else { &self.stamp.sha256[..12] },
                "exemption register recorded against final months");
        }
        Ok(())
    }
}

/// A checkpoint taken by the worker, for the writer to write.
pub(super) struct Job {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) epoch: i64,
    pub(super) next_offset: i64,
    pub(super) max_at: i64,
    pub(super) delta: Delta,
    /// A snapshot that replaces the partition's state log.
    pub(super) full: bool,
    /// The partition's state-log bytes, which the writer keeps up to date (the worker decides
    /// from it when the next checkpoint is a snapshot).
    pub(super) log_bytes: Arc<AtomicU64>,
    /// How long taking the delta took the worker (for the log line).
    pub(super) taking: Duration,
}

/// The worker's handle on its writer thread.
pub(super) struct Writer {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Result<(), StoreError>>,
    handle: Option<JoinHandle<()>>,
    /// Checkpoints submitted and not yet reported done.
    in_flight: usize,
    /// Its worker's index, for errors.
    worker: usize,
}

impl Writer {
    /// Starts worker `worker`'s writer thread with the worker's store connection; it reports
    /// each checkpointed offset to `commits` (for the fetch thread to commit to Kafka).
    pub(super) fn start(
        store: Box<dyn Store>,
        commits: Sender<(String, i32, i64)>,
        worker: usize,
        recorder: Recorder,
    ) -> Result<Writer, KafkaError> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(1);
        let (done_tx, done) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(format!("srv-opr-writer-{worker}"))
            .spawn(move || write_loop(store, &rx, &done_tx, &commits, recorder))
            .map_err(KafkaError::Thread)?;
        Ok(Writer {
            jobs: Some(jobs),
            done,
            handle: Some(handle),
            in_flight: 0,
            worker,
        })
    }

    /// Hands a checkpoint to the writer; waits while one is already waiting behind the one
    /// being written. Fails with the writer's error if it has stopped.
    pub(super) fn submit(&mut self, job: Job) -> Result<(), KafkaError> {
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if !sent {
            // The writer stopped: its last report says why.
            self.settle()?;
            return Err(KafkaError::Worker(self.worker, "checkpoint writer stopped"));
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Takes the writer's reports so far without waiting: the first failure, if any.
    pub(super) fn absorb(&mut self) -> Result<(), KafkaError> {
        loop {
            match self.done.try_recv() {
                Ok(r) => self.report(r)?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => {
                    return self.gone();
                }
            }
        }
    }

    /// Waits until every checkpoint submitted is written (a hand-over's last ones must be in
    /// the store before the partition is let go): the first failure, if any.
    pub(super) fn settle(&mut self) -> Result<(), KafkaError> {
        while self.in_flight > 0 {
            match self.done.recv() {
                Ok(r) => self.report(r)?,
                Err(_) => return self.gone(),
            }
        }
        Ok(())
    }

    fn report(&mut self, r: Result<(), StoreError>) -> Result<(), KafkaError> {
        self.in_flight = self.in_flight.saturating_sub(1);
        r.map_err(|e| match e {
            e @ StoreError::Fenced { .. } => KafkaError::Fenced(e),
            e => KafkaError::Checkpoint(e),
        })
    }

    /// The writer ended without reporting every checkpoint: it can only have panicked.
    fn gone(&mut self) -> Result<(), KafkaError> {
        if self.in_flight == 0 {
            return Ok(());
        }
        self.in_flight = 0;
        Err(KafkaError::Worker(
            self.worker,
            "checkpoint writer panicked",
        ))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the writer once it has written what it was given.
        self.jobs = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The writer thread: writes each checkpoint, in order, until its channel closes or a write
/// fails.
fn write_loop(
    mut store: Box<dyn Store>,
    jobs: &Receiver<Job>,
    done: &Sender<Result<(), StoreError>>,
    commits: &Sender<(String, i32, i64)>,
    mut recorder: Recorder,
) {
    for job in jobs {
        let started = Instant::now();
        let cp = Checkpoint {
            topic: &job.topic,
            partition: job.partition,
            epoch: job.epoch,
            next_offset: job.next_offset,
            max_at: job.max_at,
            delta: &job.delta,
        };
        let result = store
            .checkpoint(&cp)
            .and_then(|w| recorder.record(&mut *store).map(|()| w));
        let failed = result.is_err();
        if let Ok(w) = &result {
            let c = &job.delta.changes;
            // What it wrote and how long it took: the worker's taking of the delta (CPU) apart
            // from this thread's writing (the store).
            tracing::debug!(topic = %job.topic, partition = job.partition,
                offset = job.next_offset, records = w.records, pending = c.entries.len(),
                decided = c.decided.len(), removed = c.removed.len(), waiting = c.waiting.len(),
                rows = w.rows, revisions = w.revisions, full = job.full, bytes = w.log_bytes,
                taking_ms = job.taking.as_millis() as u64,
                writing_ms = started.elapsed().as_millis() as u64, "checkpoint");
            if job.full {
                job.log_bytes.store(w.log_bytes, Ordering::Relaxed);
            } else {
                job.log_bytes.fetch_add(w.log_bytes, Ordering::Relaxed);
            }
            if w.revisions > 0 {
                tracing::warn!(topic = %job.topic, partition = job.partition,
                    revisions = w.revisions,
                    "late events changed final months: revisions recorded in the store");
            }
            // The fetch thread may be gone at the very end; the checkpoint is what matters.
            let _ = commits.send((job.topic.clone(), job.partition, job.next_offset));
        }
        if done.send(result.map(|_| ())).is_err() || failed {
            // The worker has gone, or a write failed: nothing after it may be written.
            return;
        }
    }
    // The last checkpoints are written (a stop, a hand-over): record what they made final,
    // however soon after the previous look.
    recorder.looked = None;
    if let Err(e) = recorder.record(&mut *store) {
        tracing::warn!(error = %crate::diagnostic::chain(&e),
            "cannot record the exemption register against the months made final: the next \
             run records it");
    }
}
