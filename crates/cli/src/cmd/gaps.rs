//! `trawl gaps`: is the record complete? Per account and region, the hours with no events (a
//! store) and no digest nor log file (a trail), digest chains that restart, log files a digest
//! lists that are gone, log files no digest lists, days a store holds only part of; a heat map of
//! account x day.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use trawl_ingest::digest::TrailInventory;

use crate::args::GapsArgs;

const HOUR_MICROS: i64 = 3_600_000_000;

/// Hours as whole hours since the epoch.
type Hour = i64;

fn hour_of(t: DateTime<Utc>) -> Hour {
    t.timestamp().div_euclid(3600)
}

fn time_of(hour: Hour) -> DateTime<Utc> {
    DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    series: Vec<Series>,
    chain_restarts: Vec<Restart>,
    listed_but_missing: Vec<Listed>,
    present_but_unlisted: Vec<String>,
    days_partly_ingested: Vec<PartDay>,
    unreadable_digests: Vec<(String, String)>,
}

/// One account and region: the hours that have something.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Series {
    account: String,
    region: String,
    hours: usize,
    covered: usize,
    missing: Vec<Span>,
    #[serde(skip)]
    covered_hours: BTreeSet<Hour>,
    #[serde(skip)]
    span: (Hour, Hour),
}

#[derive(Debug, Serialize)]
struct Span {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    hours: i64,
}

#[derive(Debug, Serialize)]
struct Restart {
    account: String,
    region: String,
    trail: String,
    at: DateTime<Utc>,
    digest: String,
}

#[derive(Debug, Serialize)]
struct Listed {
    digest: String,
    log: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PartDay {
    day: NaiveDate,
    log_files: usize,
    ingested: usize,
}

impl Report {
    fn findings(&self) -> usize {
        self.series.iter().map(|s| s.missing.len()).sum::<usize>()
            + self.chain_restarts.len()
            + self.listed_but_missing.len()
            + self.present_but_unlisted.len()
            + self.days_partly_ingested.len()
            + self.unreadable_digests.len()
    }
}

pub(crate) async fn run(location: &str, args: GapsArgs) -> Result<ExitCode> {
    if args.store.is_none() && args.trail.is_none() {
        bail!("gaps needs --store NAME, --trail SOURCE, or both");
    }
    let start = args.start.as_deref().map(super::parse_time).transpose()?;
    let end = args.end.as_deref().map(super::parse_time).transpose()?;
    let mut covered: BTreeMap<(String, String), BTreeSet<Hour>> = BTreeMap::new();
    let mut report = Report {
        start,
        end,
        series: Vec::new(),
        chain_restarts: Vec::new(),
        listed_but_missing: Vec::new(),
        present_but_unlisted: Vec::new(),
        days_partly_ingested: Vec::new(),
        unreadable_digests: Vec::new(),
    };
    if let Some(store) = &args.store {
        store_hours(location, store, start, end, &mut covered).await?;
    }
    let inventory = match &args.trail {
        Some(trail) => Some(
            trawl_ingest::digest::inventory(trail)
                .await
                .with_context(|| format!("cannot read the trail at {trail}"))?,
        ),
        None => None,
    };
    if let Some(inv) = &inventory {
        trail_findings(inv, start, end, &mut covered, &mut report);
    }
    if let (Some(store), Some(inv)) = (&args.store, &inventory) {
        report.days_partly_ingested = partly_ingested(location, store, inv, start, end).await?;
    }
    for ((account, region), hours) in covered {
        let (Some(&first), Some(&last)) = (hours.first(), hours.last()) else { continue };
        let span = (
            start.map_or(first, hour_of),
            end.map_or(last + 1, |e| hour_of(e - Duration::microseconds(1)) + 1),
        );
        let missing = missing_spans(&hours, span);
        report.series.push(Series {
            account,
            region,
            hours: usize::try_from(span.1 - span.0).unwrap_or(0),
            covered: hours.range(span.0..span.1).count(),
            missing,
            covered_hours: hours,
            span,
        });
    }
    let findings = report.findings();
    crate::output::to_stdout(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
            return Ok(());
        }
        text(out, &report, args.trail.is_some())
    })?;
    Ok(if findings > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The hours of each account and region that hold events of the store.
async fn store_hours(
    location: &str,
    store: &str,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    covered: &mut BTreeMap<(String, String), BTreeSet<Hour>>,
) -> Result<()> {
    let lake = trawl_query::Lake::open(location)
        .await
        .with_context(|| format!("cannot open the lake at {location}"))?;
    let mut filter = Vec::new();
    if let Some(s) = start {
        filter.push(format!("eventtime >= TIMESTAMP '{}'", s.format("%Y-%m-%d %H:%M:%S%.6f")));
    }
    if let Some(e) = end {
        filter.push(format!("eventtime < TIMESTAMP '{}'", e.format("%Y-%m-%d %H:%M:%S%.6f")));
    }
    let filter = if filter.is_empty() { String::new() } else { format!("WHERE {}", filter.join(" AND ")) };
    let sql = format!(
        "SELECT coalesce(recipientaccountid, '?'), coalesce(awsregion, '?'), date_trunc('hour', eventtime) \
         FROM \"{store}\" {filter} GROUP BY 1, 2, 3"
    );
    let (batches, _) = lake.collect(&sql).await?;
    for batch in batches {
        let (accounts, regions) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>());
        let hours = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        for row in 0..batch.num_rows() {
            if hours.is_valid(row) {
                covered
                    .entry((accounts.value(row).to_owned(), regions.value(row).to_owned()))
                    .or_default()
                    .insert(hours.value(row).div_euclid(HOUR_MICROS));
            }
        }
    }
    Ok(())
}

