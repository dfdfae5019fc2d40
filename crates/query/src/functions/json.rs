//! JSON functions: JSONPath over JSON text (evaluated by [`super::jsonpath`] without building
//! the document), JSON arrays, and the casts of JSON to varchar, maps and arrays that
//! `sql::ast` rewrites `CAST(json AS ...)` into.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanBuilder, Int64Builder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use serde_json::Value;

use super::jsonpath::{self, Found, Step};
use super::{Arg, Fun, boolean, int, text, text_list, with_strings};

const JSON_PATH: &[(&str, Arg)] = &[("json", Arg::Text), ("path", Arg::Text)];

pub(super) fn all() -> Vec<Fun> {
    vec![
        Fun::new("json_extract_scalar", JSON_PATH, text, |a, _| {
            extract(a, |f| f.scalar().map(|s| s.into_owned()))
        }),
        Fun::new("json_extract", JSON_PATH, text, |a, _| extract(a, |f| Some(f.compact().into_owned()))),
        Fun::new("json_size", JSON_PATH, int, json_size),
        // trawl's own, for Sigma rules: every value a dotted path reaches.
        Fun::new("json_leaves", &[("json", Arg::Text), ("path", Arg::Text)], text_list, json_leaves),
        Fun::new("json_parse", &[("string", Arg::Text)], text, |a, _| {
            super::map_text(&a[0], |s| match serde_json::from_str::<Value>(s) {
                Ok(v) => Ok(Some(v.to_string())),
                Err(e) => exec_err!("json_parse: invalid JSON: {e}"),
            })
        }),
        Fun::new("json_format", &[("json", Arg::Text)], text, |a, _| {
            super::map_text(&a[0], |s| Ok(Some(s.to_owned())))
        }),
        Fun::new("is_json_scalar", &[("json", Arg::Text)], boolean, |a, _| {
            let mut b = BooleanBuilder::new();
            for doc in json_docs(&a[0])? {
                b.append_option(doc.map(|v| !matches!(v, Value::Array(_) | Value::Object(_))));
            }
            Ok(Arc::new(b.finish()))
        }),
        Fun::new("json_array_length", &[("json", Arg::Text)], int, |a, _| {
            let mut b = Int64Builder::new();
            for doc in json_docs(&a[0])? {
                b.append_option(match doc {
                    Some(Value::Array(v)) => Some(v.len() as i64),
                    _ => None,
                });
            }
            Ok(Arc::new(b.finish()))
        }),
        Fun::new("json_array_get", &[("json", Arg::Text), ("index", Arg::Int)], text, json_array_get),
        Fun::new("json_array_contains", &[("json", Arg::Text), ("value", Arg::Any)], boolean, |a, _| {
            let mut b = BooleanBuilder::new();
            for (doc, n) in json_docs(&a[0])?.into_iter().zip(json_values(&a[1])?) {
                b.append_option(match (doc, &n) {
                    (Some(Value::Array(items)), Some(n)) => Some(items.iter().any(|x| json_eq(x, n))),
                    _ => None,
                });
            }
            Ok(Arc::new(b.finish()))
        }),
        Fun::new("json_to_varchar", &[("json", Arg::Text)], text, |a, _| {
            let mut b = StringBuilder::new();
            for doc in json_docs(&a[0])? {
                b.append_option(json_scalar_text(doc, "varchar")?);
            }
            Ok(Arc::new(b.finish()))
        }),
        Fun::new(
            "json_to_map",
            &[("json", Arg::Any), ("values", Arg::Text)],
            |_| Ok(json_map_type()),
            |a, _| json_to_container(true, &a[0], &a[1]),
        ),
        Fun::new("json_to_array", &[("json", Arg::Any), ("values", Arg::Text)], text_list, |a, _| {
            json_to_container(false, &a[0], &a[1])
        }),
    ]
}

