//! Export: a store back to NDJSON, one original event per line, in `eventTime` order.

use std::io::Write;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use trawl_store::schema::{EVENT_JSON, EVENT_TIME};
use trawl_store::{EventDataStore, by_partition};

use crate::{Error, Result};

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportReport {
    /// Events written.
    pub events: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes every event of `store` with `start <= eventTime < end` to `out` as NDJSON, taken
/// from `eventjson`, oldest first. Reads one day partition at a time.
pub async fn export(
    store: &EventDataStore,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<ExportReport> {
    let (lo, hi) =
        (start.map_or(i64::MIN, |t| t.timestamp_micros()), end.map_or(i64::MAX, |t| t.timestamp_micros()));
    let table = store.snapshot().await?;
    let files = table.files()?;
    let mut report = ExportReport::default();
    let io = |source| Error::Io { context: "cannot write the export".into(), source };
    for (_, day) in by_partition(&files) {
        let day: Vec<_> = day
            .into_iter()
            .filter(|f| {
                f.time_range
                    .is_none_or(|(min, max)| max.timestamp_micros() >= lo && min.timestamp_micros() < hi)
            })
            .collect();
        if day.is_empty() {
            continue;
        }
        let batches: Vec<RecordBatch> =
            store.read_files(&table, &day, &[EVENT_TIME, EVENT_JSON]).try_collect().await?;
        let mut rows: Vec<(i64, usize, usize)> = Vec::new();
        for (bi, b) in batches.iter().enumerate() {
            let times = b.column(0).as_primitive::<TimestampMicrosecondType>();
            for row in 0..b.num_rows() {
                let t = times.value(row);
                if times.is_valid(row) && t >= lo && t < hi {
                    rows.push((t, bi, row));
                }
            }
        }
        rows.sort_unstable();
        for (_, bi, row) in rows {
            let json = batches[bi].column(1).as_string::<i32>().value(row);
            out.write_all(json.as_bytes()).map_err(io)?;
            out.write_all(b"\n").map_err(io)?;
            report.events += 1;
            report.bytes += json.len() as u64 + 1;
        }
    }
    out.flush().map_err(io)?;
    Ok(report)
}
