//! Per-event accounting (SPEC §2 and §6, `srv_events_total{type,result}`): each event's type
//! and its one result, and the counters a pipeline keeps of them.

/// Kind of event, for accounting (`type` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// A valid request.
    Request = 0,
    /// A valid response.
    Response = 1,
    /// An event that failed validation.
    Invalid = 2,
    /// A valid availability event (issue 30).
    Availability = 3,
}

impl EventType {
    /// All types, in label order.
    pub const ALL: [EventType; 4] = [
        EventType::Request,
        EventType::Response,
        EventType::Invalid,
        EventType::Availability,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        ["request", "response", "invalid", "availability"][self as usize]
    }
}

/// What became of an event (`result` label). Each event gets exactly one, by priority:
/// dead letter, duplicate, late (behind the watermark on arrival), unmeasured, accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventResult {
    /// Applied, on time.
    Accepted = 0,
    /// A copy that changed nothing.
    Duplicate = 1,
    /// Applied, but it arrived behind the watermark.
    Late = 2,
    /// A request no measure selects.
    Unmeasured = 3,
    /// Dead-lettered.
    DeadLetter = 4,
}

impl EventResult {
    /// All results, in label order.
    pub const ALL: [EventResult; 5] = [
        EventResult::Accepted,
        EventResult::Duplicate,
        EventResult::Late,
        EventResult::Unmeasured,
        EventResult::DeadLetter,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        ["accepted", "duplicate", "late", "unmeasured", "dead_letter"][self as usize]
    }
}

/// Counts of what the pipeline saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PipelineStats {
    /// Events read (blank lines excluded).
    pub events: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Events by `[type][result]`.
    #[serde(deserialize_with = "padded_rows")]
    pub by_type_result: [[u64; 5]; 4],
    /// Dead letters by reason (SPEC order).
    #[serde(deserialize_with = "padded")]
    pub dead_letters: [u64; crate::engine::event::DeadReason::COUNT],
    /// Most requests pending at once.
    pub peak_pending: u64,
    /// Most responses waiting at once.
    pub peak_waiting: u64,
    /// Most bytes of correlation state at once (sampled every 4,096 events).
    pub peak_state_bytes: u64,
    /// Waiting responses dead-lettered early (`orphan_response`) because
    /// `max_waiting_responses` was reached; counted among the dead letters too.
    #[serde(default)]
    pub evicted_waiting: u64,
    /// Events far ahead of their source's clock that did not move its watermark
    /// ([`crate::engine::clock`]); applied like any other.
    #[serde(default)]
    pub watermark_outliers: u64,
    /// Lines of the types `input.ignore_types` lists, by type: counted here only (not among
    /// `events`), and otherwise left alone.
    #[serde(default)]
    pub ignored_by_type: std::collections::BTreeMap<String, u64>,
}

impl PipelineStats {
    /// Adds another partition's counts (peaks add too: partitions hold their state at once).
    pub fn add(&mut self, o: &PipelineStats) {
        self.events += o.events;
        self.blank_lines += o.blank_lines;
        for (row, orow) in self.by_type_result.iter_mut().zip(&o.by_type_result) {
            for (n, on) in row.iter_mut().zip(orow) {
                *n += on;
            }
        }
        for (n, on) in self.dead_letters.iter_mut().zip(&o.dead_letters) {
            *n += on;
        }
        self.peak_pending += o.peak_pending;
        self.peak_waiting += o.peak_waiting;
        self.peak_state_bytes += o.peak_state_bytes;
        self.evicted_waiting += o.evicted_waiting;
        self.watermark_outliers += o.watermark_outliers;
        for (t, n) in &o.ignored_by_type {
            *self.ignored_by_type.entry(t.clone()).or_insert(0) += n;
        }
    }

    /// Events of a type, whatever their result.
    pub(crate) fn of_type(&self, t: EventType) -> u64 {
        self.by_type_result[t as usize].iter().sum()
    }

    /// Events with a result, whatever their type.
    pub(crate) fn of_result(&self, r: EventResult) -> u64 {
        self.by_type_result.iter().map(|row| row[r as usize]).sum()
    }

    /// All dead letters.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters.iter().sum()
    }
}

/// An array of counts as stored: a checkpoint written before a type or reason was added has
/// fewer, and the new ones were zero then.
fn padded<'de, D: serde::Deserializer<'de>, const N: usize>(d: D) -> Result<[u64; N], D::Error> {
    let v: Vec<u64> = serde::Deserialize::deserialize(d)?;
    if v.len() > N {
        return Err(serde::de::Error::invalid_length(
            v.len(),
            &"no more counts than known",
        ));
    }
    let mut out = [0u64; N];
    out[..v.len()].copy_from_slice(&v);
    Ok(out)
}

/// [`padded`] for the counts by type and result.
fn padded_rows<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[[u64; 5]; 4], D::Error> {
    let v: Vec<[u64; 5]> = serde::Deserialize::deserialize(d)?;
    if v.len() > 4 {
        return Err(serde::de::Error::invalid_length(
            v.len(),
            &"at most 4 event types",
        ));
    }
    let mut out = [[0u64; 5]; 4];
    out[..v.len()].copy_from_slice(&v);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_saved_before_availability_events_still_read() {
        let mut old = serde_json::to_value(PipelineStats::default()).unwrap();
        old["by_type_result"] =
            serde_json::json!([[1, 0, 0, 0, 0], [2, 0, 0, 0, 0], [0, 0, 0, 0, 3]]);
        old["dead_letters"] = serde_json::json!([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]);
        let s: PipelineStats = serde_json::from_value(old).unwrap();
        assert_eq!(s.by_type_result[2][4], 3);
        assert_eq!(s.by_type_result[3], [0; 5]);
        assert_eq!(s.dead_letters[12], 3);
        assert_eq!(s.dead_letters_total(), 3);
    }
}
