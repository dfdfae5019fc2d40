//! One source file to one record batch: read, frame, check, build. Runs on worker threads.

use std::fmt;

use arrow::array::RecordBatch;

use crate::event::{BatchBuilder, Outcome, Rules};
use crate::framing::{Framer, Place, Visitor, line_of};
use crate::json::Entries;
use crate::segment::Segmenter;
use crate::source::{SourceFile, TextReader, decompress};

/// A record or framing problem, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The source file.
    pub file: String,
    /// 0-based record index, when the problem is a record (not the framing between records).
    pub record: Option<usize>,
    /// Byte offset in the (decompressed) file.
    pub offset: usize,
    /// 1-based line of `offset`.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.record {
            Some(r) => {
                write!(f, "{}:{}: record {r} (byte {}): {}", self.file, self.line, self.offset, self.reason)
            }
            None => write!(f, "{}:{}: byte {}: {}", self.file, self.line, self.offset, self.reason),
        }
    }
}

/// Per-file counts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) events: u64,
    pub(crate) appended: u64,
    pub(crate) selectors: u64,
    pub(crate) retention: u64,
    pub(crate) insights: u64,
    pub(crate) window: u64,
    pub(crate) bad_records: u64,
    pub(crate) digest: bool,
}

/// One file of a [`Decoded`] unit.
pub(crate) struct FileDecoded {
    pub(crate) source: SourceFile,
    /// Rows of the unit's batch that are this file's (they follow the previous file's).
    pub(crate) rows: usize,
    pub(crate) counts: Counts,
    pub(crate) problems: Vec<Problem>,
    /// The file could not be read, or `--strict` rejected it: nothing from it is stored (its
    /// rows, if any, are skipped).
    pub(crate) rejected: Option<String>,
    pub(crate) json_bytes: u64,
    /// A segment of a large file (see [`crate::segment`]), and whether it is its last: the
    /// file enters the ledger with its last segment.
    pub(crate) part: Option<bool>,
}

impl FileDecoded {
    /// A file that could not be read: nothing from it is stored.
    pub(crate) fn rejected(source: SourceFile, reason: String) -> Self {
        Self {
            source,
            rows: 0,
            counts: Counts::default(),
            problems: Vec::new(),
            rejected: Some(reason),
            json_bytes: 0,
            part: None,
        }
    }
}

/// What a worker hands to the writer: a unit of consecutive files decoded into one batch.
/// Trail files are small (a dozen events is common): a batch per file would spend more on
/// builders and on interleaving thousands of batches than on the events.
pub(crate) struct Decoded {
    pub(crate) files: Vec<FileDecoded>,
    /// Every file's rows in file order, and the dedupe key of each row.
    pub(crate) batch: Option<(RecordBatch, Vec<u128>)>,
}

/// A file's text (or a segment's), ready to frame.
pub(crate) struct FileText {
    text: String,
    /// Offsets of the bytes that were not UTF-8. Each was replaced by NUL, which JSON allows
    /// nowhere, so the records holding them are malformed and the records around them whole.
    invalid_utf8: Vec<usize>,
    /// What a damaged gzip stream lost (the text before the damage is kept).
    damage: Option<String>,
    place: Place,
}

impl FileText {
    /// The text of a raw file: gunzipped when it is gzip (at most `limit` bytes of it).
    pub(crate) fn of(raw: Vec<u8>, limit: u64) -> Result<Self, String> {
        let (bytes, damage) = decompress(raw, limit)?;
        Ok(Self::from_bytes(bytes, damage, Place::default()))
    }

    /// The text of `bytes`, which sit at `place` of their file.
    pub(crate) fn from_bytes(mut bytes: Vec<u8>, damage: Option<String>, place: Place) -> Self {
        let mut invalid_utf8 = Vec::new();
        let mut at = 0;
        while let Err(e) = std::str::from_utf8(&bytes[at..]) {
            let bad = at + e.valid_up_to();
            let end = e.error_len().map_or(bytes.len(), |n| bad + n);
            bytes[bad..end].fill(0);
            invalid_utf8.push(bad);
            at = end;
        }
        // Every byte that was not UTF-8 is NUL now: the fallback is never taken.
        let text =
            String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Self { text, invalid_utf8, damage, place }
    }

