//! The decided requests a correlator keeps for the dedupe horizon, in 33 bytes each: a table of
//! 32-byte records and a tag byte per slot, grown by a quarter at a time, with no timer per
//! record. A record leaves when the watermark passes its expiry; until a sweep takes it out it
//! is only ignored, and a sweep runs when a sixteenth of what the table holds is gone.
//!
//! Why not the map of pending requests: a decided request is looked up only to say whether a
//! request is a duplicate or a conflict and whether a late response revises it, and it never
//! changes its place in time, so what it needs fits in 32 bytes (its evidence text went with
//! its decision; 28 until its user and first acknowledgement joined it, issue 32). A hashbrown map doubles (a quarter to half of it empty after each growth)
//! and the expiry timer cost another 16 to 32 bytes per record: about 120 bytes of state per
//! decided request, which is most of the memory of a national horizon (issue 19).
//!
//! Layout: 256 shards by the key's top 8 bits, so a growth rebuilds 1/256 of the table; in a
//! shard, groups of 8 slots with their 8 tags in one `u64` (found with SWAR byte compares),
//! probed linearly from the group the key's low bits pick (any number of groups: the pick is a
//! multiply, not a mask). A record is known by 79 bits of its 128-bit key (64 stored, 8 by
//! its shard, 7 by its tag): two live ids match by chance about once in 10⁵ months of the
//! national volume (10⁹ lookups a month against 9·10⁷ records), against 10⁻²² with all 128.
//!
//! A checkpoint writes a record as [`SavedDecided`]: its shard, its tag's 7 bits and the slot's
//! 32 bytes, which is all a restore needs to put it back; a state log's replay sorts out which
//! of a key's saved records has the last word with [`last_of_each`], and the table is sized
//! once for what comes back ([`DecidedTable::reserve`]).
//!
//! Records are never removed one by one (no tombstones to skip): one that leaves for the
//! pending map (its request displaced by an earlier one, or a revision that no longer fits) is
//! marked dead, and rebuilds drop dead and expired records.

use std::collections::{BTreeMap, VecDeque};

use crate::engine::domain::{Provider, Region};
use crate::engine::time::{Dur, Ts};

use super::entry::{Entry, NONE_AT, SavedEntry};
use super::key::Pos;

/// Shards, by the key's top bits.
const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;
/// Slots per group: the tags of a group are one `u64`.
const GROUP: usize = 8;
/// A shard grows when an insert would take it past 9/10 full…
const MAX_LOAD: (usize, usize) = (9, 10);
/// …by a quarter: on average a shard is then 4/5 full, against 2/3 for a table that doubles.
const GROWTH: (usize, usize) = (5, 4);
/// A sweep sizes each shard 21/25 full (0.84), so that the sixteenth that arrives before the
/// next sweep (1.0625 × 0.84 = 0.89) needs no growth in a steady state.
const SWEPT_LOAD: (usize, usize) = (21, 25);
/// A sweep starts once expired and dead records are more than 1/16 of the table…
const SWEEP_SHARE: usize = 16;
/// …and the table holds at least this many (below that, growth rebuilds are sweep enough).
const SWEEP_MIN: usize = 1 << 14;
/// Slots a sweep rebuilds per call to [`DecidedTable::maintain`] at most (it goes on at the
/// next): the pause of a sweep of a national table (10⁸ records) stays a few milliseconds.
const SWEEP_STEP: usize = 1 << 16;
/// Seconds of expiry counted one by one ahead of the watermark (48 days); records that expire
/// later (an `at` far ahead) are counted in a map until they come within it.
const RING_SECONDS: usize = 1 << 22;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bytes that are zero in `x`: 0x80 in each, exactly.
#[inline]
fn zero_bytes(x: u64) -> u64 {
    !(((x & !HI).wrapping_add(!HI)) | x | !HI)
}

/// Packed fields of [`Slot::packed`]: final response (32 bits: 0 none, else 1 + its delay
/// in whole ms, stored in 30), final code (12), SRV (13), region (2), provider (2), flags (3).
const FIN_BITS: u32 = 32;
/// Bits the final response's delay is stored in: up to 12 days, past any horizon's reach.
const FIN_STORED_BITS: u32 = 30;
/// Bits `at` is stored in, as ms since 1970: to the year 2109.
const AT_MS_BITS: u32 = 42;
/// Bits of a position stored: a source index under 256 (file or partition) and its 48-bit line
/// or offset.
const POS_BITS: u32 = 56;
const CODE_BITS: u32 = 12;
const SRV_BITS: u32 = 13;
const CODE_AT: u32 = FIN_BITS;
const SRV_AT: u32 = CODE_AT + CODE_BITS;
const REGION_AT: u32 = SRV_AT + SRV_BITS;
const PROVIDER_AT: u32 = REGION_AT + 2;
const FLAGS_AT: u32 = PROVIDER_AT + 2;
/// Bits of [`Slot::extra`]: the first acknowledgement's [`Entry::ack`] (under 17 minutes after
/// the request: DUIS acknowledges synchronously), then the user's id (the first 4,095 users).
const ACK_BITS: u32 = 20;
const USER_BITS: u32 = 12;
/// [`Slot`] flag: moved to the pending map; ignored until a rebuild drops it.
const DEAD: u64 = 4;
const NANOS_PER_MS: i64 = 1_000_000;

