//! Decoding and validation of one SRV event (SPEC §1–§2), and the dead-letter reasons.
//!
//! Validation runs in the SPEC's order and the first failure is the reason: `oversized`,
//! `malformed_json`, `unknown_type`, `missing_field`, `bad_timestamp`, `unknown_region`,
//! `unknown_provider`; for an availability event (issue 30) `bad_state` after `bad_timestamp`
//! (its interface is checked against the definitions by the pipeline: `unknown_interface`). Decoding borrows from the input line wherever it can (no allocation for
//! an ordinary event).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::engine::availability::State;
use crate::engine::domain::{Provider, Region};
use crate::engine::time::{Dur, Ts, parse_rfc3339};

/// The longest accepted `id`, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 128;

/// Why an event was dead-lettered. The wire names (`as_str`) are normative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeadReason {
    /// Over `max_event_bytes`, or an `id` over 128 bytes.
    Oversized,
    /// Not JSON, not an object, not UTF-8, or a null Kafka value.
    MalformedJson,
    /// `type` is a string other than `request` or `response`.
    UnknownType,
    /// A required field is absent, null, empty or of the wrong type.
    MissingField,
    /// `at` is not an RFC 3339 timestamp with an offset.
    BadTimestamp,
    /// `region` is not north, central or south.
    UnknownRegion,
    /// `provider` is not dsp, s1sp or csp.
    UnknownProvider,
    /// (`run`) more than `max_future_skew` ahead of the wall clock.
    FutureTimestamp,
    /// (`run`) on a partition its key does not hash to.
    WrongPartition,
    /// A response stamped before its request.
    ResponseBeforeRequest,
    /// A request whose id was seen with other fields, and which does not stand.
    ConflictingRequest,
    /// A response whose request never came within `orphan_wait`.
    OrphanResponse,
    /// Older than the dedupe horizon: nothing is left to apply it to.
    TooLate,
    /// An availability event's `state` is not `up` or `down`.
    BadState,
    /// An availability event's `interface` is not a configured interface.
    UnknownInterface,
}

impl DeadReason {
    /// Every reason, in SPEC order.
    pub const ALL: [DeadReason; DeadReason::COUNT] = [
        DeadReason::Oversized,
        DeadReason::MalformedJson,
        DeadReason::UnknownType,
        DeadReason::MissingField,
        DeadReason::BadTimestamp,
        DeadReason::UnknownRegion,
        DeadReason::UnknownProvider,
        DeadReason::FutureTimestamp,
        DeadReason::WrongPartition,
        DeadReason::ResponseBeforeRequest,
        DeadReason::ConflictingRequest,
        DeadReason::OrphanResponse,
        DeadReason::TooLate,
        DeadReason::BadState,
        DeadReason::UnknownInterface,
    ];

    /// How many reasons there are.
    pub const COUNT: usize = 15;

    /// The wire name (`malformed_json`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Oversized => "oversized",
            DeadReason::MalformedJson => "malformed_json",
            DeadReason::UnknownType => "unknown_type",
            DeadReason::MissingField => "missing_field",
            DeadReason::BadTimestamp => "bad_timestamp",
            DeadReason::UnknownRegion => "unknown_region",
            DeadReason::UnknownProvider => "unknown_provider",
            DeadReason::FutureTimestamp => "future_timestamp",
            DeadReason::WrongPartition => "wrong_partition",
            DeadReason::ResponseBeforeRequest => "response_before_request",
            DeadReason::ConflictingRequest => "conflicting_request",
            DeadReason::OrphanResponse => "orphan_response",
            DeadReason::TooLate => "too_late",
            DeadReason::BadState => "bad_state",
            DeadReason::UnknownInterface => "unknown_interface",
        }
    }

    /// Position in [`DeadReason::ALL`], for counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// DUIS Request ID.
    pub id: Cow<'a, str>,
    /// Service Reference Variant.
    pub srv: Cow<'a, str>,
    /// CSP region.
    pub region: Region,
    /// Carrier.
    pub provider: Provider,
    /// When the request was received.
    pub at: Ts,
    /// When it is to be executed, if later than `at` (a future-dated request: its TRT, its
    /// deadline and its month run from here). Never earlier than `at` nor more than
    /// [`MAX_EXECUTE_AHEAD`] after it (else the event is `bad_timestamp`).
    pub execute_at: Option<Ts>,
    /// The service user, if given (evidence, and `users.csv`).
    pub user: Option<Cow<'a, str>>,
    /// The device, if given (kept for evidence only).
    pub device: Option<Cow<'a, str>>,
}

