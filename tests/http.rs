//! The HTTP endpoint as clients see it, over real sockets: HEAD, 405 with `Allow`, keep-alive;
//! with an exporter-toolkit web configuration, TLS verified by the client, basic auth (401 with
//! `WWW-Authenticate`, probes exempt), client certificates required and verified, and a change
//! of the file taking effect without a restart (a broken one keeping the last good); the
//! Alertmanager webhook producing into the real broker, and refusing what it cannot take.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use srv_opr::config::Config;
use srv_opr::ops::http::{HttpServer, routes::Routes, serve};
use srv_opr::ops::live::Live;
use srv_opr::ops::metrics::Metrics;

use crate::support::tls::{Pki, bcrypt, https_get, https_get_as};

fn server(web: Option<&Path>) -> HttpServer {
    server_with(web, None)
}

/// [`server`], with the Alertmanager webhook producing through `intake`.
fn server_with(
    web: Option<&Path>,
    intake: Option<Arc<dyn srv_opr::ops::webhook::Intake>>,
) -> HttpServer {
    let cfg = Config::builtin().unwrap();
    let live = Arc::new(Live::new(Duration::from_secs(30)));
    let metrics = Arc::new(
        Metrics::new(
            Arc::new(cfg.definitions.clone()),
            srv_opr::engine::calendar::Calendar::new(&cfg.settings.time.zone).unwrap(),
            live.clone(),
            false,
            None,
        )
        .unwrap(),
    );
    let routes = Routes {
        metrics,
        live,
        max_lag: 1000,
        status: None,
        intake,
    };
    serve("127.0.0.1:0", web, routes).unwrap()
}

/// Sends `request` raw and reads until the server closes or `until` is seen: what came back.
fn raw(addr: &str, request: &str, until: &str) -> String {
    raw_within(addr, request, until, Duration::from_secs(5))
}

