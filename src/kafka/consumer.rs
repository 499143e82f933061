//! `srv-opr run`, the consumer group: one fetch thread owns the consumer and polls it, worker
//! threads own the partitions' pipelines (a request and its responses share a partition, and a
//! request is decided on its own partition's watermark). The stop is the same drain as a
//! revocation: everything fetched is processed, every partition is checkpointed and handed
//! over, and the partitions' aggregates merge into the month outputs.
//!
//! State is durable when a store is configured: each partition is restored from its last
//! checkpoint on assignment and resumes at the checkpoint's offset (offsets belong to the
//! state they were counted into); offsets are committed to Kafka after each checkpoint for lag
//! monitoring only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaError;
use super::batch::Batch;
use super::checkpoint::Checkpointer;
use super::client::client_config;
use super::deadletter::KafkaDeadLetters;
use super::dispatch::{Dispatcher, Worker};
use super::handoff::{HandOverCause, PartState};
use super::produce::DeliveryCounter;
use super::rebalance::RunContext;
use super::worker::{publish, worker_loop};
use super::writer::{Recorder, Writer};
use crate::config::Config;
use crate::engine::aggregate::Aggregates;
use crate::engine::merge::PartitionMerge;
use crate::engine::pipeline::{PipelineConfig, PipelineStats};
use crate::engine::time::Ts;
use crate::ops::live::Live;
use crate::store::{Identity, Store, open_configured, owner_name, redacted};

/// Where workers report the offsets they checkpointed (topic, partition, next offset), for the
/// fetch thread to commit to Kafka.
type Checkpointed = Receiver<(String, i32, i64)>;

/// Batches queued per worker before the fetch thread waits.
const QUEUE_DEPTH: usize = 8;

/// How `run` ends.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop once every assigned partition has been read to its end (a catch-up job, and tests);
    /// pending requests are then decided as at the end of a replay.
    pub until_caught_up: bool,
    /// With `until_caught_up`: being caught up only counts once this is set (the demo sets it
    /// when its simulator has delivered everything).
    pub input_complete: Option<Arc<AtomicBool>>,
    /// With `until_caught_up`: leave the requests still pending as the state store holds them
    /// (awaiting their response or deadline) instead of deciding them as at the end of a
    /// replay, so the files say what the store says (the demo).
    pub keep_pending: bool,
    /// Adopt the current measure definitions if the state store was made under others.
    pub accept_config_change: bool,
    /// The dead-letter topic's `max.message.bytes` when the caller knows it (the demo made the
    /// topic on a broker that cannot be asked); `None`: asked of the brokers.
    pub dead_letter_limit: Option<usize>,
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

/// Consumes the configured topics in the configured group until `stop` is set (or, with
/// `until_caught_up`, until every assigned partition is read to its end), publishing to `live`.
pub fn run(
    cfg: &Config,
    pipeline: &PipelineConfig,
    opts: &RunOptions,
    stop: &AtomicBool,
    live: Arc<Live>,
) -> Result<RunOutcome, KafkaError> {
    // A wrong password or an untrusted certificate stops the run here, with its reason,
    // instead of after an assignment that never comes.
    let answered = super::probe::probe_or_carry_on(&client_config(cfg, &[])?)?;
    let dead = dead_letter_producer(cfg, answered, opts.dead_letter_limit)?;
    let failed = Arc::new(AtomicBool::new(false));
    let (dispatcher, commits) = start_workers(cfg, pipeline, opts, &dead, &live, &failed)?;
    let (consumer, group) = subscribe(cfg, dispatcher)?;
    let fetched = fetch(&consumer, &group, &dead, &commits, &failed, opts, stop);
    // Stop: everything fetched is processed, then every partition is handed over. The deadline
    // (kafka.shutdown_timeout) is enforced by the caller's watchdog, which can end the process
    // even if a broker call here hangs.
    let (states, handed_over) = stop_workers(&consumer, fetched, &failed)?;
    // The hand-over's checkpoints, committed before leaving (lag monitoring sees the truth).
    commit_checkpointed(&consumer, &commits, CommitMode::Sync);
    // Leave the group now: the remaining revoke has nothing left to hand over.
    drop(consumer);
    let lateness = cfg.settings.time.allowed_lateness;
    outcome(pipeline, opts, &live, &dead, states, handed_over, lateness)
}

