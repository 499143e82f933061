//! Why Kafka work failed ([`KafkaError`]): the consumer group, its dead-letter producer or the
//! simulator's producer, each failure with what to do about it.

use crate::config::secrets::SecretError;
use crate::engine::aggregate::RowError;
use crate::engine::pipeline::RestoreError;
use crate::store::StoreError;

/// Why Kafka work failed: the consumer group, its dead-letter producer, or the simulator's
/// producer.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// librdkafka refused to create or configure a client, or a call failed.
    #[error("{what}")]
    Client {
        /// What was being done.
        what: String,
        /// librdkafka's reason.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The brokers refused the credentials (a wrong password, user or mechanism).
    #[error("Kafka authentication failed at {brokers}: {reason}")]
    Authentication {
        /// The bootstrap servers.
        brokers: String,
        /// librdkafka's reason, secrets masked.
        reason: String,
    },
    /// TLS with the brokers failed: their certificate is not trusted (unknown issuer, expired,
    /// another host's), or they refused this client's.
    #[error("TLS with Kafka at {brokers} failed: {reason}")]
    Tls {
        /// The bootstrap servers.
        brokers: String,
        /// Which check failed, secrets masked.
        reason: String,
    },
    /// A `[kafka.secrets]` variable is not set.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The consumer cannot go on (for example a static member fenced by its successor).
    #[error("fatal Kafka client error, the consumer cannot go on: {code}: {reason}")]
    Fatal {
        /// librdkafka's code.
        code: String,
        /// Its reason.
        reason: String,
    },
    /// `--until-caught-up` with nothing assigned for longer than the group may take.
    #[error(
        "no partition of the topics was assigned to this member of group {group} in {waited_s} s, \
         past the session timeout ({session_s} s) that frees a stopped member's partitions and \
         the rebalance timeout ({rebalance_s} s) that a rejoin may take: do the topics exist, \
         and do other members of the group hold every partition?"
    )]
    NoAssignment {
        /// The consumer group.
        group: String,
        /// Seconds waited.
        waited_s: u64,
        /// `session.timeout.ms`, in seconds.
        session_s: f64,
        /// `max.poll.interval.ms`, in seconds.
        rebalance_s: f64,
    },
    /// Dead letters could not be written: `run` stops rather than lose them.
    #[error(
        "{failed} dead letters could not be written to {topic} ({reason}): stopped rather than \
         lose them"
    )]
    DeadLetters {
        /// How many.
        failed: u64,
        /// The dead-letter topic.
        topic: String,
        /// librdkafka's first reason.
        reason: String,
    },
    /// Dead letters were still refused when a flush's wait ended.
    #[error("dead letters still refused when the wait ended")]
    StillRefused,
    /// The final flush of dead letters failed.
    #[error("flushing dead letters to {topic}")]
    Flush {
        /// The dead-letter topic.
        topic: String,
        /// Why.
        #[source]
        source: Box<KafkaError>,
    },
    /// The simulator's lines did not all reach the topic.
    #[error("{simulated} lines simulated but {delivered} delivered")]
    Undelivered {
        /// Lines simulated.
        simulated: u64,
        /// Messages acknowledged.
        delivered: u64,
    },
    /// Fewer messages consumed than produced (the demo's embedded broker).
    #[error(
        "{produced} messages were produced but {consumed} consumed: the embedded broker dropped \
         some (its log is small) or the consumer lost them"
    )]
    Lost {
        /// Acknowledged by the broker.
        produced: u64,
        /// Processed by `run`.
        consumed: u64,
    },
    /// A partition's checkpoint could not be restored.
    #[error("cannot restore {partition}")]
    Restore {
        /// `topic/partition`.
        partition: String,
        /// Why.
        #[source]
        source: RestoreError,
    },
    /// Another instance claimed a partition this one still held.
    #[error("another instance owns this partition now; stopping so that it alone writes its state")]
    Fenced(#[source] StoreError),
    /// A checkpoint could not be written.
    #[error("writing a checkpoint")]
    Checkpoint(#[source] StoreError),
    /// The state store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A month row could not be encoded for a checkpoint.
    #[error(transparent)]
    Row(#[from] RowError),
    /// The pipeline's dead-letter sink failed (the message names the topic).
    #[error(transparent)]
    Pipeline(#[from] std::io::Error),
    /// A worker thread failed without saying why.
    #[error("worker {0} {1}")]
    Worker(usize, &'static str),
    /// A batch for a slot its worker does not hold: a bug.
    #[error("message for slot {0} that this worker does not hold")]
    UnknownSlot(u32),
    /// librdkafka gave a negative partition number.
    #[error("negative partition {partition} of {topic}")]
    NegativePartition {
        /// Topic.
        topic: String,
        /// The number.
        partition: i32,
    },
    /// A thread could not be started.
    #[error("cannot start a thread")]
    Thread(#[source] std::io::Error),
}

impl KafkaError {
    /// A librdkafka failure while doing `what`.
    pub fn client(
        what: impl Into<String>,
    ) -> impl FnOnce(rdkafka::error::KafkaError) -> KafkaError {
        let what = what.into();
        move |source| KafkaError::Client { what, source }
    }
}
