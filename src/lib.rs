//! srv-opr turns a smart-metering network's stream of Service Request events into the
//! performance figures its regulator scores it on (SPEC: `../shared/SPEC.md`).
//!
//! # Where an event goes
//!
//! ```text
//!  source::files ──lines──▶ pipeline ──▶ event::decode ──invalid──▶ dead-letter sink
//!  (JSON Lines, gz,           │              │ valid                (sink::deadletter)
//!   several files in          │              ▼
//!   watermark order)          │         catalog (SRV/code → measures, TRTs, buckets)
//!                             │              ▼
//!                             │         correlate::Correlator ──dead (orphans, conflicts)──▶ sink
//!                             │              │ decisions, revisions
//!                             │              ▼
//!                             └──────▶ aggregate::Aggregates ──▶ sink::rollup
//!                                      (month × measure × region)   rpl.csv, failures.csv,
//!                                                                    summary.json
//! ```
//!
//! # Who owns what
//!
//! - [`time`]: exact instants and durations; RFC 3339 parsing (hot path).
//! - [`calendar`]: months in the configured zone (BST edges).
//! - [`config`]: layered settings and the regulatory definitions (measures, classes, TRTs).
//! - [`event`]: decoding and validation of one event; dead-letter reasons.
//! - [`catalog`]: interned SRVs and codes, resolved once into measure rules and buckets.
//! - [`timers`]: event-time timer queue (decisions, expiry, orphans).
//! - [`correlate`]: requests ↔ final responses: dedupe, disorder, orphans, deadlines (sync).
//! - [`aggregate`]: counts and histograms per month × measure × region; merge (sync).
//! - [`pipeline`]: the one place the sync core is driven, with per-event accounting.
//! - [`source`]: file inputs and the watermark-ordered merge of several files.
//! - [`kafka`]: the Kafka edges (rdkafka): the murmur2 partitioner, the producer of
//!   `simulate --kafka`, and `run`: a fetch thread, worker threads owning the partitions'
//!   pipelines, dead letters to a topic; checkpoints on a schedule, on revocation and at stop;
//!   restore and seek on assignment.
//! - [`store`]: the durable state store (SQLite, PostgreSQL): per-partition checkpoints of
//!   offset and changed state (appended to a state log) in one transaction, fencing epochs, identity checks, migrations,
//!   the month rows and revision history `rollup` reads.
//! - [`live`]: what the workers last published (counts, pending, watermarks, offsets), read by
//!   the endpoint; the idle-aware combined watermark.
//! - [`metrics`]: the Prometheus registry of SPEC §6, refreshed from the live view per scrape.
//! - [`alerts`]: the in-process alert evaluator (a synchronous core driven by its own thread)
//!   and the Alertmanager client; [`alert_rules`]: the same alerts as Prometheus rules.
//! - [`http`]: `/metrics`, `/healthz`, `/readyz` (a few lines of HTTP/1.1 on tokio).
//! - [`sink`]: atomic output files: dead letters, `rpl.csv`, `failures.csv`, `evidence/`,
//!   `opr-inputs.csv`, `summary.json`.
//! - [`score`]: the OPR scoring core: schemes, inputs, the exact computation, Table 7 output.
//!   Separate from the streaming core: it reads RPLs (from `opr-inputs.csv` or any CSV).
//! - [`report`]: the annual report: the RIGs-shaped workbook (rust_xlsxwriter), the charts
//!   (plotters, SVG and PNG) and the HTML summary, rendered from a year's rows and score (no I/O).
//! - [`simulate`]: seeded synthetic traffic with injected traps.
//! - [`app`]: wiring of the commands; `main` only parses arguments and picks exit codes.
//!
//! The synchronous core (`time`, `calendar`, `event`, `catalog`, `timers`, `correlate`,
//! `aggregate`) does no I/O and knows nothing of Kafka, Prometheus or storage; `score` does no
//! I/O and imports nothing from the streaming core.

#![warn(missing_docs)]

pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod engine;
pub mod error;
pub mod kafka;
pub mod ops;
pub mod report;
pub mod rng;
pub mod score;
pub mod simulate;
pub mod sink;
pub mod source;
pub mod store;
