//! The month outputs, rendered as text from [`Aggregates`](crate::engine::aggregate::Aggregates)
//! exactly as specified (headers, order, number formats), one file each: `rpl.csv` (and
//! `rpl.<view>.csv`), `users.csv`, `failures.csv`, `evidence/`, `opr-inputs.csv`,
//! `availability.csv`, `exemptions.csv` and `summary.json`.

mod availability;
mod evidence;
mod exemptions;
mod opr_inputs;
mod rpl;
mod summary;

pub use availability::{
    AVAILABILITY_HEADER, AvailabilityLine, availability_csv, availability_lines,
};
pub use evidence::{EVIDENCE_HEADER, evidence_file_name, evidence_files};
pub use exemptions::{EXEMPTIONS_HEADER, ExemptionLine, exemption_lines, exemptions_csv};
pub use opr_inputs::{OPR_INPUTS_HEADER, opr_inputs_csv, sum1_inputs};
pub use rpl::{
    FAILURES_HEADER, RPL_HEADER, RplLine, USERS_HEADER, failures_csv, rpl_csv, rpl_lines,
    rpl_lines_of, users_csv,
};
pub use summary::{MonthCoverage, Summary, coverage_of};
