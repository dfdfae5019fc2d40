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
    /// Rows that passed the filters applied to the stores' rows (Lake's definition: the events
    /// that matched the query's filters, not the rows of its result).
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
