//! New data files: rows of one `eventdate` partition at a time, sorted by `eventtime`, encoded
//! into Parquet in memory with each file's columns spread over several threads, then uploaded
//! and described to Delta by [`crate::EventDataStore::commit`].
//!
//! Ingest is bound by this encoding once decoding runs on every core: with one thread per file
//! it kept 1.55 of 2 cores busy on 10 million events. Columns are independent until the row
//! group is assembled, so threads take whole columns (with their leaves) from a queue, the
//! costliest first, and the file is assembled in column order afterwards: the bytes are the same
//! as a one-thread writer's. (delta-rs's `RecordBatchWriter`, used before, encodes on one thread;
//! the Delta statistics it wrote are computed here the same way, for [`STATS_COLUMNS`].)

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::interleave;
use arrow::datatypes::{Date32Type, FieldRef};
use chrono::{DateTime, NaiveDate};
use deltalake::ObjectStore;
use deltalake::kernel::Add;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{ParquetMetaData, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::schema::{
    self, EVENT_DATE, EVENT_ID, EVENT_JSON, EVENT_JSON_CHECKSUM, EVENT_TIME, STATS_COLUMNS, event_schema,
    file_schema,
};
use crate::{Error, Result};

/// Rows per Parquet row group: small enough for row-group pruning on `eventtime`, large enough
/// for good compression.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Bytes per data page (before compression; `eventjson` has its own 8 MiB). A point lookup
/// decodes its predicate columns whole, then fetches and decompresses only the pages of the other
/// columns that hold a match (the offset index locates them): with 1 MiB pages it decompressed
/// every `eventid` in a file to sort two matches. A page limit in rows would cut `eventjson` too,
/// which compresses worse and slower in small pages.
const PAGE_BYTES: usize = 64 << 10;
/// Bytes per data page of `eventid`.
const ID_PAGE_BYTES: usize = 4 << 10;
/// Data files roll over at the first row group boundary past this size.
const TARGET_FILE_BYTES: usize = 256 * 1024 * 1024;
/// Files uploaded at once by a commit.
const UPLOADS: usize = 8;

/// Writes sorted rows into new Parquet files, held in memory until
/// [`crate::EventDataStore::commit`] uploads them and commits them in one Delta transaction.
pub struct StoreWriter {
    props: WriterProperties,
    /// The file schema's fields, and for each the index of its column in the event schema
    /// (batches carry `eventdate` too).
    fields: Vec<(FieldRef, usize)>,
    /// Position of `eventdate` in the event schema.
    date_column: usize,
    threads: usize,
    /// Nanoseconds each column took in the last chunk: the costliest are started first.
    cost: Vec<AtomicU64>,
    open: Option<OpenFile>,
    finished: Vec<FinishedFile>,
    rows: u64,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter")
            .field("rows", &self.rows)
            .field("finished", &self.finished.len())
            .finish_non_exhaustive()
    }
}

/// A file being written.
struct OpenFile {
    date: NaiveDate,
    writer: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    /// Column writers of the open row group, for each file column (one per Parquet leaf);
    /// made when the row group gets its first rows.
    columns: Vec<Mutex<Vec<ArrowColumnWriter>>>,
    /// Rows in the open row group.
    group_rows: usize,
}

/// A file encoded and closed, not yet uploaded.
struct FinishedFile {
    date: NaiveDate,
    bytes: Vec<u8>,
    metadata: ParquetMetaData,
}

impl Default for StoreWriter {
    fn default() -> Self {
        let file = file_schema();
        let events = event_schema();
        let fields = file
            .fields()
            .iter()
            .map(|f| (f.clone(), events.index_of(f.name()).expect("file columns are event columns")))
            .collect::<Vec<_>>();
        let cost = fields.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            props: writer_properties(),
            fields,
            date_column: events.index_of(EVENT_DATE).expect("eventdate is an event column"),
            threads: rayon::current_num_threads(),
            cost,
            open: None,
            finished: Vec::new(),
            rows: 0,
        }
    }
}

impl StoreWriter {
    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of the finished files not yet uploaded.
    pub fn bytes(&self) -> usize {
        self.finished.iter().map(|f| f.bytes.len()).sum()
    }

