//! Trino functions that CloudTrail Lake queries use and DataFusion lacks or names differently,
//! with Trino's semantics, grouped by family: [`json`], [`time`], [`array`] (arrays and maps),
//! [`string`] (strings and regular expressions), [`url`], [`conditional`] (`try`), [`conversion`]
//! and [`aggregate`].
//!
//! Each function is a [`Fun`]: its name, the arguments it takes, its return type and its
//! evaluation. The arguments are checked when the query is planned, so a type error names the
//! function and the argument (`date_add: argument 2 (value) is varchar; it must be bigint`).
//! [`coverage`] lists Trino's documented functions of each family and says which run here.

pub(crate) mod aggregate;
mod array;
mod conditional;
mod conversion;
#[cfg(test)]
mod coverage;
mod json;
pub(crate) mod jsonpath;
mod string;
mod time;
mod url;

use std::sync::Arc;

pub(crate) use conditional::TryRule;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Every scalar function of the pack, ready to register.
pub(crate) fn scalars() -> Vec<ScalarUDF> {
    [json::all(), time::all(), array::all(), string::all(), url::all(), conversion::all()]
        .into_iter()
        .flatten()
        .map(ScalarUDF::new_from_impl)
        .chain([
            ScalarUDF::new_from_impl(time::AtTimezone::new()),
            ScalarUDF::new_from_impl(conditional::Try::new()),
        ])
        .collect()
}

/// What an argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Arg {
    /// varchar (any of Arrow's string types, read where it is).
    Text,
    /// bigint (any integer).
    Int,
    /// double (any number).
    Float,
    /// timestamp (any unit and zone, a date, or text in a timestamp's shape).
    Time,
    /// Any type: the function looks at it.
    Any,
}

impl Arg {
    fn describe(self) -> &'static str {
        match self {
            Arg::Text => "varchar",
            Arg::Int => "bigint",
            Arg::Float => "double",
            Arg::Time => "timestamp",
            Arg::Any => "any type",
        }
    }

    /// The type an argument of type `t` is cast to; `None` when it cannot be this argument.
    fn coerce(self, t: &DataType) -> Option<DataType> {
        use DataType::*;
        Some(match (self, t) {
            (Arg::Any, t) => t.clone(),
            (Arg::Text, Utf8 | LargeUtf8 | Utf8View) => t.clone(),
            (Arg::Text, Null) => Utf8,
            (Arg::Text, Dictionary(_, v)) if matches!(v.as_ref(), Utf8 | LargeUtf8 | Utf8View) => Utf8,
            (Arg::Int, Null | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32) => Int64,
            (Arg::Float, Null) => Float64,
            (Arg::Float, t) if t.is_numeric() => Float64,
            // A timestamp keeps its zone: date parts are read in it.
            // (one without a zone is UTC, as CloudTrail's times are).
            (Arg::Time, Timestamp(_, zone)) => {
                Timestamp(TimeUnit::Microsecond, Some(zone.clone().unwrap_or_else(|| "UTC".into())))
            }
            (Arg::Time, Null | Date32 | Date64 | Utf8 | LargeUtf8 | Utf8View) => utc_micros(),
            _ => return None,
        })
    }
}

/// How a function's return type follows from its arguments' types.
pub(crate) type Returns = fn(&[DataType]) -> Result<DataType>;
/// A function's evaluation: its arguments (coerced, as arrays of equal length) and the return
/// type; gives one value per row.
pub(crate) type Eval = fn(&[ArrayRef], &DataType) -> Result<ArrayRef>;

/// One Trino function.
#[derive(Debug)]
pub(crate) struct Fun {
    name: &'static str,
    aliases: Vec<String>,
    /// The arguments: what each is called in errors, and what it must be.
    args: &'static [(&'static str, Arg)],
    /// How many of `args` must be given (the rest are optional).
    required: usize,
    returns: Returns,
    eval: Eval,
    signature: Signature,
}

