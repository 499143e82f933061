//! The `Exemptions` sheet: what the exemption register took out of the year, per view, reason
//! and incident, then per reason: the number and percentage of exempted requests the
//! regulator asks for (the seed's Appendix B, Question 3), with each entry's audit trail.

use std::collections::BTreeMap;

use rust_xlsxwriter::{Formula, Workbook, Worksheet, XlsxError};

use super::super::year::{ExemptionYear, Year, exemption_year};
use super::layout::{Formats, HEADER_ROW, header_row, page_setup};
use crate::engine::exemption::Register;

/// The sheet; says so in words when the year had no register or it took nothing out.
pub(super) fn exemptions_sheet(wb: &mut Workbook, y: &Year, fm: &Formats) -> Result<(), XlsxError> {
    let register = y.aggregates.register();
    let ws = wb.add_worksheet();
    ws.set_name("Exemptions")?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!(
            "Requests exempted from reporting, {} (exemptions.csv summed over the year)",
            y.label
        ),
        &fm.title,
    )?;
    let sha = register.sha256.as_deref().unwrap_or("none");
    ws.write_string_with_format(
        1,
        0,
        format!(
            "Register SHA-256 {sha}. Share: of the measure's requests in the year, all regions, \
             before exemption. A request inside several windows counts under the first in the \
             register."
        ),
        &fm.note,
    )?;
    if register.is_empty() {
        ws.write_string(
            HEADER_ROW,
            0,
            "No exemption register was applied: nothing was exempted.",
        )?;
        return Ok(());
    }
    let year = exemption_year(y);
    let row = incidents(ws, register, &year, fm)?;
    by_reason(ws, register, &year, row, fm)?;
    ws.set_column_width(0, 8)?;
    ws.set_column_width(1, 20)?;
    ws.set_column_width(2, 20)?;
    ws.set_column_width(3, 16)?;
    ws.set_column_width(4, 12)?;
    ws.set_column_width(5, 12)?;
    ws.set_column_width(7, 22)?;
    ws.set_column_width(8, 22)?;
    ws.set_column_width(9, 20)?;
    ws.set_column_width(11, 30)?;
    Ok(())
}

/// One row per view, exemption and measure, with its audit trail; the row after the table.
fn incidents(
    ws: &mut Worksheet,
    register: &Register,
    year: &[ExemptionYear],
    fm: &Formats,
) -> Result<u32, XlsxError> {
    header_row(
        ws,
        HEADER_ROW,
        0,
        &[
            "View",
            "Reason",
            "Exemption",
            "Measure",
            "Requests exempted",
            "Requests in the year",
            "Share",
            "From",
            "To",
            "Approved by",
            "Approved at",
            "Note",
        ],
        fm,
    )?;
    let mut row = HEADER_ROW + 1;
    for e in year {
        let Some(ex) = register.exemptions.get(e.exemption) else {
            continue;
        };
        ws.write_string(row, 0, &e.view)?;
        ws.write_string(row, 1, ex.reason.as_str())?;
        ws.write_string(row, 2, &ex.id)?;
        ws.write_string(row, 3, &e.measure)?;
        counts_and_share(ws, row, 4, e.requests_exempted, e.requests_before, fm)?;
        ws.write_string(row, 7, ex.from.to_rfc3339_exact())?;
        ws.write_string(row, 8, ex.to.to_rfc3339_exact())?;
        for (col, text) in [(9, &ex.approved_by), (10, &ex.approved_at), (11, &ex.note)] {
            if let Some(t) = text {
                ws.write_string(row, col, t)?;
            }
        }
        row += 1;
    }
    if year.is_empty() {
        ws.write_string(
            row,
            0,
            "The register's windows covered no request of the year.",
        )?;
        row += 1;
    }
    Ok(row)
}

/// The incidents of each reason summed, per view and measure, from `row` on.
fn by_reason(
    ws: &mut Worksheet,
    register: &Register,
    year: &[ExemptionYear],
    mut row: u32,
    fm: &Formats,
) -> Result<(), XlsxError> {
    let mut by_reason: BTreeMap<(&str, &str, &str), (u64, u64)> = BTreeMap::new();
    for e in year {
        let Some(ex) = register.exemptions.get(e.exemption) else {
            continue;
        };
        let t = by_reason
            .entry((e.view.as_str(), ex.reason.as_str(), e.measure.as_str()))
            .or_insert((0, e.requests_before));
        t.0 += e.requests_exempted;
    }
    row += 1;
    ws.write_string_with_format(row, 0, "By reason", &fm.bold)?;
    row += 1;
    header_row(
        ws,
        row,
        0,
        &[
            "View",
            "Reason",
            "",
            "Measure",
            "Requests exempted",
            "Requests in the year",
            "Share",
        ],
        fm,
    )?;
    row += 1;
    for ((view, reason, measure), (n, before)) in &by_reason {
        ws.write_string(row, 0, *view)?;
        ws.write_string(row, 1, *reason)?;
        ws.write_string(row, 3, *measure)?;
        counts_and_share(ws, row, 4, *n, *before, fm)?;
        row += 1;
    }
    Ok(())
}

/// Exempted and before in `col` and `col + 1`, and their share as a formula (value cached).
fn counts_and_share(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    n: u64,
    before: u64,
    fm: &Formats,
) -> Result<(), XlsxError> {
    ws.write_number_with_format(row, col, n as f64, &fm.count)?;
    ws.write_number_with_format(row, col + 1, before as f64, &fm.count)?;
    if before > 0 {
        let cell = |c: u16| rust_xlsxwriter::utility::row_col_to_cell(row, c);
        let formula = Formula::new(format!("={}/{}", cell(col), cell(col + 1)))
            .set_result((n as f64 / before as f64).to_string());
        ws.write_formula_with_format(row, col + 2, formula, &fm.pct)?;
    }
    Ok(())
}
