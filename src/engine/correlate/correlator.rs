//! The correlator: matches each request with its final response in event time (SPEC §2).
//!
//! Synchronous and I/O-free: the pipeline feeds it one valid event at a time with
//! [`Correlator::request`] / [`Correlator::response`] and moves time with
//! [`Correlator::advance`]; it answers with a [`Verdict`] for the event and pushes
//! [`Output`]s (decisions, revisions, dead letters of stored events) into a buffer the caller
//! drains.

use crate::engine::catalog::{Catalog, CodeKind};
use crate::engine::event::DeadReason;
use crate::engine::time::{Dur, Ts};
use crate::engine::timers::TimerQueue;

use super::changes::Tracker;
use super::decided::{At, DecidedTable, Slot};
use super::entry::{Entry, LATE, LISTED, NONE_AT, STORED, Waiting, ack_code};
use super::interface::{
    Displaced, Evidence, Output, Req, Resp, Revision, StoredDead, Verdict, evidence_text,
};
use super::key::KeyMap;

/// What the correlator needs to know from the configuration.
#[derive(Debug, Clone)]
pub struct CorrelatorConfig {
    /// Longest deadline of any measure.
    pub longest_deadline: Dur,
    /// How long decided records are kept past it.
    pub dedupe_horizon: Dur,
    /// How long a response waits for its request.
    pub orphan_wait: Dur,
    /// Cap on waiting responses.
    pub max_waiting_responses: usize,
}

impl CorrelatorConfig {
    /// When a record of a request due at `due` leaves the dedupe table: its longest deadline
    /// plus the horizon.
    pub(super) fn expiry(&self, due: Ts) -> Ts {
        due.plus(self.longest_deadline).plus(self.dedupe_horizon)
    }
}

/// Counters the correlator keeps about itself.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CorrelatorStats {
    /// Waiting responses dead-lettered early because the cap was reached.
    pub evicted_waiting: u64,
}

/// The correlator of one partition (or of a whole replay).
pub struct Correlator {
    pub(super) cfg: CorrelatorConfig,
    pub(super) entries: KeyMap<Entry>,
    pub(super) waiting: KeyMap<Vec<Waiting>>,
    pub(super) waiting_count: usize,
    pub(super) decide_at: TimerQueue,
    pub(super) expire_at: TimerQueue,
    pub(super) orphan_at: TimerQueue,
    pub(super) pending: usize,
    pub(super) watermark: Ts,
    pub(super) scratch: Vec<u128>,
    pub(super) stats: CorrelatorStats,
    /// Keys whose state changed since the last [`Correlator::take_changes`], when a checkpoint
    /// store asked for them (`None`: a replay, which never checkpoints, pays nothing).
    pub(super) changed: Tracker,
    /// Evidence texts of pending requests, by slot (a slab: freed slots are reused);
    /// checkpointed with their records.
    pub(super) texts: Vec<Option<Evidence>>,
    /// Free slots of `texts`.
    pub(super) free_texts: Vec<u32>,
    /// Decided requests kept compactly until they expire (without an expiry timer each);
    /// those that do not fit stay in `entries` with a timer in `expire_at`.
    pub(super) decided: DecidedTable,
    /// Whether decided requests move to `decided`: a switch of the tests that hold the table to
    /// the map's behaviour, absent from the service's build (which always moves them).
    #[cfg(test)]
    pub(super) compact: bool,
}

impl Correlator {
    /// Decided requests move to the compact table (the service's build).
    #[cfg(not(test))]
    #[inline]
    const fn compacts(&self) -> bool {
        true
    }

    /// Decided requests move to the compact table unless a test says not.
    #[cfg(test)]
    fn compacts(&self) -> bool {
        self.compact
    }

    /// An empty correlator.
    pub(crate) fn new(cfg: CorrelatorConfig) -> Correlator {
        Correlator {
            entries: KeyMap::default(),
            waiting: KeyMap::default(),
            waiting_count: 0,
            decide_at: TimerQueue::new(),
            expire_at: TimerQueue::new(),
            orphan_at: TimerQueue::new(),
            pending: 0,
            watermark: Ts::MIN,
            scratch: Vec::new(),
            stats: CorrelatorStats::default(),
            changed: Tracker::default(),
            texts: Vec::new(),
            free_texts: Vec::new(),
            decided: DecidedTable::new(Dur(cfg
                .longest_deadline
                .0
                .saturating_add(cfg.dedupe_horizon.0))),
            #[cfg(test)]
            compact: true,
            cfg,
        }
    }

    /// The watermark the correlator has been advanced to.
    pub fn watermark(&self) -> Ts {
        self.watermark
    }

    /// Requests not yet decided.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Responses waiting for their request.
    pub fn waiting(&self) -> usize {
        self.waiting_count
    }

    /// Records kept (pending and decided).
    pub fn records(&self) -> usize {
        self.entries.len() + self.decided.len()
    }

    /// Counters.
    pub(crate) fn stats(&self) -> CorrelatorStats {
        self.stats
    }

