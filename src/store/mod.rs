//! The durable state store: each partition's checkpoint (consumed offset, correlator records,
//! waiting responses, month aggregates) written in one transaction, its fencing epoch, and the
//! revision history of final months; read back on assignment and by `rollup`.
//!
//! One interface ([`Store`]), two backends chosen by URL: SQLite (`sqlite://PATH`, embedded,
//! one instance) and PostgreSQL (`postgres://…`, shared by the consumer group). Every
//! connection checks on open that the store was made for the same topics, group and
//! definitions (SPEC §3), and migrates an older schema.
//!
//! Fencing: claiming a partition raises its epoch; a checkpoint names the epoch it was claimed
//! under and is refused once another instance has claimed the partition since, so a former
//! owner can never overwrite its successor's state.

pub mod cells;
pub mod codec;
pub mod load;
pub mod pgtls;
pub mod postgres;
pub mod reach;
pub mod signoff;
mod sql;
pub mod sqlite;

use crate::config::Config;
use crate::engine::aggregate::SavedRow;
use crate::engine::calendar::Month;
use crate::engine::pipeline::{Delta, SavedBlock, SavedMeta, SavedPipeline};

/// The schema version this build writes. Migrations bring older stores up to it; a newer store
/// is refused. 2: month rows keep their counts by day (`month_rows.days`). 3: counts per minute
/// (`minute_cells`) and the registers applied to final months (`register_history`). 4: month
/// sign-offs (`signoffs`, append-only). 5: month rows keep the acknowledgement segment and
/// their counts by user (`month_rows.acked`, `ack_histogram`, `after_ack_histogram`, `users`).
pub const SCHEMA_VERSION: i64 = 5;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another instance claimed the partition after this one: the checkpoint was not written.
    #[error(
        "{topic}/{partition} was claimed by another instance since this one claimed it \
         (epoch {held}): checkpoint refused"
    )]
    Fenced {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The epoch this instance held.
        held: i64,
    },
    /// The store belongs to something else (newer version, other topic, group or definitions).
    #[error("{0}")]
    Refused(String),
    /// The database said no.
    #[error("{0}")]
    Backend(String),
    /// The connection to the database was lost or could not be made again (a restart, a
    /// failover, a network cut): worth retrying on a new connection.
    #[error("{0}")]
    Unavailable(String),
    /// There is no store to read.
    #[error("{0}")]
    Absent(String),
    /// A stored row does not decode.
    #[error(transparent)]
    Damaged(#[from] crate::engine::aggregate::RowError),
    /// A stored row holds counts no run can make (more hits than requests, a negative count):
    /// the store was damaged or edited, and nothing is rolled up from it.
    #[error("{0}")]
    Impossible(String),
    /// The password cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::config::secrets::SecretError),
}

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

/// A partition claimed: the epoch to checkpoint under, and the state to resume from.
#[derive(Debug)]
pub struct Claim {
    /// The fencing epoch.
    pub epoch: i64,
    /// The previous checkpoint, if the partition has one.
    pub saved: Option<SavedPartition>,
}

/// A partition's last checkpoint.
#[derive(Debug)]
pub struct SavedPartition {
    /// The next offset to read.
    pub next_offset: i64,
    /// Largest valid event `at` seen (ns), from which the partition's watermark follows.
    pub max_at: i64,
    /// Bytes of its state log (deltas since the last full snapshot, and that snapshot).
    pub log_bytes: u64,
    /// The pipeline's state.
    pub pipeline: SavedPipeline,
}

/// One partition's checkpoint.
#[derive(Debug)]
pub struct Checkpoint<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// The epoch the partition was claimed under.
    pub epoch: i64,
    /// The next offset to read: every event before it is in this checkpoint.
    pub next_offset: i64,
    /// Largest valid event `at` seen (ns).
    pub max_at: i64,
    /// What changed since the previous checkpoint.
    pub delta: &'a Delta,
}

