//! Joins and UNNEST can produce rows from memory for a long time without returning to the
//! scheduler, so a cancelled query (Ctrl-C in the shell) would run on. Wrapping their output in
//! DataFusion's `CooperativeExec` makes them yield when the task's budget is spent, where an
//! abort takes effect.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

/// The physical operators whose output is wrapped.
const PRODUCERS: &[&str] =
    &["CrossJoinExec", "NestedLoopJoinExec", "HashJoinExec", "SortMergeJoinExec", "UnnestExec"];

#[derive(Debug, Default)]
pub(crate) struct YieldingProducers;

impl PhysicalOptimizerRule for YieldingProducers {
    fn name(&self) -> &str {
        "YieldingProducers"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if PRODUCERS.contains(&node.name()) {
                Ok(Transformed::yes(Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>))
            } else {
                Ok(Transformed::no(node))
            }
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}
