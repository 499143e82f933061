//! `run` and `simulate --kafka` against the real broker's secured listeners, configured the way
//! a production cluster is (`scripts/kafka` makes them: SASL_SSL with SCRAM-SHA-512 and
//! SCRAM-SHA-256 under a private CA, SSL with client certificates required, and one with an
//! expired certificate; `SRV_OPR_TEST_KAFKA_TLS` names their material). The figures over TLS
//! equal a replay of the same events; each way a secured connection can be wrong fails at once
//! with its reason; and the password appears in no output at any log level.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::tls::SecuredListeners;
use crate::support::{create_topic, unique};

/// How the configuration gives the SASL password.
#[derive(Clone, Copy, PartialEq)]
enum Password<'a> {
    None,
    /// From `SRV_OPR_KAFKA_PASSWORD`, through `[kafka.secrets]`.
    Env,
    /// From this file, through `[kafka.secret_files]` (a mounted Kubernetes secret).
    File(&'a str),
}

/// A configuration directory whose `srv-opr.toml` points `run` at `brokers` with `properties`
/// and the password as `password` says.
fn config(dir: &Path, brokers: &str, topic: &str, properties: &[(&str, &str)], password: Password) {
    let mut toml = format!(
        "[kafka]\nbrokers = {brokers:?}\ntopics = [{topic:?}]\ngroup_id = {:?}\n\
         dead_letter_topic = {:?}\n\n[kafka.properties]\n",
        unique("tls-group"),
        format!("{topic}-dead")
    );
    for (k, v) in properties {
        toml.push_str(&format!("{k:?} = {v:?}\n"));
    }
    match password {
        Password::None => {}
        Password::Env => {
            toml.push_str("\n[kafka.secrets]\n\"sasl.password\" = \"SRV_OPR_KAFKA_PASSWORD\"\n")
        }
        Password::File(path) => toml.push_str(&format!(
            "\n[kafka.secret_files]\n\"sasl.password\" = {path:?}\n"
        )),
    }
    toml.push_str("\n[http]\nlisten = \"\"\n\n[state]\nurl = \"\"\n");
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/srv-opr.toml"), toml).unwrap();
}

fn srv(dir: &Path, args: &[&str], password: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srv-opr"))
        .args(args)
        .env("SRV_OPR_KAFKA_PASSWORD", password)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// No file under `dir` holds `secret`.
fn assert_no_file_holds(dir: &Path, secret: &str) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        let hit = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!hit, "{} holds the password", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Produces a simulated month over `listener` with `properties`, runs `run --until-caught-up`
/// over it, and checks the figures against a replay of the same events; returns everything the
/// commands printed.
fn round_trip(
    listener: &str,
    properties: &[(&str, &str)],
    produce_with: &[(&str, &str)],
) -> String {
    let tls = SecuredListeners::get();
    let topic = unique("tls");
    create_topic(&topic, 3);
    create_topic(&format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = [
        "simulate", "--month", "2024-03", "--rate", "0.005", "--seed", "17", "--bad", "0.01",
    ];
    let o = srv(d, &[&sim[..], &["--out", "events.jsonl"]].concat(), "");
    assert!(o.status.success(), "{}", text(&o));
    let secret = produce_with.iter().any(|(k, _)| *k == "sasl.username")
        || properties.iter().any(|(k, _)| *k == "sasl.username");
    // Produce with its own settings (SCRAM-SHA-256, say), then consume with the run's.
    let env = if secret {
        Password::Env
    } else {
        Password::None
    };
    config(d, tls.at(listener), &topic, produce_with, env);
    let mut all = String::new();
    let o = srv(
        d,
        &[
            &sim[..],
            &[
                "--kafka",
                tls.at(listener),
                "--topic",
                &topic,
                "--log",
                "debug",
            ],
        ]
        .concat(),
        &tls.password,
    );
    all.push_str(&text(&o));
    assert!(o.status.success(), "{}", text(&o));
    // `run` reads the same password from the broker's password file instead: the form a
    // Kubernetes secret mounted as a file takes (no variable is set for it).
    let file = if secret {
        Password::File(tls.at("PASSWORD_FILE"))
    } else {
        Password::None
    };
    config(d, tls.at(listener), &topic, properties, file);
    let o = srv(
        d,
        &[
            "--log",
            "debug",
            "run",
            "--until-caught-up",
            "--out",
            "run-out",
        ],
        "",
    );
    all.push_str(&text(&o));
    assert!(o.status.success(), "{}", text(&o));
    let o = srv(d, &["replay", "events.jsonl", "--out", "replay-out"], "");
    assert!(o.status.success(), "{}", text(&o));
    for f in ["rpl.csv", "failures.csv", "opr-inputs.csv"] {
        assert_eq!(
            std::fs::read_to_string(d.join("run-out").join(f)).unwrap(),
            std::fs::read_to_string(d.join("replay-out").join(f)).unwrap(),
            "{f}: run over {listener} equals the replay"
        );
    }
    if secret {
        assert!(!all.contains(&tls.password), "the password was printed");
        assert_no_file_holds(d, &tls.password);
    }
    all
}

fn sasl(mechanism: &'static str, user: &'static str, ca: &str) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "SASL_SSL".into()),
        ("sasl.mechanisms", mechanism.into()),
        ("sasl.username", user.into()),
        ("ssl.ca.location", ca.into()),
    ]
}

fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn run_over_sasl_ssl_with_scram_equals_the_replay_and_prints_no_secret() {
    let tls = SecuredListeners::get();
    let ca = tls.at("CA").to_string();
    let consume = sasl("SCRAM-SHA-512", "srv-opr", &ca);
    let mut produce = sasl("SCRAM-SHA-256", "srv-opr-256", &ca);
    // librdkafka at its most talkative about the security exchange.
    produce.push(("debug", "security,broker,protocol".into()));
    let mut consume_debug = consume.clone();
    consume_debug.push(("debug", "security,broker".into()));
    let all = round_trip("SASL_SSL", &refs(&consume_debug), &refs(&produce));
    assert!(
        all.contains("librdkafka"),
        "librdkafka's own logs were shown and checked"
    );
}

#[test]
fn run_over_mutual_tls_equals_the_replay() {
    let tls = SecuredListeners::get();
    let props = vec![
        ("security.protocol", "SSL".to_string()),
        ("ssl.ca.location", tls.at("CA").to_string()),
        (
            "ssl.certificate.location",
            tls.at("CLIENT_CERT").to_string(),
        ),
        ("ssl.key.location", tls.at("CLIENT_KEY").to_string()),
    ];
    round_trip("MTLS", &refs(&props), &refs(&props));
}

/// `run` with `properties` against `listener`: it must fail at once with exit 2, saying `why`.
fn run_fails(listener_or_host: &str, properties: &[(&str, &str)], password: &str, why: &[&str]) {
    let topic = unique("tls-bad");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secret = properties.iter().any(|(k, _)| *k == "sasl.username");
    let env = if secret {
        Password::Env
    } else {
        Password::None
    };
    config(d, listener_or_host, &topic, properties, env);
    let o = srv(
        d,
        &[
            "--log",
            "debug",
            "run",
            "--until-caught-up",
            "--out",
            "run-out",
        ],
        password,
    );
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    let last = String::from_utf8_lossy(&o.stderr)
        .lines()
        .rfind(|l| l.starts_with("srv-opr: error:"))
        .unwrap_or_default()
        .to_string();
    for w in why {
        assert!(last.contains(w), "{w:?} not in the reason: {last}");
    }
    assert!(
        !all.contains("no partition was assigned"),
        "failed at once, not after waiting for an assignment: {all}"
    );
    if !password.is_empty() {
        assert!(!all.contains(password), "the password was printed: {all}");
    }
}

#[test]
fn a_wrong_password_is_an_authentication_failure_named_as_such() {
    let tls = SecuredListeners::get();
    let props = sasl("SCRAM-SHA-512", "srv-opr", tls.at("CA"));
    run_fails(
        tls.at("SASL_SSL"),
        &refs(&props),
        "not-the-password-9f3e",
        &["authentication failed", "invalid credentials"],
    );
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let tls = SecuredListeners::get();
    let other = tempfile::tempdir().unwrap();
    let ca = other.path().join("other-ca.pem");
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=another CA", "-keyout"])
        .arg(other.path().join("other.key"))
        .arg("-out")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(o.status.success());
    let props = sasl("SCRAM-SHA-512", "srv-opr", ca.to_str().unwrap());
    run_fails(
        tls.at("SASL_SSL"),
        &refs(&props),
        &tls.password,
        &["TLS with Kafka", "unable to get local issuer certificate"],
    );
}

