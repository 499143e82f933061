//! The byte layouts the stores share for correlator state: a request id's 128-bit key, a record
//! as one fixed 51-byte value (little-endian; 35 before layout 4), a decided record kept
//! compactly as the correlator's 34 bytes (30 before layout 4), and the state log: a checkpoint's changed records and waiting
//! responses as a few large chunks of operations, so that writing a checkpoint appends bytes
//! instead of updating one indexed row per request.

use super::error::StoreError;
use crate::engine::correlate::{
    Changes, KeyMap, SAVED_DECIDED_BYTES, SAVED_DECIDED_BYTES_V3, SavedDecided, SavedEntry,
    SavedWaiting, last_of_each, reduced_key,
};
use crate::engine::domain::{Provider, Region};

/// Bytes of an encoded record.
pub const ENTRY_BYTES: usize = 51;

/// Bytes of a record in chunks of layouts 1 to 3: without its due time, user and first
/// acknowledgement (due at its `at`, none of the others).
const ENTRY_BYTES_V3: usize = 35;

/// A key as 16 big-endian bytes (its sort order is the key's).
pub fn key_bytes(k: u128) -> [u8; 16] {
    k.to_be_bytes()
}

/// A key back from its bytes.
pub fn key_from(b: &[u8]) -> Result<u128, StoreError> {
    let a: [u8; 16] = b
        .try_into()
        .map_err(|_| StoreError::Backend(format!("a stored key has {} bytes, not 16", b.len())))?;
    Ok(u128::from_be_bytes(a))
}

/// A record as bytes.
pub(crate) fn encode_entry(e: &SavedEntry) -> [u8; ENTRY_BYTES] {
    let mut b = [0u8; ENTRY_BYTES];
    b[0..8].copy_from_slice(&e.at.to_le_bytes());
    b[8..16].copy_from_slice(&e.fin_at.unwrap_or(i64::MIN).to_le_bytes());
    b[16..24].copy_from_slice(&e.pos.to_le_bytes());
    b[24..28].copy_from_slice(&e.srv.to_le_bytes());
    b[28..32].copy_from_slice(&e.fin_code.to_le_bytes());
    b[32] = e.region as u8;
    b[33] = e.provider as u8;
    // Bit 0: decided; bit 1: arrived late (layout-1 and -2 records have it clear).
    b[34] = e.decided as u8 | (e.late as u8) << 1;
    b[35..43].copy_from_slice(&e.due.to_le_bytes());
    b[43..47].copy_from_slice(&e.user.to_le_bytes());
    b[47..51].copy_from_slice(&e.ack.to_le_bytes());
    b
}

/// A record back from its bytes ([`ENTRY_BYTES`], or the [`ENTRY_BYTES_V3`] of older layouts).
pub fn decode_entry(b: &[u8]) -> Result<SavedEntry, StoreError> {
    if !(b.len() == ENTRY_BYTES || b.len() == ENTRY_BYTES_V3) || b[32] > 2 || b[33] > 2 || b[34] > 3
    {
        return Err(StoreError::Backend(format!(
            "a stored request record is damaged ({} bytes)",
            b.len()
        )));
    }
    let i64_at = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    let fin_at = i64_at(8);
    let v4 = b.len() == ENTRY_BYTES;
    Ok(SavedEntry {
        at: i64_at(0),
        due: if v4 { i64_at(35) } else { i64_at(0) },
        user: if v4 { u32_at(43) } else { 0 },
        ack: if v4 { u32_at(47) } else { 0 },
        fin_at: (fin_at != i64::MIN).then_some(fin_at),
        pos: i64_at(16) as u64,
        srv: u32_at(24),
        fin_code: u32_at(28),
        region: Region::from_index(b[32] as usize),
        provider: Provider::from_index(b[33] as usize),
        decided: b[34] & 1 == 1,
        late: b[34] & 2 == 2,
    })
}

/// The first byte of every state-log chunk: its layout version. Layout 2 added `OP_TEXT`,
/// layout 3 `OP_DECIDED`, layout 4 a record's due time, user and first acknowledgement; chunks
/// of layouts 1 to 3 (written before them) still decode, their decided records restored as
/// records of the map as they were held, their records due at their `at` with neither.
const LOG_FORMAT: u8 = 4;
/// Operations in a state-log chunk.
const OP_PUT: u8 = 1;
const OP_REMOVE: u8 = 2;
const OP_WAITING: u8 = 3;
/// A pending record's evidence text; it follows the record's `OP_PUT` in the same checkpoint
/// (an `OP_PUT` alone leaves the record without one).
const OP_TEXT: u8 = 4;
/// A decided record kept compactly, by its reduced key: it replaces a record of the same
/// reduced key, whole-keyed or not. It is never removed: it expires with the watermark, and a
/// restore leaves it out once it has (a snapshot does not write it).
const OP_DECIDED: u8 = 5;

