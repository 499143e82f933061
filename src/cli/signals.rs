//! The process's signals: SIGINT or SIGTERM asks `run` (and `demo`) to drain and hand over;
//! the stop must finish within `kafka.shutdown_timeout`, or a second signal ends it at once.
//! Any other command that writes files stops at once on the first, its temporary files
//! removed and nothing published. Signals are watched on a thread of their own, with a
//! current-thread tokio runtime for tokio's signals; the handlers are in place before the
//! command starts, so no signal can find the process without them.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::sink::outdir::remove_staged;

/// SIGINT and SIGTERM, registered, with the runtime that delivers them.
struct Watched {
    rt: tokio::runtime::Runtime,
    int: Signal,
    term: Signal,
}

impl Watched {
    /// Registers the handlers now, on the calling thread.
    fn register() -> Option<Watched> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .inspect_err(|e| tracing::error!(error = %e, "cannot watch for signals"))
            .ok()?;
        let (int, term) = {
            let _in = rt.enter();
            (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            )
        };
        match (int, term) {
            (Ok(int), Ok(term)) => Some(Watched { rt, int, term }),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "cannot watch SIGINT and SIGTERM");
                None
            }
        }
    }
}

/// Waits for the next SIGINT or SIGTERM.
async fn next(int: &mut Signal, term: &mut Signal) {
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// Ends the process on SIGINT or SIGTERM, exit 1, after removing the output files it had not
/// published yet: a `replay`, `rollup`, `report`, `score` or `simulate` cut short leaves its
/// output directory as it found it (a replay's half-written dead letters were once left as
/// `.deadletter.jsonl.tmp-PID`, hundreds of megabytes).
pub(super) fn stop_cleanly_on_signals() {
    let Some(Watched {
        rt,
        mut int,
        mut term,
    }) = Watched::register()
    else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("srv-opr-signals".into())
        .spawn(move || {
            // The runtime's own block_on: only it drives a current-thread runtime's signals.
            rt.block_on(next(&mut int, &mut term));
            // Held until the process is gone: nothing is staged or published meanwhile.
            let _held = remove_staged();
            eprintln!("srv-opr: interrupted: nothing written, temporary files removed");
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot watch for signals");
    }
}

/// Sets `stop` on SIGINT or SIGTERM (the run loop checks it between polls). The stop must be
/// over within `deadline` (`kafka.shutdown_timeout`), or the process exits 1 without outputs; a
/// second signal exits at once.
pub(super) fn watch_signals(
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    deadline: crate::engine::time::Dur,
) {
    let Some(Watched {
        rt,
        mut int,
        mut term,
    }) = Watched::register()
    else {
        tracing::error!("SIGTERM will not stop the run cleanly");
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("srv-opr-signals".into())
        .spawn(move || {
            rt.block_on(async {
                next(&mut int, &mut term).await;
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
                    _ = next(&mut int, &mut term) => {
                        eprintln!("srv-opr: second signal: exiting without outputs");
                    }
                }
            });
            let _held = remove_staged();
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot watch for signals: SIGTERM will not stop the run cleanly");
    }
}