/// One decided request: the low 64 bits of its key, its `at`, its position and the rest packed.
/// Stored in [`SLOT_WORDS`] words of 32 bits ([`Shard::set_slot`]): the fields' ranges are
/// what [`Slot::of`] lets in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Slot {
    fp: u64,
    at: i64,
    pos: u64,
    packed: u64,
    /// First acknowledgement ([`ACK_BITS`]) and user ([`USER_BITS`]).
    extra: u32,
}

impl Slot {
    /// The compact form of decided record `e` of `key`, if its fields fit: `at` a whole ms
    /// from 1970 to 2109, a final response a whole number of ms after it and under 12 days,
    /// a position from one of the first 256 sources, SRV and code ids the catalog gives its
    /// first 8,192 and 4,096 SRVs and codes, on demand (due at its `at`), a first
    /// acknowledgement under 17 minutes after it, a user among the first 4,095. (Others stay
    /// in the pending map.)
    pub(super) fn of(key: u128, e: &Entry) -> Option<Slot> {
        let fin = if e.fin_at == NONE_AT {
            0
        } else {
            let d = e.fin_at.checked_sub(e.at.0)?;
            if d < 0 || d % NANOS_PER_MS != 0 || d / NANOS_PER_MS >= (1 << FIN_STORED_BITS) - 1 {
                return None;
            }
            d / NANOS_PER_MS + 1
        } as u64;
        if e.at.0 < 0
            || e.at.0 % NANOS_PER_MS != 0
            || e.at.0 / NANOS_PER_MS >= 1 << AT_MS_BITS
            || e.pos.0 >= 1 << POS_BITS
        {
            return None;
        }
        if e.fin_code >= 1 << CODE_BITS || e.srv >= 1 << SRV_BITS || !e.decided || e.text != 0 {
            return None;
        }
        if e.due != e.at || e.ack >= 1 << ACK_BITS || e.user >= 1 << USER_BITS {
            return None;
        }
        // The code means nothing without a final response: keep it 0 then, as restores do.
        let code = if fin == 0 { 0 } else { e.fin_code as u64 };
        Some(Slot {
            fp: key as u64,
            at: e.at.0,
            pos: e.pos.0,
            packed: fin
                | code << CODE_AT
                | (e.srv as u64) << SRV_AT
                | (e.region as u64) << REGION_AT
                | (e.provider as u64) << PROVIDER_AT
                | (e.flags as u64 & 3) << FLAGS_AT,
            extra: e.ack | e.user << ACK_BITS,
        })
    }

    /// The record as the correlator's logic reads it.
    pub(super) fn entry(&self) -> Entry {
        let p = self.packed;
        let fin = p & ((1 << FIN_BITS) - 1);
        let field = |at: u32, bits: u32| (p >> at) & ((1 << bits) - 1);
        Entry {
            at: Ts(self.at),
            due: Ts(self.at),
            user: self.extra >> ACK_BITS,
            ack: self.extra & ((1 << ACK_BITS) - 1),
            fin_at: if fin == 0 {
                NONE_AT
            } else {
                self.at + (fin as i64 - 1) * NANOS_PER_MS
            },
            pos: Pos(self.pos),
            srv: field(SRV_AT, SRV_BITS) as u32,
            fin_code: field(CODE_AT, CODE_BITS) as u32,
            region: Region::ALL[(field(REGION_AT, 2) as usize).min(2)],
            provider: Provider::ALL[(field(PROVIDER_AT, 2) as usize).min(2)],
            decided: true,
            flags: field(FLAGS_AT, 2) as u8,
            text: 0,
        }
    }

    /// The second of its expiry, `span` after its `at`.
    #[inline]
    fn expiry_sec(&self, span: Dur) -> i64 {
        Ts(self.at).plus(span).as_second()
    }

    fn dead(&self) -> bool {
        self.packed >> FLAGS_AT & DEAD != 0
    }
}

/// Bytes of a [`SavedDecided`]: the shard and the tag's 7 bits, then the slot's words.
pub(crate) const SAVED_DECIDED_BYTES: usize = 2 + SLOT_WORDS * 4;

/// Bytes of a [`SavedDecided`] in state logs of layout 3, written before a record kept its
/// user and first acknowledgement (a word less): they restore with neither.
pub const SAVED_DECIDED_BYTES_V3: usize = SAVED_DECIDED_BYTES - 4;

/// A decided record kept compactly, as a checkpoint stores it: known, as in the table, by 79
/// bits of its request's key ([`reduced_key`]), with the slot's 32 bytes. The state log writes
/// it as it is (34 bytes) and a restore puts it back in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedDecided {
    key: u128,
    slot: Slot,
}

/// The bits of a request's key a compactly kept record is known by: the top 8 (its shard), 7
/// above the low 64 (its tag) and the low 64 (stored).
pub fn reduced_key(key: u128) -> u128 {
    key & (0xff << 120 | 0x7f << 64 | u64::MAX as u128)
}

/// The reduced key of a record from where the table keeps its parts: its shard, the 7 bits of
/// its tag and its stored 64.
fn reduced_of(shard: u8, tag7: u8, fp: u64) -> u128 {
    (shard as u128) << 120 | ((tag7 & 0x7f) as u128) << 64 | fp as u128
}

impl SavedDecided {
    pub(super) fn new(key: u128, slot: Slot) -> SavedDecided {
        SavedDecided {
            key: reduced_key(key),
            slot,
        }
    }

