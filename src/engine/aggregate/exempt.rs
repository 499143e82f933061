//! What the exemption register takes out of the month rows: per view, month, measure and region,
//! the counts of the decided requests it exempts (a [`Tally`], with the exemption each is counted
//! under), and a view's rows as the base rows less that (issue 29). The base rows stay whole, so
//! every view, and any later register, is computed from the same counts.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use crate::engine::calendar::Month;
use crate::engine::catalog::Bucket;

use super::row::{Days, Outcome, Row};

/// The counts of decided requests an exemption takes out of a row (response times aside:
/// percentiles stay over all requests), and how many each exemption took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests exempted.
    pub requests: u64,
    /// Of them, within target.
    pub within_target: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Without a final response within the deadline.
    pub no_response: u64,
    /// Misses by failure bucket.
    pub buckets: BTreeMap<Bucket, u64>,
    /// Requests, within target, succeeded by day of the month (as [`Row`]'s).
    pub days: Option<Box<Days>>,
    /// Requests by exemption (its index in the register).
    pub by_exemption: BTreeMap<u16, u64>,
}

impl Tally {
    /// Counts (`add`) or takes back one request's outcome, exempted by `exemption`, `n` times;
    /// `day` is the day of the month of its `at`.
    pub(crate) fn apply(&mut self, o: &Outcome, add: bool, exemption: u16, day: u8, n: u64) {
        let step = |x: &mut u64, yes: bool| {
            if yes {
                *x = if add { *x + n } else { x.saturating_sub(n) };
            }
        };
        step(&mut self.requests, true);
        step(&mut self.within_target, o.within_target);
        step(&mut self.succeeded, o.succeeded);
        step(&mut self.no_response, o.no_response);
        let d = &mut self.days.get_or_insert_with(|| Box::new([[0; 3]; 31]))
            [usize::from(day.clamp(1, 31)) - 1];
        step(&mut d[0], true);
        step(&mut d[1], o.within_target);
        step(&mut d[2], o.succeeded);
        if let Some(b) = o.bucket {
            let x = self.buckets.entry(b).or_insert(0);
            step(x, true);
            if *x == 0 {
                self.buckets.remove(&b);
            }
        }
        let x = self.by_exemption.entry(exemption).or_insert(0);
        step(x, true);
        if *x == 0 {
            self.by_exemption.remove(&exemption);
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.within_target += other.within_target;
        self.succeeded += other.succeeded;
        self.no_response += other.no_response;
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_insert(0) += n;
        }
        if let Some(od) = &other.days {
            let mine = self.days.get_or_insert_with(|| Box::new([[0; 3]; 31]));
            for (a, b) in mine.iter_mut().zip(od.iter()) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        }
        for (e, n) in &other.by_exemption {
            *self.by_exemption.entry(*e).or_insert(0) += n;
        }
    }

    /// `base` less these requests: the row a view reports. Response times, evidence and the
    /// revision stay the base row's.
    pub(crate) fn taken_from(&self, base: &Row) -> Row {
        let mut r = base.clone();
        r.requests = r.requests.saturating_sub(self.requests);
        r.within_target = r.within_target.saturating_sub(self.within_target);
        r.succeeded = r.succeeded.saturating_sub(self.succeeded);
        r.no_response = r.no_response.saturating_sub(self.no_response);
        for (b, n) in &self.buckets {
            if let Some(x) = r.buckets.get_mut(b) {
                *x = x.saturating_sub(*n);
                if *x == 0 {
                    r.buckets.remove(b);
                }
            }
        }
        if let (Some(td), Some(rd)) = (&self.days, r.days.as_mut()) {
            for (a, b) in rd.iter_mut().zip(td.iter()) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = x.saturating_sub(*y);
                }
            }
        }
        r
    }
}

/// The tallies of every view, month and measure (three regions each), and the revisions that
/// changes of register made to the views' rows.
#[derive(Debug, Clone, Default)]
pub struct Exempted {
    pub(super) blocks: HashMap<(u8, Month, u16), [Tally; 3]>,
    /// Revisions by register changes: (view, month, measure, region 0–2 or 3 for `all`).
    pub(super) revisions: HashMap<(u8, Month, u16, u8), u32>,
}

impl Exempted {
    /// The tally of a view, month, measure and region, if it exempted anything there.
    pub fn get(&self, view: usize, month: Month, measure: u16, region: usize) -> Option<&Tally> {
        let t = &self.blocks.get(&(view as u8, month, measure))?[region];
        (t.requests > 0).then_some(t)
    }

    /// The three regional tallies of a view, month and measure.
    pub fn regions(&self, view: usize, month: Month, measure: u16) -> Option<&[Tally; 3]> {
        self.blocks.get(&(view as u8, month, measure))
    }

