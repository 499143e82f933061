//! What a store holds for some months, read back and merged over its partitions (as `run`
//! merges them at its end): what `rollup` and `report` are made of.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::engine::aggregate::{Aggregates, Exempted};
use crate::engine::calendar::{Calendar, Month};
use crate::engine::definitions::Definitions;
use crate::engine::exemption::Register;
use crate::engine::merge::PartitionMerge;
use crate::engine::pipeline::{PipelineConfig, PipelineStats};
use crate::engine::time::Ts;

use super::api::{PartitionInfo, Store, StoredRow};
use super::error::StoreError;
use super::identity::Identity;
use super::open::open_configured;
use super::rows::blocks_of;

/// What a store holds for some months, merged over its partitions.
pub(crate) struct StoreLoad {
    /// The months' aggregates, merged, with the store's combined watermark.
    pub aggregates: Aggregates,
    /// Event accounting summed over partitions (all months: the store counts events, not
    /// events per month).
    pub stats: PipelineStats,
    /// Partitions that contributed (`topic/partition`).
    pub partitions: Vec<String>,
    /// The combined watermark.
    pub watermark: Ts,
    /// The open store, for further queries.
    pub store: Box<dyn Store>,
    /// Final months a change of exemption register restated.
    pub restatements: Vec<Restatement>,
}

/// Loads `months` from the configured state store (`[state] url`): each partition's rows form
/// its blocks, and partitions merge (counts and histograms add) exactly as `run` merges them.
pub(crate) fn load_months(
    cfg: &Config,
    pipeline: &PipelineConfig,
    months: &[Month],
) -> Result<StoreLoad, StoreError> {
    let url = &cfg.settings.state.url;
    if url.is_empty() {
        return Err(StoreError::Absent(
            "state.url is empty: there is no store to read (set [state] url)".into(),
        ));
    }
    let mut store = open_configured(cfg, &Identity::reader(cfg))?;
    let m = merge_months(&mut *store, cfg, pipeline, months)?;
    let names = m
        .partitions
        .iter()
        .filter(|p| p.meta.is_some())
        .map(|p| format!("{}/{}", p.topic, p.partition))
        .collect();
    let (aggregates, stats, watermark) = (m.aggregates, m.stats, m.watermark);
    Ok(StoreLoad {
        aggregates,
        stats,
        partitions: names,
        watermark,
        store,
        restatements: m.restatements,
    })
}

/// Refuses a month the store holds nothing of (neither requests nor the span of availability
/// events in `merged`), saying which months it does hold: an empty roll-up would look like a
/// month without traffic.
pub fn holds(store: &mut dyn Store, merged: &Aggregates, month: Month) -> Result<(), StoreError> {
    let mut held = store.months()?;
    held.extend(merged.availability_months());
    held.sort();
    held.dedup();
    if held.contains(&month) {
        return Ok(());
    }
    Err(StoreError::Absent(match (held.first(), held.last()) {
        (Some(first), Some(last)) => format!(
            "the state store holds no figures of {month}: it holds {} month{} from {first} to \
             {last}",
            held.len(),
            if held.len() == 1 { "" } else { "s" }
        ),
        _ => format!("the state store holds no figures of {month}, nor of any month yet"),
    }))
}

/// Some months of an open store, merged over its partitions.
pub(crate) struct Merged {
    /// The months' aggregates, merged, with the store's combined watermark.
    pub aggregates: Aggregates,
    /// Event accounting summed over partitions.
    pub stats: PipelineStats,
    /// Every partition the store knows (those never checkpointed have no meta).
    pub partitions: Vec<PartitionInfo>,
    /// The combined watermark.
    pub watermark: Ts,
    /// Final months a change of exemption register restated.
    pub restatements: Vec<Restatement>,
}

