//! What the correlator takes (a [`Req`], a [`Resp`]) and what it gives: a [`Verdict`] per event
//! and [`Output`]s (decisions with their evidence text, revisions, stored dead letters).

use crate::engine::domain::{Provider, Region};
use crate::engine::event::DeadReason;
use crate::engine::time::Ts;

use super::key::Pos;

/// A request's final state, as the aggregates need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Request `at`: when it was received.
    pub at: Ts,
    /// When it was due to run: `at`, or a future-dated request's `execute_at`. Its TRT and
    /// deadline run from here, and its month is this one's.
    pub due: Ts,
    /// Its first acknowledgement, as whole ms after `at`, if it had one.
    pub ack_ms: Option<u32>,
    /// Interned service user ([`crate::engine::catalog::Catalog::user`]; 0: none).
    pub user: u32,
    /// Interned SRV.
    pub srv: u32,
    /// Region.
    pub region: Region,
    /// Provider.
    pub provider: Provider,
    /// The final response (`at`, interned code), if any.
    pub fin: Option<(Ts, u32)>,
    /// The low 64 bits of the id's key: what failure-bucket samples are ordered by.
    pub key: u64,
}

impl Decision {
    /// Whether it was future-dated (due later than it came).
    #[inline]
    pub fn future_dated(&self) -> bool {
        self.due > self.at
    }
}

/// A request's evidence text, `id␟user␟device` (unit separators; absent fields empty), kept
/// from its arrival to its decision so a miss can be shown by id to the people who fix it.
pub type Evidence = Box<str>;

/// Packs a request's evidence text.
pub fn evidence_text(id: &str, user: Option<&str>, device: Option<&str>) -> Evidence {
    let (u, d) = (user.unwrap_or(""), device.unwrap_or(""));
    let mut s = String::with_capacity(id.len() + u.len() + d.len() + 2);
    s.push_str(id);
    s.push('\u{1f}');
    s.push_str(u);
    s.push('\u{1f}');
    s.push_str(d);
    s.into_boxed_str()
}

/// An evidence text back into its id, user and device (absent fields empty): the reader of
/// [`evidence_text`]'s packing.
pub(crate) fn evidence_parts(text: &str) -> (&str, &str, &str) {
    let mut parts = text.split('\u{1f}');
    (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    )
}

/// A stored event the correlator dead-letters (its raw text, or a canonical reconstruction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDead {
    /// Why.
    pub reason: DeadReason,
    /// Where it came from.
    pub pos: Pos,
    /// The event's bytes.
    pub raw: Box<[u8]>,
    /// A stored request displaced by an earlier conflicting one: `raw` was rebuilt from its
    /// fields (the original bytes were not kept), and its line was counted when it arrived.
    pub displaced: Option<Displaced>,
    /// Whether it was a request (else a response).
    pub is_request: bool,
}

/// How a displaced request's line was counted when it arrived, so that it can leave that result
/// for `dead_letter`: `late` if it arrived behind the watermark, else `unmeasured` if no measure
/// selects it, else `accepted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Displaced {
    /// It arrived behind the watermark.
    pub late: bool,
    /// A measure selects it.
    pub measured: bool,
}

/// What happened, for the aggregates and the dead-letter sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A request was decided: count it (with its evidence text, when it was kept).
    Decided(Decision, Option<Evidence>),
    /// A decided request changed: take `old` out and put `new` in. Boxed: revisions are rare,
    /// and two decisions inline would make every output twice the size to move.
    Revised(Box<Revision>),
    /// An event the correlator had stored is a dead letter.
    Dead(StoredDead),
    /// A waiting response was settled when its request came (it was not counted on arrival).
    Settled {
        /// Its verdict.
        verdict: Verdict,
        /// It was behind the watermark when it arrived.
        behind: bool,
    },
}

/// A decided request's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// As it was counted.
    pub old: Decision,
    /// As it now counts.
    pub new: Decision,
}

/// The fate of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Applied.
    Accepted,
    /// Changed nothing: a copy of a request, or a second final response.
    Duplicate,
    /// Stored until its request comes; settled later by an [`Output::Settled`] or `Dead`.
    Waiting,
    /// A dead letter, for this reason.
    Dead(DeadReason),
}

/// A request as the correlator takes it.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    /// Key of the id.
    pub key: u128,
    /// Interned SRV.
    pub srv: u32,
    /// Region.
    pub region: Region,
    /// Provider.
    pub provider: Provider,
    /// When.
    pub at: Ts,
    /// When it is due to run: `at`, or a later `execute_at`.
    pub due: Ts,
    /// Interned service user (0: none).
    pub user: u32,
    /// Where from.
    pub pos: Pos,
}

/// A response as the correlator takes it.
#[derive(Debug, Clone, Copy)]
pub struct Resp {
    /// Key of the id.
    pub key: u128,
    /// Interned code.
    pub code: u32,
    /// When.
    pub at: Ts,
    /// Where from.
    pub pos: Pos,
}
