//! Large files, a segment at a time: memory follows the segment size, not the file's.
//!
//! A file is cut between two records, where nothing of a record is open, and each segment is
//! framed on its own: it is given what its layout needs to be a file by itself (`[` before and
//! `]` after the records of a JSON array, `{"Records":[` and `]}` for a trail file's). The cut
//! is found by following strings and nesting. Text with no such place in 64 MiB (a framing the
//! layout does not know, or no JSON at all, as a gzip bomb's) ends the file there with an
//! error: a CloudTrail event is at most 256 KB.

use std::io::Read;

use crate::json::StringState;

/// The text a segment holds before it is cut at the next place between records.
pub(crate) const SEGMENT_BYTES: usize = 16 << 20;
/// Bytes read at a time.
const READ_BYTES: usize = 1 << 20;
/// Text with no end of a record in this much is not records that can be read in parts.
const NO_RECORD_END: usize = 64 << 20;

/// Where a file's records sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Top-level values: NDJSON, concatenated objects.
    Values,
    /// Elements of a top-level array.
    Array,
    /// Elements of the `Records` array of a trail file.
    Records,
}

impl Layout {
    /// The nesting of a record's first byte, inside the containers that hold it.
    fn depth(self) -> u32 {
        match self {
            Layout::Values => 0,
            Layout::Array => 1,
            Layout::Records => 2,
        }
    }

    fn open(self) -> &'static [u8] {
        match self {
            Layout::Values => b"",
            Layout::Array => b"[",
            Layout::Records => b"{\"Records\":[",
        }
    }

    fn close(self) -> &'static [u8] {
        match self {
            Layout::Values => b"",
            Layout::Array => b"]",
            Layout::Records => b"]}",
        }
    }

    /// The layout of a file that starts with `head`, or `None` when too little is read to say.
    fn of(head: &[u8], eof: bool) -> Option<Self> {
        // Past this much, what the head does not show is not there.
        let known = eof || head.len() >= 4096;
        let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
        let mut tokens = Tokens(head);
        let layout = match tokens.next() {
            Some(b"[") => Layout::Array,
            Some(b"{") => match (tokens.next(), tokens.next(), tokens.next()) {
                (Some(b"\"Records\""), Some(b":"), Some(b"[")) => Layout::Records,
                (_, _, None) if !known => return None,
                _ => Layout::Values,
            },
            None if !known => return None,
            _ => Layout::Values,
        };
        Some(layout)
    }
}

/// The first few JSON tokens of a file's head: punctuation and strings without escapes.
struct Tokens<'a>(&'a [u8]);

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &self.0[start..];
        let len = match rest[0] {
            b'"' => {
                rest[1..].iter().position(|&b| b == b'"' || b == b'\\').filter(|&i| rest[1 + i] == b'"')? + 2
            }
            _ => 1,
        };
        self.0 = &rest[len..];
        Some(&rest[..len])
    }
}

/// One segment of a file, ready to frame.
pub(crate) struct Segment {
    /// The text to frame: the segment's bytes, with what its layout needs before and after.
    pub(crate) bytes: Vec<u8>,
    /// Bytes added before the segment's own.
    pub(crate) prefix: usize,
    /// Where the segment's own bytes start in the file.
    pub(crate) offset: u64,
    /// Line breaks of the file before the segment.
    pub(crate) lines: usize,
    /// The file's last segment.
    pub(crate) last: bool,
}

/// Cuts the text read from `reader` into segments of about `size` bytes.
pub(crate) struct Segmenter<R> {
    reader: R,
    size: usize,
    layout: Option<Layout>,
    buf: Vec<u8>,
    /// Bytes of `buf` followed so far, and the state after them.
    scanned: usize,
    depth: u32,
    strings: StringState,
    /// A record just closed: the comma after it ends it.
    closed: bool,
    /// The last place in `buf` between two records.
    cut: Option<usize>,
    offset: u64,
    lines: usize,
    first: bool,
    eof: bool,
    done: bool,
}