/// What a checkpoint wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Records written or deleted.
    pub records: usize,
    /// Bytes appended to the partition's state log.
    pub log_bytes: u64,
    /// Month rows written.
    pub rows: usize,
    /// Rows of final months whose revision rose (each recorded in the history).
    pub revisions: usize,
    /// Minutes whose counts were written.
    pub minutes: usize,
}

/// A partition as the store knows it.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Fencing epoch.
    pub epoch: i64,
    /// Who claimed it last (host and process).
    pub owner: String,
    /// Next offset to read.
    pub next_offset: i64,
    /// Counters and watermarks, if checkpointed at least once.
    pub meta: Option<SavedMeta>,
    /// When it was last checkpointed (RFC 3339).
    pub checkpointed_at: Option<String>,
}

/// One stored month row of one partition.
#[derive(Debug, Clone)]
pub struct StoredRow {
    /// The partition (`topic/partition`).
    pub origin: String,
    /// Month.
    pub month: Month,
    /// Measure id.
    pub measure: String,
    /// Region index (0 north, 1 central, 2 south).
    pub region: usize,
    /// The row.
    pub row: SavedRow,
}

/// A recorded revision of a final month's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRecord {
    /// Its place in the history (later ones larger).
    pub id: i64,
    /// Month.
    pub month: Month,
    /// Measure id.
    pub measure: String,
    /// Region name.
    pub region: String,
    /// Topic/partition whose late events changed it.
    pub origin: String,
    /// The partition row's revision after the change.
    pub revision: u32,
    /// Why.
    pub reason: String,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
}

/// One register recorded against a final month: what its figures were counted under from then
/// on (issue 29). The first is the one in force when the month became final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRecord {
    /// Month.
    pub month: Month,
    /// SHA-256 of the register's file (empty: no register).
    pub sha256: String,
    /// Its exemption ids.
    pub ids: Vec<String>,
    /// Its file's text (empty: no register).
    pub text: String,
    /// Ids it added to the previous record's.
    pub added: Vec<String>,
    /// Ids of the previous record it no longer has.
    pub withdrawn: Vec<String>,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
}

/// The register in force, as [`Store::record_register`] records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterStamp {
    /// SHA-256 of its file (empty: none).
    pub sha256: String,
    /// Its ids, in file order.
    pub ids: Vec<String>,
    /// Its file's text.
    pub text: String,
}

impl RegisterStamp {
    /// The stamp of `register`.
    pub fn of(register: &crate::engine::exemption::Register) -> RegisterStamp {
        RegisterStamp {
            sha256: register.sha256.clone().unwrap_or_default(),
            ids: register.exemptions.iter().map(|e| e.id.clone()).collect(),
            text: register.text.clone(),
        }
    }
}

/// The state store: one connection, used by one thread.
pub trait Store: Send {
    /// Claims a partition for `owner`: raises its epoch and reads its last checkpoint.
    fn claim(&mut self, topic: &str, partition: i32, owner: &str) -> Result<Claim, StoreError>;

