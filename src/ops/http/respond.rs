//! One request answered: its method, its credentials, then its route (the Alertmanager
//! webhook's body read within its limits).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};

use super::auth;
use super::conns;
use super::routes::{Reply, Routes};
use super::webconfig::WebConfig;
use crate::ops::webhook;

/// A client has this long to finish its TLS handshake, and to send a request's head.
pub(super) const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection shares.
pub(super) struct Shared {
    pub(super) routes: Arc<Routes>,
    pub(super) verified: Arc<auth::Verified>,
    pub(super) conns: conns::Conns,
}

pub(super) async fn respond(
    req: Request<hyper::body::Incoming>,
    web: &WebConfig,
    shared: &Arc<Shared>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let mut extra: Vec<(hyper::header::HeaderName, HeaderValue)> = Vec::new();
    let hook = path == webhook::PATH;
    let allowed = if hook {
        req.method() == Method::POST
    } else {
        req.method() == Method::GET || req.method() == Method::HEAD
    };
    let reply = if !allowed {
        let (allow, says) = if hook {
            ("POST", "only POST (Alertmanager's webhook)\n")
        } else {
            ("GET, HEAD", "only GET and HEAD\n")
        };
        extra.push((ALLOW, HeaderValue::from_static(allow)));
        Reply::text(StatusCode::METHOD_NOT_ALLOWED, says)
    } else if web.users.is_empty() || Routes::is_probe(&path) {
        if hook {
            alertmanager(req, shared).await
        } else {
            shared.routes.answer(&path)
        }
    } else {
        match authorised(&req, web, shared).await {
            auth::Verdict::Granted if hook => alertmanager(req, shared).await,
            auth::Verdict::Granted => shared.routes.answer(&path),
            // Alertmanager sends a notification again after a 5xx only.
            auth::Verdict::Busy if hook => {
                extra.push((RETRY_AFTER, HeaderValue::from_static("1")));
                Reply::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many password checks waiting: send again\n",
                )
            }
            auth::Verdict::Denied => {
                extra.push((
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"srv-opr\", charset=\"UTF-8\""),
                ));
                Reply::text(StatusCode::UNAUTHORIZED, "Unauthorized\n")
            }
            auth::Verdict::Busy => {
                extra.push((RETRY_AFTER, HeaderValue::from_static("1")));
                Reply::text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many password checks waiting: try again in a second\n",
                )
            }
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    *resp.status_mut() = reply.status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    for (k, v) in extra.into_iter().chain(web.headers.iter().cloned()) {
        h.insert(k, v);
    }
    resp
}

/// Reads a webhook notification (at most [`webhook::MAX_BODY_BYTES`], within the client
/// timeout) and answers it ([`Routes::alertmanager`]).
async fn alertmanager(req: Request<hyper::body::Incoming>, shared: &Arc<Shared>) -> Reply {
    let too_large = || {
        shared.routes.metrics.count_webhook("refused");
        Reply::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "a notification is at most {} bytes\n",
                webhook::MAX_BODY_BYTES
            ),
        )
    };
    // A Content-Length over the bound is refused before reading any of it.
    if hyper::body::Body::size_hint(req.body()).lower() > webhook::MAX_BODY_BYTES as u64 {
        return too_large();
    }
    let limited = Limited::new(req.into_body(), webhook::MAX_BODY_BYTES);
    match tokio::time::timeout(CLIENT_TIMEOUT, limited.collect()).await {
        Err(_) => {
            shared.routes.metrics.count_webhook("refused");
            Reply::text(
                StatusCode::REQUEST_TIMEOUT,
                "the notification did not arrive in time\n",
            )
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => too_large(),
        Ok(Err(e)) => {
            shared.routes.metrics.count_webhook("refused");
            Reply::text(StatusCode::BAD_REQUEST, format!("reading the body: {e}\n"))
        }
        Ok(Ok(body)) => shared.routes.alertmanager(&body.to_bytes()).await,
    }
}

/// Whether the request carries a user and password of the web configuration ([`auth`]: from
/// the cache, or a bcrypt check waiting its turn off the event loop, or busy).
async fn authorised(
    req: &Request<hyper::body::Incoming>,
    web: &WebConfig,
    shared: &Arc<Shared>,
) -> auth::Verdict {
    let Some((user, password)) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::credentials)
    else {
        return auth::Verdict::Denied;
    };
    shared.verified.verdict(&web.users, user, password).await
}
