//! Fuzz target: the score-input CSV reader. Any text is rows or problems, never a panic, and no
//! problem quotes more than a few hundred characters of the input.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        if let Err(problems) = srv_opr::score::inputs::parse("fuzz.csv", &text) {
            assert!(problems.total() >= problems.len());
            for p in problems.iter() {
                assert!(p.chars().count() < 1_000, "a problem of {} chars", p.len());
            }
        }
    });
}
