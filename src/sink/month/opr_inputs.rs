//! `opr-inputs.csv`: the streaming-derived OPR components as `score` input rows, each month
//! mapped through its regulatory year's scheme (and SUM1's rows from availability).

use std::fmt::Write as _;

use crate::csv_text::field as csv_field;
use crate::engine::domain::{POOLED, Region};

use super::availability::AvailabilityLine;
use super::rpl::RplLine;

/// `opr-inputs.csv` header: the score input format of SPEC §7, with counts.
pub(crate) const OPR_INPUTS_HEADER: &str =
    "measure,component,region,period,value,numerator,denominator";

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
pub(crate) fn opr_inputs_csv(
    lines: &[RplLine],
    schemes: &[crate::score::scheme::Scheme],
) -> String {
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

/// The SUM1 rows of `opr-inputs.csv` from availability lines (the `opr` view's): one per
/// interface and month whose regulatory year's scheme has a SUM1 component of that id.
pub(crate) fn sum1_inputs(
    lines: &[AvailabilityLine],
    schemes: &[crate::score::scheme::Scheme],
) -> String {
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
