//! Trino syntax DataFusion does not plan, rewritten on the parsed statement: lambdas whose
//! parameters are rows (`rt -> rt.tags`), `CROSS JOIN UNNEST(...) AS t(x)` over a column of the
//! table it follows, and casts of JSON to `varchar`, `map(varchar, json)` and `array(json)`.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, CaseWhen, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentList, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query, SelectItem, SetExpr,
    Statement, Subscript, TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::ast::{JoinOperator, Select};
use datafusion::sql::sqlparser::parser::Parser;

use super::dialect::LakeDialect;
use crate::{Error, Result};

/// Rewrites `statement` in place.
pub(crate) fn rewrite(statement: &mut Statement) -> Result<()> {
    let mut unnest = Unnests::default();
    if let ControlFlow::Break(e) = statement.visit(&mut unnest) {
        return Err(e);
    }
    let mut exprs = Exprs { renamed: unnest.renamed };
    if let ControlFlow::Break(e) = statement.visit(&mut exprs) {
        return Err(e);
    }
    let _ = statement.visit(&mut Names);
    Ok(())
}

/// The names CloudTrail Lake (Trino) gives unaliased select items, given as aliases so that
/// ORDER BY and outer queries can use them: a field reference is named by its field
/// (`userIdentity.arn` is `arn`), any other expression `_col0`, `_col1`, ... by its position
/// (not counted when the list has a wildcard). A name already taken keeps DataFusion's.
struct Names;

impl VisitorMut for Names {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let items = &mut select.projection;
        let wildcard =
            items.iter().any(|i| matches!(i, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
        let mut taken: HashSet<String> = items
            .iter()
            .filter_map(|i| match i {
                SelectItem::ExprWithAlias { alias, .. }
                | SelectItem::UnnamedExpr(Expr::Identifier(alias)) => Some(alias.value.to_lowercase()),
                _ => None,
            })
            .collect();
        for (i, item) in items.iter_mut().enumerate() {
            let SelectItem::UnnamedExpr(expr) = item else { continue };
            let name = match expr {
                Expr::Identifier(_) => continue,
                Expr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.to_lowercase()),
                _ if wildcard => None,
                _ => Some(format!("_col{i}")),
            };
            if let Some(name) = name
                && taken.insert(name.clone())
            {
                *item = SelectItem::ExprWithAlias { expr: expr.clone(), alias: Ident::with_quote('"', name) };
            }
        }
        ControlFlow::Continue(())
    }
}

fn unsupported<T>(what: impl Into<String>) -> ControlFlow<Error, T> {
    ControlFlow::Break(Error::Unsupported(what.into()))
}

/// Turns `FROM a CROSS JOIN UNNEST(a.xs) AS t(x)` (or `FROM a, UNNEST(...)`) into
/// `FROM (SELECT a.*, unnest(a.xs) AS x FROM a) AS a`, and remembers that `t` now reads `a`.
#[derive(Default)]
struct Unnests {
    renamed: Vec<(Ident, Ident)>,
}

impl VisitorMut for Unnests {
    type Break = Error;

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<Error> {
        self.set_expr(&mut query.body)
    }
}

