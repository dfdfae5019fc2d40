//! A store's table: the Parquet files of its Delta snapshot, scanned by DataFusion's own Parquet
//! source. Bounds on `eventtime` in a query's filters become bounds on `eventdate` (the partition
//! column), so whole days are skipped before any file is opened.
//!
//! delta-rs's provider is not used for reading: its scan node sits between DataFusion's
//! projection and the Parquet source, so `useridentity.arn` read every leaf of `useridentity`.
//! trawl writes its stores itself (no deletion vectors, column mapping or row tracking), so the
//! snapshot's file list and partition values are all a scan needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::catalog::Session;
use datafusion::common::config::TableParquetOptions;
use datafusion::common::{ColumnStatistics, DataFusionError, Result, ScalarValue, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::expr::{Between, BinaryExpr};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use object_store::path::Path;
use trawl_store::DataFile;
use trawl_store::schema::{EVENT_DATE, EVENT_TIME, epoch_day, event_schema, file_schema};
use trawl_store::time::parse_timestamp;

use crate::lookup::{self, MapLookup};

/// Files the scans of a statement skipped before opening any (whole partitions); the
/// Parquet scan's own metrics cover the rest.
#[derive(Debug, Default)]
pub(crate) struct ScanTally {
    pub(crate) pruned: AtomicU64,
    /// Bytes read before the scans: the map columns of map lookups ([`crate::lookup`]).
    pub(crate) bytes: AtomicU64,
}

/// A store's live Parquet files, partitioned by `eventdate`.
#[derive(Debug)]
pub(crate) struct StoreProvider {
    /// Where the files are: the object store registered under this URL in the session.
    store_url: ObjectStoreUrl,
    /// The table's root, inside that object store.
    root: Path,
    files: Vec<DataFile>,
}

impl StoreProvider {
    /// `root`: the table's root inside the object store that `store_url` names; `files`: the
    /// snapshot's live files.
    /// The files are scanned newest first: a query for the newest events (`ORDER BY eventtime
    /// DESC LIMIT n`, Event history's order) fills its top n from the first files, and its
    /// dynamic filter then skips every older file by its `eventtime` statistics.
    pub(crate) fn new(store_url: ObjectStoreUrl, root: Path, mut files: Vec<DataFile>) -> Self {
        files.sort_by(|a, b| {
            let newest = |f: &DataFile| (f.time_range.map(|r| r.1), f.date);
            newest(b).cmp(&newest(a))
        });
        Self { store_url, root, files }
    }

    fn partitioned_file(&self, file: &DataFile) -> PartitionedFile {
        let mut pf = parquet_file(self.root.parts().chain(file.path.parts()).collect(), file.size);
        pf.partition_values = vec![ScalarValue::Date32(Some(epoch_day(file.date)))];
        pf.statistics = file_statistics(file).map(Arc::new);
        pf
    }
}

#[async_trait]
impl TableProvider for StoreProvider {
    fn schema(&self) -> SchemaRef {
        event_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // The filters are applied above the scan; the Parquet source takes them over
        // (statistics, bloom filters, row filters) when the physical plan is optimized.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The statement's own tally (see `Lake::sql`); a scan planned otherwise counts alone.
        let tally = state.config().get_extension::<ScanTally>().unwrap_or_default();
        let (first, last) = day_range(filters);
        let mut files: Vec<PartitionedFile> = self
            .files
            .iter()
            .filter(|f| first.is_none_or(|d| f.date >= d) && last.is_none_or(|d| f.date <= d))
            .map(|f| self.partitioned_file(f))
            .collect();
        let schema = event_schema();
        let lookups: Arc<[MapLookup]> = MapLookup::from_filters(filters, &schema).into();
        // The pre-scan leaves each file's metadata in the session's cache for the scan; more
        // files than the cache holds would evict each other, and the scan read them again.
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        let fits = files.len() <= cache.cache_limit() / lookup::METADATA_BYTES;
        if !lookups.is_empty() && !files.is_empty() && fits {
            let objects = state.runtime_env().object_store(&self.store_url)?;
            let threads = state.config_options().execution.target_partitions.max(1);
            let selected: Vec<Option<PartitionedFile>> =
                futures::stream::iter(files)
                    .map(|file| {
                        let task = lookup::select(
                            objects.clone(),
                            cache.clone(),
                            file,
                            lookups.clone(),
                            tally.clone(),
                        );
                        async move {
                            tokio::spawn(task).await.map_err(|e| DataFusionError::External(Box::new(e)))?
                        }
                    })
                    .buffered(threads * 2)
                    .try_collect()
                    .await?;
            files = selected.into_iter().flatten().collect();
        }
        tally.pruned.fetch_add((self.files.len() - files.len()) as u64, Ordering::Relaxed);
        let partition = schema.field_with_name(EVENT_DATE)?.clone();
        let table_schema =
            TableSchema::builder(file_schema()).with_table_partition_cols(vec![Arc::new(partition)]).build();
        parquet_scan(state, &self.store_url, table_schema, files, projection, limit).await
    }
}

/// What the Delta log says of a file, for DataFusion to skip it when a filter on `eventtime`
/// (static, or the dynamic filter of a top-n) cannot hold in it.
///
/// DataFusion prunes a file only by `Exact` bounds. The log's are the true bounds rounded
/// outward to the millisecond, which is all pruning needs; the one other use of exact bounds on
/// a file, treating a column whose minimum equals its maximum as constant, stays right because
/// outward-rounded bounds are equal only when every value is. The row count stays inexact: an
/// exact one would answer `count(*)` from the log, and Lake counts the events such a query
/// scans.
fn file_statistics(file: &DataFile) -> Option<Statistics> {
    use datafusion::common::stats::Precision;
    let (first, last) = file.time_range?;
    let schema = file_schema();
    let index = schema.index_of(EVENT_TIME).ok()?;
    let zone = match schema.field(index).data_type() {
        arrow::datatypes::DataType::Timestamp(_, zone) => zone.clone(),
        _ => return None,
    };
    // Delta's statistics keep milliseconds: the largest time is rounded up to the next one.
    let last = last.timestamp_micros().checked_add(999)? / 1_000 * 1_000;
    let mut columns = vec![ColumnStatistics::new_unknown(); schema.fields().len()];
    // `eventtime` is never null; pruning predicates ask (`IS NULL OR ...`).
    columns[index] = ColumnStatistics::new_unknown()
        .with_null_count(Precision::Exact(0))
        .with_min_value(Precision::Exact(ScalarValue::TimestampMicrosecond(
            Some(first.timestamp_micros()),
            zone.clone(),
        )))
        .with_max_value(Precision::Exact(ScalarValue::TimestampMicrosecond(Some(last), zone)));
    Some(Statistics {
        num_rows: Precision::Inexact(usize::try_from(file.num_records).ok()?),
        total_byte_size: Precision::Absent,
        column_statistics: columns,
    })
}

/// A Parquet file at `location` (in the object store a scan reads), of `size` bytes.
pub(crate) fn parquet_file(location: Path, size: u64) -> PartitionedFile {
    ObjectMeta { location, size, last_modified: DateTime::<Utc>::UNIX_EPOCH, e_tag: None, version: None }
        .into()
}

/// DataFusion's Parquet scan of `files` (with the session's Parquet options), or an empty plan
/// when there are none.
pub(crate) async fn parquet_scan(
    state: &dyn Session,
    store_url: &ObjectStoreUrl,
    table_schema: TableSchema,
    files: Vec<PartitionedFile>,
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if files.is_empty() {
        let schema = table_schema.table_schema().clone();
        let projected = match projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => schema,
        };
        return Ok(Arc::new(EmptyExec::new(projected)));
    }
    let format = ParquetFormat::default().with_options(TableParquetOptions {
        global: state.config_options().execution.parquet.clone(),
        ..Default::default()
    });
    let config = FileScanConfigBuilder::new(store_url.clone(), format.file_source(table_schema))
        // One group: the physical optimizer splits it into byte ranges, one per core.
        .with_file_group(FileGroup::new(files))
        .with_projection_indices(projection.cloned())?
        .with_limit(limit)
        .build();
    format.create_physical_plan(state, config).await
}

