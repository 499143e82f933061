//! The analyst's month (issue 33, `srv-opr report --month YYYY-MM`): one month of the streaming
//! measures alone, with no external input: each measure and region against TPL and MPL with the
//! change from the month before, the failure buckets, where the response time went (to the
//! acknowledgement and after it), the service users with the most misses, the availability of
//! each interface, what the exemption register took out, whether the events cover the month,
//! and its sign-off. As a self-contained HTML page and an XLSX workbook whose sheets print on
//! A4 (landscape, one page wide, the header row repeated).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;
use rust_xlsxwriter::{Color, Format, FormatBorder, Workbook, Worksheet, XlsxError};

use super::html::esc;
use crate::engine::aggregate::{Aggregates, Judged, rpl_decimal};
use crate::engine::calendar::Month;
use crate::engine::definitions::Definitions;
use crate::engine::domain::POOLED;
use crate::signoff::SignedMonth;
use crate::sink::month::{AvailabilityLine, ExemptionLine, RplLine};

/// Everything the month's report shows.
pub(crate) struct MonthReport<'a> {
    /// The month.
    pub month: Month,
    /// The definitions.
    pub defs: &'a Definitions,
    /// The month's `rpl.csv` rows (`opr` view).
    pub lines: Vec<RplLine>,
    /// The month before's rows, for the change.
    pub before: Vec<RplLine>,
    /// Each interface's month.
    pub availability: Vec<AvailabilityLine>,
    /// What each exemption took out of the month.
    pub exemptions: Vec<ExemptionLine>,
    /// Whether the events cover the month.
    pub coverage: Judged,
    /// The longest gap a complete month may have, as configured (`6h`).
    pub max_gap: String,
    /// The month is final.
    pub is_final: bool,
    /// Its sign-off against its figures now, if it was signed (a store only).
    pub signoff: Option<SignedMonth>,
    /// Where the figures come from (`the state store`, `a replay of 2 files`).
    pub source: String,
    /// Names of the exemption register's entries, by index.
    pub exemption_ids: Vec<String>,
}

impl<'a> MonthReport<'a> {
    /// The month's report from `agg` (which holds `month` and, if there were events, the month
    /// before).
    pub fn of(
        agg: &'a Aggregates,
        month: Month,
        signoff: Option<SignedMonth>,
        source: String,
    ) -> MonthReport<'a> {
        let before = month.prev();
        MonthReport {
            month,
            defs: agg.definitions(),
            lines: crate::sink::month::rpl_lines(agg, Some(&[month])),
            before: crate::sink::month::rpl_lines(agg, Some(&[before])),
            availability: crate::sink::month::availability_lines(agg, 0, Some(&[month])),
            exemptions: crate::sink::month::exemption_lines(agg, Some(&[month]))
                .into_iter()
                .filter(|l| l.view == crate::engine::exemption::OPR && l.region == POOLED)
                .collect(),
            coverage: agg.completeness(month),
            max_gap: crate::engine::time::Dur(agg.coverage_max_gap()).to_string(),
            is_final: agg.is_final(month),
            signoff,
            source,
            exemption_ids: agg
                .register()
                .exemptions
                .iter()
                .map(|e| e.id.clone())
                .collect(),
        }
    }

    /// The RPL of `measure`, `region` the month before, if it had requests.
    fn before_rpl(&self, measure: &str, region: &str) -> Option<Decimal> {
        self.before
            .iter()
            .find(|l| l.measure == measure && l.region == region)
            .and_then(|l| rpl_decimal(l.hits, l.row.requests))
    }

    /// Rows judged against a level (a regional measure's regions, a pooled one's `all`), in
    /// definition order.
    fn judged(&self) -> Vec<(&crate::engine::definitions::Measure, &RplLine)> {
        let mut out = Vec::new();
        for m in &self.defs.measures {
            for l in self.lines.iter().filter(|l| l.measure == m.id) {
                let judged = if m.regional {
                    l.region != POOLED
                } else {
                    l.region == POOLED
                };
                if judged {
                    out.push((m, l));
                }
            }
        }
        out
    }

    /// The month's failure buckets per measure and region, most first (at most `top` each).
    fn failures(&self, top: usize) -> Vec<(String, &'static str, String, u64)> {
        let mut out = Vec::new();
        for l in self.lines.iter().filter(|l| l.region != POOLED) {
            let mut b: Vec<(String, u64)> =
                l.row.buckets.iter().map(|(b, n)| (b.name(), *n)).collect();
            b.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
            for (bucket, n) in b.into_iter().take(top) {
                out.push((l.measure.clone(), l.region, bucket, n));
            }
        }
        out
    }

    /// The users with the most misses per measure (the `all` rows), up to `n` each.
    fn users(&self, n: usize) -> Vec<(String, Vec<super::year::UserMisses>)> {
        let mut out = Vec::new();
        for m in &self.defs.measures {
            let Some(l) = self
                .lines
                .iter()
                .find(|l| l.measure == m.id && l.region == POOLED)
            else {
                continue;
            };
            let v = super::year::most_misses(&l.row.users, m.basis, n);
            if v.is_empty() {
                continue;
            }
            out.push((m.id.clone(), v));
        }
        out
    }

    /// One line on whether the events cover the month.
    fn coverage_text(&self) -> String {
        if self.coverage.complete {
            format!(
                "complete: events from its first minute to its last, no gap longer than {}",
                self.max_gap
            )
        } else {
            let gaps: Vec<String> = self
                .coverage
                .gaps
                .iter()
                .take(5)
                .map(|(a, b)| format!("{} to {}", a.to_rfc3339_millis(), b.to_rfc3339_millis()))
                .collect();
            format!(
                "NOT complete: no event from {}{} (longer than {}): the figures are of part of \
                 the month",
                gaps.join(", from "),
                match self.coverage.gaps.len() {
                    n if n > 5 => format!(" and {} more gaps", n - 5),
                    _ => String::new(),
                },
                self.max_gap
            )
        }
    }

    /// One line on the sign-off.
    fn signoff_text(&self) -> String {
        match &self.signoff {
            None => "not signed".to_string(),
            Some(s) if s.restated_fields > 0 => format!(
                "signed by {} at {}; RESTATED since: {} fields differ ({})",
                s.signed_by,
                s.signed_at,
                s.restated_fields,
                s.causes.join("; ")
            ),
            Some(s) => format!(
                "signed by {} at {}; the figures stand as signed",
                s.signed_by, s.signed_at
            ),
        }
    }
}

