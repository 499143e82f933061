//! The month outputs of SPEC §5 and their extensions, rendered as text from [`Aggregates`]
//! exactly as specified (headers, order, number formats): `rpl.csv` (and `rpl.<view>.csv`),
//! `failures.csv`, `opr-inputs.csv`, `evidence/`, `exemptions.csv`, `availability.csv` and
//! `summary.json`. One concern, output text; issue 34 splits it by file.

use std::fmt::Write as _;

use serde::Serialize;

use crate::engine::aggregate::{Aggregates, Row, rpl_percent};
use crate::engine::calendar::Month;
use crate::engine::definitions::Definitions;
use crate::engine::domain::{POOLED, Region};
use crate::engine::event::DeadReason;
use crate::engine::pipeline::{EventResult, EventType, PipelineStats};
use crate::engine::time::Ts;

/// `rpl.csv` header (normative; `exempted` since issue 29, the acknowledgement segment since
/// issue 32, `complete` since issue 33): the same for `rpl.<view>.csv`.
pub const RPL_HEADER: &str = "month,measure,region,requests,within_target,succeeded,no_response,rpl_percent,p50_ms,p95_ms,p99_ms,max_ms,revision,final,exempted,acked,ack_p50_ms,ack_p95_ms,after_ack_p95_ms,complete";
/// `users.csv` header (normative, issue 32).
pub const USERS_HEADER: &str =
    "month,measure,user,requests,within_target,succeeded,no_response,rpl_percent";
/// `failures.csv` header (normative).
pub const FAILURES_HEADER: &str = "month,measure,region,bucket,count";

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

impl PartialEq for Row {
    fn eq(&self, o: &Row) -> bool {
        (
            self.requests,
            self.within_target,
            self.succeeded,
            self.no_response,
            &self.buckets,
            self.revision,
        ) == (
            o.requests,
            o.within_target,
            o.succeeded,
            o.no_response,
            &o.buckets,
            o.revision,
        ) && self.max_ms() == o.max_ms()
            && self.histogram_counts() == o.histogram_counts()
    }
}
impl Eq for Row {}

/// The rows of `rpl.csv` (the `opr` view) in report order: month, measure (definition order),
/// north, central, south, all; only rows with at least one request.
pub fn rpl_lines(agg: &Aggregates, months: Option<&[Month]>) -> Vec<RplLine> {
    rpl_lines_of(agg, months, 0)
}

/// The rows of view `view` (an index of the register's views; 0 is `opr`): each row less what
/// the view's exemptions took out of it. A row whose requests were all exempted has none left
/// and is not listed (its exemption is, in `exemptions.csv`).
pub fn rpl_lines_of(agg: &Aggregates, months: Option<&[Month]>, view: usize) -> Vec<RplLine> {
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

/// `evidence/<measure>.csv` header.
pub const EVIDENCE_HEADER: &str = "month,measure,region,bucket,id,user,device";

use crate::csv_text::field as csv_field;

/// `PM4.3.csv`: a measure's evidence file name inside `evidence/` (any character of the id
/// outside letters, digits, `.`, `-` and `_` becomes `_`).
pub fn evidence_file_name(measure: &str) -> String {
    let stem: String = measure
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}.csv")
}