    /// Bytes of correlation state (capacity, not just use): the memory a pending request costs.
    pub(crate) fn state_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u128, Entry)>() + 1;
        self.entries.capacity() * entry
            + self.waiting.capacity() * (std::mem::size_of::<(u128, Vec<Waiting>)>() + 1)
            + self.decide_at.heap_bytes()
            + self.expire_at.heap_bytes()
            + self.orphan_at.heap_bytes()
            + self.decided.heap_bytes()
    }

    /// Takes a valid request (`id` is used only to rebuild a displaced conflicting request).
    pub fn request(&mut self, r: Req, id: &str, cat: &Catalog, out: &mut Vec<Output>) -> Verdict {
        self.request_with(r, id, None, cat, out)
    }

    /// [`Correlator::request`] keeping evidence (the id, and `who`: user and device, see
    /// [`evidence_text`]) with a new request until it is decided, when it goes out with the
    /// decision. `who` is `None` for requests no measure counts: they can never miss.
    pub(crate) fn request_with(
        &mut self,
        r: Req,
        id: &str,
        who: Option<(Option<&str>, Option<&str>)>,
        cat: &Catalog,
        out: &mut Vec<Output>,
    ) -> Verdict {
        let deadline = cat.rules(r.srv, r.provider).deadline(r.due > r.at);
        // One probe of the table whether the key is new or known.
        match self.entries.entry(r.key) {
            hashbrown::hash_map::Entry::Vacant(slot) => {
                if let Some(at) = self.decided.find(r.key, self.watermark.as_second()) {
                    let watermark = self.watermark;
                    return self.on_decided(r.key, at, |e, decide_at| {
                        known_request(e, &r, id, cat, watermark, decide_at, deadline, out)
                    });
                }
                if self.cfg.expiry(r.due) < self.watermark {
                    return Verdict::Dead(DeadReason::TooLate);
                }
                // The text's slot first, so the record is inserted once, complete.
                let text = who.map_or(0, |(user, device)| {
                    put_text(
                        &mut self.texts,
                        &mut self.free_texts,
                        evidence_text(id, user, device),
                    )
                });
                let e = slot.insert(Entry {
                    at: r.at,
                    due: r.due,
                    fin_at: NONE_AT,
                    pos: r.pos,
                    srv: r.srv,
                    fin_code: 0,
                    user: r.user,
                    ack: 0,
                    region: r.region,
                    provider: r.provider,
                    decided: false,
                    flags: if r.at < self.watermark { LATE } else { 0 },
                    text,
                });
                self.changed.touch(r.key, e);
                self.pending += 1;
                self.decide_at.push(r.due.plus(deadline), r.key);
                if !self.waiting.is_empty()
                    && let Some(list) = self.waiting.remove(&r.key)
                {
                    self.changed.touch_waiting(r.key);
                    self.waiting_count -= list.len();
                    for w in list {
                        let v = self.apply_response(
                            Resp {
                                key: r.key,
                                code: w.code,
                                at: w.at,
                                pos: w.pos,
                            },
                            cat,
                            out,
                        );
                        match v {
                            Verdict::Dead(reason) => out.push(Output::Dead(StoredDead {
                                reason,
                                pos: w.pos,
                                raw: w.raw,
                                displaced: None,
                                is_request: false,
                            })),
                            verdict => out.push(Output::Settled {
                                verdict,
                                behind: w.behind,
                            }),
                        }
                    }
                }
                Verdict::Accepted
            }
            hashbrown::hash_map::Entry::Occupied(mut slot) => {
                let e = slot.get_mut();
                self.changed.touch(r.key, e);
                known_request(
                    e,
                    &r,
                    id,
                    cat,
                    self.watermark,
                    &mut self.decide_at,
                    deadline,
                    out,
                )
            }
        }
    }

    /// Runs `f` on the compactly kept record of `key` at `at`, and writes the record back: in
    /// place while it still fits and keeps its `at` (and so its due time: a compact record is
    /// never future-dated);
    /// otherwise into `entries`, with the expiry timer of the `at` it was kept under, as a
    /// record that had always been there would have (a request displaced by an earlier one
    /// keeps its original expiry).
    fn on_decided<V>(
        &mut self,
        key: u128,
        at: At,
        f: impl FnOnce(&mut Entry, &mut TimerQueue) -> V,
    ) -> V {
        let old = self.decided.get(at);
        let mut e = old.entry();
        let was = e.at;
        let v = f(&mut e, &mut self.decide_at);
        match Slot::of(key, &e) {
            Some(s) if e.at == was => {
                if s != old {
                    self.decided.set(at, s);
                    self.changed.compacted(key, s);
                }
            }
            _ => {
                self.decided.kill(at);
                // A compact record was on demand: due at its `at`. Its expiry stays that of
                // the `at` it was kept under, or later if it is now due later.
                self.expire_at.push(self.cfg.expiry(e.due.max(was)), key);
                let e = self.entries.entry(key).insert(e).into_mut();
                self.changed.touch(key, e);
            }
        }
        v
    }

    /// Takes a valid response; `raw` is kept only if it has to wait for its request.
    pub fn response(
        &mut self,
        r: Resp,
        raw: &[u8],
        cat: &Catalog,
        out: &mut Vec<Output>,
    ) -> Verdict {
        if let Some(e) = self.entries.get_mut(&r.key) {
            self.changed.touch(r.key, e);
            return apply_to(e, &mut self.decide_at, r, cat, out);
        }
        if let Some(at) = self.decided.find(r.key, self.watermark.as_second()) {
            return self.on_decided(r.key, at, |e, decide_at| {
                apply_to(e, decide_at, r, cat, out)
            });
        }
        if r.at.plus(self.cfg.dedupe_horizon) < self.watermark {
            return Verdict::Dead(DeadReason::TooLate);
        }
        self.changed.touch_waiting(r.key);
        let list = self.waiting.entry(r.key).or_default();
        list.push(Waiting {
            at: r.at,
            code: r.code,
            pos: r.pos,
            behind: r.at < self.watermark,
            raw: raw.into(),
        });
        self.waiting_count += 1;
        self.orphan_at.push(r.at.plus(self.cfg.orphan_wait), r.key);
        if self.waiting_count > self.cfg.max_waiting_responses {
            self.evict_oldest_waiting(out);
        }
        Verdict::Waiting
    }

    /// Applies a response to the entry of its request (which must exist).
    fn apply_response(&mut self, r: Resp, cat: &Catalog, out: &mut Vec<Output>) -> Verdict {
        let Some(e) = self.entries.get_mut(&r.key) else {
            return Verdict::Dead(DeadReason::OrphanResponse);
        };
        apply_to(e, &mut self.decide_at, r, cat, out)
    }

    fn evict_oldest_waiting(&mut self, out: &mut Vec<Output>) {
        let mut keys = std::mem::take(&mut self.scratch);
        while self.waiting_count > self.cfg.max_waiting_responses {
            keys.clear();
            if !self.orphan_at.pop_earliest_bucket(&mut keys) {
                break;
            }
            self.changed.touch_all_waiting(&keys);
            for &k in &keys {
                // Evict only the oldest response of the key; its other responses keep their timers.
                if let Some(list) = self.waiting.get_mut(&k) {
                    if let Some(i) = (0..list.len()).min_by_key(|&i| list[i].at) {
                        let w = list.swap_remove(i);
                        self.waiting_count -= 1;
                        self.stats.evicted_waiting += 1;
                        out.push(orphan(w));
                    }
                    if list.is_empty() {
                        self.waiting.remove(&k);
                    }
                }
            }
        }
        self.scratch = keys;
    }

    /// Marks a pending request decided and emits its decision; returns its due time, or `None`
    /// if the key is unknown or already decided (a stale timer).
    fn decide(&mut self, k: u128, out: &mut Vec<Output>) -> Option<Ts> {
        let e = self.entries.get_mut(&k).filter(|e| !e.decided)?;
        self.changed.touch(k, e);
        e.decided = true;
        let slot = std::mem::take(&mut e.text);
        let (d, due) = (e.decision(k), e.due);
        self.pending -= 1;
        let text = self.take_text(slot);
        out.push(Output::Decided(d, text));
        Some(due)
    }

    /// Stores an evidence text; its slot + 1.
    pub(super) fn put_text(&mut self, t: Evidence) -> u32 {
        put_text(&mut self.texts, &mut self.free_texts, t)
    }

    /// Takes the evidence text of slot + 1 `slot` (0: none) and frees the slot.
    fn take_text(&mut self, slot: u32) -> Option<Evidence> {
        let i = slot.checked_sub(1)?;
        let t = self.texts.get_mut(i as usize)?.take();
        self.free_texts.push(i);
        t
    }

    /// Moves the watermark forward (never back) and decides, expires and orphans what it passed.
    pub fn advance(&mut self, watermark: Ts, out: &mut Vec<Output>) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let mut keys = std::mem::take(&mut self.scratch);

        keys.clear();
        if self.decide_at.pop_due(watermark, &mut keys) {
            // Decided records count from the watermark's second on: the expiry timers release
            // every second that ended at or before it.
            let (floor, live) = (self.expire_at.floor(), watermark.as_second());
            for &k in &keys {
                let Some(due) = self.decide(k, out) else {
                    continue;
                };
                let expiry = self.cfg.expiry(due);
                // Kept compactly if its expiry timer would have been set in its own second
                // (not one already released, whose timers join the next: that record would
                // outlive its second, which the table's rule does not say).
                if self.compacts()
                    && expiry.as_second() >= floor
                    && let hashbrown::hash_map::Entry::Occupied(o) = self.entries.entry(k)
                    && let Some(s) = Slot::of(k, o.get())
                {
                    o.remove();
                    self.decided.insert(k, s, live);
                    self.changed.compacted(k, s);
                    continue;
                }
                self.expire_at.push(expiry, k);
            }
        }

        keys.clear();
        if self.expire_at.pop_due(watermark, &mut keys) {
            for &k in &keys {
                // One probe: look and remove through the same entry.
                if let hashbrown::hash_map::Entry::Occupied(o) = self.entries.entry(k)
                    && o.get().decided
                {
                    let expiry = self.cfg.expiry(o.get().due);
                    if expiry < watermark {
                        let flags = o.remove().flags;
                        self.changed.removed(k, flags & STORED != 0);
                    } else {
                        // Its due time moved later since the timer was set (displaced by an
                        // earlier, future-dated copy): wait for the new one.
                        self.expire_at.push(expiry, k);
                    }
                }
            }
        }

        self.decided.maintain(watermark.as_second());

        keys.clear();
        if self.orphan_at.pop_due(watermark, &mut keys) {
            self.changed.touch_all_waiting(&keys);
            let wait = self.cfg.orphan_wait;
            for &k in &keys {
                if let Some(list) = self.waiting.get_mut(&k) {
                    let mut i = 0;
                    while i < list.len() {
                        if list[i].at.plus(wait) < watermark {
                            let w = list.swap_remove(i);
                            self.waiting_count -= 1;
                            out.push(orphan(w));
                        } else {
                            i += 1;
                        }
                    }
                    if list.is_empty() {
                        self.waiting.remove(&k);
                    }
                }
            }
        }
        self.scratch = keys;
    }

    /// End of input: decides pending requests as they stand, earliest first, until `out` holds
    /// `batch` outputs; once none is pending, dead-letters every waiting response as an orphan
    /// (in source order). Returns true when everything is done. Called in a loop with the
    /// outputs drained in between, so the end of a large input does not need memory for every
    /// pending decision at once.
    pub fn finish(&mut self, out: &mut Vec<Output>, batch: usize) -> bool {
        let mut keys = std::mem::take(&mut self.scratch);
        while out.len() < batch {
            keys.clear();
            if !self.decide_at.pop_earliest_bucket(&mut keys) {
                break;
            }
            for &k in &keys {
                self.decide(k, out);
            }
        }
        self.scratch = keys;
        if !self.decide_at.is_empty() {
            return false;
        }
        if let Some(c) = self.changed.get_mut() {
            c.waiting.extend(self.waiting.keys().copied());
        }
        let mut orphans: Vec<Waiting> = self.waiting.drain().flat_map(|(_, v)| v).collect();
        orphans.sort_by_key(|w| w.pos);
        self.waiting_count = 0;
        let mut drop_keys = Vec::new();
        self.orphan_at.drain_all(&mut drop_keys);
        for w in orphans {
            out.push(orphan(w));
        }
        true
    }
}

