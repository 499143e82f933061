//! Which keys changed since the last checkpoint, when a checkpoint store asked (a replay never
//! does, and pays nothing): records and waiting responses apart, as few keys ever have waiting
//! responses and the store need not rewrite them for every touched record.

use super::key::KeySet;

/// Change tracking, off until [`Tracker::enable`].
#[derive(Default)]
pub(super) struct Tracker(Option<Box<Changed>>);

/// Keys changed since the last checkpoint.
#[derive(Default)]
pub(super) struct Changed {
    /// Keys whose record changed (or went).
    pub(super) entries: KeySet,
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

    /// A record changed.
    #[inline]
    pub(super) fn touch(&mut self, key: u128) {
        self.mark(false, &[key]);
    }

    /// Records changed.
    pub(super) fn touch_all(&mut self, keys: &[u128]) {
        self.mark(false, keys);
    }

    /// A key's waiting responses changed.
    pub(super) fn touch_waiting(&mut self, key: u128) {
        self.mark(true, &[key]);
    }

    /// Keys' waiting responses changed.
    pub(super) fn touch_all_waiting(&mut self, keys: &[u128]) {
        self.mark(true, keys);
    }

    #[inline]
    fn mark(&mut self, waiting: bool, keys: &[u128]) {
        if let Some(c) = &mut self.0 {
            let set = if waiting {
                &mut c.waiting
            } else {
                &mut c.entries
            };
            set.extend(keys.iter().copied());
        }
    }
}
