//! Fuzz target: the hand-written RFC 3339 parser. Whatever it accepts, jiff (a complete
//! implementation) reads as the same instant; it never panics.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some(ts) = srv_opr::engine::time::parse_rfc3339(data) else {
            return;
        };
        let text = std::str::from_utf8(data).expect("accepted text is UTF-8");
        let oracle: jiff::Timestamp = text
            .parse()
            .unwrap_or_else(|e| panic!("{text:?} accepted, but jiff says {e}"));
        assert_eq!(
            i128::from(ts.0),
            oracle.as_nanosecond(),
            "{text:?}: a different instant"
        );
    });
}