/// The dead-letter producer: idempotent, so a retry never writes a dead letter twice. Its
/// batches and messages are sized to the dead-letter topic's `max.message.bytes` (a broker
/// limits batches, not messages: twenty small dead letters in one batch were once refused
/// together by a topic taking 20 kB), and a dead letter carries at most what fits.
fn dead_letter_producer(
    cfg: &Config,
    answered: bool,
    known: Option<usize>,
) -> Result<KafkaDeadLetters, KafkaError> {
    let mut pc = super::client::producer_config(cfg, &[("linger.ms", "20")])?;
    // Brokers that did not answer the probe are not asked again here (that would be another
    // wait at the start): a dead letter they refuse as too large is cut when they say so.
    let limit = known.or_else(|| {
        answered
            .then(|| topic_limit(&pc, &cfg.settings.kafka.dead_letter_topic))
            .flatten()
    });
    let mut max_payload = cfg.settings.input.max_event_bytes;
    if let Some(limit) = limit {
        // librdkafka's own defaults (1,000,000) fit Kafka's default limit (1,048,588); a
        // topic's lower limit is the producer's too, unless the operator set them.
        let size = limit.clamp(1_000, 1_000_000).to_string();
        for key in ["batch.size", "message.max.bytes"] {
            if !cfg.settings.kafka.properties.iter().any(|(k, _)| k == key) {
                pc.set(key, &size);
            }
        }
        // Room for the headers (reason, an origin of up to a few hundred bytes) and framing.
        max_payload = max_payload.min(limit.saturating_sub(1_024));
    }
    pc.set("enable.idempotence", "true");
    let producer = pc
        .create_with_context(DeliveryCounter::retrying_unknown_partitions())
        .map_err(KafkaError::client("cannot create the dead-letter producer"))?;
    Ok(KafkaDeadLetters {
        producer: Arc::new(producer),
        topic: cfg.settings.kafka.dead_letter_topic.clone(),
        sent: Arc::new(AtomicU64::new(0)),
        max_payload,
    })
}

/// The `max.message.bytes` of `topic`, asked of the brokers (`None`, with a warning, when they
/// do not say: the topic does not exist yet, or the user may not describe it; a dead letter
/// refused as too large is then cut when the broker says so).
fn topic_limit(cc: &rdkafka::ClientConfig, topic: &str) -> Option<usize> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    let asked = (|| -> Result<Option<usize>, String> {
        let admin: AdminClient<rdkafka::client::DefaultClientContext> =
            cc.create().map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let results = rt
            .block_on(admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &opts))
            .map_err(|e| e.to_string())?;
        let resource = results
            .into_iter()
            .next()
            .ok_or("no answer")?
            .map_err(|code| code.to_string())?;
        Ok(resource
            .get("max.message.bytes")
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse().ok()))
    })();
    match asked {
        Ok(limit) => limit,
        Err(why) => {
            tracing::warn!(topic, why = %crate::diagnostic::redact(&why),
                "cannot read the dead-letter topic's max.message.bytes: dead letters it refuses \
                 as too large will be cut and sent again");
            None
        }
    }
}

fn worker_count(cfg: &Config) -> usize {
    match cfg.settings.kafka.workers {
        0 => std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1),
        n => n,
    }
}

