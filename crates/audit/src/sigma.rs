//! Sigma rules (logsource product `aws`, service `cloudtrail`) as audits: a rule's detection
//! becomes a `WHERE` clause over the Lake schema, with Sigma's semantics (the specification
//! v2.1.0, `SigmaHQ/sigma-specification`):
//!
//! - a map of fields is the AND of its fields, a list of maps their OR, a list of values for one
//!   field their OR (AND with `|all`);
//! - plain values match case-insensitively, whole (`*` and `?` are wildcards, `\*`, `\?` and
//!   `\\` literal); `|contains`, `|startswith`, `|endswith` add wildcards; `|re` is a regular
//!   expression, case-sensitive unless `|re|i`; `|cased` makes plain values case-sensitive;
//!   `null` is a field that is absent or null; `|exists` tests presence; `|fieldref` compares
//!   with another field;
//! - the condition: `and`, `or`, `not`, parentheses, `1 of P`, `all of P`, `them`.
//!
//! Fields: top-level columns by name (`eventName` is `eventname`), `userIdentity.a.b` the struct's
//! field, `requestParameters.X` (and the other maps) the map's value. A path deeper than a map's
//! key, or a field the schema lacks, is read from the event's JSON with `json_leaves`, which
//! descends into arrays (a field under a list matches when any element does, as a search index
//! flattens it). A field that is an object (`requestParameters` whole) is matched as its compact
//! JSON text. Every negation is `NOT coalesce(x, false)`: a comparison with a missing field is
//! false, never NULL, so `not` selects the events the rule means.
//!
//! What a rule holds that this cannot express exactly (keyword searches, aggregations, value
//! transformations such as `|base64`, placeholders) is refused with the rule, the construct and
//! the reason.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, Fields};
use yaml_rust2::{Yaml, YamlLoader};

use crate::pack::{Audit, Fires, Severity, Window};
use crate::schedule::Schedule;

/// Where the shipped rules come from: findings link each rule here.
pub const RULES_URL: &str = "https://github.com/SigmaHQ/sigma/blob/8eaafff1f/rules/cloud/aws/cloudtrail";

/// The columns an audit made from a rule returns: enough to act on a finding.
const COLUMNS: &str = "eventid, eventtime, eventsource, eventname, awsregion, recipientaccountid, \
                       useridentity.arn AS arn, sourceipaddress, useragent, errorcode";

/// Whether a rule is for CloudTrail (`logsource` product `aws`, service `cloudtrail`): a
/// directory of rules may hold others, which are not this converter's to refuse.
pub fn is_cloudtrail(text: &str) -> bool {
    YamlLoader::load_from_str(text).is_ok_and(|docs| {
        docs.iter().any(|d| {
            d["logsource"]["product"].as_str() == Some("aws")
                && d["logsource"]["service"].as_str() == Some("cloudtrail")
        })
    })
}

