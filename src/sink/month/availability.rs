//! `availability.csv` (and `availability.<view>.csv`): each interface's availability per month.

use std::fmt::Write as _;

use crate::csv_text::field as csv_field;
use crate::engine::aggregate::Aggregates;
use crate::engine::calendar::Month;

/// `availability.csv` header (issue 30).
pub(crate) const AVAILABILITY_HEADER: &str =
    "month,interface,minutes,down_minutes,exempted_minutes,availability_percent,final,complete";

/// One line of `availability.csv`: an interface's month in one view.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AvailabilityLine {
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
pub(crate) fn availability_lines(
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
pub(crate) fn availability_csv(lines: &[AvailabilityLine]) -> String {
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
