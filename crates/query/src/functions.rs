//! Trino functions CloudTrail Lake queries use and DataFusion lacks (or names differently),
//! with Trino's semantics: 1-based `element_at` on maps and arrays, JSONPath functions over JSON
//! text, ISO 8601 conversions, and date parts.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    new_null_array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Datelike, Timelike, Utc};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

/// Every function of the pack, ready to register.
pub(crate) fn all() -> Vec<ScalarUDF> {
    use Kind::*;
    [
        (ElementAt, "element_at", &[][..], 2),
        (JsonExtractScalar, "json_extract_scalar", &[], 2),
        (JsonExtract, "json_extract", &[], 2),
        (JsonParse, "json_parse", &[], 1),
        (JsonFormat, "json_format", &[], 1),
        (JsonArrayLength, "json_array_length", &[], 1),
        (JsonArrayGet, "json_array_get", &[], 2),
        (JsonArrayContains, "json_array_contains", &[], 2),
        (FromIso8601, "from_iso8601_timestamp", &[], 1),
        (ToIso8601, "to_iso8601", &[], 1),
        (DayOfWeek, "day_of_week", &["dow"], 1),
        (DayOfYear, "day_of_year", &["doy"], 1),
        (Week, "week", &["week_of_year"], 1),
        (Year, "year", &[], 1),
        (Month, "month", &[], 1),
        (Day, "day", &["day_of_month"], 1),
        (Hour, "hour", &[], 1),
        (Minute, "minute", &[], 1),
        (Second, "second", &[], 1),
        (DateAdd, "date_add", &[], 3),
        (DateDiff, "date_diff", &[], 3),
        (Contains, "contains", &[], 2),
        (Replace, "replace", &[], -1),
        (JsonToVarchar, "json_to_varchar", &[], 1),
        (JsonToMap, "json_to_map", &[], 2),
        (JsonToArray, "json_to_array", &[], 2),
    ]
    .into_iter()
    .map(|(kind, name, aliases, args): (Kind, &str, &[&str], i32)| {
        let signature = match usize::try_from(args) {
            Ok(n) => Signature::any(n, Volatility::Immutable),
            Err(_) => Signature::variadic_any(Volatility::Immutable),
        };
        ScalarUDF::new_from_impl(TrinoFn {
            kind,
            name,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            signature,
        })
    })
    .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    ElementAt,
    JsonExtractScalar,
    JsonExtract,
    JsonParse,
    JsonFormat,
    JsonArrayLength,
    JsonArrayGet,
    JsonArrayContains,
    FromIso8601,
    ToIso8601,
    DayOfWeek,
    DayOfYear,
    Week,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    DateAdd,
    DateDiff,
    Contains,
    Replace,
    JsonToVarchar,
    JsonToMap,
    JsonToArray,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TrinoFn {
    kind: Kind,
    name: &'static str,
    aliases: Vec<String>,
    signature: Signature,
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

impl ScalarUDFImpl for TrinoFn {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        use Kind::*;
        Ok(match self.kind {
            ElementAt => match &args[0] {
                DataType::Map(entries, _) => match entries.data_type() {
                    DataType::Struct(f) if f.len() == 2 => f[1].data_type().clone(),
                    other => return plan_err!("element_at: unexpected map entries {other}"),
                },
                DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
                    f.data_type().clone()
                }
                DataType::Null => DataType::Null,
                other => return plan_err!("element_at takes a map or an array, not {other}"),
            },
            JsonExtractScalar | JsonExtract | JsonParse | JsonFormat | JsonArrayGet | ToIso8601 => {
                DataType::Utf8
            }
            JsonArrayLength | DayOfWeek | DayOfYear | Week | Year | Month | Day | Hour | Minute | Second => {
                DataType::Int64
            }
            JsonArrayContains | Contains => DataType::Boolean,
            FromIso8601 | DateAdd => utc_micros(),
            DateDiff => DataType::Int64,
            Replace | JsonToVarchar => DataType::Utf8,
            JsonToMap => json_map_type(),
            JsonToArray => DataType::new_list(DataType::Utf8, true),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = self.eval(&arrays, args.return_field.data_type())?;
        if scalar {
            Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// Each row's JSON text parsed; NULL and invalid JSON are `None`, as in Trino.
fn json_docs(a: &ArrayRef) -> Result<Vec<Option<Value>>> {
    let docs = strings(a)?;
    Ok(docs.as_string::<i32>().iter().map(|d| d.and_then(|d| serde_json::from_str(d).ok())).collect())
}

fn strings(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Utf8)?)
}

fn ints(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &DataType::Int64)?)
}

fn times(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(a, &utc_micros())?)
}

