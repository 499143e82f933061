//! The correlator's checkpoint state: the changes since the last checkpoint, the shapes a
//! checkpoint stores (records, waiting responses, evidence texts), and the correlator rebuilt
//! from them. The store's codec writes these shapes; nothing here knows how.

use crate::engine::catalog::Catalog;
use crate::engine::domain::{Provider, Region};
use crate::engine::time::Ts;

use super::correlator::{
    Correlator, CorrelatorConfig, CorrelatorStats, Entry, LATE, LISTED, NONE_AT, STORED, Waiting,
    text_of,
};
use super::decided::SavedDecided;
use super::interface::Evidence;
use super::key::Pos;

/// A request's correlation state as a checkpoint stores it (SRV and code are the partition's
/// interned ids; the checkpoint stores the intern tables beside them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedEntry {
    /// Request `at`, ns.
    pub at: i64,
    /// When it is due to run, ns: `at`, or a future-dated request's `execute_at`.
    pub due: i64,
    /// Interned service user (0: none).
    pub user: u32,
    /// First acknowledgement: 0 none, else 1 + whole ms after `at`.
    pub ack: u32,
    /// Final response `at`, ns, if any.
    pub fin_at: Option<i64>,
    /// Packed position of the request.
    pub pos: u64,
    /// Interned SRV.
    pub srv: u32,
    /// Interned final code (meaningless without `fin_at`).
    pub fin_code: u32,
    /// Region.
    pub region: Region,
    /// Provider.
    pub provider: Provider,
    /// Already decided and counted.
    pub decided: bool,
    /// It arrived behind the watermark (its line was counted `late`).
    pub late: bool,
}

/// A response waiting for its request, as a checkpoint stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedWaiting {
    /// Response `at`, ns.
    pub at: i64,
    /// Interned code.
    pub code: u32,
    /// Packed position.
    pub pos: u64,
    /// It was behind the watermark when it arrived.
    pub behind: bool,
    /// Its bytes, for the dead letter it may become.
    pub raw: Box<[u8]>,
}

/// What changed since the last checkpoint, in the order a store must write it: compactly kept
/// records and removals as they happened (interleaved by `removed`'s indexes), then the pending
/// map's records as they are now, which have the last word.
#[derive(Debug, Default)]
pub struct Changes {
    /// Keys with a record in the pending map now.
    pub entries: Vec<(u128, SavedEntry)>,
    /// Decided records as they became or changed while kept compactly, in order, by their
    /// reduced keys (each replaces any record with the same reduced key).
    pub decided: Vec<SavedDecided>,
    /// Keys whose record left, each with how many of `decided` came before its removal.
    pub removed: Vec<(usize, u128)>,
    /// Keys touched and their waiting responses now (empty: none wait any more).
    pub waiting: Vec<(u128, Vec<SavedWaiting>)>,
    /// A full snapshot: every record and waiting response, and anything not in it is gone.
    pub full: bool,
    /// Evidence texts of the pending records among `entries` (a record written without one
    /// has none).
    pub texts: Vec<(u128, Evidence)>,
}

impl Correlator {
    /// Starts recording which keys change, for [`Correlator::take_changes`].
    pub fn track_changes(&mut self) {
        self.changed.enable();
    }

    /// What changed since the last call (a checkpoint's delta): no key is looked up but in
    /// the pending map.
    pub fn take_changes(&mut self) -> Changes {
        let mut out = Changes::default();
        let Some(changed) = self.changed.get_mut() else {
            return out;
        };
        out.decided = std::mem::take(&mut changed.decided);
        out.removed = std::mem::take(&mut changed.removed);
        for k in changed.entries.drain(..) {
            // Gone from the map (compacted or removed, written down above) or listed twice:
            // nothing more to say.
            let Some(e) = self.entries.get_mut(&k).filter(|e| e.flags & LISTED != 0) else {
                continue;
            };
            e.flags = (e.flags | STORED) & !LISTED;
            out.entries.push((k, save_entry(e)));
            if let Some(t) = text_of(&self.texts, e) {
                out.texts.push((k, t.clone()));
            }
        }
        for k in changed.waiting.drain() {
            let list = self.waiting.get(&k).map_or_else(Vec::new, |l| {
                l.iter()
                    .map(|w| SavedWaiting {
                        at: w.at.0,
                        code: w.code,
                        pos: w.pos.0,
                        behind: w.behind,
                        raw: w.raw.clone(),
                    })
                    .collect()
            });
            out.waiting.push((k, list));
        }
        out
    }

    /// A full snapshot for a checkpoint that replaces the partition's state log: every record
    /// (each now stored) and waiting response; the changes recorded so far are covered by it.
    pub fn take_snapshot(&mut self) -> Changes {
        if let Some(changed) = self.changed.get_mut() {
            changed.entries.clear();
            changed.decided.clear();
            changed.removed.clear();
            changed.waiting.clear();
        }
        for e in self.entries.values_mut() {
            e.flags = (e.flags | STORED) & !LISTED;
        }
        self.save_all()
    }

