//! Streaming measures straight from `rpl.csv` (the MP242 success rates, or TRT measures no
//! scheme uses): a sheet of monthly RPLs as formulas over a counts sheet.

use rust_xlsxwriter::utility::row_col_to_cell;
use rust_xlsxwriter::{Formula, Workbook, XlsxError};

use super::super::charts::Chart;
use super::super::year::Year;
use super::layout::{
    FIRST_MONTH_COL, Formats, HEADER_ROW, charts_of, frac, month_header, page_setup, place_charts,
    sheet_ref,
};
use crate::engine::calendar::Month;
use crate::engine::definitions::Measure;
use crate::engine::domain::Region;
use crate::sink::month::RplLine;

/// Streaming measures straight from `rpl.csv` (the MP242 success rates, or TRT measures no
/// scheme uses): a rates sheet of formulas over a counts sheet.
pub(super) fn streaming_sheets(
    wb: &mut Workbook,
    y: &Year,
    name: &str,
    measures: &[&Measure],
    charts: &[Chart],
    fm: &Formats,
) -> Result<(), XlsxError> {
    let regions = Region::LABELS;
    let rows: Vec<(&Measure, &str)> = measures
        .iter()
        .flat_map(|m| regions.iter().map(move |r| (*m, *r)))
        .filter(|(m, r)| y.lines.iter().any(|l| l.measure == m.id && l.region == *r))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let counts_name = format!("{name} counts");
    let year_col = FIRST_MONTH_COL + y.months.len() as u16;
    let ws = wb.add_worksheet();
    ws.set_name(name)?;
    page_setup(ws);
    ws.write_string_with_format(0, 0, format!("{name}: monthly RPL, {}", y.label), &fm.title)?;
    ws.write_string_with_format(
        1,
        0,
        format!(
            "RPL = hits ÷ requests on '{counts_name}'; the annual figure is the mean of the \
             months; `all` pools the three regions"
        ),
        &fm.note,
    )?;
    month_header(ws, y, &["Measure", "Region", "TPL"], &["Annual"], fm)?;
    for (k, (m, r)) in rows.iter().enumerate() {
        let row = HEADER_ROW + 1 + k as u32;
        let cr = HEADER_ROW + 1 + 2 * k as u32;
        ws.write_string(row, 0, &m.id)?;
        ws.write_string(row, 1, *r)?;
        if let Some(t) = m.tpl {
            ws.write_number_with_format(row, 2, frac(t), &fm.pct)?;
        }
        let mut fracs = Vec::new();
        for (i, month) in y.months.iter().enumerate() {
            let Some(l) = line(y, m, r, *month) else {
                continue;
            };
            let col = FIRST_MONTH_COL + i as u16;
            let v = l.hits as f64 / l.row.requests as f64;
            fracs.push(v);
            let formula = Formula::new(format!(
                "={}/{}",
                sheet_ref(&counts_name, cr, col),
                sheet_ref(&counts_name, cr + 1, col)
            ))
            .set_result(v.to_string());
            ws.write_formula_with_format(row, col, formula, &fm.pct)?;
        }
        let mean = fracs.iter().sum::<f64>() / fracs.len().max(1) as f64;
        let formula = Formula::new(format!(
            "=AVERAGE({}:{})",
            row_col_to_cell(row, FIRST_MONTH_COL),
            row_col_to_cell(row, year_col - 1)
        ))
        .set_result(mean.to_string());
        ws.write_formula_with_format(row, year_col, formula, &fm.pct_bold)?;
    }
    let ids: Vec<&str> = measures.iter().map(|m| m.id.as_str()).collect();
    place_charts(
        ws,
        HEADER_ROW + 2 + rows.len() as u32,
        &charts_of(charts, &ids),
    )?;
    // The counts sheet follows the rates sheet, whose formulas refer to it.
    counts_sheet(wb, y, name, &rows, fm)
}

/// The counts sheet of a streaming sheet: per row, its hits and requests by month and their
/// sums.
fn counts_sheet(
    wb: &mut Workbook,
    y: &Year,
    name: &str,
    rows: &[(&Measure, &str)],
    fm: &Formats,
) -> Result<(), XlsxError> {
    let counts_name = format!("{name} counts");
    let year_col = FIRST_MONTH_COL + y.months.len() as u16;
    let ws = wb.add_worksheet();
    ws.set_name(&counts_name)?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!("{name}: monthly counts, {}", y.label),
        &fm.title,
    )?;
    ws.write_string_with_format(
        1,
        0,
        "hits: succeeded within the deadline (success measures) or within the TRT (TRT \
         measures); requests: requests decided in the month (rpl.csv)",
        &fm.note,
    )?;
    month_header(ws, y, &["Measure", "Region", "Count"], &["Year"], fm)?;
    for (k, (m, r)) in rows.iter().enumerate() {
        for (j, what) in ["hits", "requests"].iter().enumerate() {
            let row = HEADER_ROW + 1 + 2 * k as u32 + j as u32;
            ws.write_string(row, 0, &m.id)?;
            ws.write_string(row, 1, *r)?;
            ws.write_string(row, 2, *what)?;
            let mut total = 0u64;
            for (i, month) in y.months.iter().enumerate() {
                if let Some(l) = line(y, m, r, *month) {
                    let v = if j == 0 { l.hits } else { l.row.requests };
                    total += v;
                    ws.write_number_with_format(
                        row,
                        FIRST_MONTH_COL + i as u16,
                        v as f64,
                        &fm.count,
                    )?;
                }
            }
            ws.write_formula_with_format(
                row,
                year_col,
                Formula::new(format!(
                    "=SUM({}:{})",
                    row_col_to_cell(row, FIRST_MONTH_COL),
                    row_col_to_cell(row, year_col - 1)
                ))
                .set_result(total.to_string()),
                &fm.count,
            )?;
        }
    }
    Ok(())
}

/// The `rpl.csv` row of a measure, region and month, if it has one.
fn line<'y>(y: &Year<'y>, m: &Measure, r: &str, month: Month) -> Option<&'y RplLine> {
    y.lines
        .iter()
        .find(|l| l.measure == m.id && l.region == r && l.month == month)
}
