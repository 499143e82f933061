//! What a checkpoint writes of its month rows, shared by both backends: the rows to write or
//! delete, why a final row was revised, and the month blocks read back.

use crate::engine::aggregate::SavedRow;
use crate::engine::calendar::Month;
use crate::engine::pipeline::{Delta, SavedBlock};

use super::api::{Checkpoint, StoredRow};
use super::error::StoreError;

/// One month row a checkpoint writes (or deletes: a region that no longer counts anything).
pub(crate) struct RowWrite<'a> {
    pub month: String,
    pub measure: &'a str,
    pub region: &'static str,
    pub row: &'a SavedRow,
    /// Nothing counted and never revised: delete any stored row instead.
    pub delete: bool,
}

/// The month rows of a checkpoint's changed blocks, named as the tables store them.
pub(crate) fn row_writes<'a>(
    delta: &'a Delta,
    defs: &'a crate::engine::definitions::Definitions,
) -> Result<Vec<RowWrite<'a>>, StoreError> {
    let mut out = Vec::new();
    for b in &delta.blocks {
        let measure = defs
            .measures
            .get(b.measure as usize)
            .map(|m| m.id.as_str())
            .ok_or_else(|| StoreError::Backend(format!("no measure with index {}", b.measure)))?;
        let month = b.month.to_string();
        for (i, row) in b.regions.iter().enumerate() {
            out.push(RowWrite {
                month: month.clone(),
                measure,
                region: crate::engine::domain::Region::from_index(i).as_str(),
                row,
                delete: row.requests == 0 && row.revision == 0,
            });
        }
    }
    Ok(out)
}

/// Why a final month's row was revised, as the history records it.
pub(crate) fn revision_reason(cp: &Checkpoint<'_>, row: &SavedRow) -> String {
    format!(
        "late events after the month was final, applied before offset {} of {}/{} (requests {}, \
         within target {}, succeeded {})",
        cp.next_offset, cp.topic, cp.partition, row.requests, row.within_target, row.succeeded
    )
}

/// Groups a partition's stored rows into blocks of the current definitions' measure indices.
pub(crate) fn blocks_of(
    rows: Vec<StoredRow>,
    defs: &crate::engine::definitions::Definitions,
) -> Result<Vec<SavedBlock>, StoreError> {
    let mut blocks: Vec<SavedBlock> = Vec::new();
    let mut index: std::collections::HashMap<(Month, u16), usize> = Default::default();
    for r in rows {
        let Some(m) = defs.measures.iter().position(|m| m.id == r.measure) else {
            return Err(StoreError::Refused(format!(
                "the store holds measure {:?}, which the definitions do not define",
                r.measure
            )));
        };
        let key = (r.month, m as u16);
        let i = *index.entry(key).or_insert_with(|| {
            blocks.push(SavedBlock {
                month: r.month,
                measure: m as u16,
                regions: Default::default(),
            });
            blocks.len() - 1
        });
        if r.region > 2 {
            return Err(StoreError::Backend(format!(
                "a stored row has region index {}",
                r.region
            )));
        }
        blocks[i].regions[r.region] = r.row;
    }
    Ok(blocks)
}
