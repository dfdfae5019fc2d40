//! When an audit runs: `every 15m`, `hourly`, `daily at 06:00 [ZONE]`, a 5-field cron expression
//! with an optional time zone (`0 6 * * 1-5 Europe/Paris`), or `on-commit`.
//!
//! Cron expressions follow croner (POSIX/Vixie cron with `L`, `#` and `W`; day of month and day
//! of week are ORed; in a spring-forward gap a fixed-time job runs at the first valid minute
//! after it). `every N` runs at the multiples of N since the Unix epoch, so that its times do not
//! depend on when the daemon started.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// An audit's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// At every multiple of the period since the Unix epoch.
    Every(Duration),
    /// At the times of a cron expression, read in a time zone.
    Cron {
        /// The expression as written.
        text: String,
        /// The expression, parsed.
        cron: Box<Cron>,
        /// The zone it is read in (UTC when none is written).
        zone: Tz,
    },
    /// After each commit to the store (`ingest --follow`, or `audit run` when the store has
    /// commits the audit has not seen).
    OnCommit,
}

impl Schedule {
    /// The last time the schedule fires at or before `now`; `None` for `on-commit`, or a cron
    /// expression that never fired.
    pub fn last_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => {
                let step = period.num_seconds().max(1);
                let secs = now.timestamp().div_euclid(step) * step;
                Utc.timestamp_opt(secs, 0).single()
            }
            Schedule::Cron { cron, zone, .. } => {
                let local = now.with_timezone(zone);
                cron.find_previous_occurrence(&local, true).ok().map(|t| t.with_timezone(&Utc))
            }
            Schedule::OnCommit => None,
        }
    }

    /// The first time the schedule fires after `now`; `None` for `on-commit`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(period) => {
                let step = period.num_seconds().max(1);
                let secs = (now.timestamp().div_euclid(step) + 1) * step;
                Utc.timestamp_opt(secs, 0).single()
            }
            Schedule::Cron { cron, zone, .. } => {
                let local = now.with_timezone(zone);
                cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
            }
            Schedule::OnCommit => None,
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Every(period) => write!(f, "every {}", format_duration(*period)),
            Schedule::Cron { text, .. } => f.write_str(text),
            Schedule::OnCommit => f.write_str("on-commit"),
        }
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["on-commit"] => Ok(Schedule::OnCommit),
            ["every", period] => {
                let period = parse_duration(period)?;
                if period < Duration::minutes(1) {
                    return Err(format!("'{text}': the shortest period is 1m"));
                }
                Ok(Schedule::Every(period))
            }
            ["hourly"] => cron(text, "0 * * * *", None),
            ["daily"] => cron(text, "0 0 * * *", None),
            ["daily", "at", time, zone @ ..] if zone.len() <= 1 => {
                let (h, m) = time
                    .split_once(':')
                    .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
                    .filter(|&(h, m)| h < 24 && m < 60 && time.len() == 5)
                    .ok_or_else(|| format!("'{text}': the time must be HH:MM, such as 06:00"))?;
                cron(text, &format!("{m} {h} * * *"), zone.first().copied())
            }
            _ if text.starts_with("cron(") => Err(format!(
                "'{text}' is an EventBridge cron() expression (6 fields, with a year); \
                 write a 5-field cron expression: minute hour day-of-month month day-of-week"
            )),
            [fields @ .., zone] if fields.len() == 5 => cron(text, &fields.join(" "), Some(zone)),
            fields if fields.len() == 5 => cron(text, &fields.join(" "), None),
            _ => Err(format!(
                "'{text}' is not a schedule: write `every 15m`, `hourly`, `daily at 06:00`, \
                 a 5-field cron expression with an optional time zone, or `on-commit`"
            )),
        }
    }
}