/// [`raw`], waiting up to `wait` for each read.
fn raw_within(addr: &str, request: &str, until: &str, wait: Duration) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait * 2;
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if !until.is_empty() && String::from_utf8_lossy(&got).contains(until) {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn head_has_no_body_405_names_the_allowed_methods_and_connections_are_kept_alive() {
    let s = server(None);
    assert!(s.url().starts_with("http://127.0.0.1:"));
    let addr = s.addr.to_string();

    let head = raw(
        &addr,
        "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (headers, body) = head.split_once("\r\n\r\n").unwrap();
    assert!(body.is_empty(), "HEAD sent a body of {} bytes", body.len());
    let length: usize = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(String::from)
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("HEAD carries the GET's Content-Length");
    assert!(length > 1000, "{headers}");

    let post = raw(
        &addr,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(
        post.to_ascii_lowercase()
            .contains("\r\nallow: get, head\r\n"),
        "{post}"
    );

    // Two requests on one connection: the second is answered too.
    let two = raw(
        &addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
        "not found\n",
    );
    assert!(two.starts_with("HTTP/1.1 200"), "{two}");
    assert!(two.contains("HTTP/1.1 404"), "{two}");

    let garbage = raw(&addr, "\u{1}\u{2}nonsense\r\n\r\n", "");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
}

#[test]
fn tls_and_basic_auth_from_an_exporter_toolkit_web_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::create(d, "web");
    // Relative paths are the file's directory's, as in exporter-toolkit.
    std::fs::write(
        d.join("web.yml"),
        format!(
            "tls_server_config:\n  cert_file: web-server.pem\n  key_file: web-server.key\n  \
             min_version: TLS12\nhttp_server_config:\n  headers:\n    \
             Strict-Transport-Security: max-age=31536000\nbasic_auth_users:\n  prometheus: '{}'\n",
            bcrypt("scrape-pass-7")
        ),
    )
    .unwrap();
    let s = server(Some(&d.join("web.yml")));
    let base = format!("https://localhost:{}", s.addr.port());
    assert_eq!(s.url(), format!("https://127.0.0.1:{}", s.addr.port()));

    let (status, body) = https_get(
        &format!("{base}/metrics"),
        &pki.ca,
        Some(("prometheus", "scrape-pass-7")),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("# TYPE srv_events_total counter"), "{body}");
    for auth in [
        None,
        Some(("prometheus", "wrong")),
        Some(("nobody", "scrape-pass-7")),
    ] {
        let (status, body) = https_get(&format!("{base}/metrics"), &pki.ca, auth);
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert!(!body.contains("srv_events_total"), "{body}");
    }
    // The probes answer without credentials (TLS still applies).
    assert_eq!(https_get(&format!("{base}/healthz"), &pki.ca, None).0, 200);
    assert_eq!(https_get(&format!("{base}/readyz"), &pki.ca, None).0, 503);

    // The raw answers: WWW-Authenticate on a 401, the configured header on every answer.
    let raw_tls = |path: &str| {
        let o = std::process::Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-connect",
                &format!("127.0.0.1:{}", s.addr.port()),
                "-servername",
                "localhost",
                "-CAfile",
            ])
            .arg(&pki.ca)
            .args(["-verify_return_error", "-verify_hostname", "localhost"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut o = o;
        o.stdin
            .take()
            .unwrap()
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        let out = o.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    let denied = raw_tls("/metrics");
    assert!(denied.starts_with("http/1.1 401"), "{denied}");
    assert!(
        denied.contains("\r\nwww-authenticate: basic realm=\"srv-opr\""),
        "{denied}"
    );
    assert!(
        denied.contains("\r\nstrict-transport-security: max-age=31536000"),
        "{denied}"
    );

    // Plain HTTP to the TLS port gets no answer.
    let plain = crate::support::http_get(&s.addr.to_string(), "/metrics");
    assert_ne!(plain.0, 200, "plain HTTP was served");
    // A client that trusts another CA refuses the server.
    let other = Pki::create(d, "other");
    let (status, err) = https_get(&format!("{base}/healthz"), &other.ca, None);
    assert_eq!(status, 0, "{err}");
}

#[test]
fn client_certificates_are_required_and_verified_when_the_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = Pki::create(d, "mtls");
    let stranger = Pki::create(d, "stranger");
    let web = d.join("web.yml");
    let config = |auth: &str| {
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_ca_file: {}\n  \
             client_auth_type: {auth}\n",
            pki.server_cert.display(),
            pki.server_key.display(),
            pki.ca.display()
        )
    };
    std::fs::write(&web, config("RequireAndVerifyClientCert")).unwrap();
    let s = server(Some(&web));
    let url = format!("https://localhost:{}/metrics", s.addr.port());
    let ours = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    let theirs = Some((
        stranger.client_cert.as_path(),
        stranger.client_key.as_path(),
    ));
    assert_eq!(https_get_as(&url, &pki.ca, ours, None).0, 200);
    assert_eq!(
        https_get_as(&url, &pki.ca, None, None).0,
        0,
        "no certificate"
    );
    assert_eq!(
        https_get_as(&url, &pki.ca, theirs, None).0,
        0,
        "a certificate from another CA"
    );

    // The file changes: certificates become optional. The next connections see it, with no
    // restart (the files are looked at once a second at most).
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&web, config("VerifyClientCertIfGiven")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while https_get_as(&url, &pki.ca, None, None).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the changed web configuration was not read"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        https_get_as(&url, &pki.ca, theirs, None).0,
        0,
        "still verified when given"
    );

    // A broken file is refused and the last good one kept.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&web, "tls_server_config:\n  cert_file: [not, a, path\n").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(https_get_as(&url, &pki.ca, None, None).0, 200);
}

#[test]
fn a_web_config_that_does_not_load_stops_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: absent.pem\n  key_file: absent.key\n",
    )
    .unwrap();
    let cfg = Config::builtin().unwrap();
    let live = Arc::new(Live::new(Duration::from_secs(30)));
    let metrics = Arc::new(
        Metrics::new(
            Arc::new(cfg.definitions.clone()),
            srv_opr::engine::calendar::Calendar::new(&cfg.settings.time.zone).unwrap(),
            live.clone(),
            false,
            None,
        )
        .unwrap(),
    );
    let routes = Routes {
        metrics,
        live,
        max_lag: 1,
        status: None,
        intake: None,
    };
    let e = match serve("127.0.0.1:0", Some(&web), routes) {
        Ok(_) => panic!("served with certificate files that do not exist"),
        Err(e) => srv_opr::diagnostic::chain(&e),
    };
    assert!(
        e.contains(&format!("http.web_config_file {}", web.display())),
        "{e}"
    );
    assert!(e.contains("cert_file") && e.contains("absent.pem"), "{e}");
}

