//! The one-page HTML summary of a year: the Table 7 equivalent, the charts (SVG files beside
//! it in `charts/`) and the worst failure buckets. Static, no scripts, readable offline.

use std::fmt::Write as _;

use super::charts::{Chart, SIZE};
use super::year::{Year, exemption_year, worst_buckets};
use crate::score::render::{assessment, fixed};

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The page; `workbook` is the workbook's file name, linked from it.
pub(crate) fn page(y: &Year, charts: &[Chart], workbook: &str) -> String {
    let r = y.score;
    let mut s = String::new();
    let title = format!("{}: OPR summary", y.scheme.title);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{t}</title>\n<style>\n\
         body {{ font-family: 'DejaVu Sans', Arial, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 1700px; \
         color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #bbb; padding: 4px 8px; }}\n\
         th {{ background: #d9e1f2; text-align: left; }}\n\
         td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}\n\
         tr.total td {{ font-weight: bold; }}\n\
         .charts {{ display: flex; flex-wrap: wrap; gap: 12px; }}\n\
         figure {{ margin: 0; }}\n\
         figcaption {{ font-size: 90%; color: #555; }}\n\
         .note {{ color: #555; font-size: 90%; }}\n\
         </style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = esc(&title)
    );
    let _ = writeln!(
        s,
        "<p class=\"note\">Margin at risk £{}m. Months in the year's figures: {}. Workbook: \
         <a href=\"{wb}\">{wb}</a>; exact figures: <a href=\"score.json\">score.json</a>, \
         <a href=\"rpl.csv\">rpl.csv</a>, <a href=\"failures.csv\">failures.csv</a>.</p>",
        fixed(r.margin_at_risk, 3),
        months_text(y),
        wb = esc(workbook)
    );

    s.push_str("<h2>Margin retained (Table 7)</h2>\n<table id=\"table7\">\n<tr><th>Measure</th><th>Name</th><th>Weight</th><th>Assessment</th><th>Retained %</th><th>Retained £m</th><th>Lost £m</th></tr>\n");
    for m in &r.measures {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}%</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&m.measure),
            esc(&m.name),
            fixed(m.weight_decimal * rust_decimal::Decimal::ONE_HUNDRED, 2),
            esc(&assessment(m)),
            m.retained_share
                .map(|x| format!("{}%", fixed(x * rust_decimal::Decimal::ONE_HUNDRED, 2)))
                .unwrap_or_else(|| "n/a".into()),
            fixed(m.kept, 3),
            fixed(m.lost, 3)
        );
    }
    let share = if r.margin_at_risk.is_zero() {
        rust_decimal::Decimal::ZERO
    } else {
        r.total_kept / r.margin_at_risk
    };
    let _ = writeln!(
        s,
        "<tr class=\"total\"><td>Total</td><td></td><td class=\"n\">100.00%</td><td></td><td class=\"n\">{}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n</table>",
        fixed(share * rust_decimal::Decimal::ONE_HUNDRED, 2),
        fixed(r.total_kept, 3),
        fixed(r.total_lost, 3)
    );
    if !r.warnings.is_empty() {
        s.push_str("<ul class=\"note\">\n");
        for w in &r.warnings {
            let _ = writeln!(s, "<li>{}</li>", esc(w));
        }
        s.push_str("</ul>\n");
    }

    s.push_str("<h2>Monthly RPL and response times</h2>\n<div class=\"charts\">\n");
    for c in charts {
        let _ = writeln!(
            s,
            "<figure><img src=\"charts/{stem}.svg\" width=\"{w}\" height=\"{h}\" alt=\"{t}\"><figcaption>{t} (<a href=\"charts/{stem}.png\">PNG</a>)</figcaption></figure>",
            stem = esc(&c.stem),
            w = SIZE.0,
            h = SIZE.1,
            t = esc(&c.title)
        );
    }
    s.push_str("</div>\n");

    let worst = worst_buckets(y, 15);
    s.push_str("<h2>Worst failure buckets of the year</h2>\n");
    if worst.is_empty() {
        s.push_str("<p>No misses in the year.</p>\n");
    } else {
        s.push_str("<table id=\"failures\">\n<tr><th>Measure</th><th>Region</th><th>Bucket</th><th>Misses</th><th>Requests behind them</th></tr>\n");
        for b in &worst {
            let file = crate::sink::month::evidence_file_name(&b.measure);
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td><a href=\"evidence/{}\">evidence/{}</a></td></tr>",
                esc(&b.measure),
                esc(b.region),
                esc(&b.bucket),
                b.count,
                esc(&file),
                esc(&file)
            );
        }
        s.push_str("</table>\n<p class=\"note\">Request ids behind each bucket: <code>evidence/</code>. All buckets per month: <code>failures.csv</code>.</p>\n");
    }
    segments(&mut s, y);
    users(&mut s, y);
    exemptions(&mut s, y);
    signoffs(&mut s, y);
    let _ = writeln!(
        s,
        "<p class=\"note\">Built by srv-opr {}; measure definitions SHA-256 {}; exemption \
         register SHA-256 {}.</p>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION"),
        esc(&y.defs.sha256),
        esc(y.aggregates.register().sha256.as_deref().unwrap_or("none"))
    );
    s
}

/// Where the response time went (issue 32): to DCC's acknowledgement, and after it, per
/// measure and region over the year.
fn segments(s: &mut String, y: &Year) {
    let rows = super::year::segment_year(y);
    s.push_str("<h2>Where the time went: before and after DCC's acknowledgement</h2>\n");
    if rows.iter().all(|r| r.acked == 0) {
        s.push_str("<p>No request of the year was acknowledged.</p>\n");
        return;
    }
    s.push_str("<table id=\"segments\">\n<tr><th>Measure</th><th>Region</th><th>Requests</th><th>Acknowledged</th><th>To acknowledgement p50</th><th>p95</th><th>After it p95</th><th>Response p95</th></tr>\n");
    let ms = |v: Option<u64>| v.map_or_else(|| "–".to_string(), |v| format!("{v} ms"));
    for r in rows.iter().filter(|r| r.acked > 0) {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&r.measure),
            esc(r.region),
            r.requests,
            r.acked,
            ms(r.ack_p50_ms),
            ms(r.ack_p95_ms),
            ms(r.after_ack_p95_ms),
            ms(r.p95_ms)
        );
    }
    s.push_str("</table>\n<p class=\"note\">Per month: <code>rpl.csv</code>'s <code>acked</code>, <code>ack_p50_ms</code>, <code>ack_p95_ms</code>, <code>after_ack_p95_ms</code>.</p>\n");
}