/// What share of its row's requests an exemption took out, percent, two places.
fn share(e: &ExemptionLine) -> String {
    if e.requests_before == 0 {
        return "—".into();
    }
    format!(
        "{:.2}",
        (Decimal::from(e.requests_exempted) * Decimal::ONE_HUNDRED
            / Decimal::from(e.requests_before))
        .round_dp(2)
    )
}

/// The state of a row against its levels, in words.
fn state(rpl: Option<Decimal>, tpl: Option<Decimal>, mpl: Option<Decimal>) -> &'static str {
    match (rpl, tpl, mpl) {
        (None, _, _) => "no requests",
        (Some(_), None, _) => "no target",
        (Some(r), _, Some(m)) if r < m => "BELOW MINIMUM",
        (Some(r), Some(t), _) if r < t => "BELOW TARGET",
        _ => "on target",
    }
}

fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "—".into(), |x| format!("{x}"))
}

/// The page: one HTML document, nothing fetched from elsewhere.
pub(crate) fn html(r: &MonthReport, workbook: &str) -> String {
    let mut h = String::with_capacity(64 << 10);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>srv-opr {m}</title><style>{CSS}</style></head><body>\n\
         <h1>Service request performance, {m}</h1>\
         <p class=\"note\">The streaming measures alone, from {src}. The workbook: \
         <a href=\"{wb}\">{wb}</a>.</p>\
         <dl id=\"facts\"><dt>Coverage</dt><dd id=\"coverage\" data-complete=\"{c}\" class=\"{cc}\">{ct}</dd>\
         <dt>Final</dt><dd id=\"final\" data-final=\"{f}\">{ft}</dd>\
         <dt>Sign-off</dt><dd id=\"signoff\">{so}</dd></dl>\n",
        m = r.month,
        src = esc(&r.source),
        wb = esc(workbook),
        c = r.coverage.complete,
        cc = if r.coverage.complete { "ok" } else { "warn" },
        ct = esc(&r.coverage_text()),
        f = r.is_final,
        ft = if r.is_final {
            "yes: only late events (revisions) can change it"
        } else {
            "not yet: events up to its end plus the longest deadline have not all been seen"
        },
        so = esc(&r.signoff_text()),
    );
    headline(&mut h, r);
    measures_table(&mut h, r);
    detail_tables(&mut h, r);
    availability_and_exemptions(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

/// The month in one line, first: which judged rows are below their levels, if any.
fn headline(h: &mut String, r: &MonthReport) {
    let mut judged = 0;
    let mut below = Vec::new();
    for (m, l) in r.judged().into_iter().filter(|(m, _)| m.tpl.is_some()) {
        judged += 1;
        let st = state(rpl_decimal(l.hits, l.row.requests), m.tpl, m.mpl);
        if st.starts_with("BELOW") {
            below.push(format!("{} {} ({})", m.id, l.region, st.to_lowercase()));
        }
    }
    let (class, text) = if below.is_empty() {
        (
            "ok",
            format!("Every one of the {judged} rows judged against a target is on target."),
        )
    } else {
        (
            if below.iter().any(|b| b.contains("minimum")) {
                "crit"
            } else {
                "warn"
            },
            format!(
                "{} of the {judged} rows judged against a target are below it: {}.",
                below.len(),
                below.join(", ")
            ),
        )
    };
    let _ = writeln!(
        h,
        "<p id=\"headline\" class=\"headline {class}\" data-below=\"{}\">{}</p>",
        below.len(),
        esc(&text)
    );
}

/// Each judged row against its levels, with the month before and the change.
fn measures_table(h: &mut String, r: &MonthReport) {
    h.push_str(
        "<h2>Measures against their levels</h2><div class=\"scroll\"><table id=\"measures\">\
         <thead><tr><th>Measure</th><th>Region</th><th>Requests</th><th>Hits</th><th>RPL %</th>\
         <th>TPL / MPL</th><th>State</th><th>Previous month</th><th>Change</th></tr></thead><tbody>",
    );
    for (m, l) in r.judged() {
        let rpl = rpl_decimal(l.hits, l.row.requests);
        let before = r.before_rpl(&m.id, l.region);
        let st = state(rpl, m.tpl, m.mpl);
        let class = match st {
            "BELOW MINIMUM" => "crit",
            "BELOW TARGET" => "warn",
            "on target" => "ok",
            _ => "muted",
        };
        let change = match (rpl, before) {
            (Some(a), Some(b)) => {
                let d = (a - b).round_dp(2);
                // No change is `0.00`, never `-0.00` (a tiny fall rounds to a signed zero).
                let d = if d.is_zero() { Decimal::new(0, 2) } else { d };
                format!("{}{d}", if d > Decimal::ZERO { "+" } else { "" })
            }
            _ => "—".into(),
        };
        let _ = write!(
            h,
            "<tr data-measure=\"{}\" data-region=\"{}\"><th scope=\"row\" title=\"{}\">{}</th>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num rpl\">{}</td>\
             <td class=\"num\">{}</td><td><span class=\"badge {class}\">{st}</span></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&m.id),
            l.region,
            esc(&m.name),
            esc(&m.id),
            l.region,
            l.row.requests,
            l.hits,
            esc(&l.rpl),
            match (m.tpl, m.mpl) {
                (Some(t), Some(p)) => format!("{} / {}", t.normalize(), p.normalize()),
                (Some(t), None) => t.normalize().to_string(),
                _ => "—".into(),
            },
            before.map_or_else(|| "—".into(), |b| format!("{:.4}", b.round_dp(4))),
            change
        );
    }
}

/// The largest failure buckets, where the time went, and the users with the most misses.
fn detail_tables(h: &mut String, r: &MonthReport) {
    h.push_str("</tbody></table></div>\n<h2>Failure buckets</h2><div class=\"scroll\"><table id=\"failures\"><thead><tr><th>Measure</th><th>Region</th><th>Bucket</th><th>Misses</th></tr></thead><tbody>");
    for (m, reg, b, n) in r.failures(3) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{reg}</td><td>{}</td><td class=\"num\">{n}</td></tr>",
            esc(&m),
            esc(&b)
        );
    }
    h.push_str("</tbody></table></div>\n<h2>Where the time went</h2><div class=\"scroll\"><table id=\"segments\"><thead><tr><th>Measure</th><th>Region</th><th>Requests</th><th>Acknowledged</th><th>To ack p50 (ms)</th><th>To ack p95</th><th>After ack p95</th><th>Response p95</th></tr></thead><tbody>");
    for l in r.lines.iter().filter(|l| l.row.acked > 0) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&l.measure),
            l.region,
            l.row.requests,
            l.row.acked,
            opt_ms(l.row.ack_quantile_ms(0.5)),
            opt_ms(l.row.ack_quantile_ms(0.95)),
            opt_ms(l.row.after_ack_quantile_ms(0.95)),
            opt_ms(l.row.quantile_ms(0.95)),
        );
    }
    h.push_str("</tbody></table></div>\n<h2>Service users with the most misses</h2><div class=\"scroll\"><table id=\"users\"><thead><tr><th>Measure</th><th>User</th><th>Misses</th><th>Requests</th></tr></thead><tbody>");
    for (m, users) in r.users(3) {
        for (u, missed, req) in users {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{missed}</td><td class=\"num\">{req}</td></tr>",
                esc(&m),
                esc(&u)
            );
        }
    }
}

