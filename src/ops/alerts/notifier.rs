//! The Alertmanager notifier: alerts as the v2 API takes them (`POST /api/v2/alerts`), sent
//! with plain HTTP/1.1 and timeouts.

use std::time::{Duration, SystemTime};

use crate::engine::time::Ts;

/// One alert as Alertmanager gets it: labels, summary, start, and end once resolved.
pub type Notice = (
    Vec<(&'static str, String)>,
    String,
    SystemTime,
    Option<SystemTime>,
);

/// Why a notification was not delivered: the address, the connection, or the answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NotifyError(String);

/// Sends alerts to an Alertmanager's v2 API (`POST /api/v2/alerts`) with plain HTTP/1.1.
pub struct Alertmanager {
    base: String,
    /// Alerts that could not be sent (the evaluator logs each).
    pub errors: u64,
}

fn rfc3339(t: SystemTime) -> String {
    let ns = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    Ts(ns).to_rfc3339_millis()
}

impl Alertmanager {
    /// For `http://HOST:PORT` (a trailing path is kept as a prefix).
    pub fn new(base: &str) -> Alertmanager {
        Alertmanager {
            base: base.trim_end_matches('/').to_string(),
            errors: 0,
        }
    }

    /// The JSON body for `alerts`: (labels, summary, starts, ends).
    pub fn body(alerts: &[Notice]) -> String {
        let list: Vec<serde_json::Value> = alerts
            .iter()
            .map(|(labels, summary, starts, ends)| {
                let l: serde_json::Map<String, serde_json::Value> = labels
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.to_string(), v.clone().into()))
                    .collect();
                let mut a = serde_json::json!({
                    "labels": l,
                    "annotations": {"summary": summary},
                    "startsAt": rfc3339(*starts),
                });
                if let Some(e) = ends {
                    a["endsAt"] = rfc3339(*e).into();
                }
                a
            })
            .collect();
        serde_json::Value::Array(list).to_string()
    }

    /// Posts a body; an error says what went wrong.
    pub fn post(&mut self, body: &str) -> Result<(), NotifyError> {
        let result = post_json(&self.base, "/api/v2/alerts", body).map_err(NotifyError);
        if result.is_err() {
            self.errors += 1;
        }
        result
    }
}

/// A minimal `POST` of JSON over HTTP/1.1 with timeouts; success is a 2xx status.
fn post_json(base: &str, path: &str, body: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base} is not an http:// URL"))?;
    let (host, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))?;
    let timeout = Duration::from_secs(5);
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{host}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "POST {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("{host}: {e}"))?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| format!("{host}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    let status = line.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "{host} answered {:?}",
            line.lines().next().unwrap_or("")
        ))
    }
}
