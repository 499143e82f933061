//! The XLSX workbook shaped like the regulator's RIGs Annex 1: a Table 7 summary, one sheet per
//! OPR measure (months across, components and regions down, TPL and MPL rows, the annual
//! figure) with its counts on a second sheet, the MP242 success rates, the year's failure
//! buckets, and the charts embedded beside the figures they draw.
//!
//! Figures a reader would derive are formulas with their values cached (a monthly RPL is
//! hits ÷ requests on the counts sheet, the annual figure is the mean of the months, a measure
//! RPL is the mean of its components), so the workbook explains itself and opens with every
//! value in place even where nothing recalculates.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_xlsxwriter::utility::row_col_to_cell;
use rust_xlsxwriter::{
    Color, DocProperties, Format, FormatBorder, Formula, Image, Workbook, Worksheet, XlsxError,
};

use super::charts::Chart;
use super::{REGIONS, Year, failure_totals, month_label};
use crate::engine::definitions::Measure;
use crate::engine::domain::{Basis, Region};
use crate::score::inputs::Period;
use crate::score::model::{ComponentScore, MeasureScore};
use crate::score::render::assessment;
use crate::score::scheme::{Mechanism, SchemeMeasure};

/// First month column (after label columns A–C).
const FIRST_MONTH_COL: u16 = 3;
/// Rows of a sheet's header block (title, subtitle, blank) before the table header.
const HEADER_ROW: u32 = 3;
/// A4 in Excel's paper size codes.
const A4: u8 = 9;

struct Formats {
    title: Format,
    header: Format,
    pct: Format,
    pct_bold: Format,
    count: Format,
    money: Format,
    money_bold: Format,
    bold: Format,
    note: Format,
}

impl Formats {
    fn new() -> Formats {
        let header = Format::new()
            .set_bold()
            .set_background_color(Color::RGB(0xD9E1F2))
            .set_border_bottom(FormatBorder::Thin);
        Formats {
            title: Format::new().set_bold().set_font_size(14),
            header,
            pct: Format::new().set_num_format("0.00%"),
            pct_bold: Format::new().set_num_format("0.00%").set_bold(),
            count: Format::new().set_num_format("#,##0"),
            money: Format::new().set_num_format("0.000"),
            money_bold: Format::new().set_num_format("0.000").set_bold(),
            bold: Format::new().set_bold(),
            note: Format::new()
                .set_italic()
                .set_font_color(Color::RGB(0x595959)),
        }
    }
}

