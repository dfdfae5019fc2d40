//! New data files: a commit's rows, grouped by `eventdate` and sorted by `eventtime`, encoded
//! into Parquet in memory with the columns spread over several threads, then uploaded and
//! described to Delta by [`crate::EventDataStore::commit`].
//!
//! Ingest is bound by this encoding once decoding runs on every core: with one thread per file
//! it kept 1.55 of 2 cores busy on 10 million events. Columns are independent until the row
//! group is assembled, so threads take whole columns (with their leaves) of all the row groups
//! of a commit from one queue, and each file is assembled in column order afterwards: the bytes
//! are the same as a one-thread writer's. (delta-rs's `RecordBatchWriter`, used before, encodes
//! on one thread; the Delta statistics it wrote are computed here the same way, for
//! [`STATS_COLUMNS`].)

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryViewArray, NullBufferBuilder, RecordBatch, StringArray, make_view,
};
use arrow::buffer::Buffer;
use arrow::compute::interleave;
use arrow::datatypes::{DataType, Date32Type, Field, FieldRef};
use chrono::{DateTime, NaiveDate};
use deltalake::ObjectStore;
use deltalake::kernel::Add;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, ArrowWriterOptions, compute_leaves,
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
/// Rows a column task gathers and encodes at a time.
const CHUNK_ROWS: usize = 8 * 1024;
/// Files uploaded at once by a commit.
const UPLOADS: usize = 8;

/// Writes sorted rows into new Parquet files, held in memory until
/// [`crate::EventDataStore::commit`] uploads them and commits them in one Delta transaction.
pub struct StoreWriter {
    props: WriterProperties,
    /// Makes the column writers of row groups (the same for every file), by the number of
    /// distinct values their bloom filters are made for.
    factories: Mutex<HashMap<usize, Arc<ArrowRowGroupWriterFactory>>>,
    /// Parquet leaves of each file column.
    leaves: Vec<usize>,
    /// The file schema's fields, and for each the index of its column in the event schema
    /// (batches carry `eventdate` too).
    fields: Vec<(FieldRef, usize)>,
    /// `eventjson` as binary views, the field its gathered rows' levels are computed for (see
    /// [`gather_strings`]).
    json_view: FieldRef,
    /// Position of `eventdate` in the event schema.
    date_column: usize,
    threads: usize,
    /// Nanoseconds per 1,024 rows each column took when last encoded: the costliest tasks are
    /// started first.
    cost: Vec<AtomicU64>,
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

/// The rows of a row group, and its columns as they are encoded: the writers of each file
/// column (one per Parquet leaf), made when the group's first task starts, then their closed
/// chunks.
struct Group<'r> {
    date: NaiveDate,
    rows: &'r [(usize, usize)],
    writers: Mutex<Option<Vec<Vec<ArrowColumnWriter>>>>,
    chunks: Vec<Mutex<Vec<ArrowColumnChunk>>>,
}

/// A file being assembled from closed row groups.
struct OpenFile {
    date: NaiveDate,
    writer: SerializedFileWriter<Vec<u8>>,
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
        // Until measured, `eventjson` is taken for the costliest.
        let cost = fields.iter().map(|(f, _)| AtomicU64::new(u64::from(f.name() == EVENT_JSON))).collect();
        let descriptor =
            ArrowSchemaConverter::new().convert(&file).expect("the event schema converts to Parquet");
        let mut leaves = vec![0; fields.len()];
        for leaf in 0..descriptor.num_columns() {
            leaves[descriptor.get_column_root_idx(leaf)] += 1;
        }
        Self {
            props: writer_properties(ROW_GROUP_ROWS),
            factories: Mutex::default(),
            leaves,
            fields,
            json_view: Arc::new(Field::new(EVENT_JSON, DataType::BinaryView, false)),
            date_column: events.index_of(EVENT_DATE).expect("eventdate is an event column"),
            threads: rayon::current_num_threads(),
            cost,
            finished: Vec::new(),
            rows: 0,
        }
    }
}

impl StoreWriter {
    /// Rows of the files not yet uploaded.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of the finished files not yet uploaded.
    pub fn bytes(&self) -> usize {
        self.finished.iter().map(|f| f.bytes.len()).sum()
    }

