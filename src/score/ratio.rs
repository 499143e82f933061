//! Exact fractions for weights: `7/30` must stay 7/30 (as a decimal, 23.33 % would lose £0.001m),
//! and a scheme's weights must add up to exactly one.

use std::fmt;

use rust_decimal::Decimal;

/// A non-negative fraction in lowest terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    num: i128,
    den: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

impl Ratio {
    /// Zero.
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };
    /// One.
    pub(crate) const ONE: Ratio = Ratio { num: 1, den: 1 };

    /// `num / den`, reduced; `None` if `den` is zero or either is negative.
    pub fn new(num: i128, den: i128) -> Option<Ratio> {
        if den <= 0 || num < 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        Some(Ratio {
            num: num / g,
            den: den / g,
        })
    }

    /// Parses `"7/30"`, `"15%"`, `"0.15"`, `"1"`.
    pub fn parse(s: &str) -> Result<Ratio, String> {
        let s = s.trim();
        let bad = || format!("{s:?} is not a weight (write \"7/30\", \"15%\" or \"0.15\")");
        if let Some((n, d)) = s.split_once('/') {
            let n: i128 = n.trim().parse().map_err(|_| bad())?;
            let d: i128 = d.trim().parse().map_err(|_| bad())?;
            return Ratio::new(n, d).ok_or_else(bad);
        }
        let (text, scale) = match s.strip_suffix('%') {
            Some(p) => (p.trim(), 100),
            None => (s, 1),
        };
        let d: Decimal = text.parse().map_err(|_| bad())?;
        if d.is_sign_negative() {
            return Err(bad());
        }
        let mantissa = d.mantissa();
        let den = 10i128.pow(d.scale()) * scale;
        Ratio::new(mantissa, den).ok_or_else(bad)
    }

    /// Sum (`None` on overflow).
    pub(crate) fn checked_add(self, o: Ratio) -> Option<Ratio> {
        let num = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Ratio::new(num, self.den.checked_mul(o.den)?)
    }

    /// Is it zero?
    pub fn is_zero(self) -> bool {
        self.num == 0
    }

    /// `x × self`, computed as `(x × num) / den`: one division, so 8.938 × 7/30 is as exact as a
    /// 28-digit decimal can hold.
    pub fn of(self, x: Decimal) -> Decimal {
        let num = Decimal::from_i128_with_scale(self.num, 0);
        let den = Decimal::from_i128_with_scale(self.den, 0);
        x * num / den
    }

    /// As a decimal (rounded to 28 digits when not exact).
    pub(crate) fn to_decimal(self) -> Decimal {
        self.of(Decimal::ONE)
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fractions_percentages_and_decimals_exactly() {
        assert_eq!(Ratio::parse("7/30").unwrap().to_string(), "7/30");
        assert_eq!(Ratio::parse("15%").unwrap(), Ratio::new(3, 20).unwrap());
        assert_eq!(Ratio::parse("0.15").unwrap(), Ratio::new(3, 20).unwrap());
        assert_eq!(
            Ratio::parse("14/60").unwrap(),
            Ratio::parse("7/30").unwrap()
        );
        assert!(Ratio::parse("-1/3").is_err());
        assert!(Ratio::parse("1/0").is_err());
        assert!(Ratio::parse("a lot").is_err());
    }

    #[test]
    fn seven_thirtieths_three_times_plus_thirty_percent_is_exactly_one() {
        let w = Ratio::parse("7/30").unwrap();
        let v = Ratio::parse("15%").unwrap();
        let sum = [w, w, w, v, v]
            .iter()
            .try_fold(Ratio::ZERO, |a, b| a.checked_add(*b))
            .unwrap();
        assert_eq!(sum, Ratio::ONE);
        // The seed's worked figure: 8.938 × 7/30 = 2.0855333…, shown as 2.086.
        let m: Decimal = "8.938".parse().unwrap();
        assert!(w.of(m).to_string().starts_with("2.08553333333"));
    }
}
