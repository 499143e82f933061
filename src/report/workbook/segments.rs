//! The `Time segments` sheet (issue 32): per measure and region over the year, how much of the
//! response time passed before DCC's acknowledgement and how much after it.

use rust_xlsxwriter::{Workbook, XlsxError};

use super::super::year::{Year, segment_year};
use super::layout::{Formats, HEADER_ROW, header_row, page_setup};

/// The sheet; says so in words when no request of the year was acknowledged.
pub(super) fn segments_sheet(wb: &mut Workbook, y: &Year, fm: &Formats) -> Result<(), XlsxError> {
    let ws = wb.add_worksheet();
    ws.set_name("Time segments")?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!(
            "Where the response time went, {}: to DCC's acknowledgement and after it",
            y.label
        ),
        &fm.title,
    )?;
    ws.write_string_with_format(
        1,
        0,
        "ms; the months merged; per month: rpl.csv's acked, ack_p50_ms, ack_p95_ms, \
         after_ack_p95_ms",
        &fm.note,
    )?;
    header_row(
        ws,
        HEADER_ROW,
        0,
        &[
            "Measure",
            "Region",
            "Requests",
            "Acknowledged",
            "Share",
            "To ack p50",
            "To ack p95",
            "After ack p95",
            "Response p95",
        ],
        fm,
    )?;
    let rows: Vec<_> = segment_year(y)
        .into_iter()
        .filter(|r| r.acked > 0)
        .collect();
    for (k, r) in rows.iter().enumerate() {
        let row = HEADER_ROW + 1 + k as u32;
        ws.write_string(row, 0, &r.measure)?;
        ws.write_string(row, 1, r.region)?;
        ws.write_number_with_format(row, 2, r.requests as f64, &fm.count)?;
        ws.write_number_with_format(row, 3, r.acked as f64, &fm.count)?;
        ws.write_number_with_format(row, 4, r.acked as f64 / r.requests as f64, &fm.pct)?;
        for (col, v) in [
            (5, r.ack_p50_ms),
            (6, r.ack_p95_ms),
            (7, r.after_ack_p95_ms),
            (8, r.p95_ms),
        ] {
            if let Some(v) = v {
                ws.write_number_with_format(row, col, v as f64, &fm.count)?;
            }
        }
    }
    if rows.is_empty() {
        ws.write_string(HEADER_ROW + 1, 0, "no request of the year was acknowledged")?;
    }
    ws.set_column_width(0, 16)?;
    for c in 2..=8 {
        ws.set_column_width(c, 14)?;
    }
    Ok(())
}
