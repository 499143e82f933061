//! `/status.json`: what the status page shows, as data. Field names are stable: fields may be
//! added, none is renamed or removed without raising [`SCHEMA`]. Times are RFC 3339 in UTC,
//! percentages of RPL are exact decimals with four places (as in `rpl.csv`), and every count is
//! an integer. `srv-opr status` reads it back with these same types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of this document's shape.
pub const SCHEMA: u32 = 1;

/// Everything the status page shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// [`SCHEMA`].
    pub schema: u32,
    /// When this was put together.
    pub generated_at: String,
    /// Who is looking at what.
    pub instance: Instance,
    /// The month holding the combined watermark, and where its figures come from; `None` before
    /// any event.
    pub month: Option<MonthView>,
    /// Per configured measure, in configuration order.
    pub measures: Vec<MeasureView>,
    /// Alerts firing now, most severe first.
    pub alerts: Vec<AlertView>,
    /// The pipeline of this instance.
    pub pipeline: PipelineView,
    /// The exemption register's entries (issue 29), in its order; empty without one.
    #[serde(default)]
    pub exemptions: Vec<ExemptionView>,
    /// The interfaces' availability (issue 30), in configuration order; empty until an
    /// availability event has been seen.
    #[serde(default)]
    pub interfaces: Vec<InterfaceView>,
    /// The signed months (issue 31), each against its latest sign-off; empty without a store or
    /// before the first read.
    #[serde(default)]
    pub signoffs: Vec<crate::signoff::SignedMonth>,
    /// Why the store's sign-offs could not be read the last time, if so.
    #[serde(default)]
    pub signoffs_error: Option<String>,
    /// The overall state, first thing the page and `status` say (issue 33).
    #[serde(default)]
    pub health: HealthView,
}

/// The overall state: the worst alert firing, and the connections' problems now (shown before
/// their alert fires, so a dead broker is never drawn as "OK").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HealthView {
    /// `ok`, `warning` or `critical`: the most severe alert firing.
    pub state: String,
    /// One line: the state and what is worst (what a monitoring plugin prints).
    pub headline: String,
    /// The pipeline's connection problems now, each a sentence, whether or not its alert has
    /// fired yet (it fires after `alerts.health_for`).
    pub problems: Vec<String>,
}

/// One interface now, as the availability events say.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InterfaceView {
    /// Its id (`DUIS`).
    pub interface: String,
    /// Its name.
    pub name: String,
    /// `up` or `down`.
    pub state: String,
    /// When its current outage began (RFC 3339), while down.
    pub down_since: Option<String>,
    /// The month shown (that of the last known instant), `YYYY-MM`.
    pub month: String,
    /// Its minutes elapsed so far (RT).
    pub minutes: u32,
    /// Complete minutes down this month, exempted ones included.
    pub down_minutes: u32,
    /// Of those, inside an exemption window of the `opr` view.
    pub exempted_minutes: u32,
    /// `100 × (RT − UD) / RT` so far, four places.
    pub availability_percent: Option<String>,
    /// SUM1's TPL in the month's scheme.
    pub target_percent: Option<f64>,
    /// Minutes of downtime the month may still take before it falls below the TPL.
    pub downtime_left_minutes: Option<i64>,
}

/// One entry of the exemption register.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExemptionView {
    /// Its id (the incident or change reference).
    pub id: String,
    /// `exceptional_event`, `planned_maintenance`, `duplicate_incident` or `other`.
    pub reason: String,
    /// Its window, `[from, to)`.
    pub from: String,
    /// The window's end (excluded).
    pub to: String,
    /// Whether the wall clock is inside the window now.
    pub active: bool,
    /// The views it applies to.
    pub views: Vec<String>,
}