/// `months` of every partition in `store`: each partition's rows form its blocks, and
/// partitions merge (counts and histograms add) exactly as `run` merges them.
pub(crate) fn merge_months(
    store: &mut dyn Store,
    cfg: &Config,
    pipeline: &PipelineConfig,
    months: &[Month],
) -> Result<Merged, StoreError> {
    let mut merge = PartitionMerge::new(
        pipeline.definitions.clone(),
        pipeline.calendar.clone(),
        pipeline.register.clone(),
    )
    .with_coverage_gap(pipeline.coverage_max_gap);
    let partitions = store.partitions()?;
    for p in &partitions {
        if let Some(meta) = &p.meta {
            merge.add_counters(&meta.stats, meta.aggregate_stats);
        }
    }
    let mut by_origin: BTreeMap<String, Vec<StoredRow>> = BTreeMap::new();
    for month in months {
        for r in store.month_rows(Some(*month))? {
            by_origin.entry(r.origin.clone()).or_default().push(r);
        }
    }
    for (_, rows) in by_origin {
        merge.add_blocks(blocks_of(rows, &cfg.definitions)?)?;
    }
    let watermark = store.combined_watermark()?.map_or(Ts::MIN, Ts);
    let (mut aggregates, stats) = merge.finish(watermark);
    // Availability timelines are kept whole in each partition's meta (issue 30).
    for p in &partitions {
        if let Some(meta) = &p.meta {
            let bad = aggregates.restore_coverage(&meta.coverage);
            if !bad.is_empty() {
                tracing::warn!(partition = %format!("{}/{}", p.topic, p.partition), months = ?bad,
                    "stored coverage names months that do not read: left out");
            }
            let unknown =
                aggregates.restore_availability(&meta.availability, meta.availability_newest);
            if !unknown.is_empty() {
                tracing::warn!(
                    partition = %format!("{}/{}", p.topic, p.partition),
                    interfaces = ?unknown,
                    "stored availability of interfaces the definitions no longer have: left out"
                );
            }
        }
    }
    // What the register exempts, from the counts per minute the store keeps: any register,
    // any month, however long after its requests were decided.
    let mut calendar = pipeline.calendar.clone();
    aggregates.add_exempted(&exempted_of(
        store,
        &pipeline.register,
        &cfg.definitions,
        &mut calendar,
        Some(months),
        None,
    )?);
    // Only final months are restated: the others are still being counted.
    let finals: Vec<Month> = months
        .iter()
        .copied()
        .filter(|m| aggregates.is_final(*m))
        .collect();
    let (revised, restatements) = register_revisions(
        store,
        &pipeline.register,
        &cfg.definitions,
        &mut calendar,
        &finals,
    )?;
    aggregates.add_exempted(&revised);
    Ok(Merged {
        aggregates,
        stats,
        partitions,
        watermark,
        restatements,
    })
}

/// What `register` exempts of the stored counts per minute (of `months`, or all; of every
/// partition, or of `partition`): the minutes its windows cover, each read once however many
/// windows overlap it, each cell counted under the first exemption in file order.
pub(crate) fn exempted_of(
    store: &mut dyn Store,
    register: &Register,
    defs: &Definitions,
    calendar: &mut Calendar,
    months: Option<&[Month]>,
    partition: Option<(&str, i32)>,
) -> Result<Exempted, StoreError> {
    let mut out = Exempted::default();
    if register.is_empty() {
        return Ok(out);
    }
    // Per month, the minutes some window covers, as merged ranges [from, to).
    let mut ranges: BTreeMap<Month, Vec<(u16, u16)>> = BTreeMap::new();
    for e in &register.exemptions {
        let mut month = calendar.month_of(e.from);
        loop {
            let (start, end) = (calendar.start_of(month), calendar.end_of(month));
            if start >= e.to {
                break;
            }
            if months.is_none_or(|ms| ms.contains(&month)) {
                let from = calendar.minute_of(e.from.max(start)).1;
                let to = if e.to >= end {
                    calendar.minute_of(Ts(end.0 - 1)).1.saturating_add(1)
                } else {
                    calendar.minute_of(e.to).1
                };
                ranges.entry(month).or_default().push((from, to));
            }
            month = month.next();
        }
    }
    for (month, mut spans) in ranges {
        spans.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::new();
        for (a, b) in spans {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        for span in merged {
            let cells = store.cells(month, span, partition)?;
            out.add_cells(register, defs, calendar, &cells);
        }
    }
    Ok(out)
}

/// A change of exemption register that changed a final month's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restatement {
    /// The month.
    pub month: Month,
    /// When the register was recorded against it (`None`: the one applied now, not recorded:
    /// a reader records nothing).
    pub recorded_at: Option<String>,
    /// Exemption ids it added.
    pub added: Vec<String>,
    /// Exemption ids it withdrew.
    pub withdrawn: Vec<String>,
    /// Rows of every view whose figures it changed.
    pub rows: usize,
}