    /// Its reduced key: equal for every key the table would take for it.
    pub fn key(&self) -> u128 {
        self.key
    }

    pub(super) fn slot(&self) -> Slot {
        self.slot
    }

    /// The record as a checkpoint of the map would hold it (the stores check its SRV and
    /// code against the partition's intern tables).
    pub fn entry(&self) -> SavedEntry {
        self.slot.entry().saved()
    }

    /// The state log's bytes: shard, tag bits, then the slot as the table stores it.
    pub fn to_bytes(&self) -> [u8; SAVED_DECIDED_BYTES] {
        let mut b = [0u8; SAVED_DECIDED_BYTES];
        b[0] = shard_of(self.key) as u8;
        b[1] = tag(self.key) & 0x7f;
        for (i, w) in encode(&self.slot).iter().enumerate() {
            b[2 + i * 4..6 + i * 4].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Back from [`SavedDecided::to_bytes`]; `None` when the bytes cannot be a record (a tag
    /// byte with its high bit, a region or provider out of range, a dead or pending record).
    /// The bytes of layout 3 ([`SAVED_DECIDED_BYTES_V3`]) are read too.
    pub(crate) fn from_bytes(b: &[u8]) -> Option<SavedDecided> {
        if !(b.len() == SAVED_DECIDED_BYTES || b.len() == SAVED_DECIDED_BYTES_V3)
            || b[1] & 0x80 != 0
        {
            return None;
        }
        let mut w = [0u32; SLOT_WORDS];
        for (i, w) in w.iter_mut().take((b.len() - 2) / 4).enumerate() {
            *w = u32::from_le_bytes([b[2 + i * 4], b[3 + i * 4], b[4 + i * 4], b[5 + i * 4]]);
        }
        let slot = decode(&w);
        let field = |at: u32| (slot.packed >> at) & 3;
        if field(REGION_AT) > 2 || field(PROVIDER_AT) > 2 || slot.dead() {
            return None;
        }
        Some(SavedDecided {
            key: reduced_of(b[0], b[1], slot.fp),
            slot,
        })
    }
}

/// Where a state-log replay keeps an operation's place in a [`SavedDecided`]'s key while it
/// sorts them ([`last_of_each`]): 48 of the bits [`reduced_key`] leaves out.
const PLACE_AT: u32 = 72;
const PLACE_BITS: u32 = 48;

impl SavedDecided {
    /// This record as operation `place` of a state-log replay (see [`last_of_each`]).
    pub fn at_place(self, place: u64) -> SavedDecided {
        SavedDecided {
            key: self.key | placed(place),
            slot: self.slot,
        }
    }

    /// Operation `place` of a state-log replay that undoes any compact record of `key`'s
    /// reduced key: the key was written whole, or removed, after it.
    pub fn undone(key: u128, place: u64) -> SavedDecided {
        SavedDecided {
            key: reduced_key(key) | placed(place),
            slot: Slot {
                packed: DEAD << FLAGS_AT,
                ..Slot::default()
            },
        }
    }
}

fn placed(place: u64) -> u128 {
    ((place & ((1 << PLACE_BITS) - 1)) as u128) << PLACE_AT
}

/// A state-log replay's compact records and undoings ([`SavedDecided::at_place`],
/// [`SavedDecided::undone`]) to what they lead to: for each reduced key its last operation if
/// that is a record, in key order. Sorted and compacted in place: a national partition's log
/// holds tens of millions of them, and a hash map of them cost a restore more than twice their
/// memory, most of it fresh pages the kernel had to zero.
pub fn last_of_each(ops: &mut Vec<SavedDecided>) {
    let mask = !(((1u128 << PLACE_BITS) - 1) << PLACE_AT);
    ops.sort_unstable_by_key(|d| (d.key & mask, d.key >> PLACE_AT));
    let mut kept = 0;
    for i in 0..ops.len() {
        let key = ops[i].key & mask;
        let last = ops.get(i + 1).is_none_or(|n| n.key & mask != key);
        if last && !ops[i].slot.dead() {
            ops[kept] = SavedDecided {
                key,
                slot: ops[i].slot,
            };
            kept += 1;
        }
    }
    ops.truncate(kept);
}

/// The tag of a key in its group: 7 bits of the key the stored 64 do not hold, high bit set.
#[inline]
fn tag(key: u128) -> u8 {
    0x80 | ((key >> 64) as u8 & 0x7f)
}

#[inline]
fn shard_of(key: u128) -> usize {
    (key >> (128 - SHARD_BITS)) as usize
}

/// The group a key's search starts at, of `groups`.
#[inline]
fn home(fp: u64, groups: usize) -> usize {
    ((fp as u128 * groups as u128) >> 64) as usize
}

/// Arrays of a shard from this size up are mapped from the kernel rather than allocated.
const MAP_FROM_BYTES: usize = 1 << 18;

/// A shard's array of words: on the heap while small; mapped from the kernel once large, so that
/// what a growth frees goes back to the kernel at once. (mimalloc keeps large freed blocks
/// resident for a while, and a shard growing by quarters frees four times its size over its
/// life: about 10 bytes a record at national scale, BENCHMARKS.md.)
enum Words<T> {
    Heap(Vec<T>),
    Mapped(memmap2::MmapMut),
}

impl<T> Default for Words<T> {
    fn default() -> Words<T> {
        Words::Heap(Vec::new())
    }
}

impl<T: bytemuck::Pod> std::fmt::Debug for Words<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} words", self.get().len())
    }
}

