//! The ingest pipeline: decode workers (one per core) feed a single writer, which groups whole
//! files into bounded waves, drops duplicates, sorts by `eventtime` within each day, writes
//! Parquet and commits one Delta transaction per wave, then records the wave's files in the
//! ledger. A killed run leaves only whole commits; a rerun skips ledgered files and drops the
//! events of half-done files that a commit already stored.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use trawl_store::DeltaTable;
use trawl_store::schema::{
    EVENT_DATE, EVENT_ID, EVENT_JSON_CHECKSUM, EVENT_TIME, RECIPIENT_ACCOUNT_ID, epoch_day,
};
use trawl_store::trail::TrailFilter;
use trawl_store::{DataFile, EventDataStore, LedgerEntry, retention};

use crate::decode::{Decoded, Problem, decode};
use crate::event::{Rules, event_key};
use crate::source::{Origin, discover_all};
use crate::{Error, Result};

/// Rows per batch handed to the Parquet writer.
const WRITE_CHUNK_ROWS: usize = 65_536;
/// The dedupe key cache is dropped and reloaded from the store past this many keys.
const KEY_CACHE_LIMIT: usize = 8_000_000;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Reject a whole file when any of its records is bad.
    pub strict: bool,
    /// Decoded JSON per commit, in bytes: bounds memory and sets the commit size.
    pub wave_bytes: u64,
    /// Decode threads.
    pub threads: usize,
    /// The current time, for the retention filter.
    pub now: DateTime<Utc>,
    /// Time range of the events to keep (`start`, `end`), and for trail layouts the accounts,
    /// regions and days to list; `concurrency` is the number of objects fetched at once.
    pub scope: TrailFilter,
}

impl IngestOptions {
    /// Defaults: lenient, 64 MiB waves (about 500 MB peak RSS), one decode thread per core,
    /// 32 objects fetched at once.
    pub fn new(now: DateTime<Utc>) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let scope = TrailFilter { concurrency: 32, ..Default::default() };
        Self { strict: false, wave_bytes: 64 << 20, threads, now, scope }
    }
}

/// Hooks for a progress display. Called from the writer task.
pub trait Progress: Send + Sync {
    /// Files and bytes (on disk) to read.
    fn start(&self, _files: usize, _bytes: u64) {}
    /// One file was decoded.
    fn file_done(&self, _bytes: u64, _events: u64) {}
    /// A wave was committed.
    fn committed(&self, _events: u64) {}
}

/// No progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// What an ingest did.
#[derive(Debug, Clone, Default)]
pub struct IngestReport {
    /// Source files named (directories expanded, trail layouts listed).
    pub files_found: usize,
    /// Trail day prefixes listed.
    pub prefixes_found: usize,
    /// Trail day prefixes whose files are all stored (or already were).
    pub prefixes_completed: usize,
    /// Prefixes of trail layouts left out: digests, Insights, Config and other services.
    pub skipped_prefixes: Vec<String>,
    /// LIST requests made to find the sources.
    pub lists: usize,
    /// The newest day of the trail day prefixes listed.
    pub newest_prefix_day: Option<chrono::NaiveDate>,
    /// Skipped because the ledger has them.
    pub files_already_ingested: usize,
    /// Read and decoded.
    pub files_read: usize,
    /// CloudTrail digest files: recognised, not events.
    pub digest_files: usize,
    /// Files that could not be read, or that `--strict` rejected (nothing stored from them).
    pub rejected_files: Vec<(String, String)>,
    /// Events found in the files.
    pub events_read: u64,
    /// Events newly stored.
    pub events_stored: u64,
    /// Events already stored (same eventID and recipient account), or repeated in the input.
    pub duplicates: u64,
    /// Left out by the store's advanced event selectors.
    pub filtered_by_selectors: u64,
    /// Left out because their eventTime is older than the retention.
    pub filtered_by_retention: u64,
    /// Left out because their eventTime is outside the `start`..`end` range asked for.
    pub filtered_by_time: u64,
    /// Insights events: they belong in an Insights store, not a CloudTrail events store.
    pub insight_events: u64,
    /// Records skipped because they are malformed.
    pub bad_records: u64,
    /// Trail day prefixes with a rejected file.
    failed_prefixes: HashSet<String>,
    /// Every bad record and framing problem, located.
    pub problems: Vec<Problem>,
    /// Bytes read from disk (compressed where the files are).
    pub bytes_read: u64,
    /// Bytes of JSON decoded (uncompressed).
    pub json_bytes: u64,
    /// Bytes of Parquet written.
    pub bytes_written: u64,
    /// Delta commits made.
    pub commits: usize,
    /// Wall time.
    pub elapsed: Duration,
}

impl IngestReport {
    /// Events stored per second of wall time.
    pub fn events_per_second(&self) -> f64 {
        self.events_stored as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// True when every record was stored or deliberately left out.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.rejected_files.is_empty()
    }
}

