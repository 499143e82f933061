//! Fuzz target: what `srv-opr status` shows of a `/status.json` a server sends, whoever runs the
//! server. Whatever it sends, the tables and the `--json` text hold no character that acts on a
//! terminal (only line ends between lines), and nothing panics.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(body) = std::str::from_utf8(data) else {
            return;
        };
        let Ok((status, json)) = srv_opr::cli::status::read_status(body) else {
            return;
        };
        for text in [
            json,
            srv_opr::cli::status::render(&status, true, false),
            srv_opr::cli::status::render(&status, false, true),
        ] {
            // Colour codes are ours (render's `colour`): only ESC followed by `[` digits `m`.
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\u{1b}' {
                    assert_eq!(chars.next(), Some('['), "a bare ESC");
                    for d in chars.by_ref() {
                        if d == 'm' {
                            break;
                        }
                        assert!(d.is_ascii_digit() || d == ';', "not a colour: {d:?}");
                    }
                    continue;
                }
                assert!(c == '\n' || !srv_opr::echo::acts(c), "{c:?} shown");
            }
        }
    });
}
