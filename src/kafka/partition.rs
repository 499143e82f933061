//! The default partitioner of the Java client (`murmur2`, which librdkafka calls
//! `murmur2_random` when null keys go to random partitions): partition =
//! `(murmur2(key) & 0x7fffffff) % partitions`.

/// Kafka's murmur2 (seed `0x9747b28c`), as `org.apache.kafka.common.utils.Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition a key belongs to among `partitions`.
pub fn partition_of(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) as u32 & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

/// The `id` of a JSON event line, found without a full decode (the producer's key). `None` when
/// the line has no plain `"id":"…"` (bad lines: they go to a random partition, like any null key).
pub fn key_of_line(line: &[u8]) -> Option<&[u8]> {
    let at = memchr::memmem::find(line, br#""id":""#)? + 6;
    let end = memchr::memchr(b'"', &line[at..])?;
    let id = &line[at..at + end];
    (!id.is_empty() && !id.contains(&b'\\')).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_java_clients_test_vectors() {
        // From the Java client's own tests of Utils.murmur2.
        for (input, want) in [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ] {
            assert_eq!(murmur2(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn keys_come_from_the_id_field() {
        let line =
            br#"{"type":"response","id":"90-B3:00-DB:7","code":"I0","at":"2024-03-01T10:00:00Z"}"#;
        assert_eq!(key_of_line(line), Some(&b"90-B3:00-DB:7"[..]));
        assert_eq!(key_of_line(br#"{"type":"request","id"#), None);
        assert!((0..6).contains(&partition_of(b"anything", 6)));
    }
}
