//! Trino aggregates DataFusion lacks: `max_by(x, y)` and `min_by(x, y)` (the `x` of the row with
//! the largest or smallest `y`), and `arbitrary(x)` (DataFusion's `any_value`).

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

/// The aggregates of the pack.
pub(crate) fn all() -> Vec<AggregateUDF> {
    [("max_by", Ordering::Greater), ("min_by", Ordering::Less)]
        .into_iter()
        .map(|(name, wins)| {
            AggregateUDF::new_from_impl(By {
                name,
                wins,
                signature: Signature::any(2, Volatility::Immutable),
            })
        })
        .collect()
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
