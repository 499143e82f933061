//! Every integration test, in one binary: one link instead of one per file (each links rdkafka,
//! PostgreSQL and SQLite), and helpers written once in `support`. A module per area; select an
//! area by its path, e.g. `cargo test --test tests kafka::` or `-- store_kafka:: volume::`.
//!
//! Quick, no servers:
//! - `architecture`: the import rules of the layout (the core imports nothing of the edges).
//! - `hardening2`: the second adversarial round's findings on configuration, stores and
//!   outputs (a full disk in a mount namespace, signals, immutable and damaged store files).
//! - `merge`: the aggregates' algebra and the one partition merge, as property tests.
//! - `replay`: golden fixtures, order and file-splitting invariance, the command line.
//! - `exemptions`: the exemption register against an oracle written from the rule,
//!   from a replay and (with the servers) from the store of a `run`.
//! - `score`: the OPR scoring core against the seed's Table 7 and worked cases.
//! - `docs`: every shell block of the README and `docs/` run in order (the operating walk-through
//!   against the SASL_SSL listener, the reporting page on files and a store of `run`), every link
//!   between the pages resolved, the example events replayed and every statement checked.
//! - `deploy`: every setting the deployment files pass is one the service accepts.
//! - `http`: the endpoint over real sockets: HEAD, 405, TLS, basic auth, client certificates,
//!   a web configuration changed while serving.
//! - `store`: checkpoints on SQLite (and PostgreSQL, `SRV_OPR_TEST_POSTGRES`) without Kafka.
//! - `store_tls`: the PostgreSQL store's TLS: verify-full and each refusal.
//! - `kafka_faults`: `run` in process on librdkafka's mock cluster, with injected faults.
//!
//! Heavy, with real servers started by `scripts/test`:
//! - `volume`: a simulated month of ~2 M events against an independent oracle.
//! - `report`: the year's workbook, charts and page opened in openpyxl, LibreOffice, Chromium.
//! - `prometheus`: the generated rules in promtool; what `/metrics` exposes.
//! - `alerting`: `run` on the real broker, a real Prometheus and Alertmanager.
//! - `kafka`: `run` against a real Apache Kafka broker (`KAFKA_BOOTSTRAP_SERVERS`).
//! - `kafka_tls`: `run` and `simulate` over its SASL_SSL and mutual-TLS listeners; every way a
//!   secured connection can be wrong (`SRV_OPR_TEST_KAFKA_TLS`).
//! - `kafka_brokers`: brokers and a cluster of the test's own (`support::kafka_node`): a SCRAM
//!   broker configured as users configure theirs, every codec from Kafka's console producer, an
//!   undecodable batch, a dead-letter topic smaller than its events, three brokers losing the
//!   partitions' leader and the group coordinator mid-run.
//! - `status`: the status page in headless Chromium against `/metrics` and `rpl.csv`, three
//!   instances on PostgreSQL showing `rollup`'s group figures, `srv-opr status --check`.
//! - `signoff`: a month signed on the store of a `run`, restated by late requests and a later
//!   exemption; `restatements` against `rollup` before and after.
//! - `store_kafka`: SIGKILLs, offset resets, a broker restart, three instances on PostgreSQL.
//! - `health`: the pipeline's health (issue 33): no broker at all, a broker killed mid-run, a
//!   password changed at the broker mid-run; each an alert, a banner, `status --check` exit 2.
//! - `soak`: three instances on PostgreSQL under steady traffic while one is killed again and
//!   again, the broker and the database restarted; memory sampled (`scripts/soak` runs it long).

mod support;

mod alerting;
mod architecture;
mod availability;
mod deploy;
mod docs;
mod exemptions;
mod hardening;
mod hardening2;
mod health;
mod http;
mod kafka;
mod kafka_brokers;
mod kafka_faults;
mod kafka_tls;
mod merge;
mod prometheus;
mod replay;
mod report;
mod score;
mod signoff;
mod soak;
mod status;
mod store;
mod store_kafka;
mod store_tls;
mod volume;