/// Ingests `inputs` (local files and directories, `s3://` locations) into `store`.
pub async fn ingest(
    store: &EventDataStore,
    inputs: &[String],
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    let started = Instant::now();
    let config = store.config();
    if !config.ingestion_enabled {
        return Err(Error::IngestionStopped(config.name.clone()));
    }
    let selectors = Arc::new(config.selector_set()?);
    let cutoff = retention::cutoff(options.now, config.retention_days);
    let mut report = IngestReport::default();

    let found = discover_all(inputs, &options.scope).await?;
    report.files_found = found.files.len();
    report.prefixes_found = found.day_prefixes;
    report.skipped_prefixes = found.skipped_prefixes;
    report.lists = found.lists;
    report.newest_prefix_day = found.newest_day;
    let ledger = store.ledger().await?;
    let todo: Vec<_> = found.files.into_iter().filter(|f| !ledger.contains(&f.id)).collect();
    report.files_already_ingested = report.files_found - todo.len();
    progress.start(todo.len(), todo.iter().map(|f| f.id.size).sum());

    // Fetch (many objects at once, or one file per thread from disk), decode on the blocking
    // pool (one file per thread), in order, into the writer.
    let threads = options.threads.max(1);
    let remote = todo.iter().any(|f| matches!(f.origin, Origin::Object(..)));
    let fetches = if remote { options.scope.concurrency.max(1) } else { threads };
    let window = (options.scope.start, options.scope.end);
    let strict = options.strict;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Decoded>(threads * 2);
    let producer = tokio::spawn(async move {
        let mut decoded = futures::stream::iter(todo)
            .map(|source| async move {
                let raw = source.fetch().await;
                (source, raw)
            })
            .buffered(fetches)
            .map(|(source, raw)| {
                let selectors = selectors.clone();
                tokio::task::spawn_blocking(move || {
                    let rules = Rules { selectors: &selectors, retention_cutoff: cutoff, window };
                    decode(source, raw, &rules, strict)
                })
            })
            .buffered(threads);
        while let Some(d) = decoded.next().await {
            let d = d.map_err(|e| Error::Source { path: "decode worker".into(), reason: e.to_string() })?;
            if tx.send(d).await.is_err() {
                break;
            }
        }
        Ok::<_, Error>(())
    });

    let result = write_all(store, &mut rx, options, progress, &mut report).await;
    drop(rx);
    let produced = producer.await;
    result?;
    produced.map_err(|e| Error::Source { path: "ingest pipeline".into(), reason: e.to_string() })??;
    report.prefixes_completed = report.prefixes_found.saturating_sub(report.failed_prefixes.len());
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn write_all(
    store: &EventDataStore,
    rx: &mut tokio::sync::mpsc::Receiver<Decoded>,
    options: &IngestOptions,
    progress: &dyn Progress,
    report: &mut IngestReport,
) -> Result<()> {
    let mut table = store.table().await?;
    let mut keys = KeyCache::default();
    let mut wave: Vec<Decoded> = Vec::new();
    let mut wave_bytes = 0u64;
    while let Some(decoded) = rx.recv().await {
        let c = decoded.counts;
        report.files_read += 1;
        report.bytes_read += decoded.source.id.size;
        report.json_bytes += decoded.json_bytes;
        report.events_read += c.events;
        report.filtered_by_selectors += c.selectors;
        report.filtered_by_retention += c.retention;
        report.filtered_by_time += c.window;
        report.insight_events += c.insights;
        report.bad_records += c.bad_records;
        report.digest_files += usize::from(c.digest);
        report.problems.extend(decoded.problems.iter().cloned());
        progress.file_done(decoded.source.id.size, c.events);
        if let Some(reason) = &decoded.rejected {
            report.rejected_files.push((decoded.source.id.location.clone(), reason.clone()));
            report.failed_prefixes.extend(decoded.source.day_prefix.clone());
            continue;
        }
        wave_bytes += decoded.json_bytes;
        wave.push(decoded);
        if wave_bytes >= options.wave_bytes {
            commit_wave(store, &mut table, &mut keys, std::mem::take(&mut wave), progress, report).await?;
            wave_bytes = 0;
        }
    }
    if !wave.is_empty() {
        commit_wave(store, &mut table, &mut keys, wave, progress, report).await?;
    }
    Ok(())
}

/// Dedupes, sorts and writes one wave of whole files, then commits it with its ledger.
async fn commit_wave(
    store: &EventDataStore,
    table: &mut DeltaTable,
    keys: &mut KeyCache,
    wave: Vec<Decoded>,
    progress: &dyn Progress,
    report: &mut IngestReport,
) -> Result<()> {
    let batches: Vec<(&RecordBatch, &Vec<u128>)> =
        wave.iter().filter_map(|d| d.batch.as_ref().map(|(b, k)| (b, k))).collect();
    let columns = |b: &RecordBatch| {
        let dates =
            b.column_by_name(EVENT_DATE).expect("eventdate column").as_primitive::<Date32Type>().clone();
        let times = b
            .column_by_name(EVENT_TIME)
            .expect("eventtime column")
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
        (dates, times)
    };
    let days: BTreeSet<i32> =
        batches.iter().flat_map(|(b, _)| columns(b).0.values().iter().copied().collect::<Vec<_>>()).collect();
    // Another writer may have committed since: its events must count as stored.
    table.update_state().await.map_err(trawl_store::Error::from)?;
    if table.version() != keys.version {
        keys.clear();
    }
    keys.ensure(store, table, &days).await?;

    // (date, time, batch, row) of every new event; file and record order break ties.
    let mut order: Vec<(i32, i64, usize, usize)> = Vec::new();
    for (bi, (batch, batch_keys)) in batches.iter().enumerate() {
        let (dates, times) = columns(batch);
        for row in 0..batch.num_rows() {
            let day = dates.value(row);
            if keys.insert(day, batch_keys[row]) {
                order.push((day, times.value(row), bi, row));
            } else {
                report.duplicates += 1;
            }
        }
    }
    order.sort_unstable();

    let mut writer = store.writer(table)?;
    let refs: Vec<&RecordBatch> = batches.iter().map(|(b, _)| *b).collect();
    for day in order.chunk_by(|a, b| a.0 == b.0) {
        for chunk in day.chunks(WRITE_CHUNK_ROWS) {
            let indices: Vec<(usize, usize)> = chunk.iter().map(|&(_, _, b, r)| (b, r)).collect();
            writer.write(interleave_record_batch(&refs, &indices)?).await?;
        }
    }
    let mut stored_per_batch: HashMap<usize, u64> = HashMap::new();
    for &(_, _, b, _) in &order {
        *stored_per_batch.entry(b).or_default() += 1;
    }
    let mut bi = 0;
    let mut ledger = Vec::with_capacity(wave.len());
    for d in &wave {
        let stored = if d.batch.is_some() {
            bi += 1;
            stored_per_batch.get(&(bi - 1)).copied().unwrap_or(0)
        } else {
            0
        };
        // A file with events outside the time range asked for is read again by a wider run.
        if d.counts.window == 0 {
            ledger.push(LedgerEntry { source: d.source.id.clone(), events: stored });
        }
    }
    let outcome = store.commit(table, &mut writer, ledger).await?;
    keys.version = table.version();
    report.events_stored += order.len() as u64;
    report.bytes_written += outcome.bytes;
    report.commits += usize::from(outcome.version.is_some());
    progress.committed(order.len() as u64);
    Ok(())
}

/// The dedupe keys of the days a run touches, loaded from the store on first use.
#[derive(Default)]
struct KeyCache {
    days: HashMap<i32, HashSet<u128>>,
    total: usize,
    /// The table version the keys are of.
    version: Option<u64>,
}

impl KeyCache {
    async fn ensure(
        &mut self,
        store: &EventDataStore,
        table: &DeltaTable,
        days: &BTreeSet<i32>,
    ) -> Result<()> {
        if self.total > KEY_CACHE_LIMIT {
            self.clear();
        }
        let missing: HashSet<i32> = days.iter().copied().filter(|d| !self.days.contains_key(d)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let files: Vec<DataFile> =
            store.files(table)?.into_iter().filter(|f| missing.contains(&epoch_day(f.date))).collect();
        for &day in &missing {
            self.days.insert(day, HashSet::new());
        }
        let columns = [EVENT_ID, RECIPIENT_ACCOUNT_ID, EVENT_JSON_CHECKSUM];
        for file in &files {
            let day = epoch_day(file.date);
            let batches: Vec<RecordBatch> =
                store.read_files(table, std::slice::from_ref(file), &columns).try_collect().await?;
            let set = self.days.entry(day).or_default();
            for b in batches {
                let ids = b.column(0).as_string::<i32>();
                let accounts = b.column(1).as_string::<i32>();
                let sums = b.column(2).as_string::<i32>();
                for row in 0..b.num_rows() {
                    let id = ids.is_valid(row).then(|| ids.value(row));
                    let account = accounts.is_valid(row).then(|| accounts.value(row));
                    set.insert(event_key(account, id, sums.value(row)));
                    self.total += 1;
                }
            }
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.days.clear();
        self.total = 0;
    }

    /// Records `key` for `day`; false when it was already there.
    fn insert(&mut self, day: i32, key: u128) -> bool {
        let inserted = self.days.entry(day).or_default().insert(key);
        self.total += usize::from(inserted);
        inserted
    }
}