    /// Writes the rows `rows` (batch, row) of `batches` (of the event schema), in this order,
    /// which must group them by `eventdate`, and should sort them by `eventtime` within it: a
    /// row of another date than the open file's finishes that file and starts one for its date
    /// (rows of alternating dates would make a file of each run).
    pub fn write_rows(&mut self, batches: &[&RecordBatch], rows: &[(usize, usize)]) -> Result<()> {
        let dates = batches
            .iter()
            .map(|b| {
                b.column(self.date_column)
                    .as_primitive_opt::<Date32Type>()
                    .ok_or_else(|| Error::Write("eventdate is not a date column".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        let date_of = |&(b, r): &(usize, usize)| dates[b].value(r);
        let mut rest = rows;
        while let Some(first) = rest.first() {
            let day = date_of(first);
            let run = rest.iter().position(|row| date_of(row) != day).unwrap_or(rest.len());
            let date = schema::date_of_epoch_day(day)
                .ok_or_else(|| Error::Write(format!("eventdate {day} is out of range")))?;
            if self.open.as_ref().is_some_and(|f| f.date != date) {
                self.finish_file()?;
            }
            if self.open.is_none() {
                self.open = Some(self.open_file(date)?);
            }
            let open = self.open.as_mut().expect("a file is open");
            if open.group_rows == 0 {
                open.columns = column_writers(open, self.fields.len())?;
            }
            let take = run.min(ROW_GROUP_ROWS - open.group_rows);
            let (chunk, next) = rest.split_at(take);
            encode(open, &self.fields, &self.cost, self.threads, batches, chunk)?;
            open.group_rows += take;
            self.rows += take as u64;
            if open.group_rows == ROW_GROUP_ROWS {
                close_row_group(open, &self.cost, self.threads)?;
                if open.writer.bytes_written() >= TARGET_FILE_BYTES {
                    self.finish_file()?;
                }
            }
            rest = next;
        }
        Ok(())
    }

    /// Finishes the open file, if any. Rows of a new date finish it too, so that one set of
    /// column writers is in memory (a set holds zstd contexts, page buffers and bloom filters
    /// for each of ~80 leaf columns).
    pub fn finish_file(&mut self) -> Result<()> {
        let Some(mut open) = self.open.take() else { return Ok(()) };
        if open.group_rows > 0 {
            close_row_group(&mut open, &self.cost, self.threads)?;
        }
        let metadata = open.writer.finish()?;
        // `finish` wrote the footer and flushed; `into_inner` would write a second footer.
        let bytes = std::mem::take(open.writer.inner_mut());
        self.finished.push(FinishedFile { date: open.date, bytes, metadata });
        Ok(())
    }

    fn open_file(&self, date: NaiveDate) -> Result<OpenFile> {
        // ArrowWriter adds the Arrow schema to the file's metadata, as readers expect.
        let (writer, factory) = ArrowWriter::try_new(Vec::new(), file_schema(), Some(self.props.clone()))?
            .into_serialized_writer()?;
        Ok(OpenFile { date, writer, factory, columns: Vec::new(), group_rows: 0 })
    }

    /// Uploads the finished files under `objects` (the table root) and returns their Delta
    /// actions.
    pub(crate) async fn upload(&mut self, objects: Arc<dyn ObjectStore>) -> Result<Vec<Add>> {
        self.finish_file()?;
        let files = std::mem::take(&mut self.finished);
        futures::stream::iter(files)
            .map(|file| {
                let objects = objects.clone();
                async move {
                    let date = file.date.format("%Y-%m-%d").to_string();
                    let name =
                        format!("{EVENT_DATE}={date}/part-00000-{}-c000.zstd.parquet", uuid::Uuid::new_v4());
                    let size = file.bytes.len();
                    objects.put(&Path::from(name.as_str()), PutPayload::from(file.bytes)).await?;
                    let modification_time =
                        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
                    Ok::<_, Error>(Add {
                        path: name,
                        partition_values: HashMap::from([(EVENT_DATE.to_owned(), Some(date))]),
                        size: i64::try_from(size).unwrap_or(i64::MAX),
                        modification_time,
                        data_change: true,
                        stats: Some(delta_stats(&file.metadata).to_string()),
                        ..Default::default()
                    })
                }
            })
            .buffer_unordered(UPLOADS)
            .try_collect()
            .await
    }
}

/// Appends `rows` of `batches` to the open row group of `open`: each thread takes the next
/// column, gathers its values, computes its leaves and encodes them.
fn encode(
    open: &OpenFile,
    fields: &[(FieldRef, usize)],
    cost: &[AtomicU64],
    threads: usize,
    batches: &[&RecordBatch],
    rows: &[(usize, usize)],
) -> Result<()> {
    in_parallel(cost, threads, |c| {
        let (field, source) = &fields[c];
        let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(*source).as_ref()).collect();
        let column = interleave(&arrays, rows)?;
        let mut writers = open.columns[c].lock().map_err(|_| poisoned())?;
        for (leaf, writer) in compute_leaves(field, &column)?.iter().zip(writers.iter_mut()) {
            writer.write(leaf)?;
        }
        Ok(())
    })
}

/// Closes the open row group of `open` (the last pages of each column are compressed on the
/// threads) and appends it to the file. The next row group's writers are made when it gets rows.
fn close_row_group(open: &mut OpenFile, cost: &[AtomicU64], threads: usize) -> Result<()> {
    let chunks: Vec<Mutex<Vec<ArrowColumnChunk>>> = open.columns.iter().map(|_| Mutex::default()).collect();
    in_parallel(cost, threads, |c| {
        let writers = std::mem::take(&mut *open.columns[c].lock().map_err(|_| poisoned())?);
        let closed = writers.into_iter().map(ArrowColumnWriter::close).collect::<Result<Vec<_>, _>>()?;
        *chunks[c].lock().map_err(|_| poisoned())? = closed;
        Ok(())
    })?;
    let mut group = open.writer.next_row_group()?;
    for column in chunks {
        for chunk in column.into_inner().map_err(|_| poisoned())? {
            chunk.append_to_row_group(&mut group)?;
        }
    }
    group.close()?;
    open.group_rows = 0;
    Ok(())
}

/// Column writers for the next row group of `open`, grouped by file column.
fn column_writers(open: &OpenFile, columns: usize) -> Result<Vec<Mutex<Vec<ArrowColumnWriter>>>> {
    let index = open.writer.flushed_row_groups().len();
    let mut leaves = open.factory.create_column_writers(index)?.into_iter();
    let descriptor = open.writer.schema_descr();
    let mut roots = (0..descriptor.num_columns()).map(|leaf| descriptor.get_column_root_idx(leaf)).peekable();
    Ok((0..columns)
        .map(|root| {
            let mut writers = Vec::new();
            while roots.next_if_eq(&root).is_some() {
                writers.extend(leaves.next());
            }
            Mutex::new(writers)
        })
        .collect())
}

/// Runs `work` for every column index on `threads` threads of rayon's pool, taking the columns
/// that cost most in the last run first; records what each cost. (Threads that stay alive: a
/// new thread per chunk made glibc's malloc open new arenas, about 100 MiB more peak RSS.)
fn in_parallel(cost: &[AtomicU64], threads: usize, work: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let mut order: Vec<usize> = (0..cost.len()).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(cost[c].load(Ordering::Relaxed)));
    let next = AtomicUsize::new(0);
    (0..threads.min(cost.len())).into_par_iter().try_for_each(|_| {
        while let Some(&c) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            let started = Instant::now();
            work(c)?;
            cost[c].store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(())
    })
}

fn poisoned() -> Error {
    Error::Write("a Parquet encoding thread panicked".into())
}

/// The Delta statistics of a file (`numRecords`, and `minValues`, `maxValues` and `nullCount`
/// of [`STATS_COLUMNS`]), from its row groups' Parquet statistics, as delta-rs writes them:
/// times to the millisecond, strings as Parquet kept them.
fn delta_stats(metadata: &ParquetMetaData) -> Value {
    let descriptor = metadata.file_metadata().schema_descr();
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for leaf in 0..descriptor.num_columns() {
        let column = descriptor.column(leaf);
        let name = column.name();
        if column.path().parts().len() != 1 || !STATS_COLUMNS.contains(&name) {
            continue;
        }
        let mut null_count = 0;
        let (mut lo, mut hi): (Option<StatValue>, Option<StatValue>) = (None, None);
        for group in metadata.row_groups() {
            let Some(stats) = group.column(leaf).statistics() else { continue };
            null_count += stats.null_count_opt().unwrap_or(0);
            let (a, b) = match stats {
                Statistics::Int64(s) => {
                    (s.min_opt().map(|v| StatValue::Time(*v)), s.max_opt().map(|v| StatValue::Time(*v)))
                }
                Statistics::ByteArray(s) => (
                    s.min_opt().and_then(|v| v.as_utf8().ok()).map(|v| StatValue::Text(v.to_owned())),
                    s.max_opt().and_then(|v| v.as_utf8().ok()).map(|v| StatValue::Text(v.to_owned())),
                ),
                _ => (None, None),
            };
            lo = pick(lo, a, std::cmp::Ordering::Less);
            hi = pick(hi, b, std::cmp::Ordering::Greater);
        }
        min.extend(lo.and_then(StatValue::json).map(|v| (name.to_owned(), v)));
        max.extend(hi.and_then(StatValue::json).map(|v| (name.to_owned(), v)));
        nulls.insert(name.to_owned(), Value::from(null_count));
    }
    serde_json::json!({
        "numRecords": metadata.file_metadata().num_rows(),
        "minValues": min,
        "maxValues": max,
        "nullCount": nulls,
    })
}

/// Of two optional statistics, the one that compares as `wanted` to the other.
fn pick(a: Option<StatValue>, b: Option<StatValue>, wanted: std::cmp::Ordering) -> Option<StatValue> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.partial_cmp(&x) == Some(wanted) { y } else { x }),
        (x, y) => x.or(y),
    }
}

