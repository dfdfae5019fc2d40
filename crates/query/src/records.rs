//! trawl's own records as SQL tables: `trawl_audit_runs` and `trawl_audit_findings`, two views of
//! the lake's audit log (`trawl_store::records`), each with its own columns.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType, provider_as_source};
use datafusion::logical_expr::{Expr, LogicalPlanBuilder, TableProviderFilterPushDown, col, lit};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use trawl_store::records::{AuditLog, audit_log_schema};

/// The columns of `trawl_audit_runs`, after the shared ones.
const RUN_COLUMNS: &[&str] = &[
    "started",
    "finished",
    "window",
    "from_version",
    "to_version",
    "from_time",
    "to_time",
    "files",
    "rows",
    "findings",
    "events_scanned",
    "bytes_scanned",
    "duration_ms",
    "outcome",
    "error",
    "result_sha256",
    "result_file",
    "user",
    "host",
];

/// The columns of `trawl_audit_findings`, after the shared ones.
const FINDING_COLUMNS: &[&str] = &[
    "finding_id",
    "title",
    "severity",
    "mitre",
    "author",
    "link",
    "eventid",
    "eventtime",
    "dedup_key",
    "suppressed",
    "row",
];

const SHARED: &[&str] = &["run_id", "pack", "audit", "store", "store_id", "scheduled"];

/// Registers the two tables (empty before the first audit run). The log is read when a
/// statement reads one of them, not before: other statements pay nothing for it.
pub(crate) fn register(ctx: &SessionContext, lake: &trawl_store::Lake) -> crate::Result<()> {
    let provider = Arc::new(AuditLogProvider { lake: lake.clone() });
    for (name, kind, columns) in
        [("trawl_audit_runs", "run", RUN_COLUMNS), ("trawl_audit_findings", "finding", FINDING_COLUMNS)]
    {
        let plan = LogicalPlanBuilder::scan(name, provider_as_source(provider.clone()), None)?
            .filter(col("kind").eq(lit(ScalarValue::from(kind))))?
            .project(SHARED.iter().chain(columns).map(|c| col(*c)))?
            .build()?;
        ctx.register_table(name, Arc::new(datafusion::catalog::view::ViewTable::new(plan, None)))?;
    }
    Ok(())
}

/// The audit log's live Parquet files, as its latest version lists them when a scan is planned.
#[derive(Debug)]
struct AuditLogProvider {
    lake: trawl_store::Lake,
}

impl AuditLogProvider {
    /// The log's files, and the URL of the object store they are in (registered in `state`).
    async fn files(&self, state: &dyn Session) -> Result<(ObjectStoreUrl, Vec<PartitionedFile>)> {
        let external = |e: trawl_store::Error| DataFusionError::External(Box::new(e));
        let log = AuditLog::open(&self.lake).await.map_err(external)?;
        let root = log.url().clone();
        let store_url = ObjectStoreUrl::parse(&root[..url::Position::BeforePath])?;
        let root_path = Path::from_url_path(root.path())
            .map_err(|e| DataFusionError::from(object_store::Error::from(e)))?;
        if let Some(objects) = log.root_objects()
            && state.runtime_env().object_store(&store_url).is_err()
        {
            state.runtime_env().register_object_store(store_url.as_ref(), objects);
        }
        let files = log
            .files()
            .map_err(external)?
            .into_iter()
            .map(|(path, size)| {
                crate::pruning::parquet_file(root_path.parts().chain(path.parts()).collect(), size)
            })
            .collect();
        Ok((store_url, files))
    }
}

#[async_trait]
impl TableProvider for AuditLogProvider {
    fn schema(&self) -> SchemaRef {
        audit_log_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (store_url, files) = self.files(state).await?;
        let table_schema = TableSchema::builder(audit_log_schema()).build();
        crate::pruning::parquet_scan(state, &store_url, table_schema, files, projection, limit).await
    }
}