    /// Writes the rows `rows` (batch, row) of `batches` (of the event schema), in this order,
    /// into new files: one for each run of rows of one `eventdate` (more past
    /// [`TARGET_FILE_BYTES`]). Pass all the rows of a commit at once, grouped by date and
    /// sorted by `eventtime` within it: rows of alternating dates, or of one date over several
    /// calls, make a file of each run.
    ///
    /// The columns of all the row groups are tasks of one queue, a group's costliest first,
    /// taken by the threads of rayon's pool; each task gathers its rows chunk by chunk, encodes
    /// and closes its column. The row groups are then assembled in column order, so the bytes
    /// are those of a one-thread writer. With one queue, a thread that is done with a group's
    /// small columns goes on to the next group instead of waiting for the slowest column
    /// (`eventjson`); and as groups are taken in order, the column writers of only about as
    /// many groups as threads are in memory at a time (each holds page buffers and zstd
    /// contexts for ~80 leaves).
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
        // Row groups: runs of one date, cut at ROW_GROUP_ROWS.
        let mut plan: Vec<(NaiveDate, &[(usize, usize)])> = Vec::new();
        let mut rest = rows;
        while let Some(first) = rest.first() {
            let day = date_of(first);
            let run = rest.iter().position(|row| date_of(row) != day).unwrap_or(rest.len());
            let date = schema::date_of_epoch_day(day)
                .ok_or_else(|| Error::Write(format!("eventdate {day} is out of range")))?;
            let (run, next) = rest.split_at(run);
            plan.extend(run.chunks(ROW_GROUP_ROWS).map(|group| (date, group)));
            rest = next;
        }
        let groups: Vec<Group> = plan
            .into_iter()
            .map(|(date, rows)| {
                let chunks = self.fields.iter().map(|_| Mutex::default()).collect();
                Group { date, rows, writers: Mutex::new(None), chunks }
            })
            .collect();
        self.encode(&groups, batches)?;
        let mut open: Option<OpenFile> = None;
        for group in groups {
            if open
                .as_ref()
                .is_some_and(|f| f.date != group.date || f.writer.bytes_written() >= TARGET_FILE_BYTES)
            {
                self.finish(open.take())?;
            }
            let file = match &mut open {
                Some(file) => file,
                None => open.insert(self.open_file(group.date)?),
            };
            let mut row_group = file.writer.next_row_group()?;
            for column in group.chunks {
                for chunk in column.into_inner().map_err(|_| poisoned())? {
                    chunk.append_to_row_group(&mut row_group)?;
                }
            }
            row_group.close()?;
            self.rows += group.rows.len() as u64;
        }
        self.finish(open)
    }

    /// Encodes and closes every column of `groups`, on the pool's threads.
    fn encode(&self, groups: &[Group], batches: &[&RecordBatch]) -> Result<()> {
        let columns = self.fields.len();
        // (group, column): in group order, a group's costliest columns first, except that the
        // costliest column of each group (`eventjson`) is started before the other columns of
        // the group before it, so that the last tasks are short ones.
        let cost: Vec<u64> = self.cost.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let heaviest = (0..columns).max_by_key(|&c| cost[c]).unwrap_or(0);
        let mut tasks: Vec<(usize, usize)> =
            (0..groups.len()).flat_map(|g| (0..columns).map(move |c| (g, c))).collect();
        tasks.sort_by_key(|&(g, c)| {
            let slot = if c == heaviest { (g.saturating_sub(1), false) } else { (g, true) };
            (slot, std::cmp::Reverse(cost[c]), g)
        });
        let next = AtomicUsize::new(0);
        (0..self.threads.min(tasks.len())).into_par_iter().try_for_each(|_| {
            while let Some(&(g, c)) = tasks.get(next.fetch_add(1, Ordering::Relaxed)) {
                let started = Instant::now();
                let group = &groups[g];
                let (field, source) = &self.fields[c];
                let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(*source).as_ref()).collect();
                // `eventjson` is gathered as views, the other columns copied.
                let json: Option<Vec<&StringArray>> = if field.name() == EVENT_JSON {
                    arrays.iter().map(|a| a.as_string_opt()).collect()
                } else {
                    None
                };
                let mut writers = {
                    let mut made = group.writers.lock().map_err(|_| poisoned())?;
                    let all = match &mut *made {
                        Some(all) => all,
                        None => made.insert(self.column_writers(group.rows.len())?),
                    };
                    std::mem::take(&mut all[c])
                };
                for rows in group.rows.chunks(CHUNK_ROWS) {
                    let (field, column) = match &json {
                        Some(json) => (&self.json_view, Arc::new(gather_strings(json, rows)?) as ArrayRef),
                        None => (field, interleave(&arrays, rows)?),
                    };
                    for (leaf, writer) in compute_leaves(field, &column)?.iter().zip(writers.iter_mut()) {
                        writer.write(leaf)?;
                    }
                }
                let closed =
                    writers.into_iter().map(ArrowColumnWriter::close).collect::<Result<Vec<_>, _>>()?;
                *group.chunks[c].lock().map_err(|_| poisoned())? = closed;
                let per_1024 = (started.elapsed().as_nanos() << 10) / group.rows.len().max(1) as u128;
                self.cost[c].store(u64::try_from(per_1024).unwrap_or(u64::MAX), Ordering::Relaxed);
            }
            Ok(())
        })
    }

    /// Column writers for a new row group of `rows` rows, grouped by file column. parquet
    /// allocates each bloom filter for the most distinct values it is told to expect, then
    /// folds it to the size its values need when the column is closed: a row group cannot
    /// have more distinct values than rows, so the filters are made for that (a power of two).
    /// For 128Ki values they took 256 KiB each, seven per row group, zeroed and then scanned.
    fn column_writers(&self, rows: usize) -> Result<Vec<Vec<ArrowColumnWriter>>> {
        let ndv = rows.next_power_of_two().clamp(1024, ROW_GROUP_ROWS);
        let factory = match self.factories.lock().map_err(|_| poisoned())?.entry(ndv) {
            Entry::Occupied(made) => made.get().clone(),
            Entry::Vacant(slot) => slot.insert(Arc::new(parquet_writer(writer_properties(ndv))?.1)).clone(),
        };
        // The row group index only matters to encryption, which the store does not use.
        let mut leaves = factory.create_column_writers(0)?.into_iter();
        Ok(self.leaves.iter().map(|&n| leaves.by_ref().take(n).collect()).collect())
    }

    fn open_file(&self, date: NaiveDate) -> Result<OpenFile> {
        Ok(OpenFile { date, writer: parquet_writer(self.props.clone())?.0 })
    }

    fn finish(&mut self, file: Option<OpenFile>) -> Result<()> {
        let Some(mut file) = file else { return Ok(()) };
        let metadata = file.writer.finish()?;
        // `finish` wrote the footer and flushed; `into_inner` would write a second footer.
        let bytes = std::mem::take(file.writer.inner_mut());
        self.finished.push(FinishedFile { date: file.date, bytes, metadata });
        Ok(())
    }

    /// Uploads the finished files under `objects` (the table root) and returns their Delta
    /// actions.
    pub(crate) async fn upload(&mut self, objects: Arc<dyn ObjectStore>) -> Result<Vec<Add>> {
        let files = std::mem::take(&mut self.finished);
        self.rows = 0;
        futures::stream::iter(files)
            .map(|file| {
                let objects = objects.clone();
                async move {
                    let date = file.date.format("%Y-%m-%d").to_string();
                    let name =
                        format!("{EVENT_DATE}={date}/part-00000-{}-c000.zstd.parquet", uuid::Uuid::new_v4());
                    let size = file.bytes.len();
                    let blocks = crate::blocks::tag_of(&file.bytes);
                    let sha256 = crate::chain::sha256_hex(&file.bytes);
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
                        tags: Some(HashMap::from([
                            (crate::blocks::TAG.to_owned(), Some(blocks)),
                            (crate::chain::SHA256_TAG.to_owned(), Some(sha256)),
                        ])),
                        ..Default::default()
                    })
                }
            })
            .buffer_unordered(UPLOADS)
            .try_collect()
            .await
    }
}