impl<R: Read> Segmenter<R> {
    pub(crate) fn new(reader: R, size: usize) -> Self {
        Self {
            reader,
            size: size.max(1),
            layout: None,
            buf: Vec::new(),
            scanned: 0,
            depth: 0,
            strings: StringState::default(),
            closed: false,
            cut: None,
            offset: 0,
            lines: 0,
            first: true,
            eof: false,
            done: false,
        }
    }

    /// The reader, to ask it what it saw once the segments are done.
    pub(crate) fn reader(&self) -> &R {
        &self.reader
    }

    /// Where the text not yet handed out starts in the file.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Line breaks of the file before [`Self::offset`].
    pub(crate) fn lines(&self) -> usize {
        self.lines
    }

    /// The next segment; `None` after the last.
    pub(crate) fn next_segment(&mut self) -> std::io::Result<Option<Segment>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let want = if self.cut.is_some() { self.size } else { self.buf.len().max(self.size) };
            while !self.eof && self.buf.len() < want {
                let len = self.buf.len();
                self.buf.resize(len + READ_BYTES, 0);
                let n = self.reader.read(&mut self.buf[len..]);
                self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
                self.eof |= n? == 0;
            }
            if self.layout.is_none() {
                self.layout = Layout::of(&self.buf, self.eof);
                if self.layout.is_none() {
                    continue;
                }
            }
            self.scan();
            if self.eof {
                self.done = true;
                let own = std::mem::take(&mut self.buf);
                return Ok(Some(self.segment(own, true)));
            }
            if let Some(cut) = self.cut.take() {
                let rest = self.buf.split_off(cut);
                let own = std::mem::replace(&mut self.buf, rest);
                self.scanned -= cut;
                return Ok(Some(self.segment(own, false)));
            }
            // No place between records in 64 MiB: not records that can be read in parts (a
            // CloudTrail event is at most 256 KB), and perhaps a gzip bomb.
            if self.buf.len() >= NO_RECORD_END.max(self.size) {
                return Err(std::io::Error::other(format!(
                    "no end of a record in the {} MiB of text after byte {}",
                    self.buf.len() >> 20,
                    self.offset
                )));
            }
            let len = self.buf.len();
            self.buf.reserve(READ_BYTES);
            self.buf.resize(len + READ_BYTES, 0);
            let n = self.reader.read(&mut self.buf[len..]);
            self.buf.truncate(len + *n.as_ref().unwrap_or(&0));
            self.eof |= n? == 0;
        }
    }

    /// Follows the bytes not followed yet, noting the last place between records.
    fn scan(&mut self) {
        let Some(layout) = self.layout else { return };
        let depth = layout.depth();
        for (i, &b) in self.buf.iter().enumerate().skip(self.scanned) {
            if self.strings.inside(b) {
                self.closed = false;
                continue;
            }
            match b {
                b'{' | b'[' => {
                    self.depth += 1;
                    self.closed = false;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    let record_end = b == b'}' && self.depth == depth;
                    if record_end && layout == Layout::Values {
                        self.cut = Some(i + 1);
                    }
                    self.closed = record_end && layout != Layout::Values;
                }
                b',' if self.closed => {
                    self.cut = Some(i + 1);
                    self.closed = false;
                }
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ => self.closed = false,
            }
        }
        self.scanned = self.buf.len();
    }

    fn segment(&mut self, own: Vec<u8>, last: bool) -> Segment {
        let layout = self.layout.unwrap_or(Layout::Values);
        let open: &[u8] = if self.first { b"" } else { layout.open() };
        let close: &[u8] = if last { b"" } else { layout.close() };
        let mut bytes = Vec::with_capacity(open.len() + own.len() + close.len());
        bytes.extend_from_slice(open);
        bytes.extend_from_slice(&own);
        bytes.extend_from_slice(close);
        let segment = Segment { bytes, prefix: open.len(), offset: self.offset, lines: self.lines, last };
        self.offset += own.len() as u64;
        self.lines += memchr::memchr_iter(b'\n', &own).count();
        self.first = false;
        segment
    }
}
