//! The web configuration file (`http.web_config_file`), in the format of Prometheus'
//! exporter-toolkit, so operators reuse the file their exporters already read: TLS
//! (`tls_server_config`), client certificates, basic-auth users with bcrypt hashes, and extra
//! response headers. Parsed and checked whole, turned into an OpenSSL acceptor, and read again
//! when the file or a file it names changes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode, SslVersion};
use serde::Deserialize;

/// Larger than any real web configuration: a bigger file is a mistake, not read whole.
const MAX_BYTES: u64 = 1 << 20;

/// Why a web configuration cannot be used; names the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("http.web_config_file {path}: {reason}")]
pub struct WebConfigError {
    /// The web configuration file.
    pub path: String,
    /// What is wrong (the YAML parser's reason, or which key and why).
    pub reason: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    cert_file: String,
    #[serde(default)]
    key_file: String,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: String,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    // Read so that they can be refused by name rather than as unknown keys.
    #[serde(default)]
    cipher_suites: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    curve_preferences: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<serde_yaml_ng::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    /// Go's servers may offer HTTP/2; this one speaks HTTP/1.1, so the value changes nothing.
    #[serde(default)]
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Who may connect and how, as one web configuration file says.
pub struct WebConfig {
    /// TLS, when `tls_server_config` is set.
    pub tls: Option<SslAcceptor>,
    /// Basic-auth users and their bcrypt hashes (none: no authentication).
    pub users: BTreeMap<String, String>,
    /// Headers added to every response (`http_server_config.headers`).
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the hashes nor the key material are anyone's business in a log.
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The TLS versions exporter-toolkit names.
fn version(key: &str, v: &str) -> Result<SslVersion, String> {
    match v {
        "TLS10" => Ok(SslVersion::TLS1),
        "TLS11" => Ok(SslVersion::TLS1_1),
        "TLS12" => Ok(SslVersion::TLS1_2),
        "TLS13" => Ok(SslVersion::TLS1_3),
        _ => Err(format!(
            "tls_server_config.{key}: {v:?} is not one of TLS10, TLS11, TLS12, TLS13"
        )),
    }
}

/// Go's `tls.ClientAuthType` names, as OpenSSL verify modes: (mode, verified against the CA).
fn client_auth(v: &str) -> Result<(SslVerifyMode, bool), String> {
    let require = SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT;
    match v {
        "NoClientCert" => Ok((SslVerifyMode::NONE, false)),
        "RequestClientCert" => Ok((SslVerifyMode::PEER, false)),
        "RequireAnyClientCert" => Ok((require, false)),
        "VerifyClientCertIfGiven" => Ok((SslVerifyMode::PEER, true)),
        "RequireAndVerifyClientCert" => Ok((require, true)),
        _ => Err(format!(
            "tls_server_config.client_auth_type: {v:?} is not one of NoClientCert, \
             RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, \
             RequireAndVerifyClientCert"
        )),
    }
}

/// A path of the file, relative to the file's own directory (as exporter-toolkit reads them).
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl WebConfig {
    /// No web configuration: plain HTTP, no authentication.
    pub fn plain() -> WebConfig {
        WebConfig {
            tls: None,
            users: BTreeMap::new(),
            headers: Vec::new(),
        }
    }

    /// Reads and checks `path`; returns it with the files it names (to watch for changes).
    pub(crate) fn load(path: &Path) -> Result<(WebConfig, Vec<PathBuf>), WebConfigError> {
        let err = |reason: String| WebConfigError {
            path: path.display().to_string(),
            reason,
        };
        let text = read_bounded(path).map_err(err)?;
        let base = path.parent().unwrap_or(Path::new("."));
        WebConfig::parse(&text, base).map_err(err)
    }

    /// Parses a web configuration whose relative paths are relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Result<(WebConfig, Vec<PathBuf>), String> {
        // The YAML parser takes time quadratic in the depth of unclosed flow collections (a
        // 144 kB file of `[[` lines took 16 s, found by fuzzing): a web configuration nests
        // two or three deep, so anything past MAX_NESTING is refused before it is parsed.
        if let Some(line) = too_deep(text, MAX_NESTING) {
            return Err(format!(
                "line {line}: brackets or braces nested more than {MAX_NESTING} deep: not a web \
                 configuration"
            ));
        }
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
        };
        let mut files = Vec::new();
        let tls = match raw.tls_server_config {
            None => None,
            Some(t) => Some(acceptor(t, base, &mut files)?),
        };
        for (user, hash) in &raw.basic_auth_users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(format!(
                    "basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \
                     {user}`, or any bcrypt tool)"
                ));
            }
        }
        let mut headers = Vec::new();
        for (k, v) in raw
            .http_server_config
            .map(|h| h.headers)
            .unwrap_or_default()
        {
            let name = hyper::header::HeaderName::try_from(k.as_str())
                .map_err(|_| format!("http_server_config.headers: {k:?} is not a header name"))?;
            let value = hyper::header::HeaderValue::try_from(v.as_str())
                .map_err(|_| format!("http_server_config.headers.{k}: not a valid header value"))?;
            headers.push((name, value));
        }
        Ok((
            WebConfig {
                tls,
                users: raw.basic_auth_users,
                headers,
            },
            files,
        ))
    }
}

