//! JSON paths evaluated on the text, without building the document: `json_extract_scalar` and
//! `json_extract` over `eventjson` read a kilobyte or two per event, and parsing each into a
//! tree of maps (a dozen allocations per event) cost more than the rest of the query.
//!
//! The scanner reads the document as Trino's extractors read it with a streaming parser: it
//! descends into the member or element the path names, skips the others without looking inside
//! them more than it must to find their end, and stops at the first value the path reaches. So
//! the first of two members of one name is the one found, and damage after the value found
//! does not hide it; damage before it, or in it, gives `None` (Trino's NULL).

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

/// The value at `path` in `doc`; `None` when it is not there or the JSON up to it is damaged.
pub(crate) fn find<'a>(doc: &'a str, path: &[Step]) -> Option<Found<'a>> {
    let mut scan = Scan { bytes: doc.as_bytes(), at: 0 };
    scan.ws();
    let range = scan.seek(path).ok()??;
    let text = &doc[range];
    // A container is given whole (json_extract): it must be JSON all through.
    if text.starts_with(['{', '[']) {
        serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    }
    Some(Found(text))
}

/// Not JSON.
struct Invalid;

struct Scan<'a> {
    bytes: &'a [u8],
    at: usize,
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

    /// The range of the value at `path` inside the value at the cursor, if it is there.
    fn seek(&mut self, path: &[Step]) -> Result<Option<Range<usize>>, Invalid> {
        let Some((step, rest)) = path.split_first() else {
            let start = self.at;
            self.skip()?;
            return Ok(Some(start..self.at));
        };
        let (open, close) = match (step, self.peek()) {
            (Step::Key(_), Some(b'{')) => (b'{', b'}'),
            (Step::Index(_), Some(b'[')) => (b'[', b']'),
            // A member of a non-object, an element of a non-array: nothing there.
            _ => return Ok(None),
        };
        self.eat(open)?;
        self.ws();
        if self.peek() == Some(close) {
            return Ok(None);
        }
        let mut index = 0;
        loop {
            self.ws();
            let here = match step {
                Step::Key(want) => {
                    let (key, escaped) = self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    let key = &self.bytes[key];
                    if escaped {
                        std::str::from_utf8(key).ok().and_then(unescape).is_some_and(|k| k == *want)
                    } else {
                        key == want.as_bytes()
                    }
                }
                Step::Index(want) => index == *want,
            };
            if here {
                return self.seek(rest);
            }
            self.skip()?;
            index += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(c) if c == close => return Ok(None),
                _ => return Err(Invalid),
            }
        }
    }

    /// Skips one value, looking inside it only as far as finding its end needs.
    fn skip(&mut self) -> Result<(), Invalid> {
        match self.peek().ok_or(Invalid)? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => self.container(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(Invalid),
        }
    }

    /// Skips an object or an array: brackets matched outside strings, iteratively (the kinds
    /// of the open ones are bits of a word: as deep as serde_json reads, 128 levels).
    fn container(&mut self) -> Result<(), Invalid> {
        let (mut depth, mut objects) = (0u32, 0u128);
        loop {
            let rest = &self.bytes[self.at..];
            let i = rest.iter().position(|&b| STRUCTURAL[usize::from(b)]).ok_or(Invalid)?;
            self.at += i;
            let b = self.bytes[self.at];
            match b {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => {
                    if depth == 128 {
                        return Err(Invalid);
                    }
                    objects = (objects << 1) | u128::from(b == b'{');
                    depth += 1;
                }
                _ => {
                    let object = objects & 1 == 1;
                    if depth == 0 || object != (b == b'}') {
                        return Err(Invalid);
                    }
                    objects >>= 1;
                    depth -= 1;
                }
            }
            self.at += 1;
            if depth == 0 {
                return Ok(());
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Invalid> {
        if !self.bytes[self.at..].starts_with(word) {
            return Err(Invalid);
        }
        self.at += word.len();
        Ok(())
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
    /// escapes (checked when the string is unescaped).
    fn string(&mut self) -> Result<(Range<usize>, bool), Invalid> {
        self.eat(b'"')?;
        let start = self.at;
        let mut escapes = false;
        loop {
            let i = memchr::memchr2(b'"', b'\\', &self.bytes[self.at..]).ok_or(Invalid)?;
            self.at += i;
            if self.bytes[self.at] == b'"' {
                let range = start..self.at;
                self.at += 1;
                return Ok((range, escapes));
            }
            // A backslash and the character it escapes.
            escapes = true;
            self.at += 2;
            if self.at > self.bytes.len() {
                return Err(Invalid);
            }
        }
    }
}

/// The bytes a container skip stops at: quotes and brackets.
const STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'}' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table
};

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
            r#"{"s":"a]}{[\"","a":{"b c":[[],{"d":"}"}]}}"#,
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
                    Some(serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                        got.map(|f| f.0.to_owned())
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
        // Nesting is skipped without recursion, as deep as serde_json reads.
        let deep = |n| format!("{{\"x\":{}1{},\"y\":2}}", "[".repeat(n), "]".repeat(n));
        assert_eq!(find(&deep(128), &parse("$.y").unwrap()).map(|f| f.0), Some("2"));
        assert_eq!(find(&deep(100_000), &parse("$.y").unwrap()), None);
    }

    /// As Trino's extractors: the first member of a name, and the value found even when the
    /// document is damaged after it.
    #[test]
    fn first_match_as_trino() {
        let doc = r#" { "a" : [ 1 , "x y" , { "b" : null } ] } "#;
        assert_eq!(find(doc, &path(&["a"])).unwrap().compact(), r#"[1,"x y",{"b":null}]"#);
        assert_eq!(find(r#"{"a":1,"a":2}"#, &path(&["a"])).unwrap().0, "1");
        assert_eq!(find(r#"{"a":{"b":1},"a":{"c":2}}"#, &path(&["a", "b"])).unwrap().0, "1");
        for doc in [r#"{"a":1"#, r#"{"a":1}}"#, r#"{"a":1,}"#, r#"{"a":1} trailing"#] {
            assert_eq!(find(doc, &path(&["a"])).map(|f| f.0), Some("1"), "{doc}");
        }
    }

    #[test]
    fn damage_before_or_in_the_value_finds_nothing() {
        for doc in [
            r#"{"a":tru}"#,
            r#"{"a":"x"#,
            r#"{"a":-}"#,
            r#"{"b":[1,2,},"a":1}"#,
            r#"{"b" 1,"a":1}"#,
            r#"{"b":"x,"a":1}"#,
            r#"{"a":[1,}"#,
            "",
        ] {
            let found = find(doc, &path(&["a"]));
            assert_eq!(found.map(|f| f.0), None, "{doc}");
        }
        assert_eq!(find(r#"{"a":"\q"}"#, &path(&["a"])).and_then(Found::scalar), None);
    }
}
