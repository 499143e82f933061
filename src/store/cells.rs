//! The counts per minute as the store keeps them: one row per partition, month and minute, its
//! cells in one blob (a dictionary of the measure ids and SRVs it names, then each cell's
//! indices and counts as varints: about ten bytes a cell). A checkpoint adds its deltas to the
//! blobs of the minutes they touch; a reader decodes the minutes it needs. A damaged blob is an
//! error naming the partition, month and minute, never a panic.

use std::collections::BTreeMap;

use crate::engine::aggregate::{CellCounts, SavedCell};
use crate::engine::calendar::Month;
use crate::engine::domain::{Provider, Region};

use super::error::StoreError;

/// The blob format's version (its first byte).
const VERSION: u8 = 1;

/// A cell's identity within a minute: measure, region, provider, SRV.
type Key = (String, Region, Provider, String);

/// A minute's cells, whole.
pub(crate) type Minute = BTreeMap<Key, CellCounts>;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn count(&mut self) -> Option<i64> {
        i64::try_from(self.varint()?).ok()
    }

    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.varint()?).ok()?;
        let end = self.at.checked_add(n)?;
        let s = std::str::from_utf8(self.bytes.get(self.at..end)?).ok()?;
        self.at = end;
        Some(s.to_string())
    }
}

/// A minute's cells as a blob (cells with nothing counted left out).
pub(crate) fn encode(minute: &Minute) -> Vec<u8> {
    let index = |s: &str, strings: &mut Vec<String>| -> u64 {
        match strings.iter().position(|x| x == s) {
            Some(i) => i as u64,
            None => {
                strings.push(s.to_string());
                strings.len() as u64 - 1
            }
        }
    };
    let mut body = Vec::new();
    let live: Vec<(&Key, &CellCounts)> = minute.iter().filter(|(_, c)| !c.is_zero()).collect();
    put_varint(&mut body, live.len() as u64);
    let mut strings: Vec<String> = Vec::new();
    for ((measure, region, provider, srv), c) in &live {
        put_varint(&mut body, index(measure, &mut strings));
        body.push(*region as u8);
        body.push(*provider as u8);
        put_varint(&mut body, index(srv, &mut strings));
        for v in [c.requests, c.within_target, c.succeeded, c.no_response] {
            put_varint(&mut body, v.max(0) as u64);
        }
        put_varint(&mut body, c.buckets.len() as u64);
        for (b, n) in &c.buckets {
            put_varint(&mut body, u64::from(*b));
            put_varint(&mut body, (*n).max(0) as u64);
        }
    }
    let mut out = vec![VERSION];
    put_varint(&mut out, strings.len() as u64);
    for s in &strings {
        put_varint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend(body);
    out
}

/// A blob back as a minute's cells; `where_` names it in the error.
pub(crate) fn decode(bytes: &[u8], where_: &str) -> Result<Minute, StoreError> {
    let damaged = || {
        StoreError::Backend(format!(
            "the stored counts per minute of {where_} are damaged ({} bytes)",
            bytes.len()
        ))
    };
    let mut r = Reader { bytes, at: 0 };
    if r.byte() != Some(VERSION) {
        return Err(damaged());
    }
    let n = r.varint().ok_or_else(damaged)?;
    // Each string takes a byte at least: a count beyond the blob is damage, not an allocation.
    if n > bytes.len() as u64 {
        return Err(damaged());
    }
    let strings: Vec<String> = (0..n)
        .map(|_| r.string())
        .collect::<Option<_>>()
        .ok_or_else(damaged)?;
    let cells = r.varint().ok_or_else(damaged)?;
    if cells > bytes.len() as u64 {
        return Err(damaged());
    }
    let mut out = Minute::new();
    for _ in 0..cells {
        let cell = (|| {
            let measure = strings.get(usize::try_from(r.varint()?).ok()?)?.clone();
            let region = Region::ALL.get(usize::from(r.byte()?)).copied()?;
            let provider = Provider::ALL.get(usize::from(r.byte()?)).copied()?;
            let srv = strings.get(usize::try_from(r.varint()?).ok()?)?.clone();
            let mut c = CellCounts {
                requests: r.count()?,
                within_target: r.count()?,
                succeeded: r.count()?,
                no_response: r.count()?,
                buckets: Vec::new(),
            };
            let nb = r.varint()?;
            if nb > bytes.len() as u64 {
                return None;
            }
            for _ in 0..nb {
                let b = u32::try_from(r.varint()?).ok()?;
                let k = r.count()?;
                c.buckets.push((b, k));
            }
            c.buckets.sort_unstable();
            c.is_possible()
                .then_some(((measure, region, provider, srv), c))
        })();
        let (k, c) = cell.ok_or_else(damaged)?;
        out.insert(k, c);
    }
    if r.at != bytes.len() {
        return Err(damaged());
    }
    Ok(out)
}

/// A minute's cells with `deltas` added (a checkpoint's, all of this minute).
pub(crate) fn add(minute: &mut Minute, deltas: &[&SavedCell]) {
    for d in deltas {
        let k = (d.measure.clone(), d.region, d.provider, d.srv.clone());
        let c = minute.entry(k.clone()).or_default();
        c.add(&d.counts);
        if c.is_zero() {
            minute.remove(&k);
        }
    }
}

/// A minute's cells as [`SavedCell`]s of `month` and `minute`.
pub(crate) fn cells_of(
    month: Month,
    minute_no: u16,
    minute: Minute,
) -> impl Iterator<Item = SavedCell> {
    minute.into_iter().map(
        move |((measure, region, provider, srv), counts)| SavedCell {
            month,
            minute: minute_no,
            measure,
            region,
            provider,
            srv,
            counts,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(
        measure: &str,
        srv: &str,
        requests: i64,
        hits: i64,
        buckets: &[(u32, i64)],
    ) -> SavedCell {
        SavedCell {
            month: Month::new(2024, 3),
            minute: 7,
            measure: measure.into(),
            region: Region::Central,
            provider: Provider::Dsp,
            srv: srv.into(),
            counts: CellCounts {
                requests,
                within_target: hits,
                succeeded: hits,
                no_response: 0,
                buckets: buckets.to_vec(),
            },
        }
    }

    #[test]
    fn a_minute_round_trips_adds_deltas_and_refuses_damage() {
        let mut m = Minute::new();
        let a = cell("PM1.1-DSP", "8.11", 3, 2, &[(1, 1)]);
        let b = cell("SRV8.11", "8.11", 3, 3, &[]);
        add(&mut m, &[&a, &b]);
        let blob = encode(&m);
        assert_eq!(decode(&blob, "t/0 2024-03 minute 7").unwrap(), m);
        // A delta taking a request back, and one taking a whole cell away.
        let back = cell("PM1.1-DSP", "8.11", -1, 0, &[(1, -1)]);
        let gone = cell("SRV8.11", "8.11", -3, -3, &[]);
        add(&mut m, &[&back, &gone]);
        assert_eq!(m.len(), 1);
        let c = m.values().next().unwrap();
        assert_eq!((c.requests, c.within_target, c.buckets.len()), (2, 2, 0));
        // Damage: truncated, a wrong version, an impossible count, a huge length.
        for bad in [
            &blob[..blob.len() - 1],
            &[2u8][..],
            &[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ][..],
        ] {
            let e = decode(bad, "t/0 2024-03 minute 7").unwrap_err();
            assert!(e.to_string().contains("t/0 2024-03 minute 7"), "{e}");
        }
        let mut impossible = Minute::new();
        add(&mut impossible, &[&cell("X", "1", 1, 5, &[])]);
        assert!(
            decode(&encode(&impossible), "x").is_err(),
            "hits above requests"
        );
    }
}