#[test]
fn a_crowd_of_idle_connections_never_shuts_out_health_probes_and_scrapes() {
    // 600 idle connections once held all 256 places for their 10 s header timeout: /healthz and
    // /metrics went unanswered (a scrape took 9 s with 300), and a liveness probe would have
    // restarted a healthy pod.
    let s = server(None);
    let addr = s.addr.to_string();
    let mut crowd: Vec<std::net::TcpStream> = (0..600)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // A hundred of them send half a request head and stop (slowloris).
    for c in crowd.iter_mut().take(100) {
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
    }
    for round in 0..3 {
        for path in ["/healthz", "/metrics", "/readyz"] {
            let got = raw(
                &addr,
                &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
                "",
            );
            let want = if path == "/readyz" {
                "HTTP/1.1 503"
            } else {
                "HTTP/1.1 200"
            };
            assert!(got.starts_with(want), "round {round}, {path}: {got:?}");
        }
    }
    drop(crowd);
}

#[test]
fn a_flood_of_wrong_passwords_is_checked_one_at_a_time_and_never_shuts_out_the_scraper() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    // Cost 10, what `htpasswd -B` makes: tens of milliseconds a check.
    let hash = bcrypt::hash("scrape-pw", 10).unwrap();
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    let s = server(Some(&web));
    let addr = s.addr.to_string();
    let get = |user: &str, pw: &str| {
        let token = openssl::base64::encode_block(format!("{user}:{pw}").as_bytes());
        raw(
            &addr,
            &format!(
                "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\
                 Connection: close\r\n\r\n"
            ),
            "\r\n\r\n",
        )
    };
    assert!(get("prometheus", "scrape-pw").starts_with("HTTP/1.1 200"));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (denied, busy) = (
        Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        Arc::new(std::sync::atomic::AtomicUsize::new(0)),
    );
    // 64 guessers, each a new password every request.
    let guessers: Vec<_> = (0..64)
        .map(|g| {
            let (addr, stop, denied, busy) =
                (addr.clone(), stop.clone(), denied.clone(), busy.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let token = openssl::base64::encode_block(
                        format!("prometheus:guess-{g}-{i}").as_bytes(),
                    );
                    let got = raw(
                        &addr,
                        &format!(
                            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\
                             Connection: close\r\n\r\n"
                        ),
                        "\r\n\r\n",
                    );
                    if got.starts_with("HTTP/1.1 401") {
                        denied.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else if got.starts_with("HTTP/1.1 429") {
                        assert!(
                            got.contains("Retry-After: 1") || got.contains("retry-after: 1"),
                            "{got}"
                        );
                        busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    // Meanwhile the scraper, whose password passed before, and the probes are answered.
    let until = Instant::now() + Duration::from_secs(4);
    let mut scrapes = 0;
    while Instant::now() < until {
        let got = get("prometheus", "scrape-pw");
        assert!(
            got.starts_with("HTTP/1.1 200"),
            "the scraper during the flood: {got:?}"
        );
        let probe = raw(
            &addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "",
        );
        assert!(probe.starts_with("HTTP/1.1 200"), "{probe:?}");
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for g in guessers {
        g.join().unwrap();
    }
    let (denied, busy) = (
        denied.load(std::sync::atomic::Ordering::Relaxed),
        busy.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(scrapes > 0);
    // The checks wait their turn: 64 guessers against one check at a time fill the queue, and
    // the rest are told to come back rather than given a thread each.
    assert!(denied > 0, "no guess was checked");
    assert!(
        busy > 0,
        "the queue never filled: {denied} checked, none turned away"
    );
}

/// A POST of `body` to `path`, raw: the whole answer (which may wait for a broker).
fn post(addr: &str, path: &str, body: &str) -> String {
    raw_within(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        "",
        Duration::from_secs(20),
    )
}

/// Alertmanager's webhook, against the real broker: a notification's alerts with an
/// `interface` label are produced into the availability topic, keyed by interface on the
/// key's murmur2 partition, and only then answered 200; one without is left alone. What cannot
/// be read is 400 (Alertmanager would send it again in vain), too large 413, the wrong method
/// 405; a broker that cannot be reached is 503, so Alertmanager sends it again.
#[test]
fn the_alertmanager_webhook_answers_once_the_broker_holds_its_events() {
    use crate::support::{brokers, create_topic, read_topic, unique};
    use srv_opr::kafka::intake::AvailabilityIntake;
    use srv_opr::kafka::partition::partition_of;
    use srv_opr::ops::webhook::PATH;

    let topic = unique("webhook");
    create_topic(&topic, 3);
    let mut cfg = Config::builtin().unwrap();
    cfg.settings.kafka.brokers = brokers();
    cfg.settings.kafka.topics = vec![topic.clone()];
    let intake = AvailabilityIntake::new(&cfg).unwrap();
    let s = server_with(None, Some(Arc::new(intake)));
    let addr = s.addr.to_string();

    let notification = r#"{"receiver":"srv-opr","status":"firing","version":"4","alerts":[
        {"status":"firing","labels":{"alertname":"DuisDown","interface":"DUIS"},
         "annotations":{"incident":"INC000001065262"},
         "startsAt":"2026-12-07T09:12:00.5Z","endsAt":"0001-01-01T00:00:00Z"},
        {"status":"resolved","labels":{"alertname":"SsiDown","interface":"SSI"},"annotations":{},
         "startsAt":"2026-12-07T08:00:00Z","endsAt":"2026-12-07T09:00:00Z"},
        {"status":"firing","labels":{"alertname":"DiskFull"},"annotations":{},
         "startsAt":"2026-12-07T08:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]}"#;
    let answer = post(&addr, PATH, notification);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(&format!("2 availability events produced to {topic}")),
        "{answer}"
    );
    let mut got = read_topic(&topic, 3, 2);
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(got.len(), 2, "{got:?}");
    let (partition, key, payload) = &got[0];
    assert_eq!(key.as_deref(), Some(&b"DUIS"[..]));
    assert_eq!(*partition, partition_of(b"DUIS", 3));
    let event: serde_json::Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(
        event,
        serde_json::json!({"type": "availability", "interface": "DUIS", "state": "down",
            "at": "2026-12-07T09:12:00.5Z", "incident": "INC000001065262"})
    );
    let (partition, key, payload) = &got[1];
    assert_eq!(key.as_deref(), Some(&b"SSI"[..]));
    assert_eq!(*partition, partition_of(b"SSI", 3));
    let event: serde_json::Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(
        event,
        serde_json::json!({"type": "availability", "interface": "SSI", "state": "up",
            "at": "2026-12-07T09:00:00Z"})
    );

    let bad = post(
        &addr,
        PATH,
        r#"{"alerts":[{"status":"pending","labels":{"interface":"RDI"}}]}"#,
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    assert!(
        bad.contains("has status \"pending\", not firing or resolved"),
        "{bad}"
    );
    let get = raw(
        &addr,
        &format!("GET {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        "",
    );
    assert!(get.starts_with("HTTP/1.1 405"), "{get}");
    assert!(
        get.to_ascii_lowercase().contains("\r\nallow: post\r\n"),
        "{get}"
    );
    // More than 4 MiB announced: refused before any of it is read.
    let big = raw(
        &addr,
        &format!("POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n"),
        "\r\n\r\n",
    );
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");

    // Counted by outcome on /metrics.
    let metrics = raw(
        &addr,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "",
    );
    for (outcome, n) in [("stored", 1), ("refused", 2)] {
        assert!(
            metrics.contains(&format!(
                "srv_availability_webhook_notifications_total{{outcome=\"{outcome}\"}} {n}"
            )),
            "{outcome}: {metrics}"
        );
    }

    // A broker that cannot be reached: 503 (after the delivery timeout), never 200.
    let mut down = Config::builtin().unwrap();
    down.settings.kafka.brokers = "127.0.0.1:1".into();
    down.settings.kafka.topics = vec![topic.clone()];
    let s = server_with(
        None,
        Some(Arc::new(AvailabilityIntake::new(&down).unwrap())),
    );
    let answer = post(&s.addr.to_string(), PATH, notification);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("not stored, send again"), "{answer}");
    let metrics = raw(
        &s.addr.to_string(),
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "",
    );
    assert!(
        metrics.contains("srv_availability_webhook_notifications_total{outcome=\"unavailable\"} 1"),
        "{metrics}"
    );

    // Without an intake (the demo, or http.alertmanager_webhook = false): 404.
    let s = server(None);
    let answer = post(&s.addr.to_string(), PATH, notification);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}
