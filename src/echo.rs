//! What an error message may echo of a value a user gave: the value whole when short, else cut,
//! so that a megabyte value in a file never comes back as a megabyte of terminal. A leaf: it
//! imports nothing of the crate.

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
pub fn cut_middle(line: &str, max_chars: usize) -> String {
    let n = line.chars().count();
    if n <= max_chars {
        return line.to_string();
    }
    let keep = max_chars / 2;
    let head: String = line.chars().take(keep).collect();
    let tail: String = line.chars().skip(n - keep).collect();
    format!("{head} …({} characters cut)… {tail}", n - 2 * keep)
}

#[cfg(test)]
mod tests {
    use super::*;

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
