//! The XLSX workbook shaped like the regulator's RIGs Annex 1: a Table 7 summary, one sheet per
//! OPR measure (months across, components and regions down, TPL and MPL rows, the annual
//! figure) with its counts on a second sheet, the MP242 success rates, the year's failure
//! buckets, and the charts embedded beside the figures they draw.
//!
//! Figures a reader would derive are formulas with their values cached (a monthly RPL is
//! hits ÷ requests on the counts sheet, the annual figure is the mean of the months, a measure
//! RPL is the mean of its components), so the workbook explains itself and opens with every
//! value in place even where nothing recalculates.
//!
//! - `summary`: Table 7;
//! - `scheme`: an OPR measure's sheet and its counts sheet;
//! - `segments`: the time before and after DCC's acknowledgement;
//! - `streaming`: streaming measures straight from `rpl.csv` (MP242, TRT measures no scheme
//!   uses), rates over counts;
//! - `failures`: the year's failure buckets;
//! - `exemptions`: what the exemption register took out, per reason and incident;
//! - `signoff`: each month's sign-off, and what was restated since;
//! - `book`: the workbook put together, its sheets in reading order;
//! - `layout`: formats, headers, month columns and charts every sheet shares.

mod book;
mod exemptions;
mod failures;
mod layout;
mod scheme;
mod segments;
mod signoff;
mod streaming;
mod summary;

pub(crate) use book::build;
