//! Retention: which `eventdate` partitions have expired. Pure, so it is tested without I/O.

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The oldest `eventTime` a store with `retention_days` keeps at `now`.
pub fn cutoff(now: DateTime<Utc>, retention_days: u32) -> DateTime<Utc> {
    now - Duration::days(i64::from(retention_days))
}

/// Whether an event at `event_time` is within retention.
pub fn retained(event_time: DateTime<Utc>, now: DateTime<Utc>, retention_days: u32) -> bool {
    event_time >= cutoff(now, retention_days)
}

/// The partitions whose every possible event is older than the retention: the day ends at or
/// before the cutoff.
pub fn expired_partitions(
    partitions: impl IntoIterator<Item = NaiveDate>,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Vec<NaiveDate> {
    let cutoff = cutoff(now, retention_days);
    partitions
        .into_iter()
        .filter(|d| {
            let end = d.succ_opt().map(|n| n.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
            end.is_some_and(|end| end <= cutoff)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn whole_days_only() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let now = t("2026-01-10T12:00:00Z");
        // Cutoff 2026-01-03T12:00: 01-02 ends at 01-03T00:00 <= cutoff, 01-03 ends after it.
        let got =
            expired_partitions([d("2026-01-01"), d("2026-01-02"), d("2026-01-03"), d("2026-01-09")], now, 7);
        assert_eq!(got, vec![d("2026-01-01"), d("2026-01-02")]);
        assert!(retained(t("2026-01-03T12:00:00Z"), now, 7));
        assert!(!retained(t("2026-01-03T11:59:59Z"), now, 7));
    }
}
