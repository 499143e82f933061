//! The rules a setting's value must keep, each written once and named on the setting it
//! governs (`#[serde(deserialize_with = "…")]` in `settings.rs`), and the reporter of the
//! problems the checks across settings find.
//!
//! A rule's error is the problem's text as the user reads it, under the key serde was reading
//! (`time.allowed_lateness: must not be negative`).

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::layer::Origins;
use super::problems::Problems;
use super::secrets::{SecretSource, mask_url};
use crate::engine::time::Dur;

/// The largest `input.max_event_bytes`: 64 MiB, 64 times Kafka's default message limit (a
/// line buffer holds two events of it).
pub(crate) const MAX_EVENT_BYTES: i64 = 64 << 20;

/// The largest `time.max_waiting_responses`: a waiting response keeps its id and fields, about
/// a hundred bytes, so 100 million is about 10 GB.
pub(crate) const MAX_WAITING_RESPONSES: i64 = 100_000_000;

/// The most requests `[evidence] sample` may keep per row and bucket.
pub const MAX_EVIDENCE_SAMPLE: usize = 1000;

/// The problems found in the settings, each with its key, reported together in the order of
/// the keys in `config/srv-opr.toml` (as a reader goes through the file), each under the file
/// or variable its value came from.
pub(super) struct Check<'a> {
    origins: &'a Origins,
    found: Vec<(String, String)>,
}

impl<'a> Check<'a> {
    /// No problem yet; `origins` says where each value came from.
    pub(super) fn new(origins: &'a Origins) -> Check<'a> {
        Check {
            origins,
            found: Vec::new(),
        }
    }

    /// Notes `problem` under `key`.
    pub(super) fn push(&mut self, key: &str, problem: String) {
        self.found.push((key.to_string(), problem));
    }

    /// Whether nothing was found.
    pub(super) fn is_clean(&self) -> bool {
        self.found.is_empty()
    }

    /// Reports what was found in the order of the keys of `defaults` (a key it does not have,
    /// such as an entry of `[kafka.properties]`, goes with its table).
    pub(super) fn report(mut self, defaults: &str, problems: &mut Problems) {
        let order = key_order(defaults);
        let place = |key: &str| {
            let mut k = key;
            loop {
                if let Some(i) = order.iter().position(|o| o == k) {
                    return i;
                }
                match k.rsplit_once('.') {
                    Some((up, _)) => k = up,
                    None => return order.len(),
                }
            }
        };
        self.found.sort_by_key(|(key, _)| place(key));
        for (key, problem) in self.found {
            let origin = self
                .origins
                .get(&key)
                .cloned()
                .unwrap_or_else(|| "built-in srv-opr.toml".to_string());
            problems.push(&origin, &key, problem);
        }
    }

    /// A secret's source as read from its `{key}_env` and `{key}_file` settings
    /// ([`SecretSource::of`]); both set is noted under `{key}_file`, and none is kept.
    pub(super) fn secret(&mut self, key: &str, read: Result<SecretSource, String>) -> SecretSource {
        read.unwrap_or_else(|e| {
            self.push(&format!("{key}_file"), e);
            SecretSource::None
        })
    }
}

/// The tables and keys of a settings file in the order they are written (`time`, `time.zone`,
/// …), read from its lines: the parsed table keeps no order.
fn key_order(text: &str) -> Vec<String> {
    let mut table = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.trim().to_string();
            out.push(table.clone());
        } else if let Some((key, _)) = line.split_once('=')
            && !line.starts_with('#')
        {
            out.push(format!("{table}.{}", key.trim().trim_matches('"')));
        }
    }
    out
}

/// A duration as written (`"30s"`), not negative.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let text = String::deserialize(d)?;
    match Dur::parse(&text) {
        Ok(v) if v.0 >= 0 => Ok(v),
        Ok(_) => Err(D::Error::custom("must not be negative")),
        Err(e) => Err(D::Error::custom(e)),
    }
}

/// A duration longer than zero.
pub(super) fn positive<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let v = duration(d)?;
    if v.0 == 0 {
        return Err(D::Error::custom("must be longer than zero"));
    }
    Ok(v)
}

/// `"auto"` (the longest deadline) or a duration.
pub(super) fn auto_or_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Dur>, D::Error> {
    let text = String::deserialize(d)?;
    if text == "auto" {
        return Ok(None);
    }
    duration(serde::de::value::StrDeserializer::<D::Error>::new(&text)).map(Some)
}

/// The longest gap a complete month may have: at least the gap that joins events into one
/// stretch.
pub(super) fn coverage_gap<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    let v = duration(d)?;
    if v.0 < crate::engine::aggregate::COVERAGE_JOIN {
        return Err(D::Error::custom(
            "must be at least 15m (events closer than that are one stretch)",
        ));
    }
    Ok(v)
}

/// Two windows, long then short.
pub(super) fn windows<'de, D: Deserializer<'de>>(d: D) -> Result<(Dur, Dur), D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    let [long, short] = v.as_slice() else {
        return Err(D::Error::custom(
            "must be two windows, long then short: [\"1h\", \"5m\"]",
        ));
    };
    let one = |t: &str| positive(serde::de::value::StrDeserializer::<D::Error>::new(t));
    let (l, s) = (one(long)?, one(short)?);
    if s >= l {
        return Err(D::Error::custom(format!(
            "the short window ({short}) must be shorter than the long ({long})"
        )));
    }
    Ok((l, s))
}

