//! Alertmanager's webhook read as availability events: each alert of a notification with an
//! `interface` label becomes one event line (`down` at `startsAt` while firing, `up` at
//! `endsAt` once resolved), keyed by the interface, for the availability topic. Plain data in,
//! plain data out: the HTTP server reads the request, the Kafka intake produces the lines, and
//! the pipeline validates them like any other event (an unknown interface or a bad time becomes
//! a dead letter with its reason there, not here).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde::Deserialize;

/// The path Alertmanager's `webhook_configs` URL names.
pub const PATH: &str = "/api/v1/availability/alertmanager";

/// The largest notification read. Alertmanager sends a group's alerts in one body (its
/// `max_alerts` bounds them); a few hundred alerts are tens of kilobytes.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// The label naming the interface an alert is about.
pub(crate) const INTERFACE_LABEL: &str = "interface";

/// One event to produce: its key (the interface, so an interface's events keep their order in
/// one partition) and its JSON line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The message key.
    pub key: String,
    /// The event, one JSON object.
    pub line: String,
}

/// Where the webhook's events go (`run`'s Kafka intake). The future resolves once the broker
/// has acknowledged every record, or fails saying why; then the answer is 503 and Alertmanager
/// sends the notification again, so an event is never acknowledged and lost.
pub trait Intake: Send + Sync {
    /// Produces `records`, in order.
    fn produce<'a>(
        &'a self,
        records: &'a [Record],
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

    /// The topic written, for the answer and the log.
    fn topic(&self) -> &str;
}

/// What a notification holds for the availability topic.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The events, in the notification's order.
    pub records: Vec<Record>,
    /// Alerts without an `interface` label: not about an interface, left alone.
    pub ignored: usize,
}

/// Why a notification was refused (HTTP 400: Alertmanager does not send it again).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum WebhookError {
    /// Not JSON, or not shaped like Alertmanager's webhook payload.
    #[error("not an Alertmanager webhook notification: {0}")]
    Payload(String),
    /// An alert whose status is neither `firing` nor `resolved`.
    #[error(
        "alert {index} (interface {interface:?}) has status {status:?}, not firing or resolved"
    )]
    Status {
        /// Its place in `alerts`, from 0.
        index: usize,
        /// Its `interface` label.
        interface: String,
        /// What it said.
        status: String,
    },
    /// An alert without the time its state began.
    #[error("alert {index} (interface {interface:?}) is {status} without {field}")]
    NoTime {
        /// Its place in `alerts`, from 0.
        index: usize,
        /// Its `interface` label.
        interface: String,
        /// `firing` or `resolved`.
        status: &'static str,
        /// `startsAt` or `endsAt`.
        field: &'static str,
    },
}

/// The part of Alertmanager's webhook payload (version 4) read here; the rest is ignored.
#[derive(Deserialize)]
struct Notification {
    alerts: Vec<Alert>,
}

#[derive(Deserialize)]
struct Alert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", default)]
    starts_at: String,
    #[serde(rename = "endsAt", default)]
    ends_at: String,
}

