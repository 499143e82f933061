//! The server: listening on a thread of its own, the connections (capped, idle ones closed
//! for room), their TLS handshakes and HTTP/1.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::respond::{CLIENT_TIMEOUT, Shared, respond};
use super::routes::Routes;
use super::webconfig::{Watched, WebConfig};
use super::{auth, conns};

/// Connections served at once (a scraper or two, a person, a probe: a few are normal, hundreds
/// an attack). At the cap an idle one is closed to make room for the next ([`conns`]); only
/// when all are busy with requests does the next wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;

/// Why the HTTP endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
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
    /// Its thread or runtime could not start.
    #[error("the HTTP endpoint cannot start")]
    Start(#[source] std::io::Error),
    /// The web configuration (TLS, basic auth) does not load.
    #[error(transparent)]
    WebConfig(#[from] super::webconfig::WebConfigError),
}

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
) -> Result<HttpServer, ServeError> {
    let addr: SocketAddr = listen.parse().map_err(|source| ServeError::Listen {
        listen: listen.to_string(),
        source,
    })?;
    let hook = routes.intake.is_some();
    let watched = web_config.map(Watched::load).transpose()?;
    let tls = watched.as_ref().is_some_and(|w| w.peek().tls.is_some());
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(ServeError::Start)?;
    let bound = std_listener.local_addr().map_err(ServeError::Start)?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Start)?;
    let thread = std::thread::Builder::new()
        .name("srv-opr-http".into())
        .spawn(move || rt.block_on(accept_loop(std_listener, watched, Arc::new(routes), rx)))
        .map_err(ServeError::Start)?;
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