/// An IANA time zone the calendar knows.
pub(super) fn zone<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    match crate::engine::calendar::Calendar::new(&text) {
        Ok(_) => Ok(text),
        Err(e) => Err(D::Error::custom(crate::diagnostic::chain(&e))),
    }
}

/// A text without the blanks around it.
pub(super) fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(String::deserialize(d)?.trim().to_string())
}

/// A count from `lo` to `hi`. Every size setting has an upper bound, so that no value can ask
/// for an allocation the process cannot make (a line buffer is twice `input.max_event_bytes`:
/// 99999999999999 aborted the process instead of being refused).
fn within<'de, D: Deserializer<'de>>(d: D, lo: i64, hi: i64, unit: &str) -> Result<u64, D::Error> {
    let v = i64::deserialize(d)?;
    if (lo..=hi).contains(&v) {
        Ok(v as u64)
    } else {
        Err(D::Error::custom(format!(
            "must be {lo} to {hi} {unit}, found {v}"
        )))
    }
}

/// `time.max_waiting_responses`.
pub(super) fn waiting_responses<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    within(d, 1, MAX_WAITING_RESPONSES, "responses").map(|v| v as usize)
}

/// `input.max_event_bytes`.
pub(super) fn event_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    within(d, 1, MAX_EVENT_BYTES, "bytes").map(|v| v as usize)
}

/// `state.checkpoint_events`.
pub(super) fn checkpoint_events<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    within(d, 1, 1_000_000_000, "events")
}

/// `http.ready_max_lag`.
pub(super) fn messages<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    within(d, 0, i64::MAX, "messages")
}

/// `kafka.workers`: 0 (one fewer than the cores) to 256.
pub(super) fn workers<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = i64::deserialize(d)?;
    if (0..=256).contains(&v) {
        Ok(v as usize)
    } else {
        Err(D::Error::custom(format!(
            "must be 0 (automatic) to 256, found {v}"
        )))
    }
}

/// A count that cannot be negative.
pub(super) fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = i64::deserialize(d)?;
    u64::try_from(v).map_err(|_| D::Error::custom("must not be negative"))
}

/// A percentage above 0 and at most 100 (a threshold above 100 could never be crossed).
pub(super) fn percent<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!(
            "must be a percentage above 0 and at most 100, found {v}"
        )))
    }
}

/// A rate above zero.
pub(super) fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(D::Error::custom(format!("must be above zero, found {v}")))
    }
}

/// `evidence.sample`: a number of requests from 1 to [`MAX_EVIDENCE_SAMPLE`], or `"all"`
/// (given as 0 here: `EvidenceSettings::finish` turns it into every request kept).
pub(super) fn sample<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim() {
        "all" => Ok(0),
        n => match n.parse::<usize>() {
            Ok(k) if (1..=MAX_EVIDENCE_SAMPLE).contains(&k) => Ok(k),
            _ => Err(D::Error::custom(format!(
                "must be a number of requests from 1 to {MAX_EVIDENCE_SAMPLE}, or \"all\"; \
                 found {:?}",
                crate::echo::cut(n, 32)
            ))),
        },
    }
}

/// A table of texts (`kafka.properties`, `kafka.secrets`), in key order.
pub(super) fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    BTreeMap::<String, String>::deserialize(d).map(|m| m.into_iter().collect())
}

/// `kafka.brokers`: librdkafka only warns without bootstrap servers, and `run` would wait out
/// its whole assignment limit before failing with a question about the topics.
pub(super) fn brokers<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    if text.split(',').all(|b| b.trim().is_empty()) {
        return Err(D::Error::custom(
            "is empty: name the Kafka bootstrap servers, e.g. \"127.0.0.1:9092\"",
        ));
    }
    Ok(text)
}

/// `kafka.topics`: at least one, none empty.
pub(super) fn topics<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    if v.is_empty() || v.iter().any(String::is_empty) {
        return Err(D::Error::custom("name at least one topic"));
    }
    Ok(v)
}

/// `http.listen`: an address, or empty for none.
pub(super) fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = trimmed(d)?;
    if !text.is_empty() && text.parse::<std::net::SocketAddr>().is_err() {
        return Err(D::Error::custom(format!(
            "{text:?} is not an address like 127.0.0.1:9898 (or empty for none)"
        )));
    }
    Ok(text)
}

/// `state.url`: SQLite, PostgreSQL, or empty for none. Whatever the scheme, a URL may carry a
/// password: it is never echoed.
pub(super) fn store_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let url = trimmed(d)?;
    let known = ["sqlite://", "postgres://", "postgresql://"];
    if !url.is_empty() && !known.iter().any(|k| url.starts_with(k)) {
        return Err(D::Error::custom(format!(
            "{:?} is neither sqlite://PATH nor postgres://… (nor empty for none)",
            mask_url(&url)
        )));
    }
    Ok(url)
}

/// `state.sslmode`: one of libpq's.
pub(super) fn sslmode<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    if !["disable", "prefer", "require", "verify-ca", "verify-full"].contains(&text.as_str()) {
        return Err(D::Error::custom(format!(
            "{text:?} is not disable, prefer, require, verify-ca or verify-full"
        )));
    }
    Ok(text)
}

/// `alerts.alertmanager_url`: a base URL without a trailing slash (a path is kept as a
/// prefix), or empty for none; what it may carry is checked with the other `alertmanager_…`
/// keys.
pub(super) fn base_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(trimmed(d)?.trim_end_matches('/').to_string())
}
