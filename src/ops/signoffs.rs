//! The sign-off watcher of `run` (issue 31): a thread that reads the store's signed months
//! every few seconds and compares each with its figures now, as `restatements` does, and
//! publishes what it found into the live view, where `/metrics`
//! (`srv_signed_month_restated_fields`), the alert evaluator (`SrvSignedMonthRestated`) and the
//! status page read it. The store is read here only, on a connection of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::ops::live::{Live, SignoffsRead};

/// The least time between two reads (the store is merged month by month: not every second).
const MIN_EVERY: Duration = Duration::from_secs(5);

/// The running watcher; dropping it stops the thread.
pub struct SignoffWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SignoffWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Starts the watcher when `cfg` names a state store (none without: nothing is signed).
pub(crate) fn spawn(cfg: &Config, live: Arc<Live>) -> std::io::Result<Option<SignoffWatcher>> {
    if cfg.settings.state.url.is_empty() {
        return Ok(None);
    }
    let every = cfg.settings.alerts.interval.to_std().max(MIN_EVERY);
    let cfg = cfg.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("srv-opr-signoffs".into())
        .spawn(move || {
            // The first read soon after the start, once partitions are being restored.
            std::thread::park_timeout(Duration::from_secs(2));
            let mut last: Vec<crate::signoff::SignedMonth> = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let read = match crate::signoff::compare_all(&cfg, None, None) {
                    Ok(c) => {
                        last = crate::signoff::summarise(&c);
                        for m in last.iter().filter(|m| m.restated_fields > 0) {
                            tracing::debug!(month = %m.month, view = %m.view,
                                fields = m.restated_fields, "signed month restated");
                        }
                        SignoffsRead {
                            months: last.clone(),
                            error: None,
                            read_at: Some(SystemTime::now()),
                        }
                    }
                    Err(e) => SignoffsRead {
                        months: last.clone(),
                        error: Some(crate::diagnostic::chain(&e)),
                        read_at: Some(SystemTime::now()),
                    },
                };
                live.set_signoffs(read);
                std::thread::park_timeout(every);
            }
        })?;
    Ok(Some(SignoffWatcher {
        stop,
        thread: Some(thread),
    }))
}
