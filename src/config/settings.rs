//! The service settings of `srv-opr.toml`: time zone, lateness, horizons and input limits,
//! validated into typed values.

use serde::Deserialize;
use toml::Table;

use super::layer::{self, Origins};
use super::{DEFAULT_SETTINGS, Problems};
use crate::time::Dur;

/// Validated service settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Event time and correlation windows.
    pub time: TimeSettings,
    /// Input limits.
    pub input: InputSettings,
}

/// `[time]`: how event time is judged.
#[derive(Debug, Clone)]
pub struct TimeSettings {
    /// IANA zone of the reporting months (`Europe/London`).
    pub zone: String,
    /// How far behind the newest event another may arrive and still be on time.
    pub allowed_lateness: Dur,
    /// How long decided requests are remembered past their longest deadline.
    pub dedupe_horizon: Dur,
    /// How long a response waits for its request; `None` means the longest deadline.
    pub orphan_wait: Option<Dur>,
    /// Cap on responses waiting for their requests.
    pub max_waiting_responses: usize,
}

/// `[input]`: limits on what is read.
#[derive(Debug, Clone)]
pub struct InputSettings {
    /// Events larger than this many bytes are `oversized`.
    pub max_event_bytes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    time: RawTime,
    input: RawInput,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTime {
    zone: String,
    allowed_lateness: String,
    dedupe_horizon: String,
    orphan_wait: String,
    max_waiting_responses: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    max_event_bytes: i64,
}

/// Layers the defaults, the file (`(name, text)`) and the environment, then validates.
pub(super) fn load(
    file: Option<&(String, String)>,
    env: &[(String, String)],
    problems: &mut Problems,
    sources: &mut Vec<String>,
) -> Option<Settings> {
    let schema: Table = match DEFAULT_SETTINGS.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push("built-in srv-opr.toml", "", e.to_string());
            return None;
        }
    };
    let mut merged = schema.clone();
    let mut origins = Origins::new();
    if let Some((name, text)) = file {
        match text.parse::<Table>() {
            Ok(t) => layer::merge(&mut merged, &schema, &t, "", name, &mut origins, problems),
            Err(e) => problems.push(name, "", format!("not valid TOML: {e}")),
        }
    }
    for (source, t) in layer::env_layer(env, &schema, problems) {
        sources.push(source.clone());
        layer::merge(
            &mut merged,
            &schema,
            &t,
            "",
            &source,
            &mut origins,
            problems,
        );
    }
    // Values of the wrong type or under unknown keys were reported and not merged, so the merged
    // table has the schema's shape: validate every value in it, reporting all problems at once.
    let raw: Raw = match toml::Value::Table(merged).try_into() {
        Ok(r) => r,
        Err(e) => {
            problems.push("srv-opr.toml", "", e.to_string());
            return None;
        }
    };
    let origin = |key: &str| {
        origins
            .get(key)
            .cloned()
            .unwrap_or_else(|| "built-in srv-opr.toml".to_string())
    };
    let dur = |key: &str, text: &str, problems: &mut Problems| match Dur::parse(text) {
        Ok(d) if d.0 >= 0 => Some(d),
        Ok(_) => {
            problems.push(&origin(key), key, "must not be negative".into());
            None
        }
        Err(e) => {
            problems.push(&origin(key), key, e);
            None
        }
    };
    let allowed_lateness = dur(
        "time.allowed_lateness",
        &raw.time.allowed_lateness,
        problems,
    );
    let dedupe_horizon = dur("time.dedupe_horizon", &raw.time.dedupe_horizon, problems);
    let orphan_wait = if raw.time.orphan_wait == "auto" {
        Some(None)
    } else {
        dur("time.orphan_wait", &raw.time.orphan_wait, problems).map(Some)
    };
    if let Err(e) = crate::calendar::Calendar::new(&raw.time.zone) {
        problems.push(&origin("time.zone"), "time.zone", e);
    }
    let positive = |key: &str, v: i64, problems: &mut Problems| {
        if v <= 0 {
            problems.push(&origin(key), key, format!("must be at least 1, found {v}"));
            None
        } else {
            Some(v as usize)
        }
    };
    let max_waiting = positive(
        "time.max_waiting_responses",
        raw.time.max_waiting_responses,
        problems,
    );
    let max_event_bytes = positive("input.max_event_bytes", raw.input.max_event_bytes, problems);
    Some(Settings {
        time: TimeSettings {
            zone: raw.time.zone,
            allowed_lateness: allowed_lateness?,
            dedupe_horizon: dedupe_horizon?,
            orphan_wait: orphan_wait?,
            max_waiting_responses: max_waiting?,
        },
        input: InputSettings {
            max_event_bytes: max_event_bytes?,
        },
    })
}