fn x(e: XlsxError) -> String {
    format!("cannot build the workbook: {e}")
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

/// A percentage (0–100) as the fraction a `0.00%` cell holds.
fn frac(d: Decimal) -> f64 {
    f(d / Decimal::ONE_HUNDRED)
}

/// `'SDM2 counts'!D5`.
fn sheet_ref(sheet: &str, row: u32, col: u16) -> String {
    format!("'{sheet}'!{}", row_col_to_cell(row, col))
}

/// Writes `heads` as a header row from column `col`.
fn header_row(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    heads: &[&str],
    fm: &Formats,
) -> Result<(), String> {
    for (c, h) in heads.iter().enumerate() {
        ws.write_string_with_format(row, col + c as u16, *h, &fm.header)
            .map_err(x)?;
    }
    Ok(())
}

fn page_setup(ws: &mut Worksheet) {
    // One page per sheet when printed (or converted to PDF): landscape A4, fitted.
    ws.set_landscape();
    ws.set_paper_size(A4);
    ws.set_print_fit_to_pages(1, 1);
}

/// The workbook as XLSX bytes.
pub fn build(y: &Year, charts: &[Chart]) -> Result<Vec<u8>, super::ReportError> {
    build_text(y, charts).map_err(super::ReportError::Workbook)
}

fn build_text(y: &Year, charts: &[Chart]) -> Result<Vec<u8>, String> {
    let fm = Formats::new();
    let mut wb = Workbook::new();
    wb.set_properties(
        &DocProperties::new()
            .set_title(format!("OPR inputs and score, {}", y.label))
            .set_author("srv-opr")
            .set_comment(format!(
                "Built by srv-opr {} from the state of a run; definitions SHA-256 {}",
                env!("CARGO_PKG_VERSION"),
                y.defs.sha256
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
    wb.save_to_buffer().map_err(x)
}

/// Table 7: weight, assessment, retained share and money per measure, with formula totals.
fn summary_sheet(wb: &mut Workbook, y: &Year, fm: &Formats) -> Result<(), String> {
    let r = y.score;
    let ws = wb.add_worksheet();
    ws.set_name("Summary").map_err(x)?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!("{}: margin retained (the OPR's Table 7)", y.scheme.title),
        &fm.title,
    )
    .map_err(x)?;
    ws.write_string(1, 0, "Margin at risk (£m)").map_err(x)?;
    ws.write_number_with_format(1, 2, f(r.margin_at_risk), &fm.money)
        .map_err(x)?;
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
        ws.write_string(row, 0, &m.measure).map_err(x)?;
        ws.write_string(row, 1, &m.name).map_err(x)?;
        ws.write_number_with_format(row, 2, f(m.weight_decimal), &fm.pct)
            .map_err(x)?;
        ws.write_string(row, 3, assessment(m)).map_err(x)?;
        if let Some(s) = m.retained_share {
            ws.write_number_with_format(row, 4, f(s), &fm.pct)
                .map_err(x)?;
        }
        ws.write_number_with_format(row, 5, f(m.kept), &fm.money)
            .map_err(x)?;
        ws.write_number_with_format(row, 6, f(m.lost), &fm.money)
            .map_err(x)?;
        row += 1;
    }
    let last = row - 1;
    ws.write_string_with_format(row, 0, "Total", &fm.bold)
        .map_err(x)?;
    let sum = |col: u16, result: Decimal| {
        Formula::new(format!(
            "=SUM({}:{})",
            row_col_to_cell(first, col),
            row_col_to_cell(last, col)
        ))
        .set_result(f(result).to_string())
    };
    let weights: Decimal = r.measures.iter().map(|m| m.weight_decimal).sum();
    ws.write_formula_with_format(row, 2, sum(2, weights), &fm.pct_bold)
        .map_err(x)?;
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
    )
    .map_err(x)?;
    ws.write_formula_with_format(row, 5, sum(5, r.total_kept), &fm.money_bold)
        .map_err(x)?;
    ws.write_formula_with_format(row, 6, sum(6, r.total_lost), &fm.money_bold)
        .map_err(x)?;
    let mut note = row + 2;
    ws.write_string_with_format(
        note,
        0,
        "Exact figures and every intermediate step: score.json. Per-measure sheets show the \
         monthly RPLs behind each assessment.",
        &fm.note,
    )
    .map_err(x)?;
    for w in &r.warnings {
        note += 1;
        ws.write_string_with_format(note, 0, format!("Warning: {w}"), &fm.note)
            .map_err(x)?;
    }
    ws.set_column_width(0, 10).map_err(x)?;
    ws.set_column_width(1, 34).map_err(x)?;
    ws.set_column_width(3, 80).map_err(x)?;
    for c in [2, 4, 5, 6] {
        ws.set_column_width(c, 12).map_err(x)?;
    }
    Ok(())
}

type CountKey = (String, String, Option<String>, String); // measure, component, region, month

/// Monthly (numerator, denominator) of every input row that has them.
fn monthly_counts(y: &Year) -> BTreeMap<CountKey, (Decimal, Decimal)> {
    y.inputs
        .iter()
        .filter_map(|r| match (&r.period, r.counts) {
            (Period::Month(m), Some(c)) => Some((
                (
                    r.measure.clone(),
                    r.component.clone(),
                    r.region.clone(),
                    m.clone(),
                ),
                c,
            )),
            _ => None,
        })
        .collect()
}

fn month_header(
    ws: &mut Worksheet,
    y: &Year,
    first: &[&str],
    last: &[&str],
    fm: &Formats,
) -> Result<(), String> {
    header_row(ws, HEADER_ROW, 0, first, fm)?;
    let mut provisional = false;
    for (i, m) in y.months.iter().enumerate() {
        let mut label = month_label(*m);
        if y.provisional(*m) {
            label.push('*');
            provisional = true;
        }
        ws.write_string_with_format(HEADER_ROW, FIRST_MONTH_COL + i as u16, label, &fm.header)
            .map_err(x)?;
    }
    if provisional {
        ws.write_string_with_format(
            HEADER_ROW - 1,
            0,
            "* not final yet: the month's figures can still change (events up to its end plus \
             the longest deadline have not all been seen)",
            &fm.note,
        )
        .map_err(x)?;
    }
    let after = FIRST_MONTH_COL + y.months.len() as u16;
    header_row(ws, HEADER_ROW, after, last, fm)?;
    ws.set_column_width(0, 16).map_err(x)?;
    ws.set_column_width(1, 9).map_err(x)?;
    ws.set_column_width(2, 10).map_err(x)?;
    for i in 0..=y.months.len() as u16 {
        ws.set_column_width(FIRST_MONTH_COL + i, 9).map_err(x)?;
    }
    ws.set_column_width(after + 1, 16).map_err(x)?;
    ws.set_freeze_panes(HEADER_ROW + 1, FIRST_MONTH_COL)
        .map_err(x)?;
    Ok(())
}

/// Places charts two to a row from `row` down; returns the row after them.
fn place_charts(ws: &mut Worksheet, row: u32, charts: &[&Chart]) -> Result<u32, String> {
    // At 60 % scale an 800×450 chart is 480×270 px: about 14 rows of 20 px, 7½ columns.
    const SCALE: f64 = 0.6;
    const ROWS_PER_CHART: u32 = 15;
    for (i, c) in charts.iter().enumerate() {
        let img = Image::new_from_buffer(&c.png)
            .map_err(x)?
            .set_scale_width(SCALE)
            .set_scale_height(SCALE)
            .set_alt_text(c.title.clone());
        let r = row + (i as u32 / 2) * ROWS_PER_CHART;
        let col = if i % 2 == 0 { 0 } else { FIRST_MONTH_COL + 5 };
        ws.insert_image(r, col, &img).map_err(x)?;
    }
    Ok(row + charts.len().div_ceil(2) as u32 * ROWS_PER_CHART)
}

fn charts_of<'c>(charts: &'c [Chart], measures: &[&str]) -> Vec<&'c Chart> {
    let mut v: Vec<&Chart> = Vec::new();
    for m in measures {
        v.extend(charts.iter().filter(|c| c.stem == format!("rpl-{m}")));
        v.extend(
            charts
                .iter()
                .filter(|c| c.stem.starts_with(&format!("rt-{m}-"))),
        );
    }
    v
}

