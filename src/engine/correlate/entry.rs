//! The correlator's records, a leaf every other room of `correlate` builds on: a request's
//! [`Entry`] and a waiting response's [`Waiting`], their flags, and the forms a checkpoint
//! stores them in ([`SavedEntry`], [`SavedWaiting`]) with the one conversion each way.

use crate::engine::domain::{Provider, Region};
use crate::engine::time::Ts;

use super::interface::{Decision, Evidence};
use super::key::Pos;

pub(super) const NONE_AT: i64 = i64::MIN;

/// Correlation state of one request id.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) at: Ts,
    /// When it is due to run: `at`, or a future-dated request's later `execute_at`.
    pub(super) due: Ts,
    /// Final response `at`, or `NONE_AT`.
    pub(super) fin_at: i64,
    pub(super) pos: Pos,
    pub(super) srv: u32,
    pub(super) fin_code: u32,
    /// Interned service user (0: none).
    pub(super) user: u32,
    /// First acknowledgement: 0 none, else 1 + whole ms after `at` ([`ack_code`]).
    pub(super) ack: u32,
    pub(super) region: Region,
    pub(super) provider: Provider,
    pub(super) decided: bool,
    /// [`STORED`], [`LATE`] and [`LISTED`]: one byte, so that the entry stays 56 bytes.
    pub(super) flags: u8,
    /// Slot + 1 of the request's evidence text in [`Correlator::texts`] (0: none). Fits in
    /// what would otherwise be padding: the entry stays 56 bytes.
    pub(super) text: u32,
}

// A pending request's record (a decided one moves to the compact table): 40 bytes until the
// due time, user and acknowledgement joined it (issue 32); pending requests are a small part of
// the state against the decided ones' horizon (BENCHMARKS.md).
const _: () = assert!(std::mem::size_of::<Entry>() == 56);

/// [`Entry::ack`] for an acknowledgement at `ack` of a request at `at` (`ack` ≥ `at`): 1 + whole
/// ms between them, saturating (49 days, beyond any horizon).
pub(super) fn ack_code(ack: Ts, at: Ts) -> u32 {
    let ms = ack.since(at).as_millis_floor().max(0);
    u32::try_from(ms.saturating_add(1)).unwrap_or(u32::MAX)
}

/// [`Entry::flags`]: a checkpoint has written this record, so removing it must delete it from
/// the store too. (A record created and expired between two checkpoints never reaches the
/// store.)
pub(super) const STORED: u8 = 1;

/// [`Entry::flags`]: listed among the records changed since the last checkpoint (the tracker's
/// list holds each key once while this is set). Never kept compactly: a record leaving the map
/// is written down as it leaves.
pub(super) const LISTED: u8 = 4;

/// [`Entry::flags`]: the request arrived behind the watermark, so its line was counted `late`.
/// Kept so that, displaced by an earlier conflicting request, the line leaves that result for
/// `dead_letter` (each event has exactly one result).
pub(super) const LATE: u8 = 2;

impl Entry {
    pub(super) fn decision(&self, key: u128) -> Decision {
        Decision {
            at: self.at,
            due: self.due,
            ack_ms: self.ack.checked_sub(1),
            user: self.user,
            srv: self.srv,
            region: self.region,
            provider: self.provider,
            fin: (self.fin_at != NONE_AT).then_some((Ts(self.fin_at), self.fin_code)),
            key: key as u64,
        }
    }
}

/// A response waiting for its request.
#[derive(Debug)]
pub(super) struct Waiting {
    pub(super) at: Ts,
    pub(super) code: u32,
    pub(super) pos: Pos,
    pub(super) behind: bool,
    pub(super) raw: Box<[u8]>,
}

impl Entry {
    /// The form a checkpoint stores.
    pub(super) fn saved(&self) -> SavedEntry {
        SavedEntry {
            at: self.at.0,
            due: self.due.0,
            user: self.user,
            ack: self.ack,
            fin_at: (self.fin_at != NONE_AT).then_some(self.fin_at),
            pos: self.pos.0,
            srv: self.srv,
            fin_code: self.fin_code,
            region: self.region,
            provider: self.provider,
            decided: self.decided,
            late: self.flags & LATE != 0,
        }
    }

    /// The record a checkpoint's form restores: written by that checkpoint, so `STORED`; its
    /// evidence text (if any) is put back apart.
    pub(super) fn restored(s: &SavedEntry) -> Entry {
        Entry {
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
        }
    }
}

impl Waiting {
    /// The form a checkpoint stores.
    pub(super) fn saved(&self) -> SavedWaiting {
        SavedWaiting {
            at: self.at.0,
            code: self.code,
            pos: self.pos.0,
            behind: self.behind,
            raw: self.raw.clone(),
        }
    }

    /// The response a checkpoint's form restores.
    pub(super) fn restored(w: SavedWaiting) -> Waiting {
        Waiting {
            at: Ts(w.at),
            code: w.code,
            pos: Pos(w.pos),
            behind: w.behind,
            raw: w.raw,
        }
    }
}

/// A record's evidence text, if it keeps one.
pub(super) fn text_of<'a>(texts: &'a [Option<Evidence>], e: &Entry) -> Option<&'a Evidence> {
    let i = e.text.checked_sub(1)?;
    texts.get(i as usize)?.as_ref()
}

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
