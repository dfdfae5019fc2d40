//! Output formats: results written batch by batch as a query yields them, so that only a table
//! for the terminal (whose column widths need every row it shows) holds rows.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use clap::ValueEnum;

/// When a table is shown a row at a time, a line per column (psql's `\x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expanded {
    Off,
    On,
    /// When the table is wider than this many columns (the terminal's).
    Auto(usize),
}

/// How results are written.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Csv,
    Json,
    Ndjson,
    Markdown,
    Parquet,
}

impl Format {
    /// The format an output file's extension names, as duckdb's and datafusion-cli's `COPY`
    /// take it.
    pub(crate) fn of_path(path: &std::path::Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match extension.as_str() {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "md" => Format::Markdown,
            "parquet" => Format::Parquet,
            _ => return None,
        })
    }

    /// Formats whose bytes are not text: never written to a terminal.
    pub(crate) fn is_binary(self) -> bool {
        self == Format::Parquet
    }
}

/// The encoded size at which a Parquet output closes its row group.
const PARQUET_ROW_GROUP_BYTES: usize = 64 << 20;

/// Writes the batches of one result in one format, as they come.
pub(crate) struct Sink<W: Write + Send> {
    inner: Inner<W>,
}

enum Inner<W: Write + Send> {
    /// Rows kept for the table: all of them, or the first `max` (the rest only counted).
    Table {
        out: W,
        schema: SchemaRef,
        kept: Vec<RecordBatch>,
        rows: usize,
        max: Option<usize>,
        expanded: Expanded,
        /// The terminal's width, which the table is fitted to (long cells cut).
        width: Option<usize>,
    },
    Csv {
        writer: arrow::csv::Writer<W>,
        schema: SchemaRef,
        /// A batch was written (with the header); else the header is written at the end.
        wrote: bool,
    },
    Json(arrow::json::ArrayWriter<W>),
    Ndjson(arrow::json::LineDelimitedWriter<W>),
    Markdown {
        out: W,
        header: bool,
        schema: SchemaRef,
    },
    Parquet(parquet::arrow::ArrowWriter<W>),
}

impl<W: Write + Send> Sink<W> {
    /// A sink for results of `schema`. `max_rows` cuts a table (only): the rows past it are
    /// counted, not kept.
    pub(crate) fn new(format: Format, schema: SchemaRef, out: W, max_rows: Option<usize>) -> Result<Self> {
        let inner = match format {
            Format::Table => Inner::Table {
                out,
                schema,
                kept: Vec::new(),
                rows: 0,
                max: max_rows,
                expanded: Expanded::Off,
                width: None,
            },
            Format::Csv => Inner::Csv {
                writer: arrow::csv::WriterBuilder::new().with_header(true).build(out),
                schema,
                wrote: false,
            },
            Format::Json => Inner::Json(arrow::json::ArrayWriter::new(out)),
            Format::Ndjson => Inner::Ndjson(arrow::json::LineDelimitedWriter::new(out)),
            Format::Markdown => Inner::Markdown { out, header: false, schema },
            Format::Parquet => {
                use parquet::basic::{Compression, ZstdLevel};
                let properties = parquet::file::properties::WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
                    .build();
                Inner::Parquet(parquet::arrow::ArrowWriter::try_new(out, schema, Some(properties))?)
            }
        };
        Ok(Self { inner })
    }

    /// Writes (or, for a table, keeps) one batch.
    /// How a table is laid out (other formats have one layout).
    pub(crate) fn with_expanded(mut self, mode: Expanded) -> Self {
        if let Inner::Table { expanded, .. } = &mut self.inner {
            *expanded = mode;
        }
        self
    }

