//! Kafka edges of the pipeline (rdkafka on tokio).
//!
//! - `partition`: the Java client's murmur2 partitioner, which every producer must share so a
//!   request and its responses land on one partition (SPEC §1), and which `run` will check.
//! - `produce`: producing JSON Lines to a topic, keyed by request id (`simulate --kafka`).
//!
//! The live consumer (`run`) follows in the Kafka issue; the sync core stays free of rdkafka.

pub mod partition;
pub mod produce;