/// The service users with the most misses per measure over the year (issue 32; every user,
/// month by month: `users.csv`).
fn users(s: &mut String, y: &Year) {
    let rows = super::year::user_misses_year(y, 5);
    s.push_str("<h2>Service users with the most misses</h2>\n");
    if rows.is_empty() {
        s.push_str("<p>No misses in the year.</p>\n");
        return;
    }
    s.push_str("<table id=\"users\">\n<tr><th>Measure</th><th>User</th><th>Misses</th><th>Requests</th></tr>\n");
    for (measure, users) in &rows {
        for (user, missed, requests) in users {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(measure),
                esc(user),
                missed,
                requests
            );
        }
    }
    s.push_str("</table>\n<p class=\"note\">Every user, month by month: <code>users.csv</code> (<code>-</code>: requests without a user).</p>\n");
}

/// Each month's sign-off (issue 31): signed or not, by whom and when, and what was restated
/// since (the workbook's `Sign-off` sheet lists every restated field).
fn signoffs(s: &mut String, y: &Year) {
    s.push_str("<h2>Sign-off</h2>\n<table id=\"signoff\">\n<tr><th>Month</th><th>Signed</th><th>Restated since</th></tr>\n");
    for m in &y.months {
        let text = m.to_string();
        let signed = y
            .signoffs
            .iter()
            .find(|x| x.month == text && x.view == "opr");
        let (who, since, class) = match signed {
            None => ("not signed".to_string(), String::new(), "unsigned"),
            Some(x) => (
                format!(
                    "{} at {}{}",
                    esc(&x.signed_by),
                    esc(&x.signed_at),
                    if x.forced {
                        " (before final, --force)"
                    } else {
                        ""
                    }
                ),
                if x.restated_fields == 0 {
                    "nothing: the signed figures stand".to_string()
                } else {
                    format!(
                        "<strong>{} fields</strong>: {}",
                        x.restated_fields,
                        esc(&x.causes.join("; "))
                    )
                },
                if x.restated_fields == 0 {
                    "signed"
                } else {
                    "restated"
                },
            ),
        };
        let _ = writeln!(
            s,
            "<tr class=\"{class}\" data-month=\"{}\"><td>{}</td><td>{who}</td><td>{since}</td></tr>",
            esc(&text),
            esc(&super::year::month_label(*m))
        );
    }
    s.push_str("</table>\n");
}

/// What the exemption register took out of the year, per view, reason and incident (the
/// workbook's `Exemptions` sheet has the audit trail and the totals per reason).
fn exemptions(s: &mut String, y: &Year) {
    let register = y.aggregates.register();
    s.push_str("<h2>Exempted from reporting</h2>\n");
    if register.is_empty() {
        s.push_str(
            "<p id=\"exemptions\">No exemption register was applied: nothing was exempted.</p>\n",
        );
        return;
    }
    let year = exemption_year(y);
    if year.is_empty() {
        s.push_str(
            "<p id=\"exemptions\">The register's windows covered no request of the year.</p>\n",
        );
        return;
    }
    s.push_str("<table id=\"exemptions\">\n<tr><th>View</th><th>Reason</th><th>Exemption</th><th>Measure</th><th>Requests exempted</th><th>Share of the year's requests</th></tr>\n");
    for e in &year {
        let Some(ex) = register.exemptions.get(e.exemption) else {
            continue;
        };
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}%</td></tr>",
            esc(&e.view),
            esc(ex.reason.as_str()),
            esc(&ex.id),
            esc(&e.measure),
            e.requests_exempted,
            crate::engine::aggregate::rpl_percent(e.requests_exempted, e.requests_before)
                .unwrap_or_default()
        );
    }
    s.push_str("</table>\n<p class=\"note\">Per month, region and view: <code>exemptions.csv</code>; windows, approvals and totals per reason: the workbook's Exemptions sheet.</p>\n");
}

fn months_text(y: &Year) -> String {
    let with: Vec<String> = y
        .months
        .iter()
        .filter(|m| y.lines.iter().any(|l| l.month == **m))
        .map(|m| {
            let label = super::year::month_label(*m);
            if y.provisional(*m) {
                format!("{label} (not final)")
            } else {
                label
            }
        })
        .collect();
    if with.is_empty() {
        "none from events".into()
    } else {
        with.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&#39;");
    }
}
