//! CloudTrail Lake's SQL surface on top of DataFusion's parser: `$NAME` placeholders, store ids
//! as bare table names (`FROM 5e2676f8-9fce-46ef-8142-3e36a94e6691`), and store names with
//! hyphens or dots used bare.

use std::collections::HashMap;

use crate::{Error, Result};

/// Rewrites `sql` so DataFusion's parser accepts it. `params` fill `$NAME` and `${NAME}`
/// placeholders outside string literals; `tables` are store names and ids that are quoted when
/// they appear bare after `FROM`, `JOIN` or a comma of a `FROM` list.
pub(crate) fn rewrite(sql: &str, params: &HashMap<String, String>, tables: &[String]) -> Result<String> {
    let with_params = substitute(sql, params)?;
    Ok(quote_tables(&array_types(&field_access(&with_params)), tables))
}

/// Trino's `CAST(x AS array(T))` becomes `CAST(x AS array<T>)`, the form the parser reads.
fn array_types(sql: &str) -> String {
    outside_literals(sql, |text, out| {
        let lower = text.to_ascii_lowercase();
        let mut copied = 0;
        let mut from = 0;
        while let Some(found) = lower[from..].find("array(") {
            let at = from + found;
            from = at + 6;
            let before = lower[..at].trim_end();
            let after_as =
                before.strip_suffix("as").is_some_and(|b| !b.ends_with(|c: char| is_ident_char(c)));
            let word_start = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
            if !(after_as && word_start) {
                continue;
            }
            let mut depth = 0;
            let Some(close) = text[at + 5..].char_indices().find_map(|(i, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(at + 5 + i)
            }) else {
                continue;
            };
            out.push_str(&text[copied..at + 5]);
            out.push('<');
            out.push_str(&text[at + 6..close]);
            out.push('>');
            copied = close + 1;
            from = close + 1;
        }
        out.push_str(&text[copied..]);
        Ok(())
    })
    .expect("rewriting cannot fail")
}

/// `f(x).field` (Trino's field access on an expression) becomes `f(x)['field']`, which
/// DataFusion plans.
fn field_access(sql: &str) -> String {
    outside_literals(sql, |text, out| {
        let mut rest = text;
        while let Some(at) = rest.find(").") {
            out.push_str(&rest[..=at]);
            let after = &rest[at + 2..];
            let n = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            if n > 0 && !after.starts_with(|c: char| c.is_ascii_digit()) {
                out.push_str("['");
                out.push_str(&after[..n].to_ascii_lowercase());
                out.push_str("']");
                rest = &after[n..];
            } else {
                out.push('.');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(())
    })
    .expect("rewriting cannot fail")
}

/// Copies `sql`, calling `f` on each run of text outside quotes and comments.
fn outside_literals(sql: &str, mut f: impl FnMut(&str, &mut String) -> Result<()>) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let b = sql.as_bytes();
    let (mut i, mut start) = (0, 0);
    while i < b.len() {
        let end = match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                let mut j = i + 1;
                while j < b.len() {
                    if b[j] == q {
                        if b.get(j + 1) == Some(&q) {
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    j += 1;
                }
                Some((j + 1).min(b.len()))
            }
            b'-' if b.get(i + 1) == Some(&b'-') => Some(sql[i..].find('\n').map_or(b.len(), |n| i + n)),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                Some(sql[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2))
            }
            _ => None,
        };
        match end {
            Some(end) => {
                f(&sql[start..i], &mut out)?;
                out.push_str(&sql[i..end]);
                i = end;
                start = end;
            }
            None => i += 1,
        }
    }
    f(&sql[start..], &mut out)?;
    Ok(out)
}

fn substitute(sql: &str, params: &HashMap<String, String>) -> Result<String> {
    each_placeholder(sql, |name, out| {
        let value = params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .ok_or_else(|| Error::MissingParameter(name.to_owned()))?;
        push_value(out, name, value)
    })
}

/// The `$NAME` placeholders of `sql`, each once, in the order they first appear: what a saved
/// query asks its runs to fill.
pub fn placeholders(sql: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    each_placeholder(sql, |name, _| {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
        Ok(())
    })
    .expect("collecting names cannot fail");
    names
}