/// Opens the stores (one for the fetch thread's claims and one per worker: each thread owns
/// its own, as SQLite and PostgreSQL connections are not shared) and starts the workers.
/// Returns the dispatcher that feeds them, and where they report checkpointed offsets.
fn start_workers(
    cfg: &Config,
    pipeline: &PipelineConfig,
    opts: &RunOptions,
    dead: &KafkaDeadLetters,
    live: &Arc<Live>,
    failed: &Arc<AtomicBool>,
) -> Result<(Dispatcher, Checkpointed), KafkaError> {
    let st = &cfg.settings.state;
    let identity = Identity::of_run(cfg, opts.accept_config_change);
    let open_store = || -> Result<Option<Box<dyn Store>>, KafkaError> {
        if st.url.is_empty() {
            return Ok(None);
        }
        Ok(Some(open_configured(cfg, &identity)?))
    };
    let claims = open_store()?;
    match &claims {
        Some(_) => tracing::info!(store = %redacted(&st.url),
            every_events = st.checkpoint_events, interval = %st.checkpoint_interval,
            "state store open"),
        None => tracing::warn!(
            "no state store (state.url is empty): a restart reads every partition from the \
             beginning"
        ),
    }
    let (commit_tx, commit_rx) = mpsc::channel::<(String, i32, i64)>();
    let (pool_tx, pool_rx) = mpsc::sync_channel::<Batch>(64);
    let mut workers = Vec::new();
    for i in 0..worker_count(cfg) {
        let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let (pool, c, l, f) = (pool_tx.clone(), cfg.clone(), live.clone(), failed.clone());
        let writer = match open_store()? {
            Some(store) => Some(Writer::start(
                store,
                commit_tx.clone(),
                i,
                Recorder::new(cfg, pipeline)?,
            )?),
            None => None,
        };
        let ck = Checkpointer {
            writer,
            every_events: st.checkpoint_events,
            interval: st.checkpoint_interval.to_std(),
            dead: dead.clone(),
            postponed_until: None,
        };
        let handle = std::thread::Builder::new()
            .name(format!("srv-opr-worker-{i}"))
            .spawn(move || worker_loop(rx, pool, c, l, f, ck))
            .map_err(KafkaError::Thread)?;
        workers.push(Worker {
            tx,
            handle: Some(handle),
            filling: Batch::default(),
        });
    }
    let k = &cfg.settings.kafka;
    let dispatcher = Dispatcher {
        pipeline: pipeline.clone(),
        dead: dead.clone(),
        live: live.clone(),
        store: claims,
        owner: owner_name(),
        workers,
        pool: pool_rx,
        topics: Vec::new(),
        next_slot: 0,
        handed_over: 0,
        single_topic: k.topics.len() == 1 && !k.topics[0].starts_with('^'),
        error: None,
    };
    Ok((dispatcher, commit_rx))
}

/// The consumer, in the group, subscribed to the configured topics.
/// How long the group may legitimately take to assign this member partitions: members that
/// stopped without leaving (a crash, a SIGKILL) hold theirs until their session times out, and a
/// rebalance then waits up to the rebalance timeout (librdkafka's `max.poll.interval.ms`) for
/// the members to rejoin.
#[derive(Debug, Clone)]
struct GroupWait {
    group: String,
    session: Duration,
    rebalance: Duration,
}

impl GroupWait {
    /// Margin past both timeouts, for the join round trips themselves.
    const MARGIN: Duration = Duration::from_secs(15);

    /// Read from the consumer's configuration, librdkafka's defaults where it sets none.
    fn of(cc: &ClientConfig, group: &str) -> GroupWait {
        let ms = |key: &str, default: u64| {
            Duration::from_millis(cc.get(key).and_then(|v| v.parse().ok()).unwrap_or(default))
        };
        GroupWait {
            group: group.to_string(),
            session: ms("session.timeout.ms", 45_000),
            rebalance: ms("max.poll.interval.ms", 300_000),
        }
    }

    /// The longest wait for a first assignment that is not yet a fault.
    fn limit(&self) -> Duration {
        self.session + self.rebalance + Self::MARGIN
    }
}

