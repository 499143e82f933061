//! The process's signals: SIGINT or SIGTERM asks `run` (and `demo`) to drain and hand over;
//! the stop must finish within `kafka.shutdown_timeout`, or a second signal ends it at once.
//! It watches on a thread of its own, with a current-thread tokio runtime for tokio's signals.

/// Sets `stop` on SIGINT or SIGTERM (the run loop checks it between polls). The stop must be
/// over within `deadline` (`kafka.shutdown_timeout`), or the process exits 1 without outputs; a
/// second signal exits at once.
pub(super) fn watch_signals(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    deadline: crate::engine::time::Dur,
) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            tracing::error!("cannot watch for signals: SIGTERM will not stop the run cleanly");
            return;
        };
        rt.block_on(async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot watch SIGTERM");
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("signal received: draining and handing over the partitions");
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let deadline = deadline.to_std();
            tokio::select! {
                _ = tokio::time::sleep(deadline) => {
                    eprintln!(
                        "srv-opr: the shutdown deadline of {deadline:?} (kafka.shutdown_timeout) \
                         passed before the partitions were handed over; exiting without outputs"
                    );
                }
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("srv-opr: second signal: exiting without outputs");
                }
                _ = term.recv() => {
                    eprintln!("srv-opr: second signal: exiting without outputs");
                }
            }
            std::process::exit(1);
        });
    });
}