/// The OpenSSL acceptor `tls_server_config` describes, after exporter-toolkit's checks.
fn acceptor(t: RawTls, base: &Path, files: &mut Vec<PathBuf>) -> Result<SslAcceptor, String> {
    for (key, set) in [
        ("cipher_suites", t.cipher_suites.is_some()),
        ("curve_preferences", t.curve_preferences.is_some()),
        (
            "prefer_server_cipher_suites",
            t.prefer_server_cipher_suites.is_some(),
        ),
        ("client_allowed_sans", t.client_allowed_sans.is_some()),
    ] {
        if set {
            return Err(format!(
                "tls_server_config.{key} is not supported: srv-opr serves OpenSSL's modern \
                 defaults (Mozilla's intermediate profile); remove the key"
            ));
        }
    }
    if t.cert_file.trim().is_empty() {
        return Err("tls_server_config: cert_file is missing".into());
    }
    if t.key_file.trim().is_empty() {
        return Err("tls_server_config: key_file is missing".into());
    }
    let (mode, verified) = client_auth(t.client_auth_type.as_deref().unwrap_or("NoClientCert"))?;
    let ca = t.client_ca_file.trim();
    if verified && ca.is_empty() {
        return Err(
            "tls_server_config.client_auth_type verifies client certificates: set client_ca_file"
                .into(),
        );
    }
    if !ca.is_empty() && mode == SslVerifyMode::NONE {
        return Err(
            "tls_server_config.client_ca_file is set but client_auth_type is NoClientCert: set \
             RequireAndVerifyClientCert (or VerifyClientCertIfGiven)"
                .into(),
        );
    }
    let min = version("min_version", t.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = t
        .max_version
        .as_deref()
        .map(|v| version("max_version", v))
        .transpose()?;
    let ssl = |what: &str, e: openssl::error::ErrorStack| format!("{what}: {e}");
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| ssl("OpenSSL", e))?;
    let cert = resolve(base, t.cert_file.trim());
    let key = resolve(base, t.key_file.trim());
    b.set_certificate_chain_file(&cert).map_err(|e| {
        ssl(
            &format!("tls_server_config.cert_file {}", cert.display()),
            e,
        )
    })?;
    b.set_private_key_file(&key, openssl::ssl::SslFiletype::PEM)
        .map_err(|e| ssl(&format!("tls_server_config.key_file {}", key.display()), e))?;
    b.check_private_key().map_err(|e| {
        ssl(
            "tls_server_config: key_file does not belong to cert_file",
            e,
        )
    })?;
    b.set_min_proto_version(Some(min))
        .map_err(|e| ssl("min_version", e))?;
    b.set_max_proto_version(max)
        .map_err(|e| ssl("max_version", e))?;
    files.extend([cert, key]);
    if !ca.is_empty() {
        let ca = resolve(base, ca);
        let pem = std::fs::read(&ca)
            .map_err(|e| format!("tls_server_config.client_ca_file {}: {e}", ca.display()))?;
        let certs = openssl::x509::X509::stack_from_pem(&pem).map_err(|e| {
            ssl(
                &format!("tls_server_config.client_ca_file {}", ca.display()),
                e,
            )
        })?;
        if certs.is_empty() {
            return Err(format!(
                "tls_server_config.client_ca_file {}: holds no certificate",
                ca.display()
            ));
        }
        let mut store =
            openssl::x509::store::X509StoreBuilder::new().map_err(|e| ssl("client_ca_file", e))?;
        for c in certs {
            // Named to clients, so they know which certificate to present.
            b.add_client_ca(&c).map_err(|e| ssl("client_ca_file", e))?;
            store.add_cert(c).map_err(|e| ssl("client_ca_file", e))?;
        }
        b.set_verify_cert_store(store.build())
            .map_err(|e| ssl("client_ca_file", e))?;
        files.push(ca);
    }
    if verified {
        b.set_verify(mode);
    } else {
        // Asked for (or required) but not checked against a CA, as Go's RequestClientCert and
        // RequireAnyClientCert are.
        b.set_verify_callback(mode, |_, _| true);
    }
    Ok(b.build())
}

