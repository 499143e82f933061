//! The synchronous core: from one event's bytes to month aggregates, with no I/O. Nothing here
//! knows Kafka, tokio, Prometheus, a database, HTTP or the file system; the shells around it
//! (`source`, `kafka`, `store`, `ops`, `sink`) feed it bytes and positions and take its outputs.
//! A test (`tests::engine_imports_nothing_of_the_edges`) keeps it that way.

pub mod aggregate;
pub mod availability;
pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod correlate;
pub mod definitions;
pub mod domain;
pub mod event;
pub mod exemption;
pub mod merge;
pub mod pipeline;
pub mod time;
pub mod timers;
