//! Calendar months in the configured time zone: which month an instant belongs to, and where
//! a month starts and ends as instants (so BST edges fall where the regulator puts them).

use std::fmt;

use jiff::tz::TimeZone;

use crate::engine::time::Ts;

/// A calendar month, stored as `year * 12 + (month - 1)` so months order and subtract as integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(pub i32);

impl Month {
    /// The month `year-month` (`month` in 1..=12).
    pub fn new(year: i32, month: u32) -> Month {
        Month(year * 12 + month as i32 - 1)
    }

    /// Calendar year.
    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// Month of the year, 1..=12.
    pub fn month(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    /// The following month.
    pub fn next(self) -> Month {
        Month(self.0 + 1)
    }

    /// The month before.
    pub(crate) fn prev(self) -> Month {
        Month(self.0 - 1)
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let y: i32 = y.parse().ok()?;
        let m: u32 = m.parse().ok()?;
        (1..=12).contains(&m).then(|| Month::new(y, m))
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

/// Maps instants to months in one time zone. Keeps the bounds of the last months it resolved,
/// because events arrive roughly in time order and a time-zone lookup per event would cost more
/// than the rest of aggregation.
#[derive(Clone)]
pub struct Calendar {
    tz: TimeZone,
    zone_name: String,
    /// Recently resolved months as `(start, end, month)`, most recent first.
    cache: [(Ts, Ts, Month); 2],
    /// The starts of the days of recently asked months (and the month's end last), most
    /// recent first: a day's length changes with the clocks, so days are looked up, not divided.
    days: [(Month, Vec<Ts>); 2],
}

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("zone", &self.zone_name)
            .finish()
    }
}

/// The zone is not in the time-zone database.
#[derive(Debug, thiserror::Error)]
#[error("unknown time zone `{zone}`")]
pub struct UnknownZone {
    zone: String,
    #[source]
    source: jiff::Error,
}

impl Calendar {
    /// A calendar for an IANA zone name such as `Europe/London`.
    pub fn new(zone: &str) -> Result<Calendar, UnknownZone> {
        let tz = TimeZone::get(zone).map_err(|source| UnknownZone {
            zone: zone.to_string(),
            source,
        })?;
        let empty = (Ts(1), Ts(0), Month(0));
        Ok(Calendar {
            tz,
            zone_name: zone.to_string(),
            cache: [empty, empty],
            days: [(Month(0), Vec::new()), (Month(0), Vec::new())],
        })
    }

    /// The zone's name.
    pub fn zone(&self) -> &str {
        &self.zone_name
    }

    /// The month containing `ts`.
    ///
    /// ```
    /// use srv_opr::engine::calendar::{Calendar, Month};
    /// use srv_opr::engine::time::parse_rfc3339;
    /// let mut london = Calendar::new("Europe/London").unwrap();
    /// let t = parse_rfc3339(b"2024-03-31T23:30:00Z").unwrap();
    /// assert_eq!(london.month_of(t), Month::new(2024, 4)); // 00:30 BST on 1 April
    /// ```
    #[inline]
    pub fn month_of(&mut self, ts: Ts) -> Month {
        for (start, end, m) in self.cache {
            if ts >= start && ts < end {
                return m;
            }
        }
        self.resolve(ts)
    }

    /// The month containing `ts` and the minute of that month it falls in (0 from the month's
    /// first instant): the cell a request's counts are kept in for exemptions, whose windows
    /// are whole minutes.
    #[inline]
    pub(crate) fn minute_of(&mut self, ts: Ts) -> (Month, u16) {
        let month = self.month_of(ts);
        let start = self
            .cache
            .iter()
            .find(|(_, _, m)| *m == month)
            .map_or_else(|| self.start_of(month), |(s, _, _)| *s);
        let minute = (ts.0 - start.0).div_euclid(60 * crate::engine::time::NANOS_PER_SEC);
        (month, minute.clamp(0, i64::from(u16::MAX)) as u16)
    }

    /// The first instant of minute `minute` of `month`.
    pub(crate) fn minute_start(&self, month: Month, minute: u16) -> Ts {
        Ts(self.start_of(month).0 + i64::from(minute) * 60 * crate::engine::time::NANOS_PER_SEC)
    }

    #[cold]
    fn resolve(&mut self, ts: Ts) -> Month {
        let month = self.civil_month(ts);
        let entry = (self.start_of(month), self.start_of(month.next()), month);
        self.cache[1] = self.cache[0];
        self.cache[0] = entry;
        month
    }

    fn civil_month(&self, ts: Ts) -> Month {
        // Whole seconds are enough: month edges fall on whole seconds in every zone.
        match jiff::Timestamp::from_second(ts.as_second()) {
            Ok(t) => {
                let z = t.to_zoned_datetime(self.tz.clone());
                Month::new(z.year() as i32, z.month() as u32)
            }
            // Unreachable for timestamps our parser accepts (1678–2261); fall back to UTC.
            Err(_) => {
                let (y, m, _) =
                    crate::engine::time::civil_from_days(ts.as_second().div_euclid(86_400));
                Month::new(y as i32, m)
            }
        }
    }