/// The file's text, refusing one larger than [`MAX_BYTES`] (or not text).
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut text = String::new();
    f.take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_BYTES {
        return Err(format!(
            "larger than {MAX_BYTES} bytes: not a web configuration"
        ));
    }
    Ok(text)
}

/// What identifies a file's version: its modification time and length (none: absent).
type Stamp = Option<(SystemTime, u64)>;

fn stamp(p: &Path) -> Stamp {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
}

/// The web configuration in force, read again when the file or one it names (a renewed
/// certificate) changes. A new version that does not load is logged and the last good one kept,
/// so a typo cannot take `/metrics` down.
pub(crate) struct Watched {
    path: PathBuf,
    current: Arc<WebConfig>,
    stamps: Vec<(PathBuf, Stamp)>,
    checked: Instant,
    /// The stamps of the version that failed, so it is reported once, not per connection.
    failed: Option<Vec<(PathBuf, Stamp)>>,
}

/// How often the files are looked at (at most, and only when a connection comes).
const RECHECK: Duration = Duration::from_secs(1);

impl Watched {
    /// Loads `path` (an error stops the start).
    pub fn load(path: &Path) -> Result<Watched, WebConfigError> {
        let (config, files) = WebConfig::load(path)?;
        let w = Watched {
            path: path.to_path_buf(),
            current: Arc::new(config),
            stamps: Self::stamps_of(path, &files),
            checked: Instant::now(),
            failed: None,
        };
        if w.current.tls.is_none() && !w.current.users.is_empty() {
            tracing::warn!(file = %path.display(),
                "basic auth without TLS: passwords cross the network in clear");
        }
        Ok(w)
    }

    fn stamps_of(path: &Path, files: &[PathBuf]) -> Vec<(PathBuf, Stamp)> {
        std::iter::once(path.to_path_buf())
            .chain(files.iter().cloned())
            .map(|p| {
                let s = stamp(&p);
                (p, s)
            })
            .collect()
    }

    /// The configuration in force, without looking at the files.
    pub(crate) fn peek(&self) -> &WebConfig {
        &self.current
    }

    /// The configuration for a new connection, reloaded first if a file changed.
    pub fn current(&mut self) -> Arc<WebConfig> {
        if self.checked.elapsed() >= RECHECK {
            self.checked = Instant::now();
            let now: Vec<(PathBuf, Stamp)> = self
                .stamps
                .iter()
                .map(|(p, _)| (p.clone(), stamp(p)))
                .collect();
            if now != self.stamps && self.failed.as_ref() != Some(&now) {
                self.reload(now);
            }
        }
        self.current.clone()
    }