impl<T: bytemuck::Pod> Words<T> {
    /// `n` zero words.
    fn zeroed(n: usize) -> Words<T> {
        let bytes = n * std::mem::size_of::<T>();
        if bytes >= MAP_FROM_BYTES
            && let Ok(m) = memmap2::MmapMut::map_anon(bytes)
        {
            return Words::Mapped(m);
        }
        Words::Heap(vec![T::zeroed(); n])
    }

    #[inline]
    fn get(&self) -> &[T] {
        match self {
            Words::Heap(v) => v,
            // A mapping is page-aligned and its length a multiple of the word: the cast cannot
            // fail.
            Words::Mapped(m) => bytemuck::cast_slice(&m[..]),
        }
    }

    #[inline]
    fn get_mut(&mut self) -> &mut [T] {
        match self {
            Words::Heap(v) => v,
            Words::Mapped(m) => bytemuck::cast_slice_mut(&mut m[..]),
        }
    }
}

/// 32-bit words of a stored [`Slot`]: key 64 bits; position 56, `at` 42 and final response 30
/// in four; the rest of `packed` in one; acknowledgement and user in one.
const SLOT_WORDS: usize = 8;
/// Bytes a slot takes, its tag included.
const SLOT_BYTES: usize = SLOT_WORDS * 4 + 1;
// The middle four words hold position, `at` and final response exactly; the last, the rest.
const _: () = assert!(POS_BITS + AT_MS_BITS + FIN_STORED_BITS == 128);
const _: () = assert!(FLAGS_AT + 3 == 64 && FIN_BITS == 32);

/// A slot's stored words ([`SLOT_WORDS`]): key, then position, `at` and final response in
/// four words, then the rest of `packed`. `Slot::of` let in only what these fields hold.
#[inline]
fn encode(s: &Slot) -> [u32; SLOT_WORDS] {
    let fin = s.packed & ((1 << FIN_BITS) - 1);
    let mid = s.pos as u128
        | ((s.at / NANOS_PER_MS) as u128) << POS_BITS
        | (fin as u128) << (POS_BITS + AT_MS_BITS);
    [
        s.fp as u32,
        (s.fp >> 32) as u32,
        mid as u32,
        (mid >> 32) as u32,
        (mid >> 64) as u32,
        (mid >> 96) as u32,
        (s.packed >> FIN_BITS) as u32,
        s.extra,
    ]
}

/// A slot back from its words.
#[inline]
fn decode(w: &[u32]) -> Slot {
    let mid = w[2] as u128 | (w[3] as u128) << 32 | (w[4] as u128) << 64 | (w[5] as u128) << 96;
    let at_ms = (mid >> POS_BITS) as u64 & ((1 << AT_MS_BITS) - 1);
    let fin = (mid >> (POS_BITS + AT_MS_BITS)) as u64;
    Slot {
        fp: w[0] as u64 | (w[1] as u64) << 32,
        at: at_ms as i64 * NANOS_PER_MS,
        pos: mid as u64 & ((1 << POS_BITS) - 1),
        packed: fin | (w[6] as u64) << FIN_BITS,
        extra: w[7],
    }
}

#[derive(Debug, Default)]
struct Shard {
    /// Tags, a group per word: 0 empty, else [`tag`].
    tags: Words<u64>,
    /// Slots, [`SLOT_WORDS`] each.
    slots: Words<u32>,
    /// Slots in use (live, expired or dead).
    len: usize,
}

impl Shard {
    fn groups(&self) -> usize {
        self.tags.get().len()
    }

    /// Slots it has room for.
    fn capacity(&self) -> usize {
        self.slots.get().len() / SLOT_WORDS
    }

    #[inline]
    fn fp_at(slots: &[u32], i: usize) -> u64 {
        slots[i * SLOT_WORDS] as u64 | (slots[i * SLOT_WORDS + 1] as u64) << 32
    }

    #[inline]
    fn slot(&self, i: usize) -> Slot {
        let w = &self.slots.get()[i * SLOT_WORDS..(i + 1) * SLOT_WORDS];
        decode(w)
    }

    #[inline]
    fn set_slot(&mut self, i: usize, s: Slot) {
        self.slots.get_mut()[i * SLOT_WORDS..(i + 1) * SLOT_WORDS].copy_from_slice(&encode(&s));
    }

    /// The tag byte of slot `i`.
    fn tag_at(&self, i: usize) -> u8 {
        (self.tags.get()[i / GROUP] >> (i % GROUP * 8)) as u8
    }

    fn find(&self, key: u128) -> Option<usize> {
        let groups = self.groups();
        if groups == 0 {
            return None;
        }
        let (fp, t) = (key as u64, tag(key));
        let want = LO * t as u64;
        let (tags, slots) = (self.tags.get(), self.slots.get());
        let mut g = home(fp, groups);
        loop {
            let word = tags[g];
            let mut m = zero_bytes(word ^ want);
            while m != 0 {
                let i = g * GROUP + (m.trailing_zeros() / 8) as usize;
                if Self::fp_at(slots, i) == fp {
                    return Some(i);
                }
                m &= m - 1;
            }
            if word & HI != HI {
                return None;
            }
            g += 1;
            if g == groups {
                g = 0;
            }
        }
    }

