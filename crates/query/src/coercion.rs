//! Lake's implicit coercions that DataFusion does not make: a string column compared with a
//! boolean literal (`sessionCredentialFromConsole = true`, the column being a string in Lake's
//! schema) compares with the literal's text.

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::BinaryExpr;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// Runs before DataFusion's type coercion.
#[derive(Debug, Default)]
pub(crate) struct StringBoolComparison;

impl AnalyzerRule for StringBoolComparison {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = DFSchema::empty();
            for input in plan.inputs() {
                schema.merge(input.schema());
            }
            plan.map_expressions(|e| e.transform_up(|e| rewrite(e, &schema)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "trawl_string_bool_comparison"
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else { return Ok(Transformed::no(e)) };
    let comparison =
        matches!(op, Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom);
    let is_string = |x: &Expr| x.get_type(schema).is_ok_and(|t| t.is_string());
    let text = |x: &Expr| match x {
        Expr::Literal(ScalarValue::Boolean(Some(b)), meta) => {
            Some(Expr::Literal(ScalarValue::Utf8(Some(b.to_string())), meta.clone()))
        }
        _ => None,
    };
    let is_bool = |x: &Expr| x.get_type(schema).is_ok_and(|t| t == DataType::Boolean);
    let boolean = |x: &Expr| match x {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)), meta)
            if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
        {
            Some(Expr::Literal(ScalarValue::Boolean(Some(s.eq_ignore_ascii_case("true"))), meta.clone()))
        }
        _ => None,
    };
    if comparison {
        // A boolean column against 'true' / 'false': the literal becomes a boolean.
        if let Some(lit) = boolean(&right).filter(|_| is_bool(&left)) {
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right: Box::new(lit) })));
        }
        if let Some(lit) = boolean(&left).filter(|_| is_bool(&right)) {
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: Box::new(lit), op, right })));
        }
        if let Some(lit) = text(&right).filter(|_| is_string(&left)) {
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right: Box::new(lit) })));
        }
        if let Some(lit) = text(&left).filter(|_| is_string(&right)) {
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: Box::new(lit), op, right })));
        }
    }
    Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right })))
}
