//! The PostgreSQL connection's TLS, with libpq's `sslmode` meanings over OpenSSL (the
//! `postgres` crate knows only disable, prefer and require, and verifies nothing itself):
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` | if the server offers it | not checked |
//! | `require` | always | not checked (checked against `sslrootcert` when one is given, as libpq does) |
//! | `verify-ca` | always | signed by `sslrootcert` (else the system's CAs) |
//! | `verify-full` | always | as `verify-ca`, and for the host connected to |
//!
//! The mode and files come from the URL's query (`?sslmode=verify-full&sslrootcert=…`, libpq's
//! names) or, where the URL says nothing, from `[state]` (`sslmode`, `sslrootcert`, `sslcert`,
//! `sslkey`). The default is `verify-full`: certificates are verified unless told otherwise.

use std::path::PathBuf;

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use postgres::Client;
use postgres_openssl::MakeTlsConnector;

use super::error::StoreError;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext.
    Disable,
    /// TLS when the server offers it, unverified.
    Prefer,
    /// TLS, unverified.
    Require,
    /// TLS, the chain verified.
    VerifyCa,
    /// TLS, the chain and the host verified.
    VerifyFull,
}

impl SslMode {
    /// From libpq's name.
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// How to secure one PostgreSQL connection. The default verifies the server fully against the
/// system's CAs.
#[derive(Debug, Clone)]
pub struct PgTls {
    /// The mode.
    pub mode: SslMode,
    /// CA certificates to verify the server with (`sslrootcert`).
    pub root_cert: Option<PathBuf>,
    /// A client certificate to present (`sslcert`).
    pub cert: Option<PathBuf>,
    /// Its private key (`sslkey`).
    pub key: Option<PathBuf>,
}

impl Default for PgTls {
    fn default() -> PgTls {
        PgTls {
            mode: SslMode::VerifyFull,
            root_cert: None,
            cert: None,
            key: None,
        }
    }
}

impl PgTls {
    /// The `[state]` keys' TLS (an empty path is none; a mode `config` has validated).
    pub(crate) fn of_settings(s: &crate::config::settings::StateSettings) -> PgTls {
        let path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
        PgTls {
            mode: SslMode::parse(&s.sslmode).unwrap_or(SslMode::VerifyFull),
            root_cert: path(&s.sslrootcert),
            cert: path(&s.sslcert),
            key: path(&s.sslkey),
        }
    }

    /// The URL without its TLS parameters (for the `postgres` crate), and the TLS they and
    /// `defaults` (the `[state]` keys) ask for.
    pub fn split(url: &str, defaults: &PgTls) -> Result<(String, PgTls), StoreError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut tls = defaults.clone();
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => {
                    tls.mode = SslMode::parse(v).ok_or_else(|| {
                        StoreError::Refused(format!(
                            "state.url: sslmode {v:?} is not disable, prefer, require, verify-ca \
                             or verify-full"
                        ))
                    })?;
                }
                "sslrootcert" => tls.root_cert = Some(PathBuf::from(v)),
                "sslcert" => tls.cert = Some(PathBuf::from(v)),
                "sslkey" => tls.key = Some(PathBuf::from(v)),
                _ => rest.push(pair),
            }
        }
        let url = if rest.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        Ok((url, tls))
    }

    /// `sslmode=verify-full, sslrootcert=…`: what this connection asked for, for messages.
    pub fn describe(&self) -> String {
        let mode = match self.mode {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        };
        match &self.root_cert {
            Some(ca) => format!("sslmode={mode}, sslrootcert={}", ca.display()),
            None => format!("sslmode={mode}"),
        }
    }

    /// Connects `config` with this TLS.
    pub(crate) fn connect(&self, config: &mut postgres::Config) -> Result<Client, TlsError> {
        if self.mode == SslMode::Disable {
            config.ssl_mode(postgres::config::SslMode::Disable);
            return Ok(config.connect(postgres::NoTls)?);
        }
        let verify_chain = match self.mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            // libpq: `require` with a root certificate verifies the chain.
            SslMode::Require => self.root_cert.is_some(),
            _ => false,
        };
        let verify_host = self.mode == SslMode::VerifyFull;
        let mut b = SslConnector::builder(SslMethod::tls_client())?;
        if verify_chain {
            if let Some(ca) = &self.root_cert {
                b.set_ca_file(ca).map_err(|e| TlsError::File {
                    what: "sslrootcert",
                    path: ca.clone(),
                    source: e,
                })?;
            }
            b.set_verify(SslVerifyMode::PEER);
        } else {
            b.set_verify(SslVerifyMode::NONE);
        }
        if let Some(cert) = &self.cert {
            b.set_certificate_chain_file(cert)
                .map_err(|e| TlsError::File {
                    what: "sslcert",
                    path: cert.clone(),
                    source: e,
                })?;
            let key = self.key.as_ref().ok_or(TlsError::NoKey)?;
            b.set_private_key_file(key, SslFiletype::PEM)
                .map_err(|e| TlsError::File {
                    what: "sslkey",
                    path: key.clone(),
                    source: e,
                })?;
        }
        let mut connector = MakeTlsConnector::new(b.build());
        connector.set_callback(move |c, _host| {
            c.set_verify_hostname(verify_host);
            Ok(())
        });
        config.ssl_mode(if self.mode == SslMode::Prefer {
            postgres::config::SslMode::Prefer
        } else {
            postgres::config::SslMode::Require
        });
        Ok(config.connect(connector)?)
    }
}

/// A client for `url`, TLS as its query says (`verify-full` when it says nothing): for tools
/// and tests that need the database itself.
pub fn client(url: &str) -> Result<Client, StoreError> {
    let (bare, tls) = PgTls::split(url, &PgTls::default())?;
    let mut config: postgres::Config = bare
        .parse()
        .map_err(|e| StoreError::Refused(format!("not a PostgreSQL URL: {e}")))?;
    tls.connect(&mut config)
        .map_err(|e| StoreError::Backend(crate::diagnostic::chain(&e)))
}

/// `url` with its database replaced by `db`, its query kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    format!("{server}/{db}{query}")
}

/// Why a secured connection could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    /// A certificate or key file could not be used.
    #[error("{what} {}", path.display())]
    File {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// OpenSSL's reason.
        #[source]
        source: openssl::error::ErrorStack,
    },
    /// `sslcert` without `sslkey`.
    #[error("sslcert is set but sslkey is not")]
    NoKey,
    /// OpenSSL could not be set up.
    #[error("TLS set-up")]
    Setup(#[from] openssl::error::ErrorStack),
    /// The connection failed (the server refused it, or its certificate failed verification).
    #[error(transparent)]
    Connect(#[from] postgres::Error),
}