    /// Puts `slot` in the first free place of its probe sequence (the key is not in the shard,
    /// and there is room).
    fn place(&mut self, t: u8, slot: Slot) {
        let groups = self.groups();
        let mut g = home(slot.fp, groups);
        loop {
            let free = !self.tags.get()[g] & HI;
            if free != 0 {
                let b = free.trailing_zeros() / 8;
                self.tags.get_mut()[g] |= (t as u64) << (b * 8);
                self.set_slot(g * GROUP + b as usize, slot);
                self.len += 1;
                return;
            }
            g += 1;
            if g == groups {
                g = 0;
            }
        }
    }

    /// Rebuilds the shard with `groups` groups, keeping the slots `keep` says; the slots
    /// dropped, for the caller's counts.
    fn rebuild(
        &mut self,
        groups: usize,
        mut dropped: impl FnMut(&Slot),
        keep: impl Fn(&Slot) -> bool,
    ) {
        let old = std::mem::replace(
            self,
            Shard {
                tags: Words::zeroed(groups),
                slots: Words::zeroed(groups * GROUP * SLOT_WORDS),
                len: 0,
            },
        );
        for (g, word) in old.tags.get().iter().enumerate() {
            let mut full = word & HI;
            while full != 0 {
                let b = full.trailing_zeros() / 8;
                let s = old.slot(g * GROUP + b as usize);
                if keep(&s) {
                    self.place((word >> (b * 8)) as u8, s);
                } else {
                    dropped(&s);
                }
                full &= full - 1;
            }
        }
    }
}

/// Where a record's expiry is counted.
enum Counted {
    Expired,
    Ring(usize),
    Far,
}

/// Where a record is: shard and slot.
#[derive(Debug, Clone, Copy)]
pub(super) struct At(usize, usize);

/// The table.
#[derive(Debug)]
pub(super) struct DecidedTable {
    shards: Box<[Shard]>,
    /// `at` + this is a record's expiry (the longest deadline and the dedupe horizon).
    span: Dur,
    /// Slots in use.
    len: usize,
    /// Records marked dead.
    dead: usize,
    /// Records in use that have not expired, by expiry second from `base` on: so that the
    /// count of live records is exact, and a sweep starts when it pays.
    ring: VecDeque<u32>,
    /// The second `ring[0]` counts: the watermark's second at the last [`DecidedTable::maintain`].
    base: i64,
    /// Those expiring after the ring's reach, by second.
    far: BTreeMap<i64, u32>,
    /// Records in use that have expired.
    expired: usize,
    /// The next shard a sweep under way rebuilds.
    sweeping: Option<usize>,
    /// Records ever moved out to the pending map (a count the tests read; absent from the
    /// service's build).
    #[cfg(test)]
    moved_out: u64,
}

impl DecidedTable {
    /// An empty table for records that expire `span` after their `at`.
    pub(super) fn new(span: Dur) -> DecidedTable {
        DecidedTable {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            span,
            len: 0,
            dead: 0,
            ring: VecDeque::new(),
            base: i64::MIN,
            far: BTreeMap::new(),
            expired: 0,
            sweeping: None,
            #[cfg(test)]
            moved_out: 0,
        }
    }

    /// The second of a record's expiry.
    #[inline]
    fn expiry_sec(&self, s: &Slot) -> i64 {
        s.expiry_sec(self.span)
    }

    /// A record in use counts while its expiry second is not before `live_from` (the
    /// watermark's second: the correlator's expiry timers release every second that ended at or
    /// before the watermark) and it is not dead.
    #[inline]
    fn live(&self, s: &Slot, live_from: i64) -> bool {
        !s.dead() && self.expiry_sec(s) >= live_from
    }

    /// The live record of `key`.
    #[inline]
    pub(super) fn find(&self, key: u128, live_from: i64) -> Option<At> {
        if self.len == 0 {
            return None;
        }
        let shard = shard_of(key);
        let i = self.shards[shard].find(key)?;
        self.live(&self.shards[shard].slot(i), live_from)
            .then_some(At(shard, i))
    }

    /// The record at `at`.
    pub(super) fn get(&self, at: At) -> Slot {
        self.shards[at.0].slot(at.1)
    }

    /// Replaces the record at `at` with `slot` (same key, same `at`: its expiry is unchanged).
    pub(super) fn set(&mut self, at: At, slot: Slot) {
        self.shards[at.0].set_slot(at.1, slot);
    }

    /// Marks the record at `at` dead: it has moved to the pending map.
    pub(super) fn kill(&mut self, at: At) {
        // Out of the expiry counts (a dead record never expires: it is dead), then dead.
        let mut s = self.shards[at.0].slot(at.1);
        self.forget(&s);
        s.packed |= DEAD << FLAGS_AT;
        self.shards[at.0].set_slot(at.1, s);
        self.dead += 1;
        #[cfg(test)]
        {
            self.moved_out += 1;
        }
    }

    /// Adds the record of `key` (not live in the table: an expired or dead one of the same key
    /// is replaced).
    pub(super) fn insert(&mut self, key: u128, slot: Slot, live_from: i64) {
        let shard = shard_of(key);
        self.count(self.expiry_sec(&slot));
        if let Some(i) = self.shards[shard].find(key) {
            let old = self.shards[shard].slot(i);
            self.forget(&old);
            self.shards[shard].set_slot(i, slot);
            return;
        }
        let s = &self.shards[shard];
        let groups = s.groups();
        if (s.len + 1) * MAX_LOAD.1 > groups * GROUP * MAX_LOAD.0 {
            let grown = (groups * GROWTH.0)
                .div_ceil(GROWTH.1)
                .max(groups + 1)
                // Shards of equal size would all grow at once; a start that differs by shard
                // spreads their growths, so the table as a whole is as full on average.
                .max(1 + shard % 4);
            self.rebuild(shard, grown, live_from);
        }
        self.shards[shard].place(tag(key), slot);
        self.len += 1;
    }