/// The revisions changes of register made to `months`' rows: each register recorded against a
/// final month after the first (the one in force when it became final; with none recorded, no
/// register), and `current` if it is another, revise every row whose figures they change, per
/// view. Returned as tallies holding only those revisions, with each change that revised any.
pub(crate) fn register_revisions(
    store: &mut dyn Store,
    current: &Register,
    defs: &Definitions,
    calendar: &mut Calendar,
    months: &[Month],
) -> Result<(Exempted, Vec<Restatement>), StoreError> {
    let mut out = Exempted::default();
    let mut restatements = Vec::new();
    for &month in months {
        let history = store.register_history(month)?;
        // The registers in turn: recorded ones (read against today's definitions; one that no
        // longer reads counts as none, with a warning), then the one applied now.
        let mut steps: Vec<(Register, Option<&super::api::RegisterRecord>)> = Vec::new();
        for r in &history {
            let reg = if r.text.is_empty() {
                Register::default()
            } else {
                let mut problems = crate::config::Problems::default();
                match crate::config::exemptions::parse(
                    "a recorded register",
                    &r.text,
                    defs,
                    &mut problems,
                ) {
                    Some(reg) => reg,
                    None => {
                        tracing::warn!(%month, recorded_at = %r.recorded_at, problems = %problems,
                            "a register recorded against the month no longer reads under these \
                             definitions: taken as none");
                        Register::default()
                    }
                }
            };
            steps.push((reg, Some(r)));
        }
        let last_sha = history.last().map_or("", |r| r.sha256.as_str());
        if current.sha256.as_deref().unwrap_or("") != last_sha {
            if steps.is_empty() {
                // The month was counted under no register until now.
                steps.push((Register::default(), None));
            }
            steps.push((current.clone(), None));
        }
        if steps.len() < 2 {
            continue;
        }
        let tallies: Vec<Exempted> = steps
            .iter()
            .map(|(reg, _)| exempted_of(store, reg, defs, calendar, Some(&[month]), None))
            .collect::<Result<_, _>>()?;
        for i in 1..steps.len() {
            let (before, after) = (&steps[i - 1].0, &steps[i].0);
            let mut changed = 0;
            for (v, name) in current.views.iter().enumerate() {
                let rows =
                    tallies[i].differing(after.view(name), &tallies[i - 1], before.view(name));
                for (m, mi, r) in rows {
                    out.revise(v, m, mi, r);
                    changed += 1;
                }
            }
            if changed > 0 {
                let ids = |r: &Register| {
                    r.exemptions
                        .iter()
                        .map(|e| e.id.clone())
                        .collect::<Vec<_>>()
                };
                let (b, a) = (ids(before), ids(after));
                restatements.push(Restatement {
                    month,
                    recorded_at: steps[i].1.map(|r| r.recorded_at.clone()),
                    added: a.iter().filter(|x| !b.contains(x)).cloned().collect(),
                    withdrawn: b.iter().filter(|x| !a.contains(x)).cloned().collect(),
                    rows: changed,
                });
            }
        }
    }
    Ok((out, restatements))
}
