//! What each path answers: `/` (the status page) and `/status.json` (the same as data),
//! `/evidence/<measure>.csv` (the requests behind the month's misses),
//! `/metrics` (Prometheus text format), `/healthz` (the process answers) and `/readyz`
//! (a broker and the store answer, partitions are held and restored, and their lag is below
//! `http.ready_max_lag`; else which of these fails), and
//! `POST /api/v1/availability/alertmanager` (Alertmanager's webhook, into the availability
//! topic). Plain data in, plain data out: the server around it owns HTTP.

use std::sync::Arc;

use hyper::StatusCode;

use crate::ops::live::Live;
use crate::ops::metrics::Metrics;
use crate::ops::status::StatusPages;
use crate::ops::webhook::{self, Intake};

/// The paths served and what they read.
pub struct Routes {
    /// What `/metrics` renders.
    pub metrics: Arc<Metrics>,
    /// What `/readyz` judges.
    pub live: Arc<Live>,
    /// `/readyz` is 503 above this many messages of lag.
    pub max_lag: u64,
    /// What `/` and `/status.json` show.
    pub status: Option<Arc<StatusPages>>,
    /// Where Alertmanager's webhook produces its events (`run` with
    /// `http.alertmanager_webhook`); none: the path answers 404.
    pub intake: Option<Arc<dyn Intake>>,
}

/// One answer: status, content type, body.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status.
    pub status: StatusCode,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The body (not sent for `HEAD`).
    pub body: String,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl Reply {
    /// A plain-text answer.
    pub fn text(status: StatusCode, body: impl Into<String>) -> Reply {
        Reply {
            status,
            content_type: TEXT,
            body: body.into(),
        }
    }
}

impl Routes {
    /// Whether `path` answers without basic auth: the probes, which tell no more than that the
    /// process is up and ready, and which a kubelet or load balancer sends without credentials.
    /// TLS and client certificates still apply to them.
    pub(crate) fn is_probe(path: &str) -> bool {
        matches!(path, "/healthz" | "/readyz")
    }

    /// The status page in one of its forms, or 404 where none is served.
    fn status_page(&self, content_type: &'static str, body: fn(&StatusPages) -> String) -> Reply {
        match &self.status {
            Some(s) => Reply {
                status: StatusCode::OK,
                content_type,
                body: body(s),
            },
            None => Reply::text(StatusCode::NOT_FOUND, "no status page here\n"),
        }
    }

    /// `/evidence/<file>`: the requests behind a measure's misses this month, as CSV.
    fn evidence(&self, file: &str) -> Reply {
        match self.status.as_ref().map(|s| s.evidence(file)) {
            Some(Ok(body)) => Reply {
                status: StatusCode::OK,
                content_type: "text/csv; charset=utf-8",
                body,
            },
            Some(Err(why)) => Reply::text(StatusCode::NOT_FOUND, format!("{why}\n")),
            None => Reply::text(StatusCode::NOT_FOUND, "no status page here\n"),
        }
    }

    /// The answer to Alertmanager's webhook: the notification's availability events produced
    /// and acknowledged (200), a notification that cannot be read (400: sending it again would
    /// not help), or the broker not taking them (503: Alertmanager sends it again).
    pub(crate) async fn alertmanager(&self, body: &[u8]) -> Reply {
        let Some(intake) = &self.intake else {
            return Reply::text(
                StatusCode::NOT_FOUND,
                "the Alertmanager webhook is off here (http.alertmanager_webhook, `run` only)\n",
            );
        };
        let decoded = match webhook::decode(body) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "alertmanager webhook: notification refused");
                self.metrics.count_webhook("refused");
                return Reply::text(StatusCode::BAD_REQUEST, format!("{e}\n"));
            }
        };
        if let Err(e) = intake.produce(&decoded.records).await {
            tracing::error!(error = %e, topic = intake.topic(), "alertmanager webhook: events not produced; answering 503 so Alertmanager sends them again");
            self.metrics.count_webhook("unavailable");
            return Reply::text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not stored, send again: {e}\n"),
            );
        }
        self.metrics.count_webhook("stored");
        tracing::info!(
            events = decoded.records.len(),
            without_interface = decoded.ignored,
            topic = intake.topic(),
            "alertmanager webhook: availability events produced"
        );
        Reply::text(
            StatusCode::OK,
            format!(
                "{} availability events produced to {} ({} alerts without an `{}` label left alone)\n",
                decoded.records.len(),
                intake.topic(),
                decoded.ignored,
                webhook::INTERFACE_LABEL
            ),
        )
    }

    /// The answer for `path` (a `GET` or `HEAD`: other methods never reach here).
    pub(crate) fn answer(&self, path: &str) -> Reply {
        match path {
            "/" | "/index.html" => self.status_page("text/html; charset=utf-8", StatusPages::html),
            "/status.json" => self.status_page("application/json", StatusPages::json),
            "/metrics" => match self.metrics.render() {
                Ok(text) => Reply {
                    status: StatusCode::OK,
                    content_type: "text/plain; version=0.0.4; charset=utf-8",
                    body: text,
                },
                Err(e) => Reply::text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            },
            "/healthz" => Reply::text(StatusCode::OK, "ok\n"),
            p if p.starts_with("/evidence/") => self.evidence(&p["/evidence/".len()..]),
            "/readyz" => {
                // Partitions are restored from the store inside the assignment itself, so a held
                // partition is a restored one.
                let (held, lag) = self.live.readiness();
                let link = self.live.link.state();
                if let Some((trouble, why)) = link.kafka_down() {
                    Reply::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("{}: {why}\n", trouble.what()),
                    )
                } else if let Some((_, why)) = &link.store_down {
                    Reply::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("the state store does not answer: {why}\n"),
                    )
                } else if held == 0 {
                    Reply::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no partition assigned yet\n",
                    )
                } else if lag as u64 > self.max_lag {
                    Reply::text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "catching up: {lag} messages behind (http.ready_max_lag {})\n",
                            self.max_lag
                        ),
                    )
                } else {
                    Reply::text(
                        StatusCode::OK,
                        format!("ready: {held} partitions, {lag} messages behind\n"),
                    )
                }
            }
            _ => Reply::text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}
