//! One month × measure × region: the counts, failure buckets with their evidence samples and
//! response times of its decided requests, and how one decision lands in it ([`outcome`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use hdrhistogram::Histogram;

use crate::engine::catalog::{Bucket, Catalog, CodeKind};
use crate::engine::correlate::Decision;
use crate::engine::definitions::MeasureRule;
use crate::engine::domain::Basis;
use crate::engine::time::Dur;

use super::histogram::{new_histogram, record};
use super::users::Users;

/// One month × measure × region.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Requests decided.
    pub requests: u64,
    /// Successfully answered within the TRT.
    pub within_target: u64,
    /// Successfully answered within the deadline.
    pub succeeded: u64,
    /// No final response within the deadline.
    pub no_response: u64,
    /// Misses by failure bucket.
    pub buckets: BTreeMap<Bucket, u64>,
    /// Response times (ms) of requests with a final response within the deadline.
    pub(super) hist: Option<Box<Histogram<u64>>>,
    /// Exact longest response time (ms) among them.
    pub(super) max_ms: Option<u64>,
    /// Times a count of this row changed after its month was final.
    pub revision: u32,
    /// Evidence per failure bucket: at most [`Row::sample_cap`] requests, those with the
    /// smallest keys, so the sample is the same whatever order requests are decided or rows
    /// merged in.
    pub samples: BTreeMap<Bucket, Vec<Sampled>>,
    /// Requests, within target and succeeded by day of the month (the day of each request's
    /// `at`, 1–31 at index 0–30): the month's RPL day by day. `None` until one is counted.
    pub(super) days: Option<Box<Days>>,
    /// Requests with at least one acknowledgement.
    pub acked: u64,
    /// Request to first acknowledgement (ms), of the acknowledged requests.
    pub(super) ack_hist: Option<Box<Histogram<u64>>>,
    /// First acknowledgement to final response (ms), of the requests with both (the final
    /// response within the deadline, the acknowledgement not after it).
    pub(super) after_ack_hist: Option<Box<Histogram<u64>>>,
    /// Counts by service user ([`crate::engine::catalog::NO_USER`] for none): `users.csv`,
    /// regions pooled. Hundreds of users, never metric labels.
    pub users: Users,
    /// The most requests kept per failure bucket (`[evidence] sample`; 0: [`SAMPLE_SIZE`]).
    pub(super) sample_cap: u16,
}

/// A row's counts by day of the month: requests, within target, succeeded.
pub type Days = [[u64; 3]; 31];

/// Most requests kept as evidence per row and failure bucket.
pub const SAMPLE_SIZE: usize = 20;

/// One request of a failure bucket's evidence: its key's low 64 bits and its evidence text
/// (`id␟user␟device`, [`crate::engine::correlate::evidence_text`]).
pub(crate) type Sampled = (u64, Box<str>);

/// Adds `(key, text)` to a sorted bottom-`cap` sample, if it is small enough.
fn sample_add(v: &mut Vec<Sampled>, key: u64, text: &str, cap: usize) {
    if v.len() >= cap && v.last().is_some_and(|l| l.0 <= key) {
        return;
    }
    match v.binary_search_by_key(&key, |s| s.0) {
        Ok(_) => {}
        Err(i) => {
            v.insert(i, (key, text.into()));
            v.truncate(cap);
        }
    }
}

/// The outcome of one request in one measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Success within TRT.
    pub within_target: bool,
    /// Success within the deadline.
    pub succeeded: bool,
    /// No final response within the deadline.
    pub no_response: bool,
    /// Response time in ms, if a final response came within the deadline.
    pub rt_ms: Option<u64>,
    /// The failure bucket, if a miss.
    pub bucket: Option<Bucket>,
    /// Request to first acknowledgement (ms), if acknowledged.
    pub ack_ms: Option<u64>,
    /// First acknowledgement to the final response (ms), if both and the final response came
    /// within the deadline, not before the acknowledgement.
    pub after_ack_ms: Option<u64>,
}

