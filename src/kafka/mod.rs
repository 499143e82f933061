//! Everything that speaks Kafka (rdkafka's `BaseConsumer` and `BaseProducer`, polled on threads
//! of their own: no async runtime). The synchronous core never sees rdkafka: it gets bytes and
//! positions.
//!
//! `run`, the consumer group, is split by role:
//! - `consumer`: the fetch loop, the stop (drain, hand over, merge) and what `run` returns;
//! - `rebalance`: the consumer's context: assignment and revocation callbacks, statistics;
//! - `dispatch`: the fetch thread's side of the workers: assign (claim, restore, seek), batch
//!   messages per worker, release;
//! - `batch`: messages copied out of librdkafka, the wire format between fetch thread and workers;
//! - `handoff`: a partition's state, and the work the fetch thread sends a worker;
//! - `worker`: a worker thread, running its partitions' pipelines;
//! - `checkpoint`: when a worker checkpoints, and the dead letters a checkpoint must cover;
//! - `writer`: a worker's checkpoint writer thread, which owns its store connection;
//! - `deadletter`: dead letters produced to their topic;
//! - `client`: one client configuration for every client (defaults, properties, secrets), and
//!   librdkafka's logs with secrets masked;
//! - `probe`: before a run or a simulation, can the client authenticate and agree on TLS?
//!
//! And the producers' side:
//! - `partition`: the Java client's murmur2 partitioner, which every producer must share so a
//!   request and its responses land on one partition (SPEC §1), and which `run` checks;
//! - `produce`: JSON Lines produced to a topic keyed by request id (`simulate --kafka`, `demo`);
//! - `intake`: the Alertmanager webhook's availability events, produced before it answers.

mod batch;
pub mod check;
mod checkpoint;
pub mod client;
pub mod consumer;
mod deadletter;
mod dispatch;
mod error;
mod handoff;
pub mod intake;
pub mod partition;
pub mod probe;
pub mod produce;
mod rebalance;
mod worker;
mod writer;

pub use error::KafkaError;
