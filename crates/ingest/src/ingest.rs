//! The ingest pipeline: decode workers (one per core) turn units of consecutive files into
//! batches and feed a single writer, which groups whole files into bounded waves and drops
//! duplicates; a task of its own sorts each wave by `eventtime` within each day, writes Parquet
//! and commits one Delta transaction, then records the wave's files in the ledger, while the
//! next wave is decoded. A killed run leaves only whole commits; a rerun skips ledgered files
//! and drops the events of half-done files that a commit already stored.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, PrimitiveArray, RecordBatch};
use arrow::datatypes::{Date32Type, TimestampMicrosecondType};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use trawl_store::Snapshot;
use trawl_store::schema::{
    EVENT_DATE, EVENT_ID, EVENT_JSON_CHECKSUM, EVENT_TIME, RECIPIENT_ACCOUNT_ID, epoch_day,
};
use trawl_store::trail::TrailFilter;
use trawl_store::{CommitOutcome, DataFile, EventDataStore, LedgerEntry, StoreWriter, retention};

use crate::decode::{Decoded, Fetched, FileDecoded, Problem, decode, decode_stream};
use crate::event::{Rules, event_key};
use crate::source::{Origin, SourceFile, discover_all};
use crate::{Error, Result};

/// A decode unit groups consecutive files up to this many bytes on disk ...
const UNIT_BYTES: u64 = 512 << 10;
/// ... or this many files.
const UNIT_FILES: usize = 256;
/// The dedupe key cache is dropped and reloaded from the store past this many keys (about 40
/// bytes each). Files come in delivery order, so a run needs the keys of its last few days;
/// a late file of an older day reloads that day's keys.
const KEY_CACHE_LIMIT: usize = 1_000_000;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Reject a whole file when any of its records is bad.
    pub strict: bool,
    /// Decoded JSON per commit, in bytes: bounds memory and sets the commit size.
    pub wave_bytes: u64,
    /// Decode threads.
    pub threads: usize,
    /// A checkpoint is written at every version that is a multiple of this, and the run goes
    /// on from it: each commit of delta-rs takes longer the more commits there are since the
    /// last checkpoint. On 10M events (357 commits), every 64 versions: the commits took 8.6 s
    /// in all against 17.8 s with none, and the writer waited 2.8 s for them against 15.0 s;
    /// each checkpoint took 64-98 ms.
    pub checkpoint_every: u64,
    /// The most text one file may decompress to; a file past it is reported and skipped.
    pub max_text_bytes: u64,
    /// Large files are decoded this many bytes of text at a time (see `segment`): memory
    /// follows this, not the largest file.
    pub segment_bytes: usize,
    /// The current time, for the retention filter.
    pub now: DateTime<Utc>,
    /// With `--validate`: the log files CloudTrail's digests validate (by their key from
    /// `AWSLogs/` on), each with the digest that lists it. Only these are stored; the others are
    /// reported in [`IngestReport::unvalidated`].
    pub validated: Option<Arc<HashMap<String, String>>>,
    /// Time range of the events to keep (`start`, `end`), and for trail layouts the accounts,
    /// regions and days to list; `concurrency` is the number of objects fetched at once.
    pub scope: TrailFilter,
}

impl IngestOptions {
    /// Defaults: lenient, 32 MiB waves (two are in memory: one committing while the next is
    /// decoded; 640 to 700 MiB peak RSS on 10M events), one decode thread per core, a checkpoint
    /// every 64 versions, 32 objects fetched at once.
    pub fn new(now: DateTime<Utc>) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let scope = TrailFilter { concurrency: 32, ..Default::default() };
        Self {
            strict: false,
            wave_bytes: 32 << 20,
            threads,
            checkpoint_every: 64,
            max_text_bytes: crate::source::MAX_TEXT_BYTES,
            segment_bytes: crate::segment::SEGMENT_BYTES,
            validated: None,
            now,
            scope,
        }
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
    /// With `--validate`: log files left out because no valid digest lists them.
    pub unvalidated: Vec<String>,
    /// Files that could not be read, or that `--strict` rejected (nothing stored from them).
    pub rejected_files: Vec<crate::Skipped>,
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
        self.problems.is_empty() && self.rejected_files.is_empty() && self.unvalidated.is_empty()
    }
}

