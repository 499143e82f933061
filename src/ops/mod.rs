//! The running service's own surface: what its workers publish (`live`), the Prometheus
//! registry read from it (`metrics`), the status page for the person on shift (`status`: `/`
//! and `/status.json`), the HTTP endpoint serving them (`http`), the alerts (`alerts`: the
//! in-process evaluator, the Alertmanager notifier, the generated rules), `health` (the
//! connections to the brokers and the store as a state), `webhook`
//! (Alertmanager's notifications read as availability events), `signoffs` (signed months
//! against their figures now), and `endpoint`, which starts them together for `run` and
//! `demo`.

pub mod alerts;
pub mod endpoint;
mod error;
pub mod health;
pub mod http;
pub mod interfaces;
pub mod live;
pub mod metrics;
pub mod objective;
pub mod pem;
pub mod signoffs;
pub mod status;
pub mod webhook;

pub(crate) use error::OpsError;