    /// The instant at which `month` begins in this zone (local midnight of its first day, or the
    /// first instant of that day where midnight does not exist).
    pub(crate) fn start_of(&self, month: Month) -> Ts {
        let date = jiff::civil::Date::new(month.year() as i16, month.month() as i8, 1);
        match date.and_then(|d| d.to_zoned_datetime(self.tz.clone())) {
            Ok(z) => Ts(z.timestamp().as_second() * crate::engine::time::NANOS_PER_SEC),
            Err(_) => {
                let days =
                    crate::engine::time::days_from_civil(month.year() as i64, month.month(), 1);
                Ts(days * 86_400 * crate::engine::time::NANOS_PER_SEC)
            }
        }
    }

    /// The instant at which `month` ends (the start of the next).
    pub(crate) fn end_of(&self, month: Month) -> Ts {
        self.start_of(month.next())
    }

    /// How much of `month` (0–1) has gone by at `ts`, in event time.
    pub(crate) fn share_gone(&self, month: Month, ts: Ts) -> Option<f64> {
        let (start, end) = (self.start_of(month), self.end_of(month));
        let span = (end.0 - start.0) as f64;
        (span > 0.0).then(|| ((ts.0 - start.0) as f64 / span).clamp(0.0, 1.0))
    }

    /// The day of its month (1–31) that contains `ts`, in this zone.
    ///
    /// ```
    /// use srv_opr::engine::calendar::Calendar;
    /// use srv_opr::engine::time::parse_rfc3339;
    /// let mut london = Calendar::new("Europe/London").unwrap();
    /// let t = |s: &str| parse_rfc3339(s.as_bytes()).unwrap();
    /// assert_eq!(london.day_of(t("2024-03-31T22:59:59Z")), 31); // 23:59:59 BST
    /// assert_eq!(london.day_of(t("2024-03-31T23:00:00Z")), 1); // midnight BST, 1 April
    /// assert_eq!(london.day_of(t("2024-04-01T23:30:00Z")), 2);
    /// ```
    #[inline]
    pub fn day_of(&mut self, ts: Ts) -> u8 {
        let month = self.month_of(ts);
        if self.days[0].0 != month {
            if self.days[1].0 != month {
                self.days[1] = (month, self.day_starts(month));
            }
            self.days.swap(0, 1);
        }
        // Days whose start is at or before `ts`: at least the first.
        self.days[0].1.partition_point(|s| *s <= ts).clamp(1, 31) as u8
    }

    /// The starts of `month`'s days, in order.
    #[cold]
    fn day_starts(&self, month: Month) -> Vec<Ts> {
        let end = self.end_of(month);
        let mut out = vec![self.start_of(month)];
        for day in 2..=31i8 {
            let date = jiff::civil::Date::new(month.year() as i16, month.month() as i8, day);
            let Ok(start) = date.and_then(|d| d.to_zoned_datetime(self.tz.clone())) else {
                break;
            };
            let start = Ts(start.timestamp().as_second() * crate::engine::time::NANOS_PER_SEC);
            if start >= end {
                break;
            }
            out.push(start);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::time::parse_rfc3339;

    fn ts(s: &str) -> Ts {
        parse_rfc3339(s.as_bytes()).unwrap()
    }

    #[test]
    fn bst_edge_at_the_end_of_march_2024() {
        let mut cal = Calendar::new("Europe/London").unwrap();
        // BST began 2024-03-31 01:00 UTC, so 23:00Z on the 31st is midnight of 1 April.
        assert_eq!(
            cal.month_of(ts("2024-03-31T22:59:59.999Z")),
            Month::new(2024, 3)
        );
        assert_eq!(
            cal.month_of(ts("2024-03-31T23:00:00Z")),
            Month::new(2024, 4)
        );
        assert_eq!(
            cal.month_of(ts("2024-03-31T23:30:00Z")),
            Month::new(2024, 4)
        );
        assert_eq!(
            cal.start_of(Month::new(2024, 4)),
            ts("2024-03-31T23:00:00Z")
        );
        // GMT in winter: the month edge is at midnight UTC.
        assert_eq!(
            cal.start_of(Month::new(2024, 3)),
            ts("2024-03-01T00:00:00Z")
        );
        assert_eq!(cal.end_of(Month::new(2024, 10)), ts("2024-11-01T00:00:00Z"));
        assert_eq!(
            cal.start_of(Month::new(2024, 10)),
            ts("2024-09-30T23:00:00Z")
        );
    }

    #[test]
    fn cache_does_not_confuse_months() {
        let mut cal = Calendar::new("Europe/London").unwrap();
        let a = ts("2024-03-15T00:00:00Z");
        let b = ts("2024-04-15T00:00:00Z");
        let c = ts("2024-05-15T00:00:00Z");
        for _ in 0..3 {
            assert_eq!(cal.month_of(a), Month::new(2024, 3));
            assert_eq!(cal.month_of(b), Month::new(2024, 4));
            assert_eq!(cal.month_of(c), Month::new(2024, 5));
        }
    }

    #[test]
    fn utc_and_unknown_zones() {
        let mut cal = Calendar::new("UTC").unwrap();
        assert_eq!(
            cal.month_of(ts("2024-03-31T23:30:00Z")),
            Month::new(2024, 3)
        );
        assert!(Calendar::new("Europe/Atlantis").is_err());
    }

    #[test]
    fn month_text() {
        assert_eq!(Month::parse("2024-03"), Some(Month::new(2024, 3)));
        assert_eq!(Month::new(2024, 12).next().to_string(), "2025-01");
        assert_eq!(Month::parse("2024-13"), None);
        assert_eq!(Month::parse("24-03"), None);
    }
}
