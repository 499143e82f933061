//! A sign-off against the month's current figures, field by field, with what moved each
//! changed field: late events (their count, from the revision history), exemptions added,
//! withdrawn or changed since (by id, those whose scope reaches the row), a change of measure
//! definitions, or, for a month signed before it was final, the events counted since. Plain
//! data in, plain data out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::calendar::{Calendar, Month};
use crate::engine::definitions::Definitions;
use crate::engine::domain::Region;
use crate::engine::exemption::{Exemption, Register};
use crate::store::RevisionRecord;
use crate::store::signoff::SignOff;

use super::sign::Current;

/// `restatements.csv` header (issue 31).
pub(crate) const HEADER: &str =
    "month,view,measure,region,field,signed,current,signed_at,signed_by,causes";

/// The figures of `rpl.csv` compared; `revision` and `final` say how a row came to be, not
/// what it is, and `month,measure,region` are its key.
const RPL_FIELDS: &[&str] = &[
    "requests",
    "within_target",
    "succeeded",
    "no_response",
    "rpl_percent",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "exempted",
];

/// The figures of `availability.csv` compared (an interface's row is measure `SUM1.<id>`,
/// region empty).
const AVAILABILITY_FIELDS: &[&str] = &[
    "minutes",
    "down_minutes",
    "exempted_minutes",
    "availability_percent",
];

/// One changed field of a signed month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `YYYY-MM`.
    pub month: String,
    /// The view.
    pub view: String,
    /// The measure id, or `SUM1.<interface>` for an interface's availability.
    pub measure: String,
    /// `north`, `central`, `south`, `all`; empty for an interface.
    pub region: String,
    /// The column of `rpl.csv` (or `availability.csv`).
    pub field: String,
    /// As signed (empty: the row was not there).
    pub signed: String,
    /// As now (empty: the row is gone).
    pub current: String,
    /// When the sign-off compared against was recorded.
    pub signed_at: String,
    /// Who made it.
    pub signed_by: String,
    /// What moved it, most specific first.
    pub causes: Vec<String>,
}

/// What the causes are read from, besides the two sets of figures.
pub(crate) struct Context<'a> {
    /// The month's revision history (every record; those after the sign-off are used).
    pub revisions: &'a [RevisionRecord],
    /// The register the current figures are counted under.
    pub register: &'a Register,
    /// The definitions they are counted under.
    pub definitions: &'a Definitions,
    /// The calendar (a window's overlap with the month).
    pub calendar: &'a Calendar,
}

/// A CSV text as rows keyed by `(measure, region)`, each a map of column to value.
type Rows = BTreeMap<(String, String), BTreeMap<String, String>>;

/// Rows of one of the two files; `interface` keys them `SUM1.<id>` with no region.
fn rows_of(text: &str, interface: bool) -> Rows {
    let mut out = Rows::new();
    let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let Ok(header) = r.headers().cloned() else {
        return out;
    };
    for rec in r.records().flatten() {
        let cols: BTreeMap<String, String> = header
            .iter()
            .zip(rec.iter())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        let key = if interface {
            (
                format!(
                    "SUM1.{}",
                    cols.get("interface").cloned().unwrap_or_default()
                ),
                String::new(),
            )
        } else {
            (
                cols.get("measure").cloned().unwrap_or_default(),
                cols.get("region").cloned().unwrap_or_default(),
            )
        };
        out.insert(key, cols);
    }
    out
}

