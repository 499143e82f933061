//! The service's HTTP endpoint: hyper's HTTP/1.1 server on a thread of its own, optionally
//! over TLS (OpenSSL) with client certificates and basic auth, as the exporter-toolkit web
//! configuration file says (`webconfig`, checked by `auth`); `routes` says what each path
//! answers.

pub mod auth;
pub mod routes;
pub mod webconfig;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::OpsError;
use routes::{Reply, Routes};
use webconfig::{Watched, WebConfig};

/// Connections served at once; more wait in the kernel's backlog (a scraper or two, a person, a
/// probe: a few are normal, thousands an attack).
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
    tracing::info!(%bound, %scheme, "serving the status page (/), /status.json, /metrics, /healthz, /readyz");
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
    verified: auth::Verified,
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
        verified: auth::Verified::default(),
    });
    let plain = Arc::new(WebConfig::plain());
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
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
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        // Read per connection, so a renewed certificate or changed user applies to the next.
        let web = watched
            .as_mut()
            .map_or_else(|| plain.clone(), Watched::current);
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, web, shared).await {
                // A scanner, a client that hung up, a refused certificate: nothing to page on.
                tracing::debug!(%peer, error = %e, "http connection");
            }
            drop(slot);
        });
    }
}

/// Serves one connection: the TLS handshake if configured, then HTTP/1.1 requests on it.
async fn connection(
    stream: TcpStream,
    web: Arc<WebConfig>,
    shared: Arc<Shared>,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    match &web.tls {
        None => http1(TokioIo::new(stream), web, shared).await,
        Some(acceptor) => {
            let ssl = openssl::ssl::Ssl::new(acceptor.context()).map_err(|e| e.to_string())?;
            let mut tls = tokio_openssl::SslStream::new(ssl, stream).map_err(|e| e.to_string())?;
            match tokio::time::timeout(CLIENT_TIMEOUT, Pin::new(&mut tls).accept()).await {
                Err(_) => return Err("TLS handshake timed out".into()),
                Ok(Err(e)) => return Err(format!("TLS handshake: {e}")),
                Ok(Ok(())) => {}
            }
            http1(TokioIo::new(tls), web.clone(), shared).await
        }
    }
}

async fn http1<I>(io: I, web: Arc<WebConfig>, shared: Arc<Shared>) -> Result<(), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let (web, shared) = (web.clone(), shared.clone());
        async move { Ok::<_, Infallible>(respond(req, &web, &shared).await) }
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
    let reply = if req.method() != Method::GET && req.method() != Method::HEAD {
        extra.push((ALLOW, HeaderValue::from_static("GET, HEAD")));
        Reply::text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n")
    } else if !web.users.is_empty()
        && !Routes::is_probe(&path)
        && !authorised(&req, web, shared).await
    {
        extra.push((
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"srv-opr\", charset=\"UTF-8\""),
        ));
        Reply::text(StatusCode::UNAUTHORIZED, "Unauthorized\n")
    } else {
        shared.routes.answer(&path)
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

/// Whether the request carries a user and password of the web configuration. The bcrypt check
/// runs on tokio's blocking pool, so a slow check never stalls other connections.
async fn authorised(
    req: &Request<hyper::body::Incoming>,
    web: &WebConfig,
    shared: &Arc<Shared>,
) -> bool {
    let Some((user, password)) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::credentials)
    else {
        return false;
    };
    let (users, shared) = (web.users.clone(), shared.clone());
    tokio::task::spawn_blocking(move || shared.verified.check(&users, &user, &password))
        .await
        .unwrap_or(false)
}
