//! TLS material made at test time with the `openssl` command (a CA of the test's own, a server
//! certificate for `localhost` and 127.0.0.1, a client certificate), and an HTTPS GET that
//! verifies the server against that CA.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files one [`Pki::create`] wrote.
pub struct Pki {
    /// The CA's certificate (PEM).
    pub ca: PathBuf,
    /// The server's certificate (DNS:localhost, IP:127.0.0.1) and key.
    pub server_cert: PathBuf,
    /// The server's key (PKCS#8).
    pub server_key: PathBuf,
    /// A client certificate (CN=srv-opr) from the same CA, and its key.
    pub client_cert: PathBuf,
    /// The client's key (PKCS#8).
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Pki {
    /// Makes a fresh CA and the certificates it signs in `dir`, named `{prefix}-….pem`.
    pub fn create(dir: &Path, prefix: &str) -> Pki {
        let f = |n: &str| format!("{prefix}-{n}");
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={prefix} test CA"),
                "-keyout",
                &f("ca.key"),
                "-out",
                &f("ca.pem"),
            ],
        );
        for (name, subject, ext) in [
            (
                "server",
                "/CN=localhost",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ),
            ("client", "/CN=srv-opr", "extendedKeyUsage=clientAuth"),
        ] {
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    subject,
                    "-keyout",
                    &f(&format!("{name}.key")),
                    "-out",
                    &f(&format!("{name}.csr")),
                ],
            );
            std::fs::write(dir.join(f(&format!("{name}.ext"))), format!("{ext}\n")).unwrap();
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &f(&format!("{name}.csr")),
                    "-CA",
                    &f("ca.pem"),
                    "-CAkey",
                    &f("ca.key"),
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &f(&format!("{name}.ext")),
                    "-out",
                    &f(&format!("{name}.pem")),
                ],
            );
        }
        Pki {
            ca: dir.join(f("ca.pem")),
            server_cert: dir.join(f("server.pem")),
            server_key: dir.join(f("server.key")),
            client_cert: dir.join(f("client.pem")),
            client_key: dir.join(f("client.key")),
        }
    }
}

/// A bcrypt hash of `password`, as web configuration files hold them (low cost: a test).
pub fn bcrypt(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// A GET of `url` over HTTPS verified against `ca`, with basic auth if given: status and body
/// (status 0 and the error's text when no answer came).
pub fn https_get(url: &str, ca: &Path, auth: Option<(&str, &str)>) -> (u16, String) {
    https_get_as(url, ca, None, auth)
}

/// [`https_get`] presenting a client certificate and key (`client`).
pub fn https_get_as(
    url: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    auth: Option<(&str, &str)>,
) -> (u16, String) {
    use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
    let pem = std::fs::read(ca).unwrap();
    let client = client.map(|(cert, key)| {
        let cert = Certificate::from_pem(&std::fs::read(cert).unwrap()).unwrap();
        let key = PrivateKey::from_pem(&std::fs::read(key).unwrap()).unwrap();
        ClientCert::new_with_certs(&[cert], key)
    });
    let tls = TlsConfig::builder()
        .provider(TlsProvider::NativeTls)
        .root_certs(RootCerts::new_with_certs(&[
            Certificate::from_pem(&pem).unwrap()
        ]))
        .client_cert(client)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let mut req = agent.get(url);
    if let Some((u, p)) = auth {
        let token = openssl::base64::encode_block(format!("{u}:{p}").as_bytes());
        req = req.header("Authorization", format!("Basic {token}"));
    }
    match req.call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

/// The test broker's secured listeners and their material, from the file `scripts/kafka tls-env`
/// names.
pub struct SecuredListeners {
    env: std::collections::BTreeMap<String, String>,
    /// The SCRAM users' password.
    pub password: String,
}

impl SecuredListeners {
    /// Read from `SRV_OPR_TEST_KAFKA_TLS`; never silently absent.
    pub fn get() -> SecuredListeners {
        let path = std::env::var("SRV_OPR_TEST_KAFKA_TLS").unwrap_or_else(|_| {
            panic!(
                "SRV_OPR_TEST_KAFKA_TLS is not set: run scripts/test (it starts the broker and \
                 names its TLS material), or export it from `scripts/kafka tls-env`"
            )
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let env: std::collections::BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let password = std::fs::read_to_string(&env["PASSWORD_FILE"])
            .unwrap()
            .trim()
            .to_string();
        SecuredListeners { env, password }
    }

    /// A listener's address or a file of its material (`SASL_SSL`, `CA`, `PASSWORD_FILE`, …).
    pub fn at(&self, key: &str) -> &str {
        &self.env[key]
    }
}

/// Every file under `dir`, recursively (links are not followed), for tests that look for a
/// secret in whatever a command left behind.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(files_under(&e.path()));
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    out
}
