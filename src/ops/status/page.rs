//! `/`: the status page, one HTML document with no external asset (it works on an isolated
//! network), readable without JavaScript, reloading itself every [`REFRESH_SECONDS`]. A
//! measure's state is always written out as well as coloured, and every chart is an inline SVG
//! drawn here, with its figures in its title. Every element a test or a script may want has a
//! stable `id` or `data-` attribute.

use std::fmt::Write;

use super::model::{DayPoint, MeasureView, RegionView, Status, TrendPoint, urgency};
// The report's escaping: no configuration or event text reaches the page unescaped.
use crate::report::html::esc;

/// Seconds between the page's reloads.
pub const REFRESH_SECONDS: u32 = 10;

/// The page for `s`.
pub fn render(s: &Status) -> String {
    let mut h = String::with_capacity(64 << 10);
    let title = match &s.month {
        Some(m) => format!("srv-opr {} · {}", m.month, s.instance.group),
        None => format!("srv-opr · {}", s.instance.group),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>\n",
        esc(&title)
    );
    banner(&mut h, s);
    header(&mut h, s);
    alerts(&mut h, s);
    exemptions(&mut h, s);
    interfaces(&mut h, s);
    signoffs(&mut h, s);
    measures(&mut h, s);
    pipeline(&mut h, s);
    let _ = write!(
        h,
        "<footer>Generated {} · reloads every {REFRESH_SECONDS} s · the same as data: \
         <a href=\"status.json\">status.json</a> · <a href=\"metrics\">metrics</a></footer>\n\
         </body></html>\n",
        esc(&local_time(&s.generated_at, &s.instance.zone, ""))
    );
    h
}

/// The overall state, first: the worst alert firing, and the connections' problems now (a dead
/// broker is never drawn as "OK").
fn banner(h: &mut String, s: &Status) {
    let hv = &s.health;
    let class = match hv.state.as_str() {
        "critical" => "crit",
        "warning" => "warn",
        _ => "ok",
    };
    let _ = write!(
        h,
        "<div id=\"health\" class=\"banner {class}\" data-state=\"{}\" role=\"status\">\
         <strong>{}</strong>",
        esc(&hv.state),
        esc(&hv.headline)
    );
    if !hv.problems.is_empty() {
        h.push_str("<ul id=\"health-problems\">");
        for p in &hv.problems {
            let _ = write!(h, "<li>{}</li>", esc(p));
        }
        h.push_str("</ul>");
    }
    h.push_str("</div>\n");
}

fn header(h: &mut String, s: &Status) {
    let i = &s.instance;
    let _ = write!(
        h,
        "<header><h1>srv-opr status</h1><dl id=\"instance\">\
         <dt>Instance</dt><dd id=\"instance-name\">{}</dd>\
         <dt>Group</dt><dd id=\"group\">{}</dd>\
         <dt>Topics</dt><dd id=\"topics\">{}</dd>\
         <dt>Definitions</dt><dd id=\"definitions\" title=\"{}\">{}</dd>\
         <dt>Exemption register</dt><dd id=\"register\" title=\"{}\">{}</dd>\
         <dt>Version</dt><dd id=\"version\">{}</dd>\
         <dt>Started</dt><dd>{}</dd></dl>",
        esc(&i.name),
        esc(&i.group),
        esc(&i.topics.join(", ")),
        esc(&i.definitions_sha256),
        esc(i
            .definitions_sha256
            .get(..12)
            .unwrap_or(&i.definitions_sha256)),
        esc(i.exemptions_sha256.as_deref().unwrap_or("")),
        esc(i
            .exemptions_sha256
            .as_deref()
            .map_or("none", |h| h.get(..12).unwrap_or(h))),
        esc(&i.version),
        esc(&local_time(&i.started_at, &i.zone, &s.generated_at)),
    );
    match &s.month {
        None => h.push_str(
            "<p id=\"scope\" class=\"note\">No event yet: nothing to show until a partition \
             delivers one.</p>",
        ),
        Some(m) => {
            let finality = if m.is_final {
                "<strong id=\"final\" data-final=\"true\">final</strong> (changes only by \
                 revisions)"
            } else {
                "<strong id=\"final\" data-final=\"false\">not final yet</strong>"
            };
            let _ = write!(
                h,
                "<p id=\"month\" data-month=\"{}\">Month <strong>{}</strong>, to date: \
                 watermark {} ({:.1} % of the month gone); {}.</p>",
                esc(&m.month),
                esc(&m.month),
                esc(&local_time(&m.watermark, &s.instance.zone, &s.generated_at)),
                m.elapsed_percent,
                finality
            );
            let coverage = match (m.covered_so_far, m.coverage_gaps.first()) {
                (Some(true), _) => {
                    "<p id=\"coverage\" data-covered=\"true\" class=\"note\">Events \
                     cover the month so far: no gap longer than time.coverage_max_gap.</p>"
                        .to_string()
                }
                (Some(false), Some([a, b])) => format!(
                    "<p id=\"coverage\" data-covered=\"false\" class=\"warn\">NOT complete: no \
                     event from {} to {}{} (longer than time.coverage_max_gap): the month's \
                     figures will not cover it.</p>",
                    esc(&local_time(a, &s.instance.zone, &s.generated_at)),
                    esc(&local_time(b, &s.instance.zone, &s.generated_at)),
                    match m.coverage_gaps.len() {
                        1 => String::new(),
                        n => format!(" and {} more gaps", n - 1),
                    }
                ),
                _ => String::new(),
            };
            h.push_str(&coverage);
            let scope = match (&m.group, m.source.as_str()) {
                (Some(g), "group") => format!(
                    "<p id=\"scope\" data-source=\"group\">Figures of the <strong>whole \
                     group</strong>: the month rows of all {} partitions in the state store, \
                     merged as <code>rollup</code> merges them, as of their last checkpoints \
                     (the oldest {} ago), read from the store {}. This instance's own live figures are \
                     beside them.</p>",
                    g.partitions,
                    g.oldest_checkpoint_age_seconds
                        .map_or_else(|| "unknown".to_string(), |a| format!("{a:.0} s")),
                    esc(&local_time(&g.read_at, &s.instance.zone, &s.generated_at))
                ),
                (Some(g), _) => format!(
                    "<p id=\"scope\" data-source=\"instance\" class=\"warn\">Figures of \
                     <strong>this instance only</strong> (its partitions, live): the group's \
                     figures in the state store are not shown ({}).</p>",
                    esc(g.error.as_deref().unwrap_or("not read yet"))
                ),
                (None, _) => "<p id=\"scope\" data-source=\"instance\">Figures of <strong>this \
                     instance only</strong> (its partitions, live): no state store is \
                     configured, so other members' partitions are not shown.</p>"
                    .to_string(),
            };
            h.push_str(&scope);
        }
    }
    h.push_str("</header>\n");
}

