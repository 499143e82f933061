//! The running service's own surface: what its workers publish (`live`), the Prometheus
//! registry read from it (`metrics`), the HTTP endpoint serving it (`http`) and the alerts
//! (`alerts`: the in-process evaluator, the Alertmanager notifier, the generated rules).

pub mod alerts;
pub mod http;
pub mod live;
pub mod metrics;