/// The instance answering.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    /// Host and process (`host:pid`), as the store records owners.
    pub name: String,
    /// The consumer group.
    pub group: String,
    /// The topics consumed.
    pub topics: Vec<String>,
    /// SHA-256 of the effective measures and scheme.
    pub definitions_sha256: String,
    /// SHA-256 of the exemption register in force; `None` without one.
    #[serde(default)]
    pub exemptions_sha256: Option<String>,
    /// srv-opr's version.
    pub version: String,
    /// When the process started.
    pub started_at: String,
    /// `sqlite` or `postgres` when a state store is configured.
    pub store: Option<String>,
    /// The reporting months' zone (`time.zone`), in which the page shows times.
    #[serde(default)]
    pub zone: String,
}

/// The month shown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MonthView {
    /// `YYYY-MM`, in the configured time zone.
    pub month: String,
    /// The combined watermark this instance knows.
    pub watermark: String,
    /// Share of the month gone by the watermark, 0–100.
    pub elapsed_percent: f64,
    /// Whether the month is final (the combined watermark passed its end plus the longest
    /// deadline): its figures change only by revisions.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// Whether the events so far (this instance's partitions) leave no gap longer than
    /// `time.coverage_max_gap` from the month's first minute to the watermark (issue 33).
    #[serde(default)]
    pub covered_so_far: Option<bool>,
    /// The gaps that are, `[from, to)` RFC 3339.
    #[serde(default)]
    pub coverage_gaps: Vec<[String; 2]>,
    /// `group`: the figures are every partition's checkpointed month rows, merged as `rollup`
    /// merges them; `instance`: only this instance's partitions, live (no store, or the store
    /// could not be read).
    pub source: String,
    /// With a store: the partitions behind the group figures.
    pub group: Option<GroupView>,
}

/// The partitions the group figures are made of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupView {
    /// Partitions with a checkpoint.
    pub partitions: usize,
    /// Age of the oldest partition's last checkpoint, in seconds: the figures are at least that
    /// fresh.
    pub oldest_checkpoint_age_seconds: Option<f64>,
    /// Each partition's owner and checkpoint age.
    pub checkpoints: Vec<CheckpointView>,
    /// When the store was read.
    pub read_at: String,
    /// Why the last read failed (the figures shown are then this instance's).
    pub error: Option<String>,
}

/// One partition's last checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointView {
    /// `topic/partition`.
    pub partition: String,
    /// The instance that claimed it last.
    pub owner: String,
    /// Seconds since its last checkpoint.
    pub age_seconds: Option<f64>,
}

/// One measure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MeasureView {
    /// Its id (`PM4.3`).
    pub measure: String,
    /// Its name.
    pub name: String,
    /// `trt` (answered successfully within the TRT) or `success` (MP242: succeeded at all).
    pub basis: String,
    /// Scored per region (else on `all`).
    pub regional: bool,
    /// Target Performance Level, percent.
    pub tpl: Option<String>,
    /// Minimum Performance Level, percent.
    pub mpl: Option<String>,
    /// North, central, south and all.
    pub regions: Vec<RegionView>,
    /// Where the sampled requests behind this month's misses are served, relative to the page
    /// (`evidence/PM4.3.csv`, as `evidence/` of `rollup`): with the group's figures only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// One measure in one region, this month to date.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegionView {
    /// `north`, `central`, `south` or `all`.
    pub region: String,
    /// Whether the measure is judged here (its regions when regional, else `all`).
    pub judged: bool,
    /// Requests decided this month (the `opr` view: exempted ones are not among them).
    pub requests: u64,
    /// Of which hits (within target, or succeeded for a success measure).
    pub hits: u64,
    /// Requests the exemption register's `opr` view took out this month.
    #[serde(default)]
    pub exempted: u64,
    /// `100 × hits / requests`, four places; `None` without requests.
    pub rpl_percent: Option<String>,
    /// `ok`, `below_target`, `below_minimum`, `no_target` (the measure has no TPL) or
    /// `no_requests`.
    pub state: String,
    /// Hits in a row needed to reach TPL (0 at or above it).
    pub hits_to_target: Option<u64>,
    /// ⌊requests × (100 − TPL)/100⌋ − misses: misses still allowed (negative: over).
    pub error_budget: Option<i64>,
    /// The month-end RPL if the rest of the month goes as its recent hours.
    pub projected_rpl_percent: Option<f64>,
    /// The month's error budget left as a share of it, percent (negative: over), issue 33.
    #[serde(default)]
    pub error_budget_left_percent: Option<f64>,
    /// How fast the last hour spent the budget: its miss ratio over the budget ratio
    /// (1: exactly the month's pace; `None` without requests in the hour).
    #[serde(default)]
    pub burn_rate_1h: Option<f64>,
    /// The month's largest failure buckets (at most three), most first: `slow` (succeeded after
    /// the TRT), `no_response`, a failure code, `other`; empty without misses.
    #[serde(default)]
    pub misses: Vec<MissView>,
    /// This instance's own live figures (its partitions only).
    pub instance: LiveFigures,
    /// The hit ratio over the last 24 hours (wall clock; since the process started, if later).
    pub trend_24h: Vec<TrendPoint>,
    /// The month's RPL at the end of each day so far (cumulative).
    pub rpl_by_day: Vec<DayPoint>,
}

