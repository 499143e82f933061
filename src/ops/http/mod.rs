//! The service's HTTP endpoint: hyper's HTTP/1.1 server on a thread of its own, optionally
//! over TLS (OpenSSL) with client certificates and basic auth, as the exporter-toolkit web
//! configuration file says (`webconfig`, checked by `auth`); `routes` says what each path
//! answers.

pub mod auth;
pub mod conns;
pub mod routes;
pub mod webconfig;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::OpsError;
use super::webhook;
use routes::{Reply, Routes};
use webconfig::{Watched, WebConfig};

/// Connections served at once (a scraper or two, a person, a probe: a few are normal, hundreds
/// an attack). At the cap an idle one is closed to make room for the next ([`conns`]); only
/// when all are busy with requests does the next wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;

/// A client has this long to finish its TLS handshake, and to send a request's head.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A running endpoint; dropping it stops the server.
pub struct HttpServer {
    /// The address actually bound (port 0 picks a free one).
    pub addr: SocketAddr,
    /// Whether it serves HTTPS.
    pub tls: bool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// The base URL it serves, `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds `listen` and serves `routes` on a thread of its own (so a busy pipeline never delays a
/// probe), with the web configuration `web_config` (a path; `None`: plain HTTP, no
/// authentication). A web configuration that does not load stops the start.
pub fn serve(
    listen: &str,
    web_config: Option<&Path>,
    routes: Routes,
) -> Result<HttpServer, OpsError> {
    let addr: SocketAddr = listen.parse().map_err(|source| OpsError::Listen {
        listen: listen.to_string(),
        source,
    })?;
    let hook = routes.intake.is_some();
    let watched = web_config.map(Watched::load).transpose()?;
    let tls = watched.as_ref().is_some_and(|w| w.peek().tls.is_some());
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|source| OpsError::Bind { addr, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(OpsError::Start)?;
    let bound = std_listener.local_addr().map_err(OpsError::Start)?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OpsError::Start)?;
    let thread = std::thread::Builder::new()
        .name("srv-opr-http".into())
        .spawn(move || rt.block_on(accept_loop(std_listener, watched, Arc::new(routes), rx)))
        .map_err(OpsError::Start)?;
    let scheme = if tls { "https" } else { "http" };
    tracing::info!(
        %bound,
        %scheme,
        alertmanager_webhook = hook,
        "serving the status page (/), /status.json, /metrics, /healthz, /readyz"
    );
    Ok(HttpServer {
        addr: bound,
        tls,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// What every connection shares.
struct Shared {
    routes: Arc<Routes>,
    verified: Arc<auth::Verified>,
    conns: conns::Conns,
}

async fn accept_loop(
    std_listener: std::net::TcpListener,
    mut watched: Option<Watched>,
    routes: Arc<Routes>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "http endpoint cannot start");
            return;
        }
    };
    let shared = Arc::new(Shared {
        routes,
        verified: Arc::new(auth::Verified::default()),
        conns: conns::Conns::default(),
    });
    let plain = Arc::new(WebConfig::plain());
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        };
        // At the cap: close an idle connection for this one, or, when every connection is busy
        // with a request, wait for one to end.
        while shared.conns.len() >= MAX_CONNECTIONS && !shared.conns.make_room() {
            let freed = shared.conns.freed.notified();
            tokio::select! {
                _ = &mut stop => return,
                _ = freed => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        // Read per connection, so a renewed certificate or changed user applies to the next.
        let web = watched
            .as_mut()
            .map_or_else(|| plain.clone(), Watched::current);
        let shared = shared.clone();
        let (id, evicted) = shared.conns.open(peer.ip());
        tokio::spawn(async move {
            let served = tokio::select! {
                r = connection(stream, web, shared.clone(), id) => r,
                _ = evicted => Err("closed while idle, to make room for another".into()),
            };
            shared.conns.close(id);
            if let Err(e) = served {
                // A scanner, a client that hung up, a refused certificate: nothing to page on.
                tracing::debug!(%peer, error = %e, "http connection");
            }
        });
    }
}

/// Serves one connection: the TLS handshake if configured, then HTTP/1.1 requests on it.
async fn connection(
    stream: TcpStream,
    web: Arc<WebConfig>,
    shared: Arc<Shared>,
    id: u64,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    match &web.tls {
        None => http1(TokioIo::new(stream), web, shared, id).await,
        Some(acceptor) => {
            let ssl = openssl::ssl::Ssl::new(acceptor.context()).map_err(|e| e.to_string())?;
            let mut tls = tokio_openssl::SslStream::new(ssl, stream).map_err(|e| e.to_string())?;
            match tokio::time::timeout(CLIENT_TIMEOUT, Pin::new(&mut tls).accept()).await {
                Err(_) => return Err("TLS handshake timed out".into()),
                Ok(Err(e)) => return Err(format!("TLS handshake: {e}")),
                Ok(Ok(())) => {}
            }
            http1(TokioIo::new(tls), web.clone(), shared, id).await
        }
    }
}

async fn http1<I>(io: I, web: Arc<WebConfig>, shared: Arc<Shared>, id: u64) -> Result<(), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let (web, shared) = (web.clone(), shared.clone());
        async move {
            // Busy while answering: never closed for room in the middle of a request.
            shared.conns.busy(id);
            let resp = respond(req, &web, &shared).await;
            shared.conns.idle(id);
            Ok::<_, Infallible>(resp)
        }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(CLIENT_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(io, service)
        .await
        .map_err(|e| e.to_string())
}

async fn respond(
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