fn region_text(r: &Option<String>) -> &str {
    r.as_deref().unwrap_or("—")
}

/// A scheme measure's sheet and, when any of its inputs have counts, its counts sheet.
#[allow(clippy::too_many_arguments)]
fn scheme_sheets(
    wb: &mut Workbook,
    y: &Year,
    sm: &SchemeMeasure,
    ms: &MeasureScore,
    counts: &BTreeMap<CountKey, (Decimal, Decimal)>,
    charts: &[Chart],
    fm: &Formats,
) -> Result<(), String> {
    let comps: Vec<&ComponentScore> = ms
        .components
        .iter()
        .filter(|c| c.annual.is_some())
        .collect();
    let counts_name = format!("{} counts", sm.id);
    let key = |c: &ComponentScore, month: &str| {
        (
            sm.id.clone(),
            c.component.clone(),
            c.region.clone(),
            month.to_string(),
        )
    };
    let months: Vec<String> = y.months.iter().map(|m| m.to_string()).collect();
    let has_counts = comps
        .iter()
        .any(|c| months.iter().any(|m| counts.contains_key(&key(c, m))));
    // Counts sheet rows: per component with counts, a hits row then a requests row. The
    // counts sheet follows the measure's, whose formulas refer to it.
    let mut count_rows: BTreeMap<(String, Option<String>), u32> = BTreeMap::new();
    let mut next = HEADER_ROW + 1;
    for c in &comps {
        if months.iter().any(|m| counts.contains_key(&key(c, m))) {
            count_rows.insert((c.component.clone(), c.region.clone()), next);
            next += 2;
        }
    }
    let ws = wb.add_worksheet();
    ws.set_name(&sm.id).map_err(x)?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!("{} {}: monthly RPL, {}", sm.id, sm.name, y.label),
        &fm.title,
    )
    .map_err(x)?;
    let levels = match (sm.tpl, sm.mpl) {
        (Some(t), Some(m)) => format!("TPL {t}%, MPL {m}%; "),
        _ => String::new(),
    };
    ws.write_string_with_format(
        1,
        0,
        format!(
            "{levels}weight {}; mechanism {}; the annual figure is the mean of the months \
             (or the annual input); RPL = hits ÷ requests on '{counts_name}'",
            sm.weight,
            mechanism_text(sm.mechanism)
        ),
        &fm.note,
    )
    .map_err(x)?;
    month_header(
        ws,
        y,
        &["Component", "Region", "Scored"],
        &["Annual", "How"],
        fm,
    )?;
    let annual_col = FIRST_MONTH_COL + months.len() as u16;
    let mut row = HEADER_ROW + 1;
    let mut annual_cells: Vec<(&ComponentScore, u32)> = Vec::new();
    for c in &comps {
        ws.write_string(row, 0, &c.component).map_err(x)?;
        ws.write_string(row, 1, region_text(&c.region)).map_err(x)?;
        ws.write_string(row, 2, if c.scored { "yes" } else { "no (weight 0)" })
            .map_err(x)?;
        for (i, m) in months.iter().enumerate() {
            let Some(v) = c.months.get(m) else { continue };
            let col = FIRST_MONTH_COL + i as u16;
            match count_rows.get(&(c.component.clone(), c.region.clone())) {
                Some(cr) if counts.contains_key(&key(c, m)) => {
                    let formula = Formula::new(format!(
                        "={}/{}",
                        sheet_ref(&counts_name, *cr, col),
                        sheet_ref(&counts_name, cr + 1, col)
                    ))
                    .set_result(frac(*v).to_string());
                    ws.write_formula_with_format(row, col, formula, &fm.pct)
                        .map_err(x)?;
                }
                _ => {
                    ws.write_number_with_format(row, col, frac(*v), &fm.pct)
                        .map_err(x)?;
                }
            }
        }
        let annual = c.annual.unwrap_or_default();
        let range = format!(
            "{}:{}",
            row_col_to_cell(row, FIRST_MONTH_COL),
            row_col_to_cell(row, annual_col - 1)
        );
        if c.months.is_empty() {
            ws.write_number_with_format(row, annual_col, frac(annual), &fm.pct_bold)
                .map_err(x)?;
        } else if c.method == "pooled"
            && let Some(cr) = count_rows.get(&(c.component.clone(), c.region.clone()))
        {
            let formula = Formula::new(format!(
                "={}/{}",
                sheet_ref(&counts_name, *cr, annual_col),
                sheet_ref(&counts_name, cr + 1, annual_col)
            ))
            .set_result(frac(annual).to_string());
            ws.write_formula_with_format(row, annual_col, formula, &fm.pct_bold)
                .map_err(x)?;
        } else {
            let formula =
                Formula::new(format!("=AVERAGE({range})")).set_result(frac(annual).to_string());
            ws.write_formula_with_format(row, annual_col, formula, &fm.pct_bold)
                .map_err(x)?;
        }
        ws.write_string(row, annual_col + 1, &c.method).map_err(x)?;
        annual_cells.push((c, row));
        row += 1;
    }
    for (label, level) in [("TPL", sm.tpl), ("MPL", sm.mpl)] {
        let Some(level) = level else { continue };
        ws.write_string_with_format(row, 0, label, &fm.bold)
            .map_err(x)?;
        for i in 0..=months.len() as u16 {
            ws.write_number_with_format(row, FIRST_MONTH_COL + i, frac(level), &fm.pct)
                .map_err(x)?;
        }
        row += 1;
    }

    // The scored parts: the measure RPL is the mean of its scored components' annual figures.
    row += 1;
    let heads = [
        "Part",
        "Scope",
        "RPL",
        "Kept share",
        "Allocation £m",
        "Kept £m",
        "Lost £m",
    ];
    header_row(ws, row, 0, &heads, fm)?;
    row += 1;
    for p in &ms.parts {
        let cells: Vec<String> = annual_cells
            .iter()
            .filter(|(c, _)| {
                c.scored
                    && match p.scope.as_str() {
                        "non-regional" => c.region.is_none(),
                        r => c.region.as_deref() == Some(r),
                    }
            })
            .map(|(_, r)| row_col_to_cell(*r, annual_col))
            .collect();
        ws.write_string(row, 0, "RPL").map_err(x)?;
        ws.write_string(row, 1, &p.scope).map_err(x)?;
        if cells.is_empty() {
            ws.write_number_with_format(row, 2, frac(p.rpl), &fm.pct_bold)
                .map_err(x)?;
        } else {
            let formula = Formula::new(format!("=AVERAGE({})", cells.join(",")))
                .set_result(frac(p.rpl).to_string());
            ws.write_formula_with_format(row, 2, formula, &fm.pct_bold)
                .map_err(x)?;
        }
        ws.write_number_with_format(row, 3, f(p.share), &fm.pct)
            .map_err(x)?;
        ws.write_number_with_format(row, 4, f(p.allocation), &fm.money)
            .map_err(x)?;
        ws.write_number_with_format(row, 5, f(p.kept), &fm.money)
            .map_err(x)?;
        ws.write_number_with_format(row, 6, f(p.lost), &fm.money)
            .map_err(x)?;
        row += 1;
    }
    let fed: Vec<&str> = sm
        .components
        .iter()
        .filter_map(|c| c.from.as_deref())
        .collect();
    place_charts(ws, row + 1, &charts_of(charts, &fed))?;
    if has_counts {
        let ws = wb.add_worksheet();
        ws.set_name(&counts_name).map_err(x)?;
        page_setup(ws);
        ws.write_string_with_format(
            0,
            0,
            format!("{} {}: monthly counts, {}", sm.id, sm.name, y.label),
            &fm.title,
        )
        .map_err(x)?;
        ws.write_string_with_format(
            1,
            0,
            "hits: requests answered successfully within the TRT (or, for success measures, \
             within the deadline); requests: requests decided in the month",
            &fm.note,
        )
        .map_err(x)?;
        month_header(ws, y, &["Component", "Region", "Count"], &["Year"], fm)?;
        let year_col = FIRST_MONTH_COL + months.len() as u16;
        for c in &comps {
            let Some(row) = count_rows
                .get(&(c.component.clone(), c.region.clone()))
                .copied()
            else {
                continue;
            };
            for (k, what) in ["hits", "requests"].iter().enumerate() {
                let r = row + k as u32;
                ws.write_string(r, 0, &c.component).map_err(x)?;
                ws.write_string(r, 1, region_text(&c.region)).map_err(x)?;
                ws.write_string(r, 2, *what).map_err(x)?;
                let mut total = Decimal::ZERO;
                for (i, m) in months.iter().enumerate() {
                    if let Some((num, den)) = counts.get(&key(c, m)) {
                        let v = if k == 0 { *num } else { *den };
                        total += v;
                        ws.write_number_with_format(r, FIRST_MONTH_COL + i as u16, f(v), &fm.count)
                            .map_err(x)?;
                    }
                }
                ws.write_formula_with_format(
                    r,
                    year_col,
                    Formula::new(format!(
                        "=SUM({}:{})",
                        row_col_to_cell(r, FIRST_MONTH_COL),
                        row_col_to_cell(r, year_col - 1)
                    ))
                    .set_result(f(total).to_string()),
                    &fm.count,
                )
                .map_err(x)?;
            }
        }
    }

    Ok(())
}

