//! A month's RPLs against TPL and MPL as a text table, for a person at a terminal (`demo`
//! prints it), with where the time went (to the first acknowledgement, and after it), and the
//! service users with the most misses. The status compares the reported RPL (four places) with
//! the levels exactly, in decimals.

use std::fmt::Write as _;

use rust_decimal::Decimal;

use crate::engine::aggregate::{Aggregates, rpl_decimal, rpl_percent};
use crate::engine::calendar::Month;
use crate::engine::domain::Region;

/// The table of `month`'s rows in `agg`, one line per measure × region with requests.
pub(crate) fn month_table(agg: &Aggregates, month: Month) -> String {
    let defs = agg.definitions();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<16} {:<8} {:>10} {:>10} {:>9} {:>6} {:>6} {:>8} {:>9}  status",
        "measure", "region", "requests", "hits", "RPL %", "TPL", "MPL", "I99 p50", "after p95"
    );
    for (m, mi, block) in agg.blocks() {
        if m != month {
            continue;
        }
        let measure = &defs.measures[mi as usize];
        let all = block.all();
        let rows = block
            .regions
            .iter()
            .zip(Region::ALL.map(Region::as_str))
            .chain(std::iter::once((&all, "all")));
        for (row, region) in rows {
            if row.requests == 0 {
                continue;
            }
            let hits = row.hits(measure.basis);
            let rpl = rpl_percent(hits, row.requests).unwrap_or_default();
            let value = rpl_decimal(hits, row.requests).unwrap_or_default();
            let status = match (measure.tpl, measure.mpl) {
                (Some(tpl), Some(mpl)) => status(value, tpl, mpl),
                _ => "-",
            };
            let lvl = |d: Option<Decimal>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
            let ms = |v: Option<u64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "{:<16} {:<8} {:>10} {:>10} {:>9} {:>6} {:>6} {:>8} {:>9}  {}",
                measure.id,
                region,
                row.requests,
                hits,
                rpl,
                lvl(measure.tpl),
                lvl(measure.mpl),
                ms(row.ack_quantile_ms(0.5)),
                ms(row.after_ack_quantile_ms(0.95)),
                status
            );
        }
    }
    s
}

/// The service users with the most misses in `month`, per measure with any (regions pooled):
/// up to `n` each, most misses first, then by name. One line per measure.
pub(crate) fn top_users(agg: &Aggregates, month: Month, n: usize) -> String {
    let defs = agg.definitions();
    let mut s = String::new();
    for (m, mi, block) in agg.blocks() {
        if m != month {
            continue;
        }
        let measure = &defs.measures[mi as usize];
        let all = block.all();
        let mut misses: Vec<(u64, &str)> = all
            .users
            .iter()
            .map(|(u, c)| {
                let hits = c.hits(measure.basis);
                (c.requests - hits.min(c.requests), &**u)
            })
            .filter(|(missed, _)| *missed > 0)
            .collect();
        if misses.is_empty() {
            continue;
        }
        misses.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let list: Vec<String> = misses
            .iter()
            .take(n)
            .map(|(k, u)| format!("{u} {k}"))
            .collect();
        let _ = writeln!(
            s,
            "{:<16} {} (of {} users with a miss)",
            measure.id,
            list.join(", "),
            misses.len()
        );
    }
    s
}

/// Where an RPL stands: at or above TPL, between the levels, or at or below MPL.
fn status(rpl: Decimal, tpl: Decimal, mpl: Decimal) -> &'static str {
    if rpl >= tpl {
        "ok"
    } else if rpl > mpl {
        "BELOW TPL"
    } else {
        "BELOW MPL"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_compare_exactly() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(status(d("99.5000"), d("99.5"), d("96")), "ok");
        assert_eq!(status(d("99.4999"), d("99.5"), d("96")), "BELOW TPL");
        assert_eq!(status(d("96.0000"), d("99.5"), d("96")), "BELOW MPL");
        assert_eq!(status(d("96.0001"), d("99.5"), d("96")), "BELOW TPL");
    }
}