/// Every field of `current` that differs from `signed`, with its causes.
pub(crate) fn changes(signed: &SignOff, current: &Current, ctx: &Context<'_>) -> Vec<Change> {
    let mut out = Vec::new();
    let month = current.month;
    let signed_register = signed_register(signed, ctx.definitions);
    let register_changes = register_changes(signed_register.as_ref(), ctx.register);
    for (interface, before, now, fields) in [
        (false, &signed.rpl_csv, &current.rpl_csv, RPL_FIELDS),
        (
            true,
            &signed.availability_csv,
            &current.availability_csv,
            AVAILABILITY_FIELDS,
        ),
    ] {
        let (a, b) = (rows_of(before, interface), rows_of(now, interface));
        let keys: std::collections::BTreeSet<&(String, String)> =
            a.keys().chain(b.keys()).collect();
        for key in keys {
            let empty = BTreeMap::new();
            let (x, y) = (a.get(key).unwrap_or(&empty), b.get(key).unwrap_or(&empty));
            let mut causes: Option<Vec<String>> = None;
            for field in fields.iter().copied() {
                let (s, c) = (
                    x.get(field).cloned().unwrap_or_default(),
                    y.get(field).cloned().unwrap_or_default(),
                );
                if s == c {
                    continue;
                }
                let causes = causes
                    .get_or_insert_with(|| {
                        causes_of(
                            signed,
                            month,
                            &key.0,
                            &key.1,
                            interface,
                            ctx,
                            &register_changes,
                        )
                    })
                    .clone();
                out.push(Change {
                    month: month.to_string(),
                    view: current.view.clone(),
                    measure: key.0.clone(),
                    region: key.1.clone(),
                    field: field.to_string(),
                    signed: s,
                    current: c,
                    signed_at: signed.signed_at.clone(),
                    signed_by: signed.signed_by.clone(),
                    causes,
                });
            }
        }
    }
    out
}

/// The register a sign-off was counted under, read back with today's definitions (`None`:
/// none, or one that no longer reads, whose entries then all count as changed).
fn signed_register(signed: &SignOff, defs: &Definitions) -> Option<Register> {
    if signed.register_text.is_empty() {
        return Some(Register::default());
    }
    let mut problems = crate::config::Problems::default();
    crate::config::exemptions::parse(
        "signed register",
        &signed.register_text,
        defs,
        &mut problems,
    )
    .filter(|_| problems.is_empty())
}

/// How an exemption changed between two registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Added,
    Withdrawn,
    Changed,
}

/// The entries that differ between the signed register and today's: each with the register it
/// is read from (today's for added and changed, the signed one's for withdrawn).
fn register_changes<'a>(
    signed: Option<&'a Register>,
    now: &'a Register,
) -> Vec<(Kind, &'a Exemption, &'a Register)> {
    let mut out = Vec::new();
    let Some(before) = signed else {
        return now
            .exemptions
            .iter()
            .map(|e| (Kind::Changed, e, now))
            .collect();
    };
    for e in &now.exemptions {
        match before.exemptions.iter().find(|b| b.id == e.id) {
            None => out.push((Kind::Added, e, now)),
            Some(b) if !same_entry(b, before, e, now) => out.push((Kind::Changed, e, now)),
            Some(_) => {}
        }
    }
    for b in &before.exemptions {
        if !now.exemptions.iter().any(|e| e.id == b.id) {
            out.push((Kind::Withdrawn, b, before));
        }
    }
    out
}

/// Whether two entries exempt the same (their views compared by name: indices differ between
/// registers).
fn same_entry(a: &Exemption, ra: &Register, b: &Exemption, rb: &Register) -> bool {
    let names = |e: &Exemption, r: &Register| -> Vec<String> {
        e.views
            .iter()
            .filter_map(|v| r.views.get(*v).cloned())
            .collect()
    };
    a.from == b.from
        && a.to == b.to
        && a.measures == b.measures
        && a.regions == b.regions
        && a.providers == b.providers
        && a.srvs == b.srvs
        && a.interfaces == b.interfaces
        && names(a, ra) == names(b, rb)
}