/// A checkpoint's correlator changes as state-log chunks of at most about `chunk_bytes` each
/// (each chunk decodes on its own; an operation is never split).
pub(crate) fn encode_changes(c: &Changes, chunk_bytes: usize) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let estimate = c.entries.len() * (17 + ENTRY_BYTES)
        + c.decided.len() * (1 + SAVED_DECIDED_BYTES)
        + c.removed.len() * 17;
    let mut cur = Vec::with_capacity(estimate.min(chunk_bytes) + 64);
    cur.push(LOG_FORMAT);
    let mut roll = |cur: &mut Vec<u8>| {
        if cur.len() >= chunk_bytes {
            chunks.push(std::mem::replace(cur, Vec::with_capacity(chunk_bytes + 64)));
            cur.push(LOG_FORMAT);
        }
    };
    // Compactly kept records and removals as they happened, then the map's records as they
    // are now, which have the last word (`Changes`).
    let mut removed = c.removed.iter().peekable();
    for (i, d) in c.decided.iter().enumerate() {
        while let Some((_, k)) = removed.next_if(|(before, _)| *before <= i) {
            cur.push(OP_REMOVE);
            cur.extend_from_slice(&k.to_le_bytes());
            roll(&mut cur);
        }
        cur.push(OP_DECIDED);
        cur.extend_from_slice(&d.to_bytes());
        roll(&mut cur);
    }
    for (_, k) in removed {
        cur.push(OP_REMOVE);
        cur.extend_from_slice(&k.to_le_bytes());
        roll(&mut cur);
    }
    for (k, e) in &c.entries {
        cur.push(OP_PUT);
        cur.extend_from_slice(&k.to_le_bytes());
        cur.extend_from_slice(&encode_entry(e));
        roll(&mut cur);
    }
    for (k, t) in &c.texts {
        cur.push(OP_TEXT);
        cur.extend_from_slice(&k.to_le_bytes());
        cur.extend_from_slice(&(t.len() as u32).to_le_bytes());
        cur.extend_from_slice(t.as_bytes());
        roll(&mut cur);
    }
    for (k, list) in &c.waiting {
        cur.push(OP_WAITING);
        cur.extend_from_slice(&k.to_le_bytes());
        cur.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for w in list {
            cur.extend_from_slice(&w.at.to_le_bytes());
            cur.extend_from_slice(&w.code.to_le_bytes());
            cur.extend_from_slice(&w.pos.to_le_bytes());
            cur.push(w.behind as u8);
            cur.extend_from_slice(&(w.raw.len() as u32).to_le_bytes());
            cur.extend_from_slice(&w.raw);
        }
        roll(&mut cur);
    }
    if cur.len() > 1 || chunks.is_empty() {
        chunks.push(cur);
    }
    chunks
}

/// Rebuilds a partition's records and waiting responses from its state log, chunk by chunk in
/// the order they were written.
#[derive(Debug, Default)]
pub struct LogReplay {
    entries: KeyMap<SavedEntry>,
    /// The whole key of each record of `entries`, by its reduced key: so that a compact record
    /// replaces it.
    whole: KeyMap<u128>,
    /// Compact records, and the undoing of any by a whole-keyed write or a removal, in the
    /// log's order ([`last_of_each`] sorts out which has the last word).
    decided: Vec<SavedDecided>,
    /// A bit for each reduced key that may have a compact record in `decided` (its low bits):
    /// a whole-keyed write or a removal needs to undo one only then, and most have none.
    maybe_decided: Vec<u64>,
    waiting: KeyMap<Vec<SavedWaiting>>,
    texts: KeyMap<crate::engine::correlate::Evidence>,
}

/// Words of a replay's `maybe_decided` for up to `records` compact records: four bits each (a
/// power of two), at least 64 Ki bits and at most 1 Gi bits (128 MiB; more records share bits,
/// which only costs undoings that were not needed).
fn filter_words(records: usize) -> usize {
    records.clamp(1 << 14, 1 << 28).next_power_of_two() * 4 / 64
}