/// How urgent a row's `state` is, for the page's and `status`'s order: below minimum first,
/// then below target, on target, the rest.
pub(crate) fn urgency(state: &str) -> u8 {
    match state {
        "below_minimum" => 0,
        "below_target" => 1,
        "ok" => 2,
        _ => 3,
    }
}

/// One failure bucket of a row and its misses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MissView {
    /// As in `failures.csv`: `slow`, `no_response`, a failure code (`E20`) or `other`.
    pub bucket: String,
    /// Requests.
    pub count: u64,
}

/// An instance's live counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveFigures {
    /// Requests decided this month.
    pub requests: u64,
    /// Hits.
    pub hits: u64,
    /// RPL, four places.
    pub rpl_percent: Option<String>,
}

/// The hit ratio of the requests decided in one interval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrendPoint {
    /// The interval's end.
    pub at: String,
    /// Requests decided in it.
    pub requests: u64,
    /// Their hit ratio, percent.
    pub hit_ratio_percent: f64,
}

/// The month's RPL at the end of a day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DayPoint {
    /// Day of the month (1–31).
    pub day: u8,
    /// Requests decided from the 1st to the end of that day.
    pub requests: u64,
    /// Their RPL, four places.
    pub rpl_percent: String,
}

/// An alert firing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AlertView {
    /// Its name (`SrvRplBelowTarget`).
    pub alert: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// The measure, for a measure's alert.
    pub measure: Option<String>,
    /// The region, for a measure's alert.
    pub region: Option<String>,
    /// When its condition began to hold.
    pub since: String,
    /// When it fired (the condition held for `alerts.for`).
    pub fired_at: Option<String>,
    /// One line for a person.
    pub summary: String,
}

/// This instance's pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PipelineView {
    /// Partitions this instance holds.
    pub partitions_held: usize,
    /// Messages not yet processed, over the partitions whose end is known.
    pub lag_messages: i64,
    /// Events processed per second, over the last few seconds.
    pub events_per_second: f64,
    /// Events read since the process started.
    pub events_total: u64,
    /// With a store: seconds the oldest unsaved work has waited for a checkpoint.
    pub checkpoint_age_seconds: Option<f64>,
    /// Requests waiting for a decision.
    pub pending_requests: u64,
    /// Responses waiting for their request.
    pub waiting_responses: u64,
    /// Dead letters since the process started.
    pub dead_letters_total: u64,
    /// Dead letters in the last hour (since the start, if later), by reason.
    pub dead_letters_last_hour: BTreeMap<String, u64>,
    /// Errors librdkafka reported (it retries them).
    pub kafka_errors: u64,
    /// Each partition held.
    pub partitions: Vec<PartitionView>,
}

/// One partition held.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartitionView {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to process.
    pub next_offset: i64,
    /// Messages not yet processed, when its end is known.
    pub lag: Option<i64>,
    /// Its watermark.
    pub watermark: Option<String>,
    /// How far its watermark trails the wall clock, seconds.
    pub watermark_behind_seconds: Option<f64>,
    /// Seconds since it last delivered an event.
    pub idle_seconds: f64,
}
