//! A timer queue keyed by event time: a calendar queue of one-second buckets.
//!
//! The correlator needs "every key whose time is before the watermark", millions of times per
//! second. Every timer it sets is near the present in event time plus a constant (a deadline,
//! the dedupe horizon) or at the `at` of the response being processed, so pushes arrive almost
//! in time order. A ring of per-second buckets starting at the earliest pending second makes a
//! push an index and an append, and a pop a walk over the front buckets: no hashing, no heap.
//!
//! Guarantees: a bucket is released only when the watermark has passed its *end*, so every timer
//! in it is strictly before the watermark; a timer earlier than the ring's start joins the first
//! bucket (it fires at the next release: late, never early); a timer more than [`RING_SECONDS`]
//! ahead waits in an ordered overflow map until the ring reaches it.

use std::collections::{BTreeMap, VecDeque};

use crate::time::{NANOS_PER_SEC, Ts};

/// Seconds covered by the ring: the longest regular timer (24 h deadline + 7 d horizon) fits.
pub const RING_SECONDS: i64 = 16 * 86_400;

/// Keys scheduled at event times.
#[derive(Debug, Default)]
pub struct TimerQueue {
    /// Bucket `i` holds timers in second `base + i`.
    ring: VecDeque<Vec<u128>>,
    base: i64,
    started: bool,
    /// Every second before this has been released: timers earlier than it join the front.
    floor: i64,
    /// Timers beyond the ring, by second.
    overflow: BTreeMap<i64, Vec<u128>>,
    /// Emptied bucket vectors kept for reuse, so buckets do not allocate in steady state.
    spare: Vec<Vec<u128>>,
    len: usize,
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> TimerQueue {
        TimerQueue {
            floor: i64::MIN,
            ..TimerQueue::default()
        }
    }

    /// Timers held (stale ones included until they are popped).
    pub fn len(&self) -> usize {
        self.len
    }

    /// No timer held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Schedules `key` at `at`.
    #[inline]
    pub fn push(&mut self, at: Ts, key: u128) {
        let b = at.0.div_euclid(NANOS_PER_SEC);
        self.len += 1;
        if !self.started || self.ring.is_empty() && self.overflow.is_empty() {
            self.started = true;
            self.base = b.max(self.floor);
        } else if b < self.base {
            self.grow_front(b);
        }
        let idx = b.saturating_sub(self.base).max(0);
        if idx >= RING_SECONDS {
            self.overflow.entry(b).or_default().push(key);
            return;
        }
        let idx = idx as usize;
        while self.ring.len() <= idx {
            let v = self.spare.pop().unwrap_or_default();
            self.ring.push_back(v);
        }
        self.ring[idx].push(key);
    }

    /// Extends the ring backwards so second `b` (but never a released one) has its own bucket.
    #[cold]
    fn grow_front(&mut self, b: i64) {
        let new_base = b.max(self.floor).max(self.base - RING_SECONDS);
        for _ in new_base..self.base {
            let v = self.spare.pop().unwrap_or_default();
            self.ring.push_front(v);
        }
        self.base = new_base;
    }

    /// Moves every key of a bucket that ends at or before `watermark` into `out`, earliest
    /// bucket first. Returns whether anything was moved.
    #[inline]
    pub fn pop_due(&mut self, watermark: Ts, out: &mut Vec<u128>) -> bool {
        // Last second whose end (b + 1 s) is at or before the watermark.
        let limit = watermark.0.div_euclid(NANOS_PER_SEC) - 1;
        if !self.started || (self.base > limit && self.overflow.is_empty()) {
            return false;
        }
        self.pop_until(limit, out)
    }

    fn pop_until(&mut self, limit: i64, out: &mut Vec<u128>) -> bool {
        let before = out.len();
        while self.base <= limit {
            match self.ring.pop_front() {
                Some(mut v) => {
                    self.len -= v.len();
                    out.append(&mut v);
                    if self.spare.len() < 64 {
                        self.spare.push(v);
                    }
                    self.base += 1;
                }
                None => {
                    // Ring empty: jump to the next overflow second or past the limit.
                    let next = self.overflow.keys().next().copied().unwrap_or(i64::MAX);
                    self.base = next.min(limit.saturating_add(1));
                    if next > limit {
                        break;
                    }
                }
            }
            self.refill_from_overflow();
        }
        self.floor = self.floor.max(limit.saturating_add(1));
        out.len() > before
    }

    /// Moves overflow timers that now fall inside the ring into it.
    fn refill_from_overflow(&mut self) {
        while let Some(entry) = self.overflow.first_entry() {
            let idx = *entry.key() - self.base;
            if idx >= RING_SECONDS {
                break;
            }
            let keys = entry.remove();
            let idx = idx.max(0) as usize;
            while self.ring.len() <= idx {
                self.ring.push_back(Vec::new());
            }
            self.ring[idx].extend(keys);
        }
    }

    /// Removes and returns the earliest non-empty bucket (used to evict the oldest waiting
    /// responses when over capacity).
    pub fn pop_earliest_bucket(&mut self, out: &mut Vec<u128>) -> bool {
        while let Some(mut v) = self.ring.pop_front() {
            self.base += 1;
            if !v.is_empty() {
                self.len -= v.len();
                out.append(&mut v);
                self.refill_from_overflow();
                return true;
            }
        }
        if let Some((b, v)) = self.overflow.pop_first() {
            self.base = b + 1;
            self.len -= v.len();
            out.extend(v);
            return true;
        }
        false
    }

