//! trawl's own records, kept in the lake beside the stores, each a Delta table:
//! - the audit log (`<lake>/_trawl/audits/`), holding the runs of scheduled audits, their
//!   findings and their alerts (the outbox: an alert queued and not yet delivered);
//! - the query log (`<lake>/_trawl/query-log/`), a row per statement run, when the lake's
//!   settings ask for it.
//!
//! Runs and findings share a table (a `kind` column tells them apart, and SQL sees them as two
//! tables) so that one Delta commit records a run, its findings and the audit's watermark (a
//! Delta `txn` action per audit) together: a run killed at any point has either all three or
//! none, and is redone with the same window.

use std::sync::{Arc, LazyLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::lake::Lake;
use crate::{Error, Result};

/// The audit log's directory, relative to the lake.
pub const AUDIT_LOG: &str = "_trawl/audits";

/// The query log's directory, relative to the lake.
pub const QUERY_LOG: &str = "_trawl/query-log";

/// Which of the lake's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    /// Audit runs, findings and alerts.
    Audits,
    /// Statements run.
    Queries,
}

impl Records {
    /// The table's directory, relative to the lake.
    pub fn dir(self) -> &'static str {
        match self {
            Records::Audits => AUDIT_LOG,
            Records::Queries => QUERY_LOG,
        }
    }

    /// The table's columns.
    pub fn schema(self) -> SchemaRef {
        match self {
            Records::Audits => audit_log_schema(),
            Records::Queries => query_log_schema(),
        }
    }

    /// How errors and reports name the table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Records::Audits => "audit log",
            Records::Queries => "query log",
        }
    }

    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Records::Audits => ("trawl_audits", "trawl audit runs, findings and alerts"),
            Records::Queries => ("trawl_query_log", "statements run over the lake"),
        }
    }
}

/// The query log's columns: who ran what, when, from where, and what came of it.
pub fn query_log_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let int = |name: &str| Field::new(name, DataType::Int64, true);
        Arc::new(Schema::new(vec![
            Field::new("time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            text("user"),
            text("host"),
            // shell, query, audit, library, ...
            text("source"),
            Field::new("sql", DataType::Utf8, false),
            // ok, error or cancelled.
            Field::new("outcome", DataType::Utf8, false),
            text("error"),
            int("duration_ms"),
            int("events_scanned"),
            int("events_matched"),
            int("bytes_scanned"),
            int("files_scanned"),
            int("files_pruned"),
        ]))
    });
    SCHEMA.clone()
}

/// Checkpoint the audit log every this many commits, so opening it reads a bounded log.
const CHECKPOINT_INTERVAL: u64 = 100;

/// The audit log's columns. Run rows fill the run columns, finding rows the finding columns,
/// alert rows `finding_id`, `error` and the alert columns; all fill the first seven.
pub fn audit_log_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let int = |name: &str| Field::new(name, DataType::Int64, true);
        let time = |name: &str| {
            Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true)
        };
        Arc::new(Schema::new(vec![
            Field::new("kind", DataType::Utf8, false),
            Field::new("run_id", DataType::Utf8, false),
            text("pack"),
            text("audit"),
            text("store"),
            text("store_id"),
            // The time the run was due: what `realert` counts from when a finding has no event.
            time("scheduled"),
            // Runs.
            time("started"),
            time("finished"),
            text("window"),
            int("from_version"),
            int("to_version"),
            time("from_time"),
            time("to_time"),
            int("files"),
            int("rows"),
            int("findings"),
            // Rows that fired past the cap of findings a run records.
            int("unrecorded"),
            int("events_scanned"),
            int("bytes_scanned"),
            int("duration_ms"),
            text("outcome"),
            text("error"),
            text("result_sha256"),
            text("result_file"),
            text("user"),
            text("host"),
            // Findings.
            text("finding_id"),
            text("title"),
            text("severity"),
            Field::new("mitre", DataType::new_list(DataType::Utf8, true), true),
            text("author"),
            text("link"),
            text("eventid"),
            time("eventtime"),
            text("dedup_key"),
            Field::new("suppressed", DataType::Boolean, true),
            text("row"),
            // Alerts: one row when a finding is queued for a sink, one per delivery tried.
            text("sink"),
            text("state"),
            int("attempts"),
            time("attempted"),
        ]))
    });
    SCHEMA.clone()
}