/// Whether `e` (of `r`) can reach the row: its views include the row's, its window overlaps the
/// month, and its scope includes the measure and region (or the interface).
fn reaches(
    e: &Exemption,
    r: &Register,
    view: &str,
    month: Month,
    row: (&str, &str),
    interface: bool,
    ctx: &Context<'_>,
) -> bool {
    let in_view = e
        .views
        .iter()
        .any(|v| r.views.get(*v).is_some_and(|n| n == view));
    let (start, end) = (ctx.calendar.start_of(month), ctx.calendar.end_of(month));
    if !in_view || e.to <= start || e.from >= end {
        return false;
    }
    if interface {
        let id = row.0.strip_prefix("SUM1.").unwrap_or(row.0);
        return e.interfaces.as_ref().is_none_or(|i| i.contains(id));
    }
    let measure = ctx
        .definitions
        .measures
        .iter()
        .position(|m| m.id == row.0)
        .map(|i| i as u16);
    let measure_ok = match (&e.measures, measure) {
        (None, _) => true,
        (Some(ms), Some(m)) => ms.contains(&m),
        (Some(_), None) => false,
    };
    let region_ok = match (&e.regions, Region::parse(row.1)) {
        (None, _) => true,
        (Some(rs), Some(reg)) => rs.contains(&reg),
        // `all` pools every region: any of them reaches it.
        (Some(rs), None) => !rs.is_empty(),
    };
    measure_ok && region_ok
}

/// Late events that changed the row since the sign-off: for each partition's row, how far its
/// revision rose past the last one recorded before the sign-off (one per late event); `all`
/// adds its regions'.
fn late_events(
    signed: &SignOff,
    month: Month,
    measure: &str,
    region: &str,
    ctx: &Context<'_>,
) -> u64 {
    let regions: Vec<&str> = if region == crate::engine::domain::POOLED {
        Region::NAMES.to_vec()
    } else {
        vec![region]
    };
    let mut before: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    let mut after: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for r in ctx.revisions {
        if r.month != month || r.measure != measure || !regions.contains(&r.region.as_str()) {
            continue;
        }
        let side = if r.id <= signed.revisions_seen {
            &mut before
        } else {
            &mut after
        };
        let k = (r.origin.as_str(), r.region.as_str());
        let v = side.entry(k).or_insert(0);
        *v = (*v).max(r.revision);
    }
    after
        .iter()
        .map(|(k, v)| u64::from(v.saturating_sub(before.get(k).copied().unwrap_or(0))))
        .sum()
}

/// What moved a changed row, most specific first.
fn causes_of(
    signed: &SignOff,
    month: Month,
    measure: &str,
    region: &str,
    interface: bool,
    ctx: &Context<'_>,
    register_changes: &[(Kind, &Exemption, &Register)],
) -> Vec<String> {
    let mut out = Vec::new();
    if !interface {
        let n = late_events(signed, month, measure, region, ctx);
        if n > 0 {
            out.push(format!(
                "late events: {n} (applied after the month was final)"
            ));
        }
    }
    for (kind, e, r) in register_changes {
        if reaches(e, r, &signed.view, month, (measure, region), interface, ctx) {
            out.push(format!(
                "exemption {} {}",
                e.id,
                match kind {
                    Kind::Added => "added",
                    Kind::Withdrawn => "withdrawn",
                    Kind::Changed => "changed",
                }
            ));
        }
    }
    if signed.definitions_sha256 != ctx.definitions.sha256 {
        out.push(format!(
            "measure definitions changed (SHA-256 {} to {})",
            short(&signed.definitions_sha256),
            short(&ctx.definitions.sha256)
        ));
    }
    if out.is_empty() {
        out.push(if signed.forced.is_some() {
            "events counted since: the month was signed before it was final (--force)".into()
        } else if interface {
            "availability events received since the sign-off".into()
        } else {
            "no recorded cause (no late event, register or definitions change explains it)".into()
        });
    }
    out
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// `restatements.csv`: one row per changed field; `causes` joined with `; `.
pub fn csv(changes: &[Change]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from(HEADER);
    s.push('\n');
    let f = crate::csv_text::field;
    for c in changes {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{}",
            c.month,
            f(&c.view),
            f(&c.measure),
            f(&c.region),
            c.field,
            f(&c.signed),
            f(&c.current),
            c.signed_at,
            f(&c.signed_by),
            f(&c.causes.join("; "))
        );
    }
    s
}
