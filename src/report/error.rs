//! What can go wrong making a report: a chart that cannot be drawn, a workbook that cannot be
//! built.

/// A chart or the workbook could not be made (plotters' errors as their text: they are generic
/// over the drawing backend).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A chart could not be drawn.
    #[error("cannot draw a chart: {0}")]
    Chart(String),
    /// The workbook could not be built.
    #[error("cannot build the workbook")]
    Workbook(#[from] rust_xlsxwriter::XlsxError),
}
