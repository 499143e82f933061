//! `summary.json`: the run's accounting (events, results, dead letters, months and their
//! finality and coverage, fingerprints, timings).

use serde::Serialize;

use crate::engine::aggregate::Aggregates;
use crate::engine::calendar::Month;
use crate::engine::event::DeadReason;
use crate::engine::pipeline::{EventResult, EventType, PipelineStats};
use crate::engine::time::Ts;

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Events read (blank lines excluded).
    pub events_read: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Valid request events.
    pub requests: u64,
    /// Valid response events.
    pub responses: u64,
    /// Events that changed nothing (copies of requests, second final responses).
    pub duplicates: u64,
    /// Decided requests that no measure selects.
    pub unmeasured_requests: u64,
    /// Events applied although they arrived behind the watermark.
    pub late_events: u64,
    /// Requests decided.
    pub decided_requests: u64,
    /// Decided requests whose counts a later event changed.
    pub revised_requests: u64,
    /// Dead letters by reason (every reason listed, zero included).
    pub dead_letters: std::collections::BTreeMap<&'static str, u64>,
    /// Total dead letters.
    pub dead_letters_total: u64,
    /// Events by type and result (`srv_events_total`).
    pub events_by_type_result: std::collections::BTreeMap<String, u64>,
    /// The last combined watermark (RFC 3339), before end-of-input decisions.
    pub watermark: Option<String>,
    /// Months in the output and whether each is final.
    pub months: std::collections::BTreeMap<String, bool>,
    /// Each month with events, whether its events cover it (`time.coverage_max_gap`), and the
    /// gaps that are too long (issue 33).
    pub coverage: std::collections::BTreeMap<String, MonthCoverage>,
    /// SHA-256 of the effective definitions (measures, codes, classes, TRTs, zone).
    pub definitions_sha256: String,
    /// SHA-256 of the exemption register's file (`null`: no register).
    pub exemptions_sha256: Option<String>,
    /// The reporting views: `opr` (`rpl.csv`), then the register's others (`rpl.<view>.csv`).
    pub views: Vec<String>,
    /// Requests each view's exemptions took out of its rows, over every month (a request
    /// counted once per measure it is in, as the rows count it).
    pub exempted_by_view: std::collections::BTreeMap<String, u64>,
    /// Where configuration came from.
    pub config_sources: Vec<String>,
    /// Input files.
    pub inputs: Vec<String>,
    /// Most requests pending at once.
    pub peak_pending_requests: u64,
    /// Most responses waiting for their request at once.
    pub peak_waiting_responses: u64,
    /// Waiting responses dead-lettered early (`orphan_response`) because
    /// `max_waiting_responses` was reached: they are among the orphan responses.
    pub waiting_responses_evicted: u64,
    /// Events so far ahead of their file's or partition's other events that they were not
    /// allowed to move its watermark (applied like any other; docs/events.md, "Where the contract leaves a choice").
    pub watermark_outliers: u64,
    /// Most bytes of correlation state at once (sampled).
    pub peak_state_bytes: u64,
    /// Lines of the types `input.ignore_types` lists, by type (issue 32): not among
    /// `events_read`, no dead letter, no watermark.
    pub ignored_by_type: std::collections::BTreeMap<String, u64>,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Events read per wall-clock second.
    pub events_per_second: f64,
}

/// A month's coverage in `summary.json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MonthCoverage {
    /// No gap longer than `time.coverage_max_gap` from its first minute to its last.
    pub complete: bool,
    /// The gaps that are, as RFC 3339 `[from, to)`: no valid event between them.
    pub gaps: Vec<[String; 2]>,
}

/// Each month of `agg` (with rows or events) and its coverage.
pub(crate) fn coverage_of(agg: &Aggregates) -> std::collections::BTreeMap<String, MonthCoverage> {
    let mut months: Vec<Month> = agg.months();
    months.extend(agg.coverage().months());
    months.sort();
    months.dedup();
    months
        .into_iter()
        .map(|m| {
            let j = agg.completeness(m);
            (
                m.to_string(),
                MonthCoverage {
                    complete: j.complete,
                    gaps: j
                        .gaps
                        .iter()
                        .map(|(a, b)| [a.to_rfc3339_millis(), b.to_rfc3339_millis()])
                        .collect(),
                },
            )
        })
        .collect()
}

impl Summary {
    /// Builds the summary of a run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stats: &PipelineStats,
        agg: &Aggregates,
        watermark: Ts,
        sha256: &str,
        config_sources: &[String],
        inputs: Vec<String>,
        wall_seconds: f64,
    ) -> Summary {
        let mut by = std::collections::BTreeMap::new();
        for t in EventType::ALL {
            for r in EventResult::ALL {
                let n = stats.by_type_result[t as usize][r as usize];
                if n > 0 {
                    by.insert(format!("{}/{}", t.as_str(), r.as_str()), n);
                }
            }
        }
        let a = agg.stats();
        Summary {
            events_read: stats.events,
            blank_lines: stats.blank_lines,
            requests: stats.of_type(EventType::Request),
            responses: stats.of_type(EventType::Response),
            duplicates: stats.of_result(EventResult::Duplicate),
            unmeasured_requests: a.unmeasured,
            late_events: stats.of_result(EventResult::Late),
            decided_requests: a.decided,
            revised_requests: a.revised,
            dead_letters: DeadReason::ALL
                .iter()
                .map(|r| (r.as_str(), stats.dead_letters[r.index()]))
                .collect(),
            dead_letters_total: stats.dead_letters_total(),
            events_by_type_result: by,
            watermark: (watermark != Ts::MIN).then(|| watermark.to_rfc3339_millis()),
            months: agg
                .months()
                .into_iter()
                .map(|m| (m.to_string(), agg.is_final(m)))
                .collect(),
            coverage: coverage_of(agg),
            definitions_sha256: sha256.to_string(),
            exemptions_sha256: agg.register().sha256.clone(),
            views: agg.register().views.clone(),
            exempted_by_view: agg
                .register()
                .views
                .iter()
                .enumerate()
                .map(|(v, name)| {
                    let n = agg
                        .blocks()
                        .iter()
                        .filter_map(|(m, mi, _)| agg.exempted().regions(v, *m, *mi))
                        .flat_map(|t| t.iter().map(|x| x.requests))
                        .sum();
                    (name.clone(), n)
                })
                .collect(),
            config_sources: config_sources.to_vec(),
            inputs,
            peak_pending_requests: stats.peak_pending,
            peak_waiting_responses: stats.peak_waiting,
            waiting_responses_evicted: stats.evicted_waiting,
            watermark_outliers: stats.watermark_outliers,
            peak_state_bytes: stats.peak_state_bytes,
            ignored_by_type: stats.ignored_by_type.clone(),
            wall_seconds,
            events_per_second: if wall_seconds > 0.0 {
                stats.events as f64 / wall_seconds
            } else {
                0.0
            },
        }
    }
}
