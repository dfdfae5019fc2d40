//! trawl's own records, kept in the lake beside the stores: the audit log (`<lake>/_trawl/audits/`),
//! one Delta table holding the runs of scheduled audits, their findings and their alerts (the
//! outbox: an alert queued and not yet delivered).
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

/// The audit log of a lake.
#[derive(Debug)]
pub struct AuditLog {
    url: Url,
    /// The lake's object store.
    objects: Arc<dyn ObjectStore>,
    /// `None` until the first run creates the table.
    table: Option<DeltaTable>,
}

impl AuditLog {
    /// Opens the audit log of `lake` at its latest version; creates nothing.
    pub async fn open(lake: &Lake) -> Result<Self> {
        let url = lake.url().join(&format!("{AUDIT_LOG}/")).map_err(|e| Error::InvalidLocation {
            location: lake.url().to_string(),
            reason: e.to_string(),
        })?;
        let mut log = Self { url, objects: lake.objects().clone(), table: None };
        log.refresh().await?;
        Ok(log)
    }

    /// Reads the newest version.
    pub async fn refresh(&mut self) -> Result<()> {
        // Looked for first: delta-rs is not asked about a table that does not exist.
        let log = object_store::path::Path::from(format!("{AUDIT_LOG}/_delta_log"));
        let first = self
            .objects
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

    /// Appends `batches` (of [`audit_log_schema`]) and sets each `(app, watermark)`, in one
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
        let metadata =
            [("trawl.operation", serde_json::json!("audit")), ("trawl.rows", serde_json::json!(rows))];
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
        Ok(version)
    }

    async fn create(&mut self) -> Result<()> {
        let delta = |e| delta_error(&self.url, e);
        let kernel: StructType =
            audit_log_schema().as_ref().try_into_kernel().map_err(|e| delta(e.into()))?;
        let table = DeltaTableBuilder::from_url(self.url.clone()).and_then(|b| b.build()).map_err(delta)?;
        let created = table
            .create()
            .with_table_name("trawl_audits")
            .with_comment("trawl audit runs and findings")
            .with_columns(kernel.fields().cloned())
            .with_save_mode(SaveMode::ErrorIfExists)
            .await;
        match created {
            Ok(table) => self.table = Some(table),
            // Created meanwhile by another run: take it as it is.
            Err(_) => {
                self.refresh().await?;
                if self.table.is_none() {
                    return Err(Error::InvalidConfig(format!("cannot create the audit log at {}", self.url)));
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
        Error::Delta { source, .. } => Error::AuditLog { location: url.to_string(), source },
        e => e.at(url),
    }
}
