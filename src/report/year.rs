//! The year a report is made from ([`Year`]) and the figures its workbook, page and charts
//! share: month labels, each measure's TRTs, the year's failure buckets, exemptions, response
//! time segments and users with the most misses.

use std::collections::BTreeMap;

use crate::engine::definitions::{Definitions, Measure};

use crate::engine::aggregate::Aggregates;
use crate::engine::calendar::Month;
use crate::engine::domain::Region;
use crate::score::inputs::InputRow;
use crate::score::model::Report;
use crate::score::scheme::Scheme;
use crate::sink::month::RplLine;

/// The three regions in report order.
pub(crate) const REGIONS: [&str; 3] = Region::NAMES;

/// Everything a report is made from.
pub struct Year<'a> {
    /// `RY23/24`.
    pub label: String,
    /// Its twelve months, April to March.
    pub months: Vec<Month>,
    /// The measure definitions.
    pub defs: &'a Definitions,
    /// The OPR scheme of the year.
    pub scheme: &'a Scheme,
    /// `rpl.csv` rows of the year's months.
    pub lines: &'a [RplLine],
    /// The aggregates the lines came from (for response-time distributions).
    pub aggregates: &'a Aggregates,
    /// Every score input row (streaming-derived and external).
    pub inputs: &'a [InputRow],
    /// The year's score.
    pub score: &'a Report,
    /// Each signed month of the year against its latest sign-off (issue 31); empty from a
    /// replay, which has no store to keep sign-offs in.
    pub signoffs: &'a [crate::signoff::SignedMonth],
}

impl Year<'_> {
    /// Whether a month has figures that are not final yet (the watermark has not passed its end
    /// plus the longest deadline): a provisional month in an analyst's eyes.
    pub fn provisional(&self, m: Month) -> bool {
        self.lines.iter().any(|l| l.month == m && !l.is_final)
    }
}

