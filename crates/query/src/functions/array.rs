//! Array and map functions: Trino's 1-based `element_at` on maps and arrays, and `contains`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanBuilder, new_null_array};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err, plan_err};

use super::{Arg, Fun, boolean, ints, strings};

pub(super) fn all() -> Vec<Fun> {
    vec![
        Fun::new("element_at", &[("container", Arg::Any), ("key", Arg::Any)], element_type, |a, ret| {
            element_at(&a[0], &a[1], ret)
        }),
        Fun::new("contains", &[("container", Arg::Any), ("element", Arg::Any)], boolean, |a, _| {
            contains(&a[0], &a[1])
        }),
    ]
}

/// The values of a map, the elements of an array.
fn element_type(args: &[DataType]) -> Result<DataType> {
    Ok(match &args[0] {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(f) if f.len() == 2 => f[1].data_type().clone(),
            other => return plan_err!("element_at: unexpected map entries {other}"),
        },
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => f.data_type().clone(),
        DataType::Null => DataType::Null,
        other => {
            return plan_err!(
                "element_at: argument 1 (container) is {}; it must be a map or an array",
                super::trino_type(other)
            );
        }
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