/// The first and last UTC days that `filters` on `eventtime` allow.
pub(crate) fn day_range(filters: &[Expr]) -> (Option<NaiveDate>, Option<NaiveDate>) {
    let (mut first, mut last): (Option<NaiveDate>, Option<NaiveDate>) = (None, None);
    for (bound, day) in filters.iter().flat_map(day_bounds) {
        if matches!(bound, Bound::From | Bound::On) {
            first = first.max(Some(day));
        }
        if matches!(bound, Bound::To | Bound::On) {
            last = Some(last.map_or(day, |l| l.min(day)));
        }
    }
    (first, last)
}

/// How an `eventtime` filter bounds the days: from, to (both inclusive) or on a day.
#[derive(Debug, Clone, Copy)]
enum Bound {
    From,
    To,
    On,
}

fn day_bounds(filter: &Expr) -> Vec<(Bound, NaiveDate)> {
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            let mut v = day_bounds(left);
            v.extend(day_bounds(right));
            v
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, t) = match (is_event_time(left), is_event_time(right)) {
                (true, false) => (*op, timestamp_of(right)),
                (false, true) => (op.swap().unwrap_or(*op), timestamp_of(left)),
                _ => return Vec::new(),
            };
            let Some(t) = t else { return Vec::new() };
            let day = t.date_naive();
            match op {
                Operator::Gt | Operator::GtEq => vec![(Bound::From, day)],
                // Before midnight: the day before is the last.
                Operator::Lt if t.time() == chrono::NaiveTime::MIN => {
                    day.pred_opt().map(|d| vec![(Bound::To, d)]).unwrap_or_default()
                }
                Operator::Lt | Operator::LtEq => vec![(Bound::To, day)],
                Operator::Eq => vec![(Bound::On, day)],
                _ => Vec::new(),
            }
        }
        Expr::Between(Between { expr, negated: false, low, high }) if is_event_time(expr) => {
            match (timestamp_of(low), timestamp_of(high)) {
                (Some(lo), Some(hi)) => vec![(Bound::From, lo.date_naive()), (Bound::To, hi.date_naive())],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

fn is_event_time(e: &Expr) -> bool {
    match e {
        Expr::Column(c) => c.name == EVENT_TIME,
        Expr::Cast(c) => is_event_time(&c.expr),
        Expr::TryCast(c) => is_event_time(&c.expr),
        _ => false,
    }
}

/// A timestamp literal (any unit), or a string literal that parses as one.
fn timestamp_of(e: &Expr) -> Option<DateTime<chrono::Utc>> {
    let micros = match e {
        Expr::Literal(v, _) => match v {
            ScalarValue::TimestampSecond(Some(s), _) => s.checked_mul(1_000_000)?,
            ScalarValue::TimestampMillisecond(Some(ms), _) => ms.checked_mul(1_000)?,
            ScalarValue::TimestampMicrosecond(Some(us), _) => *us,
            ScalarValue::TimestampNanosecond(Some(ns), _) => ns.div_euclid(1_000),
            ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
                parse_timestamp(s)?.timestamp_micros()
            }
            _ => return None,
        },
        Expr::Cast(c) => return timestamp_of(&c.expr),
        Expr::TryCast(c) => return timestamp_of(&c.expr),
        _ => return None,
    };
    DateTime::from_timestamp_micros(micros)
}

#[cfg(test)]
mod tests {
    use datafusion::logical_expr::{col, lit};

    use super::*;

    #[test]
    fn days_from_eventtime() {
        let t = |s: &str| {
            lit(ScalarValue::TimestampMicrosecond(
                Some(parse_timestamp(s).unwrap().timestamp_micros()),
                Some("UTC".into()),
            ))
        };
        let f = col(EVENT_TIME)
            .gt_eq(t("2024-01-02T10:00:00Z"))
            .and(t("2024-01-05T00:00:00Z").gt(col(EVENT_TIME)));
        let day = |s: &str| s.parse::<NaiveDate>().ok();
        // Before midnight of the 5th: the 4th is the last day.
        assert_eq!(day_range(std::slice::from_ref(&f)), (day("2024-01-02"), day("2024-01-04")));
        let on = col(EVENT_TIME)
            .lt_eq(t("2024-01-05T00:00:00Z"))
            .and(col(EVENT_TIME).gt(t("2024-01-03T08:00:00Z")));
        assert_eq!(day_range(&[f, on]), (day("2024-01-03"), day("2024-01-04")));
        assert_eq!(day_range(&[col("eventname").eq(lit("x"))]), (None, None));
        let either = col(EVENT_TIME).gt(t("2024-01-01T00:00:00Z")).or(col("x").eq(lit(1)));
        assert_eq!(day_range(&[either]), (None, None));
    }
}
