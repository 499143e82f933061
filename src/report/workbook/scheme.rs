//! An OPR measure's sheet (its components and regions down, months across, TPL and MPL rows, the
//! annual figure, then the scored parts with RPL, kept share, allocation and money) and, when
//! its inputs have counts, the counts sheet its monthly RPLs are formulas over.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_xlsxwriter::utility::row_col_to_cell;
use rust_xlsxwriter::{Formula, Workbook, Worksheet, XlsxError};

use super::super::charts::Chart;
use super::super::year::Year;
use super::layout::{
    FIRST_MONTH_COL, Formats, HEADER_ROW, charts_of, f, frac, header_row, month_header, page_setup,
    place_charts, region_text, sheet_ref,
};
use crate::score::inputs::Period;
use crate::score::model::{ComponentScore, MeasureScore};
use crate::score::scheme::{Mechanism, SchemeMeasure};

/// (measure, component, region, month).
pub(super) type CountKey = (String, String, Option<String>, String);

/// Monthly (numerator, denominator) of every input row that has them.
pub(super) fn monthly_counts(y: &Year) -> BTreeMap<CountKey, (Decimal, Decimal)> {
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

/// A scheme measure's sheet and, when any of its inputs have counts, its counts sheet.
pub(super) fn scheme_sheets(
    wb: &mut Workbook,
    y: &Year,
    sm: &SchemeMeasure,
    ms: &MeasureScore,
    counts: &BTreeMap<CountKey, (Decimal, Decimal)>,
    charts: &[Chart],
    fm: &Formats,
) -> Result<(), XlsxError> {
    let sheet = Sheet::new(y, sm, ms, counts, fm);
    let ws = wb.add_worksheet();
    ws.set_name(&sm.id)?;
    page_setup(ws);
    sheet.heading(ws)?;
    month_header(
        ws,
        y,
        &["Component", "Region", "Scored"],
        &["Annual", "How"],
        fm,
    )?;
    let (row, annual_cells) = sheet.components(ws)?;
    let row = sheet.levels(ws, row)?;
    let row = sheet.parts(ws, row + 1, &annual_cells)?;
    let fed: Vec<&str> = sm
        .components
        .iter()
        .filter_map(|c| c.from.as_deref())
        .collect();
    place_charts(ws, row + 1, &charts_of(charts, &fed))?;
    if !sheet.count_rows.is_empty() {
        sheet.counts_sheet(wb)?;
    }
    Ok(())
}

/// A component and the row of its annual figure.
type AnnualCell<'a> = (&'a ComponentScore, u32);

/// What a measure's sheets are written from.
struct Sheet<'a, 'y> {
    y: &'a Year<'y>,
    sm: &'a SchemeMeasure,
    ms: &'a MeasureScore,
    counts: &'a BTreeMap<CountKey, (Decimal, Decimal)>,
    fm: &'a Formats,
    /// The components with an annual figure, in the score's order.
    comps: Vec<&'a ComponentScore>,
    /// The year's months as `YYYY-MM`.
    months: Vec<String>,
    /// `<measure> counts`.
    counts_name: String,
    /// Per component with counts, its hits row on the counts sheet (requests the next).
    count_rows: BTreeMap<(String, Option<String>), u32>,
    /// The annual figure's column.
    annual_col: u16,
}

impl<'a, 'y> Sheet<'a, 'y> {
    fn new(
        y: &'a Year<'y>,
        sm: &'a SchemeMeasure,
        ms: &'a MeasureScore,
        counts: &'a BTreeMap<CountKey, (Decimal, Decimal)>,
        fm: &'a Formats,
    ) -> Sheet<'a, 'y> {
        let comps: Vec<&ComponentScore> = ms
            .components
            .iter()
            .filter(|c| c.annual.is_some())
            .collect();
        let months: Vec<String> = y.months.iter().map(|m| m.to_string()).collect();
        let mut sheet = Sheet {
            y,
            sm,
            ms,
            counts,
            fm,
            comps,
            annual_col: FIRST_MONTH_COL + months.len() as u16,
            months,
            counts_name: format!("{} counts", sm.id),
            count_rows: BTreeMap::new(),
        };
        // Counts sheet rows: per component with counts, a hits row then a requests row. The
        // counts sheet follows the measure's, whose formulas refer to it.
        let mut next = HEADER_ROW + 1;
        for c in &sheet.comps {
            if sheet.has_counts(c) {
                sheet
                    .count_rows
                    .insert((c.component.clone(), c.region.clone()), next);
                next += 2;
            }
        }
        sheet
    }

