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
    let type_of = |x: &Expr| x.get_type(schema).ok();
    if comparison {
        if let Some(lit) = type_of(&left).and_then(|t| literal_as(&right, &t)) {
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr { left, op, right: Box::new(lit) })));
        }
        if let Some(lit) = type_of(&right).and_then(|t| literal_as(&left, &t)) {
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr { left: Box::new(lit), op, right })));
        }
    }
    Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right })))
}

/// The literal `x` restated for a comparison with a value of type `other`: a boolean literal as
/// text against a string, `'true'` / `'false'` (any case) as a boolean against a boolean.
fn literal_as(x: &Expr, other: &DataType) -> Option<Expr> {
    let Expr::Literal(value, meta) = x else { return None };
    let value = match value {
        ScalarValue::Boolean(Some(b)) if other.is_string() => ScalarValue::Utf8(Some(b.to_string())),
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))
            if *other == DataType::Boolean
                && (s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")) =>
        {
            ScalarValue::Boolean(Some(s.eq_ignore_ascii_case("true")))
        }
        _ => return None,
    };
    Some(Expr::Literal(value, meta.clone()))
}
