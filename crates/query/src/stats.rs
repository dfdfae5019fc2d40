//! Lake's query statistics, read from the metrics of an executed physical plan.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;

/// What a query read and returned, as CloudTrail Lake's `DescribeQuery` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Rows read from the stores' files (after file and row-group pruning).
    pub events_scanned: u64,
    /// Rows that passed the filters applied to the stores' rows (Lake's definition: the events
    /// that matched the query's filters, not the rows of its result).
    pub events_matched: u64,
    /// Bytes read from the stores' files.
    pub bytes_scanned: u64,
    /// Data files read (their footers at least), each counted once however many byte ranges
    /// of it the scan read in parallel.
    pub files_scanned: u64,
    /// Data files skipped unread: by partition, by the `eventtime` statistics of the Delta log
    /// (filters, and the top-n of `ORDER BY ... LIMIT`), by the map lookups' pre-scan.
    pub files_pruned: u64,
    /// Wall time of planning and execution.
    pub execution_time: Duration,
}

impl QueryStats {
    /// Sums the scan metrics of every leaf of `plan`.
    pub fn from_plan(plan: &Arc<dyn ExecutionPlan>) -> Self {
        let mut stats = QueryStats::default();
        let mut files = Files::default();
        collect(plan, &mut stats, &mut files);
        stats.files_scanned = files.read.len() as u64;
        stats.files_pruned = files.seen.difference(&files.read).count() as u64;
        let (closed, open) = matched(plan);
        stats.events_matched = closed + open.unwrap_or(0);
        stats
    }
}

/// Operators that pass a scan's rows on unchanged in number: above a scan, a chain of them and
/// filters still counts the scan's matching rows.
const PASSTHROUGH: &[&str] = &[
    "ProjectionExec",
    "CoalesceBatchesExec",
    "RepartitionExec",
    "CoalescePartitionsExec",
    "CooperativeExec",
];

/// The rows that passed the filters over each scan of `plan`: for a scan, the output of the
/// highest filter in the chain of filters and pass-through operators right above it (its own
/// output when none filters). Returns the sum over chains that ended below `plan`, and the
/// count of the chain `plan` itself ends (`None` when `plan` is not in one).
fn matched(plan: &Arc<dyn ExecutionPlan>) -> (u64, Option<u64>) {
    let output = |p: &Arc<dyn ExecutionPlan>| p.metrics().and_then(|m| m.output_rows()).unwrap_or(0) as u64;
    let children = plan.children();
    if children.is_empty() {
        return match plan.metrics() {
            Some(_) => (0, Some(output(plan))),
            None => (0, None),
        };
    }
    let name = plan.name();
    if let [child] = children.as_slice()
        && (name == "FilterExec" || PASSTHROUGH.contains(&name))
    {
        let (closed, open) = matched(child);
        let open = open.map(|rows| if name == "FilterExec" { output(plan) } else { rows });
        return (closed, open);
    }
    let closed = children
        .iter()
        .map(|c| {
            let (closed, open) = matched(c);
            closed + open.unwrap_or(0)
        })
        .sum();
    (closed, None)
}

/// The data files a plan's scans came to, by name. DataFusion splits large files into byte
/// ranges scanned in parallel and counts ranges, not files; its per-file metrics are labelled
/// with the file's name, and a range's metadata is loaded only once the range is not pruned.
#[derive(Default)]
struct Files {
    /// Files a range of which was prepared for reading.
    seen: HashSet<Arc<str>>,
    /// Files whose metadata a range loaded: read.
    read: HashSet<Arc<str>>,
}

fn collect(plan: &Arc<dyn ExecutionPlan>, stats: &mut QueryStats, files: &mut Files) {
    let children = plan.children();
    if children.is_empty()
        && let Some(metrics) = plan.metrics()
    {
        for m in metrics.iter() {
            let file =
                m.labels().iter().find(|l| l.name() == "filename").map(|l| Arc::<str>::from(l.value()));
            if let Some(file) = &file {
                files.seen.insert(file.clone());
            }
            match (m.value(), m.value().name()) {
                (MetricValue::OutputRows(c), _) => stats.events_scanned += c.value() as u64,
                // Rows a filter pushed into the scan read and dropped were scanned too.
                (v, "pushdown_rows_pruned") => stats.events_scanned += v.as_usize() as u64,
                (v, "bytes_scanned") => stats.bytes_scanned += v.as_usize() as u64,
                // The timer adds at least a nanosecond each time it runs.
                (v, "metadata_load_time") if v.as_usize() > 0 => {
                    if let Some(file) = file {
                        files.read.insert(file);
                    }
                }
                _ => {}
            }
        }
    }
    for child in children {
        collect(child, stats, files);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::file_format::options::ParquetReadOptions;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::QueryStats;

    /// DataFusion scans a large file as byte ranges in parallel and counts each range; Lake
    /// counts files. One file of eight row groups, scanned as four ranges: one file scanned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_split_into_ranges_is_scanned_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(10_000)).build();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema.clone(), Some(props)).unwrap();
        let values = Int64Array::from_iter_values(0..80_000);
        writer.write(&RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap()).unwrap();
        writer.close().unwrap();

        let config = SessionConfig::new()
            .with_target_partitions(4)
            .set_usize("datafusion.optimizer.repartition_file_min_size", 0);
        let ctx = SessionContext::new_with_config(config);
        ctx.register_parquet("t", path.to_str().unwrap(), ParquetReadOptions::default()).await.unwrap();
        let plan = ctx
            .sql("SELECT sum(v) FROM t WHERE v % 2 = 0")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(true).to_string();
        assert!(text.matches("events.parquet:").count() > 1, "not split into ranges: {text}");
        collect(plan.clone(), ctx.task_ctx()).await.unwrap();

        let stats = QueryStats::from_plan(&plan);
        assert_eq!((stats.files_scanned, stats.files_pruned), (1, 0), "{stats:?}");
        assert_eq!(stats.events_scanned, 80_000, "{stats:?}");
    }
}