    fn key(&self, c: &ComponentScore, month: &str) -> CountKey {
        (
            self.sm.id.clone(),
            c.component.clone(),
            c.region.clone(),
            month.to_string(),
        )
    }

    fn has_counts(&self, c: &ComponentScore) -> bool {
        self.months
            .iter()
            .any(|m| self.counts.contains_key(&self.key(c, m)))
    }

    fn count_row(&self, c: &ComponentScore) -> Option<u32> {
        self.count_rows
            .get(&(c.component.clone(), c.region.clone()))
            .copied()
    }

    /// The title and the note saying how the figures are made.
    fn heading(&self, ws: &mut Worksheet) -> Result<(), XlsxError> {
        let sm = self.sm;
        ws.write_string_with_format(
            0,
            0,
            format!("{} {}: monthly RPL, {}", sm.id, sm.name, self.y.label),
            &self.fm.title,
        )?;
        let levels = match (sm.tpl, sm.mpl) {
            (Some(t), Some(m)) => format!("TPL {t}%, MPL {m}%; "),
            _ => String::new(),
        };
        ws.write_string_with_format(
            1,
            0,
            format!(
                "{levels}weight {}; mechanism {}; the annual figure is the mean of the months \
                 (or the annual input); RPL = hits ÷ requests on '{}'",
                sm.weight,
                mechanism_text(sm.mechanism),
                self.counts_name
            ),
            &self.fm.note,
        )?;
        Ok(())
    }

    /// A row per component: its monthly RPLs (formulas over the counts sheet where it has
    /// counts) and its annual figure. Returns the next row and each component's row.
    fn components(&self, ws: &mut Worksheet) -> Result<(u32, Vec<AnnualCell<'a>>), XlsxError> {
        let mut row = HEADER_ROW + 1;
        let mut annual_cells = Vec::new();
        for c in &self.comps {
            ws.write_string(row, 0, &c.component)?;
            ws.write_string(row, 1, region_text(&c.region))?;
            ws.write_string(row, 2, if c.scored { "yes" } else { "no (weight 0)" })?;
            self.monthly_rpls(ws, row, c)?;
            self.annual(ws, row, c)?;
            ws.write_string(row, self.annual_col + 1, &c.method)?;
            annual_cells.push((*c, row));
            row += 1;
        }
        Ok((row, annual_cells))
    }

    fn monthly_rpls(
        &self,
        ws: &mut Worksheet,
        row: u32,
        c: &ComponentScore,
    ) -> Result<(), XlsxError> {
        let fm = self.fm;
        for (i, m) in self.months.iter().enumerate() {
            let Some(v) = c.months.get(m) else { continue };
            let col = FIRST_MONTH_COL + i as u16;
            match self.count_row(c) {
                Some(cr) if self.counts.contains_key(&self.key(c, m)) => {
                    let formula = Formula::new(format!(
                        "={}/{}",
                        sheet_ref(&self.counts_name, cr, col),
                        sheet_ref(&self.counts_name, cr + 1, col)
                    ))
                    .set_result(frac(*v).to_string());
                    ws.write_formula_with_format(row, col, formula, &fm.pct)?;
                }
                _ => {
                    ws.write_number_with_format(row, col, frac(*v), &fm.pct)?;
                }
            }
        }
        Ok(())
    }

    /// The annual figure: the annual input, Σ hits ÷ Σ requests for a pooled component, else
    /// the mean of the months.
    fn annual(&self, ws: &mut Worksheet, row: u32, c: &ComponentScore) -> Result<(), XlsxError> {
        let (fm, col) = (self.fm, self.annual_col);
        let annual = c.annual.unwrap_or_default();
        let range = format!(
            "{}:{}",
            row_col_to_cell(row, FIRST_MONTH_COL),
            row_col_to_cell(row, col - 1)
        );
        if c.months.is_empty() {
            ws.write_number_with_format(row, col, frac(annual), &fm.pct_bold)?;
        } else if c.method == "pooled"
            && let Some(cr) = self.count_row(c)
        {
            let formula = Formula::new(format!(
                "={}/{}",
                sheet_ref(&self.counts_name, cr, col),
                sheet_ref(&self.counts_name, cr + 1, col)
            ))
            .set_result(frac(annual).to_string());
            ws.write_formula_with_format(row, col, formula, &fm.pct_bold)?;
        } else {
            let formula =
                Formula::new(format!("=AVERAGE({range})")).set_result(frac(annual).to_string());
            ws.write_formula_with_format(row, col, formula, &fm.pct_bold)?;
        }
        Ok(())
    }