    /// Writes one partition's checkpoint in one transaction; refused with
    /// [`StoreError::Fenced`] if the partition was claimed since `cp.epoch`.
    fn checkpoint(&mut self, cp: &Checkpoint<'_>) -> Result<Written, StoreError>;

    /// Every partition known.
    fn partitions(&mut self) -> Result<Vec<PartitionInfo>, StoreError>;

    /// The month rows of every partition (of one month, or all).
    fn month_rows(&mut self, month: Option<Month>) -> Result<Vec<StoredRow>, StoreError>;

    /// The combined watermark last checkpointed (ns), if any.
    fn combined_watermark(&mut self) -> Result<Option<i64>, StoreError>;

    /// The revision history (of one month, or all), oldest first.
    fn revisions(&mut self, month: Option<Month>) -> Result<Vec<RevisionRecord>, StoreError>;

    /// The months some partition holds rows of, oldest first.
    fn months(&mut self) -> Result<Vec<Month>, StoreError>;

    /// The counts per minute of `month`, minutes `minutes.0` up to (not including)
    /// `minutes.1`, of every partition or of `partition` (topic, number); none from a store
    /// older than schema version 3.
    fn cells(
        &mut self,
        month: Month,
        minutes: (u16, u16),
        partition: Option<(&str, i32)>,
    ) -> Result<Vec<crate::engine::aggregate::SavedCell>, StoreError>;

    /// Records `stamp` against every month final by `final_before` (its end plus the longest
    /// deadline before it, as `ends` says: month → that instant) whose latest record is of
    /// another register: the months recorded. A store older than schema 3 records nothing.
    fn record_register(
        &mut self,
        stamp: &RegisterStamp,
        final_at: &dyn Fn(Month) -> i64,
    ) -> Result<Vec<Month>, StoreError>;

    /// The registers recorded against `month`, oldest first.
    fn register_history(&mut self, month: Month) -> Result<Vec<RegisterRecord>, StoreError>;

    /// Records a sign-off (append-only; recording the same one twice, a retry, adds nothing):
    /// its id. A store older than schema 4 cannot hold one (a reader never migrates it).
    fn sign_off(&mut self, s: &signoff::SignOff) -> Result<i64, StoreError>;

    /// The sign-offs of `month` (or all), oldest first; none from a store older than schema 4.
    fn signoffs(&mut self, month: Option<Month>) -> Result<Vec<signoff::SignOff>, StoreError>;

    /// The revision history's largest id (0 when empty): what a sign-off has seen.
    fn revision_mark(&mut self) -> Result<i64, StoreError>;
}

/// Whether a partition's next checkpoint should write a full snapshot that replaces its state
/// log, rather than append a delta: once the log holds more than twice what a snapshot would
/// (plus 4 MiB, so small states are not rewritten for nothing). Restoring then reads at most
/// about three snapshots' worth, and snapshots cost at most as many bytes as the deltas did.
pub fn snapshot_due(log_bytes: u64, snapshot_bytes: u64) -> bool {
    log_bytes > 2 * snapshot_bytes + (4 << 20)
}

/// Whether a store URL names PostgreSQL (libpq's two schemes).
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens a store by URL (`sqlite://PATH` or `postgres://…`), checking its identity and migrating
/// its schema. `password` is PostgreSQL's, kept apart from the URL.
pub fn open(
    url: &str,
    password: Option<&str>,
    id: &Identity,
    defs: &crate::engine::definitions::Definitions,
) -> Result<Box<dyn Store>, StoreError> {
    open_with(url, password, &pgtls::PgTls::default(), id, defs)
}

/// [`open`], with PostgreSQL's TLS where the URL does not say (the `[state]` keys).
pub fn open_with(
    url: &str,
    password: Option<&str>,
    tls: &pgtls::PgTls,
    id: &Identity,
    defs: &crate::engine::definitions::Definitions,
) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Box::new(sqlite::SqliteStore::open(path, id, defs)?))
    } else if is_postgres(url) {
        Ok(Box::new(postgres::PgStore::open_tls(
            url, password, tls, id, defs,
        )?))
    } else {
        Err(StoreError::Refused(format!(
            "state.url {:?} is neither sqlite://PATH nor postgres://…",
            redacted(url)
        )))
    }
}

