//! A pipeline's checkpoint: the delta each checkpoint writes (changed records, waiting responses
//! and month blocks, and the small meta in full), the shapes a store gives back, and the
//! pipeline rebuilt from them.

use crate::engine::aggregate::{AggregateStats, Row, RowError, SavedRow};
use crate::engine::calendar::Month;
use crate::engine::catalog::Catalog;
use crate::engine::correlate::{
    Changes, Correlator, CorrelatorStats, Evidence, SavedDecided, SavedEntry, SavedWaiting,
};
use crate::engine::time::Ts;

use super::accounting::PipelineStats;
use super::deadletter::{DeadLetterSink, SourceName};
use super::driver::{Pipeline, PipelineConfig};

/// Why a checkpoint could not be restored: it does not fit the definitions or is damaged.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A record names an interned SRV or code outside the checkpoint's tables.
    #[error("a stored request names an SRV or code the checkpoint lacks")]
    UnknownSrvOrCode,
    /// A waiting response names a code outside the checkpoint's table.
    #[error("a stored waiting response has code id {0} the checkpoint lacks")]
    UnknownWaitingCode(u32),
    /// A month block names a measure the definitions do not have.
    #[error("a stored block names measure {measure} of {of}")]
    UnknownMeasure {
        /// The stored measure index.
        measure: u16,
        /// How many measures the definitions have.
        of: usize,
    },
    /// A stored row does not decode.
    #[error(transparent)]
    Row(#[from] RowError),
}

/// The small part of a partition's checkpoint, stored whole each time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedMeta {
    /// The correlator's watermark (ns).
    pub watermark: i64,
    /// The aggregates' watermark (ns), which decides final months.
    pub aggregate_watermark: i64,
    /// Interned SRVs, in id order.
    pub srvs: Vec<String>,
    /// Interned codes, in id order.
    pub codes: Vec<String>,
    /// Interned service users, in id order (past the catalog's two fixed ones).
    #[serde(default)]
    pub users: Vec<String>,
    /// Event counters.
    pub stats: PipelineStats,
    /// Decision counters.
    pub aggregate_stats: AggregateStats,
    /// Waiting responses evicted by the cap.
    pub evicted_waiting: u64,
    /// Each interface's availability timeline (issue 30): sparse, so kept whole here.
    #[serde(default)]
    pub availability: Vec<crate::engine::availability::SavedTimeline>,
    /// The newest availability event's `at` (ns).
    #[serde(default)]
    pub availability_newest: Option<i64>,
    /// Which stretches of each month the valid events cover (issue 33): a few per month, so
    /// kept whole here.
    #[serde(default)]
    pub coverage: Vec<crate::engine::aggregate::SavedCoverage>,
}

/// A month × measure block as stored: the three regions' rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedBlock {
    /// Month.
    pub month: Month,
    /// Measure index in the definitions.
    pub measure: u16,
    /// North, central, south.
    pub regions: [SavedRow; 3],
}

/// What a checkpoint writes: the records, waiting responses and blocks changed since the
/// previous one, and the meta in full.
#[derive(Debug)]
pub struct Delta {
    /// Correlator records and waiting responses changed.
    pub changes: Changes,
    /// Blocks changed.
    pub blocks: Vec<SavedBlock>,
    /// Counts per minute changed (deltas).
    pub cells: Vec<crate::engine::aggregate::SavedCell>,
    /// Counters and watermarks.
    pub meta: SavedMeta,
    /// Records the correlator holds after it (for operators reading the store).
    pub records: u64,
    /// Waiting responses it holds after it.
    pub waiting: u64,
}

/// A partition's whole state as read back from a store.
#[derive(Debug)]
pub struct SavedPipeline {
    /// Counters and watermarks.
    pub meta: SavedMeta,
    /// Every record kept by its whole key.
    pub entries: Vec<(u128, SavedEntry)>,
    /// Every decided record kept compactly, by its reduced key.
    pub decided: Vec<SavedDecided>,
    /// Every waiting response.
    pub waiting: Vec<(u128, SavedWaiting)>,
    /// Evidence texts of pending records.
    pub texts: Vec<(u128, Evidence)>,
    /// Every block.
    pub blocks: Vec<SavedBlock>,
}

impl<S: DeadLetterSink> Pipeline<S> {
    /// Starts recording what changes, for [`Pipeline::take_delta`] (a checkpointed `run`).
    pub fn track_changes(&mut self) {
        self.correlator.track_changes();
        self.aggregates.track_changes();
    }

