//! A timer queue keyed by event time: a two-level timing wheel of one-second slots.
//!
//! The correlator needs "every key whose time is before the watermark", millions of times per
//! second. Every timer it sets is near the present in event time plus a constant (a deadline,
//! the dedupe horizon) or at the `at` of the response being processed, so pushes arrive almost
//! in time order. Level 0 holds the current block of [`L0_SLOTS`] seconds, one slot per second;
//! level 1 holds the next [`L1_SLOTS`] blocks, one slot per block; anything further waits in an
//! ordered overflow map. A push is an index and an append; a pop walks the occupied slots of
//! level 0 through a bitmap, so seconds with no timer cost nothing whatever the event rate; a
//! timer is moved at most twice (overflow to level 1, level 1 to level 0) before it fires.
//!
//! Guarantees: a second is released only when the watermark has passed its *end*, so every
//! timer in it is strictly before the watermark; a timer in a second already released joins the
//! first unreleased second (it fires at the next release: late, never early); within a release,
//! earlier seconds come first and a second's timers come in the order they were pushed.

use std::collections::BTreeMap;

use crate::engine::time::{NANOS_PER_SEC, Ts};

/// log2 of the seconds in a level-0 block.
const L0_BITS: u32 = 12;
/// Seconds per level-0 block (68 minutes): near timers (most deadlines, responses) go here.
pub const L0_SLOTS: usize = 1 << L0_BITS;
/// Blocks held by level 1 (about 194 days): the dedupe horizon and the longest deadline fit.
pub const L1_SLOTS: usize = 4096;

/// A timer outside level 0: its second travels with it.
#[derive(Debug, Clone, Copy)]
struct Far {
    key: u128,
    sec: i64,
}

/// Keys scheduled at event times.
#[derive(Debug)]
pub struct TimerQueue {
    /// Level 0 holds seconds `[block << L0_BITS, (block + 1) << L0_BITS)`, slot `sec % L0_SLOTS`.
    block: i64,
    /// `block` has been set from a release. Until then every timer waits in `early`.
    anchored: bool,
    /// Every second before this has been released: timers earlier than it join it.
    floor: i64,
    l0: Box<[Vec<u128>]>,
    l0_bits: Box<[u64]>,
    /// Level 1 holds blocks `block + 1 ..= block + L1_SLOTS`, slot `block % L1_SLOTS`.
    l1: Box<[Vec<Far>]>,
    l1_bits: Box<[u64]>,
    /// Emptied level-1 vectors, for the next slot that fills: a slot is reused only after
    /// [`L1_SLOTS`] blocks, so without these every new block would allocate and grow afresh.
    spare: Vec<Vec<Far>>,
    /// Timers beyond level 1, by block.
    overflow: BTreeMap<i64, Vec<Far>>,
    /// Timers in seconds before level 0's block (by second): every timer before the first
    /// release, and after [`TimerQueue::pop_earliest_bucket`] has moved the wheel past the floor.
    early: BTreeMap<i64, Vec<u128>>,
    len: usize,
}

impl Default for TimerQueue {
    fn default() -> TimerQueue {
        TimerQueue::new()
    }
}