/// A valid response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    /// DUIS Request ID of the request answered.
    pub id: Cow<'a, str>,
    /// DUIS response code.
    pub code: Cow<'a, str>,
    /// When the response was sent.
    pub at: Ts,
}

/// A valid availability event (issue 30): an interface went down or came back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability<'a> {
    /// The interface's id (`DUIS`); the pipeline checks it against the definitions.
    pub interface: Cow<'a, str>,
    /// Up or down from `at` on.
    pub state: State,
    /// When.
    pub at: Ts,
    /// The incident reference, if given (kept for the record only).
    pub incident: Option<Cow<'a, str>>,
}

/// A valid event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A Service Request.
    Request(Request<'a>),
    /// A Service Response (acknowledgement or final).
    Response(Response<'a>),
    /// An interface's change of state.
    Availability(Availability<'a>),
}

impl Event<'_> {
    /// The event's `at`.
    pub fn at(&self) -> Ts {
        match self {
            Event::Request(r) => r.at,
            Event::Response(r) => r.at,
            Event::Availability(a) => a.at,
        }
    }

    /// The event's `id` (an availability event's interface: what it is keyed by).
    pub fn id(&self) -> &str {
        match self {
            Event::Request(r) => &r.id,
            Event::Response(r) => &r.id,
            Event::Availability(a) => &a.interface,
        }
    }
}

/// A JSON value as far as validation cares: absent, null, a string, or anything else.
#[derive(Debug, Default)]
enum Loose<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Loose<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Str(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Null)
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Loose::deserialize(d)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'a> Loose<'a> {
    /// The value if it is a non-empty string.
    fn take_str(&mut self) -> Option<Cow<'a, str>> {
        match std::mem::take(self) {
            Loose::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
}

/// The fields validation reads; unknown fields are skipped by serde (still syntax-checked).
#[derive(Deserialize, Default)]
struct Wire<'a> {
    #[serde(rename = "type", default, borrow)]
    ty: Loose<'a>,
    #[serde(default, borrow)]
    id: Loose<'a>,
    #[serde(default, borrow)]
    at: Loose<'a>,
    #[serde(default, borrow)]
    srv: Loose<'a>,
    #[serde(default, borrow)]
    region: Loose<'a>,
    #[serde(default, borrow)]
    provider: Loose<'a>,
    #[serde(default, borrow)]
    code: Loose<'a>,
    #[serde(default, borrow)]
    user: Loose<'a>,
    #[serde(default, borrow)]
    device: Loose<'a>,
    #[serde(default, borrow)]
    interface: Loose<'a>,
    #[serde(default, borrow)]
    state: Loose<'a>,
    #[serde(default, borrow)]
    incident: Loose<'a>,
    #[serde(default, borrow)]
    execute_at: Loose<'a>,
    /// Sink for unknown keys in the fast path (serde skips them itself).
    #[serde(skip)]
    other: Loose<'a>,
}

/// Most quotes an event line may have for the fast path (32 strings); more falls back.
const MAX_QUOTES: usize = 64;

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const ONES: u64 = 0x0101_0101_0101_0101;

/// High bit set in exactly the bytes of `x` that are zero (no false positives, unlike the
/// borrow-based trick, so every set bit is a real match).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LO7).wrapping_add(LO7)) | x | LO7)
}

/// The positions of every `"` in `raw`, if the line has no backslash, no control byte and at most
/// [`MAX_QUOTES`] quotes.
#[inline]
fn quote_positions(raw: &[u8], out: &mut [u32; MAX_QUOTES]) -> Option<usize> {
    // Backslashes and control bytes first, in one branch-free pass the compiler vectorises
    // (about a third faster than testing for them word by word beside the quotes).
    let bad = raw
        .iter()
        .fold(0u8, |acc, &b| acc | u8::from((b < 0x20) | (b == b'\\')));
    if bad != 0 {
        return None;
    }
    // Then the quotes, eight bytes at a time.
    let mut n = 0usize;
    let mut scan = |word: u64, base: usize, n: &mut usize| -> bool {
        let mut q = zero_bytes(word ^ (ONES * b'"' as u64));
        while q != 0 {
            if *n == MAX_QUOTES {
                return false;
            }
            out[*n] = (base + (q.trailing_zeros() / 8) as usize) as u32;
            *n += 1;
            q &= q - 1;
        }
        true
    };
    let mut chunks = raw.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        if !scan(word, base, &mut n) {
            return None;
        }
        base += 8;
    }
    // The tail, padded with spaces (not a quote).
    let mut tail = [b' '; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    if !scan(u64::from_le_bytes(tail), base, &mut n) {
        return None;
    }
    Some(n)
}

