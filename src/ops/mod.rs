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

/// Why the service's surface could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// `http.listen` is not an address.
    #[error("http.listen {listen:?}")]
    Listen {
        /// As configured.
        listen: String,
        /// Why.
        #[source]
        source: std::net::AddrParseError,
    },
    /// The address is taken or not ours.
    #[error("cannot listen on {addr} (http.listen)")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint's thread or runtime could not start.
    #[error("the HTTP endpoint cannot start")]
    Start(#[source] std::io::Error),
    /// The Prometheus registry refused a family.
    #[error("metrics registry")]
    Registry(#[source] prometheus::Error),
    /// The web configuration (TLS, basic auth) does not load.
    #[error(transparent)]
    WebConfig(#[from] http::webconfig::WebConfigError),
    /// The alert evaluator could not start (its Alertmanager client, or its thread).
    #[error(transparent)]
    Alerts(#[from] alerts::SpawnError),
}