fn subscribe(
    cfg: &Config,
    dispatcher: Dispatcher,
) -> Result<(BaseConsumer<RunContext>, GroupWait), KafkaError> {
    let k = &cfg.settings.kafka;
    // A deep prefetch queue: with librdkafka's default (100,000 messages over all partitions) the
    // loop waited on fetches most of the time (BENCHMARKS.md). A partition whose queue passes
    // its thresholds stops fetching and, by librdkafka's default, backs off for a second before
    // it looks again: 10 ms instead took `run` from 0.56 to 1.42 M events/s (issue 19). Both
    // can be overridden under `[kafka.properties]`. Statistics every 5 s give the partitions'
    // end offsets for the lag metric.
    let mut cc = client_config(
        cfg,
        &[
            ("queued.min.messages", "1000000"),
            ("fetch.queue.backoff.ms", "10"),
            ("statistics.interval.ms", "5000"),
        ],
    )?;
    cc.set("group.id", &k.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false");
    let group = GroupWait::of(&cc, &k.group_id);
    let context = RunContext {
        dispatcher: Mutex::new(dispatcher),
    };
    let consumer: BaseConsumer<RunContext> = cc
        .create_with_context(context)
        .map_err(KafkaError::client("cannot create the consumer"))?;
    let topics: Vec<&str> = k.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(KafkaError::client("cannot subscribe to the topics"))?;
    tracing::info!(brokers = %k.brokers, topics = ?k.topics, group = %k.group_id,
        workers = consumer.context().lock().workers.len(), "consuming");
    Ok((consumer, group))
}

/// Whether a consumer error is a batch librdkafka cannot decode (a codec it was built without,
/// decompression that fails or would exceed `receive.message.max.bytes`, a corrupt batch).
fn undecodable(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e,
        rdkafka::error::KafkaError::MessageConsumption(
            C::BadCompression | C::NotImplemented | C::BadMessage
        )
    )
}

/// The fetch loop: polls, hands each message to its worker's batch, serves the producer and
/// the offset commits, until `stop`, a failure, or (with `until_caught_up`) the end of input.
fn fetch(
    consumer: &BaseConsumer<RunContext>,
    group: &GroupWait,
    dead: &KafkaDeadLetters,
    commits: &Receiver<(String, i32, i64)>,
    failed: &AtomicBool,
    opts: &RunOptions,
    stop: &AtomicBool,
) -> Result<(), KafkaError> {
    let started = Instant::now();
    let mut next_note = Duration::from_secs(15);
    let mut last_check = Instant::now();
    let mut polled: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        let polled_msg = consumer.poll(Duration::from_millis(100));
        // One lock per message: the push and the check for a rebalance callback's failure.
        let mut d = consumer.context().lock();
        let poll_producer = match polled_msg {
            None => {
                d.flush(false)?;
                true
            }
            Some(Err(e)) if undecodable(&e) => {
                // librdkafka fetches the same batch again and again: the partition holding it is
                // stuck there, with every message behind it. Not silence: an error, a counter,
                // and an alert (SrvKafkaUndecodable, with the stuck partition named).
                super::client::error_repeated(
                    "consumer: a batch cannot be decoded, so its partition is stuck at it with \
                     every message behind it (a codec this build lacks, a batch larger than \
                     receive.message.max.bytes once decompressed, or a damaged one: read the \
                     partition with Kafka's console consumer to see which)",
                    &e,
                );
                d.live.count_kafka_error();
                d.live
                    .count_undecodable(crate::diagnostic::redact(&e.to_string()));
                false
            }
            Some(Err(e)) => {
                // librdkafka retries broker and network errors itself; say what happened.
                super::client::warn_retried("consumer", &e, "");
                d.live.count_kafka_error();
                d.live.link.error(e.rdkafka_error_code(), &e.to_string());
                // A fatal error (e.g. a static member fenced by its own successor after a
                // broker restart) leaves the consumer unusable: stop, so the supervisor
                // restarts the process, which restores its partitions from the store.
                if let Some((code, reason)) = consumer.client().fatal_error() {
                    return Err(KafkaError::Fatal {
                        code: code.to_string(),
                        reason,
                    });
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
            commit_checkpointed(consumer, commits, CommitMode::Async);
        }
        if failed.load(Ordering::Relaxed) || dead.failures() > 0 {
            break;
        }
        let input_complete = opts
            .input_complete
            .as_ref()
            .is_none_or(|f| f.load(Ordering::Relaxed));
        // Looked at when idle or every 256 messages: reading the clock for every message was
        // 2 % of this thread (BENCHMARKS.md).
        if opts.until_caught_up
            && poll_producer
            && input_complete
            && last_check.elapsed() >= Duration::from_millis(200)
        {
            last_check = Instant::now();
            if caught_up(consumer, group, started, &mut next_note)? {
                break;
            }
        }
    }
    Ok(())
}

/// After the fetch loop: hands every partition over (unless something failed) and ends the
/// workers. Returns the partitions' states and how many were handed over during the run; the
/// first failure otherwise (the fetch loop's, then a worker's).
fn stop_workers(
    consumer: &BaseConsumer<RunContext>,
    fetched: Result<(), KafkaError>,
    failed: &AtomicBool,
) -> Result<(Vec<PartState>, u64), KafkaError> {
    let ctx = consumer.context();
    let mut d = ctx.lock();
    let held: Vec<(String, i32)> = d.assigned().map(|(t, p, _)| (t.to_string(), p)).collect();
    let released = match &fetched {
        Ok(()) if !failed.load(Ordering::Relaxed) => {
            Some(d.release(&held, HandOverCause::Shutdown))
        }
        _ => None,
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
                Err(_) => worker_errors.push(KafkaError::Worker(i, "panicked")),
            }
        }
    }
    fetched?;
    if let Some(e) = worker_errors.into_iter().next() {
        return Err(e);
    }
    let states = released.ok_or(KafkaError::Worker(0, "failed"))??;
    Ok((states, handed_over))
}