/// A statistic of a stats column: `eventtime` (microseconds) or a string.
#[derive(PartialEq, PartialOrd)]
enum StatValue {
    Time(i64),
    Text(String),
}

impl StatValue {
    fn json(self) -> Option<Value> {
        match self {
            StatValue::Time(micros) => {
                let t = DateTime::from_timestamp_micros(micros)?;
                let format = if t.timestamp_subsec_millis() == 0 {
                    "%Y-%m-%dT%H:%M:%SZ"
                } else {
                    "%Y-%m-%dT%H:%M:%S%.3fZ"
                };
                Some(Value::from(t.format(format).to_string()))
            }
            StatValue::Text(s) => Some(Value::from(s)),
        }
    }
}

/// Parquet settings of every data file: zstd, row-group statistics, an offset index, bloom filters
/// on lookup columns, `sorting_columns = [eventtime]`. `eventjson`, most of the bytes, is
/// stored plain in 8 MiB pages without statistics: against 1 MiB pages that is 15% smaller
/// (similar events compress together), and min/max of whole events help no query. (Level 6
/// would save 10% more, at twice the compression time.) Unique values (event, request ids,
/// checksums) skip the dictionary attempt.
fn writer_properties() -> WriterProperties {
    let descriptor =
        ArrowSchemaConverter::new().convert(&file_schema()).expect("the event schema converts to Parquet");
    let time_leaf = descriptor
        .columns()
        .iter()
        .position(|c| c.path().string() == EVENT_TIME)
        .expect("eventtime is a leaf column");
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("valid zstd level")))
        // Min/max per row group; per page only for `eventtime`, below.
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_size_limit(PAGE_BYTES)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: i32::try_from(time_leaf).expect("few columns"),
            descending: false,
            nulls_first: false,
        }]))
        .set_created_by(format!("trawl {}", env!("CARGO_PKG_VERSION")));
    let json = ColumnPath::from(EVENT_JSON);
    props = props
        .set_column_dictionary_enabled(json.clone(), false)
        .set_column_data_page_size_limit(json.clone(), 8 << 20)
        .set_column_statistics_enabled(json, EnabledStatistics::None);
    // Sorted within a file, the event times are all but unique: deltas, not a dictionary that
    // a lookup would decode whole to read one page. It is the one column whose page statistics
    // prune; those of unsorted columns prune nothing and make the page index that every query
    // parses per file larger (lookups 0.71 to 0.52 s on 10M events without them).
    let time = ColumnPath::from(EVENT_TIME);
    props = props
        .set_column_statistics_enabled(time.clone(), EnabledStatistics::Page)
        .set_column_dictionary_enabled(time.clone(), false)
        .set_column_encoding(time, Encoding::DELTA_BINARY_PACKED);
    for column in [EVENT_ID, "requestid", EVENT_JSON_CHECKSUM] {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    // Event IDs are the largest column but `eventjson` (unique, random, 380 MB of 10M events):
    // small pages, so that a lookup reading its scattered matches' IDs (`ORDER BY eventtime,
    // eventid`) decompresses a few pages, not the column. 248 to 120 MB read, 0.4 s less
    // for `lookup-request-parameter` on 10M events; 8 MB more Parquet (0.4%).
    props = props.set_column_data_page_size_limit(ColumnPath::from(EVENT_ID), ID_PAGE_BYTES);
    for column in schema::BLOOM_FILTER_COLUMNS {
        let path = ColumnPath::new(column.split('.').map(str::to_owned).collect());
        props = props
            .set_column_bloom_filter_enabled(path.clone(), true)
            .set_column_bloom_filter_fpp(path.clone(), 0.01)
            .set_column_bloom_filter_max_ndv(path, ROW_GROUP_ROWS as u64);
    }
    props.build()
}