/// Each interface's availability, and what the exemption register took out.
fn availability_and_exemptions(h: &mut String, r: &MonthReport) {
    h.push_str("</tbody></table></div>\n<h2>Interface availability</h2>");
    if r.availability.is_empty() {
        h.push_str("<p class=\"note\">No availability event this month.</p>");
    } else {
        h.push_str("<table id=\"availability\"><thead><tr><th>Interface</th><th>Minutes</th><th>Down</th><th>Exempted</th><th>Availability %</th></tr></thead><tbody>");
        for a in &r.availability {
            let f = &a.figures;
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&a.interface),
                f.minutes,
                f.down_minutes,
                f.exempted_minutes,
                f.percent()
                    .map_or_else(|| "—".into(), |p| format!("{:.4}", p.round_dp(4)))
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("<h2>Exemptions</h2>");
    if r.exemptions.is_empty() {
        h.push_str("<p class=\"note\">The register took nothing out of this month.</p>");
    } else {
        h.push_str("<table id=\"exemptions\"><thead><tr><th>Exemption</th><th>Measure</th><th>Requests taken out</th><th>Share %</th></tr></thead><tbody>");
        for e in &r.exemptions {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(r.exemption_ids.get(e.exemption).map_or("?", |s| s.as_str())),
                esc(&e.measure),
                e.requests_exempted,
                share(e),
            );
        }
        h.push_str("</tbody></table>");
    }
}

