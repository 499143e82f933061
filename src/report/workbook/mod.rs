//! The XLSX workbook shaped like the regulator's RIGs Annex 1: a Table 7 summary, one sheet per
//! OPR measure (months across, components and regions down, TPL and MPL rows, the annual
//! figure) with its counts on a second sheet, the MP242 success rates, the year's failure
//! buckets, and the charts embedded beside the figures they draw.
//!
//! Figures a reader would derive are formulas with their values cached (a monthly RPL is
//! hits ÷ requests on the counts sheet, the annual figure is the mean of the months, a measure
//! RPL is the mean of its components), so the workbook explains itself and opens with every
//! value in place even where nothing recalculates.
//!
//! - `summary`: Table 7;
//! - `scheme`: an OPR measure's sheet and its counts sheet;
//! - `segments`: the time before and after DCC's acknowledgement;
//! - `streaming`: streaming measures straight from `rpl.csv` (MP242, TRT measures no scheme
//!   uses), rates over counts;
//! - `failures`: the year's failure buckets;
//! - `exemptions`: what the exemption register took out, per reason and incident;
//! - `signoff`: each month's sign-off, and what was restated since;
//! - `layout`: formats, headers, month columns and charts every sheet shares.

mod exemptions;
mod failures;
mod layout;
mod scheme;
mod segments;
mod signoff;
mod streaming;
mod summary;

use rust_xlsxwriter::{DocProperties, Workbook, XlsxError};

use super::Year;
use super::charts::Chart;
use crate::engine::definitions::Measure;
use crate::engine::domain::Basis;
use crate::score::scheme::Mechanism;

use exemptions::exemptions_sheet;
use failures::failures_sheet;
use layout::Formats;
use scheme::{monthly_counts, scheme_sheets};
use segments::segments_sheet;
use signoff::signoff_sheet;
use streaming::streaming_sheets;
use summary::summary_sheet;

/// The workbook as XLSX bytes.
pub fn build(y: &Year, charts: &[Chart]) -> Result<Vec<u8>, super::ReportError> {
    Ok(workbook(y, charts)?)
}

fn workbook(y: &Year, charts: &[Chart]) -> Result<Vec<u8>, XlsxError> {
    let fm = Formats::new();
    let mut wb = Workbook::new();
    wb.set_properties(
        &DocProperties::new()
            .set_title(format!("OPR inputs and score, {}", y.label))
            .set_author("srv-opr")
            .set_comment(format!(
                "Built by srv-opr {} from the state of a run; definitions SHA-256 {}; exemption \
                 register SHA-256 {}",
                env!("CARGO_PKG_VERSION"),
                y.defs.sha256,
                y.aggregates.register().sha256.as_deref().unwrap_or("none")
            )),
    );
    summary_sheet(&mut wb, y, &fm)?;
    let counts = monthly_counts(y);
    for sm in &y.scheme.measures {
        if sm.mechanism == Mechanism::Vmm {
            continue;
        }
        let Some(ms) = y.score.measures.iter().find(|m| m.measure == sm.id) else {
            continue;
        };
        if ms.components.iter().all(|c| c.annual.is_none()) {
            continue;
        }
        scheme_sheets(&mut wb, y, sm, ms, &counts, charts, &fm)?;
    }
    let success: Vec<&Measure> = y
        .defs
        .measures
        .iter()
        .filter(|m| m.basis == Basis::Success)
        .collect();
    streaming_sheets(&mut wb, y, "MP242", &success, charts, &fm)?;
    // TRT measures no scheme component is drawn from still get their figures.
    let fed: Vec<&str> = y
        .scheme
        .measures
        .iter()
        .flat_map(|m| m.components.iter().filter_map(|c| c.from.as_deref()))
        .collect();
    let other: Vec<&Measure> = y
        .defs
        .measures
        .iter()
        .filter(|m| m.basis == Basis::Trt && !fed.contains(&m.id.as_str()))
        .collect();
    streaming_sheets(&mut wb, y, "Other measures", &other, charts, &fm)?;
    failures_sheet(&mut wb, y, &fm)?;
    segments_sheet(&mut wb, y, &fm)?;
    exemptions_sheet(&mut wb, y, &fm)?;
    signoff_sheet(&mut wb, y, &fm)?;
    wb.save_to_buffer()
}