fn cron(text: &str, expression: &str, zone: Option<&str>) -> Result<Schedule, String> {
    let zone = match zone {
        None => Tz::UTC,
        Some(name) => name.parse::<Tz>().map_err(|_| format!("'{text}': unknown time zone '{name}'"))?,
    };
    let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
    let cron = parser.parse(expression).map_err(|e| format!("'{text}': {e}"))?;
    Ok(Schedule::Cron { text: text.to_owned(), cron: Box::new(cron), zone })
}

/// A duration written as a number and a unit: `30s`, `15m`, `24h`, `7d`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| format!("'{text}' is not a duration such as 15m, 24h or 7d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("'{text}' is not a duration such as 15m, 24h or 7d (units: s m h d w)")),
    };
    // Ten years and more is no window anyone means.
    if n == 0 || n > 10 * 366 * 86_400 / seconds {
        return Err(format!("'{text}' is out of range (more than 0, up to ten years)"));
    }
    Ok(Duration::seconds(n * seconds))
}

/// A duration as [`parse_duration`] reads it, in its largest whole unit.
pub fn format_duration(d: Duration) -> String {
    let s = d.num_seconds();
    for (unit, size) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s % size == 0 && s >= size {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn every_runs_at_multiples_of_its_period() {
        let s: Schedule = "every 15m".parse().unwrap();
        assert_eq!(s.last_at_or_before(at("2026-12-07T10:07:00Z")), Some(at("2026-12-07T10:00:00Z")));
        assert_eq!(s.last_at_or_before(at("2026-12-07T10:15:00Z")), Some(at("2026-12-07T10:15:00Z")));
        assert_eq!(s.next_after(at("2026-12-07T10:15:00Z")), Some(at("2026-12-07T10:30:00Z")));
        assert_eq!(s.to_string(), "every 15m");
        assert!("every 30s".parse::<Schedule>().unwrap_err().contains("1m"));
    }

    #[test]
    fn daily_and_cron_follow_their_zone() {
        let s: Schedule = "daily at 06:00 Europe/Paris".parse().unwrap();
        // Winter: Paris is UTC+1.
        assert_eq!(s.next_after(at("2026-12-07T04:00:00Z")), Some(at("2026-12-07T05:00:00Z")));
        assert_eq!(s.last_at_or_before(at("2026-12-07T04:00:00Z")), Some(at("2026-12-06T05:00:00Z")));
        let s: Schedule = "0 9 * * 1-5 America/New_York".parse().unwrap();
        // Saturday 2026-12-05 → Monday 2026-12-07 09:00 EST (UTC-5).
        assert_eq!(s.next_after(at("2026-12-05T12:00:00Z")), Some(at("2026-12-07T14:00:00Z")));
        let s: Schedule = "hourly".parse().unwrap();
        assert_eq!(s.next_after(at("2026-12-07T10:00:00Z")), Some(at("2026-12-07T11:00:00Z")));
        // Spring forward in Paris (2027-03-28, 02:00 → 03:00): a 02:30 job runs at 03:00 local.
        let s: Schedule = "30 2 * * * Europe/Paris".parse().unwrap();
        assert_eq!(s.next_after(at("2027-03-28T00:00:00Z")), Some(at("2027-03-28T01:00:00Z")));
    }

    #[test]
    fn schedules_that_are_wrong_say_why() {
        let e = "cron(0 12 * * ? *)".parse::<Schedule>().unwrap_err();
        assert!(e.contains("EventBridge"), "{e}");
        let e = "0 6 * * * Mars/Olympus".parse::<Schedule>().unwrap_err();
        assert!(e.contains("unknown time zone 'Mars/Olympus'"), "{e}");
        let e = "daily at 6".parse::<Schedule>().unwrap_err();
        assert!(e.contains("HH:MM"), "{e}");
        let e = "61 * * * *".parse::<Schedule>().unwrap_err();
        assert!(e.contains("61"), "{e}");
        assert!("weekly".parse::<Schedule>().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::hours(24));
        assert_eq!(format_duration(Duration::hours(24)), "1d");
        assert_eq!(format_duration(Duration::minutes(90)), "90m");
        assert!(parse_duration("0m").is_err());
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("99999999999d").is_err());
    }
}
