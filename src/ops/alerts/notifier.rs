//! The Alertmanager notifier: alerts as the v2 API takes them (`POST /api/v2/alerts`), sent
//! through ureq over HTTP or verified HTTPS (OpenSSL, as for Kafka and PostgreSQL), with basic
//! auth or a bearer token, and one timeout for the whole exchange.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::config::secrets::{Secret, SecretError};
use crate::config::settings::AlertmanagerSettings;
use crate::engine::time::Ts;

/// One alert as Alertmanager gets it: labels, summary, start, and end once resolved.
pub type Notice = (
    Vec<(&'static str, String)>,
    String,
    SystemTime,
    Option<SystemTime>,
);

/// Why a notification was not delivered (the connection, TLS, or the answer), or why the
/// notifier cannot be set up (a CA, certificate or key file, a secret). Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A TLS file of `[alerts]` cannot be read or is not PEM.
    #[error("{setting} {path}: {reason}")]
    File {
        /// The setting naming it.
        setting: &'static str,
        /// The file.
        path: String,
        /// Why it is unusable.
        reason: String,
    },
    /// The password or token cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The exchange failed: connecting, TLS, a timeout.
    #[error("{url}: {reason}")]
    Send {
        /// Where it was sent.
        url: String,
        /// What failed (OpenSSL's reason for a refused certificate).
        reason: String,
    },
    /// Alertmanager answered, but not with success.
    #[error("{url} answered {status}{hint}{body}")]
    Status {
        /// Where it was sent.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What a 401 or 403 means here.
        hint: &'static str,
        /// The start of the answer's body (Alertmanager says what it disliked), after `: `.
        body: String,
    },
}

/// Sends alerts to an Alertmanager's v2 API (`POST /api/v2/alerts`).
pub struct Alertmanager {
    url: String,
    agent: ureq::Agent,
    /// The `Authorization` header's value, if any.
    authorization: Option<Secret>,
    /// Alerts that could not be sent (the evaluator logs each).
    pub errors: u64,
}

fn rfc3339(t: SystemTime) -> String {
    let ns = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    Ts(ns).to_rfc3339_millis()
}

/// Reads a PEM file of `[alerts]`, naming the setting when it cannot.
fn read_pem(setting: &'static str, path: &str) -> Result<Vec<u8>, NotifyError> {
    std::fs::read(path).map_err(|e| NotifyError::File {
        setting,
        path: path.to_string(),
        reason: e.to_string(),
    })
}

fn bad_file(setting: &'static str, path: &str, reason: impl std::fmt::Display) -> NotifyError {
    NotifyError::File {
        setting,
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Every certificate of a PEM file (at least one).
fn certificates(
    setting: &'static str,
    path: &str,
) -> Result<Vec<Certificate<'static>>, NotifyError> {
    crate::ops::pem::certificates(&read_pem(setting, path)?)
        .map_err(|why| bad_file(setting, path, why))
}

/// The client key, in whichever PEM form (PKCS#8, PKCS#1 RSA, SEC1 EC): handed on as PKCS#8,
/// the one form the TLS layer takes. OpenSSL's error text never holds key material.
fn private_key(path: &str) -> Result<PrivateKey<'static>, NotifyError> {
    const SETTING: &str = "alerts.alertmanager_key_file";
    let pem = read_pem(SETTING, path)?;
    let key = openssl::pkey::PKey::private_key_from_pem(&pem)
        .map_err(|_| bad_file(SETTING, path, "not a PEM private key (or an encrypted one)"))?;
    let pkcs8 = key
        .private_key_to_pem_pkcs8()
        .map_err(|e| bad_file(SETTING, path, e))?;
    PrivateKey::from_pem(&pkcs8).map_err(|e| bad_file(SETTING, path, e))
}

