//! The PostgreSQL store over TLS, against the scratch server `scripts/postgres` starts the way
//! production ones run: `ssl = on` and a `hostssl`-only `pg_hba.conf`, its certificate for
//! DNS:localhost only from a CA of its own. Every other PostgreSQL test (checkpoints, fencing,
//! three instances) connects to it with `verify-full` too; these check each refusal.

use srv_opr::config::Config;
use srv_opr::store::{Identity, StoreError};

use crate::support::fresh_postgres_database;

/// Opens the store at `url` as `run` does (making it in a fresh database).
fn open(url: &str) -> Result<(), StoreError> {
    let cfg = Config::builtin().unwrap();
    let id = Identity::of_run(&cfg, false);
    srv_opr::store::open(url, None, &id, &cfg.definitions).map(|_| ())
}

/// The URL with its `sslmode` and `sslrootcert` replaced, or its host.
fn with(url: &str, from: &str, to: &str) -> String {
    assert!(url.contains(from), "{url} has no {from}");
    url.replace(from, to)
}

fn refused(url: &str, why: &[&str]) {
    let e = match open(url) {
        Ok(()) => panic!("{url} was accepted"),
        Err(e) => srv_opr::diagnostic::chain(&e),
    };
    for w in why {
        assert!(e.contains(w), "{w:?} not in: {e}");
    }
}

#[test]
fn verify_full_connects_with_the_right_ca_and_host() {
    let url = fresh_postgres_database();
    assert!(url.contains("sslmode=verify-full"), "{url}");
    // A reader (rollup, report) makes nothing: a database `run` never wrote is no store.
    let cfg = Config::builtin().unwrap();
    let read = || srv_opr::store::open(&url, None, &Identity::reader(&cfg), &cfg.definitions);
    match read() {
        Err(StoreError::Absent(m)) => assert!(m.contains("holds no srv-opr state store"), "{m}"),
        Err(e) => panic!("not absent: {e}"),
        Ok(_) => panic!("a reader found a store in an empty database"),
    }
    open(&url).unwrap();
    read().unwrap();
}

#[test]
fn a_certificate_for_another_host_is_refused_unless_only_the_ca_is_checked() {
    let url = fresh_postgres_database();
    // The server's certificate is for DNS:localhost; 127.0.0.1 is the same server by another name.
    let other_host = with(&url, "@localhost:", "@127.0.0.1:");
    refused(&other_host, &["verify-full", "certificate verify failed"]);
    open(&with(
        &other_host,
        "sslmode=verify-full",
        "sslmode=verify-ca",
    ))
    .unwrap();
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let url = fresh_postgres_database();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("other-ca.pem");
    let o = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=another CA", "-keyout"])
        .arg(dir.path().join("other.key"))
        .arg("-out")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(o.status.success());
    let start = url.find("sslrootcert=").unwrap() + "sslrootcert=".len();
    let end = url[start..].find('&').map_or(url.len(), |e| start + e);
    let other = format!("{}{}{}", &url[..start], ca.display(), &url[end..]);
    refused(&other, &["certificate verify failed"]);
}

#[test]
fn a_plaintext_attempt_is_refused_by_the_server() {
    let url = fresh_postgres_database();
    let plain = with(&url, "sslmode=verify-full", "sslmode=disable");
    refused(&plain, &["pg_hba.conf", "no encryption"]);
}

#[test]
fn a_mode_libpq_does_not_know_is_refused() {
    let url = fresh_postgres_database();
    refused(
        &with(&url, "sslmode=verify-full", "sslmode=verify-everything"),
        &["sslmode \"verify-everything\""],
    );
}