    /// What changed since the last call: the delta a checkpoint writes. With `full`, the
    /// correlator part is a whole snapshot instead (it replaces the partition's state log);
    /// month blocks are always only the changed ones.
    pub fn take_delta(&mut self, full: bool) -> Result<Delta, RowError> {
        let changes = if full {
            self.correlator.take_snapshot()
        } else {
            self.correlator.take_changes()
        };
        let mut blocks = Vec::new();
        for (month, measure, b) in self.aggregates.take_changes() {
            let [n, c, s] = &b.regions;
            blocks.push(SavedBlock {
                month,
                measure,
                regions: [n.save()?, c.save()?, s.save()?],
            });
        }
        let catalog = &self.catalog;
        let cells = self
            .aggregates
            .take_cells(|srv| catalog.srv_name(srv).to_string());
        Ok(Delta {
            changes,
            blocks,
            cells,
            meta: self.meta(),
            records: self.correlator.records() as u64,
            waiting: self.correlator.waiting() as u64,
        })
    }

    /// About how many bytes a full snapshot of the correlator takes in the state log (records
    /// are 52 bytes; a waiting response is counted at 128 with its raw bytes).
    pub(crate) fn snapshot_bytes(&self) -> u64 {
        let c = &self.correlator;
        c.records() as u64 * 52 + c.waiting() as u64 * 128
    }

    /// The small, always-complete part of a checkpoint.
    pub(crate) fn meta(&self) -> SavedMeta {
        let (availability, availability_newest) = self.aggregates.save_availability();
        SavedMeta {
            availability,
            availability_newest,
            coverage: self.aggregates.coverage().save(),
            watermark: self.correlator.watermark().0,
            aggregate_watermark: self.aggregates.watermark().0,
            srvs: self.catalog.srv_names(),
            codes: self.catalog.code_names(),
            users: self.catalog.user_names(),
            stats: self.stats.clone(),
            aggregate_stats: self.aggregates.stats(),
            evicted_waiting: self.correlator.stats().evicted_waiting,
        }
    }

    /// A pipeline rebuilt from a checkpoint (with change tracking on).
    pub fn restore(
        cfg: &PipelineConfig,
        sources: Vec<SourceName>,
        sink: S,
        saved: SavedPipeline,
    ) -> Result<Pipeline<S>, RestoreError> {
        let mut p = Pipeline::new(cfg, sources, sink);
        let defs = p.catalog.definitions().clone();
        let meta = saved.meta;
        p.catalog = Catalog::restore(defs.clone(), &meta.srvs, &meta.codes, &meta.users);
        let ccfg = cfg.correlator.clone();
        let compact = saved.decided.iter().map(|d| d.entry());
        for e in saved.entries.iter().map(|(_, e)| *e).chain(compact) {
            if e.srv as usize >= meta.srvs.len()
                || (e.fin_at.is_some() && e.fin_code as usize >= meta.codes.len())
            {
                return Err(RestoreError::UnknownSrvOrCode);
            }
        }
        if let Some((_, w)) = saved
            .waiting
            .iter()
            .find(|(_, w)| w.code as usize >= meta.codes.len())
        {
            return Err(RestoreError::UnknownWaitingCode(w.code));
        }
        p.correlator = Correlator::restore(
            ccfg,
            Ts(meta.watermark),
            saved.entries,
            saved.decided,
            saved.waiting,
            saved.texts,
            CorrelatorStats {
                evicted_waiting: meta.evicted_waiting,
            },
            &p.catalog,
        );
        for b in saved.blocks {
            if b.measure as usize >= defs.measures.len() {
                return Err(RestoreError::UnknownMeasure {
                    measure: b.measure,
                    of: defs.measures.len(),
                });
            }
            let [n, c, s] = &b.regions;
            p.aggregates.restore_block(
                b.month,
                b.measure,
                [Row::restore(n)?, Row::restore(c)?, Row::restore(s)?],
            );
        }
        p.aggregates.restore_stats(meta.aggregate_stats);
        let unknown = p
            .aggregates
            .restore_availability(&meta.availability, meta.availability_newest);
        if !unknown.is_empty() {
            tracing::warn!(
                interfaces = ?unknown,
                "the checkpoint has availability of interfaces the definitions no longer have: left out"
            );
        }
        let bad = p.aggregates.restore_coverage(&meta.coverage);
        if !bad.is_empty() {
            tracing::warn!(months = ?bad, "the checkpoint's coverage names months that do not read: left out");
        }
        p.aggregates.set_watermark(Ts(meta.aggregate_watermark));
        p.stats = meta.stats;
        // A checkpoint from before the count was kept in the stats has it here only.
        p.stats.evicted_waiting = meta.evicted_waiting;
        p.track_changes();
        Ok(p)
    }
}
