//! The `Summary` sheet: the OPR's Table 7 (weight, assessment, retained share and money per
//! measure), with the totals and retained percentage as formulas.

use rust_decimal::Decimal;
use rust_xlsxwriter::utility::row_col_to_cell;
use rust_xlsxwriter::{Formula, Workbook, XlsxError};

use super::super::year::Year;
use super::layout::{Formats, HEADER_ROW, f, header_row, page_setup};
use crate::score::render::assessment;

/// Table 7: weight, assessment, retained share and money per measure, with formula totals.
pub(super) fn summary_sheet(wb: &mut Workbook, y: &Year, fm: &Formats) -> Result<(), XlsxError> {
    let r = y.score;
    let ws = wb.add_worksheet();
    ws.set_name("Summary")?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!("{}: margin retained (the OPR's Table 7)", y.scheme.title),
        &fm.title,
    )?;
    ws.write_string(1, 0, "Margin at risk (£m)")?;
    ws.write_number_with_format(1, 2, f(r.margin_at_risk), &fm.money)?;
    let heads = [
        "Measure",
        "Name",
        "Weight",
        "Assessment",
        "Retained %",
        "Retained £m",
        "Lost £m",
    ];
    header_row(ws, HEADER_ROW, 0, &heads, fm)?;
    let first = HEADER_ROW + 1;
    let mut row = first;
    for m in &r.measures {
        ws.write_string(row, 0, &m.measure)?;
        ws.write_string(row, 1, &m.name)?;
        ws.write_number_with_format(row, 2, f(m.weight_decimal), &fm.pct)?;
        ws.write_string(row, 3, assessment(m))?;
        if let Some(s) = m.retained_share {
            ws.write_number_with_format(row, 4, f(s), &fm.pct)?;
        }
        ws.write_number_with_format(row, 5, f(m.kept), &fm.money)?;
        ws.write_number_with_format(row, 6, f(m.lost), &fm.money)?;
        row += 1;
    }
    let last = row - 1;
    ws.write_string_with_format(row, 0, "Total", &fm.bold)?;
    let sum = |col: u16, result: Decimal| {
        Formula::new(format!(
            "=SUM({}:{})",
            row_col_to_cell(first, col),
            row_col_to_cell(last, col)
        ))
        .set_result(f(result).to_string())
    };
    let weights: Decimal = r.measures.iter().map(|m| m.weight_decimal).sum();
    ws.write_formula_with_format(row, 2, sum(2, weights), &fm.pct_bold)?;
    let share = if r.margin_at_risk.is_zero() {
        Decimal::ZERO
    } else {
        r.total_kept / r.margin_at_risk
    };
    ws.write_formula_with_format(
        row,
        4,
        Formula::new(format!(
            "={}/{}",
            row_col_to_cell(row, 5),
            row_col_to_cell(1, 2)
        ))
        .set_result(f(share).to_string()),
        &fm.pct_bold,
    )?;
    ws.write_formula_with_format(row, 5, sum(5, r.total_kept), &fm.money_bold)?;
    ws.write_formula_with_format(row, 6, sum(6, r.total_lost), &fm.money_bold)?;
    let mut note = row + 2;
    ws.write_string_with_format(
        note,
        0,
        "Exact figures and every intermediate step: score.json. Per-measure sheets show the \
         monthly RPLs behind each assessment.",
        &fm.note,
    )?;
    for w in &r.warnings {
        note += 1;
        ws.write_string_with_format(note, 0, format!("Warning: {w}"), &fm.note)?;
    }
    ws.set_column_width(0, 10)?;
    ws.set_column_width(1, 34)?;
    ws.set_column_width(3, 80)?;
    for c in [2, 4, 5, 6] {
        ws.set_column_width(c, 12)?;
    }
    Ok(())
}