/// The strings at `rows` (array, row) of `arrays`, as views into the arrays' own buffers.
/// `interleave` copies every string, and the column writer then copies it into its page: for
/// `eventjson`, 13 GB of 10M events copied twice. This writes 16 bytes a row instead. For short
/// strings a view costs as much as the copy (measured on every string column), hence only
/// `eventjson`. Binary views: the bytes were checked as UTF-8 when the strings were built, and
/// the Parquet column's type is the file schema's, whatever the array's.
fn gather_strings(arrays: &[&StringArray], rows: &[(usize, usize)]) -> Result<BinaryViewArray> {
    let nullable = arrays.iter().any(|a| a.null_count() > 0);
    let mut nulls = NullBufferBuilder::new(if nullable { rows.len() } else { 0 });
    let mut views = Vec::with_capacity(rows.len());
    for &(a, r) in rows {
        let array = arrays[a];
        if nullable {
            nulls.append(array.is_valid(r));
        }
        let (start, end) = (array.value_offsets()[r], array.value_offsets()[r + 1]);
        let bytes = &array.value_data()[start as usize..end as usize];
        // (A null's view is never read.) Offsets are i32, so positive; a commit has far fewer
        // than 2^32 arrays.
        views.push(make_view(bytes, a as u32, start as u32));
    }
    let buffers: Vec<Buffer> = arrays.iter().map(|a| a.values().clone()).collect();
    Ok(BinaryViewArray::try_new(views.into(), buffers, nulls.finish())?)
}