/// `Apr 23`: a month as an axis or column label.
pub(crate) fn month_label(m: Month) -> String {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = NAMES
        .get((m.month() as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("?");
    format!("{name} {:02}", m.year().rem_euclid(100))
}

/// The distinct TRTs (ms) a measure's requests are judged against: its own, or the table's
/// entries for its SRVs (by SRV, else class, else default).
pub(crate) fn measure_trts_ms(defs: &Definitions, m: &Measure) -> Vec<u64> {
    let ms = |d: crate::engine::time::Dur| d.as_millis_floor().max(0) as u64;
    if let Some(t) = m.trt {
        return vec![ms(t)];
    }
    let mut srvs: Vec<&String> = m.srvs.iter().collect();
    if let Some(class) = &m.class
        && let Some(members) = defs.classes.get(class)
    {
        srvs.extend(members.iter());
    }
    let mut v: Vec<u64> = srvs.iter().map(|s| ms(defs.table_trt(s))).collect();
    if v.is_empty() {
        v.push(ms(defs.trt.default));
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// One failure bucket of a measure and region, summed over the year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BucketTotal {
    /// Measure id.
    pub measure: String,
    /// Region (`north`, `central`, `south`).
    pub region: &'static str,
    /// Bucket: an error code, `slow`, `no_response` or `other`.
    pub bucket: String,
    /// Misses in it over the year.
    pub count: u64,
}

/// The year's failure buckets per measure and region (the `failures.csv` rows summed over the
/// months), the largest first within each measure and region; at most `top` per pair.
pub(crate) fn failure_totals(y: &Year, top: usize) -> Vec<BucketTotal> {
    let mut sums: BTreeMap<(usize, usize, String), u64> = BTreeMap::new();
    for l in y.lines {
        let Some(ri) = REGIONS.iter().position(|r| *r == l.region) else {
            continue;
        };
        let Some(mi) = y.defs.measures.iter().position(|m| m.id == l.measure) else {
            continue;
        };
        for (b, n) in &l.row.buckets {
            *sums.entry((mi, ri, b.name())).or_insert(0) += n;
        }
    }
    let mut by_pair: BTreeMap<(usize, usize), Vec<(String, u64)>> = BTreeMap::new();
    for ((mi, ri, b), n) in sums {
        by_pair.entry((mi, ri)).or_default().push((b, n));
    }
    let mut out = Vec::new();
    for ((mi, ri), mut v) in by_pair {
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (bucket, count) in v.into_iter().take(top) {
            out.push(BucketTotal {
                measure: y.defs.measures[mi].id.clone(),
                region: REGIONS[ri],
                bucket,
                count,
            });
        }
    }
    out
}

/// What one exemption took out of one measure's year in one view, all regions together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExemptionYear {
    /// The view (`opr`, `pmr`, …).
    pub view: String,
    /// The exemption's index in the register.
    pub exemption: usize,
    /// Measure id.
    pub measure: String,
    /// Requests it took out over the year's months.
    pub requests_exempted: u64,
    /// The measure's requests in the year before exemption (all regions).
    pub requests_before: u64,
}

/// Per view, exemption (register order) and measure, the requests the register took out of the
/// year (the `all` rows of `exemptions.csv`, summed over the year's months), with the measure's
/// requests in the year before exemption: the number and share the regulator asks for.
pub(crate) fn exemption_year(y: &Year) -> Vec<ExemptionYear> {
    let mut before: BTreeMap<&str, u64> = BTreeMap::new();
    for l in y
        .lines
        .iter()
        .filter(|l| l.region == crate::engine::domain::POOLED)
    {
        *before.entry(l.measure.as_str()).or_insert(0) += l.requests_before;
    }
    let mut sums: BTreeMap<(usize, usize, usize), u64> = BTreeMap::new();
    let views = &y.aggregates.register().views;
    for l in crate::sink::month::exemption_lines(y.aggregates, Some(&y.months)) {
        if l.region != crate::engine::domain::POOLED {
            continue;
        }
        let Some(vi) = views.iter().position(|v| *v == l.view) else {
            continue;
        };
        let Some(mi) = y.defs.measures.iter().position(|m| m.id == l.measure) else {
            continue;
        };
        *sums.entry((vi, l.exemption, mi)).or_insert(0) += l.requests_exempted;
    }
    sums.into_iter()
        .map(|((vi, exemption, mi), n)| {
            let measure = y.defs.measures[mi].id.clone();
            ExemptionYear {
                view: views[vi].clone(),
                exemption,
                requests_before: before.get(measure.as_str()).copied().unwrap_or(0),
                measure,
                requests_exempted: n,
            }
        })
        .collect()
}

/// One measure and region's year split at DCC's acknowledgement (issue 32): the rows of the
/// year merged, their segment percentiles.
#[derive(Debug, Clone)]
pub(crate) struct SegmentYear {
    /// Measure id.
    pub measure: String,
    /// Region (`all` pools the three).
    pub region: &'static str,
    /// Requests.
    pub requests: u64,
    /// Of them, acknowledged.
    pub acked: u64,
    /// Request to first acknowledgement, median and 95th percentile (ms).
    pub ack_p50_ms: Option<u64>,
    /// 95th percentile of the same.
    pub ack_p95_ms: Option<u64>,
    /// First acknowledgement to final response, 95th percentile (ms).
    pub after_ack_p95_ms: Option<u64>,
    /// Response time, 95th percentile (ms).
    pub p95_ms: Option<u64>,
}

/// Every measure and region of the year with requests, in definition order (`all` last),
/// each its months merged: where the response time went, before and after the acknowledgement.
pub(crate) fn segment_year(y: &Year) -> Vec<SegmentYear> {
    let mut out = Vec::new();
    for m in &y.defs.measures {
        for region in REGIONS
            .iter()
            .copied()
            .chain(std::iter::once(crate::engine::domain::POOLED))
        {
            let mut row = crate::engine::aggregate::Row::default();
            for l in y
                .lines
                .iter()
                .filter(|l| l.measure == m.id && l.region == region)
            {
                row.merge(&l.row);
            }
            if row.requests == 0 {
                continue;
            }
            out.push(SegmentYear {
                measure: m.id.clone(),
                region,
                requests: row.requests,
                acked: row.acked,
                ack_p50_ms: row.ack_quantile_ms(0.5),
                ack_p95_ms: row.ack_quantile_ms(0.95),
                after_ack_p95_ms: row.after_ack_quantile_ms(0.95),
                p95_ms: row.quantile_ms(0.95),
            });
        }
    }
    out
}

/// A user's year in a measure: (user, misses, requests).
pub(crate) type UserMisses = (String, u64, u64);

/// The service users with the most misses of the year per measure (the months' `all` rows
/// merged), up to `n` each, most first, then by name: (measure, its users).
pub(crate) fn user_misses_year(y: &Year, n: usize) -> Vec<(String, Vec<UserMisses>)> {
    let mut out = Vec::new();
    for m in &y.defs.measures {
        let mut users = crate::engine::aggregate::Users::default();
        for l in y
            .lines
            .iter()
            .filter(|l| l.measure == m.id && l.region == crate::engine::domain::POOLED)
        {
            users.merge(&l.row.users);
        }
        let misses = most_misses(&users, m.basis, n);
        if !misses.is_empty() {
            out.push((m.id.clone(), misses));
        }
    }
    out
}

/// The users of `users` with a miss, up to `n`, most misses first, then by name.
pub(crate) fn most_misses(
    users: &crate::engine::aggregate::Users,
    basis: crate::engine::domain::Basis,
    n: usize,
) -> Vec<UserMisses> {
    let mut misses: Vec<UserMisses> = users
        .iter()
        .map(|(u, c)| {
            let hits = c.hits(basis);
            (u.to_string(), c.requests - hits.min(c.requests), c.requests)
        })
        .filter(|(_, missed, _)| *missed > 0)
        .collect();
    misses.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    misses.truncate(n);
    misses
}

/// The year's largest failure buckets over every measure and region.
pub(crate) fn worst_buckets(y: &Year, n: usize) -> Vec<BucketTotal> {
    let mut all = failure_totals(y, usize::MAX);
    all.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.measure.cmp(&b.measure))
            .then_with(|| a.region.cmp(b.region))
            .then_with(|| a.bucket.cmp(&b.bucket))
    });
    all.truncate(n);
    all
}
