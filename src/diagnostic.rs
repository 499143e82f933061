//! How an error reads to a person: its `source` chain on one line. A leaf every layer may use
//! (in logs and in the problems it reports); it imports nothing of the crate.

/// An error and its `source` chain, joined by `: `, skipping a cause whose text its parent
/// already ends with (a wrapper that repeats its cause).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}