impl Alertmanager {
    /// The notifier `s` describes: its CA, client certificate and credentials read now, so a
    /// missing file stops `run` at start rather than every notification failing later.
    pub(crate) fn new(s: &AlertmanagerSettings) -> Result<Alertmanager, NotifyError> {
        let base = s.url.trim_end_matches('/');
        let roots = if s.ca_file.is_empty() {
            // The system's trust store (OpenSSL's default paths).
            RootCerts::PlatformVerifier
        } else {
            RootCerts::Specific(Arc::new(certificates(
                "alerts.alertmanager_ca_file",
                &s.ca_file,
            )?))
        };
        let client = if s.cert_file.is_empty() {
            None
        } else {
            let chain = certificates("alerts.alertmanager_cert_file", &s.cert_file)?;
            Some(ClientCert::new_with_certs(
                &chain,
                private_key(&s.key_file)?,
            ))
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(roots)
            .client_cert(client)
            .build();
        let timeout = if s.timeout.to_std().is_zero() {
            Duration::from_secs(10)
        } else {
            s.timeout.to_std()
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(timeout))
            // The status is judged here, with the body's reason.
            .http_status_as_error(false)
            // A redirect could carry the credentials elsewhere.
            .max_redirects(0)
            .user_agent(concat!("srv-opr/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let authorization = if let Some(p) = s.password.read("alerts.alertmanager_password")? {
            let pair = format!("{}:{}", s.username, p.expose());
            // Registered as a secret too: the encoded pair is as good as the password.
            Some(Secret::new(format!(
                "Basic {}",
                openssl::base64::encode_block(pair.as_bytes())
            )))
        } else {
            s.bearer_token
                .read("alerts.alertmanager_bearer_token")?
                .map(|t| Secret::new(format!("Bearer {}", t.expose())))
        };
        Ok(Alertmanager {
            url: format!("{base}/api/v2/alerts"),
            agent,
            authorization,
            errors: 0,
        })
    }

    /// Asks the Alertmanager for its status (`GET /api/v2/status`, with the same TLS and
    /// credentials as the alerts): its version and cluster state, or why it did not answer.
    pub(crate) fn status(&self) -> Result<String, NotifyError> {
        let url = self
            .url
            .strip_suffix("/alerts")
            .map_or_else(|| self.url.clone(), |b| format!("{b}/status"));
        let mut req = self.agent.get(&url);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a.expose());
        }
        let mut resp = req.call().map_err(|e| NotifyError::Send {
            url: url.clone(),
            reason: crate::diagnostic::chain(&e),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(status_error(
                url,
                status,
                &text,
                " (Forbidden: these credentials may not read its status)",
            ));
        }
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        Ok(format!(
            "Alertmanager {} answers, cluster {}",
            v["versionInfo"]["version"]
                .as_str()
                .unwrap_or("(version unknown)"),
            v["cluster"]["status"]
                .as_str()
                .unwrap_or("(status unknown)")
        ))
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

    /// Posts a body; an error says what went wrong, and is counted in `errors`.
    pub(crate) fn post(&mut self, body: &str) -> Result<(), NotifyError> {
        let result = self.send(body);
        if result.is_err() {
            self.errors += 1;
        }
        result
    }

    fn send(&self, body: &str) -> Result<(), NotifyError> {
        let mut req = self.agent.post(&self.url).content_type("application/json");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a.expose());
        }
        let mut resp = req.send(body).map_err(|e| NotifyError::Send {
            url: self.url.clone(),
            reason: crate::diagnostic::chain(&e),
        })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        Err(status_error(
            self.url.clone(),
            status,
            &text,
            " (Forbidden: these credentials may not post alerts)",
        ))
    }
}

/// An answer other than 2xx from `url`, with a hint for the credentials' statuses (`forbidden`:
/// what a 403 means for this request) and the start of the body, secrets masked.
fn status_error(url: String, status: u16, body: &str, forbidden: &'static str) -> NotifyError {
    let text: String = body.trim().chars().take(200).collect();
    NotifyError::Status {
        url,
        status,
        hint: match status {
            401 => " (Unauthorized: the username, password or token is wrong or missing)",
            403 => forbidden,
            _ => "",
        },
        body: if text.is_empty() {
            String::new()
        } else {
            format!(": {}", crate::diagnostic::redact(&text))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secrets::SecretSource;
    use std::io::{Read, Write};

    /// A one-request HTTP server on a real socket: answers `status`, hands back the request.
    fn one_request(status: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&got).contains("\r\n\r\n[") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let body = "nope";
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            String::from_utf8_lossy(&got).into_owned()
        });
        (format!("http://{addr}/prefix"), t)
    }

    #[test]
    fn a_bearer_token_is_sent_and_a_refusal_never_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "tok-notifier-123\n").unwrap();
        for (status, ok) in [("200 OK", true), ("401 Unauthorized", false)] {
            let (url, server) = one_request(status);
            let s = AlertmanagerSettings {
                url,
                bearer_token: SecretSource::File(dir.path().join("token")),
                timeout: crate::engine::time::Dur::from_millis(5_000),
                ..Default::default()
            };
            let mut am = Alertmanager::new(&s).unwrap();
            let result = am.post("[]");
            let request = server.join().unwrap();
            assert!(
                request.starts_with("POST /prefix/api/v2/alerts HTTP/1.1\r\n"),
                "{request}"
            );
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("\r\nauthorization: bearer tok-notifier-123\r\n"),
                "{request}"
            );
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("content-type: application/json")
            );
            match result {
                Ok(()) => assert!(ok),
                Err(e) => {
                    assert!(!ok, "{e}");
                    let text = crate::diagnostic::chain(&e);
                    assert!(text.contains("answered 401 (Unauthorized"), "{text}");
                    assert!(text.ends_with(": nope"), "the body's reason: {text}");
                    assert!(!text.contains("tok-notifier"), "{text}");
                    assert_eq!(am.errors, 1);
                }
            }
        }
    }
}
