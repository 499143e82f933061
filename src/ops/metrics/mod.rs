//! `/metrics`: the SPEC §6 metrics in Prometheus text format, from an explicit registry that is
//! refreshed from the [`Live`](crate::ops::live::Live) view at each scrape. Every series is
//! created up front from the configuration (measures × regions, event types × results,
//! dead-letter reasons, alerts), so no event content can ever create a new one; only
//! `srv_consumer_lag` and `srv_partition_offset` follow the partitions held.

mod alerts;
mod families;
mod interfaces;
mod measures;
mod pipeline;
mod registry;
mod response_times;
mod traffic;

pub use registry::Metrics;