impl Unnests {
    fn set_expr(&mut self, body: &mut SetExpr) -> ControlFlow<Error> {
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left)?;
                self.set_expr(right)
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn select(&mut self, select: &mut Select) -> ControlFlow<Error> {
        // `FROM a, UNNEST(...)`: the comma form joins the previous item.
        let mut i = 1;
        while i < select.from.len() {
            if matches!(select.from[i].relation, TableFactor::UNNEST { .. })
                && select.from[i].joins.is_empty()
            {
                let item = select.from.remove(i);
                let previous = &mut select.from[i - 1];
                if !previous.joins.is_empty() {
                    return unsupported("UNNEST after a JOIN; move the join into a subquery");
                }
                previous.relation = self.lateral(&previous.relation, item.relation)?;
            } else {
                i += 1;
            }
        }
        for item in &mut select.from {
            for join in std::mem::take(&mut item.joins) {
                if !matches!(join.relation, TableFactor::UNNEST { .. }) {
                    item.joins.push(join);
                    continue;
                }
                if !matches!(join.join_operator, JoinOperator::CrossJoin(_)) {
                    return unsupported(format!(
                        "UNNEST in a {} join; use CROSS JOIN UNNEST",
                        join_kind(&join.join_operator)
                    ));
                }
                if !item.joins.is_empty() {
                    return unsupported("UNNEST after a JOIN; move the join into a subquery");
                }
                item.relation = self.lateral(&item.relation, join.relation)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// `left` joined with the rows of `unnest`, as a derived table named like `left`.
    fn lateral(&mut self, left: &TableFactor, unnest: TableFactor) -> ControlFlow<Error, TableFactor> {
        let TableFactor::UNNEST { alias, array_exprs, with_offset, with_ordinality, .. } = unnest else {
            return unsupported("a lateral join that is not UNNEST");
        };
        if with_offset || with_ordinality {
            return unsupported("UNNEST ... WITH ORDINALITY");
        }
        let qualifier = match left {
            TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
                a.name.clone()
            }
            TableFactor::Table { name, .. } => match name.0.last().and_then(ObjectNamePart::as_ident) {
                Some(ident) => ident.clone(),
                None => return unsupported("UNNEST after a table function"),
            },
            _ => return unsupported("UNNEST after a subquery without an alias; name it (AS s)"),
        };
        let table = alias.as_ref().map(|a| a.name.clone());
        let mut columns: Vec<Ident> =
            alias.map(|a| a.columns.into_iter().map(|c| c.name).collect()).unwrap_or_default();
        if columns.is_empty() {
            // Without column names, each array's elements take the name of the table alias (or
            // `unnest`, as DataFusion names them).
            let name = table.clone().unwrap_or_else(|| Ident::new("unnest"));
            columns = (0..array_exprs.len()).map(|_| name.clone()).collect();
        }
        let items: Vec<String> = match (array_exprs.as_slice(), columns.as_slice()) {
            // One map: its keys and values.
            ([map], [k, v]) => {
                vec![format!("unnest(map_keys({map})) AS {k}"), format!("unnest(map_values({map})) AS {v}")]
            }
            (arrays, names) if arrays.len() == names.len() => {
                arrays.iter().zip(names).map(|(a, n)| format!("unnest({a}) AS {n}")).collect()
            }
            (arrays, names) => {
                return unsupported(format!(
                    "UNNEST of {} value(s) named by {} column(s)",
                    arrays.len(),
                    names.len()
                ));
            }
        };
        let sql = format!("SELECT {qualifier}.*, {} FROM {left}", items.join(", "));
        let subquery = match Parser::new(&LakeDialect).try_with_sql(&sql).and_then(|mut p| p.parse_query()) {
            Ok(q) => q,
            Err(e) => return ControlFlow::Break(Error::Unsupported(format!("UNNEST: {e}"))),
        };
        if let Some(table) = table {
            self.renamed.push((table, qualifier.clone()));
        }
        ControlFlow::Continue(TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(TableAlias { explicit: true, name: qualifier, columns: vec![], at: None }),
            sample: None,
        })
    }
}

fn join_kind(op: &JoinOperator) -> &'static str {
    match op {
        JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => "LEFT",
        JoinOperator::Right(_) | JoinOperator::RightOuter(_) => "RIGHT",
        JoinOperator::FullOuter(_) => "FULL",
        _ => "non-CROSS",
    }
}

/// Expression rewrites: references to renamed UNNEST aliases, lambda row fields, JSON casts.
struct Exprs {
    renamed: Vec<(Ident, Ident)>,
}

