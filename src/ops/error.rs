//! Why the service's surface (the HTTP endpoint, its registry, the alert evaluator) could not
//! start.

/// Why the service's surface could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The HTTP endpoint could not start.
    #[error(transparent)]
    Http(#[from] super::http::ServeError),
    /// The endpoint's thread or runtime could not start.
    #[error("the HTTP endpoint cannot start")]
    Start(#[source] std::io::Error),
    /// The Prometheus registry refused a family.
    #[error("metrics registry")]
    Registry(#[source] prometheus::Error),
    /// The alert evaluator could not start (its Alertmanager client, or its thread).
    #[error(transparent)]
    Alerts(#[from] super::alerts::SpawnError),
}