/// Ingests `inputs` (local files and directories, `s3://` locations) into `store`.
pub async fn ingest(
    store: &EventDataStore,
    inputs: &[String],
    options: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestReport> {
    // Failures of the store's own objects name the store's location (access denied ...).
    run(store, inputs, options, progress).await.map_err(|e| e.at(&store.url()))
}

async fn run(
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
    report.rejected_files = found.unreadable;
    let table = store.snapshot().await?;
    let ledger = store.ledger(&table).await?;
    let mut todo: Vec<_> = found.files.into_iter().filter(|f| !ledger.contains(&f.id)).collect();
    report.files_already_ingested = report.files_found - todo.len();
    if let Some(valid) = &options.validated {
        // Digests and Insights files are no events: they are not left out for want of one.
        let (kept, left): (Vec<_>, Vec<_>) = todo.into_iter().partition(|f| {
            !f.id.location.contains("/CloudTrail/")
                || trail_key(&f.id.location).is_some_and(|k| valid.contains_key(k))
        });
        todo = kept;
        report.unvalidated = left.into_iter().map(|f| f.id.location).collect();
    }
    progress.start(todo.len(), todo.iter().map(|f| f.id.size).sum());

    // Units of consecutive files are fetched (many objects at once) or read from disk, and
    // decoded on the blocking pool (a unit per thread), in order, into the writer.
    let threads = options.threads.max(1);
    let fetches = options.scope.concurrency.max(1);
    let window = (options.scope.start, options.scope.end);
    let strict = options.strict;
    let max_text = options.max_text_bytes;
    let segment = options.segment_bytes.max(1);
    let streamed = move |file: &SourceFile| is_streamed(file, segment, strict);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Decoded>(threads);
    let producer = tokio::spawn(async move {
        let mut decoded = futures::stream::iter(units(todo, streamed))
            .map(|unit| {
                // Objects are fetched here, many at once; local files are read by the decoder.
                futures::stream::iter(unit)
                    .map(|source| async move {
                        let raw = match source.origin {
                            Origin::File(_) => None,
                            Origin::Object(..) => Some(source.fetch().await),
                        };
                        (source, raw)
                    })
                    .buffered(fetches)
                    .collect::<Vec<_>>()
            })
            .buffered(2)
            .map(|mut unit| {
                let selectors = selectors.clone();
                async move {
                    // A large file is decoded a segment at a time, each handed on as it is done.
                    let large = unit.len() == 1 && streamed(&unit[0].0);
                    let Some((source, raw)) = unit.pop_if(|_| large) else {
                        let task = tokio::task::spawn_blocking(move || {
                            let rules = Rules { selectors: &selectors, retention_cutoff: cutoff, window };
                            decode(unit, &rules, strict, max_text)
                        });
                        return task.await.map(Decoding::Done);
                    };
                    let (segments, received) = tokio::sync::mpsc::channel::<Decoded>(1);
                    tokio::task::spawn_blocking(move || {
                        let rules = Rules { selectors: &selectors, retention_cutoff: cutoff, window };
                        let send = |d| segments.blocking_send(d).is_ok();
                        match open(&source, raw) {
                            Ok(reader) => decode_stream(source, reader, &rules, max_text, segment, send),
                            Err(reason) => {
                                let files = vec![FileDecoded::rejected(source, reason)];
                                send(Decoded { files, batch: None });
                            }
                        }
                    });
                    Ok(Decoding::Stream(received))
                }
            })
            .buffered(threads);
        let worker = |e: tokio::task::JoinError| Error::Task { task: "decode", reason: e.to_string() };
        'units: while let Some(decoding) = decoded.next().await {
            match decoding.map_err(worker)? {
                Decoding::Done(d) => {
                    if tx.send(d).await.is_err() {
                        break;
                    }
                }
                Decoding::Stream(mut segments) => {
                    while let Some(d) = segments.recv().await {
                        if tx.send(d).await.is_err() {
                            break 'units;
                        }
                    }
                }
            }
        }
        Ok::<_, Error>(())
    });

    let result = write_all(store, table, &mut rx, options, progress, &mut report).await;
    drop(rx);
    let produced = producer.await;
    result?;
    produced.map_err(|e| Error::Task { task: "fetch", reason: e.to_string() })??;
    report.prefixes_completed = report.prefixes_found.saturating_sub(report.failed_prefixes.len());
    report.elapsed = started.elapsed();
    Ok(report)
}

