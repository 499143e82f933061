//! JSON Lines files as concurrent event sources (SPEC §2, Time): each file has its own watermark
//! (newest valid `at` − allowed lateness); the file with the lowest watermark is always the one
//! read next, so a file of requests and a file of responses of the same month correlate; the
//! pipeline runs on the minimum watermark of the files not yet exhausted.

use super::SourceError;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use flate2::read::MultiGzDecoder;

use super::batch::{Batch, Step};
use super::lines::{LineReader, is_blank};
use crate::engine::clock::SourceClock;
use crate::engine::correlate::Pos;
use crate::engine::pipeline::{Checked, DeadLetterSink, Pipeline, SourceName, check};
use crate::engine::time::{Dur, Ts};

/// A readable input: a path (`-` for standard input) or bytes in memory.
pub enum Input {
    /// A file; gzip is recognised by its magic bytes, whatever the name.
    Path(PathBuf),
    /// Bytes already in memory (demo, benches, tests), possibly gzip.
    Memory(String, Arc<Vec<u8>>),
}

impl Input {
    /// The name used in dead-letter origins.
    pub fn name(&self) -> String {
        match self {
            Input::Path(p) => p.display().to_string(),
            Input::Memory(n, _) => n.clone(),
        }
    }

    /// Size in bytes, if known (for progress).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Path(p) if p.as_os_str() == "-" => None,
            Input::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Memory(_, b) => Some(b.len() as u64),
        }
    }

    /// Opens the input for reading, decompressing gzip; `counter` accumulates raw bytes read.
    /// A failure while reading (a truncated gzip, a bad CRC, a disk error) names the file and
    /// how far into it the reading had got.
    pub(crate) fn open(
        &self,
        counter: Arc<AtomicU64>,
    ) -> Result<Box<dyn Read + Send>, SourceError> {
        let raw: Box<dyn Read + Send> = match self {
            Input::Path(p) if p.as_os_str() == "-" => Box::new(io::stdin()),
            Input::Path(p) => {
                let open = |source| SourceError::Open {
                    path: p.clone(),
                    source,
                };
                let f = File::open(p).map_err(open)?;
                if f.metadata().map_err(open)?.is_dir() {
                    return Err(SourceError::Directory { path: p.clone() });
                }
                Box::new(f)
            }
            Input::Memory(_, b) => Box::new(io::Cursor::new(SharedBytes(b.clone()))),
        };
        let own = Arc::new(AtomicU64::new(0));
        let mut r = BufReader::with_capacity(
            1 << 16,
            CountingRead {
                inner: raw,
                counter,
                own: own.clone(),
            },
        );
        let name = self.name();
        let magic = io::BufRead::fill_buf(&mut r).map_err(|e| SourceError::Read {
            name: name.clone(),
            at: 0,
            out: 0,
            source: e,
        })?;
        let gzip = magic.starts_with(&[0x1f, 0x8b]);
        let inner: Box<dyn Read + Send> = if gzip {
            Box::new(MultiGzDecoder::new(r))
        } else {
            Box::new(r)
        };
        Ok(Box::new(NamedRead {
            inner,
            name,
            raw: own,
            out: 0,
        }))
    }
}

struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Opens inputs as sources, failing on the first that cannot be opened (before any work).
/// `counter` accumulates the raw (compressed) bytes read from all of them, for progress.
pub fn open_all(
    inputs: &[Input],
    limit: usize,
    counter: Arc<AtomicU64>,
) -> Result<Vec<FileSource>, SourceError> {
    inputs
        .iter()
        .map(|i| {
            Ok(FileSource {
                reader: LineReader::new(i.open(counter.clone())?, limit),
                done: false,
            })
        })
        .collect()
}

/// Source names for dead-letter origins (`path:line`).
pub fn source_names(inputs: &[Input]) -> Vec<SourceName> {
    inputs
        .iter()
        .map(|i| SourceName {
            name: i.name(),
            separator: ':',
        })
        .collect()
}

/// Counts raw bytes read (before decompression): all inputs' for progress, this one's for
/// its errors.
struct CountingRead {
    inner: Box<dyn Read + Send>,
    counter: Arc<AtomicU64>,
    own: Arc<AtomicU64>,
}