    /// The TPL and MPL rows, across every month and the annual column.
    fn levels(&self, ws: &mut Worksheet, mut row: u32) -> Result<u32, XlsxError> {
        let fm = self.fm;
        for (label, level) in [("TPL", self.sm.tpl), ("MPL", self.sm.mpl)] {
            let Some(level) = level else { continue };
            ws.write_string_with_format(row, 0, label, &fm.bold)?;
            for i in 0..=self.months.len() as u16 {
                ws.write_number_with_format(row, FIRST_MONTH_COL + i, frac(level), &fm.pct)?;
            }
            row += 1;
        }
        Ok(row)
    }

    /// The scored parts: the measure RPL is the mean of its scored components' annual figures.
    /// Returns the next row.
    fn parts(
        &self,
        ws: &mut Worksheet,
        mut row: u32,
        annual_cells: &[AnnualCell<'_>],
    ) -> Result<u32, XlsxError> {
        let fm = self.fm;
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
        for p in &self.ms.parts {
            let cells: Vec<String> = annual_cells
                .iter()
                .filter(|(c, _)| {
                    c.scored
                        && match p.scope.as_str() {
                            "non-regional" => c.region.is_none(),
                            r => c.region.as_deref() == Some(r),
                        }
                })
                .map(|(_, r)| row_col_to_cell(*r, self.annual_col))
                .collect();
            ws.write_string(row, 0, "RPL")?;
            ws.write_string(row, 1, &p.scope)?;
            if cells.is_empty() {
                ws.write_number_with_format(row, 2, frac(p.rpl), &fm.pct_bold)?;
            } else {
                let formula = Formula::new(format!("=AVERAGE({})", cells.join(",")))
                    .set_result(frac(p.rpl).to_string());
                ws.write_formula_with_format(row, 2, formula, &fm.pct_bold)?;
            }
            ws.write_number_with_format(row, 3, f(p.share), &fm.pct)?;
            ws.write_number_with_format(row, 4, f(p.allocation), &fm.money)?;
            ws.write_number_with_format(row, 5, f(p.kept), &fm.money)?;
            ws.write_number_with_format(row, 6, f(p.lost), &fm.money)?;
            row += 1;
        }
        Ok(row)
    }

    /// The counts sheet: per component with counts, its hits and requests by month and their
    /// sums.
    fn counts_sheet(&self, wb: &mut Workbook) -> Result<(), XlsxError> {
        let (y, sm, fm) = (self.y, self.sm, self.fm);
        let ws = wb.add_worksheet();
        ws.set_name(&self.counts_name)?;
        page_setup(ws);
        ws.write_string_with_format(
            0,
            0,
            format!("{} {}: monthly counts, {}", sm.id, sm.name, y.label),
            &fm.title,
        )?;
        ws.write_string_with_format(
            1,
            0,
            "hits: requests answered successfully within the TRT (or, for success measures, \
             within the deadline); requests: requests decided in the month",
            &fm.note,
        )?;
        month_header(ws, y, &["Component", "Region", "Count"], &["Year"], fm)?;
        let year_col = self.annual_col;
        for c in &self.comps {
            let Some(row) = self.count_row(c) else {
                continue;
            };
            for (k, what) in ["hits", "requests"].iter().enumerate() {
                let r = row + k as u32;
                ws.write_string(r, 0, &c.component)?;
                ws.write_string(r, 1, region_text(&c.region))?;
                ws.write_string(r, 2, *what)?;
                let mut total = Decimal::ZERO;
                for (i, m) in self.months.iter().enumerate() {
                    if let Some((num, den)) = self.counts.get(&self.key(c, m)) {
                        let v = if k == 0 { *num } else { *den };
                        total += v;
                        ws.write_number_with_format(
                            r,
                            FIRST_MONTH_COL + i as u16,
                            f(v),
                            &fm.count,
                        )?;
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
                )?;
            }
        }
        Ok(())
    }
}

fn mechanism_text(m: Mechanism) -> &'static str {
    match m {
        Mechanism::A => "A (non-regional)",
        Mechanism::B => "B (per region)",
        Mechanism::AB => "A + B",
        Mechanism::Vmm => "VMM",
    }
}
