//! What a store is made for (its topics, group, definitions and schema version) and the
//! checks every backend makes on open; who claims its partitions.

use crate::config::Config;

use super::error::StoreError;

/// The schema version this build writes. Migrations bring older stores up to it; a newer store
/// is refused. 2: month rows keep their counts by day (`month_rows.days`). 3: counts per minute
/// (`minute_cells`) and the registers applied to final months (`register_history`). 4: month
/// sign-offs (`signoffs`, append-only). 5: month rows keep the acknowledgement segment and
/// their counts by user (`month_rows.acked`, `ack_histogram`, `after_ack_histogram`, `users`).
pub const SCHEMA_VERSION: i64 = 5;

/// What a store must match before anything is read or written.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The topics consumed, sorted, comma-separated (`None`: a reader such as `rollup` does not
    /// care which).
    pub topics: Option<String>,
    /// The consumer group (`None` for readers).
    pub group: Option<String>,
    /// SHA-256 of the effective definitions.
    pub definitions: String,
    /// Adopt the current definitions if the store's differ (`--accept-config-change`).
    pub accept_config_change: bool,
    /// A reader (`rollup`, `report`, the status page): the store is opened read-only and never
    /// changed, neither migrated nor given an identity.
    pub read_only: bool,
}

impl Identity {
    /// The identity of `run` under `cfg`.
    pub fn of_run(cfg: &Config, accept_config_change: bool) -> Identity {
        let mut topics = cfg.settings.kafka.topics.clone();
        topics.sort();
        Identity {
            topics: Some(topics.join(",")),
            group: Some(cfg.settings.kafka.group_id.clone()),
            definitions: cfg.definitions.sha256.clone(),
            accept_config_change,
            read_only: false,
        }
    }

    /// The identity of a reader (`rollup`, `report`).
    pub fn reader(cfg: &Config) -> Identity {
        Identity {
            topics: None,
            group: None,
            definitions: cfg.definitions.sha256.clone(),
            accept_config_change: false,
            read_only: true,
        }
    }
}

/// Who claims partitions: host name and process id, for the operator reading the store.
pub(crate) fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

/// The identity checks every backend makes on open, on the values it read from its meta table
/// (`None`: not set yet). Returns the definitions to write (a new store, or an accepted change).
pub(crate) fn check_identity(
    id: &Identity,
    stored_version: Option<i64>,
    stored_topics: Option<&str>,
    stored_group: Option<&str>,
    stored_definitions: Option<&str>,
) -> Result<IdentityAction, StoreError> {
    if let Some(v) = stored_version
        && v > SCHEMA_VERSION
    {
        return Err(StoreError::Refused(format!(
            "the state store has schema version {v}, newer than this srv-opr knows \
             ({SCHEMA_VERSION}): upgrade srv-opr, or point state.url elsewhere"
        )));
    }
    let mut action = IdentityAction::default();
    match (&id.topics, stored_topics) {
        (Some(mine), Some(theirs)) if mine != theirs => {
            return Err(StoreError::Refused(format!(
                "the state store belongs to topics {theirs:?}, not {mine:?}: point state.url at \
                 this run's own store"
            )));
        }
        (Some(_), None) => action.set_topics = true,
        _ => {}
    }
    match (&id.group, stored_group) {
        (Some(mine), Some(theirs)) if mine != theirs => {
            return Err(StoreError::Refused(format!(
                "the state store belongs to consumer group {theirs:?}, not {mine:?}"
            )));
        }
        (Some(_), None) => action.set_group = true,
        _ => {}
    }
    match stored_definitions {
        Some(theirs) if theirs != id.definitions => {
            if id.accept_config_change {
                tracing::warn!(
                    store = theirs,
                    now = %id.definitions,
                    "the measure definitions changed since the store was made: accepted \
                     (--accept-config-change); months counted before keep their counts"
                );
                action.set_definitions = true;
                action.changed_from = Some(theirs.to_string());
            } else {
                return Err(StoreError::Refused(format!(
                    "the state store was made under other measure definitions (SHA-256 {theirs}, \
                     now {}): figures would mix two definitions. Run with \
                     --accept-config-change to adopt the new ones",
                    id.definitions
                )));
            }
        }
        None => action.set_definitions = true,
        _ => {}
    }
    Ok(action)
}

/// What an open must write after the identity check.
#[derive(Debug, Default)]
pub(crate) struct IdentityAction {
    pub set_topics: bool,
    pub set_group: bool,
    pub set_definitions: bool,
    pub changed_from: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_mismatches_are_refused_with_reasons() {
        let id = Identity {
            topics: Some("a".into()),
            group: Some("g".into()),
            definitions: "d1".into(),
            accept_config_change: false,
            read_only: false,
        };
        let e = check_identity(&id, Some(SCHEMA_VERSION + 1), None, None, None).unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
        let e = check_identity(&id, Some(1), Some("b"), Some("g"), Some("d1")).unwrap_err();
        assert!(e.to_string().contains("topics"), "{e}");
        let e = check_identity(&id, Some(1), Some("a"), Some("h"), Some("d1")).unwrap_err();
        assert!(e.to_string().contains("group"), "{e}");
        let e = check_identity(&id, Some(1), Some("a"), Some("g"), Some("d0")).unwrap_err();
        assert!(e.to_string().contains("--accept-config-change"), "{e}");
        let ok = check_identity(
            &Identity {
                accept_config_change: true,
                ..id.clone()
            },
            Some(1),
            Some("a"),
            Some("g"),
            Some("d0"),
        )
        .unwrap();
        assert!(ok.set_definitions && ok.changed_from.as_deref() == Some("d0"));
        let fresh = check_identity(&id, None, None, None, None).unwrap();
        assert!(fresh.set_topics && fresh.set_group && fresh.set_definitions);
    }
}
