//! Fuzz target: the event decoder's hand-written fast path against decoding through serde_json
//! alone (the oracle). For any bytes both give the same event or the same dead-letter reason.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let fast = srv_opr::engine::event::decode(data, 65_536);
        let oracle = srv_opr::engine::event::decode_with_serde_only(data, 65_536);
        assert_eq!(fast, oracle, "input: {:?}", String::from_utf8_lossy(data));
    });
}
