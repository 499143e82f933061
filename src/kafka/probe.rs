//! Before a client is trusted with a run: can it reach the brokers, agree on TLS and
//! authenticate? librdkafka retries a wrong password or an untrusted certificate for ever, as it
//! retries an outage, so without this a misconfigured `run` would wait for an assignment that
//! never comes and say nothing useful. A probe client with the same configuration asks for the
//! cluster's metadata for a few seconds: an authentication or TLS failure stops the command at
//! once with the reason (and, for a certificate, which check failed); a broker that is merely
//! unreachable is left to librdkafka's retries, as before.

use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError as RdError;
use rdkafka::producer::{BaseProducer, NoCustomPartitioner, Producer, ProducerContext};

use super::KafkaError;
use crate::diagnostic::redact;
use crate::ops::health::{Trouble, classify};

/// How long the probe waits for metadata before leaving an unreachable cluster to librdkafka.
const PROBE_FOR: Duration = Duration::from_secs(10);

/// Records what librdkafka reports while probing.
#[derive(Default)]
struct Probe {
    failure: Mutex<Option<Failure>>,
}

/// A failure retrying cannot mend.
#[derive(Debug, Clone)]
enum Failure {
    Authentication(String),
    Tls(String),
}

impl ClientContext for Probe {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // The probe's own connection attempts: only for a person debugging them.
        if matches!(level, RDKafkaLogLevel::Debug) {
            super::client::log(level, fac, message);
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        // The same reading of an error as the running client's health (ops::health).
        let failure = match classify(error.rdkafka_error_code(), reason) {
            Some(Trouble::Authentication) => Some(Failure::Authentication(redact(reason))),
            Some(Trouble::Tls) => Some(Failure::Tls(redact(reason))),
            Some(Trouble::Unreachable) | None => None,
        };
        if let Some(f) = failure
            && let Ok(mut slot) = self.failure.lock()
        {
            slot.get_or_insert(f);
        }
    }
}

impl ProducerContext for Probe {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// Probes the brokers `cc` names with `cc`'s security settings. `Ok(true)` once metadata comes
/// back, `Ok(false)` after [`PROBE_FOR`] without a definite failure (an outage: librdkafka will
/// keep trying, and the caller asks the brokers nothing more before it must; a caller that
/// carries on says so, `check` reports it as a failure).
pub fn probe(cc: &ClientConfig) -> Result<bool, KafkaError> {
    let brokers = cc.get("bootstrap.servers").unwrap_or("").to_string();
    // A producer is the lightest client with every security setting; consumer-only properties
    // would only make it warn. A clone, not a copy of `config_map()`: rdkafka's map is a
    // sanitised view whose `sasl.password` reads "[sanitized for safety]", so a probe built from
    // it sent the wrong password and refused every right one (issue 28).
    let mut pc = cc.clone();
    super::client::drop_consumer_only(&mut pc);
    let producer: BaseProducer<Probe, NoCustomPartitioner> = pc
        .create_with_context(Probe::default())
        .map_err(KafkaError::client(format!(
            "cannot create a Kafka client for {brokers}"
        )))?;
    let started = Instant::now();
    loop {
        let got = producer
            .client()
            .fetch_metadata(None, Duration::from_millis(500));
        // Errors reach the context only when the client is polled.
        producer.poll(Duration::ZERO);
        let failure = producer
            .context()
            .failure
            .lock()
            .ok()
            .and_then(|f| f.clone());
        match failure {
            Some(Failure::Authentication(reason)) => {
                return Err(KafkaError::Authentication { brokers, reason });
            }
            Some(Failure::Tls(reason)) => {
                let refused = reason.contains("bad certificate")
                    || reason.contains("certificate required")
                    || reason.contains("handshake failure");
                let reason = match diagnose(cc) {
                    Some(why) => format!("{why} ({reason})"),
                    None if refused => format!(
                        "the broker refused this client's certificate (is \
                         ssl.certificate.location set, and signed by a CA the broker trusts?) \
                         ({reason})"
                    ),
                    None => reason,
                };
                return Err(KafkaError::Tls { brokers, reason });
            }
            None => {}
        }
        if got.is_ok() {
            return Ok(true);
        }
        if started.elapsed() >= PROBE_FOR {
            return Ok(false);
        }
    }
}

/// [`probe`], warning when no broker answered that the caller carries on regardless.
pub(crate) fn probe_or_carry_on(cc: &ClientConfig) -> Result<bool, KafkaError> {
    let answered = probe(cc)?;
    if !answered {
        tracing::warn!(
            brokers = cc.get("bootstrap.servers").unwrap_or(""),
            "the Kafka brokers do not answer yet; carrying on (the client keeps retrying)"
        );
    }
    Ok(answered)
}

/// Why the first broker's certificate fails verification, in a person's words: it is checked
/// again here with OpenSSL (the same library and CA file librdkafka uses), whose verify result
/// names the check (expired, hostname mismatch, unknown issuer), which librdkafka's message does
/// not. `None` when the check here passes or cannot be made.
fn diagnose(cc: &ClientConfig) -> Option<String> {
    use openssl::ssl::{HandshakeError, SslConnector, SslMethod};
    let first = cc
        .get("bootstrap.servers")?
        .split(',')
        .next()?
        .trim()
        .to_string();
    let host = first
        .rsplit_once(':')
        .map_or(first.as_str(), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut b = SslConnector::builder(SslMethod::tls_client()).ok()?;
    if let Some(ca) = cc.get("ssl.ca.location") {
        b.set_ca_file(ca).ok()?;
    }
    if let (Some(cert), Some(key)) = (
        cc.get("ssl.certificate.location"),
        cc.get("ssl.key.location"),
    ) {
        b.set_certificate_chain_file(cert).ok()?;
        b.set_private_key_file(key, openssl::ssl::SslFiletype::PEM)
            .ok()?;
    }
    let connector = b.build();
    let verify_host = cc
        .get("ssl.endpoint.identification.algorithm")
        .is_none_or(|v| v.eq_ignore_ascii_case("https"));
    let tcp = TcpStream::connect(&first).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let config = connector
        .configure()
        .ok()?
        .verify_hostname(verify_host)
        .use_server_name_indication(true);
    match config.connect(&host, tcp) {
        Ok(_) => None,
        Err(HandshakeError::Failure(mid)) | Err(HandshakeError::WouldBlock(mid)) => {
            let result = mid.ssl().verify_result();
            (result.as_raw() != 0).then(|| {
                format!(
                    "the certificate of {first} is not trusted: {}",
                    result.error_string()
                )
            })
        }
        Err(HandshakeError::SetupFailure(_)) => None,
    }
}