/// The partitions' figures merged: with `until_caught_up` each is decided to its end first (as
/// a replay ends); the dead letters flushed to their topic.
fn outcome(
    pipeline: &PipelineConfig,
    opts: &RunOptions,
    live: &Live,
    dead: &KafkaDeadLetters,
    states: Vec<PartState>,
    handed_over: u64,
    lateness: crate::engine::time::Dur,
) -> Result<RunOutcome, KafkaError> {
    let mut merge = PartitionMerge::new(
        pipeline.definitions.clone(),
        pipeline.calendar.clone(),
        pipeline.register.clone(),
    )
    .with_coverage_gap(pipeline.coverage_max_gap);
    // A catch-up run's end is its input's end: what is pending is decided, as a replay ends,
    // unless the caller keeps it pending as the store does.
    let decide_at_end = opts.until_caught_up && !opts.keep_pending;
    let mut combined = Ts::MAX;
    let mut names = Vec::new();
    for mut part in states {
        if decide_at_end {
            // As at the end of a replay's file: a partition of a few events starts its clock
            // now; candidates after an established clock were outliers.
            if part.clock.finish() {
                part.pipeline.advance(part.clock.max_at().minus(lateness))?;
            }
            let held_back = part.clock.take_held_back();
            part.pipeline.count_watermark_outliers(held_back);
            part.pipeline.finish()?;
            combined = combined.min(part.pipeline.watermark());
        }
        publish(live, &mut part);
        let (agg, s, _) = part.pipeline.into_parts();
        merge.add(&agg, &s);
        names.push(format!("{}/{}", part.topic, part.partition));
    }
    if !decide_at_end {
        // Idle partitions do not hold the combined watermark back (SPEC §2).
        combined = live.combined_watermark().unwrap_or(Ts::MIN);
    }
    dead.flush(Duration::from_secs(30))
        .map_err(|e| KafkaError::Flush {
            topic: dead.topic.clone(),
            source: Box::new(e),
        })?;
    if dead.failures() > 0 {
        return Err(dead.failed());
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

/// Every assigned partition fetched to its high watermark (and at least one assigned). With
/// nothing assigned it waits as long as the group may legitimately take ([`GroupWait`]), saying
/// every 15 s what it waits for.
fn caught_up(
    consumer: &BaseConsumer<RunContext>,
    group: &GroupWait,
    started: Instant,
    next_note: &mut Duration,
) -> Result<bool, KafkaError> {
    let held: Vec<(String, i32, i64)> = consumer
        .context()
        .lock()
        .assigned()
        .map(|(t, p, a)| (t.to_string(), p, a.next_offset))
        .collect();
    if held.is_empty() {
        let waited = started.elapsed();
        if waited > group.limit() {
            return Err(KafkaError::NoAssignment {
                group: group.group.clone(),
                waited_s: waited.as_secs(),
                session_s: group.session.as_secs_f64(),
                rebalance_s: group.rebalance.as_secs_f64(),
            });
        }
        if waited >= *next_note {
            *next_note += Duration::from_secs(15);
            tracing::info!(
                group = %group.group,
                waited_s = waited.as_secs(),
                gives_up_after_s = group.limit().as_secs(),
                "no partition assigned yet: members that stopped without leaving hold theirs \
                 until their session times out (session.timeout.ms), and a rebalance waits for \
                 the members to rejoin (max.poll.interval.ms)"
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
