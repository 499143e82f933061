//! Every signed month against its figures now: the latest sign-off of each compared field by
//! field (`compare`), and the summary the status page, the alert and the report show.

use super::error::SignOffError;
use crate::config::Config;
use crate::engine::calendar::Month;
use crate::store::signoff::SignOff;
use crate::store::{Identity, open_configured};

use super::compare;
use super::sign::{Current, current, view_index};

/// What was compared: (sign-off, current figures, changes).
pub(crate) type Compared = Vec<(SignOff, Current, Vec<compare::Change>)>;

/// The latest sign-off of every signed month and view (or the ones asked for), each compared
/// with the month's figures now.
pub(crate) fn compare_all(
    cfg: &Config,
    month: Option<Month>,
    view: Option<&str>,
) -> Result<Compared, SignOffError> {
    if cfg.settings.state.url.is_empty() {
        return Err(SignOffError::Usage(
            "sign-offs are kept in the state store: set [state] url (SRV_OPR__STATE__URL)".into(),
        ));
    }
    if let Some(v) = view {
        view_index(cfg, v)?;
    }
    let pipeline = cfg.pipeline()?;
    let mut store = open_configured(cfg, &Identity::reader(cfg))?;
    let mut latest: std::collections::BTreeMap<(Month, String), SignOff> = Default::default();
    for s in store.signoffs(month)? {
        if view.is_some_and(|v| v != s.view) {
            continue;
        }
        if let Some(m) = s.month {
            latest.insert((m, s.view.clone()), s);
        }
    }
    let mut out = Vec::new();
    for ((m, v), s) in latest {
        if cfg.register.view(&v).is_none() {
            return Err(SignOffError::Usage(format!(
                "{m} was signed in view {v:?}, which the exemption register no longer names: \
                 give the register it was signed under (--exemptions FILE)"
            )));
        }
        let now = current(cfg, &pipeline, &mut *store, m, &v)?;
        let revisions = store.revisions(Some(m))?;
        let ctx = compare::Context {
            revisions: &revisions,
            register: &cfg.register,
            definitions: &cfg.definitions,
            calendar: &pipeline.calendar,
        };
        let changes = compare::changes(&s, &now, &ctx);
        out.push((s, now, changes));
    }
    Ok(out)
}

/// A signed month as the live side shows it: its latest sign-off and how far the figures have
/// moved from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// The view.
    pub view: String,
    /// When its latest sign-off was recorded.
    pub signed_at: String,
    /// By whom.
    pub signed_by: String,
    /// Whether it was signed before it was final (`--force`).
    pub forced: bool,
    /// Whether the month is final now.
    pub is_final: bool,
    /// Fields that differ from the sign-off (0: it stands).
    pub restated_fields: usize,
    /// The distinct causes, in order of first appearance.
    pub causes: Vec<String>,
    /// The first changes (at most [`SHOWN_CHANGES`]).
    pub changes: Vec<compare::Change>,
}

/// How many changes of a month the live side keeps (`restatements` lists them all).
pub const SHOWN_CHANGES: usize = 20;

/// The live summary of what [`compare_all`] found.
pub(crate) fn summarise(compared: &Compared) -> Vec<SignedMonth> {
    compared
        .iter()
        .map(|(s, now, changes)| {
            let mut causes: Vec<String> = Vec::new();
            for c in changes.iter().flat_map(|c| &c.causes) {
                if !causes.contains(c) {
                    causes.push(c.clone());
                }
            }
            SignedMonth {
                month: now.month.to_string(),
                view: s.view.clone(),
                signed_at: s.signed_at.clone(),
                signed_by: s.signed_by.clone(),
                forced: s.forced.is_some(),
                is_final: now.is_final,
                restated_fields: changes.len(),
                causes,
                changes: changes.iter().take(SHOWN_CHANGES).cloned().collect(),
            }
        })
        .collect()
}