/// Judges a decided request against one measure's rule (SPEC §2 Outcomes): its response time
/// runs from when it was due (a future-dated request's `execute_at`; a final response before
/// then is 0 ms late), its acknowledgement segment from its `at`.
pub(crate) fn outcome(rule: &MeasureRule, d: &Decision, cat: &Catalog) -> Outcome {
    let within_deadline = d.fin.and_then(|(at, code)| {
        let rt: Dur = at.since(d.due);
        (rt <= rule.deadline).then_some((rt, code))
    });
    let ack_ms = d.ack_ms.map(u64::from);
    // Both segments from `at` in whole ms, so that they add up to the time to the final
    // response (exactly, for the ms timestamps DUIS carries).
    let after_ack_ms = match (ack_ms, within_deadline) {
        (Some(ack), Some(_)) => d.fin.and_then(|(fin, _)| {
            let fin_ms = u64::try_from(fin.since(d.at).as_millis_floor()).ok()?;
            fin_ms.checked_sub(ack)
        }),
        _ => None,
    };
    let (within_target, succeeded, rt_ms, bucket_if_miss) = match within_deadline {
        None => (false, false, None, Bucket::NO_RESPONSE),
        Some((rt, code)) => {
            let ok = cat.code_kind(code) == CodeKind::Success;
            let wt = ok && rt <= rule.trt;
            let bucket = if ok {
                Bucket::SLOW
            } else {
                cat.code_bucket(code)
            };
            (wt, ok, Some(rt.as_millis_floor().max(0) as u64), bucket)
        }
    };
    let hit = match rule.basis {
        Basis::Trt => within_target,
        Basis::Success => succeeded,
    };
    Outcome {
        within_target,
        succeeded,
        no_response: within_deadline.is_none(),
        rt_ms,
        bucket: (!hit).then_some(bucket_if_miss),
        ack_ms,
        after_ack_ms,
    }
}

/// Records (`add`) or takes back `ms` in an optional histogram.
fn hist_step(
    h: &mut Option<Box<Histogram<u64>>>,
    ms: u64,
    add: bool,
    scratch: &mut Option<Histogram<u64>>,
) {
    let h = h.get_or_insert_with(|| Box::new(new_histogram()));
    if add {
        record(h, ms);
    } else {
        let s = scratch.get_or_insert_with(new_histogram);
        s.reset();
        record(s, ms);
        if let Err(e) = h.subtract(&*s) {
            tracing::error!(error = ?e, "internal: could not take a revised value out of a histogram");
        }
    }
}

/// Adds `other` into an optional histogram.
fn hist_merge(h: &mut Option<Box<Histogram<u64>>>, other: &Option<Box<Histogram<u64>>>) {
    if let Some(oh) = other {
        match h {
            Some(h) => {
                if let Err(e) = h.add(&**oh) {
                    tracing::error!(error = ?e, "internal: histogram merge failed");
                }
            }
            None => *h = Some(oh.clone()),
        }
    }
}

/// The value at quantile `q` of an optional histogram: the middle of its bucket.
fn hist_quantile(h: &Option<Box<Histogram<u64>>>, q: f64) -> Option<u64> {
    let h = h.as_ref().filter(|h| !h.is_empty())?;
    Some(h.median_equivalent(h.value_at_quantile(q)))
}