/// A writer of a file of the file schema into memory, and its maker of column writers.
/// Without the Arrow schema in the file's metadata (`ARROW:schema`): 7.7 KB a file, 1.4% of
/// the 1M set's store of small daily files, and read by no query: DataFusion skips it
/// (`skip_metadata`), the store's schema is Delta's, and other readers take the types from the
/// Parquet schema.
fn parquet_writer(
    props: WriterProperties,
) -> Result<(SerializedFileWriter<Vec<u8>>, ArrowRowGroupWriterFactory)> {
    let options = ArrowWriterOptions::new().with_properties(props).with_skip_arrow_metadata(true);
    Ok(ArrowWriter::try_new_with_options(Vec::new(), file_schema(), options)?.into_serialized_writer()?)
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

/// Parquet settings of every data file: zstd (level 1 for random IDs), row-group statistics,
/// an offset index, bloom filters on lookup columns (made for `bloom_filter_values` distinct
/// values, folded when closed), `sorting_columns = [eventtime]`. `eventjson`, most of the
/// bytes, is stored in 8 MiB pages without statistics: against 1 MiB pages that is 15%
/// smaller (similar events compress together), and min/max of whole events help no query. It
/// is compressed at zstd level 6, 11% smaller than at level 3 for 19-26% more ingest time on
/// 10M events: that keeps the store below DuckDB 2.0's zstd Parquet of the same events
/// (BENCHMARKS.md).
fn writer_properties(bloom_filter_values: usize) -> WriterProperties {
    let descriptor =
        ArrowSchemaConverter::new().convert(&file_schema()).expect("the event schema converts to Parquet");
    let time_leaf = descriptor
        .columns()
        .iter()
        .position(|c| c.path().string() == EVENT_TIME)
        .expect("eventtime is a leaf column");
    let mut props = WriterProperties::builder()
        .set_compression(zstd(3))
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
    // Unique values (events, their IDs and checksums) skip the dictionary attempt, and their
    // lengths go apart from their bytes (DELTA_LENGTH_BYTE_ARRAY): interleaved with random hex,
    // each length cost zstd about a byte. 4.9 MiB (2.5%) less Parquet for 1M events, 1.3 MiB of
    // it `eventjson`; DuckDB 1.5 and 2.0 read it.
    for column in std::iter::once(EVENT_JSON).chain(RANDOM_HEX) {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_encoding(ColumnPath::from(column), Encoding::DELTA_LENGTH_BYTE_ARRAY);
    }
    let json = ColumnPath::from(EVENT_JSON);
    props = props
        .set_column_data_page_size_limit(json.clone(), 8 << 20)
        .set_column_compression(json.clone(), zstd(6))
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
    // Random hex: zstd finds no matches, and its level 3 searches for them at 200 MB/s where
    // level 1 compresses at 650 MB/s, to 3% fewer bytes. 1.5 GB of 10M events, 3% of the
    // ingest's CPU.
    for column in RANDOM_HEX {
        props = props.set_column_compression(ColumnPath::from(column), zstd(1));
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
            .set_column_bloom_filter_max_ndv(path, bloom_filter_values as u64);
    }
    props.build()
}

/// Columns of unique random hex: event and request IDs, checksums.
const RANDOM_HEX: [&str; 3] = [EVENT_ID, "requestid", EVENT_JSON_CHECKSUM];

/// zstd at `level`, one of the constant levels above (1 to 22 are valid).
fn zstd(level: i32) -> Compression {
    Compression::ZSTD(ZstdLevel::try_new(level).expect("a valid zstd level"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray, new_null_array,
    };
    use arrow::datatypes::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// A batch of the event schema: `eventtime` and `eventjson` numbered from `first`, on `day`
    /// (days since 1970), the other columns null or constant.
    fn batch(day: i32, first: i64, rows: usize) -> RecordBatch {
        let schema = event_schema();
        let numbers = first..first + rows as i64;
        let columns = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match (f.name().as_str(), f.data_type()) {
                    (EVENT_TIME, _) => Arc::new(
                        TimestampMicrosecondArray::from_iter_values(numbers.clone()).with_timezone("UTC"),
                    ),
                    (EVENT_DATE, _) => Arc::new(Date32Array::from(vec![day; rows])),
                    (EVENT_JSON, _) => {
                        Arc::new(StringArray::from_iter_values(numbers.clone().map(|n| n.to_string())))
                    }
                    (_, DataType::Utf8) if !f.is_nullable() => Arc::new(StringArray::from(vec!["x"; rows])),
                    (_, DataType::Int64) if !f.is_nullable() => Arc::new(Int64Array::from(vec![0; rows])),
                    (_, data_type) => new_null_array(data_type, rows),
                }
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn strings_gathered_as_views() {
        let long = "a string longer than a view's twelve inline bytes";
        let a = StringArray::from(vec![Some("short"), None, Some(long)]);
        // Sliced: offsets that do not start at zero.
        let b = StringArray::from(vec![Some("skipped"), Some(long), Some(""), Some("tiny")]).slice(1, 3);
        let rows = [(1, 2), (0, 2), (0, 1), (1, 0), (0, 0), (1, 1)];
        let gathered = gather_strings(&[&a, &b], &rows).unwrap();
        let values: Vec<Option<&[u8]>> = gathered.iter().collect();
        let expected = [Some("tiny"), Some(long), None, Some(long), Some("short"), Some("")];
        assert_eq!(values, expected.map(|v| v.map(str::as_bytes)));
        // Without nulls, no null buffer.
        assert!(gather_strings(&[&b], &[(0, 0), (0, 2)]).unwrap().nulls().is_none());
    }

    #[test]
    fn row_groups_files_and_row_order() {
        // Day 100 spans two batches and more than a row group; day 101 is short.
        let (a, b, c) =
            (batch(100, 0, ROW_GROUP_ROWS - 7), batch(100, 1_000_000, 20), batch(101, 2_000_000, 3));
        let batches = [&a, &b, &c];
        // Rows of day 100 interleaved from both batches by time, then day 101 backwards.
        let mut rows: Vec<(usize, usize)> = (0..a.num_rows()).map(|r| (0, r)).collect();
        rows.splice(10..10, (0..b.num_rows()).map(|r| (1, r)));
        rows.extend((0..c.num_rows()).rev().map(|r| (2, r)));
        let mut writer = StoreWriter::default();
        writer.write_rows(&batches, &rows).unwrap();
        assert_eq!(writer.rows(), rows.len() as u64);
        assert_eq!(writer.finished.len(), 2);

        let json_of = |&(b, r): &(usize, usize)| {
            batches[b].column_by_name(EVENT_JSON).unwrap().as_string::<i32>().value(r).to_owned()
        };
        let mut expected = rows.iter().map(json_of);
        for (file, (date, groups)) in
            writer.finished.iter().zip([("1970-04-11", vec![ROW_GROUP_ROWS, 13]), ("1970-04-12", vec![3])])
        {
            assert_eq!(file.date.to_string(), date);
            let sizes: Vec<usize> =
                file.metadata.row_groups().iter().map(|g| g.num_rows() as usize).collect();
            assert_eq!(sizes, groups);
            let stats = delta_stats(&file.metadata);
            assert_eq!(stats["numRecords"], groups.iter().sum::<usize>());
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file.bytes.clone()))
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let json = batch.column_by_name(EVENT_JSON).unwrap().as_string::<i32>();
                for value in json.iter() {
                    assert_eq!(value.map(str::to_owned), expected.next());
                }
            }
        }
        assert_eq!(expected.next(), None);
    }
}
