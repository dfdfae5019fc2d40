//! Map lookups before the scan: `element_at(requestparameters, 'bucketName') = 'secrets'`.
//!
//! DataFusion 55 evaluates a predicate on a map column above the Parquet scan, never inside it
//! (its row filters take primitive columns, struct fields and lists only). So a lookup by
//! request parameter decoded every projected column of every row: 3.7 GB of Arrow over 10M
//! events to return 6,093 of them. Here the files are first read for the map columns alone, the
//! lookups evaluated on them, and each file scanned with the selection of its matching rows
//! (`ParquetRowSelection`); files without a match are not scanned at all. The filter above the
//! scan still runs on the selected rows, so a lookup here only has to keep every row that can
//! match: it compares the raw entries, and any entry with the key counts.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use bytes::Bytes;
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::logical_expr::expr::{BinaryExpr, ScalarFunction};
use datafusion::logical_expr::{Expr, Operator};
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, RowSelection};
#[allow(deprecated)]
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetObjectReader};
use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;

use crate::pruning::ScanTally;

/// Metadata of one data file with its page index, in memory: 112 KB on average over the 729
/// files of 10M events (`ParquetMetaData::memory_size`); rounded up.
pub(crate) const METADATA_BYTES: usize = 128 << 10;

/// One `map[key] = value` conjunct of a query's filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapLookup {
    column: String,
    key: String,
    value: String,
}

impl MapLookup {
    /// The lookups among the conjuncts of `filters` on map columns of `schema`:
    /// `element_at(m, 'k') = 'v'` and `m['k'] = 'v'`, either way round.
    pub(crate) fn from_filters(filters: &[Expr], schema: &Schema) -> Vec<MapLookup> {
        let mut found = Vec::new();
        for filter in filters {
            conjuncts(filter, &mut |e| found.extend(MapLookup::of(e, schema)));
        }
        found.sort_by(|a, b| (&a.column, &a.key, &a.value).cmp(&(&b.column, &b.key, &b.value)));
        found.dedup();
        found
    }

    fn of(expr: &Expr, schema: &Schema) -> Option<MapLookup> {
        let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = expr else { return None };
        let (access, value) = match (left.as_ref(), right.as_ref()) {
            (access, Expr::Literal(v, _)) | (Expr::Literal(v, _), access) => (access, v),
            _ => return None,
        };
        let Expr::ScalarFunction(ScalarFunction { func, args }) = access else { return None };
        if !matches!(func.name(), "element_at" | "get_field") {
            return None;
        }
        let [Expr::Column(column), Expr::Literal(key, _)] = args.as_slice() else { return None };
        let field = schema.field_with_name(&column.name).ok()?;
        if !matches!(field.data_type(), DataType::Map(..)) {
            return None;
        }
        Some(MapLookup { column: column.name.clone(), key: utf8(key)?, value: utf8(value)? })
    }
}

fn utf8(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
            Some(s.clone())
        }
        _ => None,
    }
}

fn conjuncts(e: &Expr, f: &mut impl FnMut(&Expr)) {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            conjuncts(left, f);
            conjuncts(right, f);
        }
        other => f(other),
    }
}

/// Reads the map columns of `file` and returns it with the selection of the rows that pass
/// every lookup, or `None` when no row does. The bytes read are added to `tally`.
pub(crate) async fn select(
    objects: Arc<dyn ObjectStore>,
    cache: Arc<FileMetadataCache>,
    file: PartitionedFile,
    lookups: Arc<[MapLookup]>,
    tally: Arc<ScanTally>,
) -> Result<Option<PartitionedFile>> {
    // Through the session's metadata cache, with the page index: the scan then finds both
    // there, and skips the pages that hold no selected row.
    let metadata = DFParquetMetadata::new(objects.as_ref(), &file.object_meta)
        .with_file_metadata_cache(Some(cache))
        .with_page_index_policy(Some(PageIndexPolicy::Optional))
        .fetch_metadata()
        .await?;
    // Deprecated for hand-written readers; it does exactly what is needed here (ranged GETs).
    #[allow(deprecated)]
    let reader = ParquetObjectReader::new(objects, file.object_meta.location.clone())
        .with_file_size(file.object_meta.size);
    let reader = Counted { inner: reader, tally };
    let metadata = ArrowReaderMetadata::try_new(metadata, ArrowReaderOptions::new())?;
    // Map strings as views into the decoded pages: no copy of every key and value.
    let views = Arc::new(view_maps(metadata.schema()));
    let metadata = ArrowReaderMetadata::try_new(
        metadata.metadata().clone(),
        ArrowReaderOptions::new().with_schema(views),
    )?;
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, metadata);
    let Ok(mut roots) =
        lookups.iter().map(|l| builder.schema().index_of(&l.column)).collect::<Result<Vec<_>, _>>()
    else {
        // A file without one of the columns: let the scan decide.
        return Ok(Some(file));
    };
    roots.sort_unstable();
    roots.dedup();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let stream = builder.with_projection(mask).with_batch_size(8192).build()?;
    let matches: Vec<BooleanArray> = stream
        .map(|batch| Ok::<_, datafusion::error::DataFusionError>(matching(&batch?, &lookups)))
        .try_collect()
        .await?;
    let selection = RowSelection::from_filters(&matches);
    if !selection.selects_any() {
        return Ok(None);
    }
    Ok(Some(file.with_extension(ParquetRowSelection::new(selection))))
}

