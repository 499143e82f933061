//! The OPR arithmetic the live side shares (metrics, alerts, the status page), exact in
//! decimals: the misses a month may still take (its error budget), the hits in a row that bring
//! it back to its target, and where the month is heading.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The misses a month of `requests` may have and still reach `tpl`: ⌊requests × (100 − TPL) /
/// 100⌋.
fn misses_allowed(requests: u64, tpl: Decimal) -> Decimal {
    (Decimal::from(requests) * (Decimal::ONE_HUNDRED - tpl) / Decimal::ONE_HUNDRED).floor()
}

/// ⌊requests × (100 − TPL) / 100⌋ − misses, exactly (SPEC §6); negative once the RPL is below TPL.
pub(crate) fn error_budget(requests: u64, hits: u64, tpl: Decimal) -> i64 {
    let allowed = misses_allowed(requests, tpl).to_i64().unwrap_or(i64::MAX);
    allowed - (requests.saturating_sub(hits)) as i64
}

/// The share of the month's error budget left, percent: budget ⌊requests × (100 − TPL)/100⌋,
/// left = budget − misses (negative: over). `None` without a budget (no requests, or TPL 100).
pub(crate) fn budget_left_percent(requests: u64, hits: u64, tpl: Decimal) -> Option<f64> {
    let budget = misses_allowed(requests, tpl).to_f64()?;
    if budget <= 0.0 {
        return None;
    }
    let left = budget - (requests - hits.min(requests)) as f64;
    Some((left * 1000.0 / budget).round() / 10.0)
}

/// Consecutive hits needed for a month-to-date RPL to reach `tpl` (0 at or above it):
/// the smallest n with (hits + n) / (requests + n) ≥ tpl / 100, exactly. The seed's "only needed
/// to deliver a further 112 firmware requests to reach TPL".
pub(crate) fn hits_to_target(requests: u64, hits: u64, tpl: Decimal) -> u64 {
    let hundred = Decimal::ONE_HUNDRED;
    if tpl >= hundred {
        return if hits < requests { u64::MAX } else { 0 };
    }
    let need = tpl * Decimal::from(requests) - hundred * Decimal::from(hits);
    if need <= Decimal::ZERO {
        return 0;
    }
    (need / (hundred - tpl)).ceil().to_u64().unwrap_or(u64::MAX)
}

/// The projected month-end RPL (percent) of a month with `requests` and `hits` so far and
/// `elapsed` (0–1) of it gone in event time: the rest of the month at the month's volume so
/// far, hit at `recent`'s ratio (requests, hits of a recent window; the month's own when
/// `None`). `None` before the month has a request.
pub(crate) fn project_month_end(
    requests: u64,
    hits: u64,
    elapsed: f64,
    recent: Option<(u64, u64)>,
) -> Option<f64> {
    if requests == 0 || elapsed <= 0.0 {
        return None;
    }
    let (r, h) = (requests as f64, hits as f64);
    let remaining = r / elapsed - r;
    let ratio = recent
        .filter(|(q, _)| *q > 0)
        .map_or(h / r, |(q, x)| x as f64 / q as f64);
    Some((h + remaining * ratio) * 100.0 / (r + remaining))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_budget_is_exact() {
        // 99 % of 1,000 requests: 10 misses allowed.
        assert_eq!(error_budget(1000, 1000, Decimal::new(99, 0)), 10);
        assert_eq!(error_budget(1000, 990, Decimal::new(99, 0)), 0);
        assert_eq!(error_budget(1000, 989, Decimal::new(99, 0)), -1);
        // ⌊999 × 0.01⌋ = 9.
        assert_eq!(error_budget(999, 999, Decimal::new(99, 0)), 9);
        assert_eq!(error_budget(0, 0, Decimal::new(99, 0)), 0);
    }

    #[test]
    fn hits_to_target_is_exact() {
        let tpl = Decimal::new(99, 0);
        assert_eq!(hits_to_target(10_000, 9_888, tpl), 1_200);
        // 1,200 more hits reach exactly 99 %; 1,199 do not.
        assert_eq!(11_088 * 100, 99 * 11_200);
        assert_eq!(hits_to_target(10_000, 9_900, tpl), 0);
        assert_eq!(hits_to_target(0, 0, tpl), 0);
        // (2 + 197) / (3 + 197) = 99.5 % exactly.
        assert_eq!(hits_to_target(3, 2, Decimal::new(995, 1)), 197);
    }

    #[test]
    fn the_budget_left_is_a_share_of_the_misses_allowed() {
        // 99 % of 1,000: 10 allowed; 4 misses leave 60 %, 12 are 20 % over.
        assert_eq!(
            budget_left_percent(1000, 996, Decimal::new(99, 0)),
            Some(60.0)
        );
        assert_eq!(
            budget_left_percent(1000, 988, Decimal::new(99, 0)),
            Some(-20.0)
        );
        assert_eq!(budget_left_percent(10, 10, Decimal::new(99, 0)), None);
    }
}