fn mechanism_text(m: Mechanism) -> &'static str {
    match m {
        Mechanism::A => "A (non-regional)",
        Mechanism::B => "B (per region)",
        Mechanism::AB => "A + B",
        Mechanism::Vmm => "VMM",
    }
}

/// Streaming measures straight from `rpl.csv` (the MP242 success rates, or TRT measures no
/// scheme uses): a rates sheet of formulas over a counts sheet.
fn streaming_sheets(
    wb: &mut Workbook,
    y: &Year,
    name: &str,
    measures: &[&Measure],
    charts: &[Chart],
    fm: &Formats,
) -> Result<(), String> {
    let regions = Region::LABELS;
    let rows: Vec<(&Measure, &str)> = measures
        .iter()
        .flat_map(|m| regions.iter().map(move |r| (*m, *r)))
        .filter(|(m, r)| y.lines.iter().any(|l| l.measure == m.id && l.region == *r))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let line = |m: &Measure, r: &str, month| {
        y.lines
            .iter()
            .find(|l| l.measure == m.id && l.region == r && l.month == month)
    };
    let counts_name = format!("{name} counts");
    let year_col = FIRST_MONTH_COL + y.months.len() as u16;
    let ws = wb.add_worksheet();
    ws.set_name(name).map_err(x)?;
    page_setup(ws);
    ws.write_string_with_format(0, 0, format!("{name}: monthly RPL, {}", y.label), &fm.title)
        .map_err(x)?;
    ws.write_string_with_format(
        1,
        0,
        format!(
            "RPL = hits ÷ requests on '{counts_name}'; the annual figure is the mean of the \
             months; `all` pools the three regions"
        ),
        &fm.note,
    )
    .map_err(x)?;
    month_header(ws, y, &["Measure", "Region", "TPL"], &["Annual"], fm)?;
    for (k, (m, r)) in rows.iter().enumerate() {
        let row = HEADER_ROW + 1 + k as u32;
        let cr = HEADER_ROW + 1 + 2 * k as u32;
        ws.write_string(row, 0, &m.id).map_err(x)?;
        ws.write_string(row, 1, *r).map_err(x)?;
        if let Some(t) = m.tpl {
            ws.write_number_with_format(row, 2, frac(t), &fm.pct)
                .map_err(x)?;
        }
        let mut fracs = Vec::new();
        for (i, month) in y.months.iter().enumerate() {
            let Some(l) = line(m, r, *month) else {
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
            ws.write_formula_with_format(row, col, formula, &fm.pct)
                .map_err(x)?;
        }
        let mean = fracs.iter().sum::<f64>() / fracs.len().max(1) as f64;
        let formula = Formula::new(format!(
            "=AVERAGE({}:{})",
            row_col_to_cell(row, FIRST_MONTH_COL),
            row_col_to_cell(row, year_col - 1)
        ))
        .set_result(mean.to_string());
        ws.write_formula_with_format(row, year_col, formula, &fm.pct_bold)
            .map_err(x)?;
    }
    let ids: Vec<&str> = measures.iter().map(|m| m.id.as_str()).collect();
    place_charts(
        ws,
        HEADER_ROW + 2 + rows.len() as u32,
        &charts_of(charts, &ids),
    )?;
    // The counts sheet follows the rates sheet, whose formulas refer to it.
    {
        let ws = wb.add_worksheet();
        ws.set_name(&counts_name).map_err(x)?;
        page_setup(ws);
        ws.write_string_with_format(
            0,
            0,
            format!("{name}: monthly counts, {}", y.label),
            &fm.title,
        )
        .map_err(x)?;
        ws.write_string_with_format(
            1,
            0,
            "hits: succeeded within the deadline (success measures) or within the TRT (TRT \
             measures); requests: requests decided in the month (rpl.csv)",
            &fm.note,
        )
        .map_err(x)?;
        month_header(ws, y, &["Measure", "Region", "Count"], &["Year"], fm)?;
        for (k, (m, r)) in rows.iter().enumerate() {
            for (j, what) in ["hits", "requests"].iter().enumerate() {
                let row = HEADER_ROW + 1 + 2 * k as u32 + j as u32;
                ws.write_string(row, 0, &m.id).map_err(x)?;
                ws.write_string(row, 1, *r).map_err(x)?;
                ws.write_string(row, 2, *what).map_err(x)?;
                let mut total = 0u64;
                for (i, month) in y.months.iter().enumerate() {
                    if let Some(l) = line(m, r, *month) {
                        let v = if j == 0 { l.hits } else { l.row.requests };
                        total += v;
                        ws.write_number_with_format(
                            row,
                            FIRST_MONTH_COL + i as u16,
                            v as f64,
                            &fm.count,
                        )
                        .map_err(x)?;
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
                )
                .map_err(x)?;
            }
        }
    }
    Ok(())
}

/// The year's misses by failure bucket, per measure and region, largest first (top ten each).
fn failures_sheet(wb: &mut Workbook, y: &Year, fm: &Formats) -> Result<(), String> {
    let totals = failure_totals(y, 10);
    let ws = wb.add_worksheet();
    ws.set_name("Failures").map_err(x)?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!(
            "Where the misses went, {} (failures.csv summed over the months)",
            y.label
        ),
        &fm.title,
    )
    .map_err(x)?;
    ws.write_string_with_format(
        1,
        0,
        "bucket: the final response's error code, slow (succeeded after the TRT), no_response \
         (no final response within the deadline) or other; at most ten per measure and region",
        &fm.note,
    )
    .map_err(x)?;
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
        ws.write_string(row, 0, &t.measure).map_err(x)?;
        ws.write_string(row, 1, t.region).map_err(x)?;
        ws.write_string(row, 2, &t.bucket).map_err(x)?;
        ws.write_number_with_format(row, 3, t.count as f64, &fm.count)
            .map_err(x)?;
        if let Some(all) = misses
            .get(&(t.measure.clone(), t.region))
            .filter(|n| **n > 0)
        {
            ws.write_number_with_format(row, 4, t.count as f64 / *all as f64, &fm.pct)
                .map_err(x)?;
        }
    }
    if totals.is_empty() {
        ws.write_string(HEADER_ROW + 1, 0, "no misses in the year")
            .map_err(x)?;
    }
    ws.set_column_width(0, 16).map_err(x)?;
    ws.set_column_width(2, 14).map_err(x)?;
    ws.set_column_width(4, 16).map_err(x)?;
    Ok(())
}