impl Read for CountingRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        self.own.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An input's reader whose errors name the input and where in it they happened.
struct NamedRead {
    inner: Box<dyn Read + Send>,
    name: String,
    /// Bytes of the file read so far (compressed, for gzip).
    raw: Arc<AtomicU64>,
    /// Bytes handed on (decompressed).
    out: u64,
}

impl Read for NamedRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.out += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(io::Error::new(
                e.kind(),
                SourceError::Read {
                    name: self.name.clone(),
                    at: self.raw.load(Ordering::Relaxed),
                    out: self.out,
                    source: e,
                },
            )),
        }
    }
}

/// One open input.
pub struct FileSource {
    reader: LineReader<Box<dyn Read + Send>>,
    done: bool,
}

/// The event-time settings a replay reads by.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A source's watermark trails its clock by this (`time.allowed_lateness`).
    pub lateness: Dur,
    /// A source's clock follows a jump larger than this only once confirmed
    /// ([`crate::engine::clock`]; the dedupe horizon).
    pub jump: Dur,
    /// Events stamped further than this ahead of the wall clock are `future_timestamp`
    /// (`kafka.max_future_skew`, as in `run`); `None`: no guard.
    pub future_skew: Option<Dur>,
}

impl Timing {
    /// The settings of `cfg`.
    pub fn of(cfg: &crate::config::Config) -> Timing {
        Timing {
            lateness: cfg.settings.time.allowed_lateness,
            jump: cfg.settings.time.dedupe_horizon,
            future_skew: Some(cfg.settings.kafka.max_future_skew),
        }
    }
}

/// Progress callback, called every 65,536 events with the events read so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// Where [`merge`] puts what it reads, in order.
trait LineSink {
    /// A blank line.
    fn blank(&mut self) -> io::Result<()>;
    /// A line: returns its `at` if it is a valid event (only those move watermarks).
    fn line(&mut self, raw: &[u8], pos: Pos) -> io::Result<Option<Ts>>;
    /// The combined watermark moved to `wm`.
    fn advance(&mut self, wm: Ts) -> io::Result<()>;
}

/// Reads every source to its end into `sink`, always advancing the source with the lowest
/// watermark (ties go to the earlier source), and tells the sink each time the combined
/// watermark moves. Each source's watermark follows its [`SourceClock`], so an outlier far
/// ahead moves nothing; returns how many events the clocks held back so.
fn merge(sources: &mut [FileSource], timing: &Timing, sink: &mut impl LineSink) -> io::Result<u64> {
    let lateness = timing.lateness;
    let mut clocks: Vec<SourceClock> = sources
        .iter()
        .map(|_| SourceClock::new(timing.jump))
        .collect();
    let wm_of = |c: &SourceClock| c.max_at().minus(lateness);
    let mut combined = Ts::MIN;
    loop {
        let mut pick: Option<usize> = None;
        for (i, s) in sources.iter().enumerate() {
            if !s.done && pick.is_none_or(|p| wm_of(&clocks[i]) < wm_of(&clocks[p])) {
                pick = Some(i);
            }
        }
        let Some(i) = pick else { break };
        let others = sources
            .iter()
            .enumerate()
            .filter(|(j, s)| *j != i && !s.done)
            .map(|(j, _)| wm_of(&clocks[j]))
            .min()
            .unwrap_or(Ts::MAX);
        let src_index = i as u16;
        let src = &mut sources[i];
        let clock = &mut clocks[i];
        // Read from this source while it is (still) the lowest.
        loop {
            let Some(line) = src.reader.next_line()? else {
                src.done = true;
                // A short file's clock starts only now; it moves the watermark like a line.
                if clock.finish() {
                    let wm = wm_of(clock).min(others);
                    if wm > combined {
                        combined = wm;
                        sink.advance(combined)?;
                    }
                }
                break;
            };
            let bytes = src.reader.bytes(&line);
            if is_blank(bytes) && !line.is_oversized() {
                sink.blank()?;
                continue;
            }
            if let Some(at) = sink.line(bytes, Pos::new(src_index, line.no))?
                && clock.observe(at)
            {
                let wm = wm_of(clock).min(others);
                if wm > combined {
                    combined = wm;
                    sink.advance(combined)?;
                }
                if wm_of(clock) > others {
                    break;
                }
            }
        }
        // An exhausted source stops counting: the others may now hold the minimum.
        let wm = sources
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.done)
            .map(|(j, _)| wm_of(&clocks[j]))
            .min()
            .unwrap_or(combined);
        if wm > combined {
            combined = wm;
            sink.advance(combined)?;
        }
    }
    Ok(clocks.iter_mut().map(SourceClock::take_held_back).sum())
}

