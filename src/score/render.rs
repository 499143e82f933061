//! Presenting a [`Report`]: the Table 7–shaped text, `score.csv` and `score.json`.
//!
//! The one rounding policy of the scoring core lives here ([`round`]: half away from zero, at
//! display only). Everything upstream is exact; totals are exact sums rounded once, so they may
//! differ by a unit in the last place from a sum of rounded cells (as the seed's do).

use std::fmt::Write as _;

use rust_decimal::{Decimal, RoundingStrategy};

use super::model::{MeasureScore, Report};

/// `score.csv` header (normative).
pub(crate) const SCORE_HEADER: &str =
    "measure,weight,assessment,retained_percent,retained_gbp_m,lost_gbp_m";

/// Rounds for display: `dp` places, half away from zero.
pub fn round(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// `d` with exactly `dp` places.
pub fn fixed(d: Decimal, dp: u32) -> String {
    let mut r = round(d, dp);
    r.rescale(dp);
    r.to_string()
}

/// A percentage without trailing zeros, as the seed prints weights (`23.33%`, `15%`).
fn percent_short(share: Decimal, dp: u32) -> String {
    let s = fixed(share * Decimal::ONE_HUNDRED, dp);
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}%")
}

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The assessment cell: `Non-regional = 99.93%`, `North = 99.30% Central = …`, `2.42 out of 3`.
pub fn assessment(m: &MeasureScore) -> String {
    if !m.assessed {
        return "n/a".into();
    }
    if let Some(v) = &m.vmm {
        return format!("{} out of 3", fixed(v.score, 2));
    }
    m.parts
        .iter()
        .map(|p| format!("{} = {}%", cap(&p.scope), fixed(p.rpl, 2)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn money(d: Decimal, dp: u32) -> String {
    fixed(d, dp)
}

/// The table printed on stdout, shaped like the seed's Table 7.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "OPR {} — margin at risk £{}m",
        r.year,
        r.margin_at_risk.normalize()
    );
    let _ = writeln!(
        s,
        "{:<44} {:>7}  {:<70} {:>13} {:>9} {:>9}",
        "OPR measure", "Weight", "Performance assessment", "Retained", "Retained", "Lost"
    );
    let _ = writeln!(
        s,
        "{:<44} {:>7}  {:<70} {:>13} {:>9} {:>9}",
        "", "", "", "(%)", "(£m)", "(£m)"
    );
    for m in &r.measures {
        let label = format!("{} ({})", m.name, m.measure);
        let (pct, kept, lost) = match m.retained_share {
            Some(share) => (
                percent_short(share, 0),
                money(m.kept, 3),
                if round(m.lost, 3).is_zero() {
                    "-".to_string()
                } else {
                    money(m.lost, 3)
                },
            ),
            None => (
                "zero-weighted".to_string(),
                "-".to_string(),
                "-".to_string(),
            ),
        };
        let _ = writeln!(
            s,
            "{:<44} {:>7}  {:<70} {:>13} {:>9} {:>9}",
            label,
            percent_short(m.weight_decimal, 2),
            assessment(m),
            pct,
            kept,
            lost
        );
    }
    let _ = writeln!(
        s,
        "{:<44} {:>7}  {:<70} {:>13} {:>9} {:>9}",
        "Total",
        "100%",
        "",
        percent_short(
            if r.margin_at_risk.is_zero() {
                Decimal::ZERO
            } else {
                r.total_kept / r.margin_at_risk
            },
            0
        ),
        money(r.total_kept, 3),
        money(r.total_lost, 3)
    );
    s
}

/// `score.csv`: one row per measure and a `Total` row; money in £m with 6 places.
pub fn score_csv(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(SCORE_HEADER);
    s.push('\n');
    for m in &r.measures {
        let pct = m
            .retained_share
            .map(|x| fixed(x * Decimal::ONE_HUNDRED, 2))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{}",
            crate::csv_text::field(&m.measure),
            fixed(m.weight_decimal * Decimal::ONE_HUNDRED, 4),
            assessment(m),
            pct,
            money(m.kept, 6),
            money(m.lost, 6)
        );
    }
    let total_pct = if r.margin_at_risk.is_zero() {
        Decimal::ZERO
    } else {
        r.total_kept / r.margin_at_risk
    };
    let _ = writeln!(
        s,
        "Total,{},,{},{},{}",
        fixed(Decimal::ONE_HUNDRED, 4),
        fixed(total_pct * Decimal::ONE_HUNDRED, 2),
        money(r.total_kept, 6),
        money(r.total_lost, 6)
    );
    s
}

/// `score.json`: the whole report, every intermediate figure exact (decimals as strings).
pub fn score_json(r: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(r)
}

/// How the money moved between two reports (a what-if against the base).
pub(crate) fn what_if_diff(base: &Report, what_if: &Report) -> String {
    let mut s = String::from("What-if against the inputs as given (£m kept):\n");
    for (b, w) in base.measures.iter().zip(&what_if.measures) {
        let d = w.kept - b.kept;
        if !d.is_zero() {
            let _ = writeln!(
                s,
                "  {:<6} {} → {}  ({}{})",
                b.measure,
                money(b.kept, 3),
                money(w.kept, 3),
                if d >= Decimal::ZERO { "+" } else { "" },
                money(d, 3)
            );
        }
    }
    let d = what_if.total_kept - base.total_kept;
    let _ = writeln!(
        s,
        "  Total  {} → {}  ({}{})",
        money(base.total_kept, 3),
        money(what_if.total_kept, 3),
        if d >= Decimal::ZERO { "+" } else { "" },
        money(d, 3)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rounding_policy_half_away_from_zero() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(fixed(d("2.0855"), 3), "2.086");
        assert_eq!(fixed(d("99.975"), 2), "99.98");
        assert_eq!(fixed(d("0"), 6), "0.000000");
        assert_eq!(fixed(d("1.5"), 0), "2");
        assert_eq!(percent_short(d("0.15"), 2), "15%");
        assert_eq!(
            percent_short(d("0.2333333333333333333333333333"), 2),
            "23.33%"
        );
    }
}
