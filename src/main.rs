//! The `srv-opr` binary: parses the command line, starts logging, runs the command, and turns
//! the error's kind into the exit code (0 success, 2 bad usage or configuration, 1 anything
//! else), always with a one-line reason on stderr.

use std::process::ExitCode;

use clap::Parser;

use srv_opr::cli::Cli;

// The pipeline allocates small, short-lived buffers (waiting responses, bucket vectors,
// histograms); mimalloc serves those markedly faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    match cli.run() {
        Ok(code) => ExitCode::from(code),
        // The reader of our output has gone (`| head`): nothing more to say, and no failure.
        Err(e) if e.is_closed_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            let report = e.report();
            let mut lines = report.lines();
            // The first line is the reason; the rest (e.g. every configuration problem) follows.
            eprintln!("srv-opr: error: {}", lines.next().unwrap_or("failed"));
            for l in lines {
                eprintln!("  {l}");
            }
            ExitCode::from(e.kind().exit_code())
        }
    }
}

/// Logs to stderr at `filter` (else `RUST_LOG`, else `info`), coloured only on a terminal, every
/// registered secret masked.
fn init_logging(filter: Option<&str>) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = filter
        .map(String::from)
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|_| "info".into());
    let most = filter
        .max_level_hint()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::TRACE);
    // The HTTP client's trace level is a hex dump of the bytes it sends, the Authorization
    // header among them, cut across lines where no mask can find it: never logged, whatever the
    // filter asks. Its hint is the filter's: without one the `log` crate's level stays at trace,
    // and every trace line of rdkafka's poll (several per message) went through the filters:
    // 6 % of a `run`'s samples, on its fetch thread (BENCHMARKS.md).
    let no_wire_dumps = tracing_subscriber::filter::filter_fn(|m| {
        !(*m.level() == tracing::Level::TRACE && m.target().starts_with("ureq"))
    })
    .with_max_level_hint(most);
    let layer = tracing_subscriber::fmt::layer()
        // Through the secret mask: a library's debug line may echo a property or a header.
        .with_writer(|| srv_opr::diagnostic::Redacting(std::io::stderr()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter)
        .with_filter(no_wire_dumps);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
