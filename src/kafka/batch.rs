//! Messages copied out of librdkafka for one worker, keys and values back to back in one
//! buffer: the wire format between the fetch thread, which fills batches, and the workers,
//! which read them in offset order per partition. Batches are reused through a pool.

use std::time::{Duration, Instant};

/// A batch goes to its worker at this many messages…
const BATCH_ITEMS: usize = 2048;
/// …or this many bytes…
const BATCH_BYTES: usize = 1 << 20;
/// …or when it is this old, so a trickle of live traffic is not held back.
const BATCH_AGE: Duration = Duration::from_millis(20);

/// `key_len` of a message without a key.
const NO_KEY: u32 = u32::MAX;

/// Messages for one worker.
#[derive(Default)]
pub(super) struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
    opened: Option<Instant>,
}

struct Item {
    slot: u32,
    offset: i64,
    /// [`NO_KEY`]: no key.
    key_len: u32,
    value_len: u32,
}

/// One message as a worker reads it.
pub(super) struct Message<'a> {
    /// The partition's slot (its worker's handle on it).
    pub slot: u32,
    /// Its offset.
    pub offset: i64,
    /// Its key, if it has one.
    pub key: Option<&'a [u8]>,
    /// Its value (empty for a null value).
    pub value: &'a [u8],
}

impl Batch {
    /// Copies one message in.
    #[inline]
    pub(super) fn push(&mut self, slot: u32, offset: i64, key: Option<&[u8]>, value: &[u8]) {
        if self.opened.is_none() {
            self.opened = Some(Instant::now());
        }
        let key_len = match key {
            Some(k) => {
                self.data.extend_from_slice(k);
                k.len() as u32
            }
            None => NO_KEY,
        };
        self.data.extend_from_slice(value);
        self.items.push(Item {
            slot,
            offset,
            key_len,
            value_len: value.len() as u32,
        });
    }

    /// Full: time to send it.
    pub(super) fn is_full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS || self.data.len() >= BATCH_BYTES
    }

    /// Holding messages for longer than a batch should wait.
    pub(super) fn is_old(&self) -> bool {
        self.opened.is_some_and(|t| t.elapsed() >= BATCH_AGE)
    }

    /// No messages.
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Messages held.
    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    /// The messages, in the order they were pushed.
    #[inline]
    pub(super) fn messages(&self) -> impl Iterator<Item = Message<'_>> {
        let mut at = 0usize;
        self.items.iter().map(move |item| {
            let key = (item.key_len != NO_KEY).then(|| {
                let k = &self.data[at..at + item.key_len as usize];
                at += item.key_len as usize;
                k
            });
            let value = &self.data[at..at + item.value_len as usize];
            at += item.value_len as usize;
            Message {
                slot: item.slot,
                offset: item.offset,
                key,
                value,
            }
        })
    }

    /// Empties it for reuse, keeping its buffers.
    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.data.clear();
        self.opened = None;
    }
}