/// A decode unit, decoded.
enum Decoding {
    /// Files decoded whole.
    Done(Decoded),
    /// A large file, its segments as they are decoded.
    Stream(tokio::sync::mpsc::Receiver<Decoded>),
}

/// Whether a file is decoded a segment at a time: when it is larger on disk than a quarter of
/// a segment, or a sixty-fourth for gzip (which expands trail files tenfold, and a bomb a
/// thousandfold). With `--strict` every file is decoded whole: it is stored all or nothing.
fn is_streamed(file: &SourceFile, segment: usize, strict: bool) -> bool {
    let gzip = file.id.location.ends_with(".gz");
    !strict && file.id.size > segment as u64 / if gzip { 64 } else { 4 }
}

/// The reader of a file's raw bytes: fetched already, or read from disk as they are needed.
fn open(source: &SourceFile, raw: Option<Fetched>) -> std::result::Result<Box<dyn BufRead + Send>, String> {
    match (raw, &source.origin) {
        (Some(raw), _) => Ok(Box::new(std::io::Cursor::new(raw?))),
        (None, Origin::File(path)) => std::fs::File::open(path)
            .map(|f| Box::new(std::io::BufReader::with_capacity(1 << 20, f)) as Box<dyn BufRead + Send>)
            .map_err(|e| format!("cannot read: {e}")),
        (None, Origin::Object(..)) => Err("an object is fetched, not read".into()),
    }
}

/// Groups consecutive files into decode units of about [`UNIT_BYTES`] on disk; a file to be
/// `streamed` is a unit of its own.
fn units(files: Vec<SourceFile>, streamed: impl Fn(&SourceFile) -> bool) -> Vec<Vec<SourceFile>> {
    let mut units: Vec<Vec<SourceFile>> = Vec::new();
    let mut bytes = UNIT_BYTES;
    for file in files {
        if streamed(&file) {
            units.push(vec![file]);
            bytes = UNIT_BYTES;
            continue;
        }
        if bytes >= UNIT_BYTES || units.last().is_some_and(|u| u.len() >= UNIT_FILES) {
            units.push(Vec::new());
            bytes = 0;
        }
        bytes += file.id.size;
        units.last_mut().expect("a unit was just pushed").push(file);
    }
    units
}

async fn write_all(
    store: &EventDataStore,
    table: Snapshot,
    rx: &mut tokio::sync::mpsc::Receiver<Decoded>,
    options: &IngestOptions,
    progress: &dyn Progress,
    report: &mut IngestReport,
) -> Result<()> {
    let mut writer = Writer {
        store,
        table: Some(table),
        keys: KeyCache::default(),
        parquet: None,
        pending: None,
        checkpoint_every: options.checkpoint_every.max(1),
        windowed: HashSet::new(),
        validated: options.validated.clone(),
    };
    let mut wave: Vec<Decoded> = Vec::new();
    let mut wave_bytes = 0u64;
    while let Some(unit) = rx.recv().await {
        for file in &unit.files {
            let c = file.counts;
            // A large file's segments come one by one: it is read once its last is.
            let whole = file.part != Some(false);
            report.files_read += usize::from(whole);
            report.bytes_read += if whole { file.source.id.size } else { 0 };
            report.json_bytes += file.json_bytes;
            report.events_read += c.events;
            report.filtered_by_selectors += c.selectors;
            report.filtered_by_retention += c.retention;
            report.filtered_by_time += c.window;
            report.insight_events += c.insights;
            report.bad_records += c.bad_records;
            report.digest_files += usize::from(c.digest);
            report.problems.extend(file.problems.iter().cloned());
            if whole {
                progress.file_done(file.source.id.size, c.events);
            }
            if let Some(reason) = &file.rejected {
                report.rejected_files.push((file.source.id.location.clone(), reason.clone()));
                report.failed_prefixes.extend(file.source.day_prefix.clone());
            } else {
                wave_bytes += file.json_bytes;
            }
        }
        wave.push(unit);
        if wave_bytes >= options.wave_bytes {
            writer.submit(std::mem::take(&mut wave), progress, report).await?;
            wave_bytes = 0;
        }
    }
    if !wave.is_empty() {
        writer.submit(wave, progress, report).await?;
    }
    // No checkpoint at the end of a run: a cron job's runs of one commit each would write one
    // every run, each holding every live file. Readers replay at most `checkpoint_every` commits.
    writer.settle(progress, report).await?;
    Ok(())
}