    /// Removes and returns every key, earliest bucket first.
    pub fn drain_all(&mut self, out: &mut Vec<u128>) {
        for mut v in self.ring.drain(..) {
            out.append(&mut v);
        }
        for (_, v) in std::mem::take(&mut self.overflow) {
            out.extend(v);
        }
        self.len = 0;
        self.started = false;
        self.base = self.floor.max(self.base);
    }

    /// Bytes held, estimated in constant time (for the peak-memory figure): 16 per timer with
    /// vector slack, plus a vector header per ring second.
    pub fn heap_bytes(&self) -> usize {
        self.len * 16 * 3 / 2 + self.ring.len() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: i64) -> Ts {
        Ts(x * NANOS_PER_SEC)
    }

    #[test]
    fn never_fires_early() {
        let mut q = TimerQueue::new();
        q.push(s(10), 2);
        q.push(Ts(s(10).0 + 999_999_999), 1);
        q.push(s(12), 3);
        let mut out = Vec::new();
        // Watermark inside second 10: bucket 10 has not ended.
        assert!(!q.pop_due(Ts(s(10).0 + 500), &mut out));
        assert!(q.pop_due(s(11), &mut out));
        out.sort();
        assert_eq!(out, vec![1, 2]);
        out.clear();
        assert!(!q.pop_due(s(12), &mut out));
        assert_eq!(q.len(), 1);
        // A timer in a second already released (5 < 12) joins the front bucket: it fires
        // with it, late but never early.
        q.push(s(5), 4);
        assert!(q.pop_due(s(13), &mut out));
        out.sort();
        assert_eq!(out, vec![3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn earliest_bucket_and_drain() {
        let mut q = TimerQueue::new();
        for (t, k) in [(10, 2), (10, 4), (20, 3), (30, 1)] {
            q.push(s(t), k);
        }
        let mut out = Vec::new();
        assert!(q.pop_earliest_bucket(&mut out));
        assert_eq!(out, vec![2, 4]);
        out.clear();
        q.drain_all(&mut out);
        assert_eq!(out, vec![3, 1]);
        assert!(q.is_empty());
        assert!(!q.pop_earliest_bucket(&mut out));
    }

    #[test]
    fn far_future_timers_wait_in_overflow_and_earlier_ones_get_their_own_second() {
        let mut q = TimerQueue::new();
        q.push(s(100 + 86_400), 1); // a deadline a day ahead comes first
        q.push(s(100 + RING_SECONDS + 50), 2);
        q.push(s(100), 3); // then a near one: the ring grows at the front
        let mut out = Vec::new();
        assert!(!q.pop_due(s(100), &mut out), "nothing has ended yet");
        assert!(q.pop_due(s(101), &mut out));
        assert_eq!(out, vec![3]);
        out.clear();
        // Second 50 was released already: it joins the front and fires at the next release.
        q.push(s(50), 4);
        assert!(q.pop_due(s(102), &mut out));
        assert_eq!(out, vec![4]);
        out.clear();
        assert!(q.pop_due(s(101 + 86_400), &mut out));
        assert_eq!(out, vec![1]);
        out.clear();
        assert!(!q.pop_due(s(100 + RING_SECONDS + 50), &mut out));
        assert!(q.pop_due(s(100 + RING_SECONDS + 51), &mut out));
        assert_eq!(out, vec![2]);
        assert!(q.is_empty());
    }

    #[test]
    fn random_near_monotone_pushes_fire_late_never_early() {
        let mut rng = crate::simulate::Rng::new(5);
        let mut q = TimerQueue::new();
        let mut pending: Vec<(i64, u128)> = Vec::new();
        let mut now = 1_000i64;
        let mut out = Vec::new();
        for k in 0..20_000u128 {
            now += rng.below(3) as i64;
            // Up to 30 s behind the present, up to 90 s ahead of it.
            let t = now + rng.below(120) as i64 - 30;
            q.push(s(t), k);
            pending.push((t, k));
            if k % 7 == 0 {
                let wm = now - 40;
                out.clear();
                q.pop_due(s(wm), &mut out);
                for key in &out {
                    let (t, _) = pending.iter().find(|r| r.1 == *key).unwrap();
                    assert!(*t < wm, "timer at {t} fired at watermark {wm}");
                }
                pending.retain(|r| !out.contains(&r.1));
                // Late by at most the push disorder (30 s) plus a bucket.
                // Late by at most a bucket: each timer has its own second unless already released.
                assert!(
                    pending.iter().all(|r| r.0 >= wm - 1),
                    "a timer was held too long"
                );
            }
        }
        assert_eq!(q.len(), pending.len());
    }

    #[test]
    fn negative_times_bucket_correctly() {
        let mut q = TimerQueue::new();
        q.push(Ts(-1), 1);
        let mut out = Vec::new();
        assert!(!q.pop_due(Ts(-1), &mut out));
        assert!(q.pop_due(Ts(0), &mut out));
        assert_eq!(out, vec![1]);
    }
}
