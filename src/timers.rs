//! A timer queue keyed by event time, bucketed by second.
//!
//! The correlator needs "every key whose time is before the watermark", millions of times per
//! second. A binary heap pays a logarithmic, cache-missing sift per push and pop; bucketing by
//! second makes a push an append to the current bucket and a pop a walk over a vector. A bucket
//! is released only when the watermark has passed its *end*, so every timer in it is strictly
//! before the watermark: timers may fire up to a second late in event time, never early.

use std::collections::BTreeMap;

use crate::time::{NANOS_PER_SEC, Ts};

/// Keys scheduled at event times.
#[derive(Debug, Default)]
pub struct TimerQueue {
    buckets: BTreeMap<i64, Vec<u128>>,
    /// The most recently used bucket, kept out of the map so the common push is one compare.
    hot: Option<(i64, Vec<u128>)>,
    len: usize,
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> TimerQueue {
        TimerQueue::default()
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
        if let Some((hb, v)) = &mut self.hot
            && *hb == b
        {
            v.push(key);
            return;
        }
        self.push_cold(b, key);
    }

    #[cold]
    fn push_cold(&mut self, b: i64, key: u128) {
        if let Some((hb, v)) = self.hot.take() {
            self.buckets.entry(hb).or_default().extend(v);
        }
        let v = self.buckets.remove(&b).unwrap_or_default();
        self.hot = Some((b, v));
        if let Some((_, v)) = &mut self.hot {
            v.push(key);
        }
    }

    fn flush_hot(&mut self) {
        if let Some((hb, v)) = self.hot.take() {
            if v.is_empty() {
                return;
            }
            match self.buckets.get_mut(&hb) {
                Some(existing) => existing.extend(v),
                None => {
                    self.buckets.insert(hb, v);
                }
            }
        }
    }

    /// Moves every key of a bucket that ends at or before `watermark` into `out`, earliest
    /// bucket first. Returns whether anything was moved.
    pub fn pop_due(&mut self, watermark: Ts, out: &mut Vec<u128>) -> bool {
        let before = out.len();
        // Last bucket whose end (b + 1 seconds) is at or before the watermark.
        let limit = watermark.0.div_euclid(NANOS_PER_SEC) - 1;
        if let Some((hb, _)) = &self.hot
            && *hb <= limit
        {
            self.flush_hot();
        }
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() > limit {
                break;
            }
            let v = entry.remove();
            self.len -= v.len();
            out.extend(v);
        }
        out.len() > before
    }

    /// Removes and returns the earliest timer's bucket contents (used to evict the oldest
    /// waiting responses when over capacity).
    pub fn pop_earliest_bucket(&mut self, out: &mut Vec<u128>) -> bool {
        self.flush_hot();
        match self.buckets.pop_first() {
            Some((_, v)) => {
                self.len -= v.len();
                out.extend(v);
                true
            }
            None => false,
        }
    }

    /// Removes and returns every key.
    pub fn drain_all(&mut self, out: &mut Vec<u128>) {
        self.flush_hot();
        for (_, v) in std::mem::take(&mut self.buckets) {
            out.extend(v);
        }
        self.len = 0;
    }

    /// Bytes held by the queue's vectors (an estimate for memory reports).
    pub fn heap_bytes(&self) -> usize {
        let hot = self.hot.as_ref().map_or(0, |(_, v)| v.capacity());
        (self.buckets.values().map(Vec::capacity).sum::<usize>() + hot) * 16
            + self.buckets.len() * 48
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
        q.push(Ts(s(10).0 + 999_999_999), 1);
        q.push(s(10), 2);
        q.push(s(12), 3);
        q.push(s(5), 4);
        let mut out = Vec::new();
        // Watermark inside second 10: bucket 10 has not ended.
        assert!(q.pop_due(Ts(s(10).0 + 500), &mut out));
        assert_eq!(out, vec![4]);
        out.clear();
        assert!(q.pop_due(s(11), &mut out));
        out.sort();
        assert_eq!(out, vec![1, 2]);
        out.clear();
        assert!(!q.pop_due(s(12), &mut out));
        assert_eq!(q.len(), 1);
        assert!(q.pop_due(s(13), &mut out));
        assert_eq!(out, vec![3]);
        assert!(q.is_empty());
    }

    #[test]
    fn earliest_bucket_and_drain() {
        let mut q = TimerQueue::new();
        for (t, k) in [(30, 1), (10, 2), (20, 3), (10, 4)] {
            q.push(s(t), k);
        }
        let mut out = Vec::new();
        assert!(q.pop_earliest_bucket(&mut out));
        out.sort();
        assert_eq!(out, vec![2, 4]);
        out.clear();
        q.drain_all(&mut out);
        assert_eq!(out, vec![3, 1]);
        assert!(q.is_empty());
        assert!(!q.pop_earliest_bucket(&mut out));
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