    /// Fits a table to `columns` of terminal: its widest columns are narrowed, their long cells
    /// cut and marked with `…`.
    pub(crate) fn with_width(mut self, columns: Option<usize>) -> Self {
        if let Inner::Table { width, .. } = &mut self.inner {
            *width = columns;
        }
        self
    }

    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match &mut self.inner {
            Inner::Table { kept, rows, max, .. } => {
                let room = max.map_or(batch.num_rows(), |m| m.saturating_sub(*rows).min(batch.num_rows()));
                if room > 0 {
                    kept.push(batch.slice(0, room));
                }
                *rows += batch.num_rows();
            }
            Inner::Csv { writer, wrote, .. } => {
                writer.write(&trawl_query::nested_as_json(batch)?)?;
                *wrote = true;
            }
            Inner::Json(w) => w.write(batch)?,
            Inner::Ndjson(w) => w.write(batch)?,
            Inner::Markdown { out, header, schema } => {
                if !*header {
                    markdown_header(schema, out)?;
                    *header = true;
                }
                markdown_rows(batch, out)?;
            }
            Inner::Parquet(w) => {
                w.write(batch)?;
                // A row group is held until it is written: its default, a million rows of
                // events, is gigabytes. One is closed at this size instead.
                if w.in_progress_size() >= PARQUET_ROW_GROUP_BYTES {
                    w.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Ends the result: writes the table, closes JSON and Parquet, flushes. Every text format
    /// ends with a line break. Returns the rows a table left out.
    pub(crate) fn finish(self) -> Result<usize> {
        let mut cut = 0;
        let mut out = match self.inner {
            Inner::Table { mut out, schema, kept, rows, expanded, width, .. } => {
                let shown: usize = kept.iter().map(RecordBatch::num_rows).sum();
                cut = rows - shown;
                let table = TextTable::new(&schema, &kept)?;
                let expand = match expanded {
                    Expanded::Off => false,
                    Expanded::On => true,
                    Expanded::Auto(columns) => table.natural_width() > columns,
                };
                if expand && !kept.is_empty() {
                    write!(out, "{}", table.expanded())?;
                } else {
                    write!(out, "{}", table.render(width))?;
                }
                // The footer counts every row, shown or not, as psql's does.
                writeln!(out, "({rows} {})", if rows == 1 { "row" } else { "rows" })?;
                out
            }
            Inner::Csv { writer, schema, wrote } => {
                let mut out = writer.into_inner();
                // An empty result still has its header, as in every format.
                if !wrote {
                    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                    writeln!(out, "{}", csv_line(&names))?;
                }
                out
            }
            Inner::Json(mut w) => {
                w.finish()?;
                let mut out = w.into_inner();
                // A text file ends with a line break.
                writeln!(out)?;
                out
            }
            Inner::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Inner::Markdown { mut out, header, schema } => {
                if !header {
                    markdown_header(&schema, &mut out)?;
                }
                out
            }
            Inner::Parquet(w) => w.into_inner()?,
        };
        out.flush()?;
        Ok(cut)
    }
}

/// Refuses a binary format on a terminal.
pub(crate) fn check_terminal(format: Format, terminal: bool) -> Result<()> {
    if format.is_binary() && terminal {
        bail!("{format:?} output is binary: write it to a file with -o FILE, or redirect stdout");
    }
    Ok(())
}

/// Standard output, buffered, remembering whether its reader went away (`| head`): arrow's CSV
/// and JSON writers keep only the text of an I/O error, so the kind is lost on the way up.
pub(crate) struct Stdout {
    inner: std::io::BufWriter<std::io::Stdout>,
    closed: Arc<AtomicBool>,
}

impl Stdout {
    pub(crate) fn new() -> Self {
        Self { inner: std::io::BufWriter::new(std::io::stdout()), closed: Arc::default() }
    }

    /// Set once a write found the reader gone.
    pub(crate) fn closed(&self) -> Arc<AtomicBool> {
        self.closed.clone()
    }

    fn watch<T>(&self, result: std::io::Result<T>) -> std::io::Result<T> {
        if result.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
            self.closed.store(true, Ordering::Relaxed);
        }
        result
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

/// `result` of writing to a [`Stdout`] whose flag is `closed`: an I/O error of kind
/// `BrokenPipe` when the reader went away, whatever the writer made of it, so that `main` ends
/// quietly.
pub(crate) fn ended<T>(result: Result<T>, closed: &AtomicBool) -> Result<T> {
    if closed.load(Ordering::Relaxed) {
        return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
    }
    result
}

/// Text held whole before it is shown (a table for the terminal, which may go to the pager);
/// clones share it.
#[derive(Clone, Default)]
pub(crate) struct Held(Arc<std::sync::Mutex<Vec<u8>>>);

impl Held {
    /// The text written so far, taken out.
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Write for Held {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Shows `text` on the terminal: through the pager when it has more lines than the terminal
/// (`$PAGER`, else `less -FRSX`, as psql and git do), else directly. A pager that cannot be
/// started is said once and the text written directly.
pub(crate) fn page(text: &[u8]) -> Result<()> {
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    let height = console::Term::stdout().size_checked().map(|(rows, _)| usize::from(rows));
    // A line is left for the prompt that follows.
    if height.is_some_and(|h| lines >= h) {
        let command = std::env::var("PAGER")
            .ok()
            .filter(|p| !p.trim().is_empty())
            .unwrap_or_else(|| "less -FRSX".to_owned());
        let started = std::process::Command::new("sh")
            .args(["-c", &command])
            .stdin(std::process::Stdio::piped())
            .spawn();
        match started {
            Ok(mut child) => {
                if let Some(mut input) = child.stdin.take() {
                    // Quitting the pager before the end closes its input: that is no error.
                    let _ = input.write_all(text);
                }
                // 127: the shell found no such program (no `less` on a minimal system).
                if child.wait()?.code() != Some(127) {
                    return Ok(());
                }
                note!("warning: no pager `{command}` (set $PAGER, or \\pager off)");
            }
            Err(e) => note!("warning: cannot start the pager `{command}`: {e}"),
        }
    }
    to_stdout(|out| Ok(out.write_all(text)?))
}

/// The terminal's width in columns (80 when it cannot be told).
pub(crate) fn terminal_width() -> usize {
    match console::Term::stdout().size_checked() {
        Some((_, columns)) if columns > 0 => usize::from(columns),
        _ => 80,
    }
}

/// Runs `write` on stdout, then flushes it (see [`ended`]).
pub(crate) fn to_stdout(write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut out = Stdout::new();
    let closed = out.closed();
    let result = write(&mut out).and_then(|()| out.flush().map_err(Into::into));
    ended(result, &closed)
}

/// How a table shows NULL: not as '', which is a value.
const NULL: &str = "NULL";

/// The narrowest a column is cut to when a table is fitted to the terminal.
const MIN_COLUMN_WIDTH: usize = 6;

/// A result as text cells, laid out as arrow's tables are (`+---+` rules, `| x |` rows, left
/// aligned), with nested values as compact JSON (null fields left out) and NULL shown.
struct TextTable {
    header: Vec<String>,
    /// The cells as formatted, line breaks kept (a record at a time shows them).
    rows: Vec<Vec<String>>,
    /// Each column's width on one line: its widest cell or its name.
    widths: Vec<usize>,
}

/// A cell on one line of a table: a line break or tab inside it would break the table's lines.
fn one_line(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.contains(['\n', '\r', '\t']) {
        std::borrow::Cow::Owned(cell.replace(['\n', '\r', '\t'], " "))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

impl TextTable {
    fn new(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Self> {
        let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let options = FormatOptions::default().with_null(NULL);
        let mut rows = Vec::new();
        for batch in batches {
            let batch = trawl_query::nested_as_json(batch)?;
            let formatters: Vec<ArrayFormatter<'_>> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<_, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(formatters.iter().map(|f| f.value(row).to_string()).collect::<Vec<String>>());
            }
        }
        let mut widths: Vec<usize> = header.iter().map(|h| console::measure_text_width(h)).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(console::measure_text_width(&one_line(cell)));
            }
        }
        Ok(Self { header, rows, widths })
    }

    /// A record at a time, a line per column (`name | value`), as psql's `\x` shows them.
    fn expanded(&self) -> String {
        let pad = self.header.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let mut text = String::new();
        for (record, row) in self.rows.iter().enumerate() {
            text.push_str(&format!("-[ RECORD {} ]{}\n", record + 1, "-".repeat(pad.saturating_sub(10) + 3)));
            for (name, cell) in self.header.iter().zip(row) {
                text.push_str(&format!("{name:<pad$} | {cell}\n"));
            }
        }
        text
    }

    /// The width of the table with every cell whole.
    fn natural_width(&self) -> usize {
        frame_width(self.header.len()) + self.widths.iter().sum::<usize>()
    }

    /// The table as text, fitted into `fit` columns when given: the columns wider than a cap are
    /// cut to it, the cap as wide as the room allows (never under [`MIN_COLUMN_WIDTH`]).
    fn render(&self, fit: Option<usize>) -> String {
        let mut widths = self.widths.clone();
        if let Some(room) = fit.map(|f| f.saturating_sub(frame_width(widths.len())))
            && widths.iter().sum::<usize>() > room
        {
            let fits = |cap: usize| widths.iter().map(|&w| w.min(cap)).sum::<usize>() <= room;
            let (mut low, mut high) = (MIN_COLUMN_WIDTH, widths.iter().copied().max().unwrap_or(0));
            while low < high {
                let mid = (low + high).div_ceil(2);
                if fits(mid) { low = mid } else { high = mid - 1 }
            }
            for w in &mut widths {
                *w = (*w).min(low);
            }
        }
        let rule: String =
            widths.iter().map(|&w| format!("+{}", "-".repeat(w + 2))).collect::<String>() + "+\n";
        let line = |cells: &[String]| -> String {
            let mut text = String::new();
            for (cell, &w) in cells.iter().zip(&widths) {
                let cell = one_line(cell);
                let cell = console::truncate_str(&cell, w, "…");
                let pad = w.saturating_sub(console::measure_text_width(&cell));
                text.push_str(&format!("| {cell}{} ", " ".repeat(pad)));
            }
            text + "|\n"
        };
        if widths.is_empty() {
            return String::new();
        }
        let mut text = rule.clone();
        text.push_str(&line(&self.header));
        text.push_str(&rule);
        for row in &self.rows {
            text.push_str(&line(row));
        }
        if !self.rows.is_empty() {
            text.push_str(&rule);
        }
        text
    }
}

/// The columns a table's rules and padding take around `n` columns of cells.
fn frame_width(n: usize) -> usize {
    3 * n + 1
}

/// A CSV line of `cells`, quoted where they need it.
pub(crate) fn csv_line(cells: &[&str]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                (*c).to_owned()
            }
        })
        .collect();
    quoted.join(",")
}

fn markdown_header(schema: &SchemaRef, out: &mut impl Write) -> Result<()> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(names.len()))?;
    Ok(())
}

fn markdown_rows(batch: &RecordBatch, out: &mut impl Write) -> Result<()> {
    let options = FormatOptions::default();
    let b = &trawl_query::nested_as_json(batch)?;
    let formatters: Vec<ArrayFormatter<'_>> = b
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<_, _>>()?;
    for row in 0..b.num_rows() {
        let cells: Vec<String> = formatters
            .iter()
            .map(|f| f.value(row).to_string().replace('|', "\\|").replace('\n', " "))
            .collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    Ok(())
}
