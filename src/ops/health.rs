//! The pipeline's connections as a state of their own: whether a broker answers, whether the
//! brokers refuse this client (authentication or TLS), and whether the state store is reachable.
//! The Kafka client's callbacks and the store's retry loop record what they see here; the alert
//! evaluator, `/metrics`, `/readyz` and the status page read one [`LinkState`] from it, so none
//! of them reports "OK" while no figure can move.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use rdkafka::error::RDKafkaErrorCode;

/// Why the brokers cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// No broker answers (refused, timed out, name not resolved, all brokers down).
    Unreachable,
    /// A broker answers and refuses this client's credentials (SASL) or its authorisation.
    Authentication,
    /// The TLS handshake fails (a certificate not trusted, expired, for another host, or one the
    /// broker wants and did not get).
    Tls,
}

impl Trouble {
    /// What it means, as `/readyz` and the status page say it (lower case, no stop).
    pub fn what(self) -> &'static str {
        match self {
            Trouble::Unreachable => "no Kafka broker answers",
            Trouble::Authentication => "the Kafka brokers refuse this client's credentials",
            Trouble::Tls => "the Kafka brokers refuse this client's TLS",
        }
    }

    /// The word `/metrics` and `/status.json` use (`reason` label).
    pub fn word(self) -> &'static str {
        match self {
            Trouble::Unreachable => "unreachable",
            Trouble::Authentication => "authentication",
            Trouble::Tls => "tls",
        }
    }
}

/// What a librdkafka error says about the connection, if anything: a refusal (authentication,
/// TLS) or an outage. Other errors (a request that failed, a rebalance) say nothing about it.
pub(crate) fn classify(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<Trouble> {
    match code {
        Some(
            RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed,
        ) => Some(Trouble::Authentication),
        Some(RDKafkaErrorCode::SSL) => Some(Trouble::Tls),
        // The broker refused our certificate (or wanted one): librdkafka sees the TLS alert as a
        // transport failure.
        Some(RDKafkaErrorCode::BrokerTransportFailure)
            if reason.contains("SSL alert")
                || reason.contains("alert bad certificate")
                || reason.contains("certificate required")
                || reason.contains("alert handshake failure") =>
        {
            Some(Trouble::Tls)
        }
        Some(
            RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::Resolve
            | RDKafkaErrorCode::BrokerNotAvailable,
        ) => Some(Trouble::Unreachable),
        _ => None,
    }
}

/// The connection to the brokers as one read sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkState {
    /// Broker connections up in the client's latest statistics (`None`: no statistics yet).
    pub brokers_up: Option<usize>,
    /// Since when no broker connection has been up (`None` while one is, or before the first
    /// statistics).
    pub down_since: Option<SystemTime>,
    /// The latest connection error since a broker was last up: what it says, and librdkafka's
    /// words (secrets masked).
    pub trouble: Option<(Trouble, String)>,
    /// Since when the state store has been unreachable (its operations retried on new
    /// connections), and why; `None` while it answers.
    pub store_down: Option<(SystemTime, String)>,
}

impl LinkState {
    /// Why no figure can move, when the brokers cannot be used: the trouble (an outage unless
    /// the last error says otherwise) and its words.
    pub(crate) fn kafka_down(&self) -> Option<(Trouble, &str)> {
        if self.brokers_up != Some(0) {
            return None;
        }
        Some(match &self.trouble {
            Some((t, why)) => (*t, why.as_str()),
            None => (Trouble::Unreachable, "no broker connection is up"),
        })
    }
}

/// What the Kafka client has reported about its connections (one per process, in `Live`).
#[derive(Debug, Default)]
pub struct KafkaLink {
    state: Mutex<LinkState>,
}

impl KafkaLink {
    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The client's statistics: `up` broker connections are up now. One up clears the trouble.
    pub fn brokers(&self, up: usize, now: SystemTime) {
        let mut s = self.lock();
        s.brokers_up = Some(up);
        if up > 0 {
            s.down_since = None;
            s.trouble = None;
        } else if s.down_since.is_none() {
            s.down_since = Some(now);
        }
    }

    /// A client error: kept when it says something about the connection. A refusal is not
    /// overwritten by the outage that follows it (librdkafka reports both for one attempt).
    pub fn error(&self, code: Option<RDKafkaErrorCode>, reason: &str) {
        let Some(t) = classify(code, reason) else {
            return;
        };
        let mut s = self.lock();
        let keep_refusal = t == Trouble::Unreachable
            && matches!(s.trouble, Some((Trouble::Authentication | Trouble::Tls, _)));
        if !keep_refusal {
            s.trouble = Some((t, crate::diagnostic::redact(reason)));
        }
    }

    /// The state now, with the store's.
    pub fn state(&self) -> LinkState {
        let mut s = self.lock().clone();
        s.store_down = crate::store::reach::unreachable();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_outlasts_the_outage_reported_with_it_and_a_broker_up_clears_both() {
        let link = KafkaLink::default();
        let t0 = SystemTime::UNIX_EPOCH;
        assert_eq!(link.state().kafka_down(), None, "no statistics yet");
        link.brokers(0, t0);
        assert_eq!(
            link.state().kafka_down(),
            Some((Trouble::Unreachable, "no broker connection is up"))
        );
        link.error(
            Some(RDKafkaErrorCode::Authentication),
            "SASL authentication error: invalid credentials",
        );
        link.error(
            Some(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        let s = link.state();
        assert_eq!(s.kafka_down().map(|x| x.0), Some(Trouble::Authentication));
        assert_eq!(s.down_since, Some(t0));
        link.brokers(1, t0);
        let s = link.state();
        assert_eq!(
            (s.kafka_down(), &s.trouble, s.down_since),
            (None, &None, None)
        );
    }

    #[test]
    fn errors_are_classified_by_code_and_for_tls_alerts_by_their_words() {
        use RDKafkaErrorCode as C;
        assert_eq!(
            classify(Some(C::SSL), "certificate verify failed"),
            Some(Trouble::Tls)
        );
        assert_eq!(
            classify(
                Some(C::BrokerTransportFailure),
                "SSL handshake failed: SSL alert number 42: alert bad certificate"
            ),
            Some(Trouble::Tls)
        );
        assert_eq!(
            classify(Some(C::BrokerTransportFailure), "Connection refused"),
            Some(Trouble::Unreachable)
        );
        assert_eq!(
            classify(Some(C::SaslAuthenticationFailed), ""),
            Some(Trouble::Authentication)
        );
        assert_eq!(classify(Some(C::UnknownTopicOrPartition), ""), None);
        assert_eq!(classify(None, "anything"), None);
    }
}