    /// Every record and waiting response (a full snapshot).
    pub fn save_all(&self) -> Changes {
        let mut out = Changes {
            full: true,
            entries: self
                .entries
                .iter()
                .map(|(k, e)| (*k, save_entry(e)))
                .collect(),
            decided: self
                .decided
                .live_records(self.watermark.as_second())
                .collect(),
            texts: self
                .entries
                .iter()
                .filter_map(|(k, e)| text_of(&self.texts, e).map(|t| (*k, t.clone())))
                .collect(),
            ..Changes::default()
        };
        for (k, l) in &self.waiting {
            out.waiting.push((
                *k,
                l.iter()
                    .map(|w| SavedWaiting {
                        at: w.at.0,
                        code: w.code,
                        pos: w.pos.0,
                        behind: w.behind,
                        raw: w.raw.clone(),
                    })
                    .collect(),
            ));
        }
        out
    }

    /// Rebuilds a correlator from a checkpoint: its watermark, records (those kept compactly
    /// apart) and waiting responses. Timers are derived from the records (a pending request is
    /// decided at its final response if that came within the deadline, else at its deadline; a
    /// decided one expires at its due time + longest deadline + horizon), which is when the
    /// original timers would have fired.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        cfg: CorrelatorConfig,
        watermark: Ts,
        entries: impl IntoIterator<Item = (u128, SavedEntry)>,
        decided: impl IntoIterator<Item = SavedDecided>,
        waiting: impl IntoIterator<Item = (u128, SavedWaiting)>,
        texts: impl IntoIterator<Item = (u128, Evidence)>,
        stats: CorrelatorStats,
        cat: &Catalog,
    ) -> Correlator {
        let mut c = Correlator::new(cfg);
        c.watermark = watermark;
        c.stats = stats;
        // Where the running correlator's expiry timers and table were: every second before the
        // watermark's released (an advance leaves them so), which decides whether a record
        // decided from now on is kept compactly, as it would have been without the restart.
        let mut none = Vec::new();
        c.expire_at.pop_due(watermark, &mut none);
        let live_from = watermark.as_second();
        c.decided.maintain(live_from);
        // What had expired in the table when the log was written is left out: it was only
        // ignored there.
        let decided = decided.into_iter();
        c.decided.reserve(decided.size_hint().0, live_from);
        for d in decided {
            c.decided.restore(d.key(), d.slot(), live_from);
        }
        for (k, s) in entries {
            let e = Entry {
                at: Ts(s.at),
                due: Ts(s.due),
                user: s.user,
                ack: s.ack,
                fin_at: s.fin_at.unwrap_or(NONE_AT),
                pos: Pos(s.pos),
                srv: s.srv,
                fin_code: s.fin_code,
                region: s.region,
                provider: s.provider,
                decided: s.decided,
                flags: STORED | if s.late { LATE } else { 0 },
                text: 0,
            };
            if e.decided {
                c.expire_at.push(c.cfg.expiry(e.due), k);
            } else {
                let due = e
                    .due
                    .plus(cat.rules(e.srv, e.provider).deadline(e.due > e.at));
                let at = match s.fin_at {
                    Some(f) if Ts(f) <= due => Ts(f),
                    _ => due,
                };
                c.decide_at.push(at, k);
                c.pending += 1;
            }
            c.entries.insert(k, e);
        }
        for (k, w) in waiting {
            c.orphan_at.push(Ts(w.at).plus(c.cfg.orphan_wait), k);
            c.waiting.entry(k).or_default().push(Waiting {
                at: Ts(w.at),
                code: w.code,
                pos: Pos(w.pos),
                behind: w.behind,
                raw: w.raw,
            });
            c.waiting_count += 1;
        }
        // Evidence of pending requests, so a miss decided after the restart is sampled as it
        // would have been without one.
        for (k, t) in texts {
            if c.entries.get(&k).is_some_and(|e| !e.decided && e.text == 0) {
                let slot = c.put_text(t);
                if let Some(e) = c.entries.get_mut(&k) {
                    e.text = slot;
                }
            }
        }
        c
    }
}

pub(super) fn save_entry(e: &Entry) -> SavedEntry {
    SavedEntry {
        at: e.at.0,
        due: e.due.0,
        user: e.user,
        ack: e.ack,
        fin_at: (e.fin_at != NONE_AT).then_some(e.fin_at),
        pos: e.pos.0,
        srv: e.srv,
        fin_code: e.fin_code,
        region: e.region,
        provider: e.provider,
        decided: e.decided,
        late: e.flags & LATE != 0,
    }
}