impl Row {
    /// Counts (`add`) or takes back one request's outcome; `day` is the day of the month of
    /// its due time (1–31), `user` its service user's name.
    pub(super) fn apply(
        &mut self,
        o: &Outcome,
        add: bool,
        scratch: &mut Option<Histogram<u64>>,
        sample: (u64, Option<&str>),
        day: u8,
        user: (&Arc<str>, u64),
    ) {
        let step = |n: &mut u64, yes: bool| {
            if yes {
                *n = if add { *n + 1 } else { n.saturating_sub(1) };
            }
        };
        step(&mut self.requests, true);
        step(&mut self.within_target, o.within_target);
        step(&mut self.succeeded, o.succeeded);
        step(&mut self.no_response, o.no_response);
        step(&mut self.acked, o.ack_ms.is_some());
        if let Some(ms) = o.ack_ms {
            hist_step(&mut self.ack_hist, ms, add, scratch);
        }
        if let Some(ms) = o.after_ack_ms {
            hist_step(&mut self.after_ack_hist, ms, add, scratch);
        }
        {
            let u = self.users.counts_mut(user.0, user.1);
            step(&mut u.requests, true);
            step(&mut u.within_target, o.within_target);
            step(&mut u.succeeded, o.succeeded);
            step(&mut u.no_response, o.no_response);
            if u.requests == 0 {
                self.users.remove(user.0, user.1);
            }
        }
        let d = &mut self.days_mut()[usize::from(day.clamp(1, 31)) - 1];
        step(&mut d[0], true);
        step(&mut d[1], o.within_target);
        step(&mut d[2], o.succeeded);
        if let Some(b) = o.bucket {
            let n = self.buckets.entry(b).or_insert(0);
            step(n, true);
            if *n == 0 {
                self.buckets.remove(&b);
            }
            match (add, sample) {
                (true, (key, Some(text))) => {
                    let cap = self.sample_cap();
                    sample_add(self.samples.entry(b).or_default(), key, text, cap);
                }
                (false, (key, _)) => {
                    if let Some(v) = self.samples.get_mut(&b) {
                        v.retain(|s| s.0 != key);
                        if v.is_empty() {
                            self.samples.remove(&b);
                        }
                    }
                }
                (true, (_, None)) => {}
            }
        }
        if let Some(ms) = o.rt_ms {
            hist_step(&mut self.hist, ms, add, scratch);
            if add {
                self.max_ms = Some(self.max_ms.map_or(ms, |m| m.max(ms)));
            } else if self.max_ms == Some(ms) {
                // The exact maximum is gone; the histogram's bound is within 0.1 %.
                self.max_ms = self
                    .hist
                    .as_ref()
                    .filter(|h| !h.is_empty())
                    .map(|h| h.max());
            }
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Row) {
        self.requests += other.requests;
        self.within_target += other.within_target;
        self.succeeded += other.succeeded;
        self.no_response += other.no_response;
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_insert(0) += n;
        }
        self.sample_cap = self.sample_cap.max(other.sample_cap);
        let cap = self.sample_cap();
        for (b, v) in &other.samples {
            let mine = self.samples.entry(*b).or_default();
            for (key, text) in v {
                sample_add(mine, *key, text, cap);
            }
        }
        hist_merge(&mut self.hist, &other.hist);
        self.max_ms = match (self.max_ms, other.max_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.revision += other.revision;
        self.acked += other.acked;
        hist_merge(&mut self.ack_hist, &other.ack_hist);
        hist_merge(&mut self.after_ack_hist, &other.after_ack_hist);
        self.users.merge(&other.users);
        if let Some(od) = &other.days {
            for (a, b) in self.days_mut().iter_mut().zip(od.iter()) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        }
    }

    /// The most requests kept per failure bucket.
    pub fn sample_cap(&self) -> usize {
        if self.sample_cap == 0 {
            SAMPLE_SIZE
        } else {
            usize::from(self.sample_cap)
        }
    }

    /// Keeps up to `cap` requests per failure bucket from now on (1 to 65,535).
    pub(super) fn set_sample_cap(&mut self, cap: usize) {
        self.sample_cap = u16::try_from(cap).unwrap_or(u16::MAX).max(1);
    }

    /// The counts by day, made on first use.
    pub(super) fn days_mut(&mut self) -> &mut Days {
        self.days.get_or_insert_with(|| Box::new([[0; 3]; 31]))
    }

    /// The counts by day as a table (day 1 at index 0; zeros for none).
    pub(crate) fn day_counts(&self) -> Days {
        self.days.as_deref().copied().unwrap_or([[0; 3]; 31])
    }

    /// The days of the month with requests: (day 1–31, requests, within target, succeeded).
    pub fn days(&self) -> impl Iterator<Item = (u8, [u64; 3])> + '_ {
        self.days.iter().flat_map(|d| {
            d.iter()
                .enumerate()
                .filter(|(_, c)| c[0] > 0)
                .map(|(i, c)| (i as u8 + 1, *c))
        })
    }