/// Opens the store `cfg` names, reading the PostgreSQL password from `state.password_env` or
/// `state.password_file`. Like libpq with `PGPASSWORD`, an unset variable means no password
/// (certificate or trust authentication); a file that cannot be read, or is empty, is an error.
pub fn open_configured(cfg: &Config, id: &Identity) -> Result<Box<dyn Store>, StoreError> {
    let s = &cfg.settings.state;
    let password = if s.url.starts_with("sqlite://") {
        None
    } else {
        match s.password.read("state.password") {
            Ok(p) => p,
            Err(crate::config::secrets::SecretError::Unset { variable, .. }) => {
                tracing::debug!(%variable, "state.password_env names an unset variable: no password");
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    let tls = pgtls::PgTls::of_settings(s);
    let pw = password.as_ref().map(|p| p.expose());
    if is_postgres(&s.url) {
        let store = postgres::PgStore::open_tls(&s.url, pw, &tls, id, &cfg.definitions)?;
        return Ok(Box::new(store.riding_through(s.reconnect_timeout.to_std())));
    }
    open_with(&s.url, pw, &tls, id, &cfg.definitions)
}

/// The URL with any password replaced, for logs and errors (whatever its scheme, and a
/// `password=` parameter too).
pub fn redacted(url: &str) -> String {
    crate::config::secrets::mask_url(url)
}

/// Who claims partitions: host name and process id, for the operator reading the store.
pub fn owner_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

/// One month row a checkpoint writes (or deletes: a region that no longer counts anything).
pub(crate) struct RowWrite<'a> {
    pub month: String,
    pub measure: &'a str,
    pub region: &'static str,
    pub row: &'a SavedRow,
    /// Nothing counted and never revised: delete any stored row instead.
    pub delete: bool,
}

/// The month rows of a checkpoint's changed blocks, named as the tables store them.
pub(crate) fn row_writes<'a>(
    delta: &'a Delta,
    defs: &'a crate::engine::definitions::Definitions,
) -> Result<Vec<RowWrite<'a>>, StoreError> {
    let mut out = Vec::new();
    for b in &delta.blocks {
        let measure = defs
            .measures
            .get(b.measure as usize)
            .map(|m| m.id.as_str())
            .ok_or_else(|| StoreError::Backend(format!("no measure with index {}", b.measure)))?;
        let month = b.month.to_string();
        for (i, row) in b.regions.iter().enumerate() {
            out.push(RowWrite {
                month: month.clone(),
                measure,
                region: crate::engine::domain::Region::from_index(i).as_str(),
                row,
                delete: row.requests == 0 && row.revision == 0,
            });
        }
    }
    Ok(out)
}

/// Why a final month's row was revised, as the history records it.
pub(crate) fn revision_reason(cp: &Checkpoint<'_>, row: &SavedRow) -> String {
    format!(
        "late events after the month was final, applied before offset {} of {}/{} (requests {}, \
         within target {}, succeeded {})",
        cp.next_offset, cp.topic, cp.partition, row.requests, row.within_target, row.succeeded
    )
}

/// Groups a partition's stored rows into blocks of the current definitions' measure indices.
pub(crate) fn blocks_of(
    rows: Vec<StoredRow>,
    defs: &crate::engine::definitions::Definitions,
) -> Result<Vec<SavedBlock>, StoreError> {
    let mut blocks: Vec<SavedBlock> = Vec::new();
    let mut index: std::collections::HashMap<(Month, u16), usize> = Default::default();
    for r in rows {
        let Some(m) = defs.measures.iter().position(|m| m.id == r.measure) else {
            return Err(StoreError::Refused(format!(
                "the store holds measure {:?}, which the definitions do not define",
                r.measure
            )));
        };
        let key = (r.month, m as u16);
        let i = *index.entry(key).or_insert_with(|| {
            blocks.push(SavedBlock {
                month: r.month,
                measure: m as u16,
                regions: Default::default(),
            });
            blocks.len() - 1
        });
        if r.region > 2 {
            return Err(StoreError::Backend(format!(
                "a stored row has region index {}",
                r.region
            )));
        }
        blocks[i].regions[r.region] = r.row;
    }
    Ok(blocks)
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
    fn passwords_never_reach_logs() {
        assert_eq!(
            redacted("postgres://srv:hunter2@db:5432/opr"),
            "postgres://srv:*****@db:5432/opr"
        );
        assert_eq!(redacted("postgres://srv@db/opr"), "postgres://srv@db/opr");
        assert_eq!(redacted("sqlite://a.db"), "sqlite://a.db");
    }

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
