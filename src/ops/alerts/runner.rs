//! The evaluator's thread: samples the live view every `alerts.interval`, logs each change,
//! sends it to Alertmanager (again while it fires, as Alertmanager forgets silent alerts), and
//! publishes the board `/metrics` reads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::evaluator::{AlertBoard, Evaluator, Transition};
use super::kinds::labels;
use super::notifier::{Alertmanager, Notice, NotifyError};
use crate::config::settings::AlertSettings;
use crate::engine::calendar::Calendar;
use crate::engine::definitions::Definitions;
use crate::ops::live::Live;

/// The evaluator's thread: samples `live` every `alerts.interval` until `stop`, logs and sends
/// each change, and publishes the board for `/metrics`.
pub struct AlertsHandle {
    /// What `/metrics` reads.
    pub board: Arc<Mutex<AlertBoard>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for AlertsHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why the evaluator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The Alertmanager client cannot be set up (a TLS file, a secret).
    #[error("alerts.alertmanager_url")]
    Alertmanager(#[source] NotifyError),
    /// No thread.
    #[error("cannot start the alert evaluator")]
    Thread(#[source] std::io::Error),
}

/// Starts the evaluator on a thread of its own; the Alertmanager client (its CA, certificate
/// and credentials) is set up first, so a missing file stops the start.
pub fn spawn(
    cfg: AlertSettings,
    defs: Arc<Definitions>,
    calendar: Calendar,
    live: Arc<Live>,
    interfaces: crate::ops::interfaces::Interfaces,
) -> Result<AlertsHandle, SpawnError> {
    let am = if cfg.alertmanager.url.is_empty() {
        None
    } else {
        Some(Alertmanager::new(&cfg.alertmanager).map_err(SpawnError::Alertmanager)?)
    };
    let board = Arc::new(Mutex::new(AlertBoard::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let (b, s) = (board.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("srv-opr-alerts".into())
        .spawn(move || {
            let eval = Evaluator::new(cfg.clone(), defs.clone(), calendar.clone())
                .with_interfaces(interfaces);
            evaluate_loop(cfg, eval, defs, live, am, b, s)
        })
        .map_err(SpawnError::Thread)?;
    Ok(AlertsHandle {
        board,
        stop,
        thread: Some(thread),
    })
}

fn evaluate_loop(
    cfg: AlertSettings,
    mut eval: Evaluator,
    defs: Arc<Definitions>,
    live: Arc<Live>,
    mut am: Option<Alertmanager>,
    board: Arc<Mutex<AlertBoard>>,
    stop: Arc<AtomicBool>,
) {
    let mut calendar = eval.calendar().clone();
    let interval = cfg.interval.to_std();
    let resend = cfg.resend_interval.to_std();
    let mut last_sent = Instant::now();
    // Alerts not yet delivered (Alertmanager down): sent with the next batch.
    let mut unsent: Vec<Notice> = Vec::new();
    let mut next = Instant::now();
    let mut evaluations = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(200)));
            continue;
        }
        next = now + interval;
        let snap = live.snapshot(|ts| calendar.month_of(ts));
        let (changes, mut b) = eval.step(&snap, now, SystemTime::now());
        for t in &changes {
            match t {
                Transition::Fired(a) => {
                    tracing::warn!(alert = a.key.0.name(), severity = a.key.0.severity(),
                        summary = %a.summary, "alert firing");
                    unsent.push((labels(&defs, &a.key), a.summary.clone(), a.since, None));
                }
                Transition::Resolved(a, at) => {
                    tracing::info!(alert = a.key.0.name(), summary = %a.summary, "alert resolved");
                    unsent.push((labels(&defs, &a.key), a.summary.clone(), a.since, Some(*at)));
                }
            }
        }
        if let Some(am) = &mut am {
            // Alertmanager forgets an alert not sent again within its resolve timeout: repeat
            // the firing ones.
            if last_sent.elapsed() >= resend {
                for a in eval.active.values().filter(|a| a.fired.is_some()) {
                    if !unsent
                        .iter()
                        .any(|(l, _, _, _)| *l == labels(&defs, &a.key))
                    {
                        unsent.push((labels(&defs, &a.key), a.summary.clone(), a.since, None));
                    }
                }
            }
            if !unsent.is_empty() {
                match am.post(&Alertmanager::body(&unsent)) {
                    Ok(()) => {
                        unsent.clear();
                        last_sent = Instant::now();
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::diagnostic::chain(&e), alerts = unsent.len(),
                            "cannot notify Alertmanager; will retry");
                        // Bounded: the firing ones are re-sent anyway.
                        if unsent.len() > 10_000 {
                            unsent.drain(..unsent.len() - 10_000);
                        }
                    }
                }
            }
        } else {
            unsent.clear();
        }
        b.notify_errors = am.as_ref().map_or(0, |am| am.errors);
        evaluations += 1;
        b.evaluations = evaluations;
        let mut shared = board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *shared = b;
    }
}