impl TrinoFn {
    fn eval(&self, a: &[ArrayRef], ret: &DataType) -> Result<ArrayRef> {
        use Kind::*;
        let rows = a[0].len();
        match self.kind {
            ElementAt => element_at(&a[0], &a[1], ret),
            JsonExtractScalar | JsonExtract => {
                let paths = strings(&a[1])?;
                let paths = paths.as_string::<i32>();
                let mut b = StringBuilder::new();
                // The path is almost always a constant: parse it once per distinct value.
                let mut parsed: Option<(&str, Vec<Step>)> = None;
                for (i, doc) in json_docs(&a[0])?.into_iter().enumerate() {
                    let (Some(doc), false) = (doc, paths.is_null(i)) else {
                        b.append_null();
                        continue;
                    };
                    let text = paths.value(i);
                    if parsed.as_ref().is_none_or(|(p, _)| *p != text) {
                        parsed = Some((text, parse_path(text)?));
                    }
                    let path = parsed.as_ref().map_or(&[][..], |(_, steps)| steps.as_slice());
                    let found = walk(&doc, path).cloned();
                    b.append_option(match (self.kind, found) {
                        (JsonExtractScalar, Some(Value::String(s))) => Some(s),
                        (JsonExtractScalar, Some(v @ (Value::Number(_) | Value::Bool(_)))) => {
                            Some(v.to_string())
                        }
                        (JsonExtractScalar, _) => None,
                        (_, Some(v)) => Some(v.to_string()),
                        (_, None) => None,
                    });
                }
                Ok(Arc::new(b.finish()))
            }
            JsonParse | JsonFormat => map_strings(&a[0], |s| match self.kind {
                JsonParse => match serde_json::from_str::<Value>(s) {
                    Ok(v) => Ok(Some(v.to_string())),
                    Err(e) => exec_err!("json_parse: invalid JSON: {e}"),
                },
                _ => Ok(Some(s.to_owned())),
            }),
            JsonArrayLength => {
                let mut b = Int64Builder::new();
                for doc in json_docs(&a[0])? {
                    b.append_option(match doc {
                        Some(Value::Array(v)) => Some(v.len() as i64),
                        _ => None,
                    });
                }
                Ok(Arc::new(b.finish()))
            }
            JsonArrayGet => {
                let idx = ints(&a[1])?;
                let idx = idx.as_primitive::<arrow::datatypes::Int64Type>();
                let mut b = StringBuilder::new();
                for (i, doc) in json_docs(&a[0])?.into_iter().enumerate() {
                    b.append_option(match doc.filter(|_| idx.is_valid(i)) {
                        Some(Value::Array(items)) => {
                            let n = idx.value(i);
                            let at = if n < 0 { items.len() as i64 + n } else { n };
                            usize::try_from(at).ok().and_then(|at| items.get(at)).map(Value::to_string)
                        }
                        _ => None,
                    });
                }
                Ok(Arc::new(b.finish()))
            }
            JsonArrayContains => {
                let mut b = BooleanBuilder::new();
                for (doc, n) in json_docs(&a[0])?.into_iter().zip(json_values(&a[1])?) {
                    b.append_option(match (doc, &n) {
                        (Some(Value::Array(items)), Some(n)) => Some(items.iter().any(|x| json_eq(x, n))),
                        _ => None,
                    });
                }
                Ok(Arc::new(b.finish()))
            }
            JsonToVarchar => {
                let mut b = StringBuilder::new();
                for doc in json_docs(&a[0])? {
                    b.append_option(json_scalar_text(doc, "varchar")?);
                }
                Ok(Arc::new(b.finish()))
            }
            JsonToMap | JsonToArray => json_to_container(self.kind, &a[0], &a[1]),
            DateAdd | DateDiff => date_arith(self.kind, a),
            Contains => contains(&a[0], &a[1]),
            Replace => {
                if !(2..=3).contains(&a.len()) {
                    return exec_err!("replace takes 2 or 3 arguments");
                }
                let (text, from) = (strings(&a[0])?, strings(&a[1])?);
                let to = a.get(2).map(strings).transpose()?;
                let (text, from) = (text.as_string::<i32>(), from.as_string::<i32>());
                let to = to.as_ref().map(|t| t.as_string::<i32>());
                let mut b = StringBuilder::new();
                for i in 0..rows {
                    let to_i = match to {
                        Some(t) if t.is_null(i) => None,
                        Some(t) => Some(t.value(i)),
                        None => Some(""),
                    };
                    b.append_option(match (text.is_null(i) || from.is_null(i), to_i) {
                        (false, Some(to)) => Some(text.value(i).replace(from.value(i), to)),
                        _ => None,
                    });
                }
                Ok(Arc::new(b.finish()))
            }
            FromIso8601 => {
                let s = strings(&a[0])?;
                let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                for v in s.as_string::<i32>() {
                    match v {
                        None => b.append_null(),
                        Some(v) => match DateTime::parse_from_rfc3339(v.trim()) {
                            Ok(t) => b.append_value(t.timestamp_micros()),
                            Err(_) => match chrono::NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d") {
                                Ok(d) => b.append_value(
                                    d.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp_micros()),
                                ),
                                Err(e) => {
                                    return exec_err!("from_iso8601_timestamp: '{v}' is not ISO 8601: {e}");
                                }
                            },
                        },
                    }
                }
                Ok(Arc::new(b.finish()))
            }
            ToIso8601 => {
                let t = times(&a[0])?;
                let mut b = StringBuilder::new();
                for v in t.as_primitive::<TimestampMicrosecondType>() {
                    b.append_option(
                        v.and_then(DateTime::<Utc>::from_timestamp_micros)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    );
                }
                Ok(Arc::new(b.finish()))
            }
            DayOfWeek | DayOfYear | Week | Year | Month | Day | Hour | Minute | Second => {
                let t = times(&a[0])?;
                let mut b = Int64Builder::new();
                for v in t.as_primitive::<TimestampMicrosecondType>() {
                    b.append_option(v.and_then(DateTime::<Utc>::from_timestamp_micros).map(|t| {
                        i64::from(match self.kind {
                            DayOfWeek => t.weekday().number_from_monday(),
                            DayOfYear => t.ordinal(),
                            Week => t.iso_week().week(),
                            Month => t.month(),
                            Day => t.day(),
                            Hour => t.hour(),
                            Minute => t.minute(),
                            Second => t.second(),
                            _ => return i64::from(t.year()),
                        })
                    }));
                }
                Ok(Arc::new(b.finish()))
            }
        }
    }
}

