//! Which of Trino's documented functions trawl runs, family by family, in the families
//! CloudTrail Lake queries use. A test writes the table of `docs/FUNCTIONS.md` from the registry
//! of a real session, so the document cannot drift from the code.

/// Trino's documented functions (trino.io/docs/current/functions), by family.
#[rustfmt::skip]
pub(crate) const TRINO: &[(&str, &[&str])] = &[
    ("Date and time", &[
        "at_timezone", "current_date", "current_time", "current_timestamp", "current_timezone",
        "date", "date_add", "date_diff", "date_format", "date_parse", "date_trunc", "day",
        "day_of_month", "day_of_week", "day_of_year", "dow", "doy", "format_datetime",
        "from_iso8601_date", "from_iso8601_timestamp", "from_iso8601_timestamp_nanos",
        "from_unixtime", "from_unixtime_nanos", "hour", "human_readable_seconds",
        "last_day_of_month", "localtime", "localtimestamp", "millisecond", "minute", "month", "now",
        "parse_datetime", "parse_duration", "quarter", "second", "timezone_hour", "timezone_minute",
        "to_iso8601", "to_milliseconds", "to_unixtime", "week", "week_of_year", "with_timezone",
        "year", "year_of_week", "yow",
    ]),
    ("String", &[
        "chr", "codepoint", "concat", "concat_ws", "format", "from_utf8", "hamming_distance",
        "length", "levenshtein_distance", "lower", "lpad", "ltrim", "luhn_check", "normalize",
        "position", "replace", "reverse", "rpad", "rtrim", "soundex", "split", "split_part",
        "split_to_map", "split_to_multimap", "starts_with", "strpos", "substr", "substring",
        "to_utf8", "translate", "trim", "upper", "word_stem",
    ]),
    ("Regular expression", &[
        "regexp_count", "regexp_extract", "regexp_extract_all", "regexp_like", "regexp_position",
        "regexp_replace", "regexp_split",
    ]),
    ("JSON", &[
        "is_json_scalar", "json_array_contains", "json_array_get", "json_array_length",
        "json_exists", "json_extract", "json_extract_scalar", "json_format", "json_parse",
        "json_query", "json_size", "json_value",
    ]),
    ("Array", &[
        "all_match", "any_match", "array_distinct", "array_except", "array_histogram",
        "array_intersect", "array_join", "array_max", "array_min", "array_position", "array_remove",
        "array_sort", "array_union", "arrays_overlap", "cardinality", "combinations", "contains",
        "contains_sequence", "element_at", "filter", "flatten", "ngrams", "none_match", "reduce",
        "repeat", "reverse", "sequence", "shuffle", "slice", "transform", "trim_array", "zip",
        "zip_with",
    ]),
    ("Map", &[
        "cardinality", "element_at", "map", "map_concat", "map_entries", "map_filter",
        "map_from_entries", "map_keys", "map_values", "map_zip_with", "multimap_from_entries",
        "transform_keys", "transform_values",
    ]),
    ("Conditional", &[
        "coalesce", "if", "nullif", "try",
    ]),
    ("Conversion", &[
        "cast", "format", "parse_data_size", "try_cast", "typeof",
    ]),
    ("Aggregate", &[
        "any_value", "arbitrary", "array_agg", "avg", "bitwise_and_agg", "bitwise_or_agg",
        "bool_and", "bool_or", "checksum", "corr", "count", "count_if", "covar_pop", "covar_samp",
        "every", "geometric_mean", "histogram", "kurtosis", "listagg", "map_agg", "map_union",
        "max", "max_by", "min", "min_by", "multimap_agg", "regr_intercept", "regr_slope",
        "skewness", "stddev", "stddev_pop", "stddev_samp", "sum", "var_pop", "var_samp", "variance",
    ]),
    ("Approximate", &[
        "approx_distinct", "approx_most_frequent", "approx_percentile", "approx_set", "merge",
        "numeric_histogram", "qdigest_agg", "tdigest_agg",
    ]),
    ("URL", &[
        "url_decode", "url_encode", "url_extract_fragment", "url_extract_host",
        "url_extract_parameter", "url_extract_path", "url_extract_port", "url_extract_protocol",
        "url_extract_query",
    ]),
];

/// Trino syntax that is not a function in the registry: `sql::ast` rewrites it (or the parser
/// reads it), with Trino's semantics.
pub(crate) const SYNTAX: &[(&str, &str)] = &[
    ("cast", "SQL syntax; JSON casts rewritten to trawl's json_to_* functions"),
    ("try_cast", "SQL syntax"),
    ("if", "rewritten to CASE, so only the branch taken is evaluated"),
    ("count_if", "rewritten to count(CASE ...)"),
    ("current_date", "SQL syntax"),
    ("current_time", "SQL syntax"),
    ("current_timestamp", "SQL syntax"),
    ("localtime", "SQL syntax"),
    ("localtimestamp", "SQL syntax"),
    ("position", "SQL syntax (position(x IN s))"),
    ("substring", "SQL syntax"),
    ("trim", "SQL syntax"),
];