/// One statement run, as the query log records it.
#[derive(Debug, Clone, Default)]
pub struct QueryRecord {
    /// When it started.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Who ran it, on which host, from what (`shell`, `query`, `audit`, `library`, ...).
    pub user: String,
    #[allow(missing_docs)]
    pub host: String,
    #[allow(missing_docs)]
    pub source: String,
    /// The statement as given.
    pub sql: String,
    /// `ok`, `error` or `cancelled` (its results not read to the end).
    pub outcome: &'static str,
    /// Why it failed.
    pub error: Option<String>,
    /// Lake's statistics of the statement.
    pub duration_ms: u64,
    #[allow(missing_docs)]
    pub events_scanned: u64,
    #[allow(missing_docs)]
    pub events_matched: u64,
    #[allow(missing_docs)]
    pub bytes_scanned: u64,
    #[allow(missing_docs)]
    pub files_scanned: u64,
    #[allow(missing_docs)]
    pub files_pruned: u64,
}

/// Query records as a batch of [`query_log_schema`].
pub fn query_log_batch(records: &[QueryRecord]) -> Result<RecordBatch> {
    use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    let text = |f: &dyn Fn(&QueryRecord) -> Option<&str>| -> ArrayRef {
        Arc::new(records.iter().map(f).collect::<StringArray>())
    };
    let int = |f: &dyn Fn(&QueryRecord) -> u64| -> ArrayRef {
        Arc::new(records.iter().map(|r| i64::try_from(f(r)).ok()).collect::<Int64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            records
                .iter()
                .map(|r| Some(r.time.timestamp_micros()))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
        text(&|r| Some(&r.user)),
        text(&|r| Some(&r.host)),
        text(&|r| Some(&r.source)),
        text(&|r| Some(&r.sql)),
        text(&|r| Some(r.outcome)),
        text(&|r| r.error.as_deref()),
        int(&|r| r.duration_ms),
        int(&|r| r.events_scanned),
        int(&|r| r.events_matched),
        int(&|r| r.bytes_scanned),
        int(&|r| r.files_scanned),
        int(&|r| r.files_pruned),
    ];
    Ok(RecordBatch::try_new(query_log_schema(), columns)?)
}

/// Appends `records` to the query log of `lake` in one commit (creating the log if need be),
/// trying again when another writer committed first.
pub async fn append_queries(lake: &Lake, records: &[QueryRecord]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let batch = query_log_batch(records)?;
    let mut log = RecordLog::open_records(lake, Records::Queries).await?;
    log.append_rows(&batch).await
}

/// The audit log of a lake.
pub type AuditLog = RecordLog;

/// One of the lake's record tables.
#[derive(Debug)]
pub struct RecordLog {
    records: Records,
    url: Url,
    /// The lake's object store.
    /// `None` until the first run creates the table.
    table: Option<DeltaTable>,
    /// The lake, for the table's integrity chain (in `<dir>/_trawl/chain/`, as a store's).
    lake: Lake,
    chain_tail: tokio::sync::Mutex<Option<(u64, String)>>,
}

impl RecordLog {
    /// Opens the audit log of `lake` at its latest version; creates nothing.
    pub async fn open(lake: &Lake) -> Result<Self> {
        Self::open_records(lake, Records::Audits).await
    }

    /// Opens the `records` of `lake` at their latest version; creates nothing.
    pub async fn open_records(lake: &Lake, records: Records) -> Result<Self> {
        let url = lake.url().join(&format!("{}/", records.dir())).map_err(|e| Error::InvalidLocation {
            location: lake.url().to_string(),
            reason: e.to_string(),
        })?;
        let mut log =
            Self { records, url, table: None, lake: lake.clone(), chain_tail: tokio::sync::Mutex::default() };
        log.refresh().await?;
        Ok(log)
    }

    /// Reads the newest version.
    pub async fn refresh(&mut self) -> Result<()> {
        // Looked for first: delta-rs is not asked about a table that does not exist.
        let log = object_store::path::Path::from(format!("{}/_delta_log", self.records.dir()));
        let first = self
            .lake
            .objects()
            .list(Some(&log))
            .next()
            .await
            .transpose()
            .map_err(|e| crate::s3::explain(e, &self.url))?;
        if first.is_none() {
            self.table = None;
            return Ok(());
        }
        let builder = DeltaTableBuilder::from_url(self.url.clone()).map_err(|e| self.delta(e))?;
        self.table = match builder.load().await {
            Ok(table) => Some(table),
            Err(DeltaTableError::NotATable(_)) => None,
            Err(e) => return Err(self.delta(e)),
        };
        Ok(())
    }

    /// The table's root.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The version read (`None`: no run was ever recorded).
    pub fn version(&self) -> Option<u64> {
        self.table.as_ref().and_then(DeltaTable::version)
    }

    /// The live data files, relative to the table's root, with their sizes.
    pub fn files(&self) -> Result<Vec<(object_store::path::Path, u64)>> {
        let Some(table) = &self.table else { return Ok(Vec::new()) };
        let state = table.snapshot().map_err(|e| self.delta(e))?;
        let files = state.snapshot().try_log_data().map_err(|e| self.delta(e))?;
        Ok(files.iter().map(|f| (f.object_store_path(), u64::try_from(f.size()).unwrap_or(0))).collect())
    }

    /// The object store holding the table, its paths relative to the root of the URL's
    /// authority (as [`crate::Snapshot::root_objects`]).
    pub fn root_objects(&self) -> Option<Arc<dyn ObjectStore>> {
        self.table.as_ref().map(|t| t.log_store().root_object_store(None))
    }

    /// The watermark recorded for `app` (a Delta `txn` version), if any.
    pub async fn watermark(&self, app: &str) -> Result<Option<i64>> {
        let Some(table) = &self.table else { return Ok(None) };
        let state = table.snapshot().map_err(|e| self.delta(e))?;
        state.transaction_version(table.log_store().as_ref(), app).await.map_err(|e| self.delta(e))
    }

    /// Appends `batches` (of the records' schema) and sets each `(app, watermark)`, in one
    /// commit. Returns the new version.
    pub async fn append(&mut self, batches: &[RecordBatch], marks: &[(String, i64)]) -> Result<u64> {
        if self.table.is_none() {
            self.create().await?;
        }
        let delta = |e| delta_error(&self.url, e);
        let table = self.table.as_mut().expect("created above");
        let mut writer = RecordBatchWriter::for_table(table).map_err(delta)?;
        for batch in batches {
            writer.write(batch.clone()).await.map_err(delta)?;
        }
        let adds = writer.flush().await.map_err(delta)?;
        let paths: Vec<object_store::path::Path> =
            adds.iter().map(|a| object_store::path::Path::from(a.path.as_str())).collect();
        let mut actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        let now = chrono::Utc::now().timestamp_millis();
        actions.extend(
            marks.iter().map(|(app, v)| Action::Txn(Transaction::new_with_last_update(app, *v, Some(now)))),
        );
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let operation = DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None };
        let operation_name = match self.records {
            Records::Audits => "audit",
            Records::Queries => "query-log",
        };
        let metadata =
            [("trawl.operation", serde_json::json!(operation_name)), ("trawl.rows", serde_json::json!(rows))];
        let version = match crate::eds::commit(table, actions, operation, metadata, &delta).await {
            Ok(version) => version,
            Err(e) => {
                if matches!(e, Error::Conflict { .. }) {
                    // In no commit: nobody else can know of these files.
                    let objects = table.object_store();
                    for path in &paths {
                        let _ = objects.delete(path).await;
                    }
                }
                return Err(e);
            }
        };
        if version % CHECKPOINT_INTERVAL == 0 {
            deltalake::checkpoints::create_checkpoint(table, None).await.map_err(delta)?;
        }
        self.extend_chain(version).await?;
        Ok(version)
    }

    /// Appends rows that depend on nothing read (no watermark), reading the newest version and
    /// trying again when another writer committed first.
    pub async fn append_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut attempt = 0;
        loop {
            match self.append(std::slice::from_ref(batch), &[]).await {
                Err(Error::Conflict { .. }) if attempt < 5 => {
                    attempt += 1;
                    self.refresh().await?;
                }
                result => return result.map(|_| ()),
            }
        }
    }

    /// Rewrites the table's small files (an append each: a daemon polling every minute leaves
    /// thousands) into one, in a commit that adds no row (`dataChange: false`) and keeps the
    /// watermarks; then deletes from storage what earlier rewrites removed more than
    /// [`crate::optimize::REWRITE_GRACE`] ago. Returns the files removed and added (none when
    /// there were fewer than two small files).
    pub async fn compact(&mut self) -> Result<Option<(usize, usize)>> {
        use futures::TryStreamExt;
        #[allow(deprecated)]
        use parquet::arrow::async_reader::ParquetObjectReader;
        let url = self.url.clone();
        let delta = |e| delta_error(&url, e);
        for _attempt in 0..5 {
            let Some(table) = self.table.as_mut() else { return Ok(None) };
            let state = table.snapshot().map_err(delta)?;
            let views: Vec<_> = state.snapshot().try_log_data().map_err(delta)?.iter().collect();
            let mut small: Vec<_> = views
                .into_iter()
                .filter(|v| u64::try_from(v.size()).unwrap_or(u64::MAX) < crate::optimize::SMALL_FILE_BYTES)
                .collect();
            // A bounded rewrite: the smallest files first, up to the group size; the next run
            // takes the rest.
            small.sort_by_key(|v| v.size());
            let mut total = 0;
            small.retain(|v| {
                total += u64::try_from(v.size()).unwrap_or(u64::MAX);
                total <= crate::optimize::GROUP_BYTES
            });
            if small.len() < 2 {
                return Ok(None);
            }
            let objects = table.object_store();
            let mut batches = Vec::new();
            for view in &small {
                #[allow(deprecated)]
                let reader = ParquetObjectReader::new(objects.clone(), view.object_store_path())
                    .with_file_size(u64::try_from(view.size()).unwrap_or(0));
                let stream = parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader).await?.build()?;
                batches.extend(stream.try_collect::<Vec<_>>().await?);
            }
            let mut writer = RecordBatchWriter::for_table(table).map_err(delta)?;
            for batch in batches {
                writer.write(batch).await.map_err(delta)?;
            }
            let mut adds = writer.flush().await.map_err(delta)?;
            for add in &mut adds {
                add.data_change = false;
            }
            let added = adds.len();
            let paths: Vec<object_store::path::Path> =
                adds.iter().map(|a| object_store::path::Path::from(a.path.as_str())).collect();
            let removed_at = chrono::Utc::now().timestamp_millis();
            let mut actions: Vec<Action> = small
                .iter()
                .map(|v| {
                    Action::Remove(deltalake::kernel::Remove {
                        deletion_timestamp: Some(removed_at),
                        ..v.remove_action(false)
                    })
                })
                .collect();
            actions.extend(adds.into_iter().map(Action::Add));
            let operation = DeltaOperation::Optimize {
                predicate: None,
                target_size: i64::try_from(crate::optimize::SMALL_FILE_BYTES).unwrap_or(i64::MAX),
            };
            let metadata = [("trawl.operation", serde_json::json!("optimize"))];
            match crate::eds::commit(table, actions, operation, metadata, &delta).await {
                Ok(_) => {
                    let clock: Arc<dyn crate::Clock> = Arc::new(crate::SystemClock);
                    let (vacuumed, _) = crate::eds::vacuum_lite(table.clone(), clock).await.map_err(delta)?;
                    *table = vacuumed;
                    if let Some(version) = self.version() {
                        self.extend_chain(version).await?;
                    }
                    return Ok(Some((small.len(), added)));
                }
                Err(Error::Conflict { .. }) => {
                    // Appended to meanwhile: the rewrite is built again on the newer version.
                    for path in &paths {
                        let _ = objects.delete(path).await;
                    }
                    self.refresh().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn chain_site(&self) -> crate::chain::ChainSite<'_> {
        crate::chain::ChainSite {
            name: self.records.label().to_owned(),
            dir: self.records.dir().to_owned(),
            lake: &self.lake,
            tail: &self.chain_tail,
        }
    }

    /// Writes the chain records of the versions up to `upto` that have none: the record tables
    /// are evidence too (the audit runs and their findings, the statements run).
    async fn extend_chain(&self, upto: u64) -> Result<()> {
        let Some(table) = &self.table else { return Ok(()) };
        self.chain_site().extend(table.log_store().as_ref(), upto).await
    }

    /// Checks the table's chain, Delta log and files against each other, as a store's; `None`
    /// when the table does not exist.
    pub async fn verify(
        &self,
        deep: bool,
        key: Option<&crate::chain::PublicKey>,
    ) -> Result<Option<crate::chain::VerifyReport>> {
        let Some(table) = &self.table else { return Ok(None) };
        let live = self.files()?.into_iter().map(|(path, size)| (path.to_string(), size)).collect();
        Ok(Some(self.chain_site().verify(table.log_store().as_ref(), self.version(), live, deep, key).await?))
    }

    async fn create(&mut self) -> Result<()> {
        let delta = |e| delta_error(&self.url, e);
        let kernel: StructType =
            self.records.schema().as_ref().try_into_kernel().map_err(|e| delta(e.into()))?;
        let table = DeltaTableBuilder::from_url(self.url.clone()).and_then(|b| b.build()).map_err(delta)?;
        let (name, comment) = self.records.describe();
        let created = table
            .create()
            .with_table_name(name)
            .with_comment(comment)
            .with_columns(kernel.fields().cloned())
            .with_save_mode(SaveMode::ErrorIfExists)
            .await;
        match created {
            Ok(table) => self.table = Some(table),
            // Created meanwhile by another run: take it as it is.
            Err(_) => {
                self.refresh().await?;
                if self.table.is_none() {
                    return Err(Error::InvalidConfig(format!("cannot create the table at {}", self.url)));
                }
            }
        }
        Ok(())
    }

    fn delta(&self, e: DeltaTableError) -> Error {
        delta_error(&self.url, e)
    }
}

fn delta_error(url: &Url, e: DeltaTableError) -> Error {
    match crate::eds::delta_error("", e) {
        Error::Delta { source, .. } => {
            let records =
                if url.path().contains(QUERY_LOG) { Records::Queries } else { Records::Audits }.label();
            Error::Records { records, location: url.to_string(), source }
        }
        e => e.at(url),
    }
}