/// Trino's `map(varchar, V)`: a map of strings to strings (JSON text when `V` is json).
fn json_map_type() -> DataType {
    use arrow::datatypes::{Field, Fields};
    let entries = Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, true),
    ]);
    DataType::Map(Arc::new(Field::new("key_value", DataType::Struct(entries), false)), false)
}

/// A JSON value cast to varchar, as Trino does: strings unquoted, numbers and booleans as text,
/// null as NULL; arrays and objects cannot be.
fn json_scalar_text(v: Option<Value>, to: &str) -> Result<Option<String>> {
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        Some(v) => return exec_err!("cannot cast JSON {} to {to}", truncated(&v.to_string())),
    })
}

fn truncated(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

/// `CAST(json AS map(varchar, json|varchar))` and `CAST(json AS array(json|varchar))`: a JSON
/// object (array) becomes a map (list) whose values are JSON text, or their varchar casts. A JSON
/// value of another shape is an error, as in Trino; a map given as a map keeps its entries.
fn json_to_container(kind: Kind, docs: &ArrayRef, value_kind: &ArrayRef) -> Result<ArrayRef> {
    use arrow::array::{ListBuilder, MapBuilder};
    let as_json = match datafusion::common::ScalarValue::try_from_array(value_kind, 0)? {
        datafusion::common::ScalarValue::Utf8(Some(k)) => k == "json",
        other => return exec_err!("json_to_map/json_to_array: bad value kind {other}"),
    };
    if let (Kind::JsonToMap, DataType::Map(_, _)) = (kind, docs.data_type()) {
        return Ok(cast(docs, &json_map_type())?);
    }
    let value =
        |v: Value| if as_json { Ok(Some(v.to_string())) } else { json_scalar_text(Some(v), "varchar") };
    let target = if kind == Kind::JsonToMap { "map" } else { "array" };
    let mut maps = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut lists = ListBuilder::new(StringBuilder::new());
    for doc in json_docs(docs)? {
        match (kind, doc) {
            (Kind::JsonToMap, Some(Value::Object(entries))) => {
                for (k, v) in entries {
                    maps.keys().append_value(k);
                    maps.values().append_option(value(v)?);
                }
                maps.append(true)?;
            }
            (Kind::JsonToArray, Some(Value::Array(items))) => {
                for v in items {
                    lists.values().append_option(value(v)?);
                }
                lists.append(true);
            }
            (_, None | Some(Value::Null)) if kind == Kind::JsonToMap => maps.append(false)?,
            (_, None | Some(Value::Null)) => lists.append(false),
            (_, Some(v)) => return exec_err!("cannot cast JSON {} to {target}", truncated(&v.to_string())),
        }
    }
    if kind == Kind::JsonToMap {
        Ok(cast(&maps.finish(), &json_map_type())?)
    } else {
        Ok(Arc::new(lists.finish()))
    }
}

/// `date_add(unit, n, ts)` and `date_diff(unit, ts1, ts2)`, Trino's units.
fn date_arith(kind: Kind, a: &[ArrayRef]) -> Result<ArrayRef> {
    let units = strings(&a[0])?;
    let units = units.as_string::<i32>();
    let t_last = times(&a[2])?;
    let t_last = t_last.as_primitive::<TimestampMicrosecondType>();
    let rows = a[0].len();
    if kind == Kind::DateAdd {
        let n = ints(&a[1])?;
        let n = n.as_primitive::<arrow::datatypes::Int64Type>();
        let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        for i in 0..rows {
            if units.is_null(i) || n.is_null(i) || t_last.is_null(i) {
                b.append_null();
                continue;
            }
            let Some(t) = DateTime::<Utc>::from_timestamp_micros(t_last.value(i)) else {
                b.append_null();
                continue;
            };
            b.append_option(add(units.value(i), n.value(i), t)?.map(|t| t.timestamp_micros()));
        }
        return Ok(Arc::new(b.finish()));
    }
    let t_first = times(&a[1])?;
    let t_first = t_first.as_primitive::<TimestampMicrosecondType>();
    let mut b = Int64Builder::new();
    for i in 0..rows {
        if units.is_null(i) || t_first.is_null(i) || t_last.is_null(i) {
            b.append_null();
            continue;
        }
        let (x, y) = (t_first.value(i), t_last.value(i));
        let micros = y - x;
        let months = || {
            let (Some(x), Some(y)) =
                (DateTime::<Utc>::from_timestamp_micros(x), DateTime::<Utc>::from_timestamp_micros(y))
            else {
                return 0;
            };
            let mut m = i64::from(y.year() - x.year()) * 12 + i64::from(y.month()) - i64::from(x.month());
            // A month is counted once the day and time of day are reached, as Trino does.
            let (xr, yr) = ((x.day(), x.time()), (y.day(), y.time()));
            if m > 0 && yr < xr {
                m -= 1;
            } else if m < 0 && yr > xr {
                m += 1;
            }
            m
        };
        b.append_value(match units.value(i).to_ascii_lowercase().as_str() {
            "millisecond" => micros / 1_000,
            "second" => micros / 1_000_000,
            "minute" => micros / 60_000_000,
            "hour" => micros / 3_600_000_000,
            "day" => micros / 86_400_000_000,
            "week" => micros / (7 * 86_400_000_000),
            "month" => months(),
            "quarter" => months() / 3,
            "year" => months() / 12,
            other => return exec_err!("date_diff: unknown unit '{other}'"),
        });
    }
    Ok(Arc::new(b.finish()))
}

fn add(unit: &str, n: i64, t: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    use chrono::{Duration, Months};
    let months = |m: i64| -> Option<DateTime<Utc>> {
        let m32 = u32::try_from(m.unsigned_abs()).ok()?;
        if m >= 0 { t.checked_add_months(Months::new(m32)) } else { t.checked_sub_months(Months::new(m32)) }
    };
    Ok(match unit.to_ascii_lowercase().as_str() {
        "millisecond" => t.checked_add_signed(Duration::milliseconds(n)),
        "second" => t.checked_add_signed(Duration::seconds(n)),
        "minute" => t.checked_add_signed(Duration::minutes(n)),
        "hour" => t.checked_add_signed(Duration::hours(n)),
        "day" => t.checked_add_signed(Duration::days(n)),
        "week" => t.checked_add_signed(Duration::weeks(n)),
        "month" => months(n),
        "quarter" => months(n.saturating_mul(3)),
        "year" => months(n.saturating_mul(12)),
        other => return exec_err!("date_add: unknown unit '{other}'"),
    })
}

/// Trino's `contains(array, element)`; on strings, substring containment as DataFusion's.
fn contains(haystack: &ArrayRef, needle: &ArrayRef) -> Result<ArrayRef> {
    let mut b = BooleanBuilder::new();
    match haystack.data_type() {
        DataType::List(_) => {
            let list = haystack.as_list::<i32>();
            let values = strings(list.values())?;
            let values = values.as_string::<i32>();
            let needle = strings(needle)?;
            let needle = needle.as_string::<i32>();
            for row in 0..list.len() {
                if list.is_null(row) || needle.is_null(row) {
                    b.append_null();
                    continue;
                }
                let (start, end) =
                    (list.value_offsets()[row] as usize, list.value_offsets()[row + 1] as usize);
                b.append_value(
                    (start..end).any(|i| values.is_valid(i) && values.value(i) == needle.value(row)),
                );
            }
        }
        _ => {
            let (h, n) = (strings(haystack)?, strings(needle)?);
            for (h, n) in h.as_string::<i32>().iter().zip(n.as_string::<i32>()) {
                b.append_option(h.zip(n).map(|(h, n)| h.contains(n)));
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

fn map_strings(a: &ArrayRef, f: impl Fn(&str) -> Result<Option<String>>) -> Result<ArrayRef> {
    let s = strings(a)?;
    let mut b = StringBuilder::new();
    for v in s.as_string::<i32>() {
        b.append_option(match v {
            Some(v) => f(v)?,
            None => None,
        });
    }
    Ok(Arc::new(b.finish()))
}

/// The second argument of `json_array_contains` as JSON values.
fn json_values(a: &ArrayRef) -> Result<Vec<Option<Value>>> {
    Ok(match a.data_type() {
        DataType::Boolean => a.as_boolean().iter().map(|v| v.map(Value::Bool)).collect(),
        t if t.is_numeric() => {
            let f = cast(a, &DataType::Float64)?;
            f.as_primitive::<arrow::datatypes::Float64Type>()
                .iter()
                .map(|v| v.and_then(serde_json::Number::from_f64).map(Value::Number))
                .collect()
        }
        _ => strings(a)?.as_string::<i32>().iter().map(|v| v.map(|s| Value::String(s.to_owned()))).collect(),
    })
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// `element_at(map, key)` and `element_at(array, index)` (1-based; negative counts from the end;
/// out of range is NULL), as in Trino.
fn element_at(container: &ArrayRef, key: &ArrayRef, ret: &DataType) -> Result<ArrayRef> {
    match container.data_type() {
        DataType::Map(_, _) => {
            let map = container.as_map();
            let keys = strings(map.keys())?;
            let keys = keys.as_string::<i32>();
            let wanted = strings(key)?;
            let wanted = wanted.as_string::<i32>();
            let mut indices = arrow::array::UInt64Builder::new();
            for row in 0..map.len() {
                if map.is_null(row) || wanted.is_null(row) {
                    indices.append_null();
                    continue;
                }
                let range = map.value_offsets()[row] as usize..map.value_offsets()[row + 1] as usize;
                let hit =
                    range.clone().rev().find(|&i| keys.is_valid(i) && keys.value(i) == wanted.value(row));
                indices.append_option(hit.map(|i| i as u64));
            }
            Ok(arrow::compute::take(map.values().as_ref(), &indices.finish(), None)?)
        }
        DataType::List(_) => {
            let list = container.as_list::<i32>();
            let idx = ints(key)?;
            let idx = idx.as_primitive::<arrow::datatypes::Int64Type>();
            let mut indices = arrow::array::UInt64Builder::new();
            for row in 0..list.len() {
                if list.is_null(row) || idx.is_null(row) {
                    indices.append_null();
                    continue;
                }
                let (start, end) = (list.value_offsets()[row] as i64, list.value_offsets()[row + 1] as i64);
                let n = idx.value(row);
                if n == 0 {
                    return exec_err!("element_at: SQL array indices start at 1");
                }
                let at = if n > 0 { start + n - 1 } else { end + n };
                indices.append_option((at >= start && at < end).then_some(at as u64));
            }
            Ok(arrow::compute::take(list.values().as_ref(), &indices.finish(), None)?)
        }
        DataType::Null => Ok(new_null_array(ret, container.len())),
        other => exec_err!("element_at takes a map or an array, not {other}"),
    }
}

/// One step of a JSONPath: a member or an array index.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses the JSONPath subset Trino supports: `$`, `.name`, `["name"]`, `[index]`.
fn parse_path(path: &str) -> Result<Vec<Step>> {
    let Some(mut rest) = path.trim().strip_prefix('$') else {
        return exec_err!("invalid JSON path '{path}': it must start with $");
    };
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return exec_err!("invalid JSON path '{path}'");
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(close) = r.find(']') else { return exec_err!("invalid JSON path '{path}': missing ]") };
            let inner = r[..close].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                steps.push(Step::Key(q.to_owned()));
            } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                steps.push(Step::Key(q.to_owned()));
            } else {
                match inner.parse() {
                    Ok(i) => steps.push(Step::Index(i)),
                    Err(_) => return exec_err!("invalid JSON path '{path}': bad subscript [{inner}]"),
                }
            }
            rest = &r[close + 1..];
        } else {
            return exec_err!("invalid JSON path '{path}'");
        }
    }
    Ok(steps)
}

fn walk<'v>(mut v: &'v Value, path: &[Step]) -> Option<&'v Value> {
    for step in path {
        v = match (step, v) {
            (Step::Key(k), Value::Object(m)) => m.get(k)?,
            (Step::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let v: Value = serde_json::from_str(r#"{"a":{"b c":[1,{"d":"x"}]}}"#).unwrap();
        let get = |p: &str| walk(&v, &parse_path(p).unwrap()).cloned();
        assert_eq!(get("$.a[\"b c\"][1].d"), Some(Value::String("x".into())));
        assert_eq!(get("$.a['b c'][0]"), Some(Value::from(1)));
        assert_eq!(get("$.a.missing"), None);
        assert_eq!(get("$"), Some(v.clone()));
        assert!(parse_path("a.b").is_err());
        assert!(parse_path("$..b").is_err());
    }
}
