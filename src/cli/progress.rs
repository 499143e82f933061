//! A progress bar on stderr while a long replay runs, only when stderr is a terminal (never in
//! logs or pipes).

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A progress bar on stderr when it is a terminal, nothing otherwise.
pub(super) struct ProgressBar {
    bar: Option<indicatif::ProgressBar>,
    counter: Arc<AtomicU64>,
}

impl ProgressBar {
    pub(super) fn new(total: Option<u64>, counter: Arc<AtomicU64>, enabled: bool) -> ProgressBar {
        let bar = (enabled && io::stderr().is_terminal()).then(|| {
            let b = match total {
                Some(t) => indicatif::ProgressBar::new(t),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            b.set_style(style);
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
            b
        });
        ProgressBar { bar, counter }
    }

    pub(super) fn update(&self, events: u64, started: Instant) {
        if let Some(b) = &self.bar {
            b.set_position(self.counter.load(Ordering::Relaxed));
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            b.set_message(format!(
                "{events} events, {:.0} events/s",
                events as f64 / secs
            ));
        }
    }

    pub(super) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