    /// The text and the offsets of the bytes that were not UTF-8.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> (&str, &[usize]) {
        (&self.text, &self.invalid_utf8)
    }

    /// The length of the text in bytes.
    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }
}

impl From<String> for FileText {
    fn from(text: String) -> Self {
        Self { text, invalid_utf8: Vec::new(), damage: None, place: Place::default() }
    }
}

struct FileVisitor<'a> {
    builder: &'a mut BatchBuilder,
    rules: &'a Rules<'a>,
    source: &'a str,
    text: &'a str,
    place: Place,
    counts: Counts,
    problems: Vec<Problem>,
}

impl FileVisitor<'_> {
    /// A problem at `offset` of the text, placed in the file.
    fn push(&mut self, record: Option<usize>, offset: usize, reason: String) {
        let line = self.place.lines + line_of(self.text, offset);
        let offset = (self.place.offset as usize + offset).saturating_sub(self.place.prefix);
        self.problems.push(Problem { file: self.source.to_owned(), record, offset, line, reason });
    }
}

impl Visitor for FileVisitor<'_> {
    fn event(&mut self, index: usize, offset: usize, text: &str, entries: &Entries<'_>) {
        self.counts.events += 1;
        match self.builder.append(entries, text, self.source, index, self.rules) {
            Ok(Outcome::Appended) => self.counts.appended += 1,
            Ok(Outcome::Selectors) => self.counts.selectors += 1,
            Ok(Outcome::Retention) => self.counts.retention += 1,
            Ok(Outcome::Insight) => self.counts.insights += 1,
            Ok(Outcome::Window) => self.counts.window += 1,
            Err(reason) => {
                self.counts.bad_records += 1;
                self.push(Some(index), offset, reason);
            }
        }
    }

    fn problem(&mut self, index: Option<usize>, offset: usize, reason: String) {
        if index.is_some() {
            self.counts.bad_records += 1;
        }
        self.push(index, offset, reason);
    }

    fn digest(&mut self) {
        self.counts.digest = true;
    }
}

/// A file's raw bytes, or why they could not be fetched.
pub(crate) type Fetched = Result<Vec<u8>, String>;

/// Decodes a unit of files from their raw bytes (or the reasons they could not be read); local
/// files without bytes are read here. A file's text may not exceed `max_text` bytes.
pub(crate) fn decode(
    unit: Vec<(SourceFile, Option<Fetched>)>,
    rules: &Rules<'_>,
    strict: bool,
    max_text: u64,
) -> Decoded {
    let texts: Vec<_> = unit
        .into_iter()
        .map(|(source, raw)| {
            let text = raw.unwrap_or_else(|| source.read()).and_then(|raw| FileText::of(raw, max_text));
            (source, text)
        })
        .collect();
    let bytes = texts.iter().map(|(_, t)| t.as_ref().map_or(0, FileText::len)).sum();
    let mut builder = BatchBuilder::new(bytes);
    let mut files = Vec::with_capacity(texts.len());
    for (source, text) in texts {
        let text = match text {
            Ok(t) => t,
            Err(reason) => {
                files.push(FileDecoded::rejected(source, reason));
                continue;
            }
        };
        let before = builder.rows();
        let (counts, problems, _) = decode_into(&mut builder, &source.id.location, &text, rules);
        let rejected = (strict && !problems.is_empty())
            .then(|| format!("{} (--strict: nothing from this file was stored)", problems[0]));
        let counts = if rejected.is_some() { Counts { appended: 0, ..counts } } else { counts };
        let rows = builder.rows() - before;
        let json_bytes = text.len() as u64;
        files.push(FileDecoded { source, rows, counts, problems, rejected, json_bytes, part: None });
    }
    let batch = (builder.rows() > 0).then(|| builder.finish());
    Decoded { files, batch }
}

