//! Batches of checked lines, the hand-over between the reading thread and the pipeline's.
//!
//! A replay reads and decodes on one thread and correlates on another. Decoded events borrow
//! from the reader's buffer, which the next read overwrites, so the reading thread copies what
//! the pipeline needs into a batch: each line's bytes (for dead letters and waiting responses)
//! and the event's strings (id, SRV, code, user, device) in one arena, referred to by ranges.
//! The pipeline's thread rebuilds each [`Checked`] borrowing from the batch: no allocation per
//! event on either side, and batches are recycled.

use std::borrow::Cow;
use std::ops::Range;

use crate::engine::availability::State;
use crate::engine::correlate::Pos;
use crate::engine::domain::{Provider, Region};
use crate::engine::event::{Availability, DeadReason, Event, Request, Response};
use crate::engine::pipeline::{Checked, EventType};
use crate::engine::time::Ts;

/// A batch is handed over once it holds this many items...
pub(crate) const BATCH_ITEMS: usize = 4096;
/// ... or this many bytes of lines.
pub(crate) const BATCH_BYTES: usize = 1 << 20;

/// A string of an event: a range of [`Batch::text`].
type Span = (u32, u32);

/// One step for the pipeline, in the order the reader took it.
#[derive(Debug)]
enum Item {
    /// A blank line.
    Blank,
    /// A line: where it came from, its bytes in [`Batch::raw`] and what it held.
    Line {
        /// Its position.
        pos: Pos,
        /// Its bytes.
        raw: (u32, u32),
        /// What [`crate::engine::pipeline::check`] found.
        what: What,
    },
    /// The combined watermark moved here.
    Advance(Ts),
}

/// A checked line with its strings as spans.
#[derive(Debug)]
enum What {
    /// Dead-lettered without touching any state.
    Rejected(EventType, DeadReason),
    /// A valid request.
    Request {
        key: u128,
        at: Ts,
        execute_at: Option<Ts>,
        region: Region,
        provider: Provider,
        id: Span,
        srv: Span,
        user: Option<Span>,
        device: Option<Span>,
    },
    /// A valid response.
    Response {
        key: u128,
        at: Ts,
        id: Span,
        code: Span,
    },
    /// A valid availability event.
    Availability {
        key: u128,
        at: Ts,
        state: State,
        interface: Span,
        incident: Option<Span>,
    },
}