/// What a trail's layout says: hours with a digest or a log file, chains that restart, listed
/// log files that are gone, log files no digest lists.
fn trail_findings(
    inv: &TrailInventory,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    covered: &mut BTreeMap<(String, String), BTreeSet<Hour>>,
    report: &mut Report,
) {
    let inside = |t: DateTime<Utc>| start.is_none_or(|s| t >= s) && end.is_none_or(|e| t < e);
    let present: HashSet<&str> = inv.logs.iter().map(|l| l.key.as_str()).collect();
    let mut listed: HashSet<&str> = HashSet::new();
    let mut newest: BTreeMap<(&str, &str), DateTime<Utc>> = BTreeMap::new();
    let mut seen_trails: HashSet<(&str, &str, &str)> = HashSet::new();
    for d in &inv.digests {
        let hours = covered.entry((d.account.clone(), d.region.clone())).or_default();
        let mut hour = hour_of(d.start);
        while time_of(hour) < d.end {
            hours.insert(hour);
            hour += 1;
        }
        let latest = newest.entry((&d.account, &d.region)).or_insert(d.end);
        *latest = (*latest).max(d.end);
        // A chain's first digest is not a restart; a later one with no previous digest is.
        let first = seen_trails.insert((&d.account, &d.region, &d.trail));
        if d.starts_chain && !first && inside(d.start) {
            report.chain_restarts.push(Restart {
                account: d.account.clone(),
                region: d.region.clone(),
                trail: d.trail.clone(),
                at: d.start,
                digest: d.key.clone(),
            });
        }
        for log in &d.listed {
            listed.insert(log);
            if !present.contains(log.as_str()) && inside(d.start) {
                report.listed_but_missing.push(Listed { digest: d.key.clone(), log: log.clone() });
            }
        }
    }
    for log in &inv.logs {
        covered.entry((log.account.clone(), log.region.clone())).or_default().insert(hour_of(log.time));
        // A file delivered after the newest digest's hour is listed by a digest still to come.
        let digested =
            newest.get(&(log.account.as_str(), log.region.as_str())).is_some_and(|n| log.time < *n);
        if digested && !listed.contains(log.key.as_str()) && inside(log.time) {
            report.present_but_unlisted.push(log.key.clone());
        }
    }
    report.unreadable_digests.clone_from(&inv.unreadable);
}

/// Days of the trail whose log files the store's ledger holds some of, not all.
async fn partly_ingested(
    location: &str,
    store: &str,
    inv: &TrailInventory,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<Vec<PartDay>> {
    let lake =
        trawl_store::Lake::open(location).with_context(|| format!("cannot open the lake at {location}"))?;
    let eds = lake.store(store).await?;
    let snapshot = eds.snapshot().await?;
    let tail = |s: &str| trawl_ingest::trail_key(s).map(str::to_owned);
    let ingested: HashSet<String> =
        eds.ledger(&snapshot).await?.into_iter().filter_map(|s| tail(&s.location)).collect();
    let mut days: BTreeMap<NaiveDate, (usize, usize)> = BTreeMap::new();
    for log in &inv.logs {
        if start.is_some_and(|s| log.time < s) || end.is_some_and(|e| log.time >= e) {
            continue;
        }
        let day = days.entry(log.time.date_naive()).or_default();
        day.0 += 1;
        if tail(&log.key).is_some_and(|k| ingested.contains(&k)) {
            day.1 += 1;
        }
    }
    Ok(days
        .into_iter()
        .filter(|(_, (all, got))| *got > 0 && got < all)
        .map(|(day, (log_files, ingested))| PartDay { day, log_files, ingested })
        .collect())
}

/// The runs of hours of `span` that `hours` lacks.
fn missing_spans(hours: &BTreeSet<Hour>, span: (Hour, Hour)) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut run: Option<Hour> = None;
    for hour in span.0..=span.1 {
        let has = hour == span.1 || hours.contains(&hour);
        match (has, run) {
            (false, None) => run = Some(hour),
            (true, Some(from)) => {
                spans.push(Span { from: time_of(from), to: time_of(hour), hours: hour - from });
                run = None;
            }
            _ => {}
        }
    }
    spans
}

