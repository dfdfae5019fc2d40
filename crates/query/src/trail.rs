//! Raw trail tables: SQL over CloudTrail log files where they lie (a trail bucket or a local
//! directory), as Athena does, with the schema of a store. `eventtime` bounds in a query pick
//! the day prefixes to list, as Athena's partition projection does; files are fetched and
//! decoded concurrently while the query runs.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use trawl_store::trail::TrailFilter;

use crate::{Error, Result};

/// Turns one raw log file (its name and bytes, gzip or not) into a batch of the event schema;
/// `trawl_ingest::decode_file` is the one trawl uses.
pub type Decoder =
    Arc<dyn Fn(&str, Vec<u8>) -> std::result::Result<Option<RecordBatch>, String> + Send + Sync>;

/// Objects fetched at once.
const CONCURRENCY: usize = 32;

/// A table over the raw log files under a location.
#[derive(Clone)]
pub struct TrailTable {
    location: String,
    /// The location as a URL, for errors in its terms (`s3://` only).
    url: Option<url::Url>,
    /// What file names are shown under: `s3://bucket/` or the directory.
    base: String,
    store: Arc<dyn ObjectStore>,
    root: Path,
    schema: SchemaRef,
    decode: Decoder,
}

impl std::fmt::Debug for TrailTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrailTable").field("location", &self.location).finish_non_exhaustive()
    }
}

impl TrailTable {
    /// A table over `location`: `s3://bucket/prefix/` or a local directory.
    pub fn open(location: &str, decode: Decoder) -> Result<Self> {
        let (store, root, base, url): (Arc<dyn ObjectStore>, Path, String, Option<url::Url>) =
            if location.starts_with("s3://") {
                let url = url::Url::parse(location).map_err(|e| Error::TrailLocation {
                    location: location.to_owned(),
                    reason: format!("not a URL: {e}"),
                })?;
                let (store, root) = trawl_store::s3::bucket_of(&url)?;
                (store, root, format!("s3://{}/", url.host_str().unwrap_or_default()), Some(url))
            } else {
                let dir = std::path::Path::new(location);
                if !dir.is_dir() {
                    return Err(Error::TrailLocation {
                        location: location.to_owned(),
                        reason: "not a directory".into(),
                    });
                }
                let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| Error::Store(trawl_store::Error::ObjectStore(e)))?;
                (Arc::new(store), Path::default(), format!("{}/", location.trim_end_matches('/')), None)
            };
        let schema = trawl_store::schema::event_schema();
        Ok(Self { location: location.to_owned(), url, base, store, root, schema, decode })
    }
}

impl TrailTable {
    /// `e` in the terms of the trail's location.
    fn explain(&self, e: trawl_store::Error) -> trawl_store::Error {
        match &self.url {
            Some(url) => e.at(url),
            None => e,
        }
    }
}

#[async_trait]
impl TableProvider for TrailTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Filters only choose the day prefixes; DataFusion applies them to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (first, last) = crate::pruning::day_range(filters);
        let midnight =
            |d: NaiveDate| DateTime::<Utc>::from_naive_utc_and_offset(d.and_time(Default::default()), Utc);
        let filter = TrailFilter {
            start: first.map(midnight),
            end: last.and_then(|d| d.succ_opt()).map(midnight),
            concurrency: CONCURRENCY,
            ..Default::default()
        };
        let partition = Arc::new(TrailScan { table: self.clone(), filter });
        Ok(Arc::new(StreamingTableExec::try_new(
            self.schema.clone(),
            vec![partition],
            projection,
            [],
            false,
            limit,
        )?))
    }
}

/// One scan: list the day prefixes in range, then fetch and decode their files.
#[derive(Debug)]
struct TrailScan {
    table: TrailTable,
    filter: TrailFilter,
}

impl PartitionStream for TrailScan {
    fn schema(&self) -> &SchemaRef {
        &self.table.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let table = self.table.clone();
        let filter = self.filter.clone();
        let listed = {
            let table = table.clone();
            async move {
                trawl_store::trail::list(&table.store, &table.root, &filter)
                    .await
                    .map_err(|e| DataFusionError::External(Box::new(table.explain(e))))
            }
        };
        let batches = futures::stream::once(listed)
            .map_ok(move |listing| {
                let table = table.clone();
                futures::stream::iter(listing.files)
                    .map(move |(meta, _)| read(table.clone(), meta.location))
                    .buffered(CONCURRENCY)
            })
            .try_flatten()
            .try_filter_map(|batch| futures::future::ready(Ok(batch)));
        Box::pin(RecordBatchStreamAdapter::new(self.table.schema.clone(), batches))
    }
}

async fn read(table: TrailTable, path: Path) -> DfResult<Option<RecordBatch>> {
    let name = format!("{}{path}", table.base);
    let bytes = async { table.store.get(&path).await?.bytes().await }.await.map_err(|e| {
        let e = table.explain(trawl_store::Error::ObjectStore(e));
        DataFusionError::Execution(format!("{name}: cannot read: {e}"))
    })?;
    let decode = table.decode.clone();
    let label = name.clone();
    tokio::task::spawn_blocking(move || decode(&label, bytes.to_vec()))
        .await
        .map_err(|e| DataFusionError::Execution(format!("{name}: {e}")))?
        .map_err(|reason| DataFusionError::Execution(format!("{name}: {reason}")))
}
