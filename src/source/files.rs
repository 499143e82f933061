//! JSON Lines files as concurrent event sources (SPEC §2, Time): each file has its own watermark
//! (newest valid `at` − allowed lateness); the file with the lowest watermark is always the one
//! read next, so a file of requests and a file of responses of the same month correlate; the
//! pipeline runs on the minimum watermark of the files not yet exhausted.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;

use super::lines::{LineReader, is_blank};
use crate::correlate::Pos;
use crate::pipeline::{DeadLetterSink, Pipeline, SourceName};
use crate::time::{Dur, Ts};

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
    pub fn open(&self, counter: Arc<AtomicU64>) -> io::Result<Box<dyn Read + Send>> {
        let raw: Box<dyn Read + Send> = match self {
            Input::Path(p) if p.as_os_str() == "-" => Box::new(io::stdin()),
            Input::Path(p) => Box::new(File::open(p).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot open {}: {e}", p.display()))
            })?),
            Input::Memory(_, b) => Box::new(io::Cursor::new(SharedBytes(b.clone()))),
        };
        let mut r = BufReader::with_capacity(
            1 << 16,
            CountingRead {
                inner: raw,
                counter,
            },
        );
        let magic = io::BufRead::fill_buf(&mut r)?;
        if magic.starts_with(&[0x1f, 0x8b]) {
            Ok(Box::new(MultiGzDecoder::new(r)))
        } else {
            Ok(Box::new(r))
        }
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
) -> io::Result<Vec<FileSource>> {
    inputs
        .iter()
        .map(|i| {
            Ok(FileSource {
                reader: LineReader::new(i.open(counter.clone())?, limit),
                max_at: Ts::MIN,
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

/// Counts raw bytes read (before decompression), for progress.
struct CountingRead {
    inner: Box<dyn Read + Send>,
    counter: Arc<AtomicU64>,
}

impl Read for CountingRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// One open input.
pub struct FileSource {
    reader: LineReader<Box<dyn Read + Send>>,
    max_at: Ts,
    done: bool,
}

/// Progress callback, called every 65,536 events with the events read so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// Reads every source to its end through `pipeline`, always advancing the source with the
/// lowest watermark, and finishes the pipeline. Returns the last real combined watermark (the
/// one before end-of-input decisions), which decides which months are final.
pub fn drive<S: DeadLetterSink>(
    sources: &mut [FileSource],
    pipeline: &mut Pipeline<S>,
    lateness: Dur,
    progress: Progress<'_>,
) -> io::Result<Ts> {
    let wm_of = |s: &FileSource| s.max_at.minus(lateness);
    let mut combined = Ts::MIN;
    let mut events: u64 = 0;
    loop {
        // The source with the lowest watermark; ties go to the earlier source.
        let mut pick: Option<usize> = None;
        for (i, s) in sources.iter().enumerate() {
            if !s.done && pick.is_none_or(|p| wm_of(s) < wm_of(&sources[p])) {
                pick = Some(i);
            }
        }
        let Some(i) = pick else { break };
        let others = sources
            .iter()
            .enumerate()
            .filter(|(j, s)| *j != i && !s.done)
            .map(|(_, s)| wm_of(s))
            .min()
            .unwrap_or(Ts::MAX);
        let src_index = i as u16;
        let src = &mut sources[i];
        // Read from this source while it is (still) the lowest.
        loop {
            let Some(line) = src.reader.next_line()? else {
                src.done = true;
                break;
            };
            let bytes = src.reader.bytes(&line);
            if is_blank(bytes) && !line.is_oversized() {
                pipeline.blank();
                continue;
            }
            events += 1;
            if let Some(at) = pipeline.process(bytes, Pos::new(src_index, line.no))?
                && at > src.max_at
            {
                src.max_at = at;
                let wm = src.max_at.minus(lateness).min(others);
                if wm > combined {
                    combined = wm;
                    pipeline.advance(combined)?;
                }
                if src.max_at.minus(lateness) > others {
                    break;
                }
            }
            if events & 0xFFFF == 0 {
                progress(events);
            }
        }
        // An exhausted source stops counting: the others may now hold the minimum.
        let wm = sources
            .iter()
            .filter(|s| !s.done)
            .map(wm_of)
            .min()
            .unwrap_or(combined);
        if wm > combined {
            combined = wm;
            pipeline.advance(combined)?;
        }
    }
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
