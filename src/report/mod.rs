//! The annual report (`srv-opr report`): a regulatory year's figures rendered for the people
//! who receive the OPR inputs: the RIGs-shaped workbook, the charts and a one-page HTML
//! summary. Synchronous and I/O-free: the caller gathers the year (from the store or a replay),
//! scores it, and writes what these functions return.

pub mod charts;
pub mod error;
pub mod html;
pub mod month_table;
pub mod monthly;
pub mod workbook;
pub mod year;

pub(crate) use charts::charts;
pub(crate) use error::ReportError;
pub use year::Year;