/// Copies `sql`, letting `f` write what stands for each `$NAME` or `${NAME}` outside string
/// literals and comments.
fn each_placeholder(sql: &str, mut f: impl FnMut(&str, &mut String) -> Result<()>) -> Result<String> {
    outside_literals(sql, |text, out| {
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, consumed) = match after.strip_prefix('{') {
                Some(inner) => match inner.find('}') {
                    Some(close) => (&inner[..close], close + 2),
                    None => ("", 0),
                },
                None => {
                    let n =
                        after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                    (&after[..n], n)
                }
            };
            if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
                // `$1`-style positional parameters are DataFusion's; leave them.
                out.push('$');
                rest = after;
                continue;
            }
            f(name, out)?;
            rest = &after[consumed..];
        }
        out.push_str(rest);
        Ok(())
    })
}

/// A placeholder's value, as SQL: after FROM or JOIN it names a store, and must be a store
/// name or id; elsewhere a number stays a number and anything else is a string literal, so a
/// value can never be SQL of its own.
fn push_value(out: &mut String, name: &str, value: &str) -> Result<()> {
    let before = out.trim_end();
    let word = before.rsplit(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    let table_position =
        before.len() < out.len() && (word.eq_ignore_ascii_case("from") || word.eq_ignore_ascii_case("join"));
    if table_position {
        if value.is_empty() || !value.chars().all(is_ident_char) {
            return Err(Error::InvalidParameter { name: name.to_owned(), value: value.to_owned() });
        }
        out.push_str(value);
    } else if is_number(value) {
        out.push_str(value);
    } else {
        out.push('\'');
        out.push_str(&value.replace('\'', "''"));
        out.push('\'');
    }
    Ok(())
}

/// An unsigned or negative decimal number, as SQL writes it.
fn is_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn quote_tables(sql: &str, tables: &[String]) -> String {
    let mut in_from = false;
    // Brackets open, and how many were open at the FROM: a comma inside a call or an array
    // (`FROM UNNEST(ARRAY[1, 2])`) does not start a table.
    let (mut depth, mut from_depth) = (0usize, 0usize);
    outside_literals(sql, |text, out| {
        let mut i = 0;
        let mut prev_word = String::new();
        while i < text.len() {
            let c = text[i..].chars().next().expect("in bounds");
            if is_ident_char(c) {
                let end = text[i..].find(|c: char| !is_ident_char(c)).map_or(text.len(), |n| i + n);
                let word = &text[i..end];
                let after_table_keyword = prev_word.eq_ignore_ascii_case("from")
                    || prev_word.eq_ignore_ascii_case("join")
                    || (prev_word == "," && in_from && depth == from_depth);
                // A hyphen or a leading digit is no bare table name SQL reads, so such a word is
                // a store (id) whether it exists or not: the planner then names it unknown, with
                // the closest store, where the parser would stop at the hyphen.
                let store_like = tables.iter().any(|t| t == word)
                    || (word.contains('-')
                        && !word.contains('.')
                        && word.starts_with(|c: char| c.is_ascii_alphanumeric()));
                if after_table_keyword && needs_quotes(word) && store_like {
                    out.push('"');
                    out.push_str(word);
                    out.push('"');
                } else {
                    out.push_str(word);
                }
                if word.eq_ignore_ascii_case("from") || word.eq_ignore_ascii_case("join") {
                    in_from = true;
                    from_depth = depth;
                } else if ["where", "group", "order", "having", "limit", "on", "select", "union"]
                    .iter()
                    .any(|k| word.eq_ignore_ascii_case(k))
                {
                    in_from = false;
                }
                prev_word = word.to_owned();
                i = end;
            } else {
                out.push(c);
                match c {
                    '(' | '[' => depth += 1,
                    ')' | ']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                if !c.is_whitespace() {
                    prev_word = c.to_string();
                }
                i += c.len_utf8();
            }
        }
        Ok(())
    })
    .expect("quoting cannot fail")
}

/// A bare word that SQL would not read as one identifier.
fn needs_quotes(word: &str) -> bool {
    word.contains(['-', '.']) || word.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(sql: &str) -> String {
        let params =
            HashMap::from([("EDS_ID".to_owned(), "5e2676f8-9fce-46ef-8142-3e36a94e6691".to_owned())]);
        rewrite(sql, &params, &["my-store".to_owned()]).unwrap()
    }

    #[test]
    fn placeholders_are_listed_once_outside_literals() {
        let sql = "SELECT * FROM $EDS WHERE u = $user AND e = ${Event} AND x = '$notme' -- $nor_me\n AND y = $USER AND z = $1";
        assert_eq!(super::placeholders(sql), ["EDS", "user", "Event"]);
        assert!(super::placeholders("SELECT 1").is_empty());
    }

    #[test]
    fn placeholders_are_literals_or_store_names() {
        let params = HashMap::from([
            ("EDS_ID".to_owned(), "my-store".to_owned()),
            ("USER".to_owned(), "x' OR 1=1 --".to_owned()),
            ("N".to_owned(), "10".to_owned()),
            ("EVIL".to_owned(), "t; DROP TABLE t".to_owned()),
        ]);
        let rw = |sql: &str| rewrite(sql, &params, &["my-store".to_owned()]);
        assert_eq!(
            rw("SELECT * FROM $EDS_ID WHERE useridentity.username = $USER LIMIT $N").unwrap(),
            "SELECT * FROM \"my-store\" WHERE useridentity.username = 'x'' OR 1=1 --' LIMIT 10"
        );
        assert_eq!(
            rw("select a from t join ${EDS_ID} b on true").unwrap(),
            "select a from t join \"my-store\" b on true"
        );
        let err = rw("SELECT * FROM $EVIL").unwrap_err().to_string();
        assert!(err.contains("not a store name or id"), "{err}");
        // Inside a string literal a placeholder is text.
        assert_eq!(rw("SELECT '$USER'").unwrap(), "SELECT '$USER'");
    }

    #[test]
    fn bare_ids_and_names() {
        assert_eq!(
            rw("SELECT * FROM 5e2676f8-9fce-46ef-8142-3e36a94e6691 WHERE a-b > 1"),
            "SELECT * FROM \"5e2676f8-9fce-46ef-8142-3e36a94e6691\" WHERE a-b > 1"
        );
        assert_eq!(
            rw("select 1 from my-store as a join my-store b on a.x=b.x"),
            "select 1 from \"my-store\" as a join \"my-store\" b on a.x=b.x"
        );
        assert_eq!(
            rw("SELECT * FROM EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE"),
            "SELECT * FROM \"EXAMPLEf852-4e8f-8bd1-bcf6cEXAMPLE\""
        );
        assert_eq!(
            rw("SELECT eventID FROM EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE"),
            "SELECT eventID FROM \"EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE\""
        );
        assert_eq!(
            rw("SELECT x FROM UNNEST(ARRAY[1, 2, 3]) AS t(x), t2"),
            "SELECT x FROM UNNEST(ARRAY[1, 2, 3]) AS t(x), t2"
        );
        assert_eq!(
            rw("SELECT '5e2676f8-9fce-46ef-8142-3e36a94e6691' FROM t"),
            "SELECT '5e2676f8-9fce-46ef-8142-3e36a94e6691' FROM t"
        );
    }

    #[test]
    fn field_access_on_expressions() {
        assert_eq!(
            rw("SELECT element_at(resources, 1).ARN FROM t"),
            "SELECT element_at(resources, 1)['arn'] FROM t"
        );
        assert_eq!(rw("SELECT (1).5, f(x).a.b, '(x).y' FROM t"), "SELECT (1).5, f(x)['a'].b, '(x).y' FROM t");
    }

    #[test]
    fn trino_array_types() {
        assert_eq!(
            rw("SELECT CAST(j AS array(map(varchar, json))), cast(x as\n ARRAY(varchar)), my_array(1)"),
            "SELECT CAST(j AS array<map(varchar, json)>), cast(x as\n ARRAY<varchar>), my_array(1)"
        );
    }

    #[test]
    fn placeholders() {
        assert_eq!(
            rw("SELECT * FROM $EDS_ID -- $not_here\n"),
            "SELECT * FROM \"5e2676f8-9fce-46ef-8142-3e36a94e6691\" -- $not_here\n"
        );
        assert_eq!(
            rw("SELECT '$EDS_ID', $1 FROM ${eds_id}"),
            "SELECT '$EDS_ID', $1 FROM \"5e2676f8-9fce-46ef-8142-3e36a94e6691\""
        );
        let err = rewrite("SELECT * FROM $OTHER", &HashMap::new(), &[]).unwrap_err();
        assert!(err.to_string().contains("$OTHER"), "{err}");
    }
}