    /// Hits for a basis.
    pub fn hits(&self, basis: Basis) -> u64 {
        match basis {
            Basis::Trt => self.within_target,
            Basis::Success => self.succeeded,
        }
    }

    /// Response time at quantile `q` in ms, if any response was timed: the middle of the
    /// histogram bucket holding the quantile (≤ 0.05 % from any value in it), never above the
    /// exact maximum.
    pub(crate) fn quantile_ms(&self, q: f64) -> Option<u64> {
        let h = self.hist.as_ref().filter(|h| !h.is_empty())?;
        let v = h.median_equivalent(h.value_at_quantile(q));
        Some(self.max_ms.map_or(v, |m| v.min(m)))
    }

    /// Request to first acknowledgement at quantile `q`, in ms (the middle of its bucket).
    pub(crate) fn ack_quantile_ms(&self, q: f64) -> Option<u64> {
        hist_quantile(&self.ack_hist, q)
    }

    /// First acknowledgement to final response at quantile `q`, in ms.
    pub(crate) fn after_ack_quantile_ms(&self, q: f64) -> Option<u64> {
        hist_quantile(&self.after_ack_hist, q)
    }

    /// Exact longest response time in ms.
    pub fn max_ms(&self) -> Option<u64> {
        self.max_ms
    }

    /// The share of this row's requests (%) answered with a final response by each time (ms),
    /// at log-spaced times (×1.25) up to the longest: the curve of a response-time chart. It
    /// ends below 100 % by the share with no response within the deadline.
    pub(crate) fn answered_curve(&self) -> Vec<(f64, f64)> {
        let Some(h) = self.hist.as_ref().filter(|h| !h.is_empty()) else {
            return Vec::new();
        };
        if self.requests == 0 {
            return Vec::new();
        }
        let total = self.requests as f64;
        let mut seen = 0u64;
        let mut points = vec![(10.0, 0.0)];
        for v in h.iter_log(10, 1.25) {
            seen += v.count_since_last_iteration();
            points.push((v.value_iterated_to() as f64, 100.0 * seen as f64 / total));
        }
        points
    }