/// A request whose id has a record `e`: a duplicate, a conflict that loses (dead-lettered), or
/// one that displaces the record's request (earlier `at`, or the same and first in source
/// order), which is dead-lettered rebuilt from `e`.
#[allow(clippy::too_many_arguments)]
fn known_request(
    e: &mut Entry,
    r: &Req,
    id: &str,
    cat: &Catalog,
    watermark: Ts,
    decide_at: &mut TimerQueue,
    deadline: Dur,
    out: &mut Vec<Output>,
) -> Verdict {
    // The contract's four fields decide (SPEC §2): a copy that differs only in `execute_at` is
    // a duplicate, and the first copy's execution time stands.
    if e.at == r.at && e.srv == r.srv && e.region == r.region && e.provider == r.provider {
        return Verdict::Duplicate;
    }
    // Conflicting: the earliest `at` stands; on a tie, the first in source order.
    if (r.at, r.pos) > (e.at, e.pos) {
        return Verdict::Dead(DeadReason::ConflictingRequest);
    }
    let displaced = *e;
    let old = e.decision(r.key);
    e.flags = (e.flags & (STORED | LISTED)) | if r.at < watermark { LATE } else { 0 };
    // The first acknowledgement stays where it was in time, now counted from the earlier `at`
    // (to the ms: exact for the ms timestamps DUIS carries).
    if e.ack != 0 {
        let ack = e.at.plus(Dur::from_millis(i64::from(e.ack - 1)));
        e.ack = ack_code(ack, r.at);
    }
    e.at = r.at;
    e.due = r.due;
    e.user = r.user;
    e.pos = r.pos;
    e.srv = r.srv;
    e.region = r.region;
    e.provider = r.provider;
    let new = e.decision(r.key);
    out.push(Output::Dead(StoredDead {
        reason: DeadReason::ConflictingRequest,
        pos: displaced.pos,
        raw: reconstruct_request(&displaced, id, cat)
            .into_bytes()
            .into_boxed_slice(),
        displaced: Some(Displaced {
            late: displaced.flags & LATE != 0,
            measured: !cat
                .rules(displaced.srv, displaced.provider)
                .of(displaced.due > displaced.at)
                .is_empty(),
        }),
        is_request: true,
    }));
    if e.decided {
        // The new request is earlier, so its decision time has passed too (or, future-dated,
        // a final response still to come revises it again).
        out.push(Output::Revised(Box::new(Revision { old, new })));
    } else {
        decide_at.push(r.due.plus(deadline), r.key);
    }
    Verdict::Accepted
}