/// What a wave's task returns: the table at its commit, the figures of the commit, and the
/// writer, to be used for the next wave (it keeps what each column cost to encode).
struct Committed {
    table: Snapshot,
    outcome: CommitOutcome,
    events: u64,
    writer: StoreWriter,
    /// Events another writer committed first, while this wave waited to commit.
    raced: u64,
}

/// Commits waves: dedupe and order on the writer task, then Parquet encode and the Delta
/// commit on a task of their own, so that the next wave is decoded meanwhile. One wave is in
/// flight at a time: the next one is deduplicated against the keys it committed.
struct Writer<'a> {
    store: &'a EventDataStore,
    /// The table, when no wave is in flight.
    table: Option<Snapshot>,
    keys: KeyCache,
    /// The Parquet writer, when no wave is in flight.
    parquet: Option<StoreWriter>,
    pending: Option<tokio::task::JoinHandle<Result<Committed>>>,
    checkpoint_every: u64,
    /// Large files with events outside the time range in a segment committed already.
    windowed: HashSet<String>,
    /// See [`IngestOptions::validated`].
    validated: Option<Arc<HashMap<String, String>>>,
}

impl Writer<'_> {
    /// Waits for the wave in flight, if any; returns the table.
    async fn settle(&mut self, progress: &dyn Progress, report: &mut IngestReport) -> Result<Snapshot> {
        if let Some(task) = self.pending.take() {
            let joined = task.await.map_err(|e| Error::Task { task: "writer", reason: e.to_string() })?;
            let c = joined?;
            self.parquet = Some(c.writer);
            // After a race the cache lacks the other writer's keys: it is reloaded.
            self.keys.version = if c.raced > 0 { None } else { c.table.version() };
            report.events_stored += c.events;
            report.duplicates += c.raced;
            report.bytes_written += c.outcome.bytes;
            report.commits += usize::from(c.outcome.version.is_some());
            progress.committed(c.events);
            self.table = Some(c.table);
        }
        match self.table.take() {
            Some(table) => Ok(table),
            None => self.store.snapshot().await.map_err(Error::from),
        }
    }

    /// Dedupes and orders one wave of whole files, then writes and commits it on a task.
    async fn submit(
        &mut self,
        wave: Vec<Decoded>,
        progress: &dyn Progress,
        report: &mut IngestReport,
    ) -> Result<()> {
        let mut table = self.settle(progress, report).await?;
        let keys = &mut self.keys;
        let batches: Vec<&(RecordBatch, Vec<u128>)> = wave.iter().filter_map(|d| d.batch.as_ref()).collect();
        let days: BTreeSet<i32> = batches
            .iter()
            .flat_map(|(b, _)| columns(b).0.values().iter().copied().collect::<Vec<_>>())
            .collect();
        // Another writer may have committed since: its events must count as stored.
        self.store.refresh(&mut table).await?;
        if table.version() != keys.version {
            keys.clear();
        }
        keys.ensure(self.store, &table, &days).await?;

        // Every new event, in (date, time) order; file and record order break ties. The rows
        // of rejected files are skipped.
        let mut rows = WaveRows::default();
        let mut bi = 0;
        for unit in &wave {
            // A unit without a batch has no rows: its files are ledgered with no events.
            let rows_of = unit.batch.as_ref().map(|(batch, keys)| (columns(batch), keys));
            let mut row = 0;
            for file in &unit.files {
                let range = row..row + file.rows;
                row = range.end;
                if file.rejected.is_some() {
                    continue;
                }
                // A file with events outside the time range asked for is read again by a
                // wider run: it is not ledgered. A large file is ledgered with its last
                // segment (a run killed before that reads it again, and its events stored
                // already are duplicates then).
                let location = &file.source.id.location;
                let windowed = file.counts.window > 0;
                let windowed = match file.part {
                    Some(false) => {
                        if windowed {
                            self.windowed.insert(location.clone());
                        }
                        true
                    }
                    Some(true) => self.windowed.remove(location) || windowed,
                    None => windowed,
                };
                let entry = (!windowed).then(|| {
                    let validated_by =
                        self.validated.as_ref().and_then(|v| v.get(trail_key(location)?)).cloned();
                    rows.ledger.push(LedgerEntry { source: file.source.id.clone(), events: 0, validated_by });
                    rows.ledger.len() - 1
                });
                if let Some(((dates, times), batch_keys)) = &rows_of {
                    for row in range {
                        let day = dates.value(row);
                        if keys.insert(day, batch_keys[row]) {
                            rows.push((day, times.value(row), bi, row), batch_keys[row], entry);
                        } else {
                            report.duplicates += 1;
                        }
                    }
                }
            }
            bi += usize::from(rows_of.is_some());
        }
        rows.sort();
        let batches: Arc<Vec<RecordBatch>> = Arc::new(batches.into_iter().map(|(b, _)| b.clone()).collect());
        let writer = self.parquet.take().unwrap_or_else(|| self.store.writer());
        let store = self.store.clone();
        let every = self.checkpoint_every;
        self.pending = Some(tokio::spawn(commit_wave(store, table, writer, batches, rows, days, every)));
        Ok(())
    }
}

