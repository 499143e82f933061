//! The workbook put together: its properties, its sheets in reading order, and the bytes.

use rust_xlsxwriter::{DocProperties, Workbook, XlsxError};

use crate::engine::definitions::Measure;
use crate::engine::domain::Basis;
use crate::report::charts::Chart;
use crate::report::year::Year;
use crate::score::scheme::Mechanism;

use super::exemptions::exemptions_sheet;
use super::failures::failures_sheet;
use super::layout::Formats;
use super::scheme::{monthly_counts, scheme_sheets};
use super::segments::segments_sheet;
use super::signoff::signoff_sheet;
use super::streaming::streaming_sheets;
use super::summary::summary_sheet;

/// The workbook as XLSX bytes.
pub(crate) fn build(
    y: &Year,
    charts: &[Chart],
) -> Result<Vec<u8>, crate::report::error::ReportError> {
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
