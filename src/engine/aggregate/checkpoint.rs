//! The aggregates' checkpoint state: a row as the store keeps it ([`SavedRow`], its histogram in
//! hdrhistogram's V2 encoding), which blocks changed since the last checkpoint, and the
//! aggregates rebuilt from stored rows.

use hdrhistogram::Histogram;

use crate::engine::calendar::Month;
use crate::engine::catalog::Bucket;

use super::aggregates::{AggregateStats, Aggregates, Block};
use super::histogram::{SEGMENT_ACK, SEGMENT_RESPONSE};
use super::row::{Row, Sampled};
use super::users::{UserCounts, Users};

/// Why a row's histogram could not be encoded for a checkpoint, or decoded from one.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// hdrhistogram refused to encode it (its error is not `std::error::Error`: its text).
    #[error("cannot encode a histogram: {0}")]
    Encode(String),
    /// The stored bytes are not a V2 histogram.
    #[error("cannot decode a stored histogram: {0}")]
    Decode(String),
}

/// A row as a checkpoint stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SavedRow {
    /// Requests decided.
    pub requests: u64,
    /// Within TRT.
    pub within_target: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// No response.
    pub no_response: u64,
    /// Misses by bucket (`Bucket.0`, count).
    pub buckets: Vec<(u32, u64)>,
    /// Evidence by bucket (`Bucket.0`, sample).
    pub samples: Vec<(u32, Vec<(u64, String)>)>,
    /// The histogram in hdrhistogram's V2 encoding.
    pub histogram: Option<Vec<u8>>,
    /// Exact longest response time.
    pub max_ms: Option<u64>,
    /// Revision.
    pub revision: u32,
    /// Counts by day of the month with requests: (day 1–31, requests, within target,
    /// succeeded).
    pub days: Vec<(u8, [u64; 3])>,
    /// Requests with at least one acknowledgement.
    pub acked: u64,
    /// Request to first acknowledgement, V2-encoded.
    pub ack_histogram: Option<Vec<u8>>,
    /// First acknowledgement to final response, V2-encoded.
    pub after_ack_histogram: Option<Vec<u8>>,
    /// Counts by service user, by name: requests, within target, succeeded, no response.
    pub users: Vec<(String, [u64; 4])>,
}

/// A histogram in hdrhistogram's V2 encoding.
fn encode_hist(h: &Option<Box<Histogram<u64>>>) -> Result<Option<Vec<u8>>, RowError> {
    let Some(h) = h else { return Ok(None) };
    let mut bytes = Vec::new();
    hdrhistogram::serialization::Serializer::serialize(
        &mut hdrhistogram::serialization::V2Serializer::new(),
        &**h,
        &mut bytes,
    )
    .map_err(|e| RowError::Encode(format!("{e:?}")))?;
    Ok(Some(bytes))
}

/// A histogram back from [`encode_hist`]'s bytes.
fn decode_hist(bytes: &Option<Vec<u8>>) -> Result<Option<Box<Histogram<u64>>>, RowError> {
    let Some(bytes) = bytes else { return Ok(None) };
    let mut h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| RowError::Decode(format!("{e:?}")))?;
    // Decoded histograms have fixed bounds; ours grow with what they record.
    h.auto(true);
    Ok(Some(Box::new(h)))
}

impl Row {
    /// The row as a checkpoint stores it.
    pub fn save(&self) -> Result<SavedRow, RowError> {
        let histogram = encode_hist(&self.hist)?;
        let mut users: Vec<(String, [u64; 4])> = self
            .users
            .iter()
            .map(|(u, c)| {
                (
                    u.to_string(),
                    [c.requests, c.within_target, c.succeeded, c.no_response],
                )
            })
            .collect();
        users.sort();
        Ok(SavedRow {
            requests: self.requests,
            within_target: self.within_target,
            succeeded: self.succeeded,
            no_response: self.no_response,
            buckets: self.buckets.iter().map(|(b, n)| (b.0, *n)).collect(),
            samples: self
                .samples
                .iter()
                .map(|(b, v)| (b.0, v.iter().map(|(k, t)| (*k, t.to_string())).collect()))
                .collect(),
            histogram,
            max_ms: self.max_ms,
            revision: self.revision,
            days: self.days().collect(),
            acked: self.acked,
            ack_histogram: encode_hist(&self.ack_hist)?,
            after_ack_histogram: encode_hist(&self.after_ack_hist)?,
            users,
        })
    }