const CSS: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#1d1d1f;max-width:70em}\
h1{font-size:1.5em}h2{font-size:1.15em;margin:1.4em 0 .4em}\
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{color:#555}dd{margin:0}\
table{border-collapse:collapse;margin:.3em 0}th,td{padding:.2em .6em;border-bottom:1px solid #ddd;\
text-align:left}.num{text-align:right;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;padding:.05em .45em;border-radius:.3em;font-weight:600;\
border:1px solid currentColor;white-space:nowrap}\
.ok{color:#0a6b2b}.badge.ok{background:#e3f5e8}.warn{color:#8a5300}.badge.warn{background:#fff1cc}\
.crit{color:#a00000}.badge.crit{background:#fde0e0}.muted{color:#777}.note{color:#555}\
dd.warn{font-weight:600}.scroll{overflow-x:auto}\
p.headline{font-size:1.1em;font-weight:600;padding:.4em .7em;border-left:4px solid currentColor}\
@media print{body{margin:0;max-width:none}.scroll{overflow:visible}}";

/// The sheets' shared formats.
struct Fm {
    title: Format,
    header: Format,
    pct: Format,
    count: Format,
    note: Format,
}

/// Landscape A4, one page wide, as many pages down as it takes, the header row on each.
fn page(ws: &mut Worksheet, header_row: u32) -> Result<(), XlsxError> {
    ws.set_landscape();
    ws.set_paper_size(9);
    ws.set_print_fit_to_pages(1, 0);
    ws.set_repeat_rows(header_row, header_row)?;
    Ok(())
}

fn sheet<'w>(
    wb: &'w mut Workbook,
    r: &MonthReport,
    name: &str,
    title: &str,
    note: &str,
    heads: &[(&str, f64)],
    fm: &Fm,
) -> Result<&'w mut Worksheet, XlsxError> {
    let ws = wb.add_worksheet();
    ws.set_name(name)?;
    page(ws, 3)?;
    ws.write_string_with_format(0, 0, title, &fm.title)?;
    ws.write_string_with_format(1, 0, note, &fm.note)?;
    // The measure column as wide as the longest configured id (a 14-character id ran into the
    // region beside it on the printed page).
    let ids = r.defs.measures.iter().map(|m| m.id.chars().count());
    let measure_w = ids.max().map_or(0.0, |n| n as f64 * 1.15 + 1.0);
    for (c, (h, w)) in heads.iter().enumerate() {
        ws.write_string_with_format(3, c as u16, *h, &fm.header)?;
        let w = if *h == "Measure" {
            w.max(measure_w)
        } else {
            *w
        };
        ws.set_column_width(c as u16, w)?;
    }
    ws.set_freeze_panes(4, 0)?;
    Ok(ws)
}

fn pct(d: Option<Decimal>) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    d.and_then(|x| (x / Decimal::ONE_HUNDRED).to_f64())
}