/// The audit of a Sigma rule. `file` names it in errors; `link` is where the rule is published.
pub fn audit(file: &str, text: &str, link: Option<String>) -> Result<Audit, String> {
    let refuse = |what: String| format!("{file}: {what}");
    let docs = YamlLoader::load_from_str(text).map_err(|e| refuse(format!("not YAML: {e}")))?;
    let [rule] = docs.as_slice() else {
        return Err(refuse("holds more than one YAML document (correlation rules are not supported)".into()));
    };
    let text_of = |key: &str| rule[key].as_str().map(str::to_owned);
    let title = text_of("title").ok_or_else(|| refuse("has no title".into()))?;
    let logsource = &rule["logsource"];
    if logsource["product"].as_str() != Some("aws") || logsource["service"].as_str() != Some("cloudtrail") {
        return Err(refuse("its logsource is not product aws, service cloudtrail".into()));
    }
    let detection = rule["detection"].as_hash().ok_or_else(|| refuse("has no detection".into()))?;
    let mut searches = BTreeMap::new();
    let mut conditions = Vec::new();
    for (key, value) in detection {
        let key = key.as_str().ok_or_else(|| refuse("a detection key is not text".into()))?;
        match key {
            "condition" => match value {
                Yaml::String(c) => conditions.push(c.clone()),
                Yaml::Array(list) => {
                    for c in list {
                        conditions.push(
                            c.as_str().ok_or_else(|| refuse("a condition is not text".into()))?.to_owned(),
                        );
                    }
                }
                _ => return Err(refuse("its condition is not text".into())),
            },
            "timeframe" => return Err(refuse("uses `timeframe` (aggregations are not supported)".into())),
            name => {
                let sql = search(value).map_err(|e| refuse(format!("search '{name}': {e}")))?;
                searches.insert(name.to_owned(), sql);
            }
        }
    }
    if conditions.is_empty() {
        return Err(refuse("has no condition".into()));
    }
    let conditions = conditions
        .iter()
        .map(|c| condition(c, &searches).map_err(|e| refuse(format!("condition '{c}': {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let predicate = if conditions.len() == 1 {
        conditions[0].clone()
    } else {
        format!("({})", conditions.join(") OR ("))
    };
    let level = text_of("level").unwrap_or_else(|| "medium".into());
    let severity: Severity = level.parse().map_err(|e| refuse(format!("level: {e}")))?;
    let mitre = match &rule["tags"] {
        Yaml::Array(tags) => tags
            .iter()
            .filter_map(|t| t.as_str()?.strip_prefix("attack.t"))
            .filter(|t| t.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .map(|t| format!("T{}", t.to_ascii_uppercase()))
            .collect(),
        _ => Vec::new(),
    };
    let id = text_of("id").ok_or_else(|| refuse("has no id".into()))?;
    Ok(Audit {
        id: std::path::Path::new(file)
            .file_stem()
            .map_or(id.clone(), |s| s.to_string_lossy().replace('_', "-")),
        title,
        description: text_of("description").unwrap_or_default(),
        sql: format!("SELECT {COLUMNS} FROM $EDS_ID WHERE {predicate}"),
        severity,
        mitre,
        schedule: Schedule::Every(chrono::Duration::minutes(15)),
        window: Window::NewEvents,
        fires: Fires::Rows { at_least: 1 },
        dedup: Vec::new(),
        realert: None,
        origin: file.to_owned(),
        author: text_of("author"),
        link,
        sinks: None,
    })
}

/// A search identifier's SQL: a map (AND of fields) or a list of maps (OR).
fn search(value: &Yaml) -> Result<String, String> {
    match value {
        Yaml::Hash(fields) => {
            let parts = fields
                .iter()
                .map(|(k, v)| {
                    let k = k.as_str().ok_or("a field name is not text")?;
                    field(k, v)
                })
                .collect::<Result<Vec<_>, String>>()?;
            if parts.is_empty() {
                return Err("an empty map".into());
            }
            Ok(format!("({})", parts.join(" AND ")))
        }
        Yaml::Array(items) if items.iter().all(|i| matches!(i, Yaml::Hash(_))) => {
            let parts = items.iter().map(search).collect::<Result<Vec<_>, _>>()?;
            Ok(format!("({})", parts.join(" OR ")))
        }
        Yaml::Array(_) | Yaml::String(_) => {
            Err("a keyword search (values without a field) is not supported: name the field".into())
        }
        _ => Err("is neither a map of fields nor a list of maps".into()),
    }
}

/// How values of a field are compared.
#[derive(Debug, Default)]
struct Modifiers {
    contains: bool,
    startswith: bool,
    endswith: bool,
    all: bool,
    re: bool,
    re_flags: String,
    cased: bool,
    exists: bool,
    fieldref: bool,
}

/// One `field|modifiers: value(s)` entry.
fn field(key: &str, value: &Yaml) -> Result<String, String> {
    let mut parts = key.split('|');
    let name = parts.next().unwrap_or_default();
    let mut m = Modifiers::default();
    for modifier in parts {
        match modifier {
            "contains" => m.contains = true,
            "startswith" => m.startswith = true,
            "endswith" => m.endswith = true,
            "all" => m.all = true,
            "re" => m.re = true,
            "i" | "m" | "s" if m.re => m.re_flags.push_str(modifier),
            "cased" => m.cased = true,
            "exists" => m.exists = true,
            "fieldref" => m.fieldref = true,
            other => {
                return Err(format!("field '{key}': the modifier '{other}' is not supported"));
            }
        }
    }
    let target = target(name)?;
    if m.exists {
        let want = value.as_bool().ok_or_else(|| format!("field '{key}': exists takes true or false"))?;
        return Ok(if want { target.present() } else { format!("NOT {}", target.present()) });
    }
    let values: Vec<&Yaml> = match value {
        Yaml::Array(list) => list.iter().collect(),
        v => vec![v],
    };
    if values.is_empty() {
        return Err(format!("field '{key}': an empty list of values"));
    }
    if m.all && values.len() == 1 {
        return Err(format!("field '{key}': `all` needs a list of values"));
    }
    let mut parts = Vec::new();
    for v in values {
        let text = match v {
            Yaml::Null => {
                if m.contains || m.startswith || m.endswith || m.re || m.fieldref {
                    return Err(format!("field '{key}': null cannot take a modifier"));
                }
                parts.push(format!("NOT {}", target.present()));
                continue;
            }
            Yaml::String(s) => s.clone(),
            Yaml::Integer(i) => i.to_string(),
            Yaml::Real(r) => r.clone(),
            Yaml::Boolean(b) => b.to_string(),
            _ => return Err(format!("field '{key}': a value is neither text, a number nor null")),
        };
        if text.contains('%') && text.matches('%').count() >= 2 && text.starts_with('%') {
            return Err(format!("field '{key}': '{text}' is a placeholder to fill, not a value"));
        }
        parts.push(if m.fieldref {
            let other = target_of(&text)?;
            if m.cased {
                format!("coalesce({} = {}, false)", target.text(), other.text())
            } else {
                format!("coalesce(lower({}) = lower({}), false)", target.text(), other.text())
            }
        } else if m.re {
            let flags = if m.re_flags.is_empty() { String::new() } else { format!("(?{})", m.re_flags) };
            target.test(&|x| format!("regexp_like({x}, {})", literal(&format!("{flags}{text}"))))
        } else {
            let mut pattern = text;
            if m.contains || m.endswith {
                pattern.insert(0, '*');
            }
            if m.contains || m.startswith {
                pattern.push('*');
            }
            matcher(&target, &pattern, m.cased)
        });
    }
    let joiner = if m.all { " AND " } else { " OR " };
    Ok(if parts.len() == 1 { parts.remove(0) } else { format!("({})", parts.join(joiner)) })
}

/// A Sigma value (with wildcards) matched against `target`.
fn matcher(target: &Target, pattern: &str, cased: bool) -> String {
    let (like, wild) = like_pattern(pattern);
    let fold = |s: String| if cased { s } else { s.to_lowercase() };
    target.test(&|x| {
        let x = if cased { x.to_owned() } else { format!("lower({x})") };
        if wild {
            format!("{x} LIKE {} ESCAPE '\\'", literal(&fold(like.clone())))
        } else {
            format!("{x} = {}", literal(&fold(unescape(pattern))))
        }
    })
}

/// A Sigma value as a LIKE pattern (`*` → `%`, `?` → `_`, `%`, `_` and `\` escaped), and whether it
/// has a wildcard.
fn like_pattern(value: &str) -> (String, bool) {
    let mut out = String::new();
    let mut wild = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    if n == '\\' {
                        out.push_str("\\\\");
                    } else {
                        out.push(n);
                    }
                }
                _ => out.push_str("\\\\"),
            },
            '*' => {
                wild = true;
                out.push('%');
            }
            '?' => {
                wild = true;
                out.push('_');
            }
            '%' | '_' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    (out, wild)
}

/// A Sigma value without wildcards, its escapes resolved.
fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&n @ ('*' | '?' | '\\')) = chars.peek()
        {
            chars.next();
            out.push(n);
            continue;
        }
        out.push(c);
    }
    out
}

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// What a field name reads.
#[derive(Debug, Clone)]
enum Target {
    /// One text value (a column, a struct field, a map's value, cast to text).
    One(String),
    /// Any of the values a JSON path reaches (descending into arrays).
    Any(String),
}