/// Applies a response to its request's record `e`; a final response within the deadline sets
/// the decision timer in `decide_at` to its own `at`.
fn apply_to(
    e: &mut Entry,
    decide_at: &mut TimerQueue,
    r: Resp,
    cat: &Catalog,
    out: &mut Vec<Output>,
) -> Verdict {
    if r.at < e.at {
        return Verdict::Dead(DeadReason::ResponseBeforeRequest);
    }
    let kind = cat.code_kind(r.code);
    if kind == CodeKind::Ack {
        // Only the first acknowledgement (by timestamp) is kept: the request's time to DCC's
        // acceptance. One that comes after the decision is a revision, as a final response is.
        let ack = ack_code(r.at, e.at);
        if e.ack == 0 || ack < e.ack {
            let old = e.decision(r.key);
            e.ack = ack;
            if e.decided {
                out.push(Output::Revised(Box::new(Revision {
                    old,
                    new: e.decision(r.key),
                })));
            }
        }
        return Verdict::Accepted;
    }
    let verdict = if e.fin_at == NONE_AT {
        Verdict::Accepted
    } else {
        Verdict::Duplicate
    };
    let better = e.fin_at == NONE_AT || {
        let (oa, oc) = (e.fin_at, e.fin_code);
        if r.at.0 != oa {
            r.at.0 < oa
        } else {
            // Equal `at`: a non-success wins, then the lowest code in byte order.
            let new_ok = kind == CodeKind::Success;
            let old_ok = cat.code_kind(oc) == CodeKind::Success;
            if new_ok != old_ok {
                !new_ok
            } else {
                cat.code_name(r.code).as_bytes() < cat.code_name(oc).as_bytes()
            }
        }
    };
    if better {
        let old = e.decision(r.key);
        e.fin_at = r.at.0;
        e.fin_code = r.code;
        if e.decided {
            let new = e.decision(r.key);
            out.push(Output::Revised(Box::new(Revision { old, new })));
        } else {
            let deadline = cat.rules(e.srv, e.provider).deadline(e.due > e.at);
            if r.at <= e.due.plus(deadline) {
                decide_at.push(r.at, r.key);
            }
        }
    }
    verdict
}

