//! Splitting a byte stream into lines: `\n` or `\r\n` ends, a leading UTF-8 BOM ignored, and
//! lines longer than the event limit cut to that limit (the rest skipped, never buffered), so a
//! runaway line cannot exhaust memory.

use std::io::{self, Read};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One line as the reader found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number (after decompression).
    pub no: u64,
    /// Length of the whole line in bytes (without its terminator).
    pub len: usize,
    start: usize,
    end: usize,
    oversized: bool,
    /// The bytes were copied aside (the line did not fit the buffer).
    aside: bool,
}

impl Line {
    /// The line was longer than the limit; [`LineReader::bytes`] gives its first `limit + 1`
    /// bytes (enough for the event to be judged `oversized`).
    pub(crate) fn is_oversized(&self) -> bool {
        self.oversized
    }
}

/// Reads lines from any byte stream in large chunks.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    line_no: u64,
    limit: usize,
    long: Vec<u8>,
    bytes_read: u64,
}

impl<R: Read> LineReader<R> {
    /// A reader that cuts lines longer than `limit` bytes.
    pub fn new(inner: R, limit: usize) -> LineReader<R> {
        let cap = (1 << 20).max(limit.saturating_mul(2).saturating_add(2));
        LineReader {
            inner,
            buf: vec![0; cap],
            start: 0,
            end: 0,
            eof: false,
            line_no: 0,
            limit,
            long: Vec::new(),
            bytes_read: 0,
        }
    }

    /// Bytes consumed from the inner reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end < self.buf.len() {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next line, or `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let s = self.start;
                let mut e = s + i;
                self.start = e + 1;
                if e > s && self.buf[e - 1] == b'\r' {
                    e -= 1;
                }
                return Ok(Some(self.finish_line(s, e)));
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let (s, e) = (self.start, self.end);
                self.start = self.end;
                let e = if self.buf[e - 1] == b'\r' { e - 1 } else { e };
                return Ok(Some(self.finish_line(s, e)));
            }
            if self.end - self.start > self.limit + 1 {
                return self.skip_long_line().map(Some);
            }
            self.fill()?;
        }
    }

    fn finish_line(&mut self, mut s: usize, e: usize) -> Line {
        self.line_no += 1;
        if self.line_no == 1 && self.buf[s..e].starts_with(BOM) {
            s += BOM.len();
        }
        let len = e - s;
        Line {
            no: self.line_no,
            len,
            start: s,
            end: e,
            oversized: len > self.limit,
            aside: false,
        }
    }

    /// Keeps the first `limit + 1` bytes of an over-long line and discards the rest.
    fn skip_long_line(&mut self) -> io::Result<Line> {
        self.line_no += 1;
        let keep = self.limit + 1;
        self.long.clear();
        self.long
            .extend_from_slice(&self.buf[self.start..self.start + keep]);
        let mut len = 0usize;
        loop {
            let window = &self.buf[self.start..self.end];
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    len += i;
                    self.start += i + 1;
                    break;
                }
                None => {
                    len += window.len();
                    self.start = self.end;
                    if self.eof {
                        break;
                    }
                    self.fill()?;
                    if self.start == self.end && self.eof {
                        break;
                    }
                }
            }
        }
        Ok(Line {
            no: self.line_no,
            len,
            start: 0,
            end: keep,
            oversized: true,
            aside: true,
        })
    }

    /// The bytes of `line` (valid until the next call to [`LineReader::next_line`]).
    pub fn bytes(&self, line: &Line) -> &[u8] {
        if line.aside {
            &self.long
        } else {
            &self.buf[line.start..line.end]
        }
    }
}

/// A blank line: empty or only ASCII whitespace.
pub(crate) fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], limit: usize) -> Vec<(u64, Vec<u8>, bool)> {
        // A tiny inner read size exercises the refill paths.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut r = LineReader::new(Trickle(input), limit);
        let mut v = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            v.push((l.no, r.bytes(&l).to_vec(), l.is_oversized()));
        }
        v
    }

    #[test]
    fn splits_lf_crlf_bom_and_last_line_without_end() {
        let v = lines(b"\xEF\xBB\xBF{a}\r\n\n{b}\n  \r\n{c}", 100);
        let texts: Vec<&[u8]> = v.iter().map(|(_, b, _)| b.as_slice()).collect();
        assert_eq!(texts, vec![&b"{a}"[..], b"", b"{b}", b"  ", b"{c}"]);
        assert_eq!(
            v.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert!(is_blank(b"  ") && is_blank(b"") && !is_blank(b" x"));
    }

    #[test]
    fn bom_only_counts_on_the_first_line() {
        let v = lines(b"a\n\xEF\xBB\xBFb\n", 100);
        assert_eq!(v[1].1, b"\xEF\xBB\xBFb");
    }

    #[test]
    fn long_lines_are_cut_and_skipped_in_a_small_buffer() {
        let mut input = Vec::new();
        input.extend_from_slice(b"short\n");
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend_from_slice(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', 300));
        let v = lines(&input, 10);
        assert_eq!(v.len(), 4);
        assert_eq!(v[0], (1, b"short".to_vec(), false));
        assert!(v[1].2 && v[1].1.len() == 11 && v[1].1.iter().all(|&b| b == b'x'));
        assert_eq!(v[2], (3, b"after".to_vec(), false));
        assert!(v[3].2 && v[3].0 == 4);
    }

    #[test]
    fn a_line_exactly_at_the_limit_is_kept_whole() {
        let v = lines(b"0123456789\n01234567890\n", 10);
        assert_eq!(v[0], (1, b"0123456789".to_vec(), false));
        assert!(v[1].2);
    }
}