    /// The revisions changes of register made to a view's row (`region` 3: `all`).
    pub fn revision(&self, view: usize, month: Month, measure: u16, region: usize) -> u32 {
        self.revisions
            .get(&(view as u8, month, measure, region as u8))
            .copied()
            .unwrap_or(0)
    }

    /// Counts a revision of a view's row by a change of register.
    pub fn revise(&mut self, view: usize, month: Month, measure: u16, region: usize) {
        *self
            .revisions
            .entry((view as u8, month, measure, region as u8))
            .or_insert(0) += 1;
    }

    /// The (month, measure, region 0–3) rows whose figures differ between `self`'s view
    /// `view` and `other`'s view `other_view` (`None`: a view the other register does not
    /// have, which exempts nothing).
    pub(crate) fn differing(
        &self,
        view: Option<usize>,
        other: &Exempted,
        other_view: Option<usize>,
    ) -> Vec<(Month, u16, usize)> {
        let figures = |t: &Tally| {
            (
                t.requests,
                t.within_target,
                t.succeeded,
                t.no_response,
                t.buckets.clone(),
            )
        };
        let of = |e: &Exempted, v: Option<usize>| -> BTreeMap<(Month, u16), [Tally; 4]> {
            let mut out = BTreeMap::new();
            let Some(v) = v else {
                return out;
            };
            for ((bv, m, mi), t) in &e.blocks {
                if usize::from(*bv) != v {
                    continue;
                }
                let mut all = Tally::default();
                for x in t {
                    all.merge(x);
                }
                out.insert((*m, *mi), [t[0].clone(), t[1].clone(), t[2].clone(), all]);
            }
            out
        };
        let (a, b) = (of(self, view), of(other, other_view));
        let none: [Tally; 4] = Default::default();
        let mut keys: Vec<&(Month, u16)> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        let mut out = Vec::new();
        for k in keys {
            let (x, y) = (a.get(k).unwrap_or(&none), b.get(k).unwrap_or(&none));
            for r in 0..4 {
                if figures(&x[r]) != figures(&y[r]) {
                    out.push((k.0, k.1, r));
                }
            }
        }
        out
    }

    /// Adds another partition's tallies.
    pub fn merge(&mut self, other: &Exempted) {
        for (k, ob) in &other.blocks {
            let b = self.blocks.entry(*k).or_default();
            for (x, y) in b.iter_mut().zip(ob) {
                x.merge(y);
            }
        }
        for (k, n) in &other.revisions {
            *self.revisions.entry(*k).or_insert(0) += n;
        }
    }

    /// Whether nothing is exempted anywhere.
    pub fn is_empty(&self) -> bool {
        self.blocks
            .values()
            .all(|b| b.iter().all(|t| t.requests == 0))
    }

    /// Counts `n` requests of `outcome` in (view, month, measure, region), under `exemption`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply(
        &mut self,
        view: usize,
        month: Month,
        measure: u16,
        region: usize,
        o: &Outcome,
        add: bool,
        exemption: u16,
        day: u8,
        n: u64,
    ) {
        let b = self.blocks.entry((view as u8, month, measure)).or_default();
        b[region].apply(o, add, exemption, day, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(hit: bool, no_response: bool) -> Outcome {
        Outcome {
            within_target: hit,
            succeeded: hit,
            no_response,
            rt_ms: (!no_response).then_some(1000),
            ack_ms: None,
            after_ack_ms: None,
            bucket: (!hit).then_some(if no_response {
                Bucket::NO_RESPONSE
            } else {
                Bucket::SLOW
            }),
        }
    }

    #[test]
    fn a_tally_takes_its_requests_out_of_a_row_and_back() {
        let mut row = Row::default();
        let mut scratch = None;
        for (hit, none) in [(true, false), (false, true), (false, false), (true, false)] {
            row.apply(
                &outcome(hit, none),
                true,
                &mut scratch,
                (0, None),
                3,
                (&"-".into(), 0),
            );
        }
        let mut t = Tally::default();
        t.apply(&outcome(false, true), true, 2, 3, 1);
        t.apply(&outcome(true, false), true, 0, 3, 1);
        let v = t.taken_from(&row);
        assert_eq!((v.requests, v.within_target, v.no_response), (2, 1, 0));
        assert_eq!(v.buckets.get(&Bucket::SLOW), Some(&1));
        assert_eq!(v.buckets.get(&Bucket::NO_RESPONSE), None);
        assert_eq!(v.day_counts()[2], [2, 1, 1]);
        assert_eq!(t.by_exemption, BTreeMap::from([(0, 1), (2, 1)]));
        // Taken back (a revision): nothing left, nothing negative.
        t.apply(&outcome(false, true), false, 2, 3, 1);
        t.apply(&outcome(true, false), false, 0, 3, 1);
        assert_eq!(
            (t.requests, t.by_exemption.len(), t.buckets.len()),
            (0, 0, 0)
        );
        assert_eq!(t.taken_from(&row).requests, 4);
    }
}