/// The evidence files, `(file name, text)`: one per measure of `measures`, always (a header
/// alone when it has no sampled miss, so a rerun into the same directory leaves no stale
/// evidence). Each lists, per month, region and failure bucket (largest first, as
/// `failures.csv`), the sampled requests (at most [`crate::engine::aggregate::SAMPLE_SIZE`], by key
/// order): their id, user and device. The pooled `all` rows are left out: they are the
/// regions' requests again.
pub fn evidence_files(lines: &[RplLine], measures: &[&str]) -> Vec<(String, String)> {
    let file_of = evidence_file_name;
    let mut files: Vec<(String, String)> = measures
        .iter()
        .map(|m| (file_of(m), format!("{EVIDENCE_HEADER}\n")))
        .collect();
    for l in lines.iter().filter(|l| l.region != "all") {
        if l.row.samples.is_empty() {
            continue;
        }
        let name = file_of(&l.measure);
        let i = match files.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                files.push((name, format!("{EVIDENCE_HEADER}\n")));
                files.len() - 1
            }
        };
        let text = &mut files[i].1;
        let mut buckets: Vec<(&crate::engine::catalog::Bucket, &u64)> =
            l.row.buckets.iter().collect();
        buckets.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.name().cmp(&b.0.name())));
        for (bucket, _) in buckets {
            let Some(sample) = l.row.samples.get(bucket) else {
                continue;
            };
            for (_, packed) in sample {
                let (id, user, device) = crate::engine::correlate::evidence_parts(packed);
                let _ = writeln!(
                    text,
                    "{},{},{},{},{},{},{}",
                    l.month,
                    csv_field(&l.measure),
                    l.region,
                    bucket.name(),
                    csv_field(id),
                    csv_field(user),
                    csv_field(device)
                );
            }
        }
    }
    files
}

/// `opr-inputs.csv` header: the score input format of SPEC §7, with counts.
pub const OPR_INPUTS_HEADER: &str = "measure,component,region,period,value,numerator,denominator";

/// The scheme of `month`'s (`YYYY-MM`) regulatory year among `schemes`.
fn scheme_of<'a>(
    month: &str,
    schemes: &'a [crate::score::scheme::Scheme],
) -> Option<&'a crate::score::scheme::Scheme> {
    let year = crate::score::scheme::RegYear::of_month(month)?;
    schemes.iter().find(|s| s.year == year)
}

/// `opr-inputs.csv`: the streaming-derived OPR components as `srv-opr score` input rows. Each
/// month is mapped through the scheme of its regulatory year: a component `from` a streaming
/// measure takes that measure's regional rows (regional components) or its `all` row (the
/// others). `value` is 100 × hits / requests to 28 significant digits, with the counts beside it.
/// Months no scheme covers give no rows.
pub fn opr_inputs_csv(lines: &[RplLine], schemes: &[crate::score::scheme::Scheme]) -> String {
    let mut s = String::from(OPR_INPUTS_HEADER);
    s.push('\n');
    for l in lines {
        let month = l.month.to_string();
        let Some(scheme) = scheme_of(&month, schemes) else {
            continue;
        };
        for m in &scheme.measures {
            for c in m
                .components
                .iter()
                .filter(|c| c.from.as_deref() == Some(l.measure.as_str()))
            {
                let region = match (c.regional(), l.region) {
                    (true, POOLED) => continue,
                    (false, r) if Region::parse(r).is_some() => continue,
                    (true, r) => r,
                    (false, _) => "",
                };
                let hits = l.hits;
                let value = rust_decimal::Decimal::from(hits) * rust_decimal::Decimal::ONE_HUNDRED
                    / rust_decimal::Decimal::from(l.row.requests);
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{}",
                    csv_field(&m.id),
                    csv_field(&c.id),
                    region,
                    month,
                    value.normalize(),
                    hits,
                    l.row.requests
                );
            }
        }
    }
    s
}

/// `availability.csv` header (issue 30).
pub const AVAILABILITY_HEADER: &str =
    "month,interface,minutes,down_minutes,exempted_minutes,availability_percent,final,complete";

/// One line of `availability.csv`: an interface's month in one view.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailabilityLine {
    /// The month.
    pub month: Month,
    /// The interface's id.
    pub interface: String,
    /// Its figures.
    pub figures: crate::engine::availability::MonthFigures,
    /// The month is final.
    pub is_final: bool,
    /// The month's events cover it (as `rpl.csv`'s `complete`).
    pub complete: bool,
}