impl VisitorMut for Exprs {
    type Break = Error;

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<Error> {
        match expr {
            Expr::CompoundIdentifier(parts) => {
                if let Some((_, to)) = self.renamed.iter().find(|(from, _)| same(from, &parts[0])) {
                    parts[0] = to.clone();
                }
            }
            Expr::Lambda(lambda) => {
                let params: Vec<Ident> = lambda.params.iter().map(|p| p.name.clone()).collect();
                let _ = lambda.body.visit(&mut LambdaFields { params: &params });
            }
            // count_if(p) is count(CASE WHEN p THEN 1 END).
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("count_if") => {
                if let FunctionArguments::List(list) = &mut f.args
                    && let [FunctionArg::Unnamed(FunctionArgExpr::Expr(p))] = list.args.as_mut_slice()
                {
                    *p = Expr::Case {
                        case_token: AttachedToken::empty(),
                        end_token: AttachedToken::empty(),
                        operand: None,
                        conditions: vec![CaseWhen { condition: p.clone(), result: one() }],
                        else_result: None,
                    };
                    f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new("count"))]);
                }
            }
            // if(c, a[, b]) is CASE WHEN c THEN a [ELSE b] END: only the branch taken is evaluated.
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("if") => {
                let args: Vec<Expr> = match &f.args {
                    FunctionArguments::List(list) => list
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let given = match &f.args {
                    FunctionArguments::List(list) => list.args.len(),
                    _ => 0,
                };
                let (2 | 3) = given else {
                    return unsupported(format!("if takes 2 or 3 arguments, not {given}"));
                };
                if args.len() != given {
                    return unsupported("if takes its arguments by position");
                }
                *expr = Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: None,
                    conditions: vec![CaseWhen { condition: args[0].clone(), result: args[1].clone() }],
                    else_result: args.get(2).cloned().map(Box::new),
                };
            }
            Expr::Cast { kind: CastKind::Cast | CastKind::DoubleColon, expr: inner, data_type, .. } => {
                if let Some(call) = json_cast(inner, data_type)? {
                    *expr = call;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn one() -> Expr {
    Expr::Value(Value::Number("1".into(), false).into())
}

fn same(a: &Ident, b: &Ident) -> bool {
    a.value.eq_ignore_ascii_case(&b.value)
}

/// Inside a lambda body, `p.field.sub` (with `p` a parameter) becomes `p['field']['sub']`:
/// DataFusion resolves compound identifiers against tables only.
struct LambdaFields<'a> {
    params: &'a [Ident],
}

impl VisitorMut for LambdaFields<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = expr
            && parts.len() > 1
            && self.params.iter().any(|p| same(p, &parts[0]))
        {
            let root = Box::new(Expr::Identifier(parts[0].clone()));
            let access_chain = parts[1..]
                .iter()
                .map(|f| {
                    AccessExpr::Subscript(Subscript::Index {
                        index: Expr::Value(Value::SingleQuotedString(f.value.to_lowercase()).into()),
                    })
                })
                .collect();
            *expr = Expr::CompoundFieldAccess { root, access_chain };
        }
        ControlFlow::Continue(())
    }
}

/// Trino's casts of JSON values as calls of this crate's conversion functions: `CAST(j AS
/// varchar)` for a JSON-valued call (`json_extract`, `json_parse`, `json_array_get`), and
/// `CAST(x AS map(varchar, json|varchar))` / `array(json|varchar)` for any JSON text.
fn json_cast(inner: &Expr, to: &DataType) -> ControlFlow<Error, Option<Expr>> {
    let value_kind = |t: &DataType| match t {
        DataType::JSON => Some("json"),
        t if is_varchar(t) => Some("varchar"),
        _ => None,
    };
    let call = |name: &str, args: Vec<Expr>| {
        Some(Expr::Function(Function {
            name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect(),
                clauses: vec![],
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: vec![],
        }))
    };
    let text = |s: &str| Expr::Value(Value::SingleQuotedString(s.to_owned()).into());
    ControlFlow::Continue(match to {
        DataType::Map(k, v) => {
            let Some(kind) = value_kind(v).filter(|_| is_varchar(k)) else {
                return unsupported(format!("CAST to {to}; use map(varchar, json) or map(varchar, varchar)"));
            };
            call("json_to_map", vec![inner.clone(), text(kind)])
        }
        DataType::Array(def) => match def {
            datafusion::sql::sqlparser::ast::ArrayElemTypeDef::AngleBracket(t)
            | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::Parenthesis(t)
            | datafusion::sql::sqlparser::ast::ArrayElemTypeDef::SquareBracket(t, _)
                if value_kind(t).is_some() && is_json_call(inner) =>
            {
                call("json_to_array", vec![inner.clone(), text(value_kind(t).unwrap_or("json"))])
            }
            _ => None,
        },
        DataType::JSON => call("json_parse", vec![inner.clone()]),
        t if is_varchar(t) && is_json_call(inner) => call("json_to_varchar", vec![inner.clone()]),
        _ => None,
    })
}

fn is_varchar(t: &DataType) -> bool {
    matches!(t, DataType::Varchar(_) | DataType::String(_) | DataType::Text | DataType::CharVarying(_))
}

/// A call of a function whose value is JSON in Trino.
fn is_json_call(e: &Expr) -> bool {
    match e {
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_lowercase();
            matches!(name.as_str(), "json_extract" | "json_parse" | "json_array_get")
        }
        Expr::Nested(e) => is_json_call(e),
        _ => false,
    }
}
