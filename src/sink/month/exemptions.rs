//! `exemptions.csv`: what each exemption of the register took out of each row of each view.

use std::fmt::Write as _;

use crate::csv_text::field as csv_field;
use crate::engine::aggregate::{Aggregates, rpl_percent};
use crate::engine::calendar::Month;
use crate::engine::domain::{POOLED, Region};

/// `exemptions.csv` header (issue 29).
pub(crate) const EXEMPTIONS_HEADER: &str =
    "view,month,exemption,reason,measure,region,requests_exempted,share_percent";

/// One line of `exemptions.csv`: what one exemption took out of one row of one view.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExemptionLine {
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
pub(crate) fn exemption_lines(agg: &Aggregates, months: Option<&[Month]>) -> Vec<ExemptionLine> {
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
pub(crate) fn exemptions_csv(agg: &Aggregates, months: Option<&[Month]>) -> String {
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