    /// Recorded histogram values `(ms bucket, count)`, for comparisons in tests.
    pub fn histogram_counts(&self) -> Vec<(u64, u64)> {
        self.hist
            .as_ref()
            .map(|h| {
                h.iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `100 × hits / requests` with exactly four decimals, rounded half away from zero, computed in
/// integers so the same counts give the same text everywhere (SPEC §5).
///
/// ```
/// use srv_opr::engine::aggregate::rpl_percent;
/// assert_eq!(rpl_percent(2, 3).as_deref(), Some("66.6667"));
/// assert_eq!(rpl_percent(7, 7).as_deref(), Some("100.0000"));
/// assert_eq!(rpl_percent(0, 0), None);
/// ```
pub fn rpl_percent(hits: u64, requests: u64) -> Option<String> {
    let q = rpl_ten_thousandths(hits, requests)?;
    Some(format!("{}.{:04}", q / 10_000, q % 10_000))
}

/// The same RPL as [`rpl_percent`], as an exact decimal (four places), for comparing with TPL
/// and MPL.
///
/// ```
/// use srv_opr::engine::aggregate::rpl_decimal;
/// assert_eq!(rpl_decimal(2, 3), Some(rust_decimal::Decimal::new(666_667, 4)));
/// ```
pub fn rpl_decimal(hits: u64, requests: u64) -> Option<rust_decimal::Decimal> {
    let q = rpl_ten_thousandths(hits, requests)?;
    // At most 100.0000 × 10⁴: always fits.
    Some(rust_decimal::Decimal::new(q as i64, 4))
}

/// `100 × hits / requests` in ten-thousandths of a percent, rounded half away from zero.
fn rpl_ten_thousandths(hits: u64, requests: u64) -> Option<u128> {
    if requests == 0 {
        return None;
    }
    let num = hits as u128 * 1_000_000;
    let den = requests as u128;
    let mut q = num / den;
    if (num % den) * 2 >= den {
        q += 1;
    }
    Some(q)
}

/// Two rows are equal when everything a month output shows of them is: the counts, the buckets,
/// the revision, the largest response time and the histogram (not the evidence samples, which
/// are a sample).
impl PartialEq for Row {
    fn eq(&self, o: &Row) -> bool {
        (
            self.requests,
            self.within_target,
            self.succeeded,
            self.no_response,
            &self.buckets,
            self.revision,
        ) == (
            o.requests,
            o.within_target,
            o.succeeded,
            o.no_response,
            &o.buckets,
            o.revision,
        ) && self.max_ms() == o.max_ms()
            && self.histogram_counts() == o.histogram_counts()
    }
}
impl Eq for Row {}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome_with_rt(ms: u64) -> Outcome {
        Outcome {
            within_target: true,
            succeeded: true,
            no_response: false,
            rt_ms: Some(ms),
            bucket: None,
            ack_ms: None,
            after_ack_ms: None,
        }
    }

    #[test]
    fn quantiles_follow_recorded_values_within_a_tenth_of_a_percent() {
        let mut row = Row::default();
        let mut scratch = None;
        for ms in [25_000u64, 86_400_000, 3, 1_234_567] {
            row.apply(
                &outcome_with_rt(ms),
                true,
                &mut scratch,
                (0, None),
                1,
                (&"-".into(), 0),
            );
        }
        let p100 = row.quantile_ms(1.0).unwrap();
        assert_eq!(
            p100, 86_400_000,
            "never above the exact maximum, and within 0.1 % of it"
        );
        let p25 = row.quantile_ms(0.25).unwrap();
        assert_eq!(p25, 3);
        let p50 = row.quantile_ms(0.5).unwrap();
        assert!(p50.abs_diff(25_000) <= 25, "{p50}");
        assert_eq!(row.max_ms(), Some(86_400_000));
        // Taking a value out restores the histogram exactly.
        row.apply(
            &outcome_with_rt(86_400_000),
            false,
            &mut scratch,
            (0, None),
            1,
            (&"-".into(), 0),
        );
        assert_eq!(row.requests, 3);
        let p100 = row.quantile_ms(1.0).unwrap();
        assert!(p100.abs_diff(1_234_567) <= 1_235, "{p100}");
    }

    #[test]
    fn rpl_rounds_half_away_from_zero() {
        assert_eq!(rpl_percent(1, 1).as_deref(), Some("100.0000"));
        assert_eq!(rpl_percent(0, 3).as_deref(), Some("0.0000"));
        assert_eq!(rpl_percent(2, 3).as_deref(), Some("66.6667"));
        assert_eq!(rpl_percent(1, 3).as_deref(), Some("33.3333"));
        // 1/32 = 3.125 % exactly; 1/160000 = 0.000625 % → 0.0006 (half rounds up).
        assert_eq!(rpl_percent(1, 32).as_deref(), Some("3.1250"));
        assert_eq!(rpl_percent(1, 160_000).as_deref(), Some("0.0006"));
        assert_eq!(rpl_percent(1, 200_000).as_deref(), Some("0.0005"));
        assert_eq!(rpl_percent(1, 2_000_001).as_deref(), Some("0.0000"));
        assert_eq!(rpl_percent(0, 0), None);
    }
}