/// Stores an evidence text in the slab `texts` (reusing a slot of `free` if any); its slot + 1.
pub(super) fn put_text(texts: &mut Vec<Option<Evidence>>, free: &mut Vec<u32>, t: Evidence) -> u32 {
    match free.pop() {
        Some(i) => {
            texts[i as usize] = Some(t);
            i + 1
        }
        None => {
            texts.push(Some(t));
            texts.len() as u32
        }
    }
}

/// The dead letter of a response whose request never came.
fn orphan(w: Waiting) -> Output {
    Output::Dead(StoredDead {
        reason: DeadReason::OrphanResponse,
        pos: w.pos,
        raw: w.raw,
        displaced: None,
        is_request: false,
    })
}

/// A request's canonical JSON rebuilt from its stored fields. The id is not stored (only its
/// hash): the displacing request carries the same id.
fn reconstruct_request(e: &Entry, id: &str, cat: &Catalog) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut extra = String::new();
    if e.due > e.at {
        extra.push_str(&format!(",\"execute_at\":\"{}\"", e.due.to_rfc3339_exact()));
    }
    if e.user != 0 {
        extra.push_str(&format!(",\"user\":{}", q(cat.user_name(e.user))));
    }
    format!(
        "{{\"type\":\"request\",\"id\":{},\"srv\":{},\"region\":\"{}\",\"provider\":\"{}\",\"at\":\"{}\"{extra}}}",
        q(id),
        q(cat.srv_name(e.srv)),
        e.region.as_str(),
        e.provider.as_str(),
        e.at.to_rfc3339_exact()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::correlate::key::Pos;
    use crate::engine::correlate::key_of;
    use crate::engine::definitions::Definitions;
    use crate::engine::domain::{Provider, Region};
    use crate::engine::time::NANOS_PER_SEC;
    use std::sync::Arc;

    const HOUR: i64 = 3600;

    fn setup(max_waiting: usize) -> (Correlator, Catalog) {
        let defs = Arc::new(Definitions::for_tests());
        let c = Correlator::new(CorrelatorConfig {
            longest_deadline: defs.longest_deadline,
            dedupe_horizon: Dur::from_secs(7 * 24 * HOUR),
            orphan_wait: defs.longest_deadline,
            max_waiting_responses: max_waiting,
        });
        (c, Catalog::new(defs))
    }

    fn t(s: i64) -> Ts {
        Ts(1_709_251_200 * NANOS_PER_SEC + s * NANOS_PER_SEC)
    }

    fn request(
        c: &mut Correlator,
        cat: &mut Catalog,
        id: &str,
        at: i64,
        out: &mut Vec<Output>,
    ) -> Verdict {
        let r = Req {
            key: key_of(id),
            srv: cat.srv("8.11"),
            region: Region::North,
            provider: Provider::Dsp,
            at: t(at),
            due: t(at),
            user: 0,
            pos: Pos::new(0, at as u64),
        };
        c.request(r, id, cat, out)
    }

    fn response(
        c: &mut Correlator,
        cat: &mut Catalog,
        id: &str,
        code: &str,
        at: i64,
        out: &mut Vec<Output>,
    ) -> Verdict {
        let r = Resp {
            key: key_of(id),
            code: cat.code(code),
            at: t(at),
            pos: Pos::new(1, at as u64),
        };
        c.response(r, id.as_bytes(), cat, out)
    }

    #[test]
    fn evidence_goes_out_with_the_decision_and_its_slot_is_reused() {
        let (mut c, mut cat) = setup(1000);
        let mut out = Vec::new();
        for round in 0..3i64 {
            let id = format!("E{round}");
            let r = Req {
                key: key_of(&id),
                srv: cat.srv("8.11"),
                region: Region::North,
                provider: Provider::Dsp,
                at: t(round * 100),
                due: t(round * 100),
                user: 0,
                pos: Pos::new(0, round as u64),
            };
            c.request_with(r, &id, Some((Some("user,1"), None)), &cat, &mut out);
            c.advance(t(round * 100 + 90_000), &mut out);
            let texts: Vec<&str> = out
                .iter()
                .filter_map(|o| match o {
                    Output::Decided(_, Some(text)) => Some(&**text),
                    _ => None,
                })
                .collect();
            assert_eq!(texts, [format!("{id}\u{1f}user,1\u{1f}")], "round {round}");
            out.clear();
        }
        assert_eq!(c.texts.len(), 1, "one slot, reused");
        // A request without evidence (unmeasured) decides without text.
        request(&mut c, &mut cat, "plain", 1_000_000, &mut out);
        c.advance(t(2_000_000), &mut out);
        assert!(
            matches!(out.as_slice(), [Output::Decided(_, None)]),
            "{out:?}"
        );
    }

    #[test]
    fn decided_records_leave_after_the_horizon() {
        let (mut c, mut cat) = setup(1000);
        let mut out = Vec::new();
        for i in 0..1000 {
            let id = format!("r{i}");
            request(&mut c, &mut cat, &id, i, &mut out);
            response(&mut c, &mut cat, &id, "I0", i + 2, &mut out);
        }
        assert_eq!((c.pending(), c.records()), (1000, 1000));
        c.advance(t(1100), &mut out);
        let decided = out
            .iter()
            .filter(|o| matches!(o, Output::Decided(..)))
            .count();
        assert_eq!(
            (c.pending(), decided),
            (0, 1000),
            "decided when the watermark passed each final"
        );
        assert_eq!(c.records(), 1000, "kept for dedupe within the horizon");
        // A copy inside the horizon is still recognised.
        assert_eq!(
            request(&mut c, &mut cat, "r5", 5, &mut out),
            Verdict::Duplicate
        );
        c.advance(t(1000 + 24 * HOUR + 7 * 24 * HOUR + 2), &mut out);
        assert_eq!(c.records(), 0, "nothing is kept past at + 24 h + 7 d");
        assert_eq!(
            request(&mut c, &mut cat, "r6", 6, &mut out),
            Verdict::Dead(DeadReason::TooLate)
        );
    }

    /// A decided request displaced by an earlier copy that is future-dated (an earlier `at`,
    /// a later due time) is kept until the later due time's horizon ends, and then leaves: its
    /// first expiry timer, set for the old due time, must not strand it.
    #[test]
    fn a_record_whose_due_time_moved_later_still_leaves_after_its_horizon() {
        let (mut c, mut cat) = setup(1000);
        let mut out = Vec::new();
        request(&mut c, &mut cat, "d", 100, &mut out);
        response(&mut c, &mut cat, "d", "E20", 101, &mut out);
        c.advance(t(200), &mut out);
        assert_eq!(c.pending(), 0);
        let earlier = Req {
            key: key_of("d"),
            srv: cat.srv("8.11"),
            region: Region::North,
            provider: Provider::Dsp,
            at: t(50),
            due: t(50 + 3 * 24 * HOUR),
            user: 0,
            pos: Pos::new(0, 1),
        };
        assert_eq!(c.request(earlier, "d", &cat, &mut out), Verdict::Accepted);
        assert_eq!(c.records(), 1);
        // Past the old due time's horizon, not the new one's: still known.
        let horizon = 24 * HOUR + 7 * 24 * HOUR;
        c.advance(t(100 + horizon + 10), &mut out);
        assert_eq!(c.records(), 1, "kept for its new due time");
        c.advance(t(50 + 3 * 24 * HOUR + horizon + 10), &mut out);
        assert_eq!(c.records(), 0, "gone once the new due time's horizon ended");
    }

    #[test]
    fn an_acknowledgement_never_ends_a_request() {
        let (mut c, mut cat) = setup(1000);
        let mut out = Vec::new();
        request(&mut c, &mut cat, "a", 0, &mut out);
        assert_eq!(
            response(&mut c, &mut cat, "a", "I99", 1, &mut out),
            Verdict::Accepted
        );
        c.advance(t(2 * HOUR), &mut out);
        assert!(
            out.is_empty() && c.pending() == 1,
            "still pending after its ack"
        );
        c.advance(t(24 * HOUR + 2), &mut out);
        assert_eq!(out.len(), 1);
        let Output::Decided(d, _) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(d.fin, None, "no final response: decided at the deadline");
    }

    #[test]
    fn the_waiting_cap_evicts_the_oldest_first() {
        let (mut c, mut cat) = setup(3);
        let mut out = Vec::new();
        for (i, at) in [50, 10, 40, 30, 20].into_iter().enumerate() {
            let v = response(&mut c, &mut cat, &format!("o{i}"), "I0", at, &mut out);
            assert_eq!(v, Verdict::Waiting);
        }
        assert_eq!(c.waiting(), 3);
        let evicted: Vec<u64> = out
            .iter()
            .map(|o| match o {
                Output::Dead(d) if d.reason == DeadReason::OrphanResponse => d.pos.n(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(evicted, vec![10, 20], "the two oldest by `at`");
        assert_eq!(c.stats().evicted_waiting, 2);
        // A request arriving for a waiting response settles it.
        out.clear();
        request(&mut c, &mut cat, "o2", 35, &mut out);
        assert_eq!(c.waiting(), 2);
        assert!(
            matches!(
                out.as_slice(),
                [Output::Settled {
                    verdict: Verdict::Accepted,
                    behind: false
                }]
            ),
            "{out:?}"
        );
    }

    /// One step of a random event set: a request, a response or a move of the watermark.
    #[derive(Debug, Clone)]
    enum Step {
        Request {
            id: u8,
            at: i64,
            srv: u8,
            region: u8,
        },
        Response {
            id: u8,
            at: i64,
            code: u8,
            ns: bool,
        },
        Advance(i64),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        // Times in ms around a clock that moves 400 s a step (so a few hundred steps pass a
        // day's deadline and the horizon), up to 2 h either side of it; ids from a small pool,
        // so that duplicates, conflicts, revisions and returns after expiry all happen.
        const J: i64 = 7_200_000;
        prop_oneof![
            4 => (0u8..40, -J..J, 0u8..3, 0u8..3)
                .prop_map(|(id, at, srv, region)| Step::Request { id, at, srv, region }),
            4 => (0u8..40, -J..J, 0u8..4, proptest::bool::weighted(0.05))
                .prop_map(|(id, at, code, ns)| Step::Response { id, at, code, ns }),
            1 => (0i64..J).prop_map(Step::Advance),
        ]
    }

    /// What the compact table saw in a trace.
    #[derive(Debug, Default)]
    struct Seen {
        most: usize,
        moved_out: usize,
        expired: usize,
        checkpoints: usize,
    }

    /// A correlator's whole state, in key order, to compare two of them.
    fn state(c: &Correlator) -> String {
        let mut s = c.save_all();
        s.entries.sort_unstable_by_key(|(k, _)| *k);
        s.decided
            .sort_unstable_by_key(super::super::decided::SavedDecided::key);
        s.waiting.sort_unstable_by_key(|(k, _)| *k);
        s.texts.sort_unstable_by_key(|(k, _)| *k);
        format!("{s:?}")
    }

    /// A checkpointed run's state log as a store keeps it: the chunks since the last snapshot.
    #[derive(Default)]
    struct StateLog {
        chunks: Vec<(Vec<u8>, bool)>,
        checkpoints: usize,
    }

    impl StateLog {
        /// A checkpoint of `c` (every fifth a snapshot that replaces the log), then `c` as a
        /// restart would rebuild it from the log: it must equal `c`.
        fn checkpoint_and_restore(&mut self, c: &mut Correlator, cat: &Catalog) {
            use crate::store::codec::{LogReplay, encode_changes};
            self.checkpoints += 1;
            let full = self.checkpoints % 5 == 0;
            let changes = if full {
                c.take_snapshot()
            } else {
                c.take_changes()
            };
            if full {
                self.chunks.clear();
            }
            for (i, chunk) in encode_changes(&changes, 256).into_iter().enumerate() {
                self.chunks.push((chunk, full && i == 0));
            }
            let mut log = LogReplay::default();
            for (chunk, base) in &self.chunks {
                log.apply(chunk, *base).unwrap();
            }
            let r = log.finish();
            let restored = Correlator::restore(
                c.cfg.clone(),
                c.watermark,
                r.entries,
                r.decided,
                r.waiting,
                r.texts,
                c.stats,
                cat,
            );
            assert_eq!(
                state(&restored),
                state(c),
                "after checkpoint {}",
                self.checkpoints
            );
        }
    }

    /// Runs `steps` through a correlator (decided records compact or not); every verdict and
    /// output, in order, and the counts at each step. With `compact`, it also checkpoints after
    /// every few steps and checks that what the state log leads to is what it holds.
    fn trace(steps: &[Step], compact: bool, horizon_s: i64) -> (Vec<String>, Seen) {
        let defs = Arc::new(Definitions::for_tests());
        let mut c = Correlator::new(CorrelatorConfig {
            longest_deadline: defs.longest_deadline,
            dedupe_horizon: Dur::from_secs(horizon_s),
            orphan_wait: Dur::from_secs(600),
            max_waiting_responses: 50,
        });
        c.compact = compact;
        let mut cat = Catalog::new(defs);
        let srvs = ["8.11", "4.1.1", "6.15.1"].map(|s| cat.srv(s));
        let codes = ["I0", "E3", "I99", "N12"].map(|s| cat.code(s));
        let ms = |at: i64| Ts(1_709_251_200 * NANOS_PER_SEC + at * 1_000_000);
        let mut seen = Seen::default();
        let (mut out, mut log) = (Vec::new(), Vec::new());
        let mut max_at = Ts::MIN;
        let mut state_log = StateLog::default();
        if compact {
            c.track_changes();
        }
        for (n, st) in steps.iter().enumerate() {
            let pos = Pos::new((n % 2) as u16, n as u64);
            let clock = n as i64 * 400_000;
            let v = match *st {
                Step::Request {
                    id,
                    at,
                    srv,
                    region,
                } => {
                    let id = format!("r{id}");
                    let at = clock + at;
                    max_at = max_at.max(ms(at));
                    let r = Req {
                        key: key_of(&id),
                        srv: srvs[srv as usize],
                        region: Region::ALL[region as usize],
                        provider: Provider::Dsp,
                        at: ms(at),
                        due: ms(at),
                        user: 0,
                        pos,
                    };
                    Some(c.request(r, &id, &cat, &mut out))
                }
                Step::Response { id, at, code, ns } => {
                    let at = Ts(ms(clock + at).0 + i64::from(ns) * 7);
                    max_at = max_at.max(at);
                    let r = Resp {
                        key: key_of(&format!("r{id}")),
                        code: codes[code as usize],
                        at,
                        pos,
                    };
                    Some(c.response(r, b"raw", &cat, &mut out))
                }
                Step::Advance(by) => {
                    c.advance(Ts(max_at.0.saturating_sub(by * 1_000_000)), &mut out);
                    None
                }
            };
            // The watermark follows the events too, as a pipeline moves it.
            c.advance(Ts(max_at.0.saturating_sub(60 * NANOS_PER_SEC)), &mut out);
            seen.most = seen.most.max(c.decided.len());
            seen.moved_out = seen.moved_out.max(c.decided.dead_total());
            seen.expired = seen.expired.max(c.decided.expired_total());
            if compact && n % 7 == 3 {
                state_log.checkpoint_and_restore(&mut c, &cat);
                seen.checkpoints = state_log.checkpoints;
            }
            log.push(format!(
                "{n} {v:?} {:?} pending {} waiting {} records {}",
                std::mem::take(&mut out),
                c.pending(),
                c.waiting(),
                c.records()
            ));
        }
        while !c.finish(&mut out, 64) {
            log.push(format!("{:?}", std::mem::take(&mut out)));
        }
        log.push(format!("{:?}", out));
        if compact {
            state_log.checkpoint_and_restore(&mut c, &cat);
        }
        (log, seen)
    }

    #[test]
    fn the_property_below_exercises_every_path_of_the_compact_table() {
        // A long fixed trace: the table holds records, some leave it for the map (displaced,
        // or revised with a response it cannot hold), some expire.
        let mut x = 0x853c_49e6_748f_ea9bu64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let j = |r: u64| r as i64 - 7_200_000;
        let steps: Vec<Step> = (0..3000)
            .map(|_| match next(9) {
                0..=3 => Step::Request {
                    id: next(40) as u8,
                    at: j(next(14_400_000)),
                    srv: next(3) as u8,
                    region: next(3) as u8,
                },
                4..=7 => Step::Response {
                    id: next(40) as u8,
                    at: j(next(14_400_000)),
                    code: next(4) as u8,
                    ns: next(20) == 0,
                },
                _ => Step::Advance(next(7_200_000) as i64),
            })
            .collect();
        let (compact, seen) = trace(&steps, true, 1800);
        let (map, _) = trace(&steps, false, 1800);
        assert_eq!(compact, map);
        assert!(
            seen.most > 5 && seen.moved_out > 0 && seen.expired > 0 && seen.checkpoints > 400,
            "{seen:?}"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Decided records kept compactly answer exactly as records in the map of pending
        /// ones do: duplicates, conflicts and their tie-break, late responses that revise,
        /// `too_late` past the horizon, a key that comes back after its record expired.
        #[test]
        fn compact_decided_records_change_no_verdict_and_no_output(
            steps in proptest::collection::vec(step(), 1..400),
            horizon_s in 0i64..7200,
        ) {
            let (compact, _) = trace(&steps, true, horizon_s);
            let (map, _) = trace(&steps, false, horizon_s);
            for (a, b) in compact.iter().zip(&map) {
                proptest::prop_assert_eq!(a, b);
            }
            proptest::prop_assert_eq!(compact.len(), map.len());
        }
    }
}