/// What a state log leads to: records, waiting responses and evidence texts, in key order.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Every record kept by its whole key.
    pub entries: Vec<(u128, SavedEntry)>,
    /// Every decided record kept compactly, by reduced key.
    pub decided: Vec<SavedDecided>,
    /// Every waiting response (a key's in arrival order).
    pub waiting: Vec<(u128, SavedWaiting)>,
    /// Evidence texts of pending records.
    pub texts: Vec<(u128, crate::engine::correlate::Evidence)>,
}

/// A cursor over a chunk's bytes that reports damage instead of panicking.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(StoreError::Backend(format!(
                "a state-log chunk is damaged: it ends inside an operation at byte {}",
                self.at
            )));
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn key(&mut self) -> Result<u128, StoreError> {
        Ok(u128::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

impl LogReplay {
    /// A replay of a log of about `bytes`: room for as many compact records as it could hold
    /// is reserved (address space only, until used), so the list is not copied as it grows.
    pub(crate) fn for_log_of(bytes: u64) -> LogReplay {
        let most = usize::try_from(bytes / (1 + SAVED_DECIDED_BYTES as u64)).unwrap_or(0);
        let mut decided = Vec::new();
        // A size the address space cannot give (a damaged partition row) only loses the
        // reservation: the list then grows as it is read.
        let _ = decided.try_reserve_exact(most);
        LogReplay {
            decided,
            maybe_decided: vec![0; filter_words(most)],
            ..LogReplay::default()
        }
    }

    fn place(&self) -> u64 {
        self.decided.len() as u64
    }

    /// Where reduced key `r`'s bit is in `maybe_decided`.
    fn bit(&mut self, r: u128) -> (&mut u64, u64) {
        if self.maybe_decided.is_empty() {
            self.maybe_decided = vec![0; filter_words(0)];
        }
        let bits = self.maybe_decided.len() * 64;
        let i = r as usize & (bits - 1);
        (&mut self.maybe_decided[i / 64], 1 << (i % 64))
    }

    fn push_decided(&mut self, d: SavedDecided) {
        let (word, bit) = self.bit(d.key());
        *word |= bit;
        self.decided.push(d.at_place(self.place()));
    }

    /// Undoes any compact record of reduced key `r` (its key was written whole, or removed).
    fn undo_decided(&mut self, r: u128) {
        let (word, bit) = self.bit(r);
        if *word & bit != 0 {
            self.decided.push(SavedDecided::undone(r, self.place()));
        }
    }

    /// Applies one chunk. A chunk of a full snapshot that starts it (`base`) first forgets
    /// everything before.
    pub fn apply(&mut self, chunk: &[u8], base: bool) -> Result<(), StoreError> {
        if base {
            self.entries.clear();
            self.whole.clear();
            self.decided.clear();
            self.maybe_decided.fill(0);
            self.waiting.clear();
            self.texts.clear();
        }
        let mut r = Reader { b: chunk, at: 0 };
        let format = r.array::<1>()?[0];
        if !(1..=LOG_FORMAT).contains(&format) {
            return Err(StoreError::Backend(format!(
                "a state-log chunk has layout {format}, not 1 to {LOG_FORMAT}"
            )));
        }
        while r.at < chunk.len() {
            let op = r.array::<1>()?[0];
            if op == OP_DECIDED && format >= 3 {
                let b = r.take(if format >= 4 {
                    SAVED_DECIDED_BYTES
                } else {
                    SAVED_DECIDED_BYTES_V3
                })?;
                let d = SavedDecided::from_bytes(b).ok_or_else(|| {
                    StoreError::Backend(format!(
                        "a state-log chunk is damaged: a decided record before byte {} is not one",
                        r.at
                    ))
                })?;
                if let Some(k) = self.whole.remove(&d.key()) {
                    self.entries.remove(&k);
                    self.texts.remove(&k);
                }
                self.push_decided(d);
                continue;
            }
            let k = r.key()?;
            match op {
                OP_PUT => {
                    let e = decode_entry(r.take(if format >= 4 {
                        ENTRY_BYTES
                    } else {
                        ENTRY_BYTES_V3
                    })?)?;
                    let r = reduced_key(k);
                    self.entries.insert(k, e);
                    self.whole.insert(r, k);
                    self.undo_decided(r);
                    self.texts.remove(&k);
                }
                OP_REMOVE => {
                    let r = reduced_key(k);
                    self.entries.remove(&k);
                    self.whole.remove(&r);
                    self.undo_decided(r);
                    self.texts.remove(&k);
                }
                OP_TEXT => {
                    let len = r.u32()? as usize;
                    let text = std::str::from_utf8(r.take(len)?).map_err(|_| {
                        StoreError::Backend(
                            "a state-log chunk is damaged: an evidence text is not UTF-8".into(),
                        )
                    })?;
                    self.texts.insert(k, text.into());
                }
                OP_WAITING => {
                    let n = r.u32()? as usize;
                    let mut list = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        let at = r.u64()? as i64;
                        let code = r.u32()?;
                        let pos = r.u64()?;
                        let behind = r.array::<1>()?[0] == 1;
                        let len = r.u32()? as usize;
                        let raw = r.take(len)?.to_vec().into_boxed_slice();
                        list.push(SavedWaiting {
                            at,
                            code,
                            pos,
                            behind,
                            raw,
                        });
                    }
                    if list.is_empty() {
                        self.waiting.remove(&k);
                    } else {
                        self.waiting.insert(k, list);
                    }
                }
                other => {
                    return Err(StoreError::Backend(format!(
                        "a state-log chunk is damaged: unknown operation {other} at byte {}",
                        r.at - 17
                    )));
                }
            }
        }
        Ok(())
    }

    /// The records, waiting responses and evidence texts the log leads to, in key order (a response list in
    /// its arrival order).
    pub fn finish(self) -> Replayed {
        let mut entries: Vec<_> = self.entries.into_iter().collect();
        entries.sort_unstable_by_key(|(k, _)| *k);
        let mut decided = self.decided;
        last_of_each(&mut decided);
        let mut keyed: Vec<_> = self.waiting.into_iter().collect();
        keyed.sort_unstable_by_key(|(k, _)| *k);
        let waiting = keyed
            .into_iter()
            .flat_map(|(k, l)| l.into_iter().map(move |w| (k, w)))
            .collect();
        let mut texts: Vec<_> = self.texts.into_iter().collect();
        texts.sort_unstable_by_key(|(k, _)| *k);
        Replayed {
            entries,
            decided,
            waiting,
            texts,
        }
    }
}

/// A row's failure buckets as readable JSON text: `{"E20":3,"slow":1}`, and a bucket with
/// evidence as `{"n":3,"sample":[[key,"id␟user␟device"],…]}` (the key is what the sample is
/// ordered by).
pub fn buckets_text(row: &crate::engine::aggregate::SavedRow) -> String {
    let map: serde_json::Map<String, serde_json::Value> = row
        .buckets
        .iter()
        .map(|(b, n)| {
            let name = crate::engine::catalog::Bucket(*b).name();
            let value = match row.samples.iter().find(|(sb, _)| sb == b) {
                Some((_, v)) if !v.is_empty() => serde_json::json!({
                    "n": n,
                    "sample": v.iter().map(|(k, t)| serde_json::json!([k, t])).collect::<Vec<_>>(),
                }),
                _ => (*n).into(),
            };
            (name, value)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// A row's counts by day as readable JSON text: `[[day, requests, within_target, succeeded],
/// …]`, days in order.
pub fn days_text(row: &crate::engine::aggregate::SavedRow) -> String {
    let days: Vec<serde_json::Value> = row
        .days
        .iter()
        .map(|(d, [r, w, s])| serde_json::json!([d, r, w, s]))
        .collect();
    serde_json::Value::Array(days).to_string()
}

/// Counts by day back from their text ([`days_text`]).
pub(crate) fn days_from(text: &str) -> Result<Vec<(u8, [u64; 3])>, StoreError> {
    let bad = || {
        StoreError::Backend(format!(
            "stored counts by day are damaged: {}",
            crate::echo::cut(text, 80)
        ))
    };
    let rows: Vec<[u64; 4]> = serde_json::from_str(text).map_err(|_| bad())?;
    rows.into_iter()
        .map(|[d, r, w, s]| {
            let day = u8::try_from(d).ok().filter(|d| (1..=31).contains(d));
            day.map(|d| (d, [r, w, s])).ok_or_else(bad)
        })
        .collect()
}

/// Bucket counts and evidence samples, by bucket.
pub(crate) type BucketsAndSamples = (Vec<(u32, u64)>, Vec<(u32, Vec<(u64, String)>)>);

/// Bucket counts and samples back from their text (either form of [`buckets_text`]).
pub fn buckets_from(text: &str) -> Result<BucketsAndSamples, StoreError> {
    let bad = || {
        StoreError::Backend(format!(
            "stored failure buckets are damaged: {}",
            crate::echo::cut(text, 80)
        ))
    };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| bad())?;
    let mut out = Vec::with_capacity(map.len());
    let mut samples = Vec::new();
    for (name, v) in map {
        let b = match name.as_str() {
            "no_response" => crate::engine::catalog::Bucket::NO_RESPONSE,
            "slow" => crate::engine::catalog::Bucket::SLOW,
            "other" => crate::engine::catalog::Bucket::OTHER,
            code => crate::engine::catalog::Bucket::of_code(code),
        };
        let n = match &v {
            serde_json::Value::Object(o) => {
                let sample = o
                    .get("sample")
                    .and_then(|s| s.as_array())
                    .ok_or_else(bad)?
                    .iter()
                    .map(|pair| {
                        let k = pair.get(0).and_then(|k| k.as_u64());
                        let t = pair.get(1).and_then(|t| t.as_str());
                        k.zip(t).map(|(k, t)| (k, t.to_string())).ok_or_else(bad)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                samples.push((b.0, sample));
                o.get("n").and_then(|n| n.as_u64()).ok_or_else(bad)?
            }
            n => n.as_u64().ok_or_else(bad)?,
        };
        out.push((b.0, n));
    }
    out.sort_unstable();
    samples.sort_unstable_by_key(|(b, _)| *b);
    Ok((out, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for e in [
            SavedEntry {
                at: 1_709_251_200_123_456_789,
                due: 1_709_337_600_000_000_000,
                user: 41,
                ack: 312,
                fin_at: Some(1_709_251_230_000_000_000),
                pos: (3 << 48) | 12345,
                srv: 7,
                fin_code: 2,
                region: Region::South,
                provider: Provider::Csp,
                decided: true,
                late: true,
            },
            SavedEntry {
                at: -5,
                due: -5,
                user: 0,
                ack: 0,
                fin_at: None,
                pos: 0,
                srv: u32::MAX,
                fin_code: 0,
                region: Region::North,
                provider: Provider::Dsp,
                decided: false,
                late: false,
            },
        ] {
            assert_eq!(decode_entry(&encode_entry(&e)).unwrap(), e);
        }
        assert!(decode_entry(&[0u8; 10]).is_err());
        let k = 0x0123_4567_89ab_cdef_0011_2233_4455_6677u128;
        assert_eq!(key_from(&key_bytes(k)).unwrap(), k);
    }

    fn entry(i: u64) -> SavedEntry {
        SavedEntry {
            at: i as i64,
            due: i as i64 + (i % 7) as i64,
            user: (i % 4) as u32,
            ack: (i % 3) as u32,
            fin_at: (i % 2 == 0).then_some(i as i64 + 5),
            pos: i,
            srv: 1,
            fin_code: 0,
            region: Region::North,
            provider: Provider::Dsp,
            decided: i % 3 == 0,
            late: i % 5 == 0,
        }
    }

    fn waiting(i: u64) -> SavedWaiting {
        SavedWaiting {
            at: i as i64,
            code: 2,
            pos: i,
            behind: i % 2 == 1,
            raw: format!("{{\"id\":\"r-{i}\"}}")
                .into_bytes()
                .into_boxed_slice(),
        }
    }

    #[test]
    fn a_state_log_replays_to_the_last_state_across_small_chunks() {
        let base = Changes {
            entries: (0..100).map(|i| (i as u128, entry(i))).collect(),
            waiting: vec![(500, vec![waiting(1), waiting(2)]), (501, vec![waiting(3)])],
            full: true,
            texts: vec![
                (5, "five\u{1f}u\u{1f}d".into()),
                (7, "seven".into()),
                (8, "é".into()),
            ],
            ..Changes::default()
        };
        // 7 is written again without a text (decided), 8 is removed, 200 is new with one.
        let delta = Changes {
            entries: vec![(7, entry(70)), (200, entry(200))],
            removed: vec![(0, 3), (0, 4), (0, 8)],
            waiting: vec![(500, vec![]), (502, vec![waiting(9)])],
            full: false,
            texts: vec![(200, "two hundred".into())],
            ..Changes::default()
        };
        let mut log = LogReplay::default();
        // 100-byte chunks: every operation lands in a chunk of its own or shares with one more.
        let chunks = encode_changes(&base, 100);
        assert!(chunks.len() > 40, "{} chunks", chunks.len());
        for (i, c) in chunks.iter().enumerate() {
            log.apply(c, i == 0).unwrap();
        }
        for c in encode_changes(&delta, 100) {
            log.apply(&c, false).unwrap();
        }
        let Replayed {
            entries,
            waiting: waits,
            texts,
            ..
        } = log.finish();
        assert_eq!(
            texts,
            vec![
                (5, "five\u{1f}u\u{1f}d".into()),
                (200, "two hundred".into())
            ],
            "a text lives until its record is written again or removed"
        );
        assert_eq!(entries.len(), 98);
        assert!(entries.windows(2).all(|w| w[0].0 < w[1].0), "key order");
        assert_eq!(entries.iter().find(|(k, _)| *k == 7).unwrap().1, entry(70));
        assert!(!entries.iter().any(|(k, _)| *k == 3 || *k == 4 || *k == 8));
        assert_eq!(
            waits,
            vec![(501, waiting(3)), (502, waiting(9))],
            "a touched key with no responses left is gone"
        );
        // A snapshot chunk starts over.
        let mut log2 = LogReplay::default();
        for c in encode_changes(&delta, 1 << 20) {
            log2.apply(&c, false).unwrap();
        }
        log2.apply(&encode_changes(&base, 1 << 20)[0], true)
            .unwrap();
        let again = log2.finish();
        assert_eq!((again.entries.len(), again.texts.len()), (100, 3));
        // A log written before evidence (layout 1) still reads: its records are the first
        // bytes of today's, without the due time, user and acknowledgement.
        let mut old = vec![1u8];
        for (k, e) in &delta.entries {
            old.push(OP_PUT);
            old.extend_from_slice(&k.to_le_bytes());
            old.extend_from_slice(&encode_entry(e)[..ENTRY_BYTES_V3]);
        }
        let mut log = LogReplay::default();
        log.apply(&old, false).unwrap();
        let back = log.finish();
        assert_eq!(back.entries.len(), delta.entries.len());
        for (k, e) in &back.entries {
            assert_eq!((e.due, e.user, e.ack), (e.at, 0, 0), "{k}");
        }
    }

    /// A compact record of `key` (its reduced bits) at `at_ms`, as the correlator writes one.
    fn decided(key: u128, at_ms: u64) -> SavedDecided {
        let mut b = [0u8; SAVED_DECIDED_BYTES];
        b[0] = (key >> 120) as u8;
        b[1] = (key >> 64) as u8 & 0x7f;
        // Position 5, `at` in ms above its 56 bits, no final response; then SRV 3.
        let mid = 5u128 | (at_ms as u128) << 56;
        let words = [
            key as u32,
            (key >> 32) as u32,
            mid as u32,
            (mid >> 32) as u32,
            (mid >> 64) as u32,
            (mid >> 96) as u32,
            3 << 12,
        ];
        for (i, w) in words.iter().enumerate() {
            b[2 + i * 4..6 + i * 4].copy_from_slice(&w.to_le_bytes());
        }
        SavedDecided::from_bytes(&b).unwrap()
    }

    #[test]
    fn compact_records_replace_whole_keyed_ones_and_back_by_their_reduced_key() {
        // Whole keys with bits a compact record does not keep: only the reduced ones match.
        let (k1, k2) = (1u128 << 100 | 7, 1u128 << 90 | 8);
        assert_eq!(reduced_key(k1), 7);
        let apply = |log: &mut LogReplay, c: &Changes| {
            for (i, chunk) in encode_changes(c, 1 << 20).iter().enumerate() {
                log.apply(chunk, c.full && i == 0).unwrap();
            }
        };
        let mut log = LogReplay::default();
        // Both pending (k1 with evidence); then k1 decided and kept compactly.
        apply(
            &mut log,
            &Changes {
                entries: vec![(k1, entry(1)), (k2, entry(2))],
                texts: vec![(k1, "one".into())],
                full: true,
                ..Changes::default()
            },
        );
        apply(
            &mut log,
            &Changes {
                decided: vec![decided(k1, 1_709_251_200_000)],
                ..Changes::default()
            },
        );
        let r = log.finish();
        assert_eq!(
            r.entries,
            vec![(k2, entry(2))],
            "k1 left the map with its text"
        );
        assert!(r.texts.is_empty());
        assert_eq!(r.decided, vec![decided(k1, 1_709_251_200_000)]);
        assert_eq!(r.decided[0].entry().at, 1_709_251_200_000_000_000);
        assert_eq!(r.decided[0].entry().srv, 3);

        // Back in the map (a late revision that no longer fits), compact again, then removed.
        let mut log = LogReplay::default();
        let steps = [
            Changes {
                decided: vec![decided(k1, 10), decided(k2, 20)],
                full: true,
                ..Changes::default()
            },
            Changes {
                entries: vec![(k1, entry(11))],
                ..Changes::default()
            },
        ];
        for c in &steps {
            apply(&mut log, c);
        }
        let r = log.finish();
        assert_eq!(
            r.entries,
            vec![(k1, entry(11))],
            "the whole-keyed write replaced it"
        );
        assert_eq!(r.decided, vec![decided(k2, 20)]);
        // The same whatever room the replay was given: none, some, or more than the address
        // space (a damaged partition row), which must not abort.
        for mut log in [
            LogReplay::default(),
            LogReplay::for_log_of(10_000),
            LogReplay::for_log_of(u64::MAX),
        ] {
            for c in &steps {
                apply(&mut log, c);
            }
            apply(
                &mut log,
                &Changes {
                    decided: vec![decided(k1, 12)],
                    ..Changes::default()
                },
            );
            apply(
                &mut log,
                &Changes {
                    removed: vec![(0, k1), (0, k2)],
                    ..Changes::default()
                },
            );
            let r = log.finish();
            assert!(r.entries.is_empty() && r.decided.is_empty(), "{r:?}");
        }

        // Within one checkpoint, removals and compact records keep the order they happened in:
        // removed, then back compacted, stays; compacted, then removed, goes.
        for (before, kept) in [(0, true), (1, false)] {
            let mut log = LogReplay::default();
            apply(
                &mut log,
                &Changes {
                    decided: vec![decided(k1, 13)],
                    removed: vec![(before, k1)],
                    ..Changes::default()
                },
            );
            let r = log.finish();
            assert_eq!(
                r.decided.len(),
                usize::from(kept),
                "removal before {before}: {r:?}"
            );
        }
        // The map's records have the last word over both.
        let mut log = LogReplay::default();
        apply(
            &mut log,
            &Changes {
                decided: vec![decided(k1, 14)],
                removed: vec![(1, k1)],
                entries: vec![(k1, entry(15))],
                ..Changes::default()
            },
        );
        let r = log.finish();
        assert_eq!(r.entries, vec![(k1, entry(15))]);
        assert!(r.decided.is_empty());

        // A snapshot forgets compact records too.
        let mut log = LogReplay::default();
        apply(
            &mut log,
            &Changes {
                decided: vec![decided(k1, 10)],
                ..Changes::default()
            },
        );
        apply(
            &mut log,
            &Changes {
                entries: vec![(k2, entry(2))],
                full: true,
                ..Changes::default()
            },
        );
        assert!(log.finish().decided.is_empty());
    }

    #[test]
    fn state_logs_of_layouts_1_and_2_restore_and_know_no_compact_records() {
        // A layout-2 chunk as the version before layout 3 wrote it: puts, a text, a remove, and
        // the same bytes under layout 1 (which had no text operation: only puts and removes).
        let mut two = vec![2u8];
        for (k, e) in [(1u128 << 100 | 7, entry(1)), (9, entry(9))] {
            two.push(OP_PUT);
            two.extend_from_slice(&k.to_le_bytes());
            two.extend_from_slice(&encode_entry(&e)[..ENTRY_BYTES_V3]);
        }
        two.push(OP_TEXT);
        two.extend_from_slice(&9u128.to_le_bytes());
        two.extend_from_slice(&4u32.to_le_bytes());
        two.extend_from_slice(b"nine");
        let mut log = LogReplay::default();
        log.apply(&two, true).unwrap();
        let r = log.finish();
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.texts, vec![(9, "nine".into())]);
        assert!(r.decided.is_empty());
        let mut one = two[..1 + 2 * (17 + ENTRY_BYTES_V3)].to_vec();
        one[0] = 1;
        let mut log = LogReplay::default();
        log.apply(&one, true).unwrap();
        assert_eq!(log.finish().entries.len(), 2);
        // Operation 5 did not exist before layout 3: there it is damage.
        let mut bad = vec![2u8, OP_DECIDED];
        bad.extend_from_slice(&decided(7, 10).to_bytes());
        bad.extend_from_slice(&[0; 8]);
        assert!(LogReplay::default().apply(&bad, true).is_err());
        bad[0] = 3;
        assert!(
            LogReplay::default()
                .apply(&bad[..2 + SAVED_DECIDED_BYTES_V3], true)
                .is_ok()
        );
        bad[0] = 4;
        assert!(
            LogReplay::default()
                .apply(&bad[..2 + SAVED_DECIDED_BYTES], true)
                .is_ok()
        );
    }

    #[test]
    fn a_damaged_state_log_is_an_error_not_a_panic() {
        let c = encode_changes(
            &Changes {
                entries: vec![(1, entry(1))],
                waiting: vec![(2, vec![waiting(2)])],
                ..Changes::default()
            },
            1 << 20,
        )
        .remove(0);
        for cut in 0..c.len() {
            let mut log = LogReplay::default();
            // Cut after the layout byte or after the put: a valid, shorter chunk.
            if cut == 1 || cut == 1 + 17 + ENTRY_BYTES {
                assert!(log.apply(&c[..cut], false).is_ok());
                continue;
            }
            assert!(log.apply(&c[..cut], false).is_err(), "cut at {cut}");
        }
        let mut bad = c.clone();
        bad[1] = 99;
        assert!(LogReplay::default().apply(&bad, false).is_err());
        bad[0] = 7;
        assert!(LogReplay::default().apply(&bad, false).is_err());
        // A compact record cut short, or with a region that is none, is damage too.
        let c = encode_changes(
            &Changes {
                decided: vec![decided(7, 10)],
                ..Changes::default()
            },
            1 << 20,
        )
        .remove(0);
        assert_eq!(
            c.len(),
            2 + SAVED_DECIDED_BYTES,
            "34 bytes and its operation byte"
        );
        for cut in 2..c.len() {
            assert!(LogReplay::default().apply(&c[..cut], false).is_err());
        }
        let mut bad = c.clone();
        bad[2 + 2 + 6 * 4 + 3] |= 3 << 1; // the region's bits of the last word: 3
        assert!(LogReplay::default().apply(&bad, false).is_err());
    }

    #[test]
    fn counts_by_day_round_trip_as_readable_text_and_refuse_damage() {
        let row = crate::engine::aggregate::SavedRow {
            days: vec![(1, [10, 9, 10]), (31, [2, 0, 1])],
            ..Default::default()
        };
        let text = days_text(&row);
        assert_eq!(text, "[[1,10,9,10],[31,2,0,1]]");
        assert_eq!(days_from(&text).unwrap(), row.days);
        assert_eq!(days_from("[]").unwrap(), vec![]);
        for bad in [
            "[[0,1,1,1]]",
            "[[32,1,1,1]]",
            "[[1,1,1]]",
            "{}",
            "[[1,-1,0,0]]",
            "x",
        ] {
            assert!(days_from(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn buckets_round_trip_as_readable_text() {
        let b = vec![
            (crate::engine::catalog::Bucket::NO_RESPONSE.0, 4),
            (crate::engine::catalog::Bucket::SLOW.0, 1),
            (crate::engine::catalog::Bucket::of_code("E20").0, 3),
        ];
        let mut row = crate::engine::aggregate::SavedRow {
            buckets: b.clone(),
            ..Default::default()
        };
        let t = buckets_text(&row);
        assert!(t.contains("\"E20\":3") && t.contains("\"slow\":1"), "{t}");
        assert_eq!(buckets_from(&t).unwrap(), (b.clone(), vec![]));
        // With evidence, and a text that needs escaping.
        let slow = crate::engine::catalog::Bucket::SLOW.0;
        row.samples = vec![(
            slow,
            vec![
                (7, "A\u{1f}u\"1\u{1f}".to_string()),
                (u64::MAX, "B\u{1f}\u{1f}d".into()),
            ],
        )];
        let t = buckets_text(&row);
        assert!(t.contains("\"slow\":{\"n\":1,"), "{t}");
        assert_eq!(buckets_from(&t).unwrap(), (b, row.samples.clone()));
        assert!(
            buckets_from("{\"slow\":{\"n\":1}}").is_err(),
            "a sample-less object is damage"
        );
    }
}