#[test]
fn an_expired_server_certificate_is_refused() {
    let tls = SecuredListeners::get();
    let props = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", tls.at("CA")),
    ];
    run_fails(tls.at("EXPIRED"), &props, "", &["certificate has expired"]);
}

#[test]
fn a_certificate_for_another_host_is_refused() {
    let tls = SecuredListeners::get();
    // The certificate is for DNS:localhost; 127.0.0.1 is the same broker under another name.
    let listener = tls.at("SASL_SSL").replace("localhost", "127.0.0.1");
    let props = sasl("SCRAM-SHA-512", "srv-opr", tls.at("CA"));
    run_fails(&listener, &refs(&props), &tls.password, &["mismatch"]);
}

#[test]
fn a_missing_client_certificate_is_named() {
    let tls = SecuredListeners::get();
    let props = [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", tls.at("CA")),
    ];
    run_fails(
        tls.at("MTLS"),
        &props,
        "",
        &[
            "refused this client's certificate",
            "ssl.certificate.location",
        ],
    );
}

#[test]
fn a_misspelt_secret_property_is_refused_without_its_value() {
    let tls = SecuredListeners::get();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let topic = unique("tls-typo");
    config(d, tls.at("SASL_SSL"), &topic, &[], Password::None);
    let toml = d.join("config/srv-opr.toml");
    let text_now = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        format!("{text_now}\n[kafka.secrets]\n\"sasl.pasword\" = \"SRV_OPR_KAFKA_PASSWORD\"\n"),
    )
    .unwrap();
    let o = srv(d, &["run", "--until-caught-up"], &tls.password);
    let all = text(&o);
    assert!(!o.status.success(), "{all}");
    assert!(all.contains("sasl.pasword"), "the property is named: {all}");
    assert!(
        !all.contains(&tls.password),
        "the password was printed: {all}"
    );
}

/// `srv-opr check` (issue 33) against the SASL_SSL listener: with the right password every
/// connection works (exit 0, one line each, the password nowhere); with a wrong one the brokers'
/// line says the authentication failed, and a topic that does not exist is named, not created.
#[test]
fn check_tries_each_connection_and_says_which_fails_and_why() {
    let tls = SecuredListeners::get();
    let topic = unique("check");
    create_topic(&topic, 3);
    create_topic(&format!("{topic}-dead"), 1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let props = sasl("SCRAM-SHA-512", "srv-opr", tls.at("CA"));
    config(d, tls.at("SASL_SSL"), &topic, &refs(&props), Password::Env);
    let o = srv(d, &["check"], &tls.password);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ok    kafka brokers localhost:")
            && out.contains("(SASL_SSL as srv-opr): connected, authenticated")
            && out.contains(&format!("ok    kafka events topic {topic}: 3 partitions"))
            && out.contains(&format!(
                "ok    kafka dead-letter topic {topic}-dead: 1 partition"
            ))
            && out.contains("all 4 connections work"),
        "{out}"
    );
    assert!(!all.contains(&tls.password), "the password was printed");

    let o = srv(d, &["check"], "not-the-password-77aa");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let brokers = out.lines().next().unwrap_or_default();
    assert!(
        brokers.starts_with("FAIL  kafka brokers") && brokers.contains("authentication failed"),
        "{out}"
    );
    assert!(!text(&o).contains("not-the-password-77aa"));

    // A topic that does not exist: named, and still not there afterwards.
    let missing = unique("check-missing");
    config(
        d,
        tls.at("SASL_SSL"),
        &missing,
        &refs(&props),
        Password::Env,
    );
    let o = srv(d, &["check"], &tls.password);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "FAIL  kafka events topic {missing}: UnknownTopicOrPartition"
        )),
        "{out}"
    );
    let o = srv(d, &["check"], &tls.password);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&format!("FAIL  kafka events topic {missing}")),
        "checking did not create it"
    );
}