/// The fast path: a flat object whose values are all strings without escapes or control
/// characters, in valid UTF-8, no known key twice — what every well-formed event looks like.
/// Returns `None` for anything else, and the caller falls back to serde_json, so the two paths
/// accept and reject exactly the same lines (a property test holds them to it).
///
/// One word-at-a-time pass finds every quote and proves there is no backslash or control byte;
/// after it every `"` delimits a string, so the object is walked quote to quote.
fn scan_flat(raw: &[u8]) -> Option<Wire<'_>> {
    let mut quotes = [0u32; MAX_QUOTES];
    let nq = quote_positions(raw, &mut quotes)?;
    if nq == 0 || nq % 4 != 0 {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    // Between tokens only spaces are left (tabs and line ends were rejected above).
    let only = |gap: &[u8], sep: u8| {
        let mut seen = false;
        for &c in gap {
            if c == sep && !seen {
                seen = true;
            } else if c != b' ' {
                return false;
            }
        }
        seen
    };
    let mut w = Wire::default();
    let mut seen = 0u16;
    let mut prev_end = 0usize; // just past the last closing quote
    for (i, q) in quotes[..nq].chunks_exact(4).enumerate() {
        let (ks, ke, vs, ve) = (q[0] as usize, q[1] as usize, q[2] as usize, q[3] as usize);
        if !only(&raw[prev_end..ks], if i == 0 { b'{' } else { b',' })
            || !only(&raw[ke + 1..vs], b':')
        {
            return None;
        }
        let value = Loose::Str(Cow::Borrowed(&text[vs + 1..ve]));
        let (slot, bit) = match &raw[ks + 1..ke] {
            b"type" => (&mut w.ty, 1),
            b"id" => (&mut w.id, 2),
            b"at" => (&mut w.at, 4),
            b"srv" => (&mut w.srv, 8),
            b"region" => (&mut w.region, 16),
            b"provider" => (&mut w.provider, 32),
            b"code" => (&mut w.code, 64),
            b"user" => (&mut w.user, 128),
            b"device" => (&mut w.device, 256),
            b"interface" => (&mut w.interface, 512),
            b"state" => (&mut w.state, 1024),
            b"incident" => (&mut w.incident, 2048),
            b"execute_at" => (&mut w.execute_at, 4096),
            _ => (&mut w.other, 0),
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        *slot = value;
        prev_end = ve + 1;
    }
    // What follows the last value must be `}` and spaces.
    only(&raw[prev_end..], b'}').then_some(w)
}

/// The general path: serde_json over the whole line.
fn parse_json(raw: &[u8]) -> Result<Wire<'_>, DeadReason> {
    // serde would read a JSON array positionally into the struct: insist on an object.
    match raw.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        _ => return Err(DeadReason::MalformedJson),
    }
    serde_json::from_slice(raw).map_err(|_| DeadReason::MalformedJson)
}

/// What is wrong with a `missing_field` event, in words naming the field and what was found
/// (`` `at` is a number, not a string ``): read again from its bytes, only for a dead letter.
pub(crate) fn missing_field_detail(raw: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    let o = v.as_object()?;
    let found = |k: &str| -> Option<String> {
        let what = match o.get(k) {
            None => "absent",
            Some(serde_json::Value::Null) => "null",
            Some(serde_json::Value::String(s)) if s.is_empty() => "empty",
            Some(serde_json::Value::String(_)) => return None,
            Some(serde_json::Value::Number(_)) => "a number, not a string",
            Some(serde_json::Value::Bool(_)) => "a boolean, not a string",
            Some(serde_json::Value::Array(_)) => "an array, not a string",
            Some(serde_json::Value::Object(_)) => "an object, not a string",
        };
        Some(format!("`{k}` is {what}"))
    };
    if let Some(p) = found("type") {
        return Some(p);
    }
    let fields: &[&str] = match o.get("type").and_then(|t| t.as_str()) {
        Some("request") => &["id", "at", "srv", "region", "provider"],
        Some("response") => &["id", "at", "code"],
        Some("availability") => &["interface", "state", "at"],
        _ => return None,
    };
    fields.iter().find_map(|k| found(k))
}