impl Target {
    /// The value as text, for `fieldref`.
    fn text(&self) -> String {
        match self {
            Target::One(x) => x.clone(),
            Target::Any(x) => format!("element_at({x}, 1)"),
        }
    }

    /// `test(x)` over the value; over each value for `Any`. Never NULL.
    fn test(&self, test: &dyn Fn(&str) -> String) -> String {
        match self {
            Target::One(x) => format!("coalesce({}, false)", test(x)),
            Target::Any(x) => format!("coalesce(any_match({x}, v -> {}), false)", test("v")),
        }
    }

    /// Whether the field has a value.
    fn present(&self) -> String {
        match self {
            Target::One(x) => format!("({x} IS NOT NULL)"),
            Target::Any(x) => format!("(coalesce(cardinality({x}), 0) > 0)"),
        }
    }
}

fn target_of(name: &str) -> Result<Target, String> {
    target(name)
}

/// The SQL for a Sigma field name over the Lake schema.
fn target(name: &str) -> Result<Target, String> {
    let schema = trawl_store::schema::event_schema();
    let path: Vec<&str> = name.split('.').collect();
    if path
        .iter()
        .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    {
        return Err(format!("field '{name}' is not a field path"));
    }
    let json =
        |root: &str, rest: &[&str]| Target::Any(format!("json_leaves({root}, {})", literal(&rest.join("."))));
    let Some(column) =
        schema.fields().iter().find(|f| f.name().eq_ignore_ascii_case(path[0]) && f.name() != "eventjson")
    else {
        // Not a column of the schema: the event's own JSON has it, if the event does.
        return Ok(json("eventjson", &path));
    };
    let col = column.name().as_str();
    match column.data_type() {
        DataType::Map(..) => match path.len() {
            // The whole object: its JSON text, as the event holds it.
            1 => Ok(Target::One(format!("json_extract(eventjson, {})", literal(&format!("$.{}", path[0]))))),
            2 => Ok(Target::One(format!("element_at({col}, {})", literal(path[1])))),
            _ => Ok(json(&format!("element_at({col}, {})", literal(path[1])), &path[2..])),
        },
        DataType::Struct(fields) => match struct_path(fields, &path[1..]) {
            Some(rest) if !rest.is_empty() => {
                Ok(Target::One(format!("CAST({col}.{} AS VARCHAR)", rest.join("."))))
            }
            _ => Ok(json("eventjson", &path)),
        },
        _ if path.len() == 1 => Ok(Target::One(match column.data_type() {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => col.to_owned(),
            _ => format!("CAST({col} AS VARCHAR)"),
        })),
        _ => Ok(json("eventjson", &path)),
    }
}

