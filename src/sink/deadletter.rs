//! Dead letters as JSON Lines: `{"reason":…,"origin":…,"raw":…}` (a `missing_field` one with a
//! `detail` after its reason: which field, and what was found), with `raw_base64` instead of
//! `raw` when the bytes are not UTF-8, and `"reconstructed":true` when the original bytes were
//! not kept (a displaced conflicting request rebuilt from its stored fields).

use std::io::{self, Write};

use base64::Engine;

use crate::engine::pipeline::{DeadLetter, DeadLetterSink};

/// Writes dead letters to any writer, one JSON object per line.
pub(crate) struct JsonlDeadLetters<W: Write> {
    w: W,
    line: Vec<u8>,
}

impl<W: Write> JsonlDeadLetters<W> {
    /// Writes into `w`.
    pub fn new(w: W) -> JsonlDeadLetters<W> {
        JsonlDeadLetters {
            w,
            line: Vec::with_capacity(256),
        }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.w
    }
}

/// One dead letter's JSON text (no line end).
pub(crate) fn to_json(dl: &DeadLetter<'_>) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    // Written by hand (not through a map, which sorts keys) so the keys keep the SPEC's order.
    let mut s = format!("{{\"reason\":{},", q(dl.reason.as_str()));
    // Which field, and what was found in it (issue 33): `missing_field` covers absent, null,
    // empty and wrongly typed fields alike.
    if dl.reason == crate::engine::event::DeadReason::MissingField
        && let Some(d) = crate::engine::event::missing_field_detail(dl.raw)
    {
        s.push_str(&format!("\"detail\":{},", q(&d)));
    }
    s.push_str(&format!("\"origin\":{},", q(&dl.origin)));
    match std::str::from_utf8(dl.raw) {
        Ok(text) => s.push_str(&format!("\"raw\":{}", q(text))),
        Err(_) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(dl.raw);
            s.push_str(&format!("\"raw_base64\":{}", q(&b64)));
        }
    }
    if dl.reconstructed {
        s.push_str(",\"reconstructed\":true");
    }
    s.push('}');
    s
}

impl<W: Write> DeadLetterSink for JsonlDeadLetters<W> {
    fn write(&mut self, dl: &DeadLetter<'_>) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(to_json(dl).as_bytes());
        self.line.push(b'\n');
        self.w.write_all(&self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::DeadReason;

    #[test]
    fn raw_text_or_base64() {
        let dl = DeadLetter {
            reason: DeadReason::MalformedJson,
            origin: "f.jsonl:15".into(),
            raw: br#"{"type":"request","id":"G","srv""#,
            reconstructed: false,
        };
        let text = to_json(&dl);
        assert!(
            text.starts_with(r#"{"reason":"malformed_json","origin":"f.jsonl:15","raw":"#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["reason"], "malformed_json");
        assert_eq!(v["origin"], "f.jsonl:15");
        assert_eq!(v["raw"], r#"{"type":"request","id":"G","srv""#);
        let dl = DeadLetter {
            raw: b"\xff\xfe",
            ..dl
        };
        let v: serde_json::Value = serde_json::from_str(&to_json(&dl)).unwrap();
        assert_eq!(v["raw_base64"], "//4=");
        assert!(v.get("raw").is_none());
    }
}
