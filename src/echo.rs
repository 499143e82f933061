//! What an error message may echo of a value a user gave: the value whole when short, else cut,
//! so that a megabyte value in a file never comes back as a megabyte of terminal; and what a
//! terminal may be shown of text someone else sent ([`printable`]). A leaf: it imports nothing
//! of the crate.

/// `value` whole if at most `max_chars` characters, else its start, an ellipsis and its length.
pub fn cut(value: &str, max_chars: usize) -> String {
    if value.chars().count() <= max_chars {
        return value.to_string();
    }
    let head: String = value.chars().take(max_chars).collect();
    format!("{head}… ({} bytes)", value.len())
}

/// `line` whole if at most `max_chars` characters, else its start and its end around what was
/// cut: for a message whose reason follows the value it quotes.
pub(crate) fn cut_middle(line: &str, max_chars: usize) -> String {
    let n = line.chars().count();
    if n <= max_chars {
        return line.to_string();
    }
    let keep = max_chars / 2;
    let head: String = line.chars().take(keep).collect();
    let tail: String = line.chars().skip(n - keep).collect();
    format!("{head} …({} characters cut)… {tail}", n - 2 * keep)
}

/// Whether `c` would act on a terminal instead of showing: C0 and C1 controls (ESC, BEL, CR,
/// LF, CSI…), DEL, and the format characters that reorder or hide text (bidirectional
/// overrides and isolates, zero-width characters).
pub fn acts(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `text` with every character that would act on a terminal written out instead (`\r`, `\n`,
/// `\t`, `\x1b`, `\u{202e}`), so that text a server sent can neither move the cursor, colour
/// the screen, nor forge lines of output that a script would read.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(acts) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if acts(c) && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if acts(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_would_act_on_a_terminal_is_written_out() {
        assert_eq!(printable("plain é"), "plain é");
        assert_eq!(
            printable("g\r\nsrv-opr status: OK\x1b[2J\x07\u{9b}\u{202e}x\u{7f}"),
            "g\\r\\nsrv-opr status: OK\\x1b[2J\\x07\\x9b\\u{202e}x\\x7f"
        );
    }

    #[test]
    fn long_values_are_cut() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut(&"x".repeat(1000), 3), "xxx… (1000 bytes)");
        assert_eq!(cut("é".repeat(5).as_str(), 2), "éé… (10 bytes)");
    }

    #[test]
    fn long_lines_keep_their_start_and_end() {
        assert_eq!(cut_middle("short", 10), "short");
        let line = format!("key: {} is not a number", "9".repeat(1000));
        let cut = cut_middle(&line, 40);
        assert!(cut.starts_with("key: 9"), "{cut}");
        assert!(cut.ends_with("is not a number"), "{cut}");
        assert!(cut.contains("(981 characters cut)"), "{cut}");
    }
}
