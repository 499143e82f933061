//! Exact event time: RFC 3339 timestamps as integer nanoseconds since the Unix epoch, and
//! human durations (`"30s"`, `"24h"`).
//!
//! Every comparison the SPEC makes on time ("≤ TRT", "passes the watermark") is done on these
//! integers, never on floats, so a response at exactly the TRT is within target on every machine.

use std::fmt;

/// An instant: nanoseconds since 1970-01-01T00:00:00Z. Covers the years 1678–2262.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

/// A length of time in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub i64);

/// Nanoseconds in common units, for readable arithmetic.
pub const NANOS_PER_MILLI: i64 = 1_000_000;
/// Nanoseconds per second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

impl Ts {
    /// The earliest representable instant: the watermark before any event was seen.
    pub const MIN: Ts = Ts(i64::MIN);
    /// The latest representable instant.
    pub const MAX: Ts = Ts(i64::MAX);

    /// `self + d`, saturating instead of overflowing (a watermark at `MIN` minus lateness stays `MIN`).
    pub fn plus(self, d: Dur) -> Ts {
        Ts(self.0.saturating_add(d.0))
    }

    /// `self - d`, saturating.
    pub fn minus(self, d: Dur) -> Ts {
        Ts(self.0.saturating_sub(d.0))
    }

    /// Elapsed time from `earlier` to `self`.
    pub fn since(self, earlier: Ts) -> Dur {
        Dur(self.0.saturating_sub(earlier.0))
    }

    /// Whole seconds since the epoch (floor).
    pub fn as_second(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// Formats as RFC 3339 in UTC with milliseconds, or nanoseconds when it has finer detail,
    /// so that parsing it back gives the same instant.
    pub fn to_rfc3339_exact(self) -> String {
        let mut s = self.to_rfc3339_millis();
        let sub = self.0.rem_euclid(NANOS_PER_MILLI);
        if sub != 0 {
            s.pop();
            s.push_str(&format!("{sub:06}Z"));
        }
        s
    }

    /// Formats as RFC 3339 in UTC with millisecond precision (`2024-03-31T23:00:24.000Z`).
    pub fn to_rfc3339_millis(self) -> String {
        let mut s = String::with_capacity(24);
        write_rfc3339_millis(&mut s, self);
        s
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Ts::MIN {
            return f.write_str("-infinity");
        }
        f.write_str(&self.to_rfc3339_millis())
    }
}

/// A duration that is not written `<integer><unit>`; says what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurError(String);

impl Dur {
    /// Zero length.
    pub const ZERO: Dur = Dur(0);

    /// From whole seconds.
    pub const fn from_secs(s: i64) -> Dur {
        Dur(s * NANOS_PER_SEC)
    }

    /// From whole milliseconds.
    pub const fn from_millis(ms: i64) -> Dur {
        Dur(ms * NANOS_PER_MILLI)
    }

    /// As a `std::time::Duration` (negative lengths as zero).
    pub(crate) fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }

    /// Whole milliseconds (floor): what `p*_ms` and `max_ms` report.
    pub(crate) fn as_millis_floor(self) -> i64 {
        self.0.div_euclid(NANOS_PER_MILLI)
    }

    /// Parses `"250ms"`, `"30s"`, `"5m"`, `"24h"`, `"7d"` (one integer and one unit).
    ///
    /// ```
    /// use srv_opr::engine::time::Dur;
    /// assert_eq!(Dur::parse("24h"), Ok(Dur::from_secs(86_400)));
    /// assert!(Dur::parse("24 hours").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Dur, DurError> {
        Dur::parse_text(s).map_err(DurError)
    }

    fn parse_text(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
            format!("`{s}` has no unit (write e.g. \"30s\", \"5m\", \"24h\", \"7d\")")
        })?;
        let (num, unit) = s.split_at(split);
        if num.is_empty() {
            return Err(format!("`{s}` does not start with a number"));
        }
        let n: i64 = num
            .parse()
            .map_err(|_| format!("`{s}`: the number is too large"))?;
        let scale = match unit {
            "ns" => 1,
            "us" => 1_000,
            "ms" => NANOS_PER_MILLI,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            "d" => 86_400 * NANOS_PER_SEC,
            _ => {
                return Err(format!(
                    "`{s}`: unknown unit `{unit}` (use ns, us, ms, s, m, h or d)"
                ));
            }
        };
        n.checked_mul(scale)
            .map(Dur)
            .ok_or_else(|| format!("`{s}` is too long"))
    }
}

impl fmt::Display for Dur {
    /// The largest unit that divides the length exactly, so `Dur::parse` reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        let units: [(i64, &str); 6] = [
            (86_400 * NANOS_PER_SEC, "d"),
            (3_600 * NANOS_PER_SEC, "h"),
            (60 * NANOS_PER_SEC, "m"),
            (NANOS_PER_SEC, "s"),
            (NANOS_PER_MILLI, "ms"),
            (1_000, "us"),
        ];
        for (scale, unit) in units {
            if n != 0 && n % scale == 0 {
                return write!(f, "{}{unit}", n / scale);
            }
        }
        write!(f, "{n}ns")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` of year `y`.
pub(crate) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u32;
    }
    Some(n)
}

/// Parses an RFC 3339 timestamp with a mandatory offset (`Z` or `±hh:mm`) and 0–9 fractional
/// digits, e.g. `2024-04-01T00:00:00.5+01:00`. Returns `None` for anything else, including
/// impossible dates, leap seconds and years outside 1678–2261.
///
/// Hand-written because it runs once per event: a general parser costs more than the rest
/// of decoding.
///
/// ```
/// use srv_opr::engine::time::parse_rfc3339;
/// let bst = parse_rfc3339(b"2024-04-01T00:00:00+01:00").unwrap();
/// let utc = parse_rfc3339(b"2024-03-31T23:00:00.000000000Z").unwrap();
/// assert_eq!(bst, utc);
/// assert!(parse_rfc3339(b"2024-03-31T23:00:00").is_none()); // no offset
/// ```
pub fn parse_rfc3339(s: &[u8]) -> Option<Ts> {
    // Shortest: "YYYY-MM-DDTHH:MM:SSZ" = 20 bytes.
    if s.len() < 20 || s.len() > 35 {
        return None;
    }
    if s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&s[0..4])? as i64;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])?;
    let minute = digits(&s[14..16])?;
    let second = digits(&s[17..19])?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
        || !(1678..=2261).contains(&year)
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if s[i] == b'.' {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(&s[start..i])? as i64 * 10i64.pow(9 - n as u32);
    }
    let offset_secs: i64 = match s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == s.len() && s[i + 3] == b':' => {
            let oh = digits(&s[i + 1..i + 3])?;
            let om = digits(&s[i + 4..i + 6])?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 3600 + om * 60) as i64;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_secs;
    Some(Ts(secs * NANOS_PER_SEC + nanos))
}