    /// Makes room for `records` more before a restore puts them back: each shard sized once
    /// for its share at four fifths full (a table's average between growths), instead of
    /// growing a quarter at a time through tens of millions of them.
    pub(super) fn reserve(&mut self, records: usize, live_from: i64) {
        let per_shard = (self.len + records).div_ceil(SHARDS);
        let groups = (per_shard * 5).div_ceil(4 * GROUP);
        for i in 0..SHARDS {
            if self.shards[i].groups() < groups {
                self.rebuild(i, groups, live_from);
            }
        }
    }

    /// Adds a record read back from a checkpoint, if it has not expired by `live_from`.
    pub(super) fn restore(&mut self, key: u128, slot: Slot, live_from: i64) {
        if self.live(&slot, live_from) {
            self.insert(key, slot, live_from);
        }
    }

    /// Where the count of second `sec` is: before the ring (expired), its index in the ring,
    /// or beyond it.
    fn place_of(&self, sec: i64) -> Counted {
        if sec < self.base {
            return Counted::Expired;
        }
        match usize::try_from(sec as i128 - self.base as i128) {
            Ok(i) if i < RING_SECONDS => Counted::Ring(i),
            _ => Counted::Far,
        }
    }

    /// Counts a record that expires in second `sec`.
    fn count(&mut self, sec: i64) {
        match self.place_of(sec) {
            // Expired already (inserted in the advance that passes it).
            Counted::Expired => self.expired += 1,
            Counted::Ring(i) => {
                if i >= self.ring.len() {
                    self.ring.resize(i + 1, 0);
                }
                self.ring[i] += 1;
            }
            Counted::Far => *self.far.entry(sec).or_default() += 1,
        }
    }

    /// Takes a record that leaves the table out of the counts.
    fn forget(&mut self, s: &Slot) {
        if s.dead() {
            self.dead -= 1;
            return;
        }
        let sec = self.expiry_sec(s);
        match self.place_of(sec) {
            Counted::Expired => self.expired -= 1,
            Counted::Ring(i) => self.ring[i] -= 1,
            Counted::Far => {
                if let Some(n) = self.far.get_mut(&sec) {
                    *n -= 1;
                }
            }
        }
    }

    /// Rebuilds shard `i` with `groups` groups, dropping its dead and expired records.
    fn rebuild(&mut self, i: usize, groups: usize, live_from: i64) {
        let mut shard = std::mem::take(&mut self.shards[i]);
        let before = shard.len;
        let mut dropped = Vec::new();
        let span = self.span;
        shard.rebuild(
            groups,
            |s| dropped.push(*s),
            |s| !s.dead() && s.expiry_sec(span) >= live_from,
        );
        for s in &dropped {
            self.forget(s);
        }
        self.len -= before - shard.len;
        self.shards[i] = shard;
    }

    /// Moves time to `live_from` (the watermark's second): counts what expired and, once
    /// expired and dead records are a sixteenth of the table, sweeps them out, a few shards per
    /// call.
    pub(super) fn maintain(&mut self, live_from: i64) {
        while self.base < live_from {
            let Some(n) = self.ring.pop_front() else {
                self.base = live_from;
                break;
            };
            self.expired += n as usize;
            self.base += 1;
        }
        // Seconds beyond the ring come into it as it moves, or expire.
        while let Some((&sec, _)) = self.far.first_key_value() {
            match self.place_of(sec) {
                Counted::Far => break,
                Counted::Expired => self.expired += self.far.remove(&sec).unwrap_or(0) as usize,
                Counted::Ring(i) => {
                    let n = self.far.remove(&sec).unwrap_or(0);
                    if i >= self.ring.len() {
                        self.ring.resize(i + 1, 0);
                    }
                    self.ring[i] += n;
                }
            }
        }
        if self.sweeping.is_none()
            && self.len >= SWEEP_MIN
            && (self.expired + self.dead) * SWEEP_SHARE > self.len
        {
            self.sweeping = Some(0);
        }
        let Some(mut next) = self.sweeping else {
            return;
        };
        let mut done = 0;
        while next < SHARDS && done < SWEEP_STEP {
            let shard = &self.shards[next];
            done += shard.capacity();
            let live = (0..shard.capacity())
                .filter(|&i| shard.tag_at(i) & 0x80 != 0 && self.live(&shard.slot(i), live_from))
                .count();
            let groups = (live * SWEPT_LOAD.1).div_ceil(GROUP * SWEPT_LOAD.0);
            self.rebuild(next, groups, live_from);
            next += 1;
        }
        if next == SHARDS {
            self.sweeping = None;
        } else {
            self.sweeping = Some(next);
        }
    }

