//! Tolerant timestamp parsing for the shapes CloudTrail uses (eventTime, creationDate), and for
//! the time bounds users type.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// Parses RFC 3339 (`2024-01-02T03:04:05Z`, with fractions or offsets), the basic ISO form of
/// `sessionContext.attributes.creationDate` (`20131102T010628Z`), and the same with a space for
/// the `T` or stray spaces after colons, as some documentation samples have.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ") {
        return Some(t.and_utc());
    }
    let cleaned: String = s.replace(": ", ":").replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&cleaned) {
        return Some(t.to_utc());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(cleaned.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| Some(d.and_hms_opt(0, 0, 0)?.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let want = "2021-02-21T23:46:28Z";
        for s in [
            "2021-02-21T23:46:28Z",
            "2021-02-21T23:46:28.000Z",
            "2021-02-22T10:46:28+11:00",
            "20210221T234628Z",
            "2021-02-21T23: 46: 28Z",
            "2021-02-21 23:46:28",
        ] {
            assert_eq!(
                parse_timestamp(s).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).as_deref(),
                Some(want),
                "{s}"
            );
        }
        assert_eq!(parse_timestamp("ThisIsAWrongEventTime"), None);
        assert_eq!(parse_timestamp("2025-10-21TT00:52:27Z"), None);
    }
}
