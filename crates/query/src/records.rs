//! trawl's own records as SQL tables: `trawl_audit_runs`, `trawl_audit_findings` and
//! `trawl_audit_alerts`, views of the lake's audit log (`trawl_store::records`), each with its
//! own columns; and `trawl_query_log`, the statements run (when the lake's settings keep them).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use trawl_store::records::{RecordLog, Records};

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
    "unrecorded",
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

/// The columns of `trawl_audit_alerts`, after the shared ones.
const ALERT_COLUMNS: &[&str] = &["finding_id", "sink", "state", "attempts", "error", "attempted"];

/// Registers the tables (empty before the first audit run): the log itself as
/// `trawl_audit_log`, and a view per kind of row. `trawl_audit_runs` adds what became of each
/// run's alerts: `alerts` queued, `alerts_delivered`, `alerts_pending` (in the outbox) and the
/// last `alert_error`. The log is read when a statement reads one of them, not before: other
/// statements pay nothing for it.
pub(crate) async fn register(ctx: &SessionContext, lake: &trawl_store::Lake) -> crate::Result<()> {
    ctx.register_table(
        "trawl_audit_log",
        Arc::new(RecordsProvider { lake: lake.clone(), records: Records::Audits }),
    )?;
    ctx.register_table(
        "trawl_query_log",
        Arc::new(RecordsProvider { lake: lake.clone(), records: Records::Queries }),
    )?;
    ctx.register_table("trawl_ledger", Arc::new(LedgerProvider { lake: lake.clone() }))?;
    let select = |kind: &str, columns: &[&str]| {
        let columns: Vec<&str> = SHARED.iter().chain(columns).copied().collect();
        format!("SELECT {} FROM trawl_audit_log WHERE kind = '{kind}'", columns.join(", "))
    };
    let runs = format!(
        "SELECT r.*, coalesce(a.alerts, 0) AS alerts, coalesce(a.delivered, 0) AS alerts_delivered, \
         coalesce(a.alerts, 0) - coalesce(a.delivered, 0) AS alerts_pending, a.alert_error \
         FROM ({}) r LEFT JOIN (\
           SELECT run_id, count(*) AS alerts, sum(CASE WHEN delivered THEN 1 ELSE 0 END) AS delivered, \
                  max(CASE WHEN NOT delivered THEN error END) AS alert_error \
           FROM (SELECT run_id, finding_id, sink, bool_or(state = 'delivered') AS delivered, \
                        max(error) AS error \
                 FROM trawl_audit_log WHERE kind = 'alert' GROUP BY run_id, finding_id, sink) \
           GROUP BY run_id) a ON r.run_id = a.run_id",
        select("run", RUN_COLUMNS)
    );
    for (name, sql) in [
        ("trawl_audit_runs", runs),
        ("trawl_audit_findings", select("finding", FINDING_COLUMNS)),
        ("trawl_audit_alerts", select("alert", ALERT_COLUMNS)),
    ] {
        let plan = ctx.state().create_logical_plan(&sql).await?;
        ctx.register_table(name, Arc::new(datafusion::catalog::view::ViewTable::new(plan, Some(sql))))?;
    }
    Ok(())
}

/// A record table's live Parquet files, as its latest version lists them when a scan is planned.
#[derive(Debug)]
struct RecordsProvider {
    lake: trawl_store::Lake,
    records: Records,
}

impl RecordsProvider {
    /// The log's files, and the URL of the object store they are in (registered in `state`).
    async fn files(&self, state: &dyn Session) -> Result<(ObjectStoreUrl, Vec<PartitionedFile>)> {
        let external = |e: trawl_store::Error| DataFusionError::External(Box::new(e));
        let log = RecordLog::open_records(&self.lake, self.records).await.map_err(external)?;
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
impl TableProvider for RecordsProvider {
    fn schema(&self) -> SchemaRef {
        self.records.schema()
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
        let table_schema = TableSchema::builder(self.records.schema()).build();
        crate::pruning::parquet_scan(state, &store_url, table_schema, files, projection, limit).await
    }
}

/// `trawl_ledger`: every source object each store's ledger holds (`store`, `location`, `size`,
/// `events` stored from it by its commit, `validated_by`: the CloudTrail digest that validated
/// it, with `ingest --validate`). Joined on the events' `sourceobject`, it says which stored
/// events came from validated files. Read when a statement reads it.
#[derive(Debug)]
struct LedgerProvider {
    lake: trawl_store::Lake,
}

fn ledger_schema() -> SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    Arc::new(Schema::new(vec![
        Field::new("store", DataType::Utf8, false),
        Field::new("location", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("events", DataType::Int64, false),
        Field::new("validated_by", DataType::Utf8, true),
    ]))
}

#[async_trait]
impl TableProvider for LedgerProvider {
    fn schema(&self) -> SchemaRef {
        ledger_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        use arrow::array::{Int64Array, StringArray};
        let external = |e: trawl_store::Error| DataFusionError::External(Box::new(e));
        let (mut store, mut location, mut size, mut events, mut validated) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for config in self.lake.stores().await.map_err(external)? {
            if config.status != trawl_store::Status::Enabled {
                continue;
            }
            let eds = self.lake.store(&config.name).await.map_err(external)?;
            let snapshot = eds.snapshot().await.map_err(external)?;
            for entry in eds.ledger_entries(&snapshot).await.map_err(external)? {
                store.push(config.name.clone());
                location.push(entry.source.location);
                size.push(i64::try_from(entry.source.size).unwrap_or(i64::MAX));
                events.push(i64::try_from(entry.events).unwrap_or(i64::MAX));
                validated.push(entry.validated_by);
            }
        }
        let batch = arrow::array::RecordBatch::try_new(
            ledger_schema(),
            vec![
                Arc::new(StringArray::from(store)),
                Arc::new(StringArray::from(location)),
                Arc::new(Int64Array::from(size)),
                Arc::new(Int64Array::from(events)),
                Arc::new(StringArray::from(validated)),
            ],
        )?;
        let table = datafusion::datasource::MemTable::try_new(ledger_schema(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}