/// The report for a terminal: the heat map, then each finding.
fn text(out: &mut dyn Write, r: &Report, trail: bool) -> Result<()> {
    let (Some(first), Some(last)) =
        (r.series.iter().map(|s| s.span.0).min(), r.series.iter().map(|s| s.span.1).max())
    else {
        writeln!(out, "nothing found: no events, no log files, no digests")?;
        return Ok(());
    };
    let (first_day, last_day) = (time_of(first).date_naive(), time_of(last - 1).date_naive());
    let days = (last_day - first_day).num_days() + 1;
    let label = r.series.iter().map(|s| s.account.len() + s.region.len() + 1).max().unwrap_or(0);
    let room = crate::output::terminal_width().saturating_sub(label + 2).max(10) as i64;
    let per_cell = (days + room - 1) / room;
    writeln!(
        out,
        "Hours with {} by account and region, {first_day} to {last_day}{} (█ all, ▓ most, ▒ some, ░ few, · none):",
        if trail { "events, digests or log files" } else { "events" },
        if per_cell > 1 { format!(", {per_cell} days a column") } else { String::new() }
    )?;
    for s in &r.series {
        let mut line = String::new();
        let mut day = first_day;
        while day <= last_day {
            let from = hour_of(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()).max(s.span.0);
            let to = (hour_of(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()) + 24 * per_cell)
                .min(s.span.1);
            let all = (to - from).max(0);
            let got = if all > 0 { s.covered_hours.range(from..to).count() as i64 } else { 0 };
            line.push(match () {
                _ if all == 0 => ' ',
                _ if got == all => '█',
                _ if got * 4 >= all * 3 => '▓',
                _ if got * 4 >= all => '▒',
                _ if got > 0 => '░',
                _ => '·',
            });
            day += Duration::days(per_cell);
        }
        writeln!(out, "{:<label$}  {line}", format!("{} {}", s.account, s.region))?;
    }
    let stamp = |t: &DateTime<Utc>| t.format("%Y-%m-%dT%H:%MZ").to_string();
    let gaps: Vec<&Series> = r.series.iter().filter(|s| !s.missing.is_empty()).collect();
    if !gaps.is_empty() {
        writeln!(out, "\nHours with nothing:")?;
        for s in gaps {
            for m in &s.missing {
                writeln!(
                    out,
                    "  {} {}\t{} to {}\t{} h",
                    s.account,
                    s.region,
                    stamp(&m.from),
                    stamp(&m.to),
                    m.hours
                )?;
            }
        }
    }
    if !r.chain_restarts.is_empty() {
        writeln!(out, "\nDigest chains that restart (logging or validation was off before):")?;
        for c in &r.chain_restarts {
            writeln!(out, "  {} {} {}\tat {}\t{}", c.account, c.region, c.trail, stamp(&c.at), c.digest)?;
        }
    }
    for (title, items) in [
        (
            "Log files listed in digests but missing:",
            r.listed_but_missing
                .iter()
                .map(|l| format!("{}\t(listed in {})", l.log, l.digest))
                .collect::<Vec<_>>(),
        ),
        ("Log files present but listed in no digest:", r.present_but_unlisted.clone()),
        (
            "Digests that cannot be read:",
            r.unreadable_digests.iter().map(|(k, e)| format!("{k}\t{e}")).collect(),
        ),
        (
            "Days the store holds only part of:",
            r.days_partly_ingested
                .iter()
                .map(|d| format!("{}\t{} of {} log files ingested", d.day, d.ingested, d.log_files))
                .collect(),
        ),
    ] {
        if !items.is_empty() {
            writeln!(out, "\n{title}")?;
            for item in items {
                writeln!(out, "  {item}")?;
            }
        }
    }
    let findings = r.findings();
    writeln!(
        out,
        "\n{}",
        if findings == 0 { "complete: no gaps".to_owned() } else { format!("{findings} findings") }
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_hours_come_in_runs() {
        let hours: BTreeSet<Hour> = [10, 11, 14, 15, 17].into_iter().collect();
        let spans = missing_spans(&hours, (8, 19));
        let runs: Vec<(i64, i64)> = spans.iter().map(|s| (hour_of(s.from), s.hours)).collect();
        assert_eq!(runs, [(8, 2), (12, 2), (16, 1), (18, 1)]);
    }
}