    /// A row from its checkpoint.
    pub(crate) fn restore(s: &SavedRow) -> Result<Row, RowError> {
        let hist = decode_hist(&s.histogram)?;
        let mut row = Row {
            requests: s.requests,
            within_target: s.within_target,
            succeeded: s.succeeded,
            no_response: s.no_response,
            buckets: s.buckets.iter().map(|(b, n)| (Bucket(*b), *n)).collect(),
            samples: s
                .samples
                .iter()
                .map(|(b, v)| {
                    let mut v: Vec<Sampled> =
                        v.iter().map(|(k, t)| (*k, t.as_str().into())).collect();
                    v.sort_by_key(|x| x.0);
                    (Bucket(*b), v)
                })
                .collect(),
            hist,
            max_ms: s.max_ms,
            revision: s.revision,
            days: None,
            // At least the default, or what the samples show was kept; aggregates of another
            // cap set theirs at the next request counted.
            sample_cap: s
                .samples
                .iter()
                .map(|(_, v)| v.len())
                .max()
                .filter(|n| *n > super::row::SAMPLE_SIZE)
                .map_or(0, |n| u16::try_from(n).unwrap_or(u16::MAX)),
            acked: s.acked,
            ack_hist: decode_hist(&s.ack_histogram)?,
            after_ack_hist: decode_hist(&s.after_ack_histogram)?,
            users: {
                let mut users = Users::default();
                for (u, c) in &s.users {
                    users.insert(
                        u,
                        UserCounts {
                            requests: c[0],
                            within_target: c[1],
                            succeeded: c[2],
                            no_response: c[3],
                        },
                    );
                }
                users
            },
        };
        for (day, c) in s.days.iter().filter(|(day, _)| (1..=31).contains(day)) {
            row.days_mut()[usize::from(*day) - 1] = *c;
        }
        Ok(row)
    }
}

impl Aggregates {
    /// Starts recording which blocks change, for [`Aggregates::take_changes`], and the counts per
    /// minute, for [`Aggregates::take_cells`].
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(Default::default);
        self.cells.get_or_insert_with(Default::default);
    }

    /// The counts per minute changed since the last call, by name (`srv_name` resolves an
    /// interned SRV).
    pub fn take_cells(&mut self, srv_name: impl Fn(u32) -> String) -> Vec<super::cells::SavedCell> {
        let defs = self.defs.clone();
        match &mut self.cells {
            Some(c) => c.take(&defs, srv_name),
            None => Vec::new(),
        }
    }

    /// The blocks changed since the last call, as they are now.
    pub fn take_changes(&mut self) -> Vec<(Month, u16, Block)> {
        let Some(changed) = &mut self.changed else {
            return Vec::new();
        };
        let mut out: Vec<(Month, u16, Block)> = changed
            .drain()
            .filter_map(|k| self.blocks.get(&k).map(|b| (k.0, k.1, b.clone())))
            .collect();
        out.sort_by_key(|(m, i, _)| (*m, *i));
        out
    }

    /// Puts a stored block back (restoring a checkpoint).
    pub(crate) fn restore_block(&mut self, month: Month, measure: u16, regions: [Row; 3]) {
        // The live histogram is not stored: it is rebuilt from the rows' response times (each
        // within 0.1 %, so a value within 0.1 % above a bucket edge may land below it).
        for (segment, rt) in self.rt.iter_mut().enumerate() {
            let Some(rt) = rt.get_mut(measure as usize) else {
                continue;
            };
            for (h, row) in rt.iter_mut().zip(&regions) {
                let hist = match segment {
                    SEGMENT_RESPONSE => &row.hist,
                    SEGMENT_ACK => &row.ack_hist,
                    _ => &row.after_ack_hist,
                };
                if let Some(hist) = hist {
                    for v in hist.iter_recorded() {
                        let ms = hist.highest_equivalent(v.value_iterated_to());
                        h.add_n(&self.defs.rt_bounds_ms, ms, v.count_at_value());
                    }
                }
            }
        }
        let all_revision = regions.iter().map(|r| r.revision).sum();
        self.blocks.insert(
            (month, measure),
            Block {
                regions,
                all_revision,
            },
        );
    }

    /// Puts stored counters back (restoring a checkpoint).
    pub(crate) fn restore_stats(&mut self, stats: AggregateStats) {
        self.stats = stats;
    }
}
