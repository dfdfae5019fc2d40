//! String and regular expression functions with Trino's semantics: `replace` with two
//! arguments, `regexp_extract(_all)` with groups, `regexp_replace` replacing every match with
//! `$1` group references, `regexp_position` and `regexp_split`. DataFusion's own `regexp_like`
//! and `regexp_count` already answer as Trino's do.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Builder, ListBuilder, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use regex::Regex;

use super::{Arg, Fun, int, text, text_list, utf8};

const STRING_PATTERN_GROUP: &[(&str, Arg)] =
    &[("string", Arg::Text), ("pattern", Arg::Text), ("group", Arg::Int)];

pub(super) fn all() -> Vec<Fun> {
    vec![
        Fun::new(
            "replace",
            &[("string", Arg::Text), ("search", Arg::Text), ("replace", Arg::Text)],
            text,
            replace,
        )
        .required(2),
        Fun::new("regexp_extract", STRING_PATTERN_GROUP, text, |a, _| {
            let group = group_of(a)?;
            let mut b = StringBuilder::new();
            each_match(a, |re, s| {
                let value = match s.and_then(|s| re.captures(s)) {
                    Some(c) => capture(&c, group, re)?,
                    None => None,
                };
                b.append_option(value);
                Ok(())
            })?;
            Ok(Arc::new(b.finish()))
        })
        .required(2),
        Fun::new("regexp_extract_all", STRING_PATTERN_GROUP, text_list, |a, _| {
            let group = group_of(a)?;
            let mut b = ListBuilder::new(StringBuilder::new());
            each_match(a, |re, s| {
                let Some(s) = s else {
                    b.append(false);
                    return Ok(());
                };
                for c in re.captures_iter(s) {
                    b.values().append_option(capture(&c, group, re)?);
                }
                b.append(true);
                Ok(())
            })?;
            Ok(Arc::new(b.finish()))
        })
        .required(2),
        Fun::new(
            "regexp_replace",
            &[("string", Arg::Text), ("pattern", Arg::Text), ("replacement", Arg::Text)],
            text,
            regexp_replace,
        )
        .required(2),
        Fun::new(
            "regexp_position",
            &[("string", Arg::Text), ("pattern", Arg::Text), ("start", Arg::Int)],
            int,
            |a, _| {
                let start = match a.get(2) {
                    Some(s) => Some(super::ints(s)?),
                    None => None,
                };
                let mut b = Int64Builder::new();
                let mut row = 0;
                each_match(a, |re, s| {
                    let from = match &start {
                        Some(s) => {
                            let s = s.as_primitive::<arrow::datatypes::Int64Type>();
                            if s.is_null(row) { None } else { Some(s.value(row)) }
                        }
                        None => Some(1),
                    };
                    row += 1;
                    let (Some(s), Some(from)) = (s, from) else {
                        b.append_null();
                        return Ok(());
                    };
                    if from < 1 {
                        return exec_err!("regexp_position: start must be positive, not {from}");
                    }
                    // Positions count characters from 1; -1 when there is no match.
                    let skip = s.char_indices().nth(from as usize - 1).map_or(s.len(), |(i, _)| i);
                    b.append_value(match re.find_at(s, skip) {
                        Some(m) => s[..m.start()].chars().count() as i64 + 1,
                        None => -1,
                    });
                    Ok(())
                })?;
                Ok(Arc::new(b.finish()))
            },
        )
        .required(2),
        Fun::new("regexp_split", &[("string", Arg::Text), ("pattern", Arg::Text)], text_list, |a, _| {
            let mut b = ListBuilder::new(StringBuilder::new());
            each_match(a, |re, s| {
                match s {
                    Some(s) => {
                        for part in re.split(s) {
                            b.values().append_value(part);
                        }
                        b.append(true);
                    }
                    None => b.append(false),
                }
                Ok(())
            })?;
            Ok(Arc::new(b.finish()))
        }),
    ]
}

/// Trino's `replace(string, search[, replace])`: every occurrence; without `replace`, removed.
fn replace(a: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let (text, from) = (utf8(&a[0])?, utf8(&a[1])?);
    let to = a.get(2).map(utf8).transpose()?;
    let mut b = StringBuilder::new();
    for (row, (t, f)) in text.iter().zip(from.iter()).enumerate() {
        b.append_option(match (t, f, replacement(to.as_ref(), row)) {
            (Some(t), Some(f), Some(r)) => Some(t.replace(f, r)),
            _ => None,
        });
    }
    Ok(Arc::new(b.finish()))
}

