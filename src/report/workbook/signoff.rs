//! The `Sign-off` sheet (issue 31): for each month of the year, whether its `opr` figures were
//! signed, by whom and when, and every field restated since (signed against current), with
//! what moved it.

use rust_xlsxwriter::{Workbook, XlsxError};

use super::super::year::{Year, month_label};
use super::layout::{Formats, HEADER_ROW, header_row, page_setup};

/// The sheet: one line per month, then the restated fields.
pub(super) fn signoff_sheet(wb: &mut Workbook, y: &Year, fm: &Formats) -> Result<(), XlsxError> {
    let ws = wb.add_worksheet();
    ws.set_name("Sign-off")?;
    page_setup(ws);
    ws.write_string_with_format(
        0,
        0,
        format!(
            "Month sign-off, {} (opr view; srv-opr signoff and restatements)",
            y.label
        ),
        &fm.title,
    )?;
    ws.write_string_with_format(
        1,
        0,
        "Each month against its latest sign-off: a restated field is one whose figure today \
         differs from the one signed.",
        &fm.note,
    )?;
    header_row(
        ws,
        HEADER_ROW,
        0,
        &[
            "Month",
            "Signed",
            "Signed by",
            "Signed at",
            "Restated fields",
            "Why",
        ],
        fm,
    )?;
    let mut row = HEADER_ROW + 1;
    for m in &y.months {
        let text = m.to_string();
        let s = y
            .signoffs
            .iter()
            .find(|s| s.month == text && s.view == "opr");
        ws.write_string(row, 0, month_label(*m))?;
        match s {
            None => {
                ws.write_string(row, 1, "not signed")?;
            }
            Some(s) => {
                ws.write_string(
                    row,
                    1,
                    if s.forced {
                        "yes, before final (--force)"
                    } else {
                        "yes"
                    },
                )?;
                ws.write_string(row, 2, &s.signed_by)?;
                ws.write_string(row, 3, &s.signed_at)?;
                ws.write_number(row, 4, s.restated_fields as f64)?;
                ws.write_string(row, 5, s.causes.join("; "))?;
            }
        }
        row += 1;
    }
    let changes: Vec<_> = y.signoffs.iter().flat_map(|s| &s.changes).collect();
    if changes.is_empty() {
        return Ok(());
    }
    row += 1;
    header_row(
        ws,
        row,
        0,
        &[
            "Month", "Measure", "Region", "Field", "Signed", "Current", "Why",
        ],
        fm,
    )?;
    for c in changes {
        row += 1;
        ws.write_string(row, 0, &c.month)?;
        ws.write_string(row, 1, &c.measure)?;
        ws.write_string(row, 2, &c.region)?;
        ws.write_string(row, 3, &c.field)?;
        ws.write_string(row, 4, &c.signed)?;
        ws.write_string(row, 5, &c.current)?;
        ws.write_string(row, 6, c.causes.join("; "))?;
    }
    Ok(())
}