impl Fun {
    /// A function of `args`, all required.
    pub(crate) fn new(
        name: &'static str,
        args: &'static [(&'static str, Arg)],
        returns: Returns,
        eval: Eval,
    ) -> Self {
        Self {
            name,
            aliases: Vec::new(),
            args,
            required: args.len(),
            returns,
            eval,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    /// Only the first `n` arguments are required.
    pub(crate) fn required(mut self, n: usize) -> Self {
        self.required = n;
        self
    }

    pub(crate) fn aliases(mut self, aliases: &[&str]) -> Self {
        self.aliases = aliases.iter().map(|a| (*a).to_owned()).collect();
        self
    }
}

impl PartialEq for Fun {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Fun {}

impl std::hash::Hash for Fun {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for Fun {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name;
        if types.len() < self.required || types.len() > self.args.len() {
            let labels: Vec<&str> = self.args.iter().map(|(label, _)| *label).collect();
            let count = match (self.required, self.args.len()) {
                (r, n) if r == n => format!("{n}"),
                (r, n) => format!("{r} to {n}"),
            };
            return plan_err!("{name} takes {count} arguments ({}), not {}", labels.join(", "), types.len());
        }
        types
            .iter()
            .zip(self.args)
            .enumerate()
            .map(|(i, (t, (label, arg)))| match arg.coerce(t) {
                Some(t) => Ok(t),
                None => plan_err!(
                    "{name}: argument {} ({label}) is {}; it must be {}",
                    i + 1,
                    trino_type(t),
                    arg.describe()
                ),
            })
            .collect()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        (self.returns)(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = (self.eval)(&arrays, args.return_field.data_type())?;
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// A type as Lake's schema reference (Trino) writes it.
pub fn trino_type(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 | DataType::UInt64 | DataType::UInt32 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Null => "unknown".into(),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map({}, {})", trino_type(kv[0].data_type()), trino_type(kv[1].data_type()))
            }
            _ => "map".into(),
        },
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            format!("array({})", trino_type(item.data_type()))
        }
        DataType::Struct(fields) => {
            let fields: Vec<String> =
                fields.iter().map(|f| format!("{} {}", f.name(), trino_type(f.data_type()))).collect();
            format!("row({})", fields.join(", "))
        }
        other => other.to_string().to_lowercase(),
    }
}

pub(crate) fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Return types that do not depend on the arguments.
pub(crate) fn text(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Utf8)
}
pub(crate) fn int(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Int64)
}
pub(crate) fn float(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Float64)
}
pub(crate) fn boolean(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::Boolean)
}
pub(crate) fn timestamp(_: &[DataType]) -> Result<DataType> {
    Ok(utc_micros())
}
pub(crate) fn text_list(_: &[DataType]) -> Result<DataType> {
    Ok(DataType::new_list(DataType::Utf8, true))
}

/// Calls `each` with every row of a string column (row, value), reading Utf8View and LargeUtf8
/// where they are (Parquet's strings come as views: a cast would copy every document); other
/// types are cast to text first.
pub(crate) fn with_strings(a: &ArrayRef, each: &mut dyn FnMut(usize, Option<&str>)) -> Result<()> {
    match a.data_type() {
        DataType::Utf8View => a.as_string_view().iter().enumerate().for_each(|(i, v)| each(i, v)),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().enumerate().for_each(|(i, v)| each(i, v)),
        _ => strings(a)?.as_string::<i32>().iter().enumerate().for_each(|(i, v)| each(i, v)),
    }
    Ok(())
}

/// A string column as Utf8, cast once (no copy when it is Utf8 already), to read row by row.
pub(crate) fn utf8(a: &ArrayRef) -> Result<arrow::array::StringArray> {
    Ok(strings(a)?.as_string::<i32>().clone())
}

pub(crate) fn strings(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Utf8)?)
}

pub(crate) fn ints(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Int64)?)
}

/// As [`with_strings`], with an `each` that may fail: the first error ends the walk.
pub(crate) fn try_strings(
    a: &ArrayRef,
    mut each: impl FnMut(usize, Option<&str>) -> Result<()>,
) -> Result<()> {
    let mut failed = None;
    with_strings(a, &mut |i, v| {
        if failed.is_none() {
            failed = each(i, v).err();
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// A string column of `f` over each row of a string column; NULL stays NULL.
pub(crate) fn map_text(a: &ArrayRef, mut f: impl FnMut(&str) -> Result<Option<String>>) -> Result<ArrayRef> {
    let mut b = arrow::array::StringBuilder::with_capacity(a.len(), 0);
    try_strings(a, |_, v| {
        b.append_option(v.map(&mut f).transpose()?.flatten());
        Ok(())
    })?;
    Ok(Arc::new(b.finish()))
}

#[cfg(test)]
pub(crate) mod tests {
    use datafusion::prelude::SessionContext;

    /// A context with the pack registered, as `Lake::open` makes it.
    pub(crate) fn context() -> SessionContext {
        let ctx = SessionContext::new();
        crate::register_functions(&ctx);
        ctx
    }

    /// The one value `sql` gives, as text.
    pub(crate) async fn value(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}")).collect().await;
        let batches = batches.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let options = arrow::util::display::FormatOptions::default().with_null("NULL");
        let column = batches[0].column(0);
        arrow::util::display::ArrayFormatter::try_new(column.as_ref(), &options).unwrap().value(0).to_string()
    }

    /// The planning or execution error of `sql`.
    pub(crate) async fn error(ctx: &SessionContext, sql: &str) -> String {
        match ctx.sql(sql).await {
            Err(e) => e.to_string(),
            Ok(df) => match df.collect().await {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{sql}: no error"),
            },
        }
    }

    #[tokio::test]
    async fn type_errors_name_the_function_and_the_argument() {
        let ctx = context();
        let e = error(&ctx, "SELECT date_add('day', 'x', now())").await;
        assert!(e.contains("date_add: argument 2 (value) is varchar; it must be bigint"), "{e}");
        let e = error(&ctx, "SELECT json_extract_scalar(1, '$.a')").await;
        assert!(e.contains("json_extract_scalar: argument 1 (json) is bigint; it must be varchar"), "{e}");
        let e = error(&ctx, "SELECT regexp_extract('a')").await;
        assert!(e.contains("regexp_extract takes 2 to 3 arguments (string, pattern, group), not 1"), "{e}");
    }
}
