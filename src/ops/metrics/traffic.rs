//! The events read (`srv_events_total` by type and result), the lines of ignored types, and
//! the dead letters by reason.

use prometheus::IntCounterVec;

use super::families::{Families, set_counter};
use crate::engine::event::DeadReason;
use crate::engine::pipeline::{EventResult, EventType};
use crate::ops::live::LiveSnapshot;

/// What became of the lines read.
pub(super) struct Traffic {
    events: IntCounterVec,
    /// `srv_events_ignored_total{type}`: lines of the types `input.ignore_types` lists.
    ignored: IntCounterVec,
    dead_letters: IntCounterVec,
}

impl Traffic {
    /// Registers the families.
    pub(super) fn new(f: &Families<'_>) -> prometheus::Result<Traffic> {
        Ok(Traffic {
            events: f.counters(
                "srv_events_total",
                "Events read, by type and what became of them",
                &["type", "result"],
            )?,
            ignored: f.counters(
                "srv_events_ignored_total",
                "Lines of a type input.ignore_types lists: counted, otherwise left alone",
                &["type"],
            )?,
            dead_letters: f.counters(
                "srv_dead_letters_total",
                "Dead letters, by reason",
                &["reason"],
            )?,
        })
    }

    /// Every type × result and every reason, at zero.
    pub(super) fn precreate(&self) {
        for t in EventType::ALL {
            for res in EventResult::ALL {
                self.events.with_label_values(&[t.as_str(), res.as_str()]);
            }
        }
        for reason in DeadReason::ALL {
            self.dead_letters.with_label_values(&[reason.as_str()]);
        }
    }

    /// The counts from a snapshot.
    pub(super) fn refresh(&self, s: &LiveSnapshot) {
        for t in EventType::ALL {
            for r in EventResult::ALL {
                set_counter(
                    &self.events,
                    &[t.as_str(), r.as_str()],
                    s.stats.by_type_result[t as usize][r as usize],
                );
            }
        }
        // Only the configured types reach this map: its keys are configuration, not content.
        for (t, n) in &s.stats.ignored_by_type {
            set_counter(&self.ignored, &[t.as_str()], *n);
        }
        for (i, reason) in DeadReason::ALL.iter().enumerate() {
            set_counter(
                &self.dead_letters,
                &[reason.as_str()],
                s.stats.dead_letters[i],
            );
        }
    }
}