/// The lines of a view's `availability.csv`: every month from that of the first availability
/// event to that of the watermark (or those of `months`), every configured interface, in
/// definition order.
pub fn availability_lines(
    agg: &Aggregates,
    view: usize,
    months: Option<&[Month]>,
) -> Vec<AvailabilityLine> {
    let mut out = Vec::new();
    for month in agg.availability_months() {
        if months.is_some_and(|ms| !ms.contains(&month)) {
            continue;
        }
        let is_final = agg.availability_final(month);
        let complete = agg.completeness(month).complete;
        for (i, figures) in agg
            .definitions()
            .interfaces
            .iter()
            .zip(agg.availability(view, month))
        {
            out.push(AvailabilityLine {
                month,
                interface: i.id.clone(),
                figures,
                is_final,
                complete,
            });
        }
    }
    out
}

/// `availability.csv` (or a view's): `availability_percent` = 100 × (minutes − (down_minutes −
/// exempted_minutes)) / minutes, exact (28 significant digits, trailing zeros dropped).
pub fn availability_csv(lines: &[AvailabilityLine]) -> String {
    let mut s = String::from(AVAILABILITY_HEADER);
    s.push('\n');
    for l in lines {
        let f = &l.figures;
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{}",
            l.month,
            csv_field(&l.interface),
            f.minutes,
            f.down_minutes,
            f.exempted_minutes,
            f.percent()
                .map(|p| p.normalize().to_string())
                .unwrap_or_default(),
            l.is_final,
            l.complete
        );
    }
    s
}

/// The SUM1 rows of `opr-inputs.csv` from availability lines (the `opr` view's): one per
/// interface and month whose regulatory year's scheme has a SUM1 component of that id.
pub fn sum1_inputs(lines: &[AvailabilityLine], schemes: &[crate::score::scheme::Scheme]) -> String {
    let mut s = String::new();
    for l in lines {
        let month = l.month.to_string();
        let Some(scheme) = scheme_of(&month, schemes) else {
            continue;
        };
        let Some(m) = scheme.measures.iter().find(|m| m.id == "SUM1") else {
            continue;
        };
        if !m.components.iter().any(|c| c.id == l.interface) {
            continue;
        }
        let Some(value) = l.figures.percent() else {
            continue;
        };
        let _ = writeln!(
            s,
            "SUM1,{},,{},{},{},{}",
            csv_field(&l.interface),
            month,
            value.normalize(),
            l.figures.up_minutes(),
            l.figures.minutes
        );
    }
    s
}

/// `exemptions.csv` header (issue 29).
pub const EXEMPTIONS_HEADER: &str =
    "view,month,exemption,reason,measure,region,requests_exempted,share_percent";

/// One line of `exemptions.csv`: what one exemption took out of one row of one view.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemptionLine {
    /// The view's name (`opr`, `pmr`, …).
    pub view: String,
    /// The month of the row.
    pub month: Month,
    /// The exemption's index in the register.
    pub exemption: usize,
    /// The measure's id.
    pub measure: String,
    /// `north`, `central`, `south` or `all`.
    pub region: &'static str,
    /// Requests it took out of the row.
    pub requests_exempted: u64,
    /// The row's requests before exemption.
    pub requests_before: u64,
}

/// The lines of `exemptions.csv`: per view, month, exemption (register order), measure
/// (definition order) and region (north, central, south, all), the requests it took out of the
/// row where it took any. A request inside several windows counts under the first of them.
pub fn exemption_lines(agg: &Aggregates, months: Option<&[Month]>) -> Vec<ExemptionLine> {
    let defs = agg.definitions();
    let register = agg.register();
    let exempted = agg.exempted();
    let mut out = Vec::new();
    let blocks = agg.blocks();
    let mut month_list: Vec<Month> = blocks.iter().map(|(m, _, _)| *m).collect();
    month_list.dedup();
    for (view, view_name) in register.views.iter().enumerate() {
        for &month in &month_list {
            if months.is_some_and(|ms| !ms.contains(&month)) {
                continue;
            }
            for e in 0..register.exemptions.len() {
                for (_, mi, block) in blocks.iter().filter(|(m, _, _)| *m == month) {
                    let Some(tallies) = exempted.regions(view, month, *mi) else {
                        continue;
                    };
                    let took: Vec<u64> = tallies
                        .iter()
                        .map(|t| t.by_exemption.get(&(e as u16)).copied().unwrap_or(0))
                        .collect();
                    let before: Vec<u64> = block.regions.iter().map(|r| r.requests).collect();
                    let rows = (0..3)
                        .map(|i| (Region::NAMES[i], took[i], before[i]))
                        .chain(std::iter::once((
                            POOLED,
                            took.iter().sum(),
                            before.iter().sum(),
                        )));
                    for (region, n, of) in rows {
                        if n == 0 {
                            continue;
                        }
                        out.push(ExemptionLine {
                            view: view_name.clone(),
                            month,
                            exemption: e,
                            measure: defs.measures[*mi as usize].id.clone(),
                            region,
                            requests_exempted: n,
                            requests_before: of,
                        });
                    }
                }
            }
        }
    }
    out
}

