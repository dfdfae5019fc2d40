//! Arrow builders driven by the event schema: one [`Column`] per field, fed raw JSON values.
//! A value of an unexpected JSON type becomes null in its column; `eventjson` keeps it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanBuilder, ListArray, MapArray, MapBuilder, MapFieldNames, StringBuilder,
    StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, FieldRef, Fields};

use crate::json::{Json, Kind, as_str, kind, to_lake_string};
use trawl_store::time::parse_timestamp;

/// Finds a field by a JSON key, ignoring ASCII case: CloudTrail spells keys in camelCase and
/// the schema in lower case. Each spelling met is remembered, so that a key costs one hash
/// lookup and no allocation.
pub(crate) struct KeyIndex {
    lower: HashMap<String, usize, foldhash::fast::FixedState>,
    seen: HashMap<Box<str>, Option<usize>, foldhash::fast::FixedState>,
}

impl KeyIndex {
    /// Spellings remembered at most: keys are a fixed set in CloudTrail, not in hostile input.
    const SEEN_LIMIT: usize = 1024;

    /// An index of `names` (lower case) to their positions; the first of equal names wins.
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = (&'a str, usize)>) -> Self {
        let mut lower = HashMap::default();
        for (name, i) in names {
            lower.entry(name.to_ascii_lowercase()).or_insert(i);
        }
        Self { lower, seen: HashMap::default() }
    }

    pub(crate) fn get(&mut self, key: &str) -> Option<usize> {
        if let Some(&i) = self.seen.get(key) {
            return i;
        }
        let i = self.lower.get(key.to_ascii_lowercase().as_str()).copied();
        if self.seen.len() < Self::SEEN_LIMIT {
            self.seen.insert(key.into(), i);
        }
        i
    }
}

/// Builds one column of any type the event schema uses.
#[allow(clippy::large_enum_variant)] // a few dozen columns per batch builder
pub(crate) enum Column {
    Str(StringBuilder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
    /// The builder, and the schema's entries field (see `finish`).
    Map(MapBuilder<StringBuilder, StringBuilder>, FieldRef),
    Struct {
        fields: Fields,
        index: KeyIndex,
        children: Vec<Column>,
        valid: Vec<bool>,
    },
    List {
        field: FieldRef,
        child: Box<Column>,
        offsets: Vec<i32>,
        valid: Vec<bool>,
    },
}

impl Column {
    /// A column for about `rows` values. Sized to the file: Arrow's default of 1,024 slots per
    /// builder, over a hundred leaf columns, made small trail files cost a megabyte each.
    pub(crate) fn new(data_type: &DataType, rows: usize) -> Self {
        let strings = |n: usize| StringBuilder::with_capacity(n, n * 24);
        match data_type {
            DataType::Utf8 => Column::Str(strings(rows)),
            DataType::Boolean => Column::Bool(BooleanBuilder::with_capacity(rows)),
            DataType::Timestamp(_, tz) => {
                Column::Time(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone_opt(tz.clone()))
            }
            DataType::Map(entries, _) => {
                let names =
                    MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() };
                let builder =
                    MapBuilder::with_capacity(Some(names), strings(rows * 4), strings(rows * 4), rows);
                Column::Map(builder, entries.clone())
            }
            DataType::Struct(fields) => Column::Struct {
                fields: fields.clone(),
                index: KeyIndex::new(fields.iter().enumerate().map(|(i, f)| (f.name().as_str(), i))),
                children: fields.iter().map(|f| Column::new(f.data_type(), rows)).collect(),
                valid: Vec::with_capacity(rows),
            },
            DataType::List(field) => Column::List {
                field: field.clone(),
                child: Box::new(Column::new(field.data_type(), rows)),
                offsets: vec![0],
                valid: Vec::with_capacity(rows),
            },
            other => unreachable!("the event schema has no {other} column"),
        }
    }