/// Batches held in flight between the reading thread and the pipeline's: enough to keep both
/// busy, few enough to bound memory (a few MB).
const IN_FLIGHT: usize = 4;

/// The reading thread's sink: checks each line (decode, validation, id hash) and batches it.
struct Batcher {
    max_event_bytes: usize,
    future_limit: Option<Ts>,
    /// The wall-clock guard's width: the limit is renewed with each batch.
    future_skew: Option<Dur>,
    batch: Batch,
    full: SyncSender<Batch>,
    empty: Receiver<Batch>,
}

/// The pipeline's thread stopped taking batches (it failed; its error is the one reported).
fn consumer_gone() -> io::Error {
    io::Error::other("the pipeline stopped taking events")
}

impl Batcher {
    fn hand_over_if_full(&mut self) -> io::Result<()> {
        if self.batch.is_full() {
            self.hand_over()?;
        }
        Ok(())
    }

    fn hand_over(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        if let Some(skew) = self.future_skew {
            self.future_limit = Some(crate::engine::time::now().plus(skew));
        }
        let next = self.empty.try_recv().unwrap_or_else(|_| Batch::new());
        let full = std::mem::replace(&mut self.batch, next);
        self.full.send(full).map_err(|_| consumer_gone())
    }
}

impl LineSink for Batcher {
    fn blank(&mut self) -> io::Result<()> {
        // Checked here too: a file of nothing but blank lines must not grow one batch forever.
        self.batch.blank();
        self.hand_over_if_full()
    }

    fn line(&mut self, raw: &[u8], pos: Pos) -> io::Result<Option<Ts>> {
        let checked = check(raw, self.max_event_bytes, self.future_limit);
        let at = match &checked {
            Checked::Valid { event, .. } => Some(event.at()),
            Checked::Rejected { .. } => None,
        };
        self.batch.line(raw, pos, &checked);
        self.hand_over_if_full()?;
        Ok(at)
    }

    fn advance(&mut self, wm: Ts) -> io::Result<()> {
        self.batch.advance(wm);
        self.hand_over_if_full()
    }
}

/// CPU seconds the calling thread has used (Linux: `/proc/thread-self/stat`; 0 elsewhere).
fn thread_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) start at state (field 3); utime and
    // stime are fields 14 and 15, in clock ticks of 1/100 s on Linux.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Reads every source to its end through `pipeline` (the lowest watermark first) and finishes
/// the pipeline.
/// Returns the last real combined watermark (the one before end-of-input decisions), which
/// decides which months are final.
///
/// Reading and decoding run on a thread of their own, a few batches ahead of the pipeline,
/// which sees exactly the sequence of lines and watermark moves a single thread would give it.
pub fn drive<S: DeadLetterSink>(
    sources: &mut [FileSource],
    pipeline: &mut Pipeline<S>,
    timing: Timing,
    progress: Progress<'_>,
) -> Result<Ts, SourceError> {
    let (max_event_bytes, future_limit) = pipeline.limits();
    let future_skew = timing.future_skew;
    let future_limit = future_skew
        .map(|s| crate::engine::time::now().plus(s))
        .or(future_limit);
    let (full_tx, full_rx) = sync_channel::<Batch>(IN_FLIGHT);
    let (empty_tx, empty_rx) = sync_channel::<Batch>(IN_FLIGHT + 2);
    let mut events: u64 = 0;
    let (applied, read) = std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("srv-opr-read".into())
            .spawn_scoped(scope, move || {
                let mut batcher = Batcher {
                    max_event_bytes,
                    future_limit,
                    future_skew,
                    batch: Batch::new(),
                    full: full_tx,
                    empty: empty_rx,
                };
                let held_back = merge(sources, &timing, &mut batcher)?;
                batcher.hand_over()?;
                Ok((thread_cpu_seconds(), held_back))
            })?;
        let mut applied: io::Result<()> = Ok(());
        'batches: for mut batch in full_rx.iter() {
            for step in batch.steps() {
                let r = match step {
                    Step::Blank => {
                        pipeline.blank();
                        Ok(())
                    }
                    Step::Line(raw, pos, checked) => {
                        events += 1;
                        if events & 0xFFFF == 0 {
                            progress(events);
                        }
                        pipeline.apply(checked, raw, pos).map(|_| ())
                    }
                    Step::Advance(wm) => pipeline.advance(wm),
                };
                if let Err(e) = r {
                    applied = Err(e);
                    break 'batches;
                }
            }
            batch.clear();
            // The reader may have finished and gone: a batch it will not reuse is just dropped.
            let _ = empty_tx.try_send(batch);
        }
        // Dropping the receiver tells a reader still sending that the pipeline has stopped.
        drop(full_rx);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the reading thread panicked")));
        io::Result::Ok((applied, read))
    })?;
    applied?;
    let (reader_cpu, held_back) = read?;
    pipeline.count_watermark_outliers(held_back);
    // Which side bounds the replay: the busier thread is the one to make faster.
    tracing::debug!(
        reader_cpu_seconds = reader_cpu,
        pipeline_cpu_seconds = thread_cpu_seconds(),
        "replay threads"
    );
    let last_real = pipeline.watermark();
    pipeline.finish()?;
    progress(events);
    Ok(last_real)
}