/// `exemptions.csv`: [`exemption_lines`] with each exemption's id and reason, and the share of
/// the row's requests before exemption it took (the number and percentage the regulator asks
/// for).
pub fn exemptions_csv(agg: &Aggregates, months: Option<&[Month]>) -> String {
    let register = agg.register();
    let mut s = String::from(EXEMPTIONS_HEADER);
    s.push('\n');
    for l in exemption_lines(agg, months) {
        let Some(ex) = register.exemptions.get(l.exemption) else {
            continue;
        };
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{}",
            l.view,
            l.month,
            csv_field(&ex.id),
            ex.reason.as_str(),
            csv_field(&l.measure),
            l.region,
            l.requests_exempted,
            rpl_percent(l.requests_exempted, l.requests_before).unwrap_or_default()
        );
    }
    s
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Events read (blank lines excluded).
    pub events_read: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Valid request events.
    pub requests: u64,
    /// Valid response events.
    pub responses: u64,
    /// Events that changed nothing (copies of requests, second final responses).
    pub duplicates: u64,
    /// Decided requests that no measure selects.
    pub unmeasured_requests: u64,
    /// Events applied although they arrived behind the watermark.
    pub late_events: u64,
    /// Requests decided.
    pub decided_requests: u64,
    /// Decided requests whose counts a later event changed.
    pub revised_requests: u64,
    /// Dead letters by reason (every reason listed, zero included).
    pub dead_letters: std::collections::BTreeMap<&'static str, u64>,
    /// Total dead letters.
    pub dead_letters_total: u64,
    /// Events by type and result (`srv_events_total`).
    pub events_by_type_result: std::collections::BTreeMap<String, u64>,
    /// The last combined watermark (RFC 3339), before end-of-input decisions.
    pub watermark: Option<String>,
    /// Months in the output and whether each is final.
    pub months: std::collections::BTreeMap<String, bool>,
    /// Each month with events, whether its events cover it (`time.coverage_max_gap`), and the
    /// gaps that are too long (issue 33).
    pub coverage: std::collections::BTreeMap<String, MonthCoverage>,
    /// SHA-256 of the effective definitions (measures, codes, classes, TRTs, zone).
    pub definitions_sha256: String,
    /// SHA-256 of the exemption register's file (`null`: no register).
    pub exemptions_sha256: Option<String>,
    /// The reporting views: `opr` (`rpl.csv`), then the register's others (`rpl.<view>.csv`).
    pub views: Vec<String>,
    /// Requests each view's exemptions took out of its rows, over every month (a request
    /// counted once per measure it is in, as the rows count it).
    pub exempted_by_view: std::collections::BTreeMap<String, u64>,
    /// Where configuration came from.
    pub config_sources: Vec<String>,
    /// Input files.
    pub inputs: Vec<String>,
    /// Most requests pending at once.
    pub peak_pending_requests: u64,
    /// Most responses waiting for their request at once.
    pub peak_waiting_responses: u64,
    /// Waiting responses dead-lettered early (`orphan_response`) because
    /// `max_waiting_responses` was reached: they are among the orphan responses.
    pub waiting_responses_evicted: u64,
    /// Events so far ahead of their file's or partition's other events that they were not
    /// allowed to move its watermark (applied like any other; docs/events.md, "Where the contract leaves a choice").
    pub watermark_outliers: u64,
    /// Most bytes of correlation state at once (sampled).
    pub peak_state_bytes: u64,
    /// Lines of the types `input.ignore_types` lists, by type (issue 32): not among
    /// `events_read`, no dead letter, no watermark.
    pub ignored_by_type: std::collections::BTreeMap<String, u64>,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Events read per wall-clock second.
    pub events_per_second: f64,
}

