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
            Inner::Table { mut out, schema, kept, rows, expanded, .. } => {
                let shown: usize = kept.iter().map(RecordBatch::num_rows).sum();
                cut = rows - shown;
                // NULL is not ''; the footer counts every row, shown or not, as psql's does.
                let options = FormatOptions::default().with_null("NULL");
                let table = if kept.is_empty() {
                    arrow::util::pretty::pretty_format_batches_with_schema(schema, &[])?.to_string()
                } else {
                    arrow::util::pretty::pretty_format_batches_with_options(&kept, &options)?.to_string()
                };
                let wide = |t: &str| t.lines().map(|l| l.chars().count()).max().unwrap_or(0);
                let expand = match expanded {
                    Expanded::Off => false,
                    Expanded::On => true,
                    Expanded::Auto(width) => wide(&table) > width,
                };
                if expand && !kept.is_empty() {
                    write!(out, "{}", expanded_rows(&kept, &options)?)?;
                } else {
                    writeln!(out, "{table}")?;
                }
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

/// Runs `write` on stdout, then flushes it (see [`ended`]).
pub(crate) fn to_stdout(write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut out = Stdout::new();
    let closed = out.closed();
    let result = write(&mut out).and_then(|()| out.flush().map_err(Into::into));
    ended(result, &closed)
}

/// Rows a record at a time, a line per column (`name | value`), nested values as compact JSON.
fn expanded_rows(batches: &[RecordBatch], options: &FormatOptions<'_>) -> Result<String> {
    let mut text = String::new();
    let mut record = 0;
    for batch in batches {
        let batch = trawl_query::nested_as_json(batch)?;
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let pad = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        let formatters: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), options))
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            record += 1;
            text.push_str(&format!("-[ RECORD {record} ]{}\n", "-".repeat(pad.saturating_sub(10) + 3)));
            for (name, f) in names.iter().zip(&formatters) {
                text.push_str(&format!("{name:<pad$} | {}\n", f.value(row)));
            }
        }
    }
    Ok(text)
}

/// A CSV line of `cells`, quoted where they need it.
fn csv_line(cells: &[&str]) -> String {
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
