//! URL functions: the parts of a URL (`url_extract_host`, ...) and form encoding. A string that
//! is not a URL gives NULL, as in Trino; a path without a scheme (`/a?b=c`) still has a path,
//! a query and parameters.

use std::sync::Arc;

use arrow::array::Int64Builder;
use url::Url;

use super::{Arg, Fun, int, map_text, text, utf8};

const URL: &[(&str, Arg)] = &[("url", Arg::Text)];

/// A URL part given as text.
macro_rules! part {
    ($name:literal, $f:expr) => {
        Fun::new($name, URL, text, |a, _| map_text(&a[0], |u| Ok(parse(u).as_ref().and_then($f))))
    };
}

pub(super) fn all() -> Vec<Fun> {
    vec![
        part!("url_extract_protocol", |(u, relative)| (!relative).then(|| u.scheme().to_owned())),
        part!("url_extract_host", |(u, relative)| (!relative)
            .then(|| u.host_str().map(str::to_owned))
            .flatten()),
        part!("url_extract_path", |(u, _)| Some(u.path().to_owned())),
        part!("url_extract_query", |(u, _)| u.query().map(str::to_owned)),
        part!("url_extract_fragment", |(u, _)| u.fragment().map(str::to_owned)),
        Fun::new("url_extract_port", URL, int, |a, _| {
            let mut b = Int64Builder::new();
            for u in utf8(&a[0])?.iter() {
                let port = u.and_then(parse).filter(|(_, relative)| !relative);
                b.append_option(port.and_then(|(u, _)| u.port()).map(i64::from));
            }
            Ok(Arc::new(b.finish()))
        }),
        Fun::new("url_extract_parameter", &[("url", Arg::Text), ("name", Arg::Text)], text, |a, _| {
            let names = utf8(&a[1])?;
            let mut b = arrow::array::StringBuilder::new();
            for (u, name) in utf8(&a[0])?.iter().zip(names.iter()) {
                let (Some((u, _)), Some(name)) = (u.and_then(parse), name) else {
                    b.append_null();
                    continue;
                };
                b.append_option(u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()));
            }
            Ok(Arc::new(b.finish()))
        }),
        Fun::new("url_encode", &[("value", Arg::Text)], text, |a, _| {
            map_text(&a[0], |v| Ok(Some(url::form_urlencoded::byte_serialize(v.as_bytes()).collect())))
        }),
        Fun::new("url_decode", &[("value", Arg::Text)], text, |a, _| {
            map_text(&a[0], |v| {
                let decoded: String = url::form_urlencoded::parse(format!("x={v}").as_bytes())
                    .map(|(_, v)| v.into_owned())
                    .collect();
                Ok(Some(decoded))
            })
        }),
    ]
}

/// The URL, and whether it was relative (read against a placeholder base, whose scheme and
/// host are not the URL's).
fn parse(text: &str) -> Option<(Url, bool)> {
    match Url::parse(text) {
        Ok(u) => Some((u, false)),
        Err(url::ParseError::RelativeUrlWithoutBase) if text.starts_with('/') => {
            let base = Url::parse("relative:///").ok()?;
            base.join(text).ok().map(|u| (u, true))
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{context, value};

    #[tokio::test]
    async fn url_functions() {
        let ctx = context();
        let u = "'https://example.com:8443/a/b.json?x=1&y=two%20words#frag'";
        for (call, want) in [
            ("url_extract_protocol(U)", "https"),
            ("url_extract_host(U)", "example.com"),
            ("url_extract_port(U)", "8443"),
            ("url_extract_path(U)", "/a/b.json"),
            ("url_extract_query(U)", "x=1&y=two%20words"),
            ("url_extract_fragment(U)", "frag"),
            ("url_extract_parameter(U, 'y')", "two words"),
            ("url_extract_parameter(U, 'z')", "NULL"),
            ("url_extract_port('https://example.com/')", "NULL"),
            ("url_extract_host('not a url')", "NULL"),
            ("url_extract_path('/bucket/key?versionId=3')", "/bucket/key"),
            ("url_extract_parameter('/bucket/key?versionId=3', 'versionId')", "3"),
            ("url_extract_host('/bucket/key')", "NULL"),
            ("url_encode('a b&c/d')", "a+b%26c%2Fd"),
            ("url_decode('a+b%26c%2Fd')", "a b&c/d"),
        ] {
            assert_eq!(value(&ctx, &format!("SELECT {}", call.replace('U', u))).await, want, "{call}");
        }
    }
}
