//! JSON paths evaluated on the text, without building the document: `json_extract_scalar` and
//! `json_extract` over `eventjson` read a kilobyte or two per event, and parsing each into a
//! tree of maps (a dozen allocations per event) cost more than the rest of the query.
//!
//! The scanner walks the document once, byte by byte: it descends into the members and
//! elements the path names and skips the others, checking the document's structure as it goes,
//! so an invalid document is `None` (as Trino's NULL) wherever the damage is. A key that occurs
//! twice in an object takes its last value, as a parser into a map would.

use std::borrow::Cow;
use std::ops::Range;

/// One step of a path: `.name`, `["name"]` or `[index]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// Parses the JSONPath subset Trino supports: `$`, `.name`, `["name"]`, `[index]`.
pub(crate) fn parse(path: &str) -> datafusion::common::Result<Vec<Step>> {
    use datafusion::common::exec_err;
    let Some(mut rest) = path.trim().strip_prefix('$') else {
        return exec_err!("invalid JSON path '{path}': it must start with $");
    };
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return exec_err!("invalid JSON path '{path}'");
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(close) = r.find(']') else { return exec_err!("invalid JSON path '{path}': missing ]") };
            let inner = r[..close].trim();
            if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                steps.push(Step::Key(q.to_owned()));
            } else if let Some(q) = inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
                steps.push(Step::Key(q.to_owned()));
            } else {
                match inner.parse() {
                    Ok(i) => steps.push(Step::Index(i)),
                    Err(_) => return exec_err!("invalid JSON path '{path}': bad subscript [{inner}]"),
                }
            }
            rest = &r[close + 1..];
        } else {
            return exec_err!("invalid JSON path '{path}'");
        }
    }
    Ok(steps)
}

/// A value found in a document: its bytes, from its first to its last character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found<'a>(pub(crate) &'a str);

impl<'a> Found<'a> {
    /// The value as `json_extract_scalar` gives it: a string unescaped, a number or boolean as
    /// written; `None` for null, objects and arrays.
    pub(crate) fn scalar(self) -> Option<Cow<'a, str>> {
        let text = self.0;
        match text.as_bytes().first()? {
            b'"' => unescape(&text[1..text.len() - 1]),
            b'{' | b'[' | b'n' => None,
            _ => Some(Cow::Borrowed(text)),
        }
    }

    /// The value as JSON text without the whitespace between tokens (`json_extract`).
    pub(crate) fn compact(self) -> Cow<'a, str> {
        let text = self.0;
        if !text.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut in_string = false;
        let mut escaped = false;
        for c in text.chars() {
            if in_string {
                out.push(c);
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
            } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
                in_string = c == '"';
                out.push(c);
            }
        }
        Cow::Owned(out)
    }
}

/// The value at `path` in `doc`; `None` when it is not there or `doc` is not JSON.
pub(crate) fn find<'a>(doc: &'a str, path: &[Step]) -> Option<Found<'a>> {
    let mut scan = Scan { bytes: doc.as_bytes(), at: 0, depth: 0 };
    scan.ws();
    let found = scan.value(Some(path)).ok()?;
    scan.ws();
    if scan.at != scan.bytes.len() {
        return None;
    }
    found.map(|r| Found(&doc[r]))
}

/// Not JSON.
struct Invalid;

/// Nesting deeper than this is not read (serde_json's limit).
const MAX_DEPTH: usize = 128;

struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: usize,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> Result<(), Invalid> {
        if self.peek() != Some(b) {
            return Err(Invalid);
        }
        self.at += 1;
        Ok(())
    }

    /// Reads one value. With `path`, the range of the value at that path inside it, if any;
    /// without, only skips it.
    fn value(&mut self, path: Option<&[Step]>) -> Result<Option<Range<usize>>, Invalid> {
        let start = self.at;
        let found = match self.peek().ok_or(Invalid)? {
            b'{' | b'[' => {
                // As deep as serde_json goes: deeper is refused, not a stack overflow.
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(Invalid);
                }
                let found = if self.peek() == Some(b'{') { self.object(path)? } else { self.array(path)? };
                self.depth -= 1;
                found
            }
            b'"' => self.string().map(|_| None)?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number().map(|()| None)?,
            _ => return Err(Invalid),
        };
        match path {
            Some([]) => Ok(Some(start..self.at)),
            _ => Ok(found),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<Option<Range<usize>>, Invalid> {
        if !self.bytes[self.at..].starts_with(word) {
            return Err(Invalid);
        }
        self.at += word.len();
        Ok(None)
    }

    fn number(&mut self) -> Result<(), Invalid> {
        let start = self.at;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        let text = &self.bytes[start..self.at];
        // The grammar's corners (leading zeros, a lone '-') are left to the rare document that
        // has them; a number must hold a digit, and may not end in a sign, dot or exponent.
        let digit = text.iter().any(u8::is_ascii_digit);
        let ends_well = text.last().is_some_and(u8::is_ascii_digit);
        if digit && ends_well { Ok(()) } else { Err(Invalid) }
    }

    /// Skips a string; returns its contents' range (between the quotes) and whether it has
    /// escapes.
    fn string(&mut self) -> Result<(Range<usize>, bool), Invalid> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escapes = false;
        loop {
            let rest = &self.bytes[self.at..];
            let Some(i) = rest.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20) else {
                return Err(Invalid);
            };
            self.at += i;
            match self.bytes[self.at] {
                b'"' => {
                    let range = start..self.at;
                    self.at += 1;
                    return Ok((range, escapes));
                }
                b'\\' => {
                    escapes = true;
                    match self.bytes.get(self.at + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 2,
                        Some(b'u') => {
                            let hex = self.bytes.get(self.at + 2..self.at + 6).ok_or(Invalid)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Invalid);
                            }
                            self.at += 6;
                        }
                        _ => return Err(Invalid),
                    }
                }
                // A control character: JSON allows none unescaped.
                _ => return Err(Invalid),
            }
        }
    }

    fn object(&mut self, path: Option<&[Step]>) -> Result<Option<Range<usize>>, Invalid> {
        self.eat(b'{')?;
        self.ws();
        let mut found = None;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(None);
        }
        let want = match path {
            Some([Step::Key(k), rest @ ..]) => Some((k.as_str(), rest)),
            _ => None,
        };
        loop {
            self.ws();
            let (key, escaped) = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let inner = want.and_then(|(k, rest)| {
                let key = &self.bytes[key];
                let same = if escaped {
                    std::str::from_utf8(key).ok().and_then(unescape).is_some_and(|u| u == k)
                } else {
                    key == k.as_bytes()
                };
                same.then_some(rest)
            });
            match inner {
                // A later member of the same name wins.
                Some(rest) => found = self.value(Some(rest))?,
                None => {
                    self.value(None)?;
                }
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(found);
                }
                _ => return Err(Invalid),
            }
        }
    }

    fn array(&mut self, path: Option<&[Step]>) -> Result<Option<Range<usize>>, Invalid> {
        self.eat(b'[')?;
        self.ws();
        let mut found = None;
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(None);
        }
        let want = match path {
            Some([Step::Index(i), rest @ ..]) => Some((*i, rest)),
            _ => None,
        };
        let mut index = 0;
        loop {
            self.ws();
            match want {
                Some((i, rest)) if i == index => found = self.value(Some(rest))?,
                _ => {
                    self.value(None)?;
                }
            }
            index += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(found);
                }
                _ => return Err(Invalid),
            }
        }
    }
}

