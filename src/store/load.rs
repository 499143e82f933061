//! What a store holds for some months, read back and merged over its partitions (as `run`
//! merges them at its end): what `rollup` and `report` are made of.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::engine::aggregate::Aggregates;
use crate::engine::calendar::Month;
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
    let (aggregates, stats) = merge.finish(watermark);
    Ok(Merged {
        aggregates,
        stats,
        partitions,
        watermark,
    })
}
