//! The stateless half of processing an event: decode, validate, the future-timestamp guard and
//! the id's key. It touches no state, so a reading thread can run it ahead of the pipeline.

use crate::engine::correlate::key_of;
use crate::engine::event::{DeadReason, Event, decode};
use crate::engine::time::Ts;

use super::accounting::EventType;

/// An event as [`check`] read it: valid, with the key of its id, or rejected with a reason.
#[derive(Debug)]
pub enum Checked<'a> {
    /// A valid event.
    Valid {
        /// The event.
        event: Event<'a>,
        /// [`key_of`] its id.
        key: u128,
    },
    /// An event that is dead-lettered without touching any state.
    Rejected {
        /// Its type, for accounting (a well-formed event stamped in the future keeps its own).
        ty: EventType,
        /// Why.
        reason: DeadReason,
    },
}

/// The stateless half of [`Pipeline::process`](super::Pipeline::process): decodes and validates `raw`, rejects an event
/// stamped after `future_limit`, and hashes the id. Touches no state, so a reading thread can
/// run it ahead of the thread that owns the pipeline.
pub fn check(raw: &[u8], max_event_bytes: usize, future_limit: Option<Ts>) -> Checked<'_> {
    let event = match decode(raw, max_event_bytes) {
        Ok(e) => e,
        Err(reason) => {
            return Checked::Rejected {
                ty: EventType::Invalid,
                reason,
            };
        }
    };
    if future_limit.is_some_and(|limit| event.at() > limit) {
        let ty = match event {
            Event::Request(_) => EventType::Request,
            Event::Response(_) => EventType::Response,
            Event::Availability(_) => EventType::Availability,
        };
        return Checked::Rejected {
            ty,
            reason: DeadReason::FutureTimestamp,
        };
    }
    let key = key_of(event.id());
    Checked::Valid { event, key }
}
