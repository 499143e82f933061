//! The correlator's checkpoint state: the changes since the last checkpoint, the shapes a
//! checkpoint stores (records, waiting responses, evidence texts), and the correlator rebuilt
//! from them. The store's codec writes these shapes; nothing here knows how.

use crate::engine::catalog::Catalog;
use crate::engine::time::Ts;

use super::correlator::{Correlator, CorrelatorConfig, CorrelatorStats};
use super::decided::SavedDecided;
use super::entry::{Entry, LISTED, STORED, SavedEntry, SavedWaiting, Waiting, text_of};
use super::interface::Evidence;

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
            out.entries.push((k, e.saved()));
            if let Some(t) = text_of(&self.texts, e) {
                out.texts.push((k, t.clone()));
            }
        }
        for k in changed.waiting.drain() {
            let list = self
                .waiting
                .get(&k)
                .map_or_else(Vec::new, |l| l.iter().map(Waiting::saved).collect());
            out.waiting.push((k, list));
        }
        out
    }

    /// A full snapshot for a checkpoint that replaces the partition's state log: every record
    /// (each now stored) and waiting response; the changes recorded so far are covered by it.
    pub(crate) fn take_snapshot(&mut self) -> Changes {
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
    pub(crate) fn save_all(&self) -> Changes {
        let mut out = Changes {
            full: true,
            entries: self.entries.iter().map(|(k, e)| (*k, e.saved())).collect(),
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
            out.waiting
                .push((*k, l.iter().map(Waiting::saved).collect()));
        }
        out
    }

    /// Rebuilds a correlator from a checkpoint: its watermark, records (those kept compactly
    /// apart) and waiting responses. Timers are derived from the records (a pending request is
    /// decided at its final response if that came within the deadline, else at its deadline; a
    /// decided one expires at its due time + longest deadline + horizon), which is when the
    /// original timers would have fired.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore(
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
            let e = Entry::restored(&s);
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
            c.waiting.entry(k).or_default().push(Waiting::restored(w));
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