/// Decodes and validates one event (a line without its terminator, or a message value).
pub fn decode(raw: &[u8], max_event_bytes: usize) -> Result<Event<'_>, DeadReason> {
    if raw.len() > max_event_bytes {
        return Err(DeadReason::Oversized);
    }
    let w = match scan_flat(raw) {
        Some(w) => w,
        None => parse_json(raw)?,
    };
    validate(w)
}

/// [`decode`] without the fast path (for the equivalence test and the parse benchmark).
#[doc(hidden)]
pub fn decode_with_serde_only(raw: &[u8], max_event_bytes: usize) -> Result<Event<'_>, DeadReason> {
    if raw.len() > max_event_bytes {
        return Err(DeadReason::Oversized);
    }
    validate(parse_json(raw)?)
}

fn validate(mut w: Wire<'_>) -> Result<Event<'_>, DeadReason> {
    if let Loose::Str(id) = &w.id
        && id.len() > MAX_ID_BYTES
    {
        return Err(DeadReason::Oversized);
    }
    let is_request = match &w.ty {
        Loose::Str(t) if t == "request" => true,
        Loose::Str(t) if t == "response" => false,
        Loose::Str(t) if t == "availability" => return availability(w),
        Loose::Str(t) if !t.is_empty() => return Err(DeadReason::UnknownType),
        _ => return Err(DeadReason::MissingField),
    };
    let id = w.id.take_str().ok_or(DeadReason::MissingField)?;
    let at = w.at.take_str().ok_or(DeadReason::MissingField)?;
    if is_request {
        let srv = w.srv.take_str().ok_or(DeadReason::MissingField)?;
        let region = w.region.take_str().ok_or(DeadReason::MissingField)?;
        let provider = w.provider.take_str().ok_or(DeadReason::MissingField)?;
        let at = parse_rfc3339(at.as_bytes()).ok_or(DeadReason::BadTimestamp)?;
        let execute_at = execute_at(&mut w.execute_at, at)?;
        let region = Region::parse(&region).ok_or(DeadReason::UnknownRegion)?;
        let provider = Provider::parse(&provider).ok_or(DeadReason::UnknownProvider)?;
        Ok(Event::Request(Request {
            id,
            srv,
            region,
            provider,
            at,
            execute_at,
            user: w.user.take_str(),
            device: w.device.take_str(),
        }))
    } else {
        let code = w.code.take_str().ok_or(DeadReason::MissingField)?;
        let at = parse_rfc3339(at.as_bytes()).ok_or(DeadReason::BadTimestamp)?;
        Ok(Event::Response(Response { id, code, at }))
    }
}

/// The furthest a request's `execute_at` may lie after its `at` (SEC future-dated requests are
/// scheduled days ahead, not months): 31 days.
pub const MAX_EXECUTE_AHEAD: Dur = Dur::from_secs(31 * 86_400);

/// A request's `execute_at`: absent, null or empty is none; equal to `at` is none (on demand);
/// anything but an RFC 3339 string, earlier than `at`, or more than [`MAX_EXECUTE_AHEAD`] after
/// it is `bad_timestamp`.
fn execute_at(v: &mut Loose<'_>, at: Ts) -> Result<Option<Ts>, DeadReason> {
    match std::mem::take(v) {
        Loose::Absent | Loose::Null => Ok(None),
        Loose::Str(s) if s.is_empty() => Ok(None),
        Loose::Str(s) => {
            let due = parse_rfc3339(s.as_bytes()).ok_or(DeadReason::BadTimestamp)?;
            if due < at || due > at.plus(MAX_EXECUTE_AHEAD) {
                Err(DeadReason::BadTimestamp)
            } else {
                Ok((due > at).then_some(due))
            }
        }
        Loose::Other => Err(DeadReason::BadTimestamp),
    }
}

/// The `type` of a JSON line, read on its own (for a line [`decode`] found of an unknown type,
/// which `input.ignore_types` may list); `None` when the line is not a JSON object with a
/// string `type`.
pub fn type_of(raw: &[u8]) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct OnlyType<'a> {
        #[serde(rename = "type", borrow)]
        ty: Cow<'a, str>,
    }
    let raw = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw);
    serde_json::from_slice::<OnlyType<'_>>(raw)
        .ok()
        .map(|t| t.ty)
}