/// Calls `each` with what each row's path (`a[1]`) finds in its document (`a[0]`): `None` for
/// a NULL document or path, or nothing there.
fn each_found(a: &[ArrayRef], mut each: impl FnMut(Option<Found<'_>>)) -> Result<()> {
    let paths = super::utf8(&a[1])?;
    // The path is almost always a constant: parse it once per distinct value.
    let mut parsed: Option<(&str, Vec<Step>)> = None;
    super::try_strings(&a[0], |i, doc| {
        let (Some(doc), false) = (doc, paths.is_null(i)) else {
            each(None);
            return Ok(());
        };
        let text = paths.value(i);
        if parsed.as_ref().is_none_or(|(p, _)| *p != text) {
            parsed = Some((text, jsonpath::parse(text)?));
        }
        let path = parsed.as_ref().map_or(&[][..], |(_, steps)| steps.as_slice());
        each(jsonpath::find(doc, path));
        Ok(())
    })
}

/// `json_extract_scalar` and `json_extract`: the value at each row's path, as `pick` gives it.
fn extract(a: &[ArrayRef], pick: fn(Found<'_>) -> Option<String>) -> Result<ArrayRef> {
    let mut b = StringBuilder::with_capacity(a[0].len(), 0);
    each_found(a, |found| b.append_option(found.and_then(pick)))?;
    Ok(Arc::new(b.finish()))
}

/// `json_size(json, path)`: members of the object or elements of the array at `path`, 0 for a
/// scalar, NULL when there is nothing there.
fn json_size(a: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let mut b = Int64Builder::with_capacity(a[0].len());
    each_found(a, |found| {
        b.append_option(found.and_then(|f| match serde_json::from_str::<Value>(f.0).ok()? {
            Value::Array(items) => Some(items.len() as i64),
            Value::Object(members) => Some(members.len() as i64),
            _ => Some(0),
        }))
    })?;
    Ok(Arc::new(b.finish()))
}

fn json_array_get(a: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let idx = super::ints(&a[1])?;
    let idx = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&idx);
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

/// Each row's JSON text parsed; NULL and invalid JSON are `None`, as in Trino.
fn json_docs(a: &ArrayRef) -> Result<Vec<Option<Value>>> {
    let mut docs = Vec::with_capacity(a.len());
    with_strings(a, &mut |_, d| docs.push(d.and_then(|d| serde_json::from_str(d).ok())))?;
    Ok(docs)
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
fn json_to_container(to_map: bool, docs: &ArrayRef, value_kind: &ArrayRef) -> Result<ArrayRef> {
    use arrow::array::{ListBuilder, MapBuilder};
    let as_json = match ScalarValue::try_from_array(value_kind, 0)? {
        ScalarValue::Utf8(Some(k)) | ScalarValue::Utf8View(Some(k)) => k == "json",
        other => return exec_err!("json_to_map/json_to_array: bad value kind {other}"),
    };
    if let (true, DataType::Map(_, _)) = (to_map, docs.data_type()) {
        return Ok(cast(docs, &json_map_type())?);
    }
    let value =
        |v: Value| if as_json { Ok(Some(v.to_string())) } else { json_scalar_text(Some(v), "varchar") };
    let target = if to_map { "map" } else { "array" };
    let mut maps = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    let mut lists = ListBuilder::new(StringBuilder::new());
    for doc in json_docs(docs)? {
        match (to_map, doc) {
            (true, Some(Value::Object(entries))) => {
                for (k, v) in entries {
                    maps.keys().append_value(k);
                    maps.values().append_option(value(v)?);
                }
                maps.append(true)?;
            }
            (false, Some(Value::Array(items))) => {
                for v in items {
                    lists.values().append_option(value(v)?);
                }
                lists.append(true);
            }
            (true, None | Some(Value::Null)) => maps.append(false)?,
            (false, None | Some(Value::Null)) => lists.append(false),
            (_, Some(v)) => return exec_err!("cannot cast JSON {} to {target}", truncated(&v.to_string())),
        }
    }
    if to_map { Ok(cast(&maps.finish(), &json_map_type())?) } else { Ok(Arc::new(lists.finish())) }
}

/// The second argument of `json_array_contains` as JSON values.
fn json_values(a: &ArrayRef) -> Result<Vec<Option<Value>>> {
    use arrow::array::AsArray;
    Ok(match a.data_type() {
        DataType::Boolean => a.as_boolean().iter().map(|v| v.map(Value::Bool)).collect(),
        t if t.is_numeric() => {
            let f = cast(a, &DataType::Float64)?;
            f.as_primitive::<arrow::datatypes::Float64Type>()
                .iter()
                .map(|v| v.and_then(serde_json::Number::from_f64).map(Value::Number))
                .collect()
        }
        _ => super::utf8(a)?.iter().map(|v| v.map(|s| Value::String(s.to_owned()))).collect(),
    })
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The values a dotted path (`a.b.c`, no `$`) reaches in each JSON document, descending into
/// every array on the way, as a search index flattens a document: text as it is, numbers and
/// booleans as their text, an array's elements one by one, an object as its compact JSON; nulls
/// left out. NULL where the document is NULL or not JSON.
fn json_leaves(a: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    fn walk<'v>(v: &'v Value, path: &[&str], out: &mut Vec<std::borrow::Cow<'v, str>>) {
        match (v, path.split_first()) {
            (Value::Array(items), _) => items.iter().for_each(|item| walk(item, path, out)),
            (Value::Object(map), Some((key, rest))) => {
                if let Some(child) = map.get(*key) {
                    walk(child, rest, out);
                }
            }
            (_, Some(_)) | (Value::Null, None) => {}
            (Value::String(s), None) => out.push(s.as_str().into()),
            (v, None) => out.push(v.to_string().into()),
        }
    }
    let paths = super::utf8(&a[1])?;
    let mut lists = arrow::array::ListBuilder::new(StringBuilder::new());
    for (i, doc) in json_docs(&a[0])?.into_iter().enumerate() {
        match (doc, paths.is_valid(i)) {
            (Some(doc), true) => {
                let path: Vec<&str> = paths.value(i).split('.').filter(|p| !p.is_empty()).collect();
                let mut out = Vec::new();
                walk(&doc, &path, &mut out);
                for v in out {
                    lists.values().append_value(v);
                }
                lists.append(true);
            }
            _ => lists.append(false),
        }
    }
    Ok(Arc::new(lists.finish()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{context, value};

    #[tokio::test]
    async fn json_functions() {
        let ctx = context();
        let doc = r#"'{"a":{"b":[1,2,{"c":"x"}]},"s":"t\"q","n":1.50,"e":{}}'"#;
        for (call, want) in [
            ("json_extract_scalar(DOC, '$.a.b[2].c')", "x"),
            ("json_extract_scalar(DOC, '$.s')", "t\"q"),
            ("json_extract_scalar(DOC, '$.n')", "1.50"),
            ("json_extract_scalar(DOC, '$.a')", "NULL"),
            ("json_extract(DOC, '$.a.b')", r#"[1,2,{"c":"x"}]"#),
            ("json_size(DOC, '$.a.b')", "3"),
            ("json_size(DOC, '$.e')", "0"),
            ("json_size(DOC, '$.n')", "0"),
            ("json_size(DOC, '$.nothing')", "NULL"),
            ("json_leaves(DOC, 'a.b.c')", "[x]"),
            ("json_leaves(DOC, 'a.b')", r#"[1, 2, {"c":"x"}]"#),
            ("json_leaves(DOC, 'nothing')", "[]"),
            ("json_leaves('not json', 'a')", "NULL"),
            ("is_json_scalar('1')", "true"),
            ("is_json_scalar('[1]')", "false"),
            ("json_array_length('[1,2,3]')", "3"),
            ("json_array_get('[1,2,3]', -1)", "3"),
            ("json_array_contains('[1,2,3]', 2)", "true"),
            // As Trino's streaming extractor: damage after the value does not hide it.
            ("json_extract_scalar('{\"a\":1', '$.a')", "1"),
            ("json_extract_scalar('{\"b\":[1,}', '$.a')", "NULL"),
        ] {
            let sql = format!("SELECT {}", call.replace("DOC", doc));
            assert_eq!(value(&ctx, &sql).await, want, "{sql}");
        }
    }
}