/// Names DataFusion registers whose meaning is not Trino's: not counted as supported.
pub(crate) const DIFFERS: &[(&str, &str)] = &[
    ("repeat", "DataFusion's repeats a string; Trino's makes an array"),
    ("array_remove", "DataFusion's removes the first match; Trino's removes every one"),
];

/// How one function is supported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Support {
    /// trawl's own implementation (the Trino pack).
    Trawl,
    /// DataFusion's, under the same name or as an alias trawl registers.
    DataFusion,
    /// Syntax: the parser or `sql::ast` handles it.
    Syntax(&'static str),
    /// Not supported; why, when the name exists with another meaning.
    No(Option<&'static str>),
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::fmt::Write;

    use super::*;

    /// The coverage table, written from the registry of a session set up as `Lake::open` sets
    /// it up. `TRAWL_WRITE_DOCS=1 cargo test -p trawl-query coverage` rewrites the document.
    #[test]
    fn function_coverage_is_documented() {
        let ctx = crate::functions::tests::context();
        let state = ctx.state();
        let ours: HashSet<String> = crate::functions::scalars()
            .iter()
            .flat_map(|f| std::iter::once(f.name().to_owned()).chain(f.aliases().iter().cloned()))
            .chain(crate::functions::aggregate::all().iter().map(|a| a.name().to_owned()))
            .collect();
        let registered = |name: &str| {
            state.scalar_functions().contains_key(name)
                || state.aggregate_functions().contains_key(name)
                || state.window_functions().contains_key(name)
                || state.higher_order_functions().contains_key(name)
        };
        let mut doc = String::from(
            "# Trino functions in trawl\n\n\
             Trino's documented functions in the families CloudTrail Lake queries use, and how trawl \
             runs each: **trawl** (its own implementation, with Trino's semantics), **DataFusion** \
             (DataFusion's function of the same name or an alias trawl registers), **syntax** (the \
             parser, or a rewrite of the statement), or not supported.\n\n\
             Written by a test from the function registry (`TRAWL_WRITE_DOCS=1 cargo test -p trawl-query \
             coverage`); do not edit by hand.\n",
        );
        let mut totals = (0, 0);
        for (family, names) in TRINO {
            let mut rows = String::new();
            let mut supported = 0;
            for name in names.iter() {
                let support = if let Some((_, note)) = SYNTAX.iter().find(|(n, _)| n == name) {
                    Support::Syntax(note)
                } else if let Some((_, why)) =
                    DIFFERS.iter().find(|(n, _)| n == name).filter(|_| !ours.contains(*name))
                {
                    Support::No(Some(why))
                } else if ours.contains(*name) {
                    Support::Trawl
                } else if registered(name) {
                    Support::DataFusion
                } else {
                    Support::No(None)
                };
                let cell = match &support {
                    Support::Trawl => "yes | trawl".to_owned(),
                    Support::DataFusion => "yes | DataFusion".to_owned(),
                    Support::Syntax(note) => format!("yes | syntax: {note}"),
                    Support::No(Some(why)) => format!("no | {why}"),
                    Support::No(None) => "no |".to_owned(),
                };
                supported += usize::from(!matches!(support, Support::No(_)));
                writeln!(rows, "| `{name}` | {cell} |").unwrap();
            }
            totals.0 += supported;
            totals.1 += names.len();
            write!(
                doc,
                "\n## {family} ({supported} of {})\n\n| function | supported | by |\n|---|---|---|\n{rows}",
                names.len()
            )
            .unwrap();
        }
        write!(doc, "\nIn all: {} of {} functions.\n", totals.0, totals.1).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FUNCTIONS.md");
        if std::env::var_os("TRAWL_WRITE_DOCS").is_some() {
            std::fs::write(&path, &doc).unwrap();
        }
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            written == doc,
            "docs/FUNCTIONS.md is out of date: TRAWL_WRITE_DOCS=1 cargo test -p trawl-query coverage"
        );
        // The functions the issue names run.
        for name in [
            "date",
            "format_datetime",
            "date_format",
            "date_parse",
            "date_trunc",
            "from_unixtime",
            "to_unixtime",
            "at_timezone",
            "regexp_extract",
            "regexp_extract_all",
            "regexp_replace",
            "url_extract_host",
            "try_cast",
            "approx_percentile",
            "histogram",
            "map_agg",
            "array_agg",
            "bool_or",
            "bool_and",
            "json_size",
        ] {
            assert!(
                ours.contains(name) || registered(name) || SYNTAX.iter().any(|(n, _)| *n == name),
                "{name}"
            );
        }
    }
}