/// The rows of a wave that are new, in the order they are written, with the dedupe key and the
/// ledger entry of each.
#[derive(Default)]
struct WaveRows {
    /// (date, time, batch, row).
    order: Vec<(i32, i64, usize, usize)>,
    keys: Vec<u128>,
    /// The ledger entry of the file each row is from (none when the file is not ledgered).
    entries: Vec<Option<usize>>,
    ledger: Vec<LedgerEntry>,
}

impl WaveRows {
    fn push(&mut self, at: (i32, i64, usize, usize), key: u128, entry: Option<usize>) {
        self.order.push(at);
        self.keys.push(key);
        self.entries.push(entry);
        if let Some(e) = entry {
            self.ledger[e].events += 1;
        }
    }

    fn sort(&mut self) {
        let mut index: Vec<usize> = (0..self.order.len()).collect();
        index.sort_unstable_by_key(|&i| self.order[i]);
        self.order = index.iter().map(|&i| self.order[i]).collect();
        self.keys = index.iter().map(|&i| self.keys[i]).collect();
        self.entries = index.iter().map(|&i| self.entries[i]).collect();
    }

    /// Drops the rows whose key is in `stored`; returns how many.
    fn drop_stored(&mut self, stored: &HashSet<u128>) -> u64 {
        let before = self.order.len();
        let mut kept = WaveRows { ledger: std::mem::take(&mut self.ledger), ..Default::default() };
        for e in kept.ledger.iter_mut() {
            e.events = 0;
        }
        for i in 0..before {
            if !stored.contains(&self.keys[i]) {
                kept.push(self.order[i], self.keys[i], self.entries[i]);
            }
        }
        *self = kept;
        (before - self.order.len()) as u64
    }
}