/// The rows of `batch` in which every lookup finds its key with its value.
fn matching(batch: &RecordBatch, lookups: &[MapLookup]) -> BooleanArray {
    let mut keep = vec![true; batch.num_rows()];
    for lookup in lookups {
        let Some(map) = batch.column_by_name(&lookup.column).and_then(|c| c.as_map_opt()) else { continue };
        let (Some(keys), Some(values)) = (map.keys().as_string_view_opt(), map.values().as_string_view_opt())
        else {
            // Not a map of strings: the filter above the scan decides.
            continue;
        };
        let mut found = vec![false; keep.len()];
        // One pass over the entries, most of which have another key: lengths (in the views)
        // are compared before any bytes.
        let (key, value) = (lookup.key.as_str(), lookup.value.as_str());
        let (key_views, value_views) = (keys.views(), values.views());
        let mut row = 0;
        let offsets = map.value_offsets();
        let entries = offsets.first().map_or(0, |&o| o as usize)..offsets.last().map_or(0, |&o| o as usize);
        for i in entries {
            if key_views[i] as u32 as usize != key.len() || value_views[i] as u32 as usize != value.len() {
                continue;
            }
            if keys.value(i) == key && values.is_valid(i) && values.value(i) == value {
                while offsets[row + 1] as usize <= i {
                    row += 1;
                }
                found[row] = true;
            }
        }
        for (row, keep) in keep.iter_mut().enumerate() {
            *keep = *keep && found[row] && map.is_valid(row);
        }
    }
    BooleanArray::from(keep)
}

/// `schema` with the strings of its maps read as views.
fn view_maps(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Map(entries, sorted) => {
                let DataType::Struct(kv) = entries.data_type() else { return f.as_ref().clone() };
                let kv: Vec<Field> = kv
                    .iter()
                    .map(|c| match c.data_type() {
                        DataType::Utf8 => c.as_ref().clone().with_data_type(DataType::Utf8View),
                        _ => c.as_ref().clone(),
                    })
                    .collect();
                let entries = entries.as_ref().clone().with_data_type(DataType::Struct(kv.into()));
                f.as_ref().clone().with_data_type(DataType::Map(Arc::new(entries), *sorted))
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// An `AsyncFileReader` that counts the bytes it reads.
struct Counted<R> {
    inner: R,
    tally: Arc<ScanTally>,
}

impl<R: AsyncFileReader> AsyncFileReader for Counted<R> {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        self.tally.bytes.fetch_add(range.end - range.start, Ordering::Relaxed);
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        self.tally.bytes.fetch_add(ranges.iter().map(|r| r.end - r.start).sum(), Ordering::Relaxed);
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        self.inner.get_metadata(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{MapBuilder, StringViewBuilder};
    use datafusion::prelude::{col, lit};
    use trawl_store::schema::event_schema;

    fn lookup(column: &str, key: &str, value: &str) -> MapLookup {
        MapLookup { column: column.into(), key: key.into(), value: value.into() }
    }

    #[test]
    fn finds_lookups_among_conjuncts() {
        let schema = event_schema();
        let udf =
            Arc::new(crate::functions::scalars().into_iter().find(|f| f.name() == "element_at").unwrap());
        let element_at = |m: &str, k: &str| {
            Expr::ScalarFunction(ScalarFunction::new_udf(udf.clone(), vec![col(m), lit(k)]))
        };
        let filters = [
            element_at("requestparameters", "bucketName")
                .eq(lit("secrets"))
                .and(col("eventname").eq(lit("x"))),
            lit("b").eq(element_at("responseelements", "a")),
            // Not lookups: a column that is not a map, a key that is not a literal, another operator.
            element_at("resources", "1").eq(lit("x")),
            element_at("requestparameters", "k").not_eq(lit("v")),
            element_at("requestparameters", "k").eq(col("eventname")),
        ];
        assert_eq!(
            MapLookup::from_filters(&filters, &schema),
            vec![lookup("requestparameters", "bucketName", "secrets"), lookup("responseelements", "a", "b")]
        );
    }

    #[test]
    fn matches_rows_with_the_entry() {
        let mut maps = MapBuilder::new(None, StringViewBuilder::new(), StringViewBuilder::new());
        for row in [
            &[("bucketName", Some("secrets"))][..],
            &[("bucketName", Some("public")), ("key", Some("secrets"))],
            &[("x", None), ("bucketName", Some("secrets-and-more-than-twelve"))],
            &[("a", Some("b")), ("bucketName", Some("secrets"))],
        ] {
            for (k, v) in row {
                maps.keys().append_value(k);
                maps.values().append_option(*v);
            }
            maps.append(true).unwrap();
        }
        maps.append(false).unwrap();
        let batch =
            RecordBatch::try_from_iter([("requestparameters", Arc::new(maps.finish()) as _)]).unwrap();
        let hits = matching(&batch, &[lookup("requestparameters", "bucketName", "secrets")]);
        assert_eq!(hits, BooleanArray::from(vec![true, false, false, true, false]));
        let long =
            matching(&batch, &[lookup("requestparameters", "bucketName", "secrets-and-more-than-twelve")]);
        assert_eq!(long, BooleanArray::from(vec![false, false, true, false, false]));
    }
}
