//! Fuzz target: restoring a partition from a damaged state log. Any bytes as a chunk, as a
//! record or as a row's buckets are an error or a value, never a panic.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let mut log = srv_opr::store::codec::LogReplay::default();
        let split = data.len() / 2;
        let _ = log.apply(&data[..split], true);
        let _ = log.apply(&data[split..], false);
        let _ = log.finish();
        let _ = srv_opr::store::codec::decode_entry(data);
        let _ = srv_opr::store::codec::buckets_from(&String::from_utf8_lossy(data));
    });
}