/// The schema's names for `path` inside a struct's `fields`, down to a scalar; `None` when the
/// struct lacks a step or the path stops at a struct.
fn struct_path(fields: &Fields, path: &[&str]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let f = fields.iter().find(|f| f.name().eq_ignore_ascii_case(first))?;
    match (f.data_type(), rest.is_empty()) {
        (DataType::Struct(inner), false) => {
            let mut names = vec![f.name().clone()];
            names.extend(struct_path(inner, rest)?);
            Some(names)
        }
        (DataType::Struct(_) | DataType::List(_) | DataType::Map(..), true) => None,
        (_, true) => Some(vec![f.name().clone()]),
        (_, false) => None,
    }
}

/// A condition as SQL, over the searches' SQL.
fn condition(text: &str, searches: &BTreeMap<String, String>) -> Result<String, String> {
    if text.contains('|') {
        return Err("an aggregation (`| count()`, `| near`) is not supported".into());
    }
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, at: 0, searches };
    let sql = p.or()?;
    if p.at != p.tokens.len() {
        return Err(format!("unexpected '{}'", p.tokens[p.at]));
    }
    Ok(sql)
}

fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                tokens.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
            }
            c if c.is_ascii_alphanumeric() || "_*-.".contains(c) => word.push(c),
            c => return Err(format!("unexpected character '{c}'")),
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    Ok(tokens)
}

