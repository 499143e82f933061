//! The `Failures` sheet: the year's misses by failure bucket, per measure and region, largest
//! first, with each bucket's share of the misses.

use std::collections::BTreeMap;

use rust_xlsxwriter::{Workbook, XlsxError};

use super::super::year::{REGIONS, Year, failure_totals};
use super::layout::{Formats, HEADER_ROW, header_row, page_setup};

/// The year's misses by failure bucket, per measure and region, largest first (top ten each).
pub(super) fn failures_sheet(wb: &mut Workbook, y: &Year, fm: &Formats) -> Result<(), XlsxError> {
    let totals = failure_totals(y, 10);
    let ws = wb.add_worksheet();
    ws.set_name("Failures")?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!(
            "Where the misses went, {} (failures.csv summed over the months)",
            y.label
        ),
        &fm.title,
    )?;
    ws.write_string_with_format(
        1,
        0,
        "bucket: the final response's error code, slow (succeeded after the TRT), no_response \
         (no final response within the deadline) or other; at most ten per measure and region",
        &fm.note,
    )?;
    header_row(
        ws,
        HEADER_ROW,
        0,
        &["Measure", "Region", "Bucket", "Misses", "Share of misses"],
        fm,
    )?;
    let misses: BTreeMap<(String, &str), u64> = {
        let mut m = BTreeMap::new();
        for l in y.lines {
            if REGIONS.contains(&l.region) {
                *m.entry((l.measure.clone(), l.region)).or_insert(0) += l.row.requests - l.hits;
            }
        }
        m
    };
    for (k, t) in totals.iter().enumerate() {
        let row = HEADER_ROW + 1 + k as u32;
        ws.write_string(row, 0, &t.measure)?;
        ws.write_string(row, 1, t.region)?;
        ws.write_string(row, 2, &t.bucket)?;
        ws.write_number_with_format(row, 3, t.count as f64, &fm.count)?;
        if let Some(all) = misses
            .get(&(t.measure.clone(), t.region))
            .filter(|n| **n > 0)
        {
            ws.write_number_with_format(row, 4, t.count as f64 / *all as f64, &fm.pct)?;
        }
    }
    if totals.is_empty() {
        ws.write_string(HEADER_ROW + 1, 0, "no misses in the year")?;
    }
    ws.set_column_width(0, 16)?;
    ws.set_column_width(2, 14)?;
    ws.set_column_width(4, 16)?;
    Ok(())
}
