//! Dead letters as JSON Lines: `{"reason":…,"origin":…,"raw":…}`, with `raw_base64` instead of
//! `raw` when the bytes are not UTF-8, and `"reconstructed":true` when the original bytes were
//! not kept (a displaced conflicting request rebuilt from its stored fields).

use std::io::{self, Write};

use base64::Engine;

use crate::pipeline::{DeadLetter, DeadLetterSink};

/// Writes dead letters to any writer, one JSON object per line.
pub struct JsonlDeadLetters<W: Write> {
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
pub fn to_json(dl: &DeadLetter<'_>) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("reason".into(), dl.reason.as_str().into());
    obj.insert("origin".into(), dl.origin.clone().into());
    match std::str::from_utf8(dl.raw) {
        Ok(text) => obj.insert("raw".into(), text.into()),
        Err(_) => obj.insert(
            "raw_base64".into(),
            base64::engine::general_purpose::STANDARD
                .encode(dl.raw)
                .into(),
        ),
    };
    if dl.reconstructed {
        obj.insert("reconstructed".into(), true.into());
    }
    serde_json::Value::Object(obj).to_string()
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
    use crate::event::DeadReason;

    #[test]
    fn raw_text_or_base64() {
        let dl = DeadLetter {
            reason: DeadReason::MalformedJson,
            origin: "f.jsonl:15".into(),
            raw: br#"{"type":"request","id":"G","srv""#,
            reconstructed: false,
        };
        let v: serde_json::Value = serde_json::from_str(&to_json(&dl)).unwrap();
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
