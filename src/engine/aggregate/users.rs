//! A row's counts by service user (`users.csv`): a hash table keyed by the user's name whose
//! hash the catalog computed once per user ([`crate::engine::catalog::user_hash`]), so that counting a decision
//! neither hashes nor compares its user's name (the catalog's `Arc` is the same one: a pointer
//! compare). Rows of other partitions (other catalogs, other `Arc`s) merge by name.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::engine::catalog::user_hash;

/// One user's counts in a row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UserCounts {
    /// Requests decided.
    pub requests: u64,
    /// Within target.
    pub within_target: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// No final response within the deadline.
    pub no_response: u64,
}

impl UserCounts {
    /// Hits for a basis (as [`super::Row::hits`]).
    pub fn hits(&self, basis: crate::engine::domain::Basis) -> u64 {
        match basis {
            crate::engine::domain::Basis::Trt => self.within_target,
            crate::engine::domain::Basis::Success => self.succeeded,
        }
    }

    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &UserCounts) {
        self.requests += o.requests;
        self.within_target += o.within_target;
        self.succeeded += o.succeeded;
        self.no_response += o.no_response;
    }
}

/// A row's users: (name, its [`crate::engine::catalog::user_hash`], counts).
#[derive(Debug, Clone, Default)]
pub struct Users(HashTable<(Arc<str>, u64, UserCounts)>);

impl Users {
    /// The counts of `name` (hashed `hash`), made empty on first sight.
    #[inline]
    pub(crate) fn counts_mut(&mut self, name: &Arc<str>, hash: u64) -> &mut UserCounts {
        let entry = self.0.entry(
            hash,
            |(n, h, _)| *h == hash && (Arc::ptr_eq(n, name) || **n == **name),
            |(_, h, _)| *h,
        );
        &mut entry
            .or_insert_with(|| (name.clone(), hash, UserCounts::default()))
            .into_mut()
            .2
    }

    /// Forgets `name` (its counts came back to nothing).
    pub fn remove(&mut self, name: &Arc<str>, hash: u64) {
        if let Ok(e) = self.0.find_entry(hash, |(n, h, _)| {
            *h == hash && (Arc::ptr_eq(n, name) || **n == **name)
        }) {
            e.remove();
        }
    }

    /// Adds another row's users, by name.
    pub fn merge(&mut self, other: &Users) {
        for (name, hash, c) in other.0.iter() {
            self.counts_mut(name, *hash).add(c);
        }
    }

    /// Puts a stored user's counts back.
    pub(crate) fn insert(&mut self, name: &str, counts: UserCounts) {
        let name: Arc<str> = name.into();
        let hash = user_hash(&name);
        self.counts_mut(&name, hash).add(&counts);
    }

    /// Every user and its counts, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &UserCounts)> {
        self.0.iter().map(|(n, _, c)| (n, c))
    }

    /// How many users.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
