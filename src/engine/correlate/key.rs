//! Keys and positions: the 128-bit hash a request id is known by, the hasher that takes its
//! low bits as they are, and where an event came from (source, then line or offset).

use std::hash::{BuildHasherDefault, Hasher};

use hashbrown::HashMap;

/// Where an event came from: a source index (file or partition) and a line or offset, packed
/// so that it orders as "source, then position" (the SPEC's tie-break for conflicting requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos(pub u64);

impl Pos {
    /// Packs a source index (< 65,536) and a line or offset (< 2^48).
    pub fn new(source: u16, n: u64) -> Pos {
        Pos(((source as u64) << 48) | (n & ((1 << 48) - 1)))
    }

    /// The source index.
    pub fn source(self) -> u16 {
        (self.0 >> 48) as u16
    }

    /// The line or offset.
    pub fn n(self) -> u64 {
        self.0 & ((1 << 48) - 1)
    }
}

/// The 128-bit key of a request id. Collisions are negligible (≈10⁻²² for 10⁹ live ids).
#[inline]
pub fn key_of(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// The keys are already uniform hashes: use their low bits instead of hashing them again.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// A table keyed by request key, hashed by [`KeyHasher`].
pub(crate) type KeyMap<V> = HashMap<u128, V, BuildHasherDefault<KeyHasher>>;

/// A set of request keys, hashed by [`KeyHasher`].
pub(crate) type KeySet = hashbrown::HashSet<u128, BuildHasherDefault<KeyHasher>>;
