//! `trawl query`: one statement, results to stdout (or a file), statistics to stderr.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;
use trawl_query::{Batches, Lake, LakeOptions, QueryStats};

use crate::args::{QueryArgs, RunArgs};
use crate::output::{self, Format, Sink};

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
    run_sql(location, &sql, &args.run, "query").await
}

/// Runs `sql` over the lake at `location` as `run` asks; `source` names the command in the
/// query log.
pub(crate) async fn run_sql(location: &str, sql: &str, args: &RunArgs, source: &str) -> Result<ExitCode> {
    let options = LakeOptions {
        memory_limit: args.memory_mib.map(|m| m << 20),
        time_bounds: (
            args.from.as_deref().map(super::parse_time).transpose()?,
            args.to.as_deref().map(super::parse_time).transpose()?,
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
    let journal = super::journal(&mut lake, location, source).await?;
    let result = execute(&lake, sql, args).await;
    if let Some(store) = &journal {
        // Recorded whatever came of it: a statement that failed is evidence too.
        let recorded = super::record(store, &lake).await;
        result?;
        recorded?;
    } else {
        result?;
    }
    // The process ends here. Freeing the session's caches (the Parquet metadata of every file
    // opened) one allocation at a time took 10-20% of a query on a store of 400 files.
    std::mem::forget(lake);
    Ok(ExitCode::SUCCESS)
}

/// Runs the statement, its results to stdout or `-o`, its statistics to stderr.
async fn execute(lake: &Lake, sql: &str, args: &RunArgs) -> Result<()> {
    let format =
        args.format.or_else(|| args.output.as_deref().and_then(Format::of_path)).unwrap_or(Format::Table);
    let running = lake.start(sql).await?;
    let batches = running.stream()?;
    if let Some(location) = &args.deliver {
        deliver(batches, location).await?;
        if !args.quiet {
            note!("{}", describe(&running.stats()));
        }
        return Ok(());
    }
    let schema = batches.schema();
    let cut = match &args.output {
        Some(path) => {
            // Written beside it and renamed when whole: a query that fails halfway leaves no
            // half a result under the name asked for (nor destroys a file there).
            let name = path.file_name().map_or_else(|| "result".into(), |n| n.to_string_lossy());
            let partial = path.with_file_name(format!(".{name}.partial"));
            let file = std::fs::File::create(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let sink = Sink::new(format, schema, std::io::BufWriter::new(file), None)?;
            let written = drain(batches, sink, &path.display().to_string()).await.and_then(|cut| {
                std::fs::rename(&partial, path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(cut)
            });
            if written.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            written?
        }
        None => {
            let terminal = std::io::stdout().is_terminal();
            output::check_terminal(format, terminal)?;
            // A table for the eyes shows its first rows; for a pipe or file, all of them.
            let max_rows = match args.max_rows {
                Some(0) => None,
                Some(n) => Some(n),
                None => terminal.then_some(crate::repl::MAX_ROWS),
            };
            if terminal && format == Format::Table {
                // Held whole to size its columns anyway; fitted to the terminal, and paged.
                let held = output::Held::default();
                let sink = Sink::new(format, schema, held.clone(), max_rows)?
                    .with_width(Some(output::terminal_width()));
                let cut = drain(batches, sink, "stdout").await?;
                output::page(&held.take())?;
                cut
            } else {
                let out = output::Stdout::new();
                let closed = out.closed();
                let sink = Sink::new(format, schema, out, max_rows)?;
                output::ended(drain(batches, sink, "stdout").await, &closed)?
            }
        }
    };
    if cut > 0 {
        note!("({cut} more rows not shown; --max-rows 0 shows them all)");
    }
    if !args.quiet {
        note!("{}", describe(&running.stats()));
    }
    Ok(())
}

/// A delivered result file closes at this compressed size; the next one opens.
const DELIVERY_PART_BYTES: usize = 64 << 20;

/// Delivers the result to `location` as CloudTrail Lake does: gzipped CSV files (each with its
/// header, closed at [`DELIVERY_PART_BYTES`]), then the signed `result_sign.json`. Prints the
/// sign file's location.
async fn deliver(mut batches: Batches, location: &str) -> Result<()> {
    use flate2::write::GzEncoder;
    let signer = super::verify::delivery_signer()?;
    let query_id = uuid::Uuid::new_v4().to_string();
    let mut delivery = trawl_store::signed::Delivery::new(location, &query_id, chrono::Utc::now())
        .with_context(|| format!("cannot deliver to {location}"))?;
    let new_part = || GzEncoder::new(Vec::new(), flate2::Compression::default());
    let (mut part, mut rows, mut in_part) = (new_part(), 0, 0);
    let mut csv = Vec::new();
    while let Some(batch) = batches.try_next().await? {
        csv.clear();
        // Each file has its header.
        let mut writer = arrow::csv::WriterBuilder::new().with_header(in_part == 0).build(&mut csv);
        writer.write(&trawl_query::nested_as_json(&batch)?)?;
        drop(writer);
        part.write_all(&csv)?;
        rows += batch.num_rows();
        in_part += batch.num_rows();
        if part.get_ref().len() >= DELIVERY_PART_BYTES {
            delivery.put(std::mem::replace(&mut part, new_part()).finish()?).await?;
            in_part = 0;
        }
    }
    if rows == 0 {
        // An empty result is one file holding the header, as in every format.
        let schema = batches.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        writeln!(part, "{}", output::csv_line(&names))?;
    }
    if in_part > 0 || rows == 0 {
        delivery.put(part.finish()?).await?;
    }
    let place = delivery.location().to_owned();
    let sign = delivery.finish(&query_id, chrono::Utc::now(), &signer).await?;
    output::to_stdout(|out| Ok(writeln!(out, "{place}{}", trawl_store::signed::SIGN_FILE)?))?;
    note!(
        "delivered {rows} rows in {} files, signed by key {}",
        sign.files.len(),
        &sign.public_key_fingerprint[..16]
    );
    Ok(())
}

/// Writes the batches into `sink` (named `target` in errors) as they come; returns the rows a
/// table left out. An error of the query is its own, not the output's.
pub(crate) async fn drain<W: Write + Send>(
    mut batches: Batches,
    mut sink: Sink<W>,
    target: &str,
) -> Result<usize> {
    while let Some(batch) = batches.try_next().await? {
        sink.write(&batch).with_context(|| format!("cannot write {target}"))?;
    }
    sink.finish().with_context(|| format!("cannot write {target}"))
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
