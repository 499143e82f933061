//! The in-process alert evaluator: samples the live counters every `alerts.interval`, decides
//! which alerts hold (a region's month-to-date RPL below TPL or MPL, a fast or slow burn of the
//! month's error budget, a measure gone silent, a stalled consumer, a stuck watermark, rising
//! dead letters), and reports each change to the log, to `srv_alert_active` (through the
//! [`AlertBoard`]) and to an Alertmanager. `srv-opr alert-rules` writes the same alerts as
//! Prometheus rules (`rules`): names, labels and conditions are shared (`kinds`).
//!
//! The evaluator is synchronous ([`Evaluator::step`] takes the time it is given), so tests
//! drive it through hours of windows in microseconds; [`spawn`] is its thin thread shell.
//!
//! - `kinds`: the alerts, their labels and severities;
//! - `evaluator`: the synchronous evaluator and the board it publishes;
//! - `notifier`: the Alertmanager client;
//! - `runner`: the evaluator's thread;
//! - `rules`: the same alerts as Prometheus recording and alerting rules.

mod evaluator;
mod kinds;
mod notifier;
pub mod rules;
mod runner;

pub use evaluator::{Active, AlertBoard, Evaluator};

pub(crate) use kinds::{AlertKey, AlertKind, REGIONS, alert_regions, measure_label};
pub use notifier::{Alertmanager, Notice};
pub use runner::spawn;
pub(crate) use runner::{AlertsHandle, SpawnError};
