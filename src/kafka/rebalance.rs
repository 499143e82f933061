//! The consumer's context: librdkafka calls it on its own poll. Revocation drains, checkpoints
//! and lets go; assignment restores from the store and starts each partition at its
//! checkpoint's offset (rdkafka's own `rebalance` assigns with the offsets librdkafka gave, so it
//! is replaced whole, keeping its protocol handling). Also client errors and statistics (the
//! partitions' end offsets, for the lag metric).

use std::sync::{Mutex, MutexGuard, PoisonError};

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;

use super::dispatch::{Dispatcher, owned_list};
use super::handoff::HandOverCause;

/// The consumer's context: rebalance callbacks and statistics.
pub(super) struct RunContext {
    pub(super) dispatcher: Mutex<Dispatcher>,
}

impl RunContext {
    pub(super) fn lock(&self) -> MutexGuard<'_, Dispatcher> {
        self.dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for RunContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        super::client::log(level, fac, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // Broker outages and request errors: librdkafka retries them; the operator sees them.
        super::client::warn_retried("kafka client", &error, reason);
        let d = self.lock();
        d.live.count_kafka_error();
        d.live.link.error(error.rdkafka_error_code(), reason);
    }

    fn stats(&self, statistics: Statistics) {
        let d = self.lock();
        // librdkafka's internal broker is no connection; the group coordinator's is.
        let up = statistics
            .brokers
            .values()
            .filter(|b| b.source != "internal" && b.state == "UP")
            .count();
        d.live.link.brokers(up, std::time::SystemTime::now());
        for (topic, t) in &statistics.topics {
            for (p, s) in &t.partitions {
                // -1 is librdkafka's "not known yet"; partition -1 is its internal one.
                if *p >= 0 && s.ls_offset >= 0 {
                    d.live.set_end_offset(topic, *p, s.ls_offset);
                }
            }
        }
    }
}

impl ConsumerContext for RunContext {
    /// Revocation: drain, checkpoint and let go. Assignment: restore from the store and start
    /// each partition at its checkpoint's offset. (rdkafka's own `rebalance` assigns with the
    /// offsets as librdkafka gave them, so it is replaced whole, keeping its protocol handling.)
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.lock().assign(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let list = owned_list(tpl);
                {
                    let mut d = self.lock();
                    if let Err(e) = d.release(&list, HandOverCause::Revoked) {
                        d.error.get_or_insert(e);
                    }
                }
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let code: rdkafka::error::RDKafkaErrorCode = other.into();
                tracing::warn!(error = %code, "rebalance error");
                // As rdkafka does: give up the assignment; the group assigns again.
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "applying the rebalance");
            self.lock().live.count_kafka_error();
        }
    }
}
