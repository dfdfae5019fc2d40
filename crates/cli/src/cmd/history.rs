//! `trawl history`: the last statements run over the lake, from its query log.

use std::process::ExitCode;

use anyhow::{Context, Result};
use trawl_query::Lake;

use crate::args::HistoryArgs;
use crate::output::{Sink, Stdout};

/// The statement `history` runs: the newest `limit` of the query log, oldest first as a shell's
/// history reads, each statement on one line.
pub(crate) fn history_sql(limit: usize) -> String {
    format!(
        "SELECT time, source, \"user\", outcome, duration_ms, events_matched, events_scanned, \
         bytes_scanned, files_scanned, files_pruned, \
         regexp_replace(trim(sql), '\\s+', ' ') AS sql, error \
         FROM (SELECT * FROM trawl_query_log ORDER BY time DESC LIMIT {limit}) ORDER BY time"
    )
}

pub(crate) async fn run(location: &str, args: HistoryArgs) -> Result<ExitCode> {
    let store =
        trawl_store::Lake::open(location).with_context(|| format!("cannot open the lake at {location}"))?;
    if !store.settings().await.context("cannot read the lake's settings")?.query_log {
        note!(
            "the lake keeps no query log now (`trawl lake set --query-log on` keeps one): earlier records only"
        );
    }
    let lake = Lake::open(location).await.with_context(|| format!("cannot open the lake at {location}"))?;
    // History reads the log: it is not recorded in it.
    let batches = lake.start(&history_sql(args.limit)).await?.stream()?;
    let out = Stdout::new();
    let closed = out.closed();
    let sink = Sink::new(args.format, batches.schema(), out, None)?;
    crate::output::ended(super::query::drain(batches, sink, "stdout").await, &closed)?;
    Ok(ExitCode::SUCCESS)
}