/// Builds inputs from command-line paths.
pub fn inputs_from_paths(paths: &[impl AsRef<Path>]) -> Vec<Input> {
    paths
        .iter()
        .map(|p| Input::Path(p.as_ref().to_path_buf()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::pipeline::{DeadLetter, VecDeadLetters};
    use crate::simulate::{SimConfig, Simulator};
    use crate::sink::month::{failures_csv, rpl_csv, rpl_lines};

    /// The one-thread way: every line straight into the pipeline.
    struct Direct<'p>(&'p mut Pipeline<VecDeadLetters>);

    impl LineSink for Direct<'_> {
        fn blank(&mut self) -> io::Result<()> {
            self.0.blank();
            Ok(())
        }
        fn line(&mut self, raw: &[u8], pos: Pos) -> io::Result<Option<Ts>> {
            self.0.process(raw, pos)
        }
        fn advance(&mut self, wm: Ts) -> io::Result<()> {
            self.0.advance(wm)
        }
    }

    /// Three simulated files (bad lines, duplicates, late events, blank lines) in memory.
    fn inputs() -> Vec<Input> {
        (0..3u64)
            .map(|i| {
                let mut out = Vec::new();
                Simulator::new(SimConfig {
                    seed: 40 + i,
                    max_requests: Some(4_000),
                    rate: 2.0,
                    bad: 0.02,
                    duplicates: 0.02,
                    late: 0.01,
                    ..SimConfig::default()
                })
                .run(&mut out)
                .unwrap_or_else(|e| panic!("simulate: {e}"));
                // Blank lines between some events.
                let mut text = String::new();
                for (n, line) in String::from_utf8_lossy(&out).lines().enumerate() {
                    if n % 97 == 0 {
                        text.push_str(" \n");
                    }
                    text.push_str(line);
                    text.push('\n');
                }
                Input::Memory(format!("mem{i}"), Arc::new(text.into_bytes()))
            })
            .collect()
    }

    fn pipeline(cfg: &Config, inputs: &[Input]) -> Pipeline<VecDeadLetters> {
        Pipeline::new(
            &cfg.pipeline().unwrap_or_else(|e| panic!("pipeline: {e}")),
            source_names(inputs),
            VecDeadLetters::default(),
        )
    }

    /// The pipeline fed by the reading thread ends exactly where one fed line by line ends:
    /// same figures, same counts, same dead letters in the same order, same watermark.
    #[test]
    fn reading_on_a_thread_changes_nothing() {
        let cfg = Config::builtin().unwrap_or_else(|e| panic!("config: {e}"));
        let inputs = inputs();
        let timing = Timing::of(&cfg);
        let open = || {
            open_all(&inputs, 65_536, Arc::new(AtomicU64::new(0)))
                .unwrap_or_else(|e| panic!("open: {e}"))
        };

        let mut one = pipeline(&cfg, &inputs);
        merge(&mut open(), &timing, &mut Direct(&mut one)).unwrap_or_else(|e| panic!("{e}"));
        let wm_one = one.watermark();
        one.finish().unwrap_or_else(|e| panic!("{e}"));

        let mut two = pipeline(&cfg, &inputs);
        let mut calls = 0;
        let wm_two = drive(&mut open(), &mut two, timing, &mut |_| calls += 1)
            .unwrap_or_else(|e| panic!("{e}"));

        assert_eq!(wm_one, wm_two);
        let (a1, s1, d1) = one.into_parts();
        let (a2, s2, d2) = two.into_parts();
        assert!(s1.events > 10_000 && s1.blank_lines > 0 && s1.dead_letters_total() > 100);
        assert_eq!(format!("{s1:?}"), format!("{s2:?}"));
        assert_eq!(d1.0, d2.0);
        let (l1, l2) = (rpl_lines(&a1, None), rpl_lines(&a2, None));
        assert_eq!(rpl_csv(&l1), rpl_csv(&l2));
        assert_eq!(failures_csv(&l1), failures_csv(&l2));
        assert!(calls > 0, "progress is reported");
    }

    /// Blank lines and watermark moves fill batches too: a file of nothing but blank lines
    /// is handed over batch by batch, not held in one batch that grows forever.
    #[test]
    fn blank_lines_alone_fill_batches() {
        let (full, full_rx) = sync_channel(8);
        let (_empty_tx, empty) = sync_channel(8);
        let mut b = Batcher {
            max_event_bytes: 65_536,
            future_limit: None,
            future_skew: None,
            batch: Batch::new(),
            full,
            empty,
        };
        for _ in 0..=crate::source::batch::BATCH_ITEMS {
            b.blank().unwrap_or_else(|e| panic!("{e}"));
        }
        let first = full_rx
            .try_recv()
            .unwrap_or_else(|e| panic!("no batch handed over: {e}"));
        assert_eq!(first.len(), crate::source::batch::BATCH_ITEMS);
        for i in 0..crate::source::batch::BATCH_ITEMS as i64 {
            b.advance(Ts(i)).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(
            full_rx.try_recv().is_ok(),
            "watermark moves fill a batch too"
        );
    }

    /// A sink that fails after a few dead letters, like a full disk.
    struct Failing(usize);

    impl DeadLetterSink for Failing {
        fn write(&mut self, _: &DeadLetter<'_>) -> io::Result<()> {
            if self.0 == 0 {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= 1;
            Ok(())
        }
    }

    /// The pipeline's error comes back (the reader, blocked on a full hand-over, stops), and
    /// so does the reader's (a damaged gzip file): neither hangs nor panics.
    #[test]
    fn errors_on_either_thread_come_back() {
        let cfg = Config::builtin().unwrap_or_else(|e| panic!("config: {e}"));
        let timing = Timing::of(&cfg);
        // Enough bad lines for many batches, so the reader is ahead when the sink fails.
        let bad = "not json\n".repeat(200_000);
        let inputs = vec![Input::Memory("bad".into(), Arc::new(bad.into_bytes()))];
        let mut sources = open_all(&inputs, 65_536, Arc::new(AtomicU64::new(0)))
            .unwrap_or_else(|e| panic!("open: {e}"));
        let mut p = Pipeline::new(
            &cfg.pipeline().unwrap_or_else(|e| panic!("pipeline: {e}")),
            source_names(&inputs),
            Failing(10),
        );
        let err = drive(&mut sources, &mut p, timing, &mut |_| {}).err();
        assert_eq!(err.map(|e| e.to_string()).as_deref(), Some("disk full"));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, "{}\n".repeat(100_000).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut bytes = gz.finish().unwrap_or_else(|e| panic!("{e}"));
        bytes.truncate(bytes.len() / 2);
        let inputs = vec![Input::Memory("cut.gz".into(), Arc::new(bytes))];
        let mut sources = open_all(&inputs, 65_536, Arc::new(AtomicU64::new(0)))
            .unwrap_or_else(|e| panic!("open: {e}"));
        let mut p = pipeline(&cfg, &inputs);
        assert!(drive(&mut sources, &mut p, timing, &mut |_| {}).is_err());
    }
}
