//! A store's table: delta-rs's provider, plus partition pruning by time. Bounds on `eventtime`
//! in a query's filters become bounds on `eventdate` (the partition column) handed to the scan
//! as well, so whole days are skipped before any file is opened.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate};
use datafusion::catalog::Session;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::expr::{Between, BinaryExpr};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown, col, lit};
use datafusion::physical_plan::ExecutionPlan;
use trawl_store::schema::{EVENT_DATE, EVENT_TIME, epoch_day};
use trawl_store::time::parse_timestamp;

/// Files the scans of the current query skipped before opening any (whole partitions, Delta
/// statistics); the Parquet scan's own metrics cover the rest.
#[derive(Debug, Default)]
pub(crate) struct ScanTally {
    pub(crate) pruned: AtomicU64,
}

/// A store's Delta table with `eventtime`-to-`eventdate` pruning.
#[derive(Debug)]
pub(crate) struct StoreProvider {
    inner: Arc<dyn TableProvider>,
    files: u64,
    tally: Arc<ScanTally>,
}

impl StoreProvider {
    /// `files`: the live files of the table, to count those a scan skips.
    pub(crate) fn new(inner: Arc<dyn TableProvider>, files: u64, tally: Arc<ScanTally>) -> Self {
        Self { inner, files, tally }
    }
}

/// Data files a physical plan will read.
fn planned_files(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    let node: &dyn Any = plan.as_ref();
    let own = node
        .downcast_ref::<DataSourceExec>()
        .and_then(|exec| {
            let source: &dyn Any = exec.data_source().as_ref();
            source
                .downcast_ref::<FileScanConfig>()
                .map(|c| c.file_groups.iter().map(|g| g.len() as u64).sum())
        })
        .unwrap_or(0);
    own + plan.children().into_iter().map(planned_files).sum::<u64>()
}

#[async_trait]
impl TableProvider for StoreProvider {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut all = filters.to_vec();
        all.extend(filters.iter().flat_map(date_bounds));
        let plan = self.inner.scan(state, projection, &all, limit).await?;
        self.tally.pruned.fetch_add(self.files.saturating_sub(planned_files(&plan)), Ordering::Relaxed);
        Ok(plan)
    }
}

/// `eventdate` bounds implied by one filter on `eventtime`.
pub(crate) fn date_bounds(filter: &Expr) -> Vec<Expr> {
    day_bounds(filter)
        .into_iter()
        .map(|(bound, day)| match bound {
            Bound::From => col(EVENT_DATE).gt_eq(lit_date(day)),
            Bound::To => col(EVENT_DATE).lt_eq(lit_date(day)),
            Bound::On => col(EVENT_DATE).eq(lit_date(day)),
        })
        .collect()
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

fn lit_date(day: NaiveDate) -> Expr {
    lit(ScalarValue::Date32(Some(epoch_day(day))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_from_eventtime() {
        let t = |s: &str| {
            lit(ScalarValue::TimestampMicrosecond(
                Some(parse_timestamp(s).unwrap().timestamp_micros()),
                Some("UTC".into()),
            ))
        };
        let f = col(EVENT_TIME)
            .gt_eq(t("2024-01-02T10:00:00Z"))
            .and(t("2024-01-05T00:00:00Z").gt(col(EVENT_TIME)));
        let got: Vec<String> = date_bounds(&f).iter().map(|e| e.to_string()).collect();
        // Before midnight of the 5th: the 4th is the last day.
        assert_eq!(got, vec!["eventdate >= Date32(\"2024-01-02\")", "eventdate <= Date32(\"2024-01-04\")"]);
        let day = |s: &str| s.parse::<NaiveDate>().ok();
        assert_eq!(day_range(std::slice::from_ref(&f)), (day("2024-01-02"), day("2024-01-04")));
        let on = col(EVENT_TIME)
            .lt_eq(t("2024-01-05T00:00:00Z"))
            .and(col(EVENT_TIME).gt(t("2024-01-03T08:00:00Z")));
        assert_eq!(day_range(&[f, on]), (day("2024-01-03"), day("2024-01-04")));
        assert!(date_bounds(&col("eventname").eq(lit("x"))).is_empty());
        assert!(
            date_bounds(&col(EVENT_TIME).gt(t("2024-01-01T00:00:00Z")).or(col("x").eq(lit(1)))).is_empty()
        );
    }
}