/// The events of one notification: all of them, or an error naming the first alert that cannot
/// be read (a notification is taken whole, so a retried one never half-applies).
pub(crate) fn decode(body: &[u8]) -> Result<Decoded, WebhookError> {
    let n: Notification =
        serde_json::from_slice(body).map_err(|e| WebhookError::Payload(e.to_string()))?;
    let mut out = Decoded::default();
    for (index, a) in n.alerts.into_iter().enumerate() {
        let Some(interface) = a
            .labels
            .get(INTERFACE_LABEL)
            .filter(|i| !i.trim().is_empty())
        else {
            out.ignored += 1;
            continue;
        };
        let (state, at, status, field) = match a.status.as_str() {
            "firing" => ("down", &a.starts_at, "firing", "startsAt"),
            "resolved" => ("up", &a.ends_at, "resolved", "endsAt"),
            other => {
                return Err(WebhookError::Status {
                    index,
                    interface: interface.clone(),
                    status: other.to_string(),
                });
            }
        };
        if at.trim().is_empty() {
            return Err(WebhookError::NoTime {
                index,
                interface: interface.clone(),
                status,
                field,
            });
        }
        let mut event = serde_json::Map::new();
        event.insert("type".into(), "availability".into());
        event.insert("interface".into(), interface.as_str().into());
        event.insert("state".into(), state.into());
        event.insert("at".into(), at.as_str().into());
        // The incident reference, when the rule or the alert gives one.
        if let Some(incident) = a
            .labels
            .get("incident")
            .or_else(|| a.annotations.get("incident"))
            .filter(|i| !i.is_empty())
        {
            event.insert("incident".into(), incident.as_str().into());
        }
        out.records.push(Record {
            key: interface.clone(),
            line: serde_json::Value::Object(event).to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::availability::State;
    use crate::engine::event::{Event, decode as decode_event};
    use crate::engine::time::parse_rfc3339;

    /// A notification as Alertmanager 0.2x sends it (fields this module ignores included).
    const NOTIFICATION: &str = r#"{
      "receiver": "srv-opr", "status": "firing", "version": "4",
      "groupKey": "{}:{alertname=\"DuisDown\"}", "truncatedAlerts": 0,
      "groupLabels": {"alertname": "DuisDown"}, "commonLabels": {}, "commonAnnotations": {},
      "externalURL": "http://127.0.0.1:9093",
      "alerts": [
        {"status": "firing", "labels": {"alertname": "DuisDown", "interface": "DUIS",
          "incident": "INC000001065262"}, "annotations": {},
         "startsAt": "2023-08-14T08:12:00.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prom/graph", "fingerprint": "a1b2c3"},
        {"status": "resolved", "labels": {"alertname": "SsiDown", "interface": "SSI"},
         "annotations": {"incident": "INC42"},
         "startsAt": "2023-08-14T08:00:00Z", "endsAt": "2023-08-14T09:30:00+01:00",
         "generatorURL": "", "fingerprint": "d4e5f6"},
        {"status": "firing", "labels": {"alertname": "DiskFull"}, "annotations": {},
         "startsAt": "2023-08-14T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}
      ]}"#;

    #[test]
    fn firing_is_down_at_its_start_and_resolved_is_up_at_its_end() {
        let d = decode(NOTIFICATION.as_bytes()).unwrap();
        assert_eq!(
            d.ignored, 1,
            "the alert without an interface label is left alone"
        );
        assert_eq!(d.records.len(), 2);
        assert_eq!(d.records[0].key, "DUIS");
        assert_eq!(d.records[1].key, "SSI");
        // The lines are events the pipeline's own decoder reads.
        let events: Vec<_> = d
            .records
            .iter()
            .map(|r| match decode_event(r.line.as_bytes(), 65536) {
                Ok(Event::Availability(a)) => (
                    a.interface.to_string(),
                    a.state,
                    a.at,
                    a.incident.map(|i| i.to_string()),
                ),
                other => panic!("{}: {other:?}", r.line),
            })
            .collect();
        assert_eq!(
            events[0],
            (
                "DUIS".to_string(),
                State::Down,
                parse_rfc3339(b"2023-08-14T08:12:00.123456789Z").unwrap(),
                Some("INC000001065262".to_string())
            )
        );
        assert_eq!(
            events[1],
            (
                "SSI".to_string(),
                State::Up,
                parse_rfc3339(b"2023-08-14T08:30:00Z").unwrap(),
                Some("INC42".to_string())
            )
        );
    }

    #[test]
    fn a_notification_that_cannot_be_read_is_refused_whole() {
        assert!(matches!(decode(b"not json"), Err(WebhookError::Payload(_))));
        assert!(matches!(
            decode(br#"{"alerts": 3}"#),
            Err(WebhookError::Payload(_))
        ));
        let odd = r#"{"alerts": [
            {"status": "firing", "labels": {"interface": "DUIS"}, "startsAt": "2023-08-14T08:00:00Z"},
            {"status": "pending", "labels": {"interface": "RDI"}, "startsAt": "2023-08-14T08:00:00Z"}]}"#;
        assert_eq!(
            decode(odd.as_bytes()),
            Err(WebhookError::Status {
                index: 1,
                interface: "RDI".into(),
                status: "pending".into()
            })
        );
        let timeless = r#"{"alerts": [{"status": "resolved", "labels": {"interface": "RDI"}}]}"#;
        let e = decode(timeless.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "alert 0 (interface \"RDI\") is resolved without endsAt"
        );
    }

    #[test]
    fn labels_are_escaped_into_valid_json() {
        let n = r#"{"alerts": [{"status": "firing", "labels": {"interface": "D\"U\\IS"},
            "startsAt": "2023-08-14T08:00:00Z"}]}"#;
        let d = decode(n.as_bytes()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&d.records[0].line).unwrap();
        assert_eq!(v["interface"], "D\"U\\IS");
        assert_eq!(d.records[0].key, "D\"U\\IS");
    }
}