/// Frames, checks and builds one file's text into `builder`: the counts, the problems and the
/// number of the record after the last.
pub(crate) fn decode_into(
    builder: &mut BatchBuilder,
    source: &str,
    text: &FileText,
    rules: &Rules<'_>,
) -> (Counts, Vec<Problem>, usize) {
    let mut visitor = FileVisitor {
        builder,
        rules,
        source,
        text: &text.text,
        place: text.place,
        counts: Counts::default(),
        problems: Vec::new(),
    };
    let next = Framer::run(&text.text, &text.invalid_utf8, text.place, &mut visitor);
    if let Some(damage) = &text.damage {
        visitor.problem(None, text.len(), damage.clone());
    }
    (visitor.counts, visitor.problems, next)
}

/// Decodes a large file a segment at a time (see [`crate::segment`]), handing each segment's
/// rows to `send` as a unit of its own, in order; stops early when `send` says the writer is
/// gone. Memory follows the segment size. A failure to read on ends the file with a problem
/// when segments were sent already (their rows are kept), and rejects it otherwise.
pub(crate) fn decode_stream(
    source: SourceFile,
    raw: Box<dyn std::io::BufRead + Send>,
    rules: &Rules<'_>,
    max_text: u64,
    segment_bytes: usize,
    mut send: impl FnMut(Decoded) -> bool,
) {
    let mut segments = Segmenter::new(TextReader::new(raw, max_text), segment_bytes);
    let location = source.id.location.clone();
    let mut index = 0;
    let mut sent = false;
    loop {
        let (segment, failure) = match segments.next_segment() {
            Ok(Some(segment)) => (Some(segment), None),
            Ok(None) => return,
            Err(e) => (None, Some(format!("cannot read: {e}"))),
        };
        let last = segment.as_ref().is_none_or(|s| s.last);
        let decoded = match segment {
            Some(s) => {
                let damage = if s.last { segments.reader().damage().map(str::to_owned) } else { None };
                let place = Place { prefix: s.prefix, offset: s.offset, lines: s.lines, index };
                let text = FileText::from_bytes(s.bytes, damage, place);
                let mut builder = BatchBuilder::new(text.len());
                let (counts, problems, next) = decode_into(&mut builder, &location, &text, rules);
                index = next;
                let rows = builder.rows();
                let file = FileDecoded {
                    source: source.clone(),
                    rows,
                    counts,
                    problems,
                    rejected: None,
                    json_bytes: text.len().saturating_sub(s.prefix) as u64,
                    part: Some(last),
                };
                Decoded { files: vec![file], batch: (rows > 0).then(|| builder.finish()) }
            }
            None => {
                let mut file = FileDecoded {
                    source: source.clone(),
                    rows: 0,
                    counts: Counts::default(),
                    problems: Vec::new(),
                    rejected: None,
                    json_bytes: 0,
                    part: Some(true),
                };
                let reason = failure.unwrap_or_default();
                if sent {
                    let offset = segments.offset() as usize;
                    let line = segments.lines() + 1;
                    let reason = format!("{reason}: the rest of the file is lost");
                    file.problems.push(Problem {
                        file: location.clone(),
                        record: None,
                        offset,
                        line,
                        reason,
                    });
                } else {
                    file.rejected = Some(reason);
                }
                Decoded { files: vec![file], batch: None }
            }
        };
        if !send(decoded) || last {
            return;
        }
        sent = true;
    }
}

/// Frames, checks and builds one file's text on its own: the rows kept, the counts and the
/// problems.
pub(crate) fn decode_text(
    source: &str,
    text: &FileText,
    rules: &Rules<'_>,
) -> (BatchBuilder, Counts, Vec<Problem>) {
    let mut builder = BatchBuilder::new(text.len());
    let (counts, problems, _) = decode_into(&mut builder, source, text, rules);
    (builder, counts, problems)
}
