//! The one partition merge: a consumer group's partitions (live at the end of `run`, or as
//! stored by their last checkpoints for `rollup` and `report`) combined into one set of month
//! aggregates and event counts. Counts and histograms add, samples keep the smallest keys, so
//! the order and grouping of partitions changes nothing (the property tests beside the
//! aggregates prove it); the combined watermark is the caller's (SPEC §2: the minimum over the
//! partitions that are not idle).

use std::sync::Arc;

use crate::engine::aggregate::{AggregateStats, Aggregates, Row, RowError};
use crate::engine::calendar::Calendar;
use crate::engine::definitions::Definitions;
use crate::engine::exemption::Register;
use crate::engine::pipeline::{PipelineStats, SavedBlock};
use crate::engine::time::Ts;

/// Partitions merged so far.
pub struct PartitionMerge {
    aggregates: Aggregates,
    stats: PipelineStats,
    /// Decision counters of stored partitions, kept apart: their rows may be of some months
    /// only, while the counters are the partition's whole.
    decisions: AggregateStats,
}

impl PartitionMerge {
    /// Nothing merged yet; the views under `register`.
    pub fn new(
        defs: Arc<Definitions>,
        calendar: Calendar,
        register: Arc<Register>,
    ) -> PartitionMerge {
        PartitionMerge {
            aggregates: Aggregates::new(defs, calendar).with_register(register),
            stats: PipelineStats::default(),
            decisions: AggregateStats::default(),
        }
    }

    /// The merged aggregates judging a month incomplete at a gap longer than `gap`.
    pub(crate) fn with_coverage_gap(mut self, gap: crate::engine::time::Dur) -> PartitionMerge {
        self.aggregates = self.aggregates.with_coverage_gap(gap);
        self
    }

    /// A live partition: its aggregates and event counts.
    pub fn add(&mut self, aggregates: &Aggregates, stats: &PipelineStats) {
        self.aggregates.merge(aggregates);
        self.stats.add(stats);
    }

    /// A stored partition's counters (its checkpoint's meta).
    pub fn add_counters(&mut self, stats: &PipelineStats, decisions: AggregateStats) {
        self.stats.add(stats);
        self.decisions.decided += decisions.decided;
        self.decisions.unmeasured += decisions.unmeasured;
        self.decisions.revised += decisions.revised;
    }

    /// A stored partition's month rows, as blocks of the current definitions.
    pub fn add_blocks(
        &mut self,
        blocks: impl IntoIterator<Item = SavedBlock>,
    ) -> Result<(), RowError> {
        let mut one = Aggregates::new(
            self.aggregates.definitions().clone(),
            self.aggregates.calendar().clone(),
        );
        for b in blocks {
            let [n, c, s] = &b.regions;
            one.restore_block(
                b.month,
                b.measure,
                [Row::restore(n)?, Row::restore(c)?, Row::restore(s)?],
            );
        }
        self.aggregates.merge(&one);
        Ok(())
    }

    /// The merged aggregates, with `watermark` as their combined watermark, and the counts.
    pub fn finish(self, watermark: Ts) -> (Aggregates, PipelineStats) {
        let mut aggregates = self.aggregates;
        let d = self.decisions;
        if d != AggregateStats::default() {
            let mut stats = aggregates.stats();
            stats.decided += d.decided;
            stats.unmeasured += d.unmeasured;
            stats.revised += d.revised;
            aggregates.restore_stats(stats);
        }
        (aggregates.with_watermark(watermark), self.stats)
    }
}
