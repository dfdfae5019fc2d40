//! Trino aggregates DataFusion lacks: `max_by(x, y)` and `min_by(x, y)` (the `x` of the row with
//! the largest or smallest `y`), `histogram(x)` (a map of each value to its count) and
//! `map_agg(k, v)` (a map of the rows' keys to their values). `arbitrary(x)` is DataFusion's
//! `any_value`, `approx_percentile(x, p)` its `approx_percentile_cont` (registered in `lib`).

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

/// The aggregates of the pack.
pub(crate) fn all() -> Vec<AggregateUDF> {
    let by = [("max_by", Ordering::Greater), ("min_by", Ordering::Less)].into_iter().map(|(name, wins)| {
        AggregateUDF::new_from_impl(By { name, wins, signature: Signature::any(2, Volatility::Immutable) })
    });
    let maps = [("histogram", 1), ("map_agg", 2)].into_iter().map(|(name, args)| {
        AggregateUDF::new_from_impl(MapAgg {
            name,
            counts: args == 1,
            signature: Signature::any(args, Volatility::Immutable),
        })
    });
    by.chain(maps).collect()
}

/// `histogram(x)` (`counts`) and `map_agg(k, v)`: one map per group. Keys that are NULL are
/// left out; `map_agg` keeps the first value of a key.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MapAgg {
    name: &'static str,
    counts: bool,
    signature: Signature,
}

impl MapAgg {
    fn key_value(&self, inputs: &[DataType]) -> (DataType, DataType) {
        let value =
            if self.counts { DataType::Int64 } else { inputs.get(1).cloned().unwrap_or(DataType::Null) };
        (inputs[0].clone(), value)
    }
}

fn map_type(key: &DataType, value: &DataType) -> DataType {
    DataType::Map(entries_field(key, value), false)
}

fn entries_field(key: &DataType, value: &DataType) -> FieldRef {
    let entries = arrow::datatypes::Fields::from(vec![
        Field::new("key", key.clone(), false),
        Field::new("value", value.clone(), true),
    ]);
    Arc::new(Field::new("entries", DataType::Struct(entries), false))
}