    pub(crate) fn append_null(&mut self) {
        match self {
            Column::Str(b) => b.append_null(),
            Column::Bool(b) => b.append_null(),
            Column::Time(b) => b.append_null(),
            Column::Map(b, _) => b.append(false).expect("map builder keys and values are in step"),
            Column::Struct { children, valid, .. } => {
                children.iter_mut().for_each(Column::append_null);
                valid.push(false);
            }
            Column::List { offsets, valid, .. } => {
                offsets.push(*offsets.last().expect("offsets start at 0"));
                valid.push(false);
            }
        }
    }

    /// Appends `raw` (or null) converted to this column's type.
    pub(crate) fn append(&mut self, raw: Option<Json<'_>>) {
        let Some(raw) = raw.filter(|r| kind(*r) != Kind::Null) else {
            return self.append_null();
        };
        match self {
            Column::Str(b) => b.append_option(to_lake_string(raw)),
            Column::Bool(b) => b.append_option(match raw.get() {
                "true" => Some(true),
                "false" => Some(false),
                _ => as_str(raw).and_then(|s| s.to_ascii_lowercase().parse().ok()),
            }),
            Column::Time(b) => {
                b.append_option(as_str(raw).and_then(|s| parse_timestamp(&s)).map(|t| t.timestamp_micros()))
            }
            Column::Map(b, _) => match raw.entries() {
                Some(entries) => {
                    for (k, v) in entries {
                        b.keys().append_value(k);
                        b.values().append_option(to_lake_string(v));
                    }
                    b.append(true).expect("map builder keys and values are in step");
                }
                None => b.append(false).expect("map builder keys and values are in step"),
            },
            Column::Struct { fields, index, children, valid } => match raw.entries() {
                Some(entries) => {
                    // On the stack for the structs of the event schema (11 fields at most).
                    let mut stack = [None; 16];
                    let mut heap = Vec::new();
                    let slots: &mut [Option<Json<'_>>] = match stack.get_mut(..fields.len()) {
                        Some(slots) => slots,
                        None => {
                            heap.resize(fields.len(), None);
                            &mut heap
                        }
                    };
                    for (k, v) in entries {
                        if let Some(i) = index.get(&k) {
                            slots[i] = Some(v);
                        }
                    }
                    for (child, slot) in children.iter_mut().zip(slots.iter()) {
                        child.append(*slot);
                    }
                    valid.push(true);
                }
                None => {
                    children.iter_mut().for_each(Column::append_null);
                    valid.push(false);
                }
            },
            Column::List { child, offsets, valid, .. } => match raw.items() {
                Some(items) => {
                    let mut last = *offsets.last().expect("offsets start at 0");
                    for item in items {
                        child.append(Some(item));
                        last = last.saturating_add(1);
                    }
                    offsets.push(last);
                    valid.push(true);
                }
                None => {
                    offsets.push(*offsets.last().expect("offsets start at 0"));
                    valid.push(false);
                }
            },
        }
    }

    pub(crate) fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Str(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Time(b) => Arc::new(b.finish()),
            Column::Map(b, entries) => {
                // Rebuilt on the schema's own field, so that batches share their data types:
                // comparing types (interleave, concat) is then a pointer comparison, not a walk
                // of every nested field name, for each of thousands of small files.
                let map = b.finish();
                let DataType::Struct(fields) = entries.data_type() else {
                    unreachable!("map entries are a struct")
                };
                let (_, offsets, pairs, nulls, ordered) = map.into_parts();
                let pairs =
                    StructArray::new(fields.clone(), pairs.columns().to_vec(), pairs.nulls().cloned());
                Arc::new(MapArray::new(entries.clone(), offsets, pairs, nulls, ordered))
            }
            Column::Struct { fields, children, valid, .. } => {
                let arrays = children.iter_mut().map(Column::finish).collect();
                let nulls = NullBuffer::from(std::mem::take(valid));
                Arc::new(StructArray::new(fields.clone(), arrays, Some(nulls)))
            }
            Column::List { field, child, offsets, valid } => {
                let offsets = OffsetBuffer::new(std::mem::replace(offsets, vec![0]).into());
                let nulls = NullBuffer::from(std::mem::take(valid));
                Arc::new(ListArray::new(field.clone(), offsets, child.finish(), Some(nulls)))
            }
        }
    }
}
