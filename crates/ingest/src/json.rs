//! Small JSON helpers on top of serde_json: borrowed object entries, scalar-to-string
//! conversion as CloudTrail Lake does it, and an exact minifier.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A string that borrows from the input when it has no escapes.
#[derive(Debug)]
pub(crate) struct CowStr<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The entries of a JSON object, in input order, values left unparsed.
#[derive(Debug, Default)]
pub(crate) struct Entries<'a>(pub(crate) Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                // An event has 15 to 25 keys; nested objects fewer.
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(24));
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    out.push((key.0, value));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Entries<'a> {
    /// Parses `raw` as an object; `None` when it is anything else.
    pub(crate) fn of(raw: &'a RawValue) -> Option<Self> {
        let text = raw.get();
        if !text.starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// The value of the first key equal to `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The string value of `key`, unescaped.
    pub(crate) fn str(&self, key: &str) -> Option<Cow<'a, str>> {
        self.get(key).and_then(as_str)
    }
}

/// The kind of a raw JSON value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Object,
    Array,
    Null,
    Bool,
    Number,
}

pub(crate) fn kind(raw: &RawValue) -> Kind {
    match raw.get().as_bytes().first() {
        Some(b'"') => Kind::String,
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'n') => Kind::Null,
        Some(b't' | b'f') => Kind::Bool,
        _ => Kind::Number,
    }
}

/// A JSON string's value, unescaped.
pub(crate) fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    if kind(raw) != Kind::String {
        return None;
    }
    // A raw value is valid JSON: without a backslash, the string is the text between the quotes.
    let text = raw.get();
    let inner = &text[1..text.len() - 1];
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<CowStr<'_>>(text).ok().map(|s| s.0)
}

/// A value as CloudTrail Lake stores it in a string column or map value: strings unescaped,
/// numbers and booleans as their JSON text, objects and arrays as compact JSON, null as null.
pub(crate) fn to_lake_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    match kind(raw) {
        Kind::Null => None,
        Kind::String => as_str(raw),
        Kind::Bool | Kind::Number => Some(Cow::Borrowed(raw.get())),
        Kind::Object | Kind::Array => Some(minify(raw.get())),
    }
}

/// Tracks whether a byte-by-byte walk over JSON text is inside a string literal.
#[derive(Debug, Default)]
pub(crate) struct StringState {
    in_string: bool,
    escaped: bool,
}

impl StringState {
    /// Feeds the next byte; true when it belongs to a string literal (quotes included).
    pub(crate) fn inside(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            true
        } else if b == b'"' {
            self.in_string = true;
            true
        } else {
            false
        }
    }
}

/// Removes insignificant whitespace from valid JSON text, keeping every other byte as it is
/// (key order, number spelling and string escapes all survive).
pub(crate) fn minify(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let blank = |b: u8| matches!(b, b' ' | b'\n' | b'\r' | b'\t');
    // Most events are compact already: nothing is copied until whitespace is found outside a
    // string, and strings are skipped a quote or backslash at a time.
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut kept) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => loop {
                match bytes.get(i + 1..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
                    Some(k) if bytes[i + 1 + k] == b'\\' => i += k + 2, // and the escaped byte
                    Some(k) => {
                        i += k + 2;
                        break;
                    }
                    None => {
                        i = bytes.len();
                        break;
                    }
                }
            },
            b if blank(b) => {
                out.get_or_insert_with(|| Vec::with_capacity(bytes.len())).extend_from_slice(&bytes[kept..i]);
                while i < bytes.len() && blank(bytes[i]) {
                    i += 1;
                }
                kept = i;
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.extend_from_slice(&bytes[kept..]);
            // Only ASCII whitespace outside strings was dropped, so the bytes remain UTF-8.
            Cow::Owned(String::from_utf8(out).expect("minify keeps UTF-8 intact"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minify_keeps_strings_and_order() {
        let text = "{ \"b\" : [1, 2.50 ,{\"x y\": \"a \\\" b\"}],\n\t\"a\": null }";
        assert_eq!(minify(text), "{\"b\":[1,2.50,{\"x y\":\"a \\\" b\"}],\"a\":null}");
        assert!(matches!(minify("{\"a\":1}"), Cow::Borrowed(_)));
        // An escaped backslash ends a string; whitespace at either end goes.
        assert_eq!(minify(r#" {"k" : "c:\\", "j\" :": [ ] } "#), r#"{"k":"c:\\","j\" :":[]}"#);
        assert!(matches!(minify(r#"{"a b":"\" c"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn lake_strings() {
        let v: Entries<'_> =
            serde_json::from_str(r#"{"s":"a\u00e9","n":1.50,"b":true,"z":null,"o":{ "k" : [1, 2] }}"#)
                .unwrap();
        let got: Vec<Option<String>> =
            v.0.iter().map(|(_, r)| to_lake_string(r).map(|c| c.into_owned())).collect();
        assert_eq!(
            got,
            vec![
                Some("aé".into()),
                Some("1.50".into()),
                Some("true".into()),
                None,
                Some("{\"k\":[1,2]}".into())
            ]
        );
    }
}