    fn reload(&mut self, now: Vec<(PathBuf, Stamp)>) {
        match WebConfig::load(&self.path) {
            Ok((config, files)) => {
                tracing::info!(file = %self.path.display(), tls = config.tls.is_some(),
                    users = config.users.len(), "web configuration reloaded");
                self.current = Arc::new(config);
                self.stamps = Self::stamps_of(&self.path, &files);
                self.failed = None;
            }
            Err(e) => {
                tracing::error!(error = %crate::diagnostic::chain(&e),
                    "web configuration changed but does not load: still serving the last good one");
                self.failed = Some(now);
            }
        }
    }
}

/// Deepest nesting of `[`/`{` a web configuration may have.
const MAX_NESTING: usize = 64;

/// The line on which `[`/`{` nesting first goes past `max` (quotes and comments not told apart:
/// a bracket in a quoted header value counts too, which a real file never nests this deep).
fn too_deep(text: &str, max: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, line) in text.lines().enumerate() {
        for c in line.chars() {
            match c {
                '[' | '{' => {
                    depth += 1;
                    if depth > max {
                        return Some(i + 1);
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {

    #[test]
    fn deeply_nested_flow_collections_are_refused_before_the_yaml_parser_sees_them() {
        // Found by fuzzing: the parser's time grows with the square of the unclosed depth.
        let text = "a: [[#g:\n".repeat(16_000);
        let err = super::WebConfig::parse(&text, std::path::Path::new("/nonexistent"))
            .err()
            .unwrap();
        assert!(
            err.contains("line 33: brackets or braces nested more than 64 deep"),
            "{err}"
        );
        // Shallow ones are the YAML parser's to judge, as before.
        let err = super::WebConfig::parse("a: [[1]]\n", std::path::Path::new("/nonexistent"))
            .err()
            .unwrap();
        assert!(!err.contains("nested"), "{err}");
    }
    use super::*;

    fn problem(yaml: &str) -> String {
        match WebConfig::parse(yaml, Path::new("/nonexistent")) {
            Ok(_) => panic!("accepted: {yaml}"),
            Err(e) => e,
        }
    }

    #[test]
    fn exporter_toolkit_files_are_checked_as_it_checks_them() {
        let (c, files) = WebConfig::parse("", Path::new(".")).unwrap();
        assert!(c.tls.is_none() && c.users.is_empty() && files.is_empty());
        let hash = bcrypt::hash("pw", 4).unwrap();
        let (c, _) = WebConfig::parse(
            &format!("basic_auth_users:\n  prom: '{hash}'\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.users.len(), 1);
        assert_eq!(c.headers[0].0.as_str(), "x-frame-options");

        assert!(problem("basic_auth_users:\n  prom: plain\n").contains("not a bcrypt hash"));
        assert!(problem("tls_server_config:\n  key_file: k\n").contains("cert_file is missing"));
        assert!(problem("tls_server_config:\n  cert_file: c\n").contains("key_file is missing"));
        assert!(
            problem("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Yes\n")
                .contains("is not one of NoClientCert")
        );
        assert!(
            problem(
                "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n"
            )
            .contains("set client_ca_file")
        );
        assert!(
            problem("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n")
                .contains("client_auth_type is NoClientCert")
        );
        assert!(
            problem("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS14\n")
                .contains("min_version: \"TLS14\"")
        );
        assert!(
            problem("tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [X]\n")
                .contains("cipher_suites is not supported")
        );
        assert!(
            problem("tls_server_config:\n  cert_fil: c\n").contains("unknown field `cert_fil`")
        );
        // Relative paths are the file's directory's, and named when they cannot be read.
        assert!(
            problem("tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n")
                .contains("cert_file /nonexistent/c.pem")
        );
    }
}