impl AggregateUDFImpl for MapAgg {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let (key, value) = self.key_value(args);
        Ok(map_type(&key, &value))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let types: Vec<DataType> =
            args.exprs.iter().map(|e| e.data_type(args.schema)).collect::<Result<_>>()?;
        let (key, value) = self.key_value(&types);
        Ok(Box::new(MapAccumulator { counts: self.counts, key, value, entries: Default::default() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let types: Vec<DataType> = args.input_fields.iter().map(|f| f.data_type().clone()).collect();
        let (key, value) = self.key_value(&types);
        Ok(vec![
            Arc::new(Field::new("keys", DataType::new_list(key, true), true)),
            Arc::new(Field::new("values", DataType::new_list(value, true), true)),
        ])
    }
}

#[derive(Debug)]
struct MapAccumulator {
    counts: bool,
    key: DataType,
    value: DataType,
    /// Keys in the order first seen, with their values.
    entries: indexmap_lite::Entries,
}

/// An insertion-ordered map of scalars, small enough not to need a crate.
mod indexmap_lite {
    use std::collections::HashMap;

    use datafusion::common::ScalarValue;

    #[derive(Debug, Default)]
    pub(super) struct Entries {
        pub(super) keys: Vec<ScalarValue>,
        pub(super) values: Vec<ScalarValue>,
        index: HashMap<ScalarValue, usize>,
    }

    impl Entries {
        /// The slot of `key`, made (with `value`) when new; true when it was new.
        pub(super) fn slot(
            &mut self,
            key: ScalarValue,
            value: impl FnOnce() -> ScalarValue,
        ) -> (usize, bool) {
            if let Some(&i) = self.index.get(&key) {
                return (i, false);
            }
            let i = self.keys.len();
            self.index.insert(key.clone(), i);
            self.keys.push(key);
            self.values.push(value());
            (i, true)
        }

        pub(super) fn size(&self) -> usize {
            self.keys.iter().chain(&self.values).map(ScalarValue::size).sum::<usize>()
                + self.index.capacity() * std::mem::size_of::<(ScalarValue, usize)>()
        }
    }
}

impl MapAccumulator {
    fn add(&mut self, key: ScalarValue, value: ScalarValue) -> Result<()> {
        if key.is_null() {
            return Ok(());
        }
        let counts = self.counts;
        // map_agg: a key seen before keeps its first value.
        let (i, _) =
            self.entries.slot(key, || if counts { ScalarValue::Int64(Some(0)) } else { value.clone() });
        if counts {
            let add = match &value {
                ScalarValue::Int64(Some(n)) => *n,
                _ => 1,
            };
            if let ScalarValue::Int64(Some(n)) = &mut self.entries.values[i] {
                *n += add;
            }
        }
        Ok(())
    }
}

impl Accumulator for MapAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for row in 0..values[0].len() {
            let key = ScalarValue::try_from_array(&values[0], row)?;
            let value = match values.get(1) {
                Some(v) if !self.counts => ScalarValue::try_from_array(v, row)?,
                _ => ScalarValue::Int64(Some(1)),
            };
            self.add(key, value)?;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        use arrow::array::{MapArray, StructArray};
        use arrow::buffer::OffsetBuffer;
        let keys = if self.entries.keys.is_empty() {
            arrow::array::new_empty_array(&self.key)
        } else {
            ScalarValue::iter_to_array(self.entries.keys.iter().cloned())?
        };
        let values = if self.entries.values.is_empty() {
            arrow::array::new_empty_array(&self.value)
        } else {
            ScalarValue::iter_to_array(self.entries.values.iter().cloned())?
        };
        let field = entries_field(&self.key, &self.value);
        let fields = arrow::datatypes::Fields::from(vec![
            Field::new("key", self.key.clone(), false),
            Field::new("value", self.value.clone(), true),
        ]);
        let entries = StructArray::try_new(fields, vec![keys, values], None)?;
        let map =
            MapArray::try_new(field, OffsetBuffer::from_lengths([entries.len()]), entries, None, false)?;
        Ok(ScalarValue::Map(Arc::new(map)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.entries.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list =
            |items: &[ScalarValue], t: &DataType| ScalarValue::List(ScalarValue::new_list_nullable(items, t));
        Ok(vec![list(&self.entries.keys, &self.key), list(&self.entries.values, &self.value)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        use arrow::array::AsArray;
        let (keys, values) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..keys.len() {
            if keys.is_null(row) {
                continue;
            }
            let (k, v) = (keys.value(row), values.value(row));
            for i in 0..k.len() {
                self.add(ScalarValue::try_from_array(&k, i)?, ScalarValue::try_from_array(&v, i)?)?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct By {
    name: &'static str,
    /// The ordering of a new key against the best so far that replaces it.
    wins: Ordering,
    signature: Signature,
}

impl AggregateUDFImpl for By {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let value_type = args.exprs[0].data_type(args.schema)?;
        let key_type = args.exprs[1].data_type(args.schema)?;
        Ok(Box::new(ByAccumulator {
            wins: self.wins,
            value: ScalarValue::try_from(&value_type)?,
            key: ScalarValue::try_from(&key_type)?,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new("value", args.input_fields[0].data_type().clone(), true)),
            Arc::new(Field::new("key", args.input_fields[1].data_type().clone(), true)),
        ])
    }
}

#[derive(Debug)]
struct ByAccumulator {
    wins: Ordering,
    value: ScalarValue,
    key: ScalarValue,
}

impl Accumulator for ByAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for row in 0..values[1].len() {
            if values[1].is_null(row) {
                continue;
            }
            let key = ScalarValue::try_from_array(&values[1], row)?;
            if self.key.is_null() || key.partial_cmp(&self.key) == Some(self.wins) {
                self.key = key;
                self.value = ScalarValue::try_from_array(&values[0], row)?;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() + self.key.size()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), self.key.clone()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{context, value};

    #[tokio::test]
    async fn map_aggregates() {
        let ctx = context();
        let rows = "(VALUES ('a', 1), ('b', 2), ('a', 3), (NULL, 4)) AS t(k, v)";
        assert_eq!(value(&ctx, &format!("SELECT histogram(k) FROM {rows}")).await, "{a: 2, b: 1}");
        assert_eq!(value(&ctx, &format!("SELECT map_agg(k, v) FROM {rows}")).await, "{a: 1, b: 2}");
        assert_eq!(value(&ctx, &format!("SELECT element_at(histogram(k), 'a') FROM {rows}")).await, "2");
        // The x of the largest y, NULL as it may be.
        assert_eq!(value(&ctx, &format!("SELECT max_by(k, v) FROM {rows}")).await, "NULL");
        assert_eq!(value(&ctx, &format!("SELECT max_by(v, k) FROM {rows}")).await, "2");
        let p = "SELECT approx_percentile(v, 0.5) FROM (VALUES (1.0), (2.0), (3.0)) AS t(v)";
        assert_eq!(value(&ctx, p).await, "2.0");
    }
}
