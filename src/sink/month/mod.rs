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

pub(crate) use availability::{AvailabilityLine, availability_csv, availability_lines};
pub use evidence::evidence_files;
pub(crate) use evidence::{EVIDENCE_HEADER, evidence_file_name};
pub(crate) use exemptions::exemption_lines;
pub(crate) use exemptions::{ExemptionLine, exemptions_csv};
pub(crate) use opr_inputs::{opr_inputs_csv, sum1_inputs};
pub(crate) use rpl::rpl_lines_of;
pub use rpl::{RplLine, failures_csv, rpl_csv, rpl_lines, users_csv};
pub use summary::Summary;