/// The text of a JSON string's contents (between its quotes); `None` when an escape is bad.
fn unescape(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('\\') {
        return Some(Cow::Borrowed(raw));
    }
    // Rare in CloudTrail (quotes and slashes in policies): the standard parser does it.
    serde_json::from_str::<String>(&format!("\"{raw}\"")).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &[&str]) -> Vec<Step> {
        p.iter().map(|s| s.parse().map_or_else(|_| Step::Key((*s).to_owned()), Step::Index)).collect()
    }

    /// The scanner against serde_json's tree on the same documents and paths.
    #[test]
    fn agrees_with_a_parser() {
        let docs = [
            r#"{"a":{"b c":[1,{"d":"x\"y\u00e9"}]},"n":-1.5e3,"t":true,"z":null,"e":{},"l":[]}"#,
            r#" { "a" : { "b c" : [ 1 , { "d" : "x" } ] } , "n" : 2 } "#,
            r#"{"userIdentity":{"arn":"arn:aws:iam::1:user/admin","sessionContext":{"x":1}},"k\"q":7}"#,
            r#"[1,[2,[3,{"a":4}]]]"#,
            r#""just a string""#,
        ];
        let paths = [
            path(&[]),
            path(&["a"]),
            path(&["a", "b c"]),
            path(&["a", "b c", "1", "d"]),
            path(&["a", "b c", "0"]),
            path(&["a", "b c", "5"]),
            path(&["n"]),
            path(&["t"]),
            path(&["z"]),
            path(&["e"]),
            path(&["l"]),
            path(&["missing"]),
            path(&["userIdentity", "arn"]),
            path(&["userIdentity", "sessionContext"]),
            path(&["k\"q"]),
            path(&["1", "1", "1", "a"]),
        ];
        for doc in docs {
            let tree: serde_json::Value = serde_json::from_str(doc).unwrap();
            for p in &paths {
                let mut want = Some(&tree);
                for step in p {
                    want = match (step, want) {
                        (Step::Key(k), Some(serde_json::Value::Object(m))) => m.get(k),
                        (Step::Index(i), Some(serde_json::Value::Array(a))) => a.get(*i),
                        _ => None,
                    };
                }
                let got = find(doc, p);
                let as_value = got.map(|f| serde_json::from_str::<serde_json::Value>(f.0).unwrap());
                assert_eq!(as_value.as_ref(), want, "{doc} {p:?}");
                let scalar = got.and_then(Found::scalar).map(|s| s.into_owned());
                let want_scalar = match want {
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        Some(got.unwrap().0.to_owned()).filter(|_| v.is_number() || v.is_boolean())
                    }
                    _ => None,
                };
                assert_eq!(scalar, want_scalar, "{doc} {p:?}");
            }
        }
    }

    #[test]
    fn paths_parse() {
        let doc = r#"{"a":{"b c":[1,{"d":"x"}]}}"#;
        let get = |p: &str| find(doc, &parse(p).unwrap()).map(|f| f.0);
        assert_eq!(get("$.a[\"b c\"][1].d"), Some(r#""x""#));
        assert_eq!(get("$.a['b c'][0]"), Some("1"));
        assert_eq!(get("$.a.missing"), None);
        assert_eq!(get("$"), Some(doc));
        assert!(parse("a.b").is_err());
        assert!(parse("$..b").is_err());
        let deep = "[".repeat(100_000);
        assert_eq!(find(&deep, &[]), None);
    }

    #[test]
    fn compact_and_duplicates() {
        let doc = r#" { "a" : [ 1 , "x y" , { "b" : null } ] } "#;
        assert_eq!(find(doc, &path(&["a"])).unwrap().compact(), r#"[1,"x y",{"b":null}]"#);
        assert_eq!(find(r#"{"a":1,"a":2}"#, &path(&["a"])).unwrap().0, "2");
        assert_eq!(find(r#"{"a":{"b":1},"a":{"c":2}}"#, &path(&["a", "b"])), None);
    }

    #[test]
    fn invalid_documents_find_nothing() {
        for doc in [
            r#"{"a":1"#,
            r#"{"a":1}}"#,
            r#"{"a":1,}"#,
            r#"{"a":tru}"#,
            r#"{"a":"x"#,
            "{\"a\":\"line\nbreak\"}",
            r#"{"a":1} trailing"#,
            r#"{"a":"\q"}"#,
            r#"{"b":[1,2,}"#,
            r#"{"a":-}"#,
            "",
        ] {
            assert_eq!(find(doc, &path(&["a"])), None, "{doc}");
            assert!(serde_json::from_str::<serde_json::Value>(doc).is_err(), "{doc}");
        }
    }
}
