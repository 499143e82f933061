//! `rpl.csv` (and `rpl.<view>.csv`), `users.csv` and `failures.csv`: the month rows as data
//! ([`RplLine`]) and as text, in report order.

use std::fmt::Write as _;

use crate::csv_text::field as csv_field;
use crate::engine::aggregate::{Aggregates, Row, rpl_percent};
use crate::engine::calendar::Month;
use crate::engine::definitions::Definitions;
use crate::engine::domain::{POOLED, Region};

/// `rpl.csv` header (normative; `exempted` since issue 29, the acknowledgement segment since
/// issue 32, `complete` since issue 33): the same for `rpl.<view>.csv`.
pub(crate) const RPL_HEADER: &str = "month,measure,region,requests,within_target,succeeded,no_response,rpl_percent,p50_ms,p95_ms,p99_ms,max_ms,revision,final,exempted,acked,ack_p50_ms,ack_p95_ms,after_ack_p95_ms,complete";
/// `users.csv` header (normative, issue 32).
pub(crate) const USERS_HEADER: &str =
    "month,measure,user,requests,within_target,succeeded,no_response,rpl_percent";
/// `failures.csv` header (normative).
pub(crate) const FAILURES_HEADER: &str = "month,measure,region,bucket,count";

/// One row of `rpl.csv`, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RplLine {
    /// `YYYY-MM`.
    pub month: Month,
    /// Measure id.
    pub measure: String,
    /// `north`, `central`, `south` or `all`.
    pub region: &'static str,
    /// The row.
    pub row: Row,
    /// Hits: within target (TRT measures) or succeeded (success measures).
    pub hits: u64,
    /// 4-decimal RPL text.
    pub rpl: String,
    /// The month is final.
    pub is_final: bool,
    /// The month's valid events cover it from its first minute to its last, no gap longer than
    /// `time.coverage_max_gap`.
    pub complete: bool,
    /// Requests the view's exemptions took out of the row (in none of its counts).
    pub exempted: u64,
    /// The row's requests before them.
    pub requests_before: u64,
}

/// The rows of `rpl.csv` (the `opr` view) in report order: month, measure (definition order),
/// north, central, south, all; only rows with at least one request.
pub fn rpl_lines(agg: &Aggregates, months: Option<&[Month]>) -> Vec<RplLine> {
    rpl_lines_of(agg, months, 0)
}

/// The rows of view `view` (an index of the register's views; 0 is `opr`): each row less what
/// the view's exemptions took out of it. A row whose requests were all exempted has none left
/// and is not listed (its exemption is, in `exemptions.csv`).
pub(crate) fn rpl_lines_of(
    agg: &Aggregates,
    months: Option<&[Month]>,
    view: usize,
) -> Vec<RplLine> {
    let defs: &Definitions = agg.definitions();
    let exempted = agg.exempted();
    let mut lines = Vec::new();
    for (month, mi, block) in agg.blocks() {
        if months.is_some_and(|ms| !ms.contains(&month)) {
            continue;
        }
        let measure = &defs.measures[mi as usize];
        let is_final = agg.is_final(month);
        let complete = agg.completeness(month).complete;
        let tallies = exempted.regions(view, month, mi);
        let mut all = Row::default();
        let mut all_exempted = 0;
        let mut rows: Vec<(Row, &'static str, u64, u64)> = Vec::with_capacity(4);
        let view_rows = agg.view_rows(view, month, mi, block);
        for (i, (row, name)) in view_rows.into_iter().zip(Region::NAMES).enumerate() {
            let ex = tallies.map_or(0, |t| t[i].requests);
            all.merge(&row);
            all_exempted += ex;
            rows.push((row.into_owned(), name, ex, block.regions[i].requests));
        }
        all.revision = block.all_revision;
        // Changes of register since the month was final revise the view's rows too.
        for (i, (row, _, _, _)) in rows.iter_mut().enumerate() {
            row.revision += exempted.revision(view, month, mi, i);
        }
        all.revision += exempted.revision(view, month, mi, 3);
        let before: u64 = block.regions.iter().map(|r| r.requests).sum();
        rows.push((all, POOLED, all_exempted, before));
        for (row, region, exempted, requests_before) in rows {
            if row.requests == 0 {
                continue;
            }
            let hits = row.hits(measure.basis);
            let rpl = rpl_percent(hits, row.requests).unwrap_or_default();
            lines.push(RplLine {
                month,
                measure: measure.id.clone(),
                region,
                row,
                hits,
                rpl,
                is_final,
                complete,
                exempted,
                requests_before,
            });
        }
    }
    lines
}

fn opt(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// `rpl.csv` text.
pub fn rpl_csv(lines: &[RplLine]) -> String {
    let mut s = String::with_capacity(128 * (lines.len() + 1));
    s.push_str(RPL_HEADER);
    s.push('\n');
    for l in lines {
        let r = &l.row;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            l.month,
            csv_field(&l.measure),
            l.region,
            r.requests,
            r.within_target,
            r.succeeded,
            r.no_response,
            l.rpl,
            opt(r.quantile_ms(0.50)),
            opt(r.quantile_ms(0.95)),
            opt(r.quantile_ms(0.99)),
            opt(r.max_ms()),
            r.revision,
            l.is_final,
            l.exempted,
            r.acked,
            opt(r.ack_quantile_ms(0.50)),
            opt(r.ack_quantile_ms(0.95)),
            opt(r.after_ack_quantile_ms(0.95)),
            l.complete,
        );
    }
    s
}

/// `users.csv` text: per month and measure (as `rpl.csv`), each service user's counts with the
/// regions pooled, users in byte order (`-`: requests without one). From the `all` lines.
pub fn users_csv(lines: &[RplLine], defs: &Definitions) -> String {
    let mut s = String::new();
    s.push_str(USERS_HEADER);
    s.push('\n');
    for l in lines.iter().filter(|l| l.region == POOLED) {
        let Some(measure) = defs.measures.iter().find(|m| m.id == l.measure) else {
            continue;
        };
        let mut users: Vec<_> = l.row.users.iter().collect();
        users.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (user, c) in users {
            let hits = c.hits(measure.basis);
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{}",
                l.month,
                csv_field(&l.measure),
                csv_field(user),
                c.requests,
                c.within_target,
                c.succeeded,
                c.no_response,
                rpl_percent(hits, c.requests).unwrap_or_default()
            );
        }
    }
    s
}

/// `failures.csv` text: per row, buckets by count (largest first), then name.
pub fn failures_csv(lines: &[RplLine]) -> String {
    let mut s = String::new();
    s.push_str(FAILURES_HEADER);
    s.push('\n');
    for l in lines {
        let mut buckets: Vec<(String, u64)> =
            l.row.buckets.iter().map(|(b, n)| (b.name(), *n)).collect();
        buckets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (name, n) in buckets {
            let _ = writeln!(
                s,
                "{},{},{},{},{}",
                l.month,
                csv_field(&l.measure),
                l.region,
                name,
                n
            );
        }
    }
    s
}
