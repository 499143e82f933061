//! The pipeline's own families: what waits (requests, responses, work not yet checkpointed),
//! the watermark, the partitions held and their lag, and the connections to the brokers and
//! the store.

use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec};

use super::families::{Families, set_counter};
use crate::ops::live::LiveSnapshot;

/// The pipeline's families.
pub(super) struct Pipeline {
    watermark: Gauge,
    watermark_lag: Gauge,
    checkpoint_age: Option<Gauge>,
    pending: IntGauge,
    waiting: IntGauge,
    consumer_lag: IntGaugeVec,
    partition_offset: IntGaugeVec,
    assigned: IntGauge,
    brokers_up: IntGaugeVec,
    refused: IntGaugeVec,
    store_up: IntGauge,
    kafka_errors: IntCounterVec,
    undecodable: IntCounterVec,
    evicted_waiting: IntCounterVec,
    handed_over: IntCounterVec,
}

impl Pipeline {
    /// Registers the families; `checkpointing`: a state store is configured (else there is no
    /// checkpoint age to show).
    pub(super) fn new(f: &Families<'_>, checkpointing: bool) -> prometheus::Result<Pipeline> {
        let checkpoint_age = checkpointing
            .then(|| {
                f.gauge(
                    "srv_checkpoint_age_seconds",
                    "How long the oldest work not yet checkpointed has waited (0: all \
                     checkpointed)",
                )
            })
            .transpose()?;
        Ok(Pipeline {
            watermark: f.gauge(
                "srv_watermark_timestamp_seconds",
                "The combined watermark (event time, Unix seconds)",
            )?,
            watermark_lag: f.gauge(
                "srv_watermark_lag_seconds",
                "Wall clock minus the combined watermark",
            )?,
            checkpoint_age,
            pending: f.int_gauge("srv_pending_requests", "Requests waiting for a decision")?,
            waiting: f.int_gauge(
                "srv_waiting_responses",
                "Responses waiting for their request",
            )?,
            consumer_lag: f.int_gauges(
                "srv_consumer_lag",
                "Messages of a held partition not yet processed",
                &["topic", "partition"],
            )?,
            partition_offset: f.int_gauges(
                "srv_partition_offset",
                "The next offset a held partition will process (unchanged while it has lag: \
                 stuck)",
                &["topic", "partition"],
            )?,
            assigned: f.int_gauge(
                "srv_assigned_partitions",
                "Partitions held by this instance",
            )?,
            brokers_up: f.int_gauges(
                "srv_kafka_brokers_up",
                "Broker connections up in the Kafka client's latest statistics (absent before \
                 the first; 0: no figure can move)",
                &[],
            )?,
            refused: f.int_gauges(
                "srv_kafka_connection_refused",
                "1 while no broker connection is up and the brokers refused this client, by \
                 reason: authentication (SASL, ACLs) or tls",
                &["reason"],
            )?,
            store_up: f.int_gauge(
                "srv_state_store_up",
                "0 while the state store does not answer (its operations retried on new \
                 connections for state.reconnect_timeout), else 1",
            )?,
            kafka_errors: f.counters(
                "srv_kafka_errors_total",
                "Errors reported by the Kafka client (it retries them itself)",
                &[],
            )?,
            undecodable: f.counters(
                "srv_kafka_undecodable_total",
                "Batches the consumer could not decode (each attempt: the partition holding one \
                 is stuck at it)",
                &[],
            )?,
            evicted_waiting: f.counters(
                "srv_waiting_responses_evicted_total",
                "Waiting responses dead-lettered early (orphan_response) because \
                 max_waiting_responses was reached",
                &[],
            )?,
            handed_over: f.counters(
                "srv_partitions_handed_over_total",
                "Partitions revoked from this instance and handed over",
                &[],
            )?,
        })
    }

    /// The figures from a snapshot; `handed_over`: partitions handed over since the start.
    pub(super) fn refresh(&self, s: &LiveSnapshot, handed_over: u64) {
        if let Some(g) = &self.checkpoint_age {
            g.set(s.checkpoint_age);
        }
        self.pending.set(s.pending as i64);
        self.waiting.set(s.waiting as i64);
        if let Some(wm) = s.combined {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.watermark_lag.set(now - wm.0 as f64 / 1e9);
            self.watermark.set(wm.0 as f64 / 1e9);
        }
        // Partitions come and go with rebalances: only the ones held now have a lag series.
        self.consumer_lag.reset();
        for (topic, partition, lag) in &s.lag {
            self.consumer_lag
                .with_label_values(&[topic.as_str(), &partition.to_string()])
                .set(*lag);
        }
        self.partition_offset.reset();
        for p in &s.partitions {
            self.partition_offset
                .with_label_values(&[p.topic.as_str(), &p.partition.to_string()])
                .set(p.next_offset);
        }
        self.assigned.set(s.assigned as i64);
        if let Some(n) = s.link.brokers_up {
            self.brokers_up.with_label_values::<&str>(&[]).set(n as i64);
        }
        self.refused.reset();
        if let Some((t, _)) = s.link.kafka_down()
            && t != crate::ops::health::Trouble::Unreachable
        {
            self.refused.with_label_values(&[t.word()]).set(1);
        }
        self.store_up.set(i64::from(s.link.store_down.is_none()));
        set_counter(&self.kafka_errors, &[], s.kafka_errors);
        set_counter(&self.undecodable, &[], s.undecodable.0);
        set_counter(&self.evicted_waiting, &[], s.stats.evicted_waiting);
        set_counter(&self.handed_over, &[], handed_over);
    }
}