/// The `type` of a line [`decode`] refused as `reason`, when that is an unknown type that
/// `ignore` (`input.ignore_types`) lists: the one test both the pipeline and the parse-only pass
/// make. Only a line of an unknown type, with a list to match, is read again.
pub(crate) fn ignored_type<'a>(
    raw: &'a [u8],
    reason: DeadReason,
    ignore: &[String],
) -> Option<Cow<'a, str>> {
    if reason != DeadReason::UnknownType || ignore.is_empty() {
        return None;
    }
    type_of(raw).filter(|t| ignore.iter().any(|x| x == t))
}

/// An availability event: `interface`, `state` and `at` required, `incident` optional; no `id`.
#[cold]
fn availability(mut w: Wire<'_>) -> Result<Event<'_>, DeadReason> {
    let interface = w.interface.take_str().ok_or(DeadReason::MissingField)?;
    let state = w.state.take_str().ok_or(DeadReason::MissingField)?;
    let at = w.at.take_str().ok_or(DeadReason::MissingField)?;
    if interface.len() > MAX_ID_BYTES {
        return Err(DeadReason::Oversized);
    }
    let at = parse_rfc3339(at.as_bytes()).ok_or(DeadReason::BadTimestamp)?;
    let state = State::parse(state.as_bytes()).ok_or(DeadReason::BadState)?;
    Ok(Event::Availability(Availability {
        interface,
        state,
        at,
        incident: w.incident.take_str(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_events_are_validated_in_order() {
        let e = decode(
            br#"{"type":"availability","interface":"DUIS","state":"down","at":"2023-08-14T09:12:00+01:00","incident":"INC000001065262"}"#,
            65_536,
        )
        .unwrap();
        let Event::Availability(a) = e else { panic!() };
        assert_eq!((a.interface.as_ref(), a.state), ("DUIS", State::Down));
        assert_eq!(a.incident.as_deref(), Some("INC000001065262"));
        for (line, want) in [
            (
                r#"{"type":"availability","state":"up","at":"2024-03-01T10:00:00Z"}"#,
                DeadReason::MissingField,
            ),
            (
                r#"{"type":"availability","interface":"DUIS","at":"2024-03-01T10:00:00Z"}"#,
                DeadReason::MissingField,
            ),
            (
                r#"{"type":"availability","interface":"DUIS","state":"up"}"#,
                DeadReason::MissingField,
            ),
            (
                r#"{"type":"availability","interface":"DUIS","state":"sideways","at":"2024-03-01"}"#,
                DeadReason::BadTimestamp,
            ),
            (
                r#"{"type":"availability","interface":"DUIS","state":"sideways","at":"2024-03-01T10:00:00Z"}"#,
                DeadReason::BadState,
            ),
            (
                r#"{"type":"availability","interface":"DUIS","state":"UP","at":"2024-03-01T10:00:00Z"}"#,
                DeadReason::BadState,
            ),
            (
                r#"{"type":"availability","interface":"DUIS","state":1,"at":"2024-03-01T10:00:00Z"}"#,
                DeadReason::MissingField,
            ),
        ] {
            assert_eq!(reason(line), Some(want), "{line}");
            assert_eq!(
                decode_with_serde_only(line.as_bytes(), 65_536).err(),
                Some(want),
                "{line}"
            );
        }
    }

    fn reason(s: &str) -> Option<DeadReason> {
        decode(s.as_bytes(), 65_536).err()
    }

    const REQ: &str = r#"{"type":"request","id":"A","srv":"8.11","region":"north","provider":"dsp","at":"2024-03-01T10:00:00.123Z"}"#;

    #[test]
    fn decodes_the_spec_examples() {
        let e = decode(REQ.as_bytes(), 65_536).unwrap();
        let Event::Request(r) = e else { panic!() };
        assert_eq!((r.id.as_ref(), r.srv.as_ref()), ("A", "8.11"));
        assert_eq!((r.region, r.provider), (Region::North, Provider::Dsp));
        let e = decode(
            br#"{"at":"2024-03-01T10:00:00.400+01:00","code":"I99","id":"A","type":"response","user":"u","device":"d","bytes":12,"extra":{"x":[1,2]}}"#,
            65_536,
        )
        .unwrap();
        let Event::Response(r) = e else { panic!() };
        assert_eq!(r.code, "I99");
        assert!(
            matches!(r.id, Cow::Borrowed(_)),
            "plain ids are borrowed, not copied"
        );
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let e = decode(
            br#"{"type":"response","id":"A\u0042","code":"I0","at":"2024-03-01T10:00:00Z"}"#,
            100,
        )
        .unwrap();
        assert_eq!(e.id(), "AB");
    }

    #[test]
    fn every_reason_in_spec_order() {
        let long_id = "x".repeat(129);
        let cases: Vec<(String, DeadReason)> = vec![
            (format!(r#"{{"type":"request","id":"{long_id}"}}"#), DeadReason::Oversized),
            // The id check comes before the type check.
            (format!(r#"{{"type":"nonsense","id":"{long_id}"}}"#), DeadReason::Oversized),
            (r#"{"type":"request","id":"A""#.into(), DeadReason::MalformedJson),
            ("[1,2,3]".into(), DeadReason::MalformedJson),
            (r#"["request","A","8.11","north","dsp","2024-03-01T10:00:00Z"]"#.into(), DeadReason::MalformedJson),
            ("\"just a string\"".into(), DeadReason::MalformedJson),
            ("null".into(), DeadReason::MalformedJson),
            (format!("{REQ} trailing"), DeadReason::MalformedJson),
            (r#"{"type":"request","type":"request"}"#.into(), DeadReason::MalformedJson),
            (r#"{"type":"Request","id":"A"}"#.into(), DeadReason::UnknownType),
            (r#"{"type":"alert","id":"A"}"#.into(), DeadReason::UnknownType),
            (r#"{"id":"A","code":"I0","at":"2024-03-01T10:00:00Z"}"#.into(), DeadReason::MissingField),
            (r#"{"type":5,"id":"A"}"#.into(), DeadReason::MissingField),
            (r#"{"type":"response","id":"","code":"I0","at":"2024-03-01T10:00:00Z"}"#.into(), DeadReason::MissingField),
            (r#"{"type":"response","id":null,"code":"I0","at":"2024-03-01T10:00:00Z"}"#.into(), DeadReason::MissingField),
            (r#"{"type":"response","id":7,"code":"I0","at":"2024-03-01T10:00:00Z"}"#.into(), DeadReason::MissingField),
            (r#"{"type":"response","id":"A","at":"2024-03-01T10:00:00Z"}"#.into(), DeadReason::MissingField),
            // A missing field beats a bad timestamp.
            (r#"{"type":"request","id":"A","region":"north","provider":"dsp","at":"yesterday"}"#.into(), DeadReason::MissingField),
            (r#"{"type":"response","id":"A","code":"I0","at":"2024-03-01 10:00:00"}"#.into(), DeadReason::BadTimestamp),
            (r#"{"type":"response","id":"A","code":"I0","at":1709287200}"#.into(), DeadReason::MissingField),
            (r#"{"type":"request","id":"A","srv":"8.11","region":"west","provider":"dsp","at":"yesterday"}"#.into(), DeadReason::BadTimestamp),
            (r#"{"type":"request","id":"A","srv":"8.11","region":"North","provider":"dsp","at":"2024-03-01T10:00:00Z"}"#.into(), DeadReason::UnknownRegion),
            (r#"{"type":"request","id":"A","srv":"8.11","region":"west","provider":"bus","at":"2024-03-01T10:00:00Z"}"#.into(), DeadReason::UnknownRegion),
            (r#"{"type":"request","id":"A","srv":"8.11","region":"south","provider":"bus","at":"2024-03-01T10:00:00Z"}"#.into(), DeadReason::UnknownProvider),
        ];
        for (line, want) in cases {
            assert_eq!(reason(&line), Some(want), "{line}");
        }
        assert_eq!(
            decode(REQ.as_bytes(), 20).err(),
            Some(DeadReason::Oversized)
        );
        assert_eq!(
            decode(b"{\"type\":\"request\",\"id\":\"\xff\"}", 100).err(),
            Some(DeadReason::MalformedJson)
        );
        let ok_id = format!(
            r#"{{"type":"response","id":"{}","code":"I0","at":"2024-03-01T10:00:00Z"}}"#,
            "x".repeat(128)
        );
        assert!(decode(ok_id.as_bytes(), 65_536).is_ok());
    }

    mod fast_path {
        use super::super::*;
        use proptest::prelude::*;

        const BASES: [&str; 6] = [
            r#"{"type":"request","id":"90-B3:00-DB:1008","srv":"8.11","region":"north","provider":"dsp","at":"2024-03-01T10:00:00.123Z"}"#,
            r#"{"type":"response","id":"A","code":"I99","at":"2024-03-01T10:00:00.400+01:00"}"#,
            r#" { "at" : "2024-03-01T10:00:00Z" , "code":"E20", "id":"B" ,"type":"response","user":"u1","device":"d"}  "#,
            r#"{"type":"response","id":"A\u00e9","code":"I0","at":"2024-03-01T10:00:00Z","bytes":120}"#,
            r#"{"type":"request","id":"é∂","srv":"CSP-HAN-TEST","region":"south","provider":"csp","at":"2024-03-31T23:00:00Z","x":{"y":[1,2]}}"#,
            r#"{"type":"response","id":"C","code":"I0","at":"2024-03-01T10:00:00Z","id":"D"}"#,
        ];
        const BYTES: [u8; 16] = [
            b'\\', b'"', b'{', b'}', b',', b':', b' ', 0x01, 0xff, b'a', b'0', b'[', b'n', 0xc3,
            b'\t', b'u',
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]

            /// The fast path accepts and rejects exactly what serde_json does, with the same
            /// event or the same reason, on valid lines and on random corruptions of them.
            #[test]
            fn agrees_with_serde_on_corrupted_lines(
                base in 0usize..6,
                edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..3, 0usize..16), 0..4),
            ) {
                let mut line = BASES[base].as_bytes().to_vec();
                for (at, op, byte) in edits {
                    let i = at.index(line.len() + 1);
                    match op {
                        0 => line.insert(i, BYTES[byte]),
                        1 if i < line.len() => { line.remove(i); }
                        _ if i < line.len() => line[i] = BYTES[byte],
                        _ => {}
                    }
                }
                prop_assert_eq!(decode(&line, 65_536), decode_with_serde_only(&line, 65_536));
            }
        }

        #[test]
        fn word_scan_finds_quotes_and_rejects_escapes_and_control_bytes() {
            let mut q = [0u32; MAX_QUOTES];
            let line = br#"{"a":"bc","d":"e"}"#;
            let n = quote_positions(line, &mut q).unwrap();
            let want: Vec<u32> = line
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == b'"')
                .map(|(i, _)| i as u32)
                .collect();
            assert_eq!(&q[..n], &want[..]);
            for bad in [
                &br#"{"a":"b\"c"}"#[..],
                b"{\"a\":\"b\x01\"}",
                b"{\"a\":\t\"b\"}",
                b"\x1f",
            ] {
                assert!(quote_positions(bad, &mut q).is_none(), "{bad:?}");
            }
            // Bytes at and above 0x20, including UTF-8 continuation bytes, are fine.
            assert_eq!(quote_positions(b" ~\x7f\x80\xff \xc3\xa9", &mut q), Some(0));
            let many = "\"\"".repeat(MAX_QUOTES / 2 + 1);
            assert!(quote_positions(many.as_bytes(), &mut q).is_none());
        }

        #[test]
        fn ordinary_events_take_the_fast_path() {
            for line in &BASES[..3] {
                assert!(scan_flat(line.as_bytes()).is_some(), "{line}");
            }
            for line in &BASES[3..] {
                assert!(scan_flat(line.as_bytes()).is_none(), "{line}");
            }
        }
    }

    #[test]
    fn reasons_have_their_wire_names() {
        let names: Vec<&str> = DeadReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names[0], "oversized");
        assert_eq!(names[12], "too_late");
        for (i, r) in DeadReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
