//! Lake's query statistics, read from the metrics of an executed physical plan.

use std::sync::Arc;
use std::time::Duration;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricValue;

/// What a query read and returned, as CloudTrail Lake's `DescribeQuery` reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Rows read from the stores' files (after file and row-group pruning).
    pub events_scanned: u64,
    /// Rows the query returned.
    pub events_matched: u64,
    /// Bytes read from the stores' files.
    pub bytes_scanned: u64,
    /// Files opened.
    pub files_scanned: u64,
    /// Files skipped by partition or statistics pruning.
    pub files_pruned: u64,
    /// Wall time of planning and execution.
    pub execution_time: Duration,
}

impl QueryStats {
    /// Sums the scan metrics of every leaf of `plan`.
    pub fn from_plan(plan: &Arc<dyn ExecutionPlan>) -> Self {
        let mut stats = QueryStats::default();
        collect(plan, &mut stats);
        stats
    }
}

fn collect(plan: &Arc<dyn ExecutionPlan>, stats: &mut QueryStats) {
    let children = plan.children();
    if children.is_empty()
        && let Some(metrics) = plan.metrics()
    {
        for m in metrics.iter() {
            match (m.value(), m.value().name()) {
                (MetricValue::OutputRows(c), _) => stats.events_scanned += c.value() as u64,
                // Rows a filter pushed into the scan read and dropped were scanned too.
                (v, "pushdown_rows_pruned") => stats.events_scanned += v.as_usize() as u64,
                (v, "bytes_scanned") => stats.bytes_scanned += v.as_usize() as u64,
                (MetricValue::PruningMetrics { pruning_metrics, .. }, "files_ranges_pruned_statistics") => {
                    stats.files_pruned += pruning_metrics.pruned() as u64;
                    stats.files_scanned += pruning_metrics.matched() as u64;
                }
                _ => {}
            }
        }
    }
    for child in children {
        collect(child, stats);
    }
}