/// The condition grammar, least binding first: `or`, `and`, `not`, `x of`, parentheses.
struct Parser<'a> {
    tokens: Vec<String>,
    at: usize,
    searches: &'a BTreeMap<String, String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Option<String> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<String, String> {
        self.joined("or", Self::and)
    }

    fn and(&mut self) -> Result<String, String> {
        self.joined("and", Self::not)
    }

    /// `part (word part)*`, as SQL.
    fn joined(
        &mut self,
        word: &str,
        part: fn(&mut Self) -> Result<String, String>,
    ) -> Result<String, String> {
        let mut parts = vec![part(self)?];
        while self.peek() == Some(word) {
            self.at += 1;
            parts.push(part(self)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            format!("({})", parts.join(&format!(" {} ", word.to_uppercase())))
        })
    }

    fn not(&mut self) -> Result<String, String> {
        if self.peek() == Some("not") {
            self.at += 1;
            // Every part is never NULL, so NOT is the complement.
            return Ok(format!("(NOT {})", self.not()?));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<String, String> {
        match self.next().as_deref() {
            Some("(") => {
                let inner = self.or()?;
                match self.next().as_deref() {
                    Some(")") => Ok(inner),
                    _ => Err("a '(' is not closed".into()),
                }
            }
            Some(quantifier @ ("1" | "all" | "any")) => {
                if self.next().as_deref() != Some("of") {
                    return Err(format!("'{quantifier}' must be followed by 'of'"));
                }
                let pattern = self.next().ok_or("'of' needs a pattern or 'them'")?;
                let names: Vec<&String> = self
                    .searches
                    .keys()
                    .filter(|n| if pattern == "them" { !n.starts_with('_') } else { glob(&pattern, n) })
                    .collect();
                if names.is_empty() {
                    return Err(format!("no search matches '{pattern}'"));
                }
                let joiner = if quantifier == "all" { " AND " } else { " OR " };
                let parts: Vec<&str> = names.iter().map(|n| self.searches[*n].as_str()).collect();
                Ok(format!("({})", parts.join(joiner)))
            }
            Some(name) => self.searches.get(name).cloned().ok_or_else(|| format!("no search named '{name}'")),
            None => Err("it ends too early".into()),
        }
    }
}

/// Sigma's `x of pattern` match: `*` is any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head) && {
                let rest = &name[head.len()..];
                (0..=rest.len()).any(|i| rest.is_char_boundary(i) && glob(tail, &rest[i..]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(detection: &str) -> Result<Audit, String> {
        let text = format!(
            "title: t\nid: r1\nauthor: someone\nlevel: high\ntags: [attack.t1562.008, attack.defense-evasion]\n\
             logsource: {{product: aws, service: cloudtrail}}\ndetection:\n{detection}"
        );
        audit("x_rule.yml", &text, None)
    }

    fn sql(detection: &str) -> String {
        let a = rule(detection).unwrap();
        a.sql.split_once(" WHERE ").unwrap().1.to_owned()
    }

    #[test]
    fn values_modifiers_and_fields() {
        assert_eq!(
            sql("  sel:\n    eventName: StopLogging\n  condition: sel"),
            "(coalesce(lower(eventname) = 'stoplogging', false))"
        );
        assert_eq!(
            sql("  sel:\n    userAgent|contains: '100%_*'\n  condition: sel"),
            r"(coalesce(lower(useragent) LIKE '%100\%\_%%' ESCAPE '\', false))"
        );
        assert_eq!(sql("  sel:\n    errorCode: null\n  condition: sel"), "(NOT (errorcode IS NOT NULL))");
        assert_eq!(
            sql("  sel:\n    userIdentity.sessionContext.sessionIssuer.type: Role\n  condition: sel"),
            "(coalesce(lower(CAST(useridentity.sessioncontext.sessionissuer.type AS VARCHAR)) = 'role', false))"
        );
        assert_eq!(
            sql("  sel:\n    requestParameters.a.b|re: '^x+$'\n  condition: sel"),
            "(coalesce(any_match(json_leaves(element_at(requestparameters, 'a'), 'b'), v -> regexp_like(v, '^x+$')), false))"
        );
        assert_eq!(
            sql("  sel:\n    additionalEventData.MFAUsed: 'No'\n  condition: sel"),
            "(coalesce(lower(element_at(additionaleventdata, 'MFAUsed')) = 'no', false))"
        );
        assert_eq!(
            sql("  sel:\n    eventName:\n      - A\n      - B*\n  condition: sel"),
            "((coalesce(lower(eventname) = 'a', false) OR coalesce(lower(eventname) LIKE 'b%' ESCAPE '\\', false)))"
        );
        let a = rule("  sel:\n    eventName: x\n  condition: sel").unwrap();
        assert_eq!(
            (a.severity, a.mitre, a.author.as_deref()),
            (Severity::High, vec!["T1562.008".to_owned()], Some("someone"))
        );
        assert_eq!(a.id, "x-rule");
    }

    #[test]
    fn conditions() {
        let d = "  sel_a:\n    eventName: a\n  sel_b:\n    eventName: b\n  filter:\n    errorCode: x\n";
        let c = |cond: &str| sql(&format!("{d}  condition: {cond}"));
        let (a, b, f) = (
            "(coalesce(lower(eventname) = 'a', false))",
            "(coalesce(lower(eventname) = 'b', false))",
            "(coalesce(lower(errorcode) = 'x', false))",
        );
        assert_eq!(c("1 of sel_*"), format!("({a} OR {b})"));
        assert_eq!(c("all of sel_*"), format!("({a} AND {b})"));
        assert_eq!(c("sel_a and not filter"), format!("({a} AND (NOT {f}))"));
        assert_eq!(c("not (sel_a or sel_b) and filter"), format!("((NOT ({a} OR {b})) AND {f})"));
        assert_eq!(c("1 of them"), format!("({f} OR {a} OR {b})"));
    }

    #[test]
    fn what_cannot_be_expressed_is_refused() {
        let e = rule("  keywords:\n    - evil\n  condition: keywords").unwrap_err();
        assert!(e.contains("x_rule.yml: search 'keywords': a keyword search"), "{e}");
        let e = rule("  sel:\n    eventName|base64: x\n  condition: sel").unwrap_err();
        assert!(e.contains("the modifier 'base64' is not supported"), "{e}");
        let e = rule("  sel:\n    eventName: x\n  condition: sel | count() > 5").unwrap_err();
        assert!(e.contains("aggregation"), "{e}");
        let e = rule("  sel:\n    eventName: x\n  condition: nope").unwrap_err();
        assert!(e.contains("no search named 'nope'"), "{e}");
        let e = rule("  sel:\n    sourceIPAddress: '%Legitimate_Countries%'\n  condition: sel").unwrap_err();
        assert!(e.contains("placeholder"), "{e}");
    }

    #[test]
    fn every_shipped_rule_converts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sigma/rules");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            audit(&name, &text, None).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
        assert_eq!(n, 57);
    }
}
