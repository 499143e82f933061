//! The running service's surface, started together for `run` and `demo`: a fresh live view,
//! the alert evaluator reading it, and the status page, `/metrics`, `/healthz`, `/readyz` on
//! `http.listen`.

use std::sync::Arc;

use crate::config::Config;
use crate::engine::pipeline::PipelineConfig;

use super::alerts::{self, AlertsHandle};
use super::error::OpsError;
use super::http::routes::Routes;
use super::http::{self, HttpServer};
use super::live::Live;
use super::metrics::Metrics;
use super::status::StatusPages;
use super::webhook::Intake;

/// The HTTP endpoint of `run` and `demo`, over a fresh live view.
pub struct Endpoint {
    /// What the workers publish and the endpoint reads.
    pub live: Arc<Live>,
    /// The server, while it runs (none when `http.listen` is empty).
    pub server: Option<HttpServer>,
    /// The alert evaluator, while it runs.
    pub alerts: AlertsHandle,
    /// The sign-off watcher, with a state store.
    pub signoffs: Option<super::signoffs::SignoffWatcher>,
}

/// Starts the status page (`/`, `/status.json`), `/metrics`, `/healthz` and `/readyz` on
/// `http.listen`, and with an `intake` the Alertmanager webhook. With `fallback`, a busy address
/// falls back to a free port on 127.0.0.1 (the demo must work next to a running service).
pub(crate) fn start(
    cfg: &Config,
    pipeline: &PipelineConfig,
    fallback: bool,
    intake: Option<Arc<dyn Intake>>,
) -> Result<Endpoint, OpsError> {
    let idle = cfg.settings.kafka.idle_timeout.to_std();
    let live = Arc::new(Live::new(idle));
    let defs = pipeline.definitions.clone();
    let calendar = pipeline.calendar.clone();
    // Without the schemes only SUM1's TPL is missing (the downtime left, the below-TPL alert):
    // say so, and go on.
    let schemes = crate::config::schemes::all(cfg).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "no OPR scheme: the interfaces are judged without SUM1's TPL");
        Vec::new()
    });
    let interfaces =
        crate::ops::interfaces::Interfaces::new(Arc::new(cfg.register.clone()), &schemes);
    let alerts = alerts::spawn(
        cfg.settings.alerts.clone(),
        defs.clone(),
        calendar.clone(),
        live.clone(),
        interfaces.clone(),
    )?;
    let signoffs = super::signoffs::spawn(cfg, live.clone()).map_err(OpsError::Start)?;
    let listen = cfg.settings.http.listen.as_str();
    if listen.is_empty() {
        return Ok(Endpoint {
            live,
            server: None,
            alerts,
            signoffs,
        });
    }
    let metrics = Arc::new(
        Metrics::new(
            defs,
            calendar,
            live.clone(),
            !cfg.settings.state.url.is_empty(),
            Some(alerts.board.clone()),
        )
        .and_then(|m| m.with_register(&cfg.register))
        .and_then(|m| m.with_availability(interfaces.clone()))
        .and_then(|m| {
            if signoffs.is_some() {
                m.with_signoffs()
            } else {
                Ok(m)
            }
        })
        .map_err(OpsError::Registry)?,
    );
    let status = Arc::new(
        StatusPages::start(
            cfg,
            pipeline,
            live.clone(),
            Some(alerts.board.clone()),
            interfaces,
        )
        .map_err(OpsError::Start)?,
    );
    let routes = || Routes {
        metrics: metrics.clone(),
        live: live.clone(),
        max_lag: cfg.settings.http.ready_max_lag,
        status: Some(status.clone()),
        intake: intake.clone(),
    };
    let web = &cfg.settings.http.web_config_file;
    let web = (!web.is_empty()).then(|| std::path::Path::new(web.as_str()));
    let server = match http::serve(listen, web, routes()) {
        Ok(s) => s,
        Err(e @ http::ServeError::Bind { .. }) if fallback => {
            tracing::warn!(error = %crate::diagnostic::chain(&e), "using a free port instead");
            http::serve("127.0.0.1:0", web, routes())?
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Endpoint {
        live,
        server: Some(server),
        alerts,
        signoffs,
    })
}
