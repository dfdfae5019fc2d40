//! One source file to one record batch: read, frame, check, build. Runs on worker threads.

use std::fmt;

use arrow::array::RecordBatch;

use crate::event::{BatchBuilder, Outcome, Rules};
use crate::framing::{Framer, Visitor, line_of};
use crate::json::Entries;
use crate::source::{SourceFile, decompress};

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

/// What a worker hands to the writer for one file.
pub(crate) struct Decoded {
    pub(crate) source: SourceFile,
    pub(crate) batch: Option<(RecordBatch, Vec<u128>)>,
    pub(crate) counts: Counts,
    pub(crate) problems: Vec<Problem>,
    /// The file could not be read, or `--strict` rejected it: nothing from it is stored.
    pub(crate) rejected: Option<String>,
    pub(crate) json_bytes: u64,
}

struct FileVisitor<'a> {
    builder: BatchBuilder,
    rules: &'a Rules<'a>,
    source: &'a str,
    text: &'a str,
    counts: Counts,
    problems: Vec<Problem>,
}

impl FileVisitor<'_> {
    fn push(&mut self, record: Option<usize>, offset: usize, reason: String) {
        let line = line_of(self.text, offset);
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

/// Decodes one file from its raw bytes (or the reason they could not be read).
pub(crate) fn decode(
    source: SourceFile,
    raw: Result<Vec<u8>, String>,
    rules: &Rules<'_>,
    strict: bool,
) -> Decoded {
    let name = source.id.location.clone();
    let text = match raw.and_then(text) {
        Ok(t) => t,
        Err(reason) => return rejected(source, reason),
    };
    let text = text.as_str();
    let (mut builder, counts, problems) = decode_text(&name, text, rules);
    if strict && let Some(first) = problems.first() {
        let reason = format!("{first} (--strict: nothing from this file was stored)");
        let mut d = rejected(source, reason);
        d.problems = problems;
        d.counts = Counts { appended: 0, ..counts };
        d.json_bytes = text.len() as u64;
        return d;
    }
    let batch = (builder.rows() > 0).then(|| builder.finish());
    Decoded { source, batch, counts, problems, rejected: None, json_bytes: text.len() as u64 }
}

/// The text of a raw file: gunzipped when it is gzip, and UTF-8.
pub(crate) fn text(raw: Vec<u8>) -> Result<String, String> {
    String::from_utf8(decompress(raw)?)
        .map_err(|e| format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}

/// Frames, checks and builds one file's text: the rows kept, the counts and the problems.
pub(crate) fn decode_text(
    source: &str,
    text: &str,
    rules: &Rules<'_>,
) -> (BatchBuilder, Counts, Vec<Problem>) {
    let mut visitor = FileVisitor {
        builder: BatchBuilder::new(text.len()),
        rules,
        source,
        text,
        counts: Counts::default(),
        problems: Vec::new(),
    };
    Framer::run(text, &mut visitor);
    (visitor.builder, visitor.counts, visitor.problems)
}

fn rejected(source: SourceFile, reason: String) -> Decoded {
    Decoded {
        source,
        batch: None,
        counts: Counts::default(),
        problems: Vec::new(),
        rejected: Some(reason),
        json_bytes: 0,
    }
}
