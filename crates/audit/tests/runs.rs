//! Audit runs over a real lake of real CloudTrail events (`tests/fixtures`): every event is
//! audited once across runs and new commits, a run redone after a crash names the same
//! findings, schedules are due once per slot, lookback windows read their period.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use trawl_audit::{Finding, Pack, RunOptions, RunReport};
use trawl_store::{FixedClock, StoreConfig};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(dir)
}

struct Lake {
    dir: tempfile::TempDir,
}

impl Lake {
    async fn new(now: DateTime<Utc>) -> Lake {
        let dir = tempfile::tempdir().unwrap();
        let lake = trawl_store::Lake::create(dir.path().to_str().unwrap()).unwrap();
        let mut config = StoreConfig::new("audited", now).unwrap();
        config.retention_days = trawl_store::MAX_RETENTION_DAYS;
        lake.create_store(config).await.unwrap();
        Lake { dir }
    }

    fn root(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    async fn ingest(&self, fixture: &str, now: DateTime<Utc>) {
        let lake = trawl_store::Lake::open(self.root()).unwrap();
        let store = lake.store("audited").await.unwrap();
        let sources = [fixtures(fixture).display().to_string()];
        let options = trawl_ingest::IngestOptions::new(now);
        trawl_ingest::ingest(&store, &sources, &options, &trawl_ingest::NoProgress).await.unwrap();
    }

    async fn run(&self, pack: &Pack, once: bool, now: DateTime<Utc>) -> RunReport {
        let options = RunOptions { once, ..RunOptions::default() };
        trawl_audit::run(self.root(), std::slice::from_ref(pack), &options, &FixedClock(now)).await.unwrap()
    }

    async fn value(&self, sql: &str) -> String {
        let lake = trawl_query::Lake::open(self.root()).await.unwrap();
        let (batches, _) = lake.collect(sql).await.unwrap();
        let options = arrow::util::display::FormatOptions::default().with_null("NULL");
        arrow::util::display::ArrayFormatter::try_new(batches[0].column(0).as_ref(), &options)
            .unwrap()
            .value(0)
            .to_string()
    }
}

fn pack(audits: &str) -> Pack {
    Pack::from_toml(Path::new("test.toml"), audits).unwrap()
}

const EVERY_EVENT: &str = r#"
    [[audit]]
    id = "every-event"
    title = "Every event"
    sql = "SELECT eventid, eventtime, eventname FROM $EDS_ID"
"#;

fn ids(report: &RunReport) -> Vec<String> {
    report.runs.iter().flat_map(|r| r.findings.iter().map(|f| f.finding_id.clone())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_is_audited_once() {
    let now = at("2025-01-01T00:00:00Z");
    let lake = Lake::new(now).await;
    let pack = pack(EVERY_EVENT);
    lake.ingest("stratus-red-team-detonation-logs", now).await;
    let first_events: usize = lake.value("SELECT count(*) FROM audited").await.parse().unwrap();
    assert!(first_events > 30, "{first_events}");

    let first = lake.run(&pack, true, now).await;
    assert_eq!(first.runs.len(), 1);
    assert_eq!((first.findings(), first.alerts().count()), (first_events, first_events));
    let first_ids: HashSet<String> = ids(&first).into_iter().collect();
    assert_eq!(first_ids.len(), first_events, "one finding per event, each its own id");

    // Nothing committed since: nothing new to read.
    let again = lake.run(&pack, true, now).await;
    assert_eq!((again.findings(), again.runs[0].files), (0, 0));

    // New commits, of events older than the first ones (a backfill): read once, by the next run.
    lake.ingest("cloudtrail2sightings", now).await;
    let all_events: usize = lake.value("SELECT count(*) FROM audited").await.parse().unwrap();
    let second = lake.run(&pack, true, now).await;
    assert_eq!(second.findings(), all_events - first_events);
    let second_ids: HashSet<String> = ids(&second).into_iter().collect();
    assert!(first_ids.is_disjoint(&second_ids));

    // The audit log holds each finding once, and the runs.
    let recorded = lake.value("SELECT count(DISTINCT finding_id) FROM trawl_audit_findings").await;
    assert_eq!(recorded, all_events.to_string());
    assert_eq!(lake.value("SELECT count(*) FROM trawl_audit_findings").await, all_events.to_string());
    assert_eq!(lake.value("SELECT count(*) FROM trawl_audit_runs").await, "3");
    let windows = lake
        .value("SELECT string_agg(coalesce(CAST(from_version AS VARCHAR), '-') || '..' || CAST(to_version AS VARCHAR), ' ' ORDER BY started) FROM trawl_audit_runs")
        .await;
    let v1 = first.runs[0].to_version.unwrap();
    let v2 = second.runs[0].to_version.unwrap();
    assert_eq!(windows, format!("-..{v1} {v1}..{v1} {v1}..{v2}"));

    // A run whose commit never landed (the process killed before it) is redone over the same
    // events, and names the same findings.
    std::fs::remove_dir_all(lake.dir.path().join("_trawl/audits")).unwrap();
    let redone = lake.run(&pack, true, now).await;
    let redone_ids: HashSet<String> = ids(&redone).into_iter().collect();
    assert_eq!(redone_ids, &first_ids | &second_ids);
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_are_due_once_per_slot() {
    let now = at("2025-01-01T10:07:00Z");
    let lake = Lake::new(now).await;
    lake.ingest("stratus-red-team-detonation-logs", now).await;
    let pack = pack(&format!("{EVERY_EVENT}schedule = \"every 15m\"\n"));
    let due = |r: &RunReport| r.runs.iter().map(|r| r.scheduled.to_rfc3339()).collect::<Vec<_>>();
    let first = lake.run(&pack, false, now).await;
    assert_eq!(due(&first), ["2025-01-01T10:00:00+00:00"]);
    assert!(first.findings() > 0);
    // The same slot again: nothing due.
    assert!(lake.run(&pack, false, at("2025-01-01T10:14:59Z")).await.runs.is_empty());
    // Missed slots are one run: the window is every commit since, not a slot's share.
    let late = lake.run(&pack, false, at("2025-01-01T11:20:00Z")).await;
    assert_eq!(due(&late), ["2025-01-01T11:15:00+00:00"]);
    assert_eq!(late.findings(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn lookback_windows_read_their_period_and_realert_suppresses_repeats() {
    let now = at("2025-01-01T00:00:00Z");
    let lake = Lake::new(now).await;
    lake.ingest("stratus-red-team-detonation-logs", now).await;
    let pack = pack(
        r#"
        [[audit]]
        id = "day"
        title = "A day of events"
        sql = "SELECT eventsource, count(*) AS n FROM $EDS_ID WHERE eventtime >= '$StartTime$' GROUP BY eventsource"
        window = "lookback 24h"
        schedule = "daily at 06:00"

        [[audit]]
        id = "sources"
        title = "Events by source, once per source"
        sql = "SELECT eventid, eventtime, eventsource FROM $EDS_ID"
        dedup = ["eventsource"]
        realert = "3650d"
        "#,
    );
    let day_end = at("2024-08-01T06:00:00Z");
    let report = lake.run(&pack, false, at("2024-08-01T07:30:00Z")).await;
    let day = report.runs.iter().find(|r| r.audit.id == "day").unwrap();
    assert_eq!(day.scheduled, day_end);
    assert_eq!((day.from_time, day.to_time), (Some(at("2024-07-31T06:00:00Z")), Some(day_end)));
    let expected = lake
        .value(
            "SELECT count(DISTINCT eventsource) FROM audited \
             WHERE eventtime >= '2024-07-31T06:00:00Z' AND eventtime < '2024-08-01T06:00:00Z'",
        )
        .await;
    assert_eq!(day.rows.to_string(), expected);
    assert!(day.rows > 0);

    let sources = report.runs.iter().find(|r| r.audit.id == "sources").unwrap();
    let distinct = lake.value("SELECT count(DISTINCT eventsource) FROM audited").await;
    let alerted = sources.findings.iter().filter(|f| !f.suppressed).count();
    assert_eq!(alerted.to_string(), distinct);
    assert!(sources.findings.len() > alerted, "repeats are recorded, suppressed");
    // Across runs too: new events of a source already alerted are suppressed.
    lake.ingest("cloudtrail2sightings", now).await;
    let next = lake.run(&pack, true, now).await;
    let sources = next.runs.iter().find(|r| r.audit.id == "sources").unwrap();
    let seen: HashSet<&str> =
        report.runs.iter().flat_map(|r| &r.findings).filter_map(|f| f.row["eventsource"].as_str()).collect();
    let mut alerted: HashSet<&str> = seen;
    for f in &sources.findings {
        let source = f.row["eventsource"].as_str().unwrap();
        assert_eq!(f.suppressed, !alerted.insert(source), "{source}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_audit_is_recorded_and_read_again() {
    let now = at("2025-01-01T00:00:00Z");
    let lake = Lake::new(now).await;
    lake.ingest("stratus-red-team-detonation-logs", now).await;
    let broken = pack(
        r#"
        [[audit]]
        id = "broken"
        title = "A column that is not there"
        sql = "SELECT no_such_column FROM $EDS_ID"
        "#,
    );
    let report = lake.run(&broken, true, now).await;
    assert_eq!(report.errors(), 1);
    let outcome = lake.value("SELECT outcome || ': ' || error FROM trawl_audit_runs").await;
    assert!(outcome.starts_with("error: ") && outcome.contains("no_such_column"), "{outcome}");
    // Its window was not consumed: the next run reads every event again.
    let report = lake.run(&broken, true, now).await;
    assert_eq!(report.runs[0].from_version, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn results_are_written_and_their_hash_recorded() {
    let now = at("2025-01-01T00:00:00Z");
    let lake = Lake::new(now).await;
    lake.ingest("stratus-red-team-detonation-logs", now).await;
    let pack = pack(EVERY_EVENT);
    let out = tempfile::tempdir().unwrap();
    for (format, ext) in
        [(trawl_audit::ResultFormat::Parquet, "parquet"), (trawl_audit::ResultFormat::Csv, "csv")]
    {
        std::fs::remove_dir_all(lake.dir.path().join("_trawl")).ok();
        let options = RunOptions {
            once: true,
            out: Some(trawl_audit::ResultsOut { location: out.path().display().to_string(), format }),
            ..RunOptions::default()
        };
        let report = trawl_audit::run(lake.root(), std::slice::from_ref(&pack), &options, &FixedClock(now))
            .await
            .unwrap();
        let run = &report.runs[0];
        let file = run.result_file.clone().unwrap();
        assert!(file.starts_with("test/every-event/audited/") && file.ends_with(ext), "{file}");
        let bytes = std::fs::read(out.path().join(&file)).unwrap();
        let sha: String = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(run.result_sha256.as_deref(), Some(sha.as_str()));
        let rows = match ext {
            "csv" => String::from_utf8(bytes).unwrap().lines().count() - 1,
            _ => {
                let reader =
                    parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
                parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows() as usize
            }
        };
        assert_eq!(rows as u64, run.rows);
        let recorded = lake.value("SELECT result_file || ' ' || result_sha256 FROM trawl_audit_runs").await;
        assert_eq!(recorded, format!("{file} {sha}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_values_are_keys_not_found_in_the_period_before() {
    let lake = Lake::new(at("2025-01-01T00:00:00Z")).await;
    lake.ingest("stratus-red-team-detonation-logs", at("2025-01-01T00:00:00Z")).await;
    let pack = pack(
        r#"
        [[audit]]
        id = "new-source"
        title = "A service called for the first time in 30 days"
        sql = "SELECT eventid, eventtime, eventsource FROM $EDS_ID"
        window = "lookback 1h"
        fires = "new-value 30d"
        dedup = ["eventsource"]
        "#,
    );
    let report = lake.run(&pack, true, at("2024-08-02T09:00:00Z")).await;
    let found: Vec<&str> =
        report.runs[0].findings.iter().map(|f| f.row["eventsource"].as_str().unwrap()).collect();
    // The same question, asked in SQL.
    let expected = lake
        .value(
            "SELECT count(DISTINCT eventsource) FROM audited \
             WHERE eventtime >= '2024-08-02T08:00:00Z' AND eventtime < '2024-08-02T09:00:00Z' \
             AND eventsource NOT IN (SELECT eventsource FROM audited \
               WHERE eventtime >= '2024-07-03T08:00:00Z' AND eventtime < '2024-08-02T08:00:00Z')",
        )
        .await;
    let in_window = lake
        .value(
            "SELECT count(DISTINCT eventsource) FROM audited \
             WHERE eventtime >= '2024-08-02T08:00:00Z' AND eventtime < '2024-08-02T09:00:00Z'",
        )
        .await;
    assert_eq!(found.len().to_string(), expected, "{found:?}");
    assert_eq!(found.iter().collect::<HashSet<_>>().len(), found.len(), "one finding per new key");
    assert!(found.len() < in_window.parse().unwrap() && !found.is_empty(), "{found:?} of {in_window}");
    let e = Pack::from_toml(
        Path::new("p.toml"),
        "[[audit]]\nid = \"a\"\ntitle = \"t\"\nsql = \"SELECT 1 FROM $EDS_ID\"\nfires = \"new-value 7d\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs the key: give `dedup` columns"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn flatlines_are_keys_gone_silent() {
    let lake = Lake::new(at("2025-01-01T00:00:00Z")).await;
    lake.ingest("stratus-red-team-detonation-logs", at("2025-01-01T00:00:00Z")).await;
    let pack = pack(
        r#"
        [[audit]]
        id = "silent-source"
        title = "A service seen this week and not in the last hour"
        sql = "SELECT eventsource FROM $EDS_ID"
        window = "lookback 1h"
        fires = "flatline < 1 over 7d"
        dedup = ["eventsource"]
        realert = "2h"
        "#,
    );
    let report = lake.run(&pack, true, at("2024-08-02T10:00:00Z")).await;
    let mut silent: Vec<String> =
        report.runs[0].findings.iter().map(|f| f.row["eventsource"].as_str().unwrap().to_owned()).collect();
    silent.sort();
    assert!(report.runs[0].findings.iter().all(|f| f.row["rows"] == 0));
    let expected = lake
        .value(
            "SELECT coalesce(string_agg(DISTINCT eventsource, ',' ORDER BY eventsource), '') FROM audited \
             WHERE eventtime >= '2024-07-26T09:00:00Z' AND eventtime < '2024-08-02T09:00:00Z' \
             AND eventsource NOT IN (SELECT eventsource FROM audited \
               WHERE eventtime >= '2024-08-02T09:00:00Z' AND eventtime < '2024-08-02T10:00:00Z')",
        )
        .await;
    assert_eq!(silent.join(","), expected);
    assert!(!silent.is_empty());
    // An hour on, the sources still silent are repeats inside `realert`: recorded, not alerted.
    let later = lake.run(&pack, true, at("2024-08-02T11:00:00Z")).await;
    let again: Vec<&Finding> = later.runs[0]
        .findings
        .iter()
        .filter(|f| silent.iter().any(|s| f.row["eventsource"] == s.as_str()))
        .collect();
    assert!(!again.is_empty());
    assert!(again.iter().all(|f| f.suppressed));
    let e = Pack::from_toml(
        Path::new("p.toml"),
        "[[audit]]\nid = \"a\"\ntitle = \"t\"\nsql = \"SELECT 1 FROM $EDS_ID\"\ndedup = [\"x\"]\nfires = \"flatline < 5 over 7d\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("lookback PERIOD"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn findings_past_the_cap_are_counted_not_recorded() {
    let lake = Lake::new(at("2025-01-01T00:00:00Z")).await;
    lake.ingest("stratus-red-team-detonation-logs", at("2025-01-01T00:00:00Z")).await;
    let pack = pack(EVERY_EVENT);
    let options = RunOptions { once: true, max_findings: Some(5), ..RunOptions::default() };
    let clock = FixedClock(at("2025-01-01T00:00:00Z"));
    let report = trawl_audit::run(lake.root(), std::slice::from_ref(&pack), &options, &clock).await.unwrap();
    let run = &report.runs[0];
    assert_eq!(run.findings.len(), 5);
    assert_eq!(run.unrecorded, run.rows - 5);
    assert!(run.batches.is_empty(), "a recorded run holds no result");
    assert_eq!(run.findings.iter().filter_map(|f| f.eventid.as_deref()).collect::<HashSet<_>>().len(), 5);
    // Counted, and the window is done with: the next run has nothing new.
    assert_eq!(lake.run(&pack, true, at("2025-01-01T00:00:00Z")).await.findings(), 0);
    assert_eq!(
        lake.value(
            "SELECT findings || '+' || unrecorded || '=' || rows FROM trawl_audit_runs WHERE rows > 0"
        )
        .await,
        format!("5+{}={}", run.rows - 5, run.rows)
    );
}