fn alerts(h: &mut String, s: &Status) {
    let _ = write!(
        h,
        "<section id=\"alerts\" data-firing=\"{}\"><h2>Alerts firing: {}</h2>",
        s.alerts.len(),
        s.alerts.len()
    );
    if s.alerts.is_empty() {
        h.push_str("<p class=\"ok\">None.</p>");
    } else {
        h.push_str(
            "<table class=\"stack\"><thead><tr><th>Severity</th><th>Alert</th><th>Where</th>\
             <th>Since</th><th>Summary</th></tr></thead><tbody>",
        );
        for a in &s.alerts {
            let place = match (&a.measure, &a.region) {
                (Some(m), Some(r)) => format!("{m} {r}"),
                (Some(m), None) => m.clone(),
                _ => "pipeline".to_string(),
            };
            let _ = write!(
                h,
                "<tr class=\"alert {}\" data-alert=\"{}\" data-severity=\"{}\"><td><span \
                 class=\"badge {}\">{}</span></td><td>{}</td><td>{}</td><td class=\"since\">{}</td>\
                 <td class=\"summary\">{}</td></tr>",
                sev_class(&a.severity),
                esc(&a.alert),
                esc(&a.severity),
                sev_class(&a.severity),
                esc(&a.severity.to_uppercase()),
                esc(&a.alert),
                esc(&place),
                esc(&local_time(&a.since, &s.instance.zone, &s.generated_at)),
                esc(&a.summary)
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>\n");
}

/// The exemption register (none: nothing shown): its entries, which are active now, and what the
/// `opr` view took out of this month's figures so far.
fn exemptions(h: &mut String, s: &Status) {
    if s.exemptions.is_empty() {
        return;
    }
    let active = s.exemptions.iter().filter(|e| e.active).count();
    let _ = write!(
        h,
        "<section id=\"exemptions\" data-active=\"{active}\"><h2>Exemptions: {active} active \
         now</h2><table><thead><tr><th>Exemption</th><th>Reason</th><th>From</th><th>To</th>\
         <th>Views</th><th>Now</th></tr></thead><tbody>"
    );
    for e in &s.exemptions {
        let _ = write!(
            h,
            "<tr data-exemption=\"{}\" data-active=\"{}\"><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.id),
            e.active,
            esc(&e.id),
            esc(&e.reason.replace('_', " ")),
            esc(&e.from),
            esc(&e.to),
            esc(&e.views.join(", ")),
            if e.active {
                "<strong>active</strong>"
            } else {
                "—"
            }
        );
    }
    h.push_str("</tbody></table>");
    let taken: Vec<String> = s
        .measures
        .iter()
        .flat_map(|m| {
            m.regions
                .iter()
                .filter(|r| r.exempted > 0)
                .map(move |r| format!("{} {} {}", esc(&m.measure), esc(&r.region), r.exempted))
        })
        .collect();
    let _ = writeln!(
        h,
        "<p id=\"exempted\">Requests the opr view took out of this month so far: {}.</p>\
         </section>",
        if taken.is_empty() {
            "none".to_string()
        } else {
            taken.join("; ")
        }
    );
}

/// The interfaces' availability this month (issue 30): a down interface first, in words.
fn interfaces(h: &mut String, s: &Status) {
    if s.interfaces.is_empty() {
        return;
    }
    let down = s.interfaces.iter().filter(|i| i.state == "down").count();
    let _ = write!(
        h,
        "<section id=\"interfaces\" data-down=\"{down}\"><h2>Interfaces: {}</h2><table><thead><tr>\
         <th>Interface</th><th>State</th><th>Availability</th><th>SUM1 TPL</th>\
         <th>Down minutes</th><th>Exempted</th><th>Downtime left</th></tr></thead><tbody>",
        if down == 0 {
            "all up".to_string()
        } else {
            format!("{down} down")
        }
    );
    let mut rows: Vec<&super::model::InterfaceView> = s.interfaces.iter().collect();
    rows.sort_by_key(|i| i.state != "down");
    for i in rows {
        let state = match &i.down_since {
            Some(t) => format!("<strong>DOWN</strong> since {}", esc(t)),
            None => "up".to_string(),
        };
        let _ = write!(
            h,
            "<tr data-interface=\"{}\" data-state=\"{}\" class=\"{}\"><td title=\"{}\">{}</td>\
             <td class=\"state\">{state}</td><td class=\"num availability\">{} % ({})</td>\
             <td class=\"num\">{}</td><td class=\"num down\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num left\">{}</td></tr>",
            esc(&i.interface),
            esc(&i.state),
            if i.state == "down" { "crit" } else { "ok" },
            esc(&i.name),
            esc(&i.interface),
            esc(i.availability_percent.as_deref().unwrap_or("—")),
            esc(&i.month),
            i.target_percent
                .map_or("—".to_string(), |t| format!("{t} %")),
            i.down_minutes,
            i.exempted_minutes,
            i.downtime_left_minutes
                .map_or("—".to_string(), |m| format!("{m} min")),
        );
    }
    h.push_str("</tbody></table></section>\n");
}

/// The signed months (issue 31): a restated one first, with what changed and why.
fn signoffs(h: &mut String, s: &Status) {
    if s.signoffs.is_empty() && s.signoffs_error.is_none() {
        return;
    }
    let restated = s.signoffs.iter().filter(|m| m.restated_fields > 0).count();
    let _ = write!(
        h,
        "<section id=\"signoffs\" data-restated=\"{restated}\"><h2>Signed months: {}</h2>",
        if restated == 0 {
            "all stand".to_string()
        } else {
            format!("{restated} restated since signed")
        }
    );
    if let Some(e) = &s.signoffs_error {
        let _ = write!(
            h,
            "<p class=\"warn\">The sign-offs could not be read: {}</p>",
            esc(e)
        );
    }
    h.push_str(
        "<table><thead><tr><th>Month</th><th>View</th><th>Signed</th><th>State</th>\
         <th>Why</th></tr></thead><tbody>",
    );
    let mut rows: Vec<&crate::signoff::SignedMonth> = s.signoffs.iter().collect();
    rows.sort_by_key(|m| m.restated_fields == 0);
    for m in rows {
        let state = if m.restated_fields == 0 {
            "stands".to_string()
        } else {
            format!("<strong>RESTATED</strong>: {} fields", m.restated_fields)
        };
        let examples: Vec<String> = m
            .changes
            .iter()
            .take(3)
            .map(|c| {
                format!(
                    "{} {} {}: {} → {}",
                    c.measure,
                    c.region,
                    c.field,
                    if c.signed.is_empty() {
                        "—"
                    } else {
                        &c.signed
                    },
                    if c.current.is_empty() {
                        "—"
                    } else {
                        &c.current
                    }
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr data-month=\"{}\" data-view=\"{}\" data-restated=\"{}\" class=\"{}\">\
             <td>{}</td><td>{}</td><td>{} by {}{}</td><td class=\"state\">{state}</td>\
             <td>{}{}</td></tr>",
            esc(&m.month),
            esc(&m.view),
            m.restated_fields,
            if m.restated_fields == 0 { "ok" } else { "warn" },
            esc(&m.month),
            esc(&m.view),
            esc(&m.signed_at),
            esc(&m.signed_by),
            if m.forced {
                " (before final, --force)"
            } else {
                ""
            },
            esc(&m.causes.join("; ")),
            if examples.is_empty() {
                String::new()
            } else {
                format!("<br><small>{}</small>", esc(&examples.join(" · ")))
            }
        );
    }
    h.push_str("</tbody></table></section>\n");
}

/// The measures as a list of objectives: the rows judged against a target, those below it first;
/// every other row (regions a measure is not judged on, measures without a target) behind a
/// switch that works without JavaScript.
fn measures(h: &mut String, s: &Status) {
    let mut judged: Vec<(&MeasureView, &RegionView)> = s
        .measures
        .iter()
        .flat_map(|m| m.regions.iter().map(move |r| (m, r)))
        .filter(|(m, r)| r.judged && m.tpl.is_some())
        .collect();
    // Stable: within a state, configuration order.
    judged.sort_by_key(|(_, r)| urgency(&r.state));
    let below = judged
        .iter()
        .filter(|(_, r)| urgency(&r.state) < urgency("ok"))
        .count();
    let _ = write!(
        h,
        "<section id=\"measures\" data-below=\"{below}\"><h2>Objectives, month to date: {} of {} \
         below target</h2>",
        below,
        judged.len()
    );
    if let Some(m) = &s.month {
        let note = match m.source.as_str() {
            "group" => {
                "Figures are the whole group's (from the state store); the alerts judge this \
                 instance's own partitions (the <em>This instance</em> column), so a count in an \
                 alert's summary can differ from the row's."
            }
            _ => {
                "Figures are this instance's partitions' (live), as the alerts judge them: an \
                 alert's summary counts what its row shows."
            }
        };
        let _ = write!(h, "<p class=\"note\">{note}</p>");
    }
    table_head(h, "objectives");
    for (m, r) in &judged {
        region_row(h, m, r);
    }
    h.push_str("</tbody></table></div>");
    let rows: usize = s.measures.iter().map(|m| m.regions.len()).sum();
    let _ = write!(
        h,
        "<details id=\"all-rows\"><summary>Show all {rows} rows (regions a measure is not \
         judged on, measures without a target)</summary>"
    );
    table_head(h, "all");
    for m in &s.measures {
        for r in &m.regions {
            region_row(h, m, r);
        }
    }
    h.push_str("</tbody></table></div></details></section>\n");
}

fn table_head(h: &mut String, id: &str) {
    let _ = write!(
        h,
        "<div class=\"scroll\"><table id=\"table-{id}\"><thead><tr><th>Measure</th><th>Region</th>\
         <th>RPL %</th><th>State</th><th>TPL / MPL</th><th>Requests</th><th>Hits</th>\
         <th title=\"hits in a row needed to reach TPL\">To TPL</th><th>Error budget</th><th>Largest failure buckets</th>\
         <th class=\"projected\">Projected month-end</th><th class=\"instance\">This instance \
         (live)</th><th class=\"trend\">Hit ratio, 24 h</th><th class=\"by-day\">RPL by \
         day</th></tr></thead><tbody>"
    );
}

fn region_row(h: &mut String, m: &MeasureView, r: &RegionView) {
    let judged = r.judged && m.tpl.is_some();
    let label = match r.state.as_str() {
        "ok" => "on target",
        "below_target" => "BELOW TARGET",
        "below_minimum" => "BELOW MINIMUM",
        "no_target" => "no target",
        _ => "no requests",
    };
    let levels = match (&m.tpl, &m.mpl) {
        (Some(t), Some(mp)) => format!("{t} / {mp}"),
        (Some(t), None) => t.clone(),
        _ => "—".into(),
    };
    // A row nobody judges is drawn neutral: a badge colour is a call to act.
    let class = if judged {
        state_class(&r.state)
    } else {
        "muted"
    };
    let burn = r
        .burn_rate_1h
        .map(|b| format!("<br><small>burn {b:.1}× over 1 h</small>"))
        .unwrap_or_default();
    let budget = match (r.error_budget, r.error_budget_left_percent) {
        // Spent past its end, the share left reads as a negative percentage nobody can act on:
        // say how many misses over instead.
        (Some(n), Some(_)) if n < 0 => format!("spent <small>({} misses over)</small>{burn}", -n),
        (Some(n), Some(p)) => format!("{p:.0} % left <small>({n} misses)</small>{burn}"),
        (Some(n), None) => n.to_string(),
        _ => "—".into(),
    };
    let misses = if r.misses.is_empty() {
        "—".to_string()
    } else {
        let list = r
            .misses
            .iter()
            .map(|x| format!("{} {}", esc(&x.bucket), x.count))
            .collect::<Vec<_>>()
            .join("<br>");
        // The requests behind them, from the group's figures (the file lists every region and
        // bucket; its `region` column picks this row's, all of them the `all` row's).
        match &m.evidence {
            Some(url) => format!(
                "{list}<br><a class=\"evidence\" href=\"{}\">requests</a>",
                esc(url)
            ),
            _ => list,
        }
    };
    let tpl: Option<f64> = m.tpl.as_deref().and_then(|t| t.parse().ok());
    let _ = write!(
        h,
        "<tr class=\"{}st-{}\" data-measure=\"{}\" data-region=\"{}\" data-state=\"{}\" \
         data-judged=\"{}\"><th scope=\"row\" title=\"{}\">{}<br><small>{}</small></th>\
         <td class=\"region\">{}</td><td class=\"rpl num {}\">{}</td><td class=\"state\"><span \
         class=\"badge {}\">{}</span></td><td class=\"levels num\">{}</td><td class=\"requests \
         num\">{}</td><td class=\"hits num\">{}</td><td class=\"to-target num\">{}</td><td \
         class=\"budget num\">{}</td><td class=\"misses\" title=\"the month's largest failure \
         buckets; every bucket is in failures.csv, and a sample of the requests behind them in \
         evidence/{}.csv (served here with the group's figures; written at the stop and by \
         srv-opr rollup)\">{}</td>\
         <td class=\"projected num\">{}</td><td class=\"instance num\">{}</td><td \
         class=\"trend\">{}</td><td class=\"by-day\">{}</td></tr>",
        if judged { "judged " } else { "context " },
        esc(&r.state),
        esc(&m.measure),
        esc(&r.region),
        esc(&r.state),
        r.judged,
        esc(&m.name),
        esc(&m.measure),
        esc(&m.basis),
        esc(&r.region),
        class,
        r.rpl_percent.as_deref().unwrap_or("—"),
        class,
        label,
        esc(&levels),
        if r.exempted > 0 {
            format!("{} <small>(+{} exempted)</small>", r.requests, r.exempted)
        } else {
            r.requests.to_string()
        },
        r.hits,
        r.hits_to_target.map_or("—".into(), |v| v.to_string()),
        budget,
        esc(&m.measure),
        misses,
        r.projected_rpl_percent
            .map_or("—".into(), |p| format!("{p:.2}")),
        match &r.instance.rpl_percent {
            Some(p) => format!("{p} <small>({} req.)</small>", r.instance.requests),
            None => "—".into(),
        },
        trend_svg(&r.trend_24h, tpl),
        day_svg(&r.rpl_by_day, tpl),
    );
}

/// An RFC 3339 instant as the person on shift reads it: in the reporting zone, and how long
/// before `now` (both RFC 3339); the text as given when it does not parse.
pub(crate) fn local_time(t: &str, zone: &str, now: &str) -> String {
    let Ok(ts) = t.parse::<jiff::Timestamp>() else {
        return t.to_string();
    };
    let zone = if zone.is_empty() {
        "Europe/London"
    } else {
        zone
    };
    let local = match jiff::tz::TimeZone::get(zone) {
        Ok(tz) => ts
            .to_zoned_datetime(tz)
            .strftime("%a %-d %b %H:%M:%S %Z")
            .to_string(),
        Err(_) => t.to_string(),
    };
    let ago = now
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|n| n.as_second() - ts.as_second())
        .map(|s| match s {
            s if s < 0 => String::new(),
            s if s < 90 => format!(" ({s} s ago)"),
            s if s < 90 * 60 => format!(" ({} min ago)", s / 60),
            s if s < 48 * 3600 => format!(" ({} h ago)", s / 3600),
            s => format!(" ({} days ago)", s / 86_400),
        })
        .unwrap_or_default();
    format!("{local}{ago}")
}

fn pipeline(h: &mut String, s: &Status) {
    let p = &s.pipeline;
    let final_text = s
        .month
        .as_ref()
        .map_or("—", |m| if m.is_final { "yes" } else { "not yet" });
    let _ = write!(
        h,
        "<section id=\"pipeline\"><h2>Pipeline (this instance)</h2><dl>\
         <dt>Partitions held</dt><dd id=\"partitions-held\">{}</dd>\
         <dt>Lag</dt><dd id=\"lag\">{} messages</dd>\
         <dt>Events/s now</dt><dd id=\"rate\">{:.0}</dd>\
         <dt>Events read</dt><dd id=\"events\">{}</dd>\
         <dt>Checkpoint age</dt><dd id=\"checkpoint-age\">{}</dd>\
         <dt>Pending requests</dt><dd>{}</dd><dt>Waiting responses</dt><dd>{}</dd>\
         <dt>Month final</dt><dd>{}</dd>\
         <dt>Kafka errors (retried)</dt><dd>{}</dd></dl>",
        p.partitions_held,
        p.lag_messages,
        p.events_per_second,
        p.events_total,
        p.checkpoint_age_seconds
            .map_or("no state store".to_string(), |a| format!("{a:.1} s")),
        p.pending_requests,
        p.waiting_responses,
        final_text,
        p.kafka_errors,
    );
    let _ = write!(
        h,
        "<h3>Dead letters in the last hour</h3><p id=\"dead-letters\" data-total=\"{}\">",
        p.dead_letters_last_hour.values().sum::<u64>()
    );
    if p.dead_letters_last_hour.is_empty() {
        h.push_str("None.");
    } else {
        let parts: Vec<String> = p
            .dead_letters_last_hour
            .iter()
            .map(|(r, n)| format!("<span data-reason=\"{}\">{}: {}</span>", esc(r), esc(r), n))
            .collect();
        h.push_str(&parts.join(", "));
    }
    let _ = write!(h, " ({} since the start)</p>", p.dead_letters_total);
    h.push_str(
        "<h3>Partitions</h3><table id=\"partitions\"><thead><tr><th>Partition</th>\
         <th>Next offset</th><th>Lag</th><th>Watermark</th><th>Behind the clock</th>\
         <th>Idle</th></tr></thead><tbody>",
    );
    for q in &p.partitions {
        let _ = write!(
            h,
            "<tr data-partition=\"{}/{}\"><td>{}/{}</td><td class=\"num\">{}</td><td \
             class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.0} \
             s</td></tr>",
            esc(&q.topic),
            q.partition,
            esc(&q.topic),
            q.partition,
            q.next_offset,
            q.lag.map_or("—".into(), |l| l.to_string()),
            q.watermark.as_deref().map_or("—".into(), esc),
            q.watermark_behind_seconds.map_or("—".into(), human_secs),
            q.idle_seconds
        );
    }
    h.push_str("</tbody></table>");
    if let Some(g) = s.month.as_ref().and_then(|m| m.group.as_ref()) {
        h.push_str(
            "<h3>Checkpoints in the store (the whole group)</h3><table id=\"checkpoints\">\
             <thead><tr><th>Partition</th><th>Owner</th><th>Last checkpoint</th></tr></thead>\
             <tbody>",
        );
        for c in &g.checkpoints {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(&c.partition),
                esc(&c.owner),
                c.age_seconds
                    .map_or("—".into(), |a| format!("{} ago", human_secs(a)))
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>\n");
}

/// Seconds for a person: `42 s`, `3 min`, `5.2 h`, `12 d`.
fn human_secs(s: f64) -> String {
    match s {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.0} d", s / 86_400.0),
    }
}

// Narrow enough that the table, both charts included, fits a 1280-pixel screen.
const W: f64 = 96.0;
const H: f64 = 34.0;

/// The 24-hour hit ratio as a line, TPL dashed.
fn trend_svg(points: &[TrendPoint], tpl: Option<f64>) -> String {
    let values: Vec<f64> = points.iter().map(|p| p.hit_ratio_percent).collect();
    let title = match (points.first(), points.last()) {
        (Some(f), Some(l)) => format!(
            "Hit ratio over {} intervals from {} to {}: last {:.2} %, lowest {:.2} %",
            points.len(),
            f.at,
            l.at,
            l.hit_ratio_percent,
            values.iter().copied().fold(f64::INFINITY, f64::min)
        ),
        _ => return "<small class=\"muted\">no data yet</small>".into(),
    };
    line_svg(&values, tpl, &title)
}

/// The month's cumulative RPL by day, TPL dashed.
fn day_svg(points: &[DayPoint], tpl: Option<f64>) -> String {
    let values: Vec<f64> = points
        .iter()
        .filter_map(|p| p.rpl_percent.parse().ok())
        .collect();
    let title = match (points.first(), points.last()) {
        (Some(f), Some(l)) => format!(
            "RPL to the end of day {}: {} %; day {}: {} %",
            f.day, f.rpl_percent, l.day, l.rpl_percent
        ),
        _ => return "<small class=\"muted\">no data yet</small>".into(),
    };
    line_svg(&values, tpl, &title)
}

fn line_svg(values: &[f64], tpl: Option<f64>, title: &str) -> String {
    let lo = values
        .iter()
        .copied()
        .chain(tpl.map(|t| t - 1.0))
        .fold(100.0f64, f64::min)
        .max(0.0);
    let span = (100.0 - lo).max(0.5);
    let y = |v: f64| 2.0 + (100.0 - v.clamp(lo, 100.0)) / span * (H - 4.0);
    let x = |i: usize| {
        if values.len() <= 1 {
            W / 2.0
        } else {
            2.0 + i as f64 * (W - 4.0) / (values.len() - 1) as f64
        }
    };
    let mut svg = format!(
        "<svg class=\"spark\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"{t}\"><title>{t}</title>",
        t = esc(title)
    );
    if let Some(t) = tpl {
        let _ = write!(
            svg,
            "<line x1=\"0\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"tpl\"/>",
            y = y(t)
        );
    }
    let pts: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    if pts.len() == 1 {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\"/>",
            x(0),
            y(values[0])
        );
    } else {
        let _ = write!(svg, "<polyline points=\"{}\"/>", pts.join(" "));
    }
    svg.push_str("</svg>");
    svg
}

fn state_class(state: &str) -> &'static str {
    match state {
        "ok" => "ok",
        "below_target" => "warn",
        "below_minimum" => "crit",
        _ => "muted",
    }
}

fn sev_class(severity: &str) -> &'static str {
    if severity == "critical" {
        "crit"
    } else {
        "warn"
    }
}

const CSS: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#1d1d1f;background:#fff}\
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}h3{font-size:1em}\
dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.3em 0}\
dt{color:#555}dd{margin:0}\
table{border-collapse:collapse;margin:.3em 0}th,td{padding:.2em .4em;border-bottom:1px solid #ddd;\
text-align:left;vertical-align:middle}.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.first td,tr.first th{border-top:2px solid #999}tr.context{color:#777}\
.badge{display:inline-block;padding:.05em .45em;border-radius:.3em;font-weight:600;\
border:1px solid currentColor;white-space:nowrap}td.levels,td.rpl{white-space:nowrap}\
th[scope=row]{color:#1d1d1f}\
.ok{color:#0a6b2b}.badge.ok{background:#e3f5e8}\
.warn{color:#8a5300}.badge.warn{background:#fff1cc}\
.crit{color:#a00000}.badge.crit{background:#fde0e0}\
.muted{color:#777}.note{color:#555}p.warn{font-weight:600}\
svg.spark polyline{fill:none;stroke:#1f5fbf;stroke-width:1.5}svg.spark circle{fill:#1f5fbf}\
svg.spark line.tpl{stroke:#8a5300;stroke-dasharray:3 2;stroke-width:1}\
svg.spark{background:#f6f8fb}footer{margin-top:2em;color:#777}\
.scroll{overflow-x:auto;max-width:100%}details{margin:.8em 0}summary{cursor:pointer;color:#1f5fbf}\
@media (max-width:700px){body{margin:.5em}.projected,.instance,.trend,.by-day{display:none}\
th,td{padding:.15em .3em}table.stack thead{display:none}table.stack tr{display:block;\
border-bottom:1px solid #ddd;padding:.3em 0}table.stack td{display:inline-block;border:0;\
padding:.1em .3em .1em 0}table.stack td.summary,table.stack td.since{display:block}\
table:not(.stack){display:block;overflow-x:auto;max-width:100%}}\
td.budget{min-width:7em}\
.banner{padding:.6em .9em;border-radius:.4em;border:2px solid currentColor;margin:.2em 0 .8em;\
font-size:1.1em}.banner.ok{background:#e3f5e8}.banner.warn{background:#fff1cc}\
.banner.crit{background:#fde0e0}.banner ul{margin:.3em 0 0;padding-left:1.2em;font-size:.9em}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::status::model::*;

    fn status() -> Status {
        let region = |name: &str, state: &str, judged: bool| RegionView {
            region: name.into(),
            judged,
            requests: 200,
            hits: 196,
            exempted: 0,
            rpl_percent: Some("98.0000".into()),
            state: state.into(),
            hits_to_target: Some(200),
            error_budget: Some(-2),
            projected_rpl_percent: Some(98.1234),
            error_budget_left_percent: Some(-100.0),
            burn_rate_1h: Some(2.5),
            misses: vec![MissView {
                bucket: "slow".into(),
                count: 4,
            }],
            instance: LiveFigures {
                requests: 200,
                hits: 196,
                rpl_percent: Some("98.0000".into()),
            },
            trend_24h: vec![
                TrendPoint {
                    at: "2024-03-10T10:00:00Z".into(),
                    requests: 20,
                    hit_ratio_percent: 95.0,
                },
                TrendPoint {
                    at: "2024-03-10T10:01:00Z".into(),
                    requests: 20,
                    hit_ratio_percent: 100.0,
                },
            ],
            rpl_by_day: vec![DayPoint {
                day: 1,
                requests: 200,
                rpl_percent: "98.0000".into(),
            }],
        };
        Status {
            interfaces: Vec::new(),
            signoffs: vec![crate::signoff::SignedMonth {
                month: "2024-02".into(),
                view: "opr".into(),
                signed_at: "2024-03-05T10:00:00Z".into(),
                signed_by: "<b>Head</b> of Performance".into(),
                forced: false,
                is_final: true,
                restated_fields: 2,
                causes: vec!["exemption INC<1> added".into()],
                changes: Vec::new(),
            }],
            signoffs_error: None,
            health: Default::default(),
            schema: SCHEMA,
            exemptions: Vec::new(),
            generated_at: "2024-03-10T10:02:00Z".into(),
            instance: Instance {
                name: "host:1".into(),
                group: "g<script>".into(),
                topics: vec!["srv-events".into()],
                definitions_sha256: "ab".repeat(32),
                exemptions_sha256: None,
                version: "0.1.0".into(),
                started_at: "2024-03-10T09:00:00Z".into(),
                store: None,
                zone: "Europe/London".into(),
            },
            month: Some(MonthView {
                month: "2024-03".into(),
                watermark: "2024-03-10T10:00:00.000Z".into(),
                elapsed_percent: 30.0,
                is_final: false,
                covered_so_far: Some(false),
                coverage_gaps: vec![["2024-03-01T00:00:00Z".into(), "2024-03-02T00:00:00Z".into()]],
                source: "instance".into(),
                group: None,
            }),
            measures: vec![MeasureView {
                measure: "PM4.3".into(),
                name: "HAN test <fast>".into(),
                basis: "trt".into(),
                regional: true,
                tpl: Some("99".into()),
                mpl: Some("96".into()),
                regions: vec![
                    region("north", "ok", true),
                    region("central", "below_target", true),
                    region("all", "below_target", false),
                ],
                evidence: Some("evidence/PM4.3.csv".into()),
            }],
            alerts: vec![AlertView {
                alert: "SrvRplBelowTarget".into(),
                severity: "warning".into(),
                measure: Some("PM4.3".into()),
                region: Some("central".into()),
                since: "2024-03-10T09:30:00Z".into(),
                fired_at: Some("2024-03-10T09:30:00Z".into()),
                summary: "PM4.3 central RPL 98.0000 % below TPL 99 %".into(),
            }],
            pipeline: PipelineView {
                partitions_held: 6,
                lag_messages: 0,
                events_per_second: 12.0,
                events_total: 1000,
                checkpoint_age_seconds: None,
                pending_requests: 3,
                waiting_responses: 1,
                dead_letters_total: 2,
                dead_letters_last_hour: [("malformed_json".to_string(), 2)].into(),
                kafka_errors: 0,
                partitions: vec![PartitionView {
                    topic: "srv-events".into(),
                    partition: 0,
                    next_offset: 10,
                    lag: Some(0),
                    watermark: Some("2024-03-10T10:00:00.000Z".into()),
                    watermark_behind_seconds: Some(90.0),
                    idle_seconds: 1.0,
                }],
            },
        }
    }

    #[test]
    fn the_page_says_each_state_in_words_escapes_text_and_needs_nothing_else() {
        let html = render(&status());
        // An objectives list (issue 33): rows below target first, only judged rows unless
        // asked, a row nobody judges drawn neutral, the budget as a share with its burn, the
        // largest failure buckets, times in the reporting zone with how long ago.
        let objectives = html
            .split("id=\"table-objectives\"")
            .nth(1)
            .and_then(|t| t.split("</table>").next())
            .unwrap();
        let states: Vec<&str> = objectives
            .split("data-state=\"")
            .skip(1)
            .filter_map(|x| x.split('"').next())
            .collect();
        assert_eq!(states, ["below_target", "ok"], "{objectives}");
        assert!(!objectives.contains("data-region=\"all\""));
        let all = html.split("id=\"all-rows\"").nth(1).unwrap();
        let pooled = all.split("data-region=\"all\"").nth(1).unwrap();
        let pooled = pooled.split("</tr>").next().unwrap();
        assert!(
            pooled.contains("badge muted") && !pooled.contains("badge warn"),
            "{pooled}"
        );
        assert!(objectives.contains("spent <small>(") && objectives.contains("burn 2.5×"));
        assert!(objectives.contains("slow 4"));
        assert!(objectives.contains("<a class=\"evidence\" href=\"evidence/PM4.3.csv\">"));
        assert!(
            html.contains("Sun 10 Mar 09:30:00 GMT (32 min ago)"),
            "{html}"
        );
        // Every wall-clock time in the reporting zone: the start, and the page's own.
        assert!(
            html.contains("Sun 10 Mar 09:00:00 GMT (62 min ago)"),
            "{html}"
        );
        assert!(
            html.contains("Generated Sun 10 Mar 10:02:00 GMT ·"),
            "{html}"
        );
        assert!(
            html.contains("data-covered=\"false\"")
                && html.contains("no event from Fri 1 Mar 00:00:00 GMT"),
            "{html}"
        );
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
        assert!(html.contains("data-region=\"central\" data-state=\"below_target\""));
        assert!(html.contains(">BELOW TARGET<") && html.contains(">on target<"));
        assert!(html.contains("g&lt;script&gt;") && !html.contains("g<script>"));
        assert!(html.contains("HAN test &lt;fast&gt;"));
        assert!(html.contains("this instance only"));
        assert!(html.contains("<span data-reason=\"malformed_json\">malformed_json: 2</span>"));
        // No external asset: no script, no stylesheet or image fetched from anywhere.
        for needle in ["<script", "src=", "<link", "@import", "url("] {
            assert!(!html.contains(needle), "{needle}");
        }
        assert!(html.contains("<svg class=\"spark\"") && html.contains("<polyline"));
        // A restated signed month, in words, its signer and cause escaped.
        assert!(
            html.contains("Signed months: 1 restated since signed"),
            "{html}"
        );
        assert!(html.contains("<strong>RESTATED</strong>: 2 fields"));
        assert!(html.contains("&lt;b&gt;Head&lt;/b&gt; of Performance"));
        assert!(html.contains("exemption INC&lt;1&gt; added"));
    }

    #[test]
    fn the_json_reads_back_into_the_same_status() {
        let s = status();
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains("\"final\":false"), "{text}");
        let back: Status = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