/// `regexp_replace(string, pattern[, replacement])`: every match replaced; `$1` and `${name}`
/// name groups, `\$` is a dollar sign.
fn regexp_replace(a: &[ArrayRef], _: &DataType) -> Result<ArrayRef> {
    let replacements = a.get(2).map(utf8).transpose()?;
    let mut b = StringBuilder::new();
    let mut row = 0;
    each_match(a, |re, s| {
        let r = replacement(replacements.as_ref(), row);
        row += 1;
        b.append_option(match (s, r) {
            (Some(s), Some(r)) => Some(re.replace_all(s, r.replace("\\$", "$$").as_str()).into_owned()),
            _ => None,
        });
        Ok(())
    })?;
    Ok(Arc::new(b.finish()))
}

/// The replacement of `row`: the empty string when the function was given none.
fn replacement(given: Option<&arrow::array::StringArray>, row: usize) -> Option<&str> {
    match given {
        Some(r) => r.is_valid(row).then(|| r.value(row)),
        None => Some(""),
    }
}

/// The group argument (third) of `regexp_extract(_all)`: 0, the whole match, when absent.
fn group_of(a: &[ArrayRef]) -> Result<usize> {
    let Some(g) = a.get(2) else { return Ok(0) };
    let g = super::ints(g)?;
    let g = g.as_primitive::<arrow::datatypes::Int64Type>();
    let value = (0..g.len()).find(|&i| g.is_valid(i)).map_or(0, |i| g.value(i));
    match usize::try_from(value) {
        Ok(v) => Ok(v),
        Err(_) => exec_err!("the group must not be negative, not {value}"),
    }
}

fn capture(c: &regex::Captures<'_>, group: usize, re: &Regex) -> Result<Option<String>> {
    if group >= re.captures_len() {
        return exec_err!("pattern has {} groups; cannot access group {group}", re.captures_len() - 1);
    }
    Ok(c.get(group).map(|m| m.as_str().to_owned()))
}

/// Calls `each` with every row's compiled pattern and string (NULL pattern: the row is NULL,
/// as `each` is given `None`). A pattern is compiled once per distinct value.
fn each_match(a: &[ArrayRef], mut each: impl FnMut(&Regex, Option<&str>) -> Result<()>) -> Result<()> {
    let (strings, patterns) = (utf8(&a[0])?, utf8(&a[1])?);
    let mut compiled: Option<(&str, Regex)> = None;
    let never = Regex::new("$^").map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    for (s, p) in strings.iter().zip(patterns.iter()) {
        let Some(p) = p else {
            each(&never, None)?;
            continue;
        };
        if compiled.as_ref().is_none_or(|(text, _)| *text != p) {
            match Regex::new(p) {
                Ok(re) => compiled = Some((p, re)),
                Err(e) => return exec_err!("invalid regular expression '{p}': {e}"),
            }
        }
        let re = compiled.as_ref().map_or(&never, |(_, re)| re);
        each(re, s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{context, error, value};

    #[tokio::test]
    async fn string_functions() {
        let ctx = context();
        for (call, want) in [
            ("replace('a-b-c', '-')", "abc"),
            ("replace('a-b-c', '-', '+')", "a+b+c"),
            ("regexp_extract('1a 2b 14m', '\\d+')", "1"),
            ("regexp_extract('1a 2b 14m', '(\\d+)([a-z]+)', 2)", "a"),
            ("regexp_extract('abc', '\\d')", "NULL"),
            ("regexp_extract_all('1a 2b 14m', '\\d+')", "[1, 2, 14]"),
            ("regexp_extract_all('1a 2b 14m', '(\\d+)([a-z]+)', 2)", "[a, b, m]"),
            ("regexp_replace('1a 2b 14m', '\\d+[ab] ')", "14m"),
            ("regexp_replace('1a 2b 14m', '(\\d+)([ab]) ', '3c$2 ')", "3ca 3cb 14m"),
            ("regexp_replace('cost 5', '\\d', '\\$')", "cost $"),
            ("regexp_position('I have 23 apples, 5 pears', '\\d')", "8"),
            ("regexp_position('I have 23 apples, 5 pears', '\\d', 10)", "19"),
            ("regexp_position('abc', '\\d')", "-1"),
            ("regexp_split('1a 2b 14m', '\\s*[a-z]+\\s*')", "[1, 2, 14, ]"),
        ] {
            assert_eq!(value(&ctx, &format!("SELECT {call}")).await, want, "{call}");
        }
        let e = error(&ctx, "SELECT regexp_extract('a', '(a)', 2)").await;
        assert!(e.contains("cannot access group 2"), "{e}");
        let e = error(&ctx, "SELECT regexp_extract('a', '(')").await;
        assert!(e.contains("invalid regular expression '('"), "{e}");
    }
}