/// Encodes a wave's rows and commits them on the version `table` is at. When another writer
/// committed first, the rows it stored are dropped and the rest encoded and committed again
/// on the new version: two ingests of the same sources at once store each event once.
async fn commit_wave(
    store: EventDataStore,
    mut table: Snapshot,
    mut writer: StoreWriter,
    batches: Arc<Vec<RecordBatch>>,
    mut rows: WaveRows,
    days: BTreeSet<i32>,
    checkpoint_every: u64,
) -> Result<Committed> {
    let mut raced = 0;
    loop {
        let order: Vec<(usize, usize)> = rows.order.iter().map(|&(_, _, b, r)| (b, r)).collect();
        let encoding = batches.clone();
        // Encoding keeps threads busy for seconds: not on the runtime's workers.
        writer = tokio::task::spawn_blocking(move || {
            let refs: Vec<&RecordBatch> = encoding.iter().collect();
            // A file for each date.
            writer.write_rows(&refs, &order)?;
            Ok::<_, Error>(writer)
        })
        .await
        .map_err(|e| Error::Task { task: "writer", reason: e.to_string() })??;
        let events = writer.rows();
        match store.commit(&mut table, &mut writer, rows.ledger.clone()).await {
            Ok(outcome) => {
                if checkpoint_due(outcome.version, checkpoint_every) {
                    store.checkpoint_and_reload(&mut table).await?;
                }
                return Ok(Committed { table, outcome, events, writer, raced });
            }
            Err(trawl_store::Error::Conflict { version }) => {
                store.refresh(&mut table).await?;
                let mut stored = HashSet::new();
                for file in store.added_since(&table, version).await? {
                    if !days.contains(&epoch_day(file.date)) {
                        continue;
                    }
                    read_keys(&store, &table, &file, |key| {
                        stored.insert(key);
                    })
                    .await?;
                }
                raced += rows.drop_stored(&stored);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The key of a trail object from `AWSLogs/` on: the same for a bucket's object and its copy in a
/// mirror.
pub fn trail_key(location: &str) -> Option<&str> {
    location.find("AWSLogs/").map(|i| &location[i..])
}

/// True when a commit of `version` is followed by a checkpoint (nonzero `every`).
fn checkpoint_due(version: Option<u64>, every: u64) -> bool {
    version.is_some_and(|v| v % every == 0)
}

/// The `eventdate` and `eventtime` columns of a decoded batch.
fn columns(batch: &RecordBatch) -> (PrimitiveArray<Date32Type>, PrimitiveArray<TimestampMicrosecondType>) {
    let dates =
        batch.column_by_name(EVENT_DATE).expect("eventdate column").as_primitive::<Date32Type>().clone();
    let times = batch
        .column_by_name(EVENT_TIME)
        .expect("eventtime column")
        .as_primitive::<TimestampMicrosecondType>()
        .clone();
    (dates, times)
}

/// Calls `each` with the dedupe key of every event of a stored `file`.
async fn read_keys(
    store: &EventDataStore,
    table: &Snapshot,
    file: &DataFile,
    mut each: impl FnMut(u128),
) -> Result<()> {
    let columns = [EVENT_ID, RECIPIENT_ACCOUNT_ID, EVENT_JSON_CHECKSUM];
    let batches: Vec<RecordBatch> =
        store.read_files(table, std::slice::from_ref(file), &columns).try_collect().await?;
    for b in batches {
        let ids = b.column(0).as_string::<i32>();
        let accounts = b.column(1).as_string::<i32>();
        let sums = b.column(2).as_string::<i32>();
        for row in 0..b.num_rows() {
            let id = ids.is_valid(row).then(|| ids.value(row));
            let account = accounts.is_valid(row).then(|| accounts.value(row));
            each(event_key(account, id, sums.value(row)));
        }
    }
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
    async fn ensure(&mut self, store: &EventDataStore, table: &Snapshot, days: &BTreeSet<i32>) -> Result<()> {
        if self.total > KEY_CACHE_LIMIT {
            self.clear();
        }
        let missing: HashSet<i32> = days.iter().copied().filter(|d| !self.days.contains_key(d)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let files: Vec<DataFile> =
            table.files()?.into_iter().filter(|f| missing.contains(&epoch_day(f.date))).collect();
        for &day in &missing {
            self.days.insert(day, HashSet::new());
        }
        for file in &files {
            let set = self.days.entry(epoch_day(file.date)).or_default();
            let mut added = 0;
            read_keys(store, table, file, |key| {
                set.insert(key);
                added += 1;
            })
            .await?;
            self.total += added;
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
