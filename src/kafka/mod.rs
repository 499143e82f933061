//! Kafka edges of the pipeline (rdkafka on tokio).
//!
//! - `partition`: the Java client's murmur2 partitioner, which every producer must share so a
//!   request and its responses land on one partition (SPEC §1), and which `run` will check.
//! - `produce`: producing JSON Lines to a topic, keyed by request id (`simulate --kafka`).
//! - `run`: the consumer group, one pipeline per partition, dead letters to a topic.
//!
//! The sync core stays free of rdkafka: it only sees bytes and positions.

pub mod partition;
pub mod produce;
pub mod run;