/// Appends `ts` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn write_rfc3339_millis(out: &mut String, ts: Ts) {
    let secs = ts.0.div_euclid(NANOS_PER_SEC);
    let millis = ts.0.rem_euclid(NANOS_PER_SEC) / NANOS_PER_MILLI;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    use std::fmt::Write;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

/// A wall-clock moment as RFC 3339 UTC, cut to the second (`…T12:37:16Z`; the epoch if the
/// clock is before it): the alerts' summaries and the status page write a moment alike, so one
/// moment never reads a second apart in two places.
pub(crate) fn wall_rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let s = Ts(secs * NANOS_PER_SEC).to_rfc3339_exact();
    // Whole seconds: `…T12:37:16Z`, not `…T12:37:16.000Z`.
    s.strip_suffix(".000Z")
        .map_or(s.clone(), |x| format!("{x}Z"))
}

/// The wall clock as a [`Ts`] (the epoch if the clock is before it).
pub fn now() -> Ts {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Ts(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// Written as its text (`"30s"`), in the definitions' canonical form.
impl serde::Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Ts> {
        parse_rfc3339(s.as_bytes())
    }

    #[test]
    fn parses_offsets_and_fractions_exactly() {
        let z = p("2024-03-31T23:00:00Z").unwrap();
        assert_eq!(p("2024-04-01T00:00:00+01:00"), Some(z));
        assert_eq!(p("2024-03-31T22:00:00-01:00"), Some(z));
        assert_eq!(z.0, 1_711_926_000 * NANOS_PER_SEC);
        assert_eq!(p("2024-03-31T23:00:00.5Z").unwrap().0 - z.0, 500_000_000);
        assert_eq!(
            p("2024-03-31T23:00:00.123456789Z").unwrap().0 - z.0,
            123_456_789
        );
        assert_eq!(p("2024-03-31T23:00:00.000000001Z").unwrap().0 - z.0, 1);
        assert_eq!(p("2024-03-31t23:00:00z"), Some(z));
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(Ts(0)));
        assert_eq!(p("1969-12-31T23:59:59.999Z"), Some(Ts(-NANOS_PER_MILLI)));
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "2024-03-31T23:00:00",             // no offset
            "2024-03-31T23:00:00.Z",           // empty fraction
            "2024-03-31T23:00:00.1234567891Z", // 10 digits
            "2024-02-30T00:00:00Z",            // no such day
            "2023-02-29T00:00:00Z",            // not a leap year
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-06-30T23:59:60Z",     // leap second
            "2024-01-01T00:00:00+0100", // offset without colon
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00Zjunk",
            "2024-1-01T00:00:00Z",
            "１２３４-01-01T00:00:00Z",
            "",
            "2024-01-01",
            "9999-01-01T00:00:00Z", // outside the i64 nanosecond range
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn leap_day_is_valid() {
        assert!(p("2024-02-29T12:00:00Z").is_some());
        assert!(p("2000-02-29T12:00:00Z").is_some());
        assert!(p("1900-02-29T12:00:00Z").is_none());
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "2024-03-31T23:00:24.000Z",
            "1999-12-31T23:59:59.999Z",
            "2261-12-31T00:00:00.001Z",
        ] {
            assert_eq!(p(s).unwrap().to_rfc3339_millis(), s);
        }
    }

    #[test]
    fn exact_format_keeps_nanoseconds() {
        let t = p("2024-03-31T23:00:24.123456789Z").unwrap();
        assert_eq!(t.to_rfc3339_exact(), "2024-03-31T23:00:24.123456789Z");
        assert_eq!(p(&t.to_rfc3339_exact()), Some(t));
        let t = p("2024-03-31T23:00:24.5Z").unwrap();
        assert_eq!(t.to_rfc3339_exact(), "2024-03-31T23:00:24.500Z");
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for z in (-200_000..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Dur::parse("30s"), Ok(Dur::from_secs(30)));
        assert_eq!(Dur::parse("250ms"), Ok(Dur::from_millis(250)));
        assert_eq!(Dur::parse("24h"), Ok(Dur::from_secs(86_400)));
        assert_eq!(Dur::parse("7d"), Ok(Dur::from_secs(7 * 86_400)));
        assert!(Dur::parse("30").is_err());
        assert!(Dur::parse("s").is_err());
        assert!(Dur::parse("3 weeks").is_err());
        assert!(Dur::parse("99999999999999999d").is_err());
        assert_eq!(Dur::from_secs(86_400).to_string(), "1d");
        assert_eq!(Dur::from_secs(90).to_string(), "90s");
        assert_eq!(Dur::from_millis(1500).to_string(), "1500ms");
    }
}
