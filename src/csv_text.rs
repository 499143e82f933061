//! Text cells of the CSV files srv-opr writes (`rpl.csv`, `failures.csv`, `evidence/`,
//! `opr-inputs.csv`, `score.csv`): quoted when they hold a comma, quote or line end, and
//! neutralised against formula injection, since these files are opened in spreadsheets. A text
//! cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`
//! (OWASP's guidance), so that a request id such as `=HYPERLINK(…)` shows as text and never
//! runs. Numbers are written by their writers directly and are never touched. A leaf: it
//! imports nothing of the crate.

use std::borrow::Cow;

/// Whether a spreadsheet would read `s` as a formula (or strip a leading control character). A
/// lone `-` is none (it is `users.csv`'s name for requests without a user).
fn risky(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s != "-"
}

/// `s` as one CSV text cell: neutralised if a spreadsheet would run it, quoted if needed.
pub fn field(s: &str) -> Cow<'_, str> {
    let s: Cow<'_, str> = if risky(s) {
        format!("'{s}").into()
    } else {
        s.into()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s
    }
}

/// A text cell as it was before [`field`] neutralised it (for reading srv-opr's own CSV back):
/// the leading `'` dropped when what follows it is one [`field`] would have neutralised.
pub(crate) fn unneutralised(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if risky(rest) => rest,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_read_back() {
        for (cell, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "\"'\rx\""),
            ("req-1", "req-1"),
            ("a,b", "\"a,b\""),
            ("'quoted", "'quoted"),
        ] {
            assert_eq!(field(cell), written, "{cell:?}");
        }
        assert_eq!(unneutralised("'=X"), "=X");
        assert_eq!(unneutralised("'quoted"), "'quoted");
        assert_eq!(unneutralised("PM4.3"), "PM4.3");
    }
}