/// The workbook.
pub(crate) fn workbook(r: &MonthReport) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let fm = Fm {
        title: Format::new().set_bold().set_font_size(14),
        header: Format::new()
            .set_bold()
            .set_text_wrap()
            .set_background_color(Color::RGB(0xD9E1F2))
            .set_border_bottom(FormatBorder::Thin),
        pct: Format::new().set_num_format("0.00%"),
        count: Format::new().set_num_format("#,##0"),
        note: Format::new()
            .set_italic()
            .set_font_color(Color::RGB(0x595959)),
    };
    month_sheet(&mut wb, r, &fm)?;
    failures_sheet(&mut wb, r, &fm)?;
    segments_sheet(&mut wb, r, &fm)?;
    users_sheet(&mut wb, r, &fm)?;
    availability_sheet(&mut wb, r, &fm)?;
    exemptions_sheet(&mut wb, r, &fm)?;
    wb.save_to_buffer()
}

/// The judged rows against their levels, with the month before.
fn month_sheet(wb: &mut Workbook, r: &MonthReport, fm: &Fm) -> Result<(), XlsxError> {
    let m = r.month;
    let ws = sheet(
        wb,
        r,
        "Month",
        &format!("Service request performance, {m}"),
        &format!(
            "From {}. Coverage: {}. Final: {}. Sign-off: {}.",
            r.source,
            r.coverage_text(),
            if r.is_final { "yes" } else { "not yet" },
            r.signoff_text()
        ),
        &[
            ("Measure", 14.0),
            ("Region", 9.0),
            ("Requests", 11.0),
            ("Hits", 11.0),
            ("RPL", 9.0),
            ("TPL", 8.0),
            ("MPL", 8.0),
            ("State", 15.0),
            ("Previous month", 10.0),
            ("Change (points)", 10.0),
        ],
        fm,
    )?;
    for (k, (meas, l)) in r.judged().into_iter().enumerate() {
        let row = 4 + k as u32;
        let rpl = rpl_decimal(l.hits, l.row.requests);
        let before = r.before_rpl(&meas.id, l.region);
        ws.write_string(row, 0, &meas.id)?;
        ws.write_string(row, 1, l.region)?;
        ws.write_number_with_format(row, 2, l.row.requests as f64, &fm.count)?;
        ws.write_number_with_format(row, 3, l.hits as f64, &fm.count)?;
        for (col, v) in [
            (4, pct(rpl)),
            (5, pct(meas.tpl)),
            (6, pct(meas.mpl)),
            (8, pct(before)),
        ] {
            if let Some(v) = v {
                ws.write_number_with_format(row, col, v, &fm.pct)?;
            }
        }
        ws.write_string(row, 7, state(rpl, meas.tpl, meas.mpl))?;
        if let (Some(a), Some(b)) = (pct(rpl), pct(before)) {
            ws.write_number_with_format(
                row,
                9,
                (a - b) * 100.0,
                &Format::new().set_num_format("+0.00;-0.00;0.00"),
            )?;
        }
    }
    Ok(())
}

/// The three largest failure buckets per measure and region.
fn failures_sheet(wb: &mut Workbook, r: &MonthReport, fm: &Fm) -> Result<(), XlsxError> {
    let m = r.month;
    let ws = sheet(
        wb,
        r,
        "Failures",
        &format!("Failure buckets, {m}"),
        "the three largest per measure and region; every one in failures.csv",
        &[
            ("Measure", 14.0),
            ("Region", 9.0),
            ("Bucket", 14.0),
            ("Misses", 10.0),
        ],
        fm,
    )?;
    for (k, (meas, reg, b, n)) in r.failures(3).into_iter().enumerate() {
        let row = 4 + k as u32;
        ws.write_string(row, 0, &meas)?;
        ws.write_string(row, 1, reg)?;
        ws.write_string(row, 2, &b)?;
        ws.write_number_with_format(row, 3, n as f64, &fm.count)?;
    }
    Ok(())
}