    /// Every live record, with its reduced key (a snapshot's).
    pub(super) fn live_records(&self, live_from: i64) -> impl Iterator<Item = SavedDecided> + '_ {
        self.shards.iter().enumerate().flat_map(move |(si, shard)| {
            (0..shard.capacity()).filter_map(move |i| {
                let t = shard.tag_at(i);
                let s = shard.slot(i);
                (t & 0x80 != 0 && self.live(&s, live_from)).then_some(SavedDecided {
                    key: reduced_of(si as u8, t, s.fp),
                    slot: s,
                })
            })
        })
    }

    /// Live records.
    pub(super) fn len(&self) -> usize {
        self.len - self.expired - self.dead
    }

    /// Records moved out to the pending map so far.
    #[cfg(test)]
    pub(super) fn dead_total(&self) -> usize {
        self.moved_out as usize
    }

    /// Records that expired in the table so far (for tests of the correlator).
    #[cfg(test)]
    pub(super) fn expired_total(&self) -> usize {
        self.expired
    }

    /// Bytes of the table (capacity, not use).
    pub(super) fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.capacity() * SLOT_BYTES)
            .sum::<usize>()
            + self.ring.capacity() * 4
            + self.far.len() * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::correlate::key_of;

    const SEC: i64 = crate::engine::time::NANOS_PER_SEC;

    fn entry(at_s: i64, fin_ms: Option<i64>) -> Entry {
        Entry {
            at: Ts(at_s * SEC),
            due: Ts(at_s * SEC),
            user: 9,
            ack: 1_234,
            fin_at: fin_ms.map_or(NONE_AT, |ms| at_s * SEC + ms * NANOS_PER_MS),
            pos: Pos::new(3, at_s as u64),
            srv: 17,
            fin_code: 5,
            region: Region::Central,
            provider: Provider::S1sp,
            decided: true,
            flags: 3,
            text: 0,
        }
    }

    #[test]
    fn a_slot_holds_a_decided_record_exactly() {
        for fin in [
            None,
            Some(0),
            Some(1),
            Some(86_400_000),
            Some((1 << FIN_STORED_BITS) - 2),
        ] {
            let mut e = entry(1_709_251_200, fin);
            e.pos = Pos::new(255, (1 << 48) - 1);
            let s = Slot::of(7, &e).unwrap();
            // Stored and read back, every field is what went in, the dead flag too.
            let mut t = DecidedTable::new(Dur::from_secs(1000));
            t.insert(7, s, 0);
            let at = t.find(7, 0).unwrap();
            assert_eq!(t.get(at), s);
            t.kill(at);
            let mut dead = s;
            dead.packed |= DEAD << FLAGS_AT;
            assert_eq!(t.get(at), dead);
            let back = s.entry();
            assert_eq!(
                (
                    back.at,
                    back.fin_at,
                    back.pos,
                    back.srv,
                    back.region,
                    back.provider
                ),
                (e.at, e.fin_at, e.pos, e.srv, e.region, e.provider)
            );
            assert_eq!(back.flags, e.flags);
            if fin.is_some() {
                assert_eq!(back.fin_code, e.fin_code);
            }
        }
        // What does not fit stays out: ns precision, a long delay, large ids, pending, a
        // source past 255, `at` before 1970.
        let mut e = entry(100, Some(5));
        e.fin_at += 1;
        assert!(Slot::of(7, &e).is_none());
        let mut e = entry(100, Some(5));
        e.at.0 += 1;
        e.fin_at += 1;
        assert!(Slot::of(7, &e).is_none());
        assert!(Slot::of(7, &entry(100, Some((1 << FIN_STORED_BITS) - 1))).is_none());
        let mut e = entry(100, None);
        e.pos = Pos::new(256, 0);
        assert!(Slot::of(7, &e).is_none());
        assert!(Slot::of(7, &entry(-1, None)).is_none());
        let mut e = entry(100, None);
        e.srv = 1 << SRV_BITS;
        assert!(Slot::of(7, &e).is_none());
        let mut e = entry(100, None);
        e.decided = false;
        assert!(Slot::of(7, &e).is_none());
    }

    #[test]
    fn records_are_found_until_they_expire_and_sweeps_keep_the_live_ones() {
        let span = Dur::from_secs(1000);
        let mut t = DecidedTable::new(span);
        let n = 200_000i64;
        for i in 0..n {
            let key = key_of(&format!("id-{i}"));
            // One record a tenth of a second: 20,000 s of `at`.
            let e = entry(i / 10, Some(i % 1000));
            t.insert(key, Slot::of(key, &e).unwrap(), i64::MIN);
        }
        assert_eq!(t.len(), n as usize);
        t.maintain(0);
        let bytes = t.heap_bytes() as f64 / n as f64;
        assert!(bytes < 44.0, "{bytes:.1} bytes per record");
        // The watermark's second at 10,000 s: records with `at` before 9,000 s have expired.
        let live_from = 10_000;
        for step in 0..64 {
            t.maintain(live_from + step);
        }
        for i in (0..n).step_by(7) {
            let key = key_of(&format!("id-{i}"));
            let found = t.find(key, live_from + 63).map(|a| t.get(a).entry());
            if i / 10 + 1000 >= live_from + 63 {
                let e = found.unwrap_or_else(|| panic!("id-{i} lost"));
                assert_eq!(e.at, Ts(i / 10 * SEC));
                assert_eq!(e.fin_at, i / 10 * SEC + (i % 1000) * NANOS_PER_MS);
            } else {
                assert!(found.is_none(), "id-{i} should have expired");
            }
        }
        assert!(t.sweeping.is_none(), "the sweep finished");
        let live = (n - (live_from + 63 - 1000) * 10) as usize;
        assert_eq!(t.len(), live);
        // The sweep went shard by shard as time moved: what expired during it may remain, but
        // nothing that had expired when it started.
        assert!(
            t.len - live < 700,
            "{} records in use for {live} live",
            t.len
        );
        assert_eq!(t.len - t.expired - t.dead, live);
        assert!(t.find(key_of("never"), 0).is_none());
    }

    #[test]
    fn a_replay_keeps_each_keys_last_operation_if_it_is_a_record() {
        let k = |i: u32| key_of(&format!("id-{i}"));
        let rec = |i: u32, at: i64| {
            let e = entry(at, Some(at + 5));
            SavedDecided::new(k(i), Slot::of(k(i), &e).unwrap())
        };
        // In log order: 1 decided twice (the second wins), 2 decided then undone, 3 undone
        // then decided, 4 undone only, 5 decided once; 6 decided, undone, decided again.
        let log = [
            Ok(rec(1, 10)),
            Ok(rec(2, 20)),
            Err(3),
            Ok(rec(6, 60)),
            Err(4),
            Ok(rec(5, 50)),
            Err(2),
            Ok(rec(1, 11)),
            Ok(rec(3, 30)),
            Err(6),
            Ok(rec(6, 61)),
        ];
        let mut ops: Vec<SavedDecided> = log
            .iter()
            .enumerate()
            .map(|(place, op)| match op {
                Ok(d) => d.at_place(place as u64),
                Err(i) => SavedDecided::undone(k(*i), place as u64),
            })
            .collect();
        last_of_each(&mut ops);
        let mut want = vec![rec(1, 11), rec(3, 30), rec(5, 50), rec(6, 61)];
        want.sort_unstable_by_key(SavedDecided::key);
        assert_eq!(ops, want);
        // Places past what they can hold wrap, never reach the key's own bits.
        let far = rec(7, 70).at_place(u64::MAX);
        let mut one = vec![far];
        last_of_each(&mut one);
        assert_eq!(one, vec![rec(7, 70)]);
    }

    #[test]
    fn saved_records_come_back_by_their_reduced_keys_and_expired_ones_stay_out() {
        let span = Dur::from_secs(1000);
        let mut t = DecidedTable::new(span);
        let keys: Vec<u128> = (0..5_000).map(|i| key_of(&format!("id-{i}"))).collect();
        for (i, &k) in keys.iter().enumerate() {
            let e = entry(i as i64, Some(i as i64 % 900));
            t.insert(k, Slot::of(k, &e).unwrap(), 0);
        }
        // Records with `at` before 500 s have expired at 1,500 s.
        let live_from = 1_500;
        t.maintain(live_from);
        let saved: Vec<SavedDecided> = t.live_records(live_from).collect();
        assert_eq!(saved.len(), 4_500);
        let mut back = DecidedTable::new(span);
        back.maintain(live_from - 100);
        back.reserve(saved.len(), live_from - 100);
        let sized: Vec<usize> = back.shards.iter().map(Shard::groups).collect();
        for d in &saved {
            let again = SavedDecided::from_bytes(&d.to_bytes()).unwrap();
            assert_eq!(again, *d);
            assert_eq!(again.key(), reduced_key(again.key()));
            back.restore(again.key(), again.slot(), live_from - 100);
        }
        // Sized once: a shard grew while the records came back only if its share passed the
        // room reserved for it (a few do, with 18 records a shard on average here).
        for (shard, &groups) in back.shards.iter().zip(&sized) {
            assert!(groups >= 3);
            let full = shard.len * MAX_LOAD.1 > groups * GROUP * MAX_LOAD.0;
            assert_eq!(shard.groups() != groups, full, "{} records", shard.len);
        }
        // Restored as of an earlier second, then moved on: the same live records, found by
        // their whole keys.
        back.maintain(live_from);
        assert_eq!(back.len(), 4_500);
        for (i, &k) in keys.iter().enumerate() {
            let found = back.find(k, live_from).map(|a| back.get(a));
            assert_eq!(found.is_some(), i >= 500, "id-{i}");
            if let Some(s) = found {
                assert_eq!(s, t.get(t.find(k, live_from).unwrap()));
            }
        }
        // What expired by the restore's second is not put back.
        let mut late = DecidedTable::new(span);
        late.maintain(live_from + 1);
        for d in &saved {
            late.restore(d.key(), d.slot(), live_from + 1);
        }
        assert_eq!(late.len(), 4_499);
        // Bytes that cannot be a record are refused.
        let mut b = saved[0].to_bytes();
        b[1] |= 0x80;
        assert!(SavedDecided::from_bytes(&b).is_none());
        assert!(SavedDecided::from_bytes(&b[..29]).is_none());
    }

    #[test]
    fn a_dead_record_is_not_found_and_its_key_can_come_back() {
        let mut t = DecidedTable::new(Dur::from_secs(1000));
        let key = key_of("a");
        let s = Slot::of(key, &entry(10, None)).unwrap();
        t.insert(key, s, 0);
        let at = t.find(key, 0).unwrap();
        t.kill(at);
        assert!(t.find(key, 0).is_none());
        assert_eq!(t.len(), 0);
        t.insert(key, s, 0);
        assert_eq!(t.get(t.find(key, 0).unwrap()), s);
        assert_eq!((t.len(), t.dead), (1, 0));
    }
}
