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

use super::{Identity, PartitionInfo, Store, StoreError, StoredRow, blocks_of, open_configured};

/// What a store holds for some months, merged over its partitions.
pub struct StoreLoad {
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
}

/// Loads `months` from the configured state store (`[state] url`): each partition's rows form
/// its blocks, and partitions merge (counts and histograms add) exactly as `run` merges them.
pub fn load_months(
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
    })
}

/// Some months of an open store, merged over its partitions.
pub struct Merged {
    /// The months' aggregates, merged, with the store's combined watermark.
    pub aggregates: Aggregates,
    /// Event accounting summed over partitions.
    pub stats: PipelineStats,
    /// Every partition the store knows (those never checkpointed have no meta).
    pub partitions: Vec<PartitionInfo>,
    /// The combined watermark.
    pub watermark: Ts,
}

/// `months` of every partition in `store`: each partition's rows form its blocks, and
/// partitions merge (counts and histograms add) exactly as `run` merges them.
pub fn merge_months(
    store: &mut dyn Store,
    cfg: &Config,
    pipeline: &PipelineConfig,
    months: &[Month],
) -> Result<Merged, StoreError> {
    let mut merge = PartitionMerge::new(
        pipeline.definitions.clone(),
        pipeline.calendar.clone(),
        pipeline.register.clone(),
    );
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
    Ok(Merged {
        aggregates,
        stats,
        partitions,
        watermark,
    })
}

/// What `register` exempts of the stored counts per minute (of `months`, or all; of every
/// partition, or of `partition`): the minutes its windows cover, each read once however many
/// windows overlap it, each cell counted under the first exemption in file order.
pub fn exempted_of(
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
