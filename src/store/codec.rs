//! The byte layouts the stores share for correlator state: a request id's 128-bit key and a
//! record as one fixed 35-byte value (little-endian), so a checkpoint writes one row per record.

use crate::config::{Provider, Region};
use crate::correlate::SavedEntry;
use crate::store::StoreError;

/// Bytes of an encoded record.
pub const ENTRY_BYTES: usize = 35;

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
pub fn encode_entry(e: &SavedEntry) -> [u8; ENTRY_BYTES] {
    let mut b = [0u8; ENTRY_BYTES];
    b[0..8].copy_from_slice(&e.at.to_le_bytes());
    b[8..16].copy_from_slice(&e.fin_at.unwrap_or(i64::MIN).to_le_bytes());
    b[16..24].copy_from_slice(&e.pos.to_le_bytes());
    b[24..28].copy_from_slice(&e.srv.to_le_bytes());
    b[28..32].copy_from_slice(&e.fin_code.to_le_bytes());
    b[32] = e.region as u8;
    b[33] = e.provider as u8;
    b[34] = e.decided as u8;
    b
}

/// A record back from its bytes.
pub fn decode_entry(b: &[u8]) -> Result<SavedEntry, StoreError> {
    if b.len() != ENTRY_BYTES || b[32] > 2 || b[33] > 2 || b[34] > 1 {
        return Err(StoreError::Backend(format!(
            "a stored request record is damaged ({} bytes)",
            b.len()
        )));
    }
    let i64_at = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    let fin_at = i64_at(8);
    Ok(SavedEntry {
        at: i64_at(0),
        fin_at: (fin_at != i64::MIN).then_some(fin_at),
        pos: i64_at(16) as u64,
        srv: u32_at(24),
        fin_code: u32_at(28),
        region: Region::from_index(b[32] as usize),
        provider: Provider::from_index(b[33] as usize),
        decided: b[34] == 1,
    })
}

/// Bucket counts as `{"E20":3,"slow":1}` text (readable in a SQL shell).
pub fn buckets_text(buckets: &[(u32, u64)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = buckets
        .iter()
        .map(|(b, n)| (crate::catalog::Bucket(*b).name(), (*n).into()))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Bucket counts back from their text.
pub fn buckets_from(text: &str) -> Result<Vec<(u32, u64)>, StoreError> {
    let bad = || StoreError::Backend(format!("stored failure buckets are damaged: {text}"));
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|_| bad())?;
    let mut out = Vec::with_capacity(map.len());
    for (name, n) in map {
        let b = match name.as_str() {
            "no_response" => crate::catalog::Bucket::NO_RESPONSE,
            "slow" => crate::catalog::Bucket::SLOW,
            "other" => crate::catalog::Bucket::OTHER,
            code => crate::catalog::Bucket::of_code(code),
        };
        out.push((b.0, n.as_u64().ok_or_else(bad)?));
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for e in [
            SavedEntry {
                at: 1_709_251_200_123_456_789,
                fin_at: Some(1_709_251_230_000_000_000),
                pos: (3 << 48) | 12345,
                srv: 7,
                fin_code: 2,
                region: Region::South,
                provider: Provider::Csp,
                decided: true,
            },
            SavedEntry {
                at: -5,
                fin_at: None,
                pos: 0,
                srv: u32::MAX,
                fin_code: 0,
                region: Region::North,
                provider: Provider::Dsp,
                decided: false,
            },
        ] {
            assert_eq!(decode_entry(&encode_entry(&e)).unwrap(), e);
        }
        assert!(decode_entry(&[0u8; 10]).is_err());
        let k = 0x0123_4567_89ab_cdef_0011_2233_4455_6677u128;
        assert_eq!(key_from(&key_bytes(k)).unwrap(), k);
    }

    #[test]
    fn buckets_round_trip_as_readable_text() {
        let b = vec![
            (crate::catalog::Bucket::NO_RESPONSE.0, 4),
            (crate::catalog::Bucket::SLOW.0, 1),
            (crate::catalog::Bucket::of_code("E20").0, 3),
        ];
        let t = buckets_text(&b);
        assert!(t.contains("\"E20\":3") && t.contains("\"slow\":1"), "{t}");
        assert_eq!(buckets_from(&t).unwrap(), b);
    }
}
