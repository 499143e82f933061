//! A month's current figures as a sign-off keeps them, read from the store exactly as
//! `rollup` reads them, and a sign-off recorded (refused for a month not final yet unless
//! forced, with the reason).

use super::error::SignOffError;
use crate::config::Config;
use crate::engine::calendar::Month;
use crate::engine::pipeline::PipelineConfig;
use crate::engine::time::{Ts, now};
use crate::sink::month::{availability_csv, availability_lines, rpl_csv, rpl_lines_of};
use crate::store::load::merge_months;
use crate::store::signoff::SignOff;
use crate::store::{Identity, Store, open_configured};

/// A month's figures of one view as the store holds them now, in the form a sign-off keeps.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// The month.
    pub month: Month,
    /// The view.
    pub view: String,
    /// Its `rpl.csv` rows of the view, header included.
    pub rpl_csv: String,
    /// Its `availability.csv` rows of the view, header included.
    pub availability_csv: String,
    /// Whether the month is final (the combined watermark passed its end + the longest
    /// deadline).
    pub is_final: bool,
    /// When it is (or was) final: its end plus the longest deadline.
    pub final_at: Ts,
    /// The store's combined watermark.
    pub watermark: Ts,
}

/// The index of `view` in the effective register, or a usage error naming the views.
pub(crate) fn view_index(cfg: &Config, view: &str) -> Result<usize, SignOffError> {
    cfg.register.view(view).ok_or_else(|| {
        SignOffError::Usage(format!(
            "--view {:?} is not a view of the exemption register (views: {})",
            crate::echo::cut(view, 64),
            cfg.register.views.join(", ")
        ))
    })
}

/// `month`'s figures of `view` from `store`, merged over its partitions as `rollup` merges
/// them, under the effective register. A month the store holds nothing of is an error saying
/// which months it does hold.
pub(crate) fn current(
    cfg: &Config,
    pipeline: &PipelineConfig,
    store: &mut dyn Store,
    month: Month,
    view: &str,
) -> Result<Current, SignOffError> {
    let v = view_index(cfg, view)?;
    let merged = merge_months(store, cfg, pipeline, &[month])?;
    let agg = &merged.aggregates;
    crate::store::load::holds(store, agg, month)?;
    let rows = rpl_lines_of(agg, Some(&[month]), v);
    let interfaces = availability_lines(agg, v, Some(&[month]));
    let final_at = pipeline
        .calendar
        .end_of(month)
        .plus(pipeline.definitions.longest_deadline);
    Ok(Current {
        month,
        view: view.to_string(),
        rpl_csv: rpl_csv(&rows),
        availability_csv: availability_csv(&interfaces),
        is_final: agg.is_final(month),
        final_at,
        watermark: merged.watermark,
    })
}

/// A length of event time as days, hours and minutes (`22 d 12 h 51 min`).
fn humane(nanos: i64) -> String {
    let minutes = nanos.max(0) / 60_000_000_000;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h {m} min"),
    }
}

/// What `signoff` is asked to record.
#[derive(Debug, Clone)]
pub struct Request {
    /// The month.
    pub month: Month,
    /// The view.
    pub view: String,
    /// Who signs.
    pub by: String,
    /// Their note.
    pub note: Option<String>,
    /// `--force --reason`: sign a month not yet final, saying why.
    pub forced: Option<String>,
}

/// The identity `signoff` opens the store with: a writer (it records) that cares for no topic
/// or group, and refuses a store counted under other definitions.
fn signer(cfg: &Config) -> Identity {
    Identity {
        topics: None,
        group: None,
        definitions: cfg.definitions.sha256.clone(),
        accept_config_change: false,
        read_only: false,
    }
}

/// Records a sign-off of `req.month` and view as the store holds them now; refused (a usage
/// error, saying when it will be final) for a month not yet final unless forced.
pub(crate) fn sign(cfg: &Config, req: &Request) -> Result<SignOff, SignOffError> {
    let url = &cfg.settings.state.url;
    if url.is_empty() {
        return Err(SignOffError::Usage(
            "signoff records in the state store: set [state] url (SRV_OPR__STATE__URL)".into(),
        ));
    }
    if req.by.trim().is_empty() {
        return Err(SignOffError::Usage(
            "--by names who signs: it cannot be empty".into(),
        ));
    }
    let pipeline = cfg.pipeline()?;
    // Read as a reader, which creates nothing: a database without a store, or a store without
    // the month, is refused before anything is written to it.
    let mut reader = open_configured(cfg, &Identity::reader(cfg))?;
    // Read before the figures: a revision recorded in between is then in the figures and
    // counted as after the sign-off, never the other way round.
    let revisions_seen = reader.revision_mark()?;
    let now_figures = current(cfg, &pipeline, &mut *reader, req.month, &req.view)?;
    drop(reader);
    if !now_figures.is_final && req.forced.is_none() {
        let behind = now_figures
            .final_at
            .0
            .saturating_sub(now_figures.watermark.0);
        return Err(SignOffError::Usage(format!(
            "{} is not final: its figures can still change as events arrive. It is final once \
             the combined watermark passes {} (the month's end plus the longest deadline, {}); \
             the watermark is {}{}. Sign it then, or now with --force --reason TEXT (recorded)",
            req.month,
            now_figures.final_at,
            pipeline.definitions.longest_deadline,
            now_figures.watermark,
            if now_figures.watermark == Ts::MIN {
                String::new()
            } else {
                format!(", {} of event time before that", humane(behind))
            }
        )));
    }
    let register = &cfg.register;
    let mut s = SignOff {
        id: 0,
        month: Some(req.month),
        view: req.view.clone(),
        signed_at: now().to_rfc3339_exact(),
        signed_by: req.by.trim().to_string(),
        note: req.note.clone().filter(|n| !n.trim().is_empty()),
        forced: if now_figures.is_final {
            None
        } else {
            req.forced.clone()
        },
        watermark: now_figures.watermark.to_string(),
        definitions_sha256: cfg.definitions.sha256.clone(),
        register_sha256: register.sha256.clone().unwrap_or_default(),
        register_ids: register.exemptions.iter().map(|e| e.id.clone()).collect(),
        register_text: register.text.clone(),
        revisions_seen,
        rpl_csv: now_figures.rpl_csv,
        availability_csv: now_figures.availability_csv,
    };
    // The writer migrates a store older than schema 4, then appends.
    let mut store = open_configured(cfg, &signer(cfg))?;
    s.id = store.sign_off(&s)?;
    Ok(s)
}
