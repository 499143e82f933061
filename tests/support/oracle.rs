//! An oracle of the figures, written from SPEC §2 independently of the pipeline: it loads every
//! event, groups by id and applies the rules directly, with no watermark, timer or state
//! machine (decoding and the TRT table's lookup are the crate's). `volume` holds a month of
//! replay to it; `exemptions` applies registers to its per-request judgments.

use std::collections::{BTreeMap, HashMap};

use srv_opr::config::Config;
use srv_opr::engine::calendar::{Calendar, Month};
use srv_opr::engine::domain::{Provider, Region};
use srv_opr::engine::event::{Event, decode};

#[derive(Clone)]
pub struct OReq {
    at: i64,
    /// `execute_at` if later than `at`, else `at`.
    due: i64,
    user: Option<String>,
    srv: String,
    region: Region,
    provider: Provider,
    line: usize,
}

/// A row's counts.
#[derive(Default, Debug, PartialEq, Eq, Clone, Copy)]
pub struct Counts {
    /// Requests.
    pub requests: u64,
    /// Within target.
    pub within: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// No final response within the deadline.
    pub no_response: u64,
    /// With at least one acknowledgement.
    pub acked: u64,
}

/// What the SPEC says the events come to.
pub struct Oracle {
    /// Per month, measure and region (`all` too), the counts.
    pub rows: BTreeMap<(Month, String, &'static str), Counts>,
    /// Dead letters by reason.
    pub dead: BTreeMap<&'static str, u64>,
    /// Duplicates.
    pub duplicates: u64,
    /// Requests no measure selects.
    pub unmeasured: u64,
    /// Every standing request's judgment in every measure that selects it.
    pub judged: Vec<Judged>,
    /// Per month, measure and user (`-` for none), regions pooled: `users.csv`'s counts.
    pub users: BTreeMap<(Month, String, String), Counts>,
}

/// One standing request in one measure.
#[derive(Debug, Clone)]
pub struct Judged {
    /// When the request was due (ns): its `at`, or a later `execute_at`.
    pub at: i64,
    /// Its month.
    pub month: Month,
    /// Measure id.
    pub measure: String,
    /// Region.
    pub region: Region,
    /// Provider.
    pub provider: Provider,
    /// SRV.
    pub srv: String,
    /// Within target.
    pub within: bool,
    /// Succeeded.
    pub succeeded: bool,
    /// No final response within the deadline.
    pub no_response: bool,
}

/// The oracle of `lines`: every event loaded, grouped by id, the rules applied directly.
pub fn oracle(cfg: &Config, lines: &[&[u8]]) -> Oracle {
    let defs = &cfg.definitions;
    let mut cal = Calendar::new(&cfg.settings.time.zone).unwrap();
    let mut dead: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut reqs: HashMap<String, Vec<OReq>> = HashMap::new();
    let mut resps: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for (i, l) in lines.iter().enumerate() {
        match decode(l, cfg.settings.input.max_event_bytes) {
            Err(r) => *dead.entry(r.as_str()).or_default() += 1,
            Ok(Event::Request(r)) => reqs.entry(r.id.to_string()).or_default().push(OReq {
                at: r.at.0,
                due: r.execute_at.map_or(r.at.0, |t| t.0),
                user: r.user.as_deref().map(str::to_string),
                srv: r.srv.to_string(),
                region: r.region,
                provider: r.provider,
                line: i,
            }),
            Ok(Event::Response(r)) => resps
                .entry(r.id.to_string())
                .or_default()
                .push((r.at.0, r.code.to_string())),
            // Availability events are held to their own oracle (tests/availability.rs).
            Ok(Event::Availability(_)) => {}
        }
    }
    let mut rows: BTreeMap<(Month, String, &'static str), Counts> = BTreeMap::new();
    let mut duplicates = 0;
    let mut unmeasured = 0;
    let mut judged = Vec::new();
    let mut users: BTreeMap<(Month, String, String), Counts> = BTreeMap::new();
    for (id, copies) in &reqs {
        // The earliest `at` stands; on a tie, the first line.
        let standing = copies
            .iter()
            .min_by_key(|r| (r.at, r.line))
            .unwrap()
            .clone();
        for c in copies.iter().filter(|c| c.line != standing.line) {
            let same = c.at == standing.at
                && c.srv == standing.srv
                && c.region == standing.region
                && c.provider == standing.provider;
            if same {
                duplicates += 1;
            } else {
                *dead.entry("conflicting_request").or_default() += 1;
            }
        }
        let mut finals: Vec<(i64, String)> = Vec::new();
        let mut acked = false;
        for (at, code) in resps.get(id).map(Vec::as_slice).unwrap_or(&[]) {
            if *at < standing.at {
                *dead.entry("response_before_request").or_default() += 1;
            } else if !defs.ack_codes.contains(code) {
                finals.push((*at, code.clone()));
            } else {
                acked = true;
            }
        }
        duplicates += finals.len().saturating_sub(1) as u64;
        let success = |c: &str| defs.success_codes.iter().any(|s| s == c);
        let fin = finals.iter().min_by(|a, b| {
            a.0.cmp(&b.0)
                .then(success(&a.1).cmp(&success(&b.1)))
                .then(a.1.as_bytes().cmp(b.1.as_bytes()))
        });
        // A future-dated request is measured from, and counted in the month of, its
        // `execute_at`, in the measures that take future-dated requests.
        let due = standing.due;
        let rules = defs.rules_for(&standing.srv, standing.provider, due > standing.at);
        if rules.is_empty() {
            unmeasured += 1;
        }
        let month = cal.month_of(srv_opr::engine::time::Ts(due));
        for rule in rules {
            let m = &defs.measures[rule.measure as usize];
            let within_deadline = fin.filter(|(at, _)| at - due <= rule.deadline.0);
            let ok = within_deadline.is_some_and(|(_, c)| success(c));
            let wt = ok && within_deadline.is_some_and(|(at, _)| at - due <= rule.trt.0);
            let user = standing.user.clone().unwrap_or_else(|| "-".into());
            let u = users.entry((month, m.id.clone(), user)).or_default();
            u.requests += 1;
            u.within += wt as u64;
            u.succeeded += ok as u64;
            u.no_response += within_deadline.is_none() as u64;
            judged.push(Judged {
                at: due,
                month,
                measure: m.id.clone(),
                region: standing.region,
                provider: standing.provider,
                srv: standing.srv.clone(),
                within: wt,
                succeeded: ok,
                no_response: within_deadline.is_none(),
            });
            for region in [standing.region.as_str(), "all"] {
                let c = rows.entry((month, m.id.clone(), region)).or_default();
                c.requests += 1;
                c.within += wt as u64;
                c.succeeded += ok as u64;
                c.no_response += within_deadline.is_none() as u64;
                c.acked += acked as u64;
            }
        }
    }
    for id in resps.keys().filter(|id| !reqs.contains_key(*id)) {
        *dead.entry("orphan_response").or_default() += resps[id].len() as u64;
    }
    Oracle {
        rows,
        dead,
        duplicates,
        unmeasured,
        judged,
        users,
    }
}
