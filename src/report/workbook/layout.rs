//! What every sheet shares: the cell formats, the header block, month columns, chart placing,
//! and how figures become cells (percentages as fractions under a `0.00%` format, so nothing is
//! rounded in the file).

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_xlsxwriter::utility::row_col_to_cell;
use rust_xlsxwriter::{Color, Format, FormatBorder, Image, Worksheet, XlsxError};

use super::super::charts::Chart;
use super::super::year::{Year, month_label};

/// First month column (after label columns A–C).
pub(super) const FIRST_MONTH_COL: u16 = 3;
/// Rows of a sheet's header block (title, subtitle, blank) before the table header.
pub(super) const HEADER_ROW: u32 = 3;
/// A4 in Excel's paper size codes.
const A4: u8 = 9;

/// The cell formats every sheet uses.
pub(super) struct Formats {
    pub(super) title: Format,
    pub(super) header: Format,
    pub(super) pct: Format,
    pub(super) pct_bold: Format,
    pub(super) count: Format,
    pub(super) money: Format,
    pub(super) money_bold: Format,
    pub(super) bold: Format,
    pub(super) note: Format,
}

impl Formats {
    pub(super) fn new() -> Formats {
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

/// A decimal as the float a cell holds.
pub(super) fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

/// A percentage (0–100) as the fraction a `0.00%` cell holds.
pub(super) fn frac(d: Decimal) -> f64 {
    f(d / Decimal::ONE_HUNDRED)
}

/// `'SDM2 counts'!D5`.
pub(super) fn sheet_ref(sheet: &str, row: u32, col: u16) -> String {
    format!("'{sheet}'!{}", row_col_to_cell(row, col))
}

/// Writes `heads` as a header row from column `col`.
pub(super) fn header_row(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    heads: &[&str],
    fm: &Formats,
) -> Result<(), XlsxError> {
    for (c, h) in heads.iter().enumerate() {
        ws.write_string_with_format(row, col + c as u16, *h, &fm.header)?;
    }
    Ok(())
}

/// Landscape A4, fitted to one page.
pub(super) fn page_setup(ws: &mut Worksheet) {
    // One page per sheet when printed (or converted to PDF): landscape A4, fitted.
    ws.set_landscape();
    ws.set_paper_size(A4);
    ws.set_print_fit_to_pages(1, 1);
}

/// A sheet's header row: `first` labels, a column per month (`*` on one not final yet, with
/// a note saying so), then `last` labels; widths and frozen panes.
pub(super) fn month_header(
    ws: &mut Worksheet,
    y: &Year,
    first: &[&str],
    last: &[&str],
    fm: &Formats,
) -> Result<(), XlsxError> {
    header_row(ws, HEADER_ROW, 0, first, fm)?;
    let mut provisional = false;
    for (i, m) in y.months.iter().enumerate() {
        let mut label = month_label(*m);
        if y.provisional(*m) {
            label.push('*');
            provisional = true;
        }
        ws.write_string_with_format(HEADER_ROW, FIRST_MONTH_COL + i as u16, label, &fm.header)?;
    }
    if provisional {
        ws.write_string_with_format(
            HEADER_ROW - 1,
            0,
            "* not final yet: the month's figures can still change (events up to its end plus \
             the longest deadline have not all been seen)",
            &fm.note,
        )?;
    }
    let after = FIRST_MONTH_COL + y.months.len() as u16;
    header_row(ws, HEADER_ROW, after, last, fm)?;
    ws.set_column_width(0, 16)?;
    ws.set_column_width(1, 9)?;
    ws.set_column_width(2, 10)?;
    for i in 0..=y.months.len() as u16 {
        ws.set_column_width(FIRST_MONTH_COL + i, 9)?;
    }
    ws.set_column_width(after + 1, 16)?;
    ws.set_freeze_panes(HEADER_ROW + 1, FIRST_MONTH_COL)?;
    Ok(())
}

/// Places charts two to a row from `row` down; returns the row after them.
pub(super) fn place_charts(
    ws: &mut Worksheet,
    row: u32,
    charts: &[&Chart],
) -> Result<u32, XlsxError> {
    // At 60 % scale an 800×450 chart is 480×270 px: about 14 rows of 20 px, 7½ columns.
    const SCALE: f64 = 0.6;
    const ROWS_PER_CHART: u32 = 15;
    for (i, c) in charts.iter().enumerate() {
        let img = Image::new_from_buffer(&c.png)?
            .set_scale_width(SCALE)
            .set_scale_height(SCALE)
            .set_alt_text(c.title.clone());
        let r = row + (i as u32 / 2) * ROWS_PER_CHART;
        let col = if i % 2 == 0 { 0 } else { FIRST_MONTH_COL + 5 };
        ws.insert_image(r, col, &img)?;
    }
    Ok(row + charts.len().div_ceil(2) as u32 * ROWS_PER_CHART)
}

/// The charts of `measures`, each's RPL chart then its response-time charts.
pub(super) fn charts_of<'c>(charts: &'c [Chart], measures: &[&str]) -> Vec<&'c Chart> {
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

/// A component's region, or a dash for a non-regional one.
pub(super) fn region_text(r: &Option<String>) -> &str {
    r.as_deref().unwrap_or("—")
}