/// A month's coverage in `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MonthCoverage {
    /// No gap longer than `time.coverage_max_gap` from its first minute to its last.
    pub complete: bool,
    /// The gaps that are, as RFC 3339 `[from, to)`: no valid event between them.
    pub gaps: Vec<[String; 2]>,
}

/// Each month of `agg` (with rows or events) and its coverage.
pub fn coverage_of(agg: &Aggregates) -> std::collections::BTreeMap<String, MonthCoverage> {
    let mut months: Vec<Month> = agg.months();
    months.extend(agg.coverage().months());
    months.sort();
    months.dedup();
    months
        .into_iter()
        .map(|m| {
            let j = agg.completeness(m);
            (
                m.to_string(),
                MonthCoverage {
                    complete: j.complete,
                    gaps: j
                        .gaps
                        .iter()
                        .map(|(a, b)| [a.to_rfc3339_millis(), b.to_rfc3339_millis()])
                        .collect(),
                },
            )
        })
        .collect()
}

impl Summary {
    /// Builds the summary of a run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stats: &PipelineStats,
        agg: &Aggregates,
        watermark: Ts,
        sha256: &str,
        config_sources: &[String],
        inputs: Vec<String>,
        wall_seconds: f64,
    ) -> Summary {
        let mut by = std::collections::BTreeMap::new();
        for t in EventType::ALL {
            for r in EventResult::ALL {
                let n = stats.by_type_result[t as usize][r as usize];
                if n > 0 {
                    by.insert(format!("{}/{}", t.as_str(), r.as_str()), n);
                }
            }
        }
        let a = agg.stats();
        Summary {
            events_read: stats.events,
            blank_lines: stats.blank_lines,
            requests: stats.of_type(EventType::Request),
            responses: stats.of_type(EventType::Response),
            duplicates: stats.of_result(EventResult::Duplicate),
            unmeasured_requests: a.unmeasured,
            late_events: stats.of_result(EventResult::Late),
            decided_requests: a.decided,
            revised_requests: a.revised,
            dead_letters: DeadReason::ALL
                .iter()
                .map(|r| (r.as_str(), stats.dead_letters[r.index()]))
                .collect(),
            dead_letters_total: stats.dead_letters_total(),
            events_by_type_result: by,
            watermark: (watermark != Ts::MIN).then(|| watermark.to_rfc3339_millis()),
            months: agg
                .months()
                .into_iter()
                .map(|m| (m.to_string(), agg.is_final(m)))
                .collect(),
            coverage: coverage_of(agg),
            definitions_sha256: sha256.to_string(),
            exemptions_sha256: agg.register().sha256.clone(),
            views: agg.register().views.clone(),
            exempted_by_view: agg
                .register()
                .views
                .iter()
                .enumerate()
                .map(|(v, name)| {
                    let n = agg
                        .blocks()
                        .iter()
                        .filter_map(|(m, mi, _)| agg.exempted().regions(v, *m, *mi))
                        .flat_map(|t| t.iter().map(|x| x.requests))
                        .sum();
                    (name.clone(), n)
                })
                .collect(),
            config_sources: config_sources.to_vec(),
            inputs,
            peak_pending_requests: stats.peak_pending,
            peak_waiting_responses: stats.peak_waiting,
            waiting_responses_evicted: stats.evicted_waiting,
            watermark_outliers: stats.watermark_outliers,
            peak_state_bytes: stats.peak_state_bytes,
            ignored_by_type: stats.ignored_by_type.clone(),
            wall_seconds,
            events_per_second: if wall_seconds > 0.0 {
                stats.events as f64 / wall_seconds
            } else {
                0.0
            },
        }
    }
}