/// Lines on their way from the reader to the pipeline.
#[derive(Debug, Default)]
pub struct Batch {
    raw: Vec<u8>,
    text: String,
    items: Vec<Item>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch {
            raw: Vec::with_capacity(BATCH_BYTES + (64 << 10)),
            text: String::with_capacity(BATCH_BYTES / 2),
            items: Vec::with_capacity(BATCH_ITEMS),
        }
    }

    /// Empties the batch, keeping its allocations.
    pub(crate) fn clear(&mut self) {
        self.raw.clear();
        self.text.clear();
        self.items.clear();
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No item held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Full enough to hand over.
    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS || self.raw.len() >= BATCH_BYTES
    }

    /// Adds a blank line.
    pub fn blank(&mut self) {
        self.items.push(Item::Blank);
    }

    /// Adds a watermark move.
    pub fn advance(&mut self, wm: Ts) {
        self.items.push(Item::Advance(wm));
    }

    fn span(&mut self, s: &str) -> Span {
        let a = self.text.len() as u32;
        self.text.push_str(s);
        (a, self.text.len() as u32)
    }

    /// Adds a checked line and its bytes.
    pub fn line(&mut self, raw: &[u8], pos: Pos, checked: &Checked<'_>) {
        let a = self.raw.len() as u32;
        self.raw.extend_from_slice(raw);
        let raw = (a, self.raw.len() as u32);
        let what = match checked {
            Checked::Rejected { ty, reason } => What::Rejected(*ty, *reason),
            Checked::Valid {
                event: Event::Request(r),
                key,
            } => What::Request {
                key: *key,
                at: r.at,
                execute_at: r.execute_at,
                region: r.region,
                provider: r.provider,
                id: self.span(&r.id),
                srv: self.span(&r.srv),
                user: r.user.as_deref().map(|u| self.span(u)),
                device: r.device.as_deref().map(|d| self.span(d)),
            },
            Checked::Valid {
                event: Event::Response(r),
                key,
            } => What::Response {
                key: *key,
                at: r.at,
                id: self.span(&r.id),
                code: self.span(&r.code),
            },
            Checked::Valid {
                event: Event::Availability(a),
                key,
            } => What::Availability {
                key: *key,
                at: a.at,
                state: a.state,
                interface: self.span(&a.interface),
                incident: a.incident.as_deref().map(|i| self.span(i)),
            },
        };
        self.items.push(Item::Line { pos, raw, what });
    }

    /// The items, in order, with their bytes and their rebuilt [`Checked`] (borrowing from the
    /// batch).
    pub fn steps(&self) -> impl Iterator<Item = Step<'_>> {
        self.items.iter().map(|item| match item {
            Item::Blank => Step::Blank,
            Item::Advance(wm) => Step::Advance(*wm),
            Item::Line { pos, raw, what } => {
                let bytes = &self.raw[range(*raw)];
                let s = |sp: &Span| Cow::Borrowed(self.text.get(range(*sp)).unwrap_or(""));
                let checked = match what {
                    What::Rejected(ty, reason) => Checked::Rejected {
                        ty: *ty,
                        reason: *reason,
                    },
                    What::Request {
                        key,
                        at,
                        execute_at,
                        region,
                        provider,
                        id,
                        srv,
                        user,
                        device,
                    } => Checked::Valid {
                        key: *key,
                        event: Event::Request(Request {
                            id: s(id),
                            srv: s(srv),
                            region: *region,
                            provider: *provider,
                            at: *at,
                            execute_at: *execute_at,
                            user: user.as_ref().map(s),
                            device: device.as_ref().map(s),
                        }),
                    },
                    What::Response { key, at, id, code } => Checked::Valid {
                        key: *key,
                        event: Event::Response(Response {
                            id: s(id),
                            code: s(code),
                            at: *at,
                        }),
                    },
                    What::Availability {
                        key,
                        at,
                        state,
                        interface,
                        incident,
                    } => Checked::Valid {
                        key: *key,
                        event: Event::Availability(Availability {
                            interface: s(interface),
                            state: *state,
                            at: *at,
                            incident: incident.as_ref().map(s),
                        }),
                    },
                };
                Step::Line(bytes, *pos, checked)
            }
        })
    }
}

/// One step rebuilt from a [`Batch`].
#[derive(Debug)]
pub enum Step<'a> {
    /// A blank line.
    Blank,
    /// A line's bytes, position and checked event.
    Line(&'a [u8], Pos, Checked<'a>),
    /// The combined watermark moved here.
    Advance(Ts),
}

fn range((a, b): (u32, u32)) -> Range<usize> {
    a as usize..b as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::pipeline::check;

    /// Whatever a line holds (escapes, missing optional fields, rejections), the event rebuilt
    /// from the batch equals the one checked from the line.
    #[test]
    fn rebuilds_what_was_checked() {
        let lines: [&[u8]; 5] = [
            br#"{"type":"request","id":"a\u0041","srv":"8.1.1","region":"north","provider":"dsp","user":"U","device":"D","at":"2024-03-01T00:00:00Z"}"#,
            br#"{"type":"request","id":"b","srv":"4.17","region":"south","provider":"s1sp","at":"2024-03-01T00:00:01Z"}"#,
            br#"{"type":"response","id":"b","code":"I0","at":"2024-03-01T00:00:02Z"}"#,
            br#"{"type":"response","id":"b","code":"I0","at":"2030-03-01T00:00:02Z"}"#,
            b"not json",
        ];
        // 2025-01-01T00:00:00Z
        let limit = Some(Ts(1_735_689_600 * crate::engine::time::NANOS_PER_SEC));
        let mut batch = Batch::new();
        batch.blank();
        for (i, l) in lines.iter().enumerate() {
            batch.line(l, Pos::new(1, i as u64), &check(l, 4096, limit));
        }
        batch.advance(Ts(7));
        let steps: Vec<Step<'_>> = batch.steps().collect();
        assert_eq!(steps.len(), lines.len() + 2);
        assert!(matches!(steps[0], Step::Blank));
        assert!(matches!(steps[6], Step::Advance(Ts(7))));
        for (i, l) in lines.iter().enumerate() {
            let Step::Line(bytes, pos, got) = &steps[i + 1] else {
                panic!("step {i} is not a line");
            };
            assert_eq!(*bytes, *l);
            assert_eq!(*pos, Pos::new(1, i as u64));
            let want = check(l, 4096, limit);
            assert_eq!(format!("{got:?}"), format!("{want:?}"), "line {i}");
        }
    }
}
