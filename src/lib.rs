//! srv-opr turns a smart-metering network's stream of Service Request events into the
//! performance figures its regulator scores it on (SPEC: `../shared/SPEC.md`).
//!
//! The tree read top-down is the architecture: [`cli`] (the commands) uses the edges
//! ([`source`], [`kafka`], [`store`], [`sink`], [`ops`]) and the reports ([`score`],
//! [`report`]); the edges feed the synchronous core, [`engine`], which does no I/O and imports
//! nothing of them (`tests/architecture.rs` fails if it ever does; the scoring core likewise
//! imports nothing of the streaming one). [`config`] reads the files the core's definitions
//! come from; [`error`] says whose fault a failure is.
//!
//! # Where an event goes
//!
//! ```text
//!  replay: source::files (JSON Lines, gz; several files read in watermark order)
//!  run:    kafka::consumer ─▶ kafka::dispatch (a batch per worker) ─▶ kafka::worker
//!                 │ bytes + position
//!                 ▼
//!  engine::pipeline::check ── decode, validate, key ──invalid──▶ dead letter
//!                 ▼ valid                                   (sink::deadletter: a file;
//!  engine::catalog (SRV, code → measure rules, buckets)       kafka::deadletter: a topic)
//!                 ▼
//!  engine::correlate::Correlator ── orphans, conflicts, too late ──▶ dead letter
//!                 │ decisions, revisions (event time: the watermark)
//!                 ▼
//!  engine::aggregate::Aggregates (month × measure × region: counts, buckets, samples,
//!                 │                histograms)
//!                 ├─▶ run: kafka::checkpoint ─▶ store (SQLite | PostgreSQL, per partition)
//!                 ├─▶ run: ops::live ─▶ ops::metrics (/metrics), ops::alerts (evaluator),
//!                 │                     ops::status (/, /status.json; group figures from the store)
//!                 ▼
//!  engine::merge (partitions combined: run's end, store::load for rollup and report)
//!                 ▼
//!  sink::outputs: rpl.csv failures.csv opr-inputs.csv evidence/ summary.json
//!                 ▼
//!  score (schemes, exact scoring) ─▶ report (workbook, charts, page): `score`, `report`
//! ```
//!
//! # Who owns what
//!
//! - [`cli`]: one file per command (arguments, run, what it prints); the values they parse.
//! - [`engine`]: the synchronous core: time, calendar, the domain's vocabulary and definitions,
//!   catalog, timers, event decoding, correlation, aggregation, the pipeline that drives them
//!   with per-event accounting, and the one partition merge. Each piece of state has one owner:
//!   a [`engine::pipeline::Pipeline`] per replay or per partition.
//! - [`config`]: layered settings (defaults ← `srv-opr.toml` ← `SRV_OPR__…`), the regulatory
//!   definitions (`measures.toml`), and the one place that finds an OPR scheme.
//! - [`source`]: files and their watermark-ordered merge; the parse-only pass.
//! - [`kafka`]: everything rdkafka: the consumer group split by role (consumer loop, rebalance,
//!   dispatch, batch format, worker, checkpoint policy, dead-letter producer, client
//!   configuration), the murmur2 partitioner and the simulator's producer.
//! - [`store`]: the state store: the trait, the state-log codec, the SQL both backends share,
//!   SQLite and PostgreSQL, and the month reader of `rollup` and `report`.
//! - [`sink`]: atomic output files and the month outputs' texts.
//! - [`ops`]: the running service's surface: live view, Prometheus metrics, the status page,
//!   the HTTP endpoint, alerts (evaluator, Alertmanager notifier, generated rules).
//! - [`score`]: the OPR scoring core (exact decimals). [`report`]: the year's workbook, charts,
//!   page and the month table.
//! - [`signoff`]: month sign-off and restatements: a month's figures as signed, and what
//!   changed since with its causes.
//! - [`simulate`]: seeded synthetic traffic with injected traps; [`rng`] its generator.
//! - [`error`]: the error every command returns, and the kind that decides the exit code;
//!   [`diagnostic`]: an error's chain as one line; [`textfile`]: reading a whole file a user
//!   names, bounded in size and strict about presence; [`csv_text`]: the text cells of every CSV
//!   written, neutralised against formula injection; [`echo`]: what a message may quote of a
//!   user's value (cut, never whole).
//!
//! # Threads and runtimes
//!
//! - `replay`: the main thread runs the pipeline; `srv-opr-read` reads, decompresses and
//!   decodes a few batches ahead of it (`source::files::drive`).
//! - `run`: the main thread is the fetch thread (it polls the consumer, so librdkafka runs the
//!   rebalance callbacks on it, and commits offsets); `srv-opr-worker-N` (`kafka.workers`,
//!   default cores − 1) own the partitions' pipelines and take their checkpoints, which each
//!   worker's `srv-opr-writer-N` writes to the store on its own connection (with a store);
//!   `srv-opr-alerts` runs the alert evaluator; `srv-opr-status` samples the live view and
//!   reads the store for the status page; `srv-opr-signoffs` (with a store) compares the signed
//!   months with the store's figures; `srv-opr-http` serves the endpoint on a
//!   current-thread tokio runtime; a signal thread with another current-thread tokio runtime
//!   turns SIGINT/SIGTERM into the stop and enforces the shutdown deadline.
//!   librdkafka adds its own threads per client (the consumer and the dead-letter producer).
//! - `demo`: as `run`, plus `srv-opr-simulator` producing into librdkafka's mock cluster.
//! - `simulate --kafka`: the main thread and the producer's librdkafka threads.
//!
//! No multi-threaded async runtime: the pipelines are synchronous, and each thread owns what
//! it touches; they meet only in channels (batches, hand-overs, checkpointed offsets) and in
//! the live view's lock.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod csv_text;
pub mod diagnostic;
pub mod echo;
pub mod engine;
pub mod error;
pub mod kafka;
pub mod ops;
pub mod report;
pub mod rng;
pub mod score;
pub mod signoff;
pub mod simulate;
pub mod sink;
pub mod source;
pub mod store;
pub mod textfile;
