//! Trino's `try(expression)`: the value of the expression, or NULL where evaluating it fails
//! (division by zero, a cast or a function argument that is invalid, a number out of range).
//!
//! A function's arguments are evaluated before the function runs, and the optimizer folds
//! constants (failing on `CAST('x' AS INTEGER)`) before any function sees them, so `try` cannot
//! be a plain function. [`TryRule`], an analyzer rule that runs once types are resolved, takes
//! the expression whole: a [`TryEval`] holds it, planned over its own input columns, and is
//! called with those columns only, which cannot fail. It evaluates a batch at once and, only
//! when that fails, row by row, so that one bad row gives one NULL and the others keep their
//! values. The optimizer still simplifies the expression (constants, `now()`) through
//! [`TryEval`]'s `simplify`, which keeps the expression as written when simplifying it fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use arrow::compute::concat;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, DFSchemaRef, DataFusionError, Result};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};

/// `try(expression)` as written; [`TryRule`] turns it into a [`TryEval`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Try {
    signature: Signature,
}

impl Try {
    pub(super) fn new() -> Self {
        Self { signature: Signature::any(1, Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for Try {
    fn name(&self) -> &str {
        "try"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(self.name(), args.arg_fields[0].data_type().clone(), true)))
    }

    /// Reached only for an expression [`TryRule`] left as it was (one that reads a column of an
    /// outer query): its value was computed without error, or the query has failed already.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

/// Replaces each `try(expression)` of a plan by a [`TryEval`] of the expression.
#[derive(Debug)]
pub(crate) struct TryRule;

impl AnalyzerRule for TryRule {
    fn name(&self) -> &str {
        "trawl_try"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = plan.transform_up_with_subqueries(|plan| {
            // The columns an expression of this node may read: those of its inputs, or of the
            // table a scan reads.
            let schema = match &plan {
                LogicalPlan::TableScan(scan) => Arc::clone(&scan.projected_schema),
                plan => Arc::new(merge_schema(&plan.inputs())),
            };
            plan.map_expressions(|e| {
                e.transform_up(|e| match e {
                    Expr::ScalarFunction(f) if f.func.inner().is::<Try>() => {
                        let name = Expr::ScalarFunction(f.clone()).schema_name().to_string();
                        match TryEval::plan(&f.args[0], &schema, name)? {
                            Some((eval, columns)) => {
                                Ok(Transformed::yes(ScalarUDF::new_from_impl(eval).call(columns)))
                            }
                            None => Ok(Transformed::no(Expr::ScalarFunction(f))),
                        }
                    }
                    e => Ok(Transformed::no(e)),
                })
            })
        })?;
        Ok(plan.data)
    }
}

/// An expression evaluated over its own input columns, NULL where it fails.
#[derive(Debug)]
pub(super) struct TryEval {
    /// The expression, its columns renamed to their position (`c0`, `c1`, ...), so that the
    /// optimizer may rename or move the columns passed in without touching it.
    expr: Expr,
    schema: DFSchemaRef,
    /// The name of `try(...)` as written: the column keeps it.
    name: String,
    physical: Arc<dyn PhysicalExpr>,
    returns: DataType,
    /// Whether the optimizer's simplification has been applied to `expr` (once is enough).
    simplified: bool,
    signature: Signature,
}

impl TryEval {
    /// The evaluator of `expr` over `schema`, and the columns to call it with; `None` when the
    /// expression reads a column of an outer query.
    fn plan(expr: &Expr, schema: &DFSchema, name: String) -> Result<Option<(Self, Vec<Expr>)>> {
        let mut outer = false;
        expr.apply(|e| {
            outer |= matches!(e, Expr::OuterReferenceColumn(..));
            Ok(TreeNodeRecursion::Continue)
        })?;
        if outer {
            return Ok(None);
        }
        // The distinct columns in a fixed order: the same expression plans the same way.
        let columns: BTreeMap<String, Column> =
            expr.column_refs().into_iter().map(|c| (c.flat_name(), c.clone())).collect();
        let position: BTreeMap<String, usize> =
            columns.keys().enumerate().map(|(i, name)| (name.clone(), i)).collect();
        let fields = columns
            .values()
            .enumerate()
            .map(|(i, c)| {
                let (_, field) = schema.qualified_field_from_column(c)?;
                Ok(field.as_ref().clone().with_name(format!("c{i}")))
            })
            .collect::<Result<Vec<Field>>>()?;
        let renamed = expr
            .clone()
            .transform_up(|e| match e {
                Expr::Column(c) => {
                    let i = position[&c.flat_name()];
                    Ok(Transformed::yes(Expr::Column(Column::new_unqualified(format!("c{i}")))))
                }
                e => Ok(Transformed::no(e)),
            })?
            .data;
        let own = Arc::new(DFSchema::try_from(Schema::new(fields))?);
        let eval = Self::new(renamed, own, name, false)?;
        Ok(Some((eval, columns.into_values().map(Expr::Column).collect())))
    }

    fn new(expr: Expr, schema: DFSchemaRef, name: String, simplified: bool) -> Result<Self> {
        let physical = create_physical_expr(
            &expr,
            &schema,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )?;
        let returns = physical.data_type(schema.as_arrow())?;
        let signature = match schema.fields().len() {
            0 => Signature::nullary(Volatility::Immutable),
            n => Signature::any(n, Volatility::Immutable),
        };
        Ok(Self { expr, schema, name, physical, returns, simplified, signature })
    }

    fn arrow_schema(&self) -> SchemaRef {
        Arc::clone(self.schema.inner())
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef> {
        self.physical.evaluate(batch)?.into_array(batch.num_rows())
    }
}

/// The errors Trino's `try` turns into NULL: those of the values, not of the machine.
fn caught(e: &DataFusionError) -> bool {
    match e.find_root() {
        DataFusionError::Execution(_) => true,
        DataFusionError::ArrowError(e, _) => !matches!(
            e.as_ref(),
            ArrowError::IoError(..) | ArrowError::MemoryError(_) | ArrowError::ExternalError(_)
        ),
        _ => false,
    }
}

impl PartialEq for TryEval {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.schema == other.schema && self.simplified == other.simplified
    }
}

impl Eq for TryEval {}

impl std::hash::Hash for TryEval {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
        self.schema.hash(state);
        self.simplified.hash(state);
    }
}

impl ScalarUDFImpl for TryEval {
    fn name(&self) -> &str {
        "try"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn return_field_from_args(&self, _: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        Ok(Arc::new(Field::new(self.name(), self.returns.clone(), true)))
    }

    fn schema_name(&self, _: &[Expr]) -> Result<String> {
        Ok(self.name.clone())
    }

    fn display_name(&self, _: &[Expr]) -> Result<String> {
        Ok(self.name.clone())
    }

    /// The optimizer's simplification, applied to the expression in its own schema. An error
    /// there (a constant that cannot be cast) is one `try` must catch when it runs.
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        if self.simplified {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let own = SimplifyContext::builder()
            .with_schema(Arc::clone(&self.schema))
            .with_query_execution_start_time(info.query_execution_start_time())
            .with_config_options(Arc::clone(info.config_options()))
            .build();
        let expr = ExprSimplifier::new(own).simplify(self.expr.clone()).unwrap_or_else(|_| self.expr.clone());
        let eval = Self::new(expr, Arc::clone(&self.schema), self.name.clone(), true)?;
        Ok(ExprSimplifyResult::Simplified(ScalarUDF::new_from_impl(eval).call(args)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let columns = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(self.arrow_schema(), columns, &options)?;
        match self.evaluate(&batch) {
            Ok(values) => return Ok(ColumnarValue::Array(values)),
            Err(e) if !caught(&e) => return Err(e),
            Err(_) => {}
        }
        let values = (0..rows)
            .map(|row| match self.evaluate(&batch.slice(row, 1)) {
                Ok(value) => Ok(value),
                Err(e) if caught(&e) => Ok(new_null_array(&self.returns, 1)),
                Err(e) => Err(e),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let values: Vec<&dyn arrow::array::Array> = values.iter().map(|v| v.as_ref()).collect();
        Ok(ColumnarValue::Array(concat(&values)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{context, error, value};

    #[tokio::test]
    async fn try_gives_null_where_the_expression_fails() {
        let ctx = context();
        assert_eq!(value(&ctx, "SELECT try(1 / 0)").await, "NULL");
        assert_eq!(value(&ctx, "SELECT try(6 / 3)").await, "2");
        assert_eq!(value(&ctx, "SELECT try(CAST('x' AS INTEGER))").await, "NULL");
        assert_eq!(value(&ctx, "SELECT coalesce(try(CAST('12' AS INTEGER)), -1)").await, "12");
        // Row by row: the failing row is NULL, the others keep their value.
        let sql = "SELECT string_agg(coalesce(CAST(try(10 / d) AS VARCHAR), 'null'), ',' ORDER BY d) \
                   FROM (VALUES (0), (2), (5), (0)) AS t(d)";
        assert_eq!(value(&ctx, sql).await, "null,null,5,2");
        // Over aggregates, and inside them.
        let sql = "SELECT try(sum(a) / sum(b)) FROM (VALUES (1, 0), (2, 0)) AS t(a, b)";
        assert_eq!(value(&ctx, sql).await, "NULL");
        let sql = "SELECT sum(try(a / b)) FROM (VALUES (4, 2), (1, 0), (9, 3)) AS t(a, b)";
        assert_eq!(value(&ctx, sql).await, "5");
        // In a filter, over columns with a qualifier.
        let sql = "SELECT count(*) FROM (VALUES ('1'), ('x'), ('3')) AS t(s) \
                   WHERE try(CAST(t.s AS INTEGER)) IS NOT NULL";
        assert_eq!(value(&ctx, sql).await, "2");
        // Constants are still folded, and now() is the statement's time.
        assert_eq!(value(&ctx, "SELECT try(now()) = now()").await, "true");
        assert_eq!(value(&ctx, "SELECT try(try(1 / 0) + 1)").await, "NULL");
        // A function argument that is invalid (Trino: INVALID_FUNCTION_ARGUMENT) is caught.
        assert_eq!(value(&ctx, "SELECT try(json_extract_scalar('{}', 'no path'))").await, "NULL");
        // A query that is wrong is not hidden: types are checked before anything runs.
        let e = error(&ctx, "SELECT try(date_add('day', 'x', now()))").await;
        assert!(e.contains("date_add: argument 2 (value) is varchar"), "{e}");
        // A wrong argument count is a plan error, not a NULL.
        let e = error(&ctx, "SELECT try(1, 2)").await;
        assert!(e.contains("try"), "{e}");
    }
}
