//! The service's HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` (the process
//! answers) and `/readyz` (partitions are held and restored, and their lag is below
//! `http.ready_max_lag`). A few lines of HTTP/1.1 on tokio: scrapers and
//! probes send one small GET and read one response, so nothing more is needed or exposed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::OpsError;
use crate::ops::live::Live;
use crate::ops::metrics::Metrics;

/// A running endpoint; dropping it stops the server.
pub struct HttpServer {
    /// The address actually bound (port 0 picks a free one).
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
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

/// Binds `listen` and serves on a thread of its own (so a busy pipeline never delays a probe).
pub fn serve(
    listen: &str,
    metrics: Arc<Metrics>,
    live: Arc<Live>,
    max_lag: u64,
) -> Result<HttpServer, OpsError> {
    let addr: SocketAddr = listen.parse().map_err(|source| OpsError::Listen {
        listen: listen.to_string(),
        source,
    })?;
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|source| OpsError::Bind { addr, source })?;
    std_listener
        .set_nonblocking(true)
        .map_err(OpsError::Start)?;
    let bound = std_listener.local_addr().map_err(OpsError::Start)?;
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OpsError::Start)?;
    let thread = std::thread::Builder::new()
        .name("srv-opr-http".into())
        .spawn(move || {
            rt.block_on(async move {
                let listener = match TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "http endpoint cannot start");
                        return;
                    }
                };
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => {
                                let (m, l) = (metrics.clone(), live.clone());
                                tokio::spawn(async move {
                                    if let Err(e) = answer(stream, &m, &l, max_lag).await {
                                        tracing::debug!(error = %e, "http request");
                                    }
                                });
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "http accept");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                }
            });
        })
        .map_err(OpsError::Start)?;
    tracing::info!(%bound, "serving /metrics, /healthz, /readyz");
    Ok(HttpServer {
        addr: bound,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

async fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    live: &Live,
    max_lag: u64,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read the request head only (no body is accepted), bounded in size and time.
    let head = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
                return Ok(true);
            }
            if buf.len() > 8192 {
                return Ok(false);
            }
        }
    })
    .await;
    if !matches!(head, Ok(Ok(true))) {
        return respond(&mut stream, 400, "text/plain", "bad request\n").await;
    }
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", "only GET\n").await;
    }
    match path {
        "/metrics" => match metrics.render() {
            Ok(text) => {
                respond(
                    &mut stream,
                    200,
                    "text/plain; version=0.0.4; charset=utf-8",
                    &text,
                )
                .await
            }
            Err(e) => respond(&mut stream, 500, "text/plain", &format!("{e}\n")).await,
        },
        "/healthz" => respond(&mut stream, 200, "text/plain", "ok\n").await,
        "/readyz" => {
            // Partitions are restored from the store inside the assignment itself, so a held
            // partition is a restored one.
            let (held, lag) = live.readiness();
            if held == 0 {
                respond(
                    &mut stream,
                    503,
                    "text/plain",
                    "no partition assigned yet\n",
                )
                .await
            } else if lag as u64 > max_lag {
                respond(
                    &mut stream,
                    503,
                    "text/plain",
                    &format!("catching up: {lag} messages behind (http.ready_max_lag {max_lag})\n"),
                )
                .await
            } else {
                respond(
                    &mut stream,
                    200,
                    "text/plain",
                    &format!("ready: {held} partitions, {lag} messages behind\n"),
                )
                .await
            }
        }
        _ => respond(&mut stream, 404, "text/plain", "not found\n").await,
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