/// Index of the lowest set bit at or after `from` in `bits`, if any.
#[inline]
fn next_bit(bits: &[u64], from: usize) -> Option<usize> {
    let mut w = from / 64;
    if w >= bits.len() {
        return None;
    }
    let mut word = bits[w] & (!0u64 << (from % 64));
    loop {
        if word != 0 {
            return Some(w * 64 + word.trailing_zeros() as usize);
        }
        w += 1;
        if w == bits.len() {
            return None;
        }
        word = bits[w];
    }
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> TimerQueue {
        TimerQueue {
            block: 0,
            anchored: false,
            floor: i64::MIN,
            l0: (0..L0_SLOTS).map(|_| Vec::new()).collect(),
            l0_bits: vec![0; L0_SLOTS / 64].into_boxed_slice(),
            l1: (0..L1_SLOTS).map(|_| Vec::new()).collect(),
            l1_bits: vec![0; L1_SLOTS / 64].into_boxed_slice(),
            spare: Vec::new(),
            overflow: BTreeMap::new(),
            early: BTreeMap::new(),
            len: 0,
        }
    }

    /// The first second not yet released: a timer pushed before it joins it.
    pub fn floor(&self) -> i64 {
        self.floor
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
        self.len += 1;
        let sec = at.0.div_euclid(NANOS_PER_SEC).max(self.floor);
        self.place(sec, key);
    }

    /// Puts a timer of second `sec` (not before the floor) where it belongs.
    #[inline]
    fn place(&mut self, sec: i64, key: u128) {
        let blk = sec >> L0_BITS;
        if blk == self.block && self.anchored {
            self.put_l0(sec, key);
        } else {
            self.place_far(sec, blk, key);
        }
    }

    /// Appends a timer of second `sec` (in level 0's block) to its slot.
    #[inline]
    fn put_l0(&mut self, sec: i64, key: u128) {
        let i = (sec as usize) & (L0_SLOTS - 1);
        self.l0[i].push(key);
        self.l0_bits[i / 64] |= 1 << (i % 64);
    }

    fn place_far(&mut self, sec: i64, blk: i64, key: u128) {
        if !self.anchored || blk < self.block {
            self.early.entry(sec).or_default().push(key);
        } else if blk - self.block <= L1_SLOTS as i64 {
            let i = (blk as usize) & (L1_SLOTS - 1);
            let slot = &mut self.l1[i];
            if slot.capacity() == 0
                && let Some(v) = self.spare.pop()
            {
                *slot = v;
            }
            slot.push(Far { key, sec });
            self.l1_bits[i / 64] |= 1 << (i % 64);
        } else {
            self.overflow.entry(blk).or_default().push(Far { key, sec });
        }
    }

    /// Moves every key of a second that ends at or before `watermark` into `out`, earliest
    /// second first. Returns whether anything was moved.
    #[inline]
    pub(crate) fn pop_due(&mut self, watermark: Ts, out: &mut Vec<u128>) -> bool {
        // Last second whose end (s + 1 s) is at or before the watermark.
        let limit = watermark.0.div_euclid(NANOS_PER_SEC) - 1;
        if limit < self.floor {
            return false;
        }
        let before = out.len();
        self.pop_until(limit, out);
        out.len() > before
    }

    fn pop_until(&mut self, limit: i64, out: &mut Vec<u128>) {
        while let Some(entry) = self.early.first_entry() {
            if *entry.key() > limit {
                break;
            }
            let keys = entry.remove();
            self.len -= keys.len();
            out.extend(keys);
        }
        // Level 0 holds nothing before the floor: the walk starts there.
        let released = self.floor;
        self.floor = limit.saturating_add(1);
        if !self.anchored {
            self.anchor();
            return;
        }
        loop {
            let start = self.block << L0_BITS;
            if limit < start {
                break;
            }
            let last = (limit - start).min(L0_SLOTS as i64 - 1) as usize;
            let mut from = released.saturating_sub(start).clamp(0, L0_SLOTS as i64) as usize;
            while let Some(i) = next_bit(&self.l0_bits, from) {
                if i > last {
                    break;
                }
                let v = &mut self.l0[i];
                self.len -= v.len();
                out.append(v);
                self.l0_bits[i / 64] &= !(1 << (i % 64));
                from = i + 1;
            }
            if last < L0_SLOTS - 1 {
                break;
            }
            // The whole block is released: move to the next block with timers, but not past
            // the block the floor is in.
            let to = self
                .next_block()
                .map_or(self.floor >> L0_BITS, |b| b.min(self.floor >> L0_BITS));
            self.move_to(to);
        }
    }

    /// The first block after level 0's with timers in level 1 or the overflow.
    fn next_block(&self) -> Option<i64> {
        let first = ((self.block + 1) as usize) & (L1_SLOTS - 1);
        let slot = next_bit(&self.l1_bits, first).or_else(|| next_bit(&self.l1_bits, 0));
        let in_l1 = slot.map(|i| {
            let ahead = (i + L1_SLOTS - first) % L1_SLOTS;
            self.block + 1 + ahead as i64
        });
        in_l1.or_else(|| self.overflow.keys().next().copied())
    }

    /// Makes `to` (after `block`, with no timer in the blocks between) level 0's block: the
    /// overflow refills level 1 and `to`'s timers come down to level 0. Level 0 must be empty.
    fn move_to(&mut self, to: i64) {
        debug_assert!(to > self.block);
        self.block = to;
        // `to`'s slot first: it also stands for block `to + L1_SLOTS`, which the overflow may
        // be about to fill.
        let i = (to as usize) & (L1_SLOTS - 1);
        if self.l1_bits[i / 64] & (1 << (i % 64)) != 0 {
            self.l1_bits[i / 64] &= !(1 << (i % 64));
            let mut far = std::mem::take(&mut self.l1[i]);
            for f in far.drain(..) {
                self.put_l0(f.sec, f.key);
            }
            if self.spare.len() < 16 {
                self.spare.push(far);
            }
        }
        while let Some(entry) = self.overflow.first_entry() {
            if *entry.key() - self.block > L1_SLOTS as i64 {
                break;
            }
            for f in entry.remove() {
                self.place(f.sec, f.key);
            }
        }
    }

    /// The first release: level 0 starts at the floor's block and the timers waiting in
    /// `early` (none before the floor: those were just released) move into the wheel.
    fn anchor(&mut self) {
        self.anchored = true;
        self.block = self.floor >> L0_BITS;
        for (sec, keys) in std::mem::take(&mut self.early) {
            for k in keys {
                self.place(sec, k);
            }
        }
    }

    /// Removes and returns the earliest second's keys (used to evict the oldest waiting
    /// responses when over capacity, and to decide everything at the end of input). Leaves the
    /// floor where it is: a timer pushed later at an earlier second keeps its second.
    pub fn pop_earliest_bucket(&mut self, out: &mut Vec<u128>) -> bool {
        if let Some((_, keys)) = self.early.pop_first() {
            self.len -= keys.len();
            out.extend(keys);
            return true;
        }
        if !self.anchored {
            return false;
        }
        loop {
            if let Some(i) = next_bit(&self.l0_bits, 0) {
                let v = &mut self.l0[i];
                self.len -= v.len();
                out.append(v);
                self.l0_bits[i / 64] &= !(1 << (i % 64));
                return true;
            }
            match self.next_block() {
                Some(b) => self.move_to(b),
                None => return false,
            }
        }
    }

    /// Removes and returns every key, earliest second first.
    pub(crate) fn drain_all(&mut self, out: &mut Vec<u128>) {
        while self.pop_earliest_bucket(out) {}
        self.len = 0;
    }

    /// Bytes held, estimated in constant time (for the peak-memory figure): 16 per timer with
    /// vector slack, plus the two levels' slot headers.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.len * 16 * 3 / 2 + (L0_SLOTS + L1_SLOTS) * 24
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
        // Beyond level 1: the timer waits in the overflow map.
        const FAR: i64 = ((L1_SLOTS + 2) * L0_SLOTS) as i64;
        let mut q = TimerQueue::new();
        q.push(s(100 + 86_400), 1); // a deadline a day ahead comes first
        q.push(s(100 + FAR + 50), 2);
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
        assert!(!q.pop_due(s(100 + FAR + 50), &mut out));
        assert!(q.pop_due(s(100 + FAR + 51), &mut out));
        assert_eq!(out, vec![2]);
        assert!(q.is_empty());
    }

    #[test]
    fn random_near_monotone_pushes_fire_late_never_early() {
        let mut rng = crate::rng::Rng::new(5);
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

    /// The reference: an ordered map of seconds with the same floor rule.
    #[derive(Default)]
    struct Model {
        secs: BTreeMap<i64, Vec<u128>>,
        floor: Option<i64>,
    }

    impl Model {
        fn push(&mut self, sec: i64, key: u128) {
            let sec = self.floor.map_or(sec, |f| sec.max(f));
            self.secs.entry(sec).or_default().push(key);
        }
        fn pop_due(&mut self, limit: i64, out: &mut Vec<u128>) {
            while let Some(e) = self.secs.first_entry() {
                if *e.key() > limit {
                    break;
                }
                out.extend(e.remove());
            }
            self.floor = Some(self.floor.map_or(limit + 1, |f| f.max(limit + 1)));
        }
        fn pop_earliest(&mut self, out: &mut Vec<u128>) -> bool {
            self.secs.pop_first().map(|(_, v)| out.extend(v)).is_some()
        }
    }

    /// Every operation, at every distance (same second, level 0, level 1, overflow, the past),
    /// gives exactly what an ordered map of seconds gives, in the same order.
    #[test]
    fn matches_an_ordered_map_of_seconds() {
        for seed in 1..=40u64 {
            let mut rng = crate::rng::Rng::new(seed);
            let mut q = TimerQueue::new();
            let mut m = Model::default();
            let mut now: i64 = rng.below(1 << 32) as i64 - (1 << 31);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for k in 0..3_000u128 {
                // Mostly near the present; sometimes days, a year or more ahead, or behind.
                let ahead = match rng.below(20) {
                    0 => rng.below(400 * 86_400) as i64,
                    1 => rng.below(20 * 86_400) as i64,
                    2 => -(rng.below(50_000) as i64),
                    3 => (L0_SLOTS * L1_SLOTS) as i64 + rng.below(1 << 20) as i64,
                    _ => rng.below(5_000) as i64,
                };
                q.push(s(now + ahead), k);
                m.push(now + ahead, k);
                match rng.below(40) {
                    0 => {
                        a.clear();
                        b.clear();
                        assert_eq!(q.pop_earliest_bucket(&mut a), m.pop_earliest(&mut b));
                        assert_eq!(a, b, "seed {seed}: earliest bucket");
                    }
                    1..=9 => {
                        // The watermark moves by anything from a second to a long gap.
                        now += match rng.below(10) {
                            0 => rng.below(30 * 86_400) as i64,
                            _ => rng.below(200) as i64,
                        };
                        a.clear();
                        b.clear();
                        let wm = now - 60;
                        q.pop_due(s(wm), &mut a);
                        m.pop_due(wm - 1, &mut b);
                        assert_eq!(a, b, "seed {seed}: released at {wm}");
                    }
                    _ => now += rng.below(3) as i64,
                }
                assert_eq!(q.len(), m.secs.values().map(Vec::len).sum::<usize>());
            }
            a.clear();
            b.clear();
            q.drain_all(&mut a);
            while m.pop_earliest(&mut b) {}
            assert_eq!(a, b, "seed {seed}: drain");
            assert!(q.is_empty());
        }
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
