//! What changed since the last checkpoint, when a checkpoint store asked (a replay never does,
//! and pays nothing). Kept so that a checkpoint never looks a key up in the large table of
//! decided requests and the hot path never hashes a key into a set (BENCHMARKS.md, issue 19:
//! both were most of a checkpointed `run`'s overhead at national scale):
//! - records of the pending map that changed are listed once each, in order, their entry's
//!   [`LISTED`] flag saying they are already listed;
//! - what left the map (compacted into the decided table, or removed) and every change of a
//!   compactly kept record is written down as it happens, with its state;
//! - waiting responses apart, by key in a set: few keys ever have them.

use super::decided::{SavedDecided, Slot};
use super::entry::{Entry, LISTED};
use super::key::KeySet;

/// Change tracking, off until [`Tracker::enable`].
#[derive(Default)]
pub(super) struct Tracker(Option<Box<Changed>>);

/// What changed since the last checkpoint.
#[derive(Default)]
pub(super) struct Changed {
    /// Keys of map records that changed, each listed once while its entry's [`LISTED`] flag is
    /// set (again if it left the map and came back).
    pub(super) entries: Vec<u128>,
    /// Compactly kept records as they became or changed, in order.
    pub(super) decided: Vec<SavedDecided>,
    /// Records removed from the map (that a checkpoint had written), each with how many of
    /// `decided` came before its removal: a key can be removed and come back compacted, or the
    /// other way round, within one checkpoint, and the last word must be the last written.
    pub(super) removed: Vec<(usize, u128)>,
    /// Keys whose waiting responses changed.
    pub(super) waiting: KeySet,
}

impl Tracker {
    /// Starts recording.
    pub(super) fn enable(&mut self) {
        self.0.get_or_insert_with(Box::default);
    }

    /// The changes, when recording.
    pub(super) fn get_mut(&mut self) -> Option<&mut Changed> {
        self.0.as_deref_mut()
    }

    /// The map's record of `key` changed (or is new).
    #[inline]
    pub(super) fn touch(&mut self, key: u128, e: &mut Entry) {
        if let Some(c) = &mut self.0
            && e.flags & LISTED == 0
        {
            e.flags |= LISTED;
            c.entries.push(key);
        }
    }

    /// `key`'s record is now kept compactly as `slot` (it left the map, or changed in place).
    #[inline]
    pub(super) fn compacted(&mut self, key: u128, slot: Slot) {
        if let Some(c) = &mut self.0 {
            c.decided.push(SavedDecided::new(key, slot));
        }
    }

    /// `key`'s record left the map for good; `stored`: a checkpoint had written it, so the
    /// store must forget it too.
    #[inline]
    pub(super) fn removed(&mut self, key: u128, stored: bool) {
        if let Some(c) = &mut self.0
            && stored
        {
            c.removed.push((c.decided.len(), key));
        }
    }

    /// A key's waiting responses changed.
    pub(super) fn touch_waiting(&mut self, key: u128) {
        self.touch_all_waiting(&[key]);
    }

    /// Keys' waiting responses changed.
    pub(super) fn touch_all_waiting(&mut self, keys: &[u128]) {
        if let Some(c) = &mut self.0 {
            c.waiting.extend(keys.iter().copied());
        }
    }
}