/// Where the response time went: before and after the first acknowledgement.
fn segments_sheet(wb: &mut Workbook, r: &MonthReport, fm: &Fm) -> Result<(), XlsxError> {
    let m = r.month;
    let ws = sheet(
        wb,
        r,
        "Time segments",
        &format!("Where the response time went, {m}"),
        "ms: request to DCC's first acknowledgement, and from it to the final response",
        &[
            ("Measure", 14.0),
            ("Region", 9.0),
            ("Requests", 11.0),
            ("Acknowledged", 12.0),
            ("To ack p50", 10.0),
            ("To ack p95", 10.0),
            ("After ack p95", 10.0),
            ("Response p95", 10.0),
        ],
        fm,
    )?;
    for (k, l) in r.lines.iter().filter(|l| l.row.acked > 0).enumerate() {
        let row = 4 + k as u32;
        ws.write_string(row, 0, &l.measure)?;
        ws.write_string(row, 1, l.region)?;
        ws.write_number_with_format(row, 2, l.row.requests as f64, &fm.count)?;
        ws.write_number_with_format(row, 3, l.row.acked as f64, &fm.count)?;
        for (col, v) in [
            (4, l.row.ack_quantile_ms(0.5)),
            (5, l.row.ack_quantile_ms(0.95)),
            (6, l.row.after_ack_quantile_ms(0.95)),
            (7, l.row.quantile_ms(0.95)),
        ] {
            if let Some(v) = v {
                ws.write_number_with_format(row, col, v as f64, &fm.count)?;
            }
        }
    }
    Ok(())
}

/// The service users with the most misses per measure.
fn users_sheet(wb: &mut Workbook, r: &MonthReport, fm: &Fm) -> Result<(), XlsxError> {
    let m = r.month;
    let ws = sheet(
        wb,
        r,
        "Users",
        &format!("Service users with the most misses, {m}"),
        "the three with the most per measure; every user in users.csv",
        &[
            ("Measure", 14.0),
            ("User", 26.0),
            ("Misses", 10.0),
            ("Requests", 11.0),
        ],
        fm,
    )?;
    let mut k = 0u32;
    for (meas, users) in r.users(3) {
        for (u, missed, req) in users {
            let row = 4 + k;
            ws.write_string(row, 0, &meas)?;
            ws.write_string(row, 1, &u)?;
            ws.write_number_with_format(row, 2, missed as f64, &fm.count)?;
            ws.write_number_with_format(row, 3, req as f64, &fm.count)?;
            k += 1;
        }
    }
    Ok(())
}

/// Each interface's availability.
fn availability_sheet(wb: &mut Workbook, r: &MonthReport, fm: &Fm) -> Result<(), XlsxError> {
    let m = r.month;
    let ws = sheet(
        wb,
        r,
        "Availability",
        &format!("Interface availability, {m}"),
        "from availability events; exempted minutes count as up",
        &[
            ("Interface", 16.0),
            ("Minutes", 10.0),
            ("Down", 10.0),
            ("Exempted", 10.0),
            ("Availability", 12.0),
        ],
        fm,
    )?;
    for (k, a) in r.availability.iter().enumerate() {
        let row = 4 + k as u32;
        let f = &a.figures;
        ws.write_string(row, 0, &a.interface)?;
        for (col, v) in [(1, f.minutes), (2, f.down_minutes), (3, f.exempted_minutes)] {
            ws.write_number_with_format(row, col, f64::from(v), &fm.count)?;
        }
        if let Some(p) = pct(f.percent()) {
            ws.write_number_with_format(row, 4, p, &Format::new().set_num_format("0.0000%"))?;
        }
    }
    Ok(())
}

/// What the exemption register took out.
fn exemptions_sheet(wb: &mut Workbook, r: &MonthReport, fm: &Fm) -> Result<(), XlsxError> {
    let m = r.month;
    let ws = sheet(
        wb,
        r,
        "Exemptions",
        &format!("What the exemption register took out, {m}"),
        "the opr view, all regions together",
        &[
            ("Exemption", 18.0),
            ("Measure", 14.0),
            ("Requests", 11.0),
            ("Share %", 10.0),
        ],
        fm,
    )?;
    let mut ids: BTreeMap<usize, &str> = BTreeMap::new();
    for (i, id) in r.exemption_ids.iter().enumerate() {
        ids.insert(i, id);
    }
    for (k, e) in r.exemptions.iter().enumerate() {
        let row = 4 + k as u32;
        ws.write_string(row, 0, ids.get(&e.exemption).copied().unwrap_or("?"))?;
        ws.write_string(row, 1, &e.measure)?;
        ws.write_number_with_format(row, 2, e.requests_exempted as f64, &fm.count)?;
        ws.write_string(row, 3, share(e))?;
    }
    Ok(())
}
