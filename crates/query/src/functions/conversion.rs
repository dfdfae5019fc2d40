//! Conversion functions: `typeof`, with Trino's type names.

use std::sync::Arc;

use arrow::array::{Array, StringArray};

use super::{Arg, Fun, text, trino_type};

pub(super) fn all() -> Vec<Fun> {
    vec![Fun::new("typeof", &[("value", Arg::Any)], text, |a, _| {
        let name = trino_type(a[0].data_type());
        Ok(Arc::new(StringArray::from(vec![name.as_str(); a[0].len()])))
    })]
}

#[cfg(test)]
mod tests {
    use super::super::tests::{context, value};

    #[tokio::test]
    async fn typeof_names_trino_types() {
        let ctx = context();
        assert_eq!(value(&ctx, "SELECT typeof(1)").await, "bigint");
        assert_eq!(value(&ctx, "SELECT typeof('a')").await, "varchar");
        assert_eq!(value(&ctx, "SELECT typeof(make_array(1.5))").await, "array(double)");
    }
}
