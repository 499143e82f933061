//! Response-time histograms: the exact-to-0.1 % hdrhistogram each row keeps (what `rpl.csv`'s
//! percentiles come from) and [`RtHist`], the live histogram in fixed buckets with an edge at
//! every configured TRT and deadline (what `srv_response_time_seconds` exposes).

use hdrhistogram::Histogram;

/// Significant digits of the response-time histograms: ≤ 0.1 % relative error (SPEC §5).
pub(super) const HIST_SIGFIG: u8 = 3;

pub(super) fn new_histogram() -> Histogram<u64> {
    // Cannot fail: 3 significant digits is within hdrhistogram's 0–5.
    Histogram::new(HIST_SIGFIG).unwrap_or_else(|_| unreachable!("valid histogram precision"))
}

/// Records one value. `record` (not `saturating_record`) so the histogram grows to the value:
/// an auto-resizing histogram starts small and saturating would clamp to its initial bound.
pub(super) fn record(h: &mut Histogram<u64>, ms: u64) {
    if let Err(e) = h.record(ms) {
        tracing::error!(error = ?e, value = ms, "internal: could not record a response time");
    }
}

/// The live histograms of the three time segments, each by measure and region: response time
/// ([`SEGMENT_RESPONSE`]), request to first acknowledgement ([`SEGMENT_ACK`]), first
/// acknowledgement to final response ([`SEGMENT_AFTER_ACK`]).
pub type Segments = [Vec<[RtHist; 3]>; 3];

/// [`Segments`]: the response time (due time to final response).
pub const SEGMENT_RESPONSE: usize = 0;
/// [`Segments`]: request to first acknowledgement.
pub const SEGMENT_ACK: usize = 1;
/// [`Segments`]: first acknowledgement to final response.
pub const SEGMENT_AFTER_ACK: usize = 2;

/// Response times in the live histogram's buckets ([`rt_bounds_ms`](crate::engine::definitions::Definitions::rt_bounds_ms)): a count per
/// bucket (not cumulative; the last is above every bound) and the sum, exact in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtHist {
    /// Count per bucket: `counts[i]` holds values in `(bound[i-1], bound[i]]`; the last, above all.
    pub counts: Vec<u64>,
    /// Sum of the values (ms).
    pub sum_ms: u64,
}

impl RtHist {
    /// Empty, for `bounds` upper bounds.
    pub fn new(bounds: usize) -> RtHist {
        RtHist {
            counts: vec![0; bounds + 1],
            sum_ms: 0,
        }
    }

    pub(super) fn add_n(&mut self, bounds: &[u64], ms: u64, n: u64) {
        let i = bounds.partition_point(|b| *b < ms);
        if let Some(c) = self.counts.get_mut(i) {
            *c += n;
            self.sum_ms += ms * n;
        }
    }

    pub(super) fn remove(&mut self, bounds: &[u64], ms: u64) {
        let i = bounds.partition_point(|b| *b < ms);
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_sub(1);
            self.sum_ms = self.sum_ms.saturating_sub(ms);
        }
    }

    /// Adds another's counts.
    pub fn merge(&mut self, o: &RtHist) {
        if self.counts.len() < o.counts.len() {
            self.counts.resize(o.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.sum_ms += o.sum_ms;
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}
