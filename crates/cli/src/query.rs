//! `trawl query`: one statement, results to stdout (or a file), statistics to stderr.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use trawl_query::{Lake, LakeOptions, QueryStats};

use crate::{Format, QueryArgs};

pub(crate) async fn run(location: &str, args: QueryArgs) -> Result<ExitCode> {
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        (None, None) => {
            let mut sql = String::new();
            std::io::stdin().read_to_string(&mut sql).context("cannot read SQL from stdin")?;
            sql
        }
    };
    let options = LakeOptions {
        memory_limit: args.memory_mib.map(|m| m << 20),
        time_bounds: (
            args.from.as_deref().map(crate::commands::parse_time).transpose()?,
            args.to.as_deref().map(crate::commands::parse_time).transpose()?,
        ),
    };
    let mut lake = Lake::open_with(location, &options)
        .await
        .with_context(|| format!("cannot open the lake at {location}"))?;
    for t in &args.trails {
        let (name, location) = match t.split_once('=') {
            Some((name, location)) if !name.contains('/') => (name, location),
            _ => ("trail", t.as_str()),
        };
        lake.register_trail(name, location, std::sync::Arc::new(trawl_ingest::decode_file))
            .with_context(|| format!("--trail {t}"))?;
    }
    for p in &args.params {
        let Some((name, value)) = p.split_once('=') else {
            bail!("--param {p}: expected NAME=VALUE");
        };
        lake.set_param(name.trim_start_matches('$'), value);
    }
    let (batches, stats) = lake.collect(sql.trim().trim_end_matches(';')).await?;
    let format = args.format.or_else(|| args.output.as_deref().and_then(format_of)).unwrap_or(Format::Table);
    match &args.output {
        Some(path) => {
            let mut file =
                std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            write_results(&batches, format, &mut file)?;
        }
        None => to_stdout(|out| write_results(&batches, format, out))?,
    }
    if !args.quiet {
        note!("{}", describe(&stats));
    }
    // The process ends here. Freeing the session's caches (the Parquet metadata of every file
    // opened) one allocation at a time took 10-20% of a query on a store of 400 files.
    std::mem::forget(lake);
    Ok(ExitCode::SUCCESS)
}

/// Lake's statistics in one line.
pub(crate) fn describe(s: &QueryStats) -> String {
    format!(
        "{} events matched, {} events scanned, {} bytes scanned, {} files scanned, {} files pruned, {} ms",
        s.events_matched,
        s.events_scanned,
        s.bytes_scanned,
        s.files_scanned,
        s.files_pruned,
        s.execution_time.as_millis()
    )
}

/// The format an output file's extension names, as duckdb's and datafusion-cli's `COPY` take it.
fn format_of(path: &std::path::Path) -> Option<Format> {
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

/// Runs `write` on stdout. When the reader has gone (`| head`), the error is an I/O error of
/// kind `BrokenPipe`, whatever `write` made of it (arrow's CSV and JSON writers keep only its
/// text), so that `main` ends quietly.
pub(crate) fn to_stdout(write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut out = Watched { inner: std::io::stdout().lock(), closed: false };
    let result = write(&mut out).and_then(|()| out.flush().map_err(Into::into));
    if out.closed {
        return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
    }
    result
}

/// A writer that remembers whether its reader went away.
struct Watched<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> Watched<W> {
    fn watch<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        self.closed |= result.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
        result
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let result = self.inner.write(buf);
        self.watch(result)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let result = self.inner.flush();
        self.watch(result)
    }
}

pub(crate) fn write_results(batches: &[RecordBatch], format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Table => {
            writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(batches)?)?;
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(out);
            for b in batches {
                w.write(&nested_as_json(b)?)?;
            }
        }
        Format::Json => {
            let mut w = arrow::json::ArrayWriter::new(&mut *out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            // A text file ends with a line break.
            writeln!(out)?;
        }
        Format::Ndjson => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Markdown => markdown(batches, out)?,
        Format::Parquet => {
            let Some(first) = batches.first() else {
                bail!("the query returned no batches to write as Parquet")
            };
            let mut buf = Vec::new();
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, first.schema(), None)?;
            for b in batches {
                w.write(b)?;
            }
            w.close()?;
            out.write_all(&buf)?;
        }
    }
    Ok(())
}

/// Struct, list and map columns as compact JSON text, for formats whose cells are text.
fn nested_as_json(batch: &RecordBatch) -> Result<RecordBatch> {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    if !batch.schema().fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let single = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("v", field.data_type().clone(), true)])),
            vec![column.clone()],
        )?;
        let mut buf = Vec::new();
        let mut w = arrow::json::ArrayWriter::new(&mut buf);
        w.write(&single)?;
        w.finish()?;
        let rows: Vec<serde_json::Map<String, serde_json::Value>> =
            if buf.is_empty() { Vec::new() } else { serde_json::from_slice(&buf)? };
        let text: StringArray = rows.iter().map(|r| r.get("v").map(|v| v.to_string())).collect();
        fields.push(Field::new(field.name(), DataType::Utf8, true));
        columns.push(Arc::new(text));
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn markdown(batches: &[RecordBatch], out: &mut dyn Write) -> Result<()> {
    let Some(first) = batches.first() else { return Ok(()) };
    let names: Vec<String> = first.schema().fields().iter().map(|f| f.name().clone()).collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}", "---|".repeat(names.len()))?;
    let options = FormatOptions::default();
    for b in batches {
        let b = &nested_as_json(b)?;
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
    }
    Ok(())
}
