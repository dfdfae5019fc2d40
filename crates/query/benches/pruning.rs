//! Pruning, end to end through `Lake::collect`: a store of 120 day partitions, each holding
//! eight copies of the real Stratus Red Team events of the fixtures (2,480 events, with fresh
//! times and event ids), queried
//!
//! - over one day (`eventtime` bounds prune 119 of the 120 days before any file is opened),
//! - over all days (the same aggregation without pruning, the baseline),
//! - for a source IP that no file holds (bloom filters rule out every row group once opened),
//! - for one event name (the row filter decodes the other columns of matching rows only),
//! - for a request parameter (a map lookup: no Parquet predicate can evaluate it, so every
//!   projected column is decoded for every row).
//!
//! `cargo bench -p trawl-query --bench pruning`

use std::path::Path;

use arrow::array::AsArray;
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use trawl_query::{Lake, QueryStats};

const DAYS: i64 = 120;
const COPIES: usize = 8;

/// Writes one `{"Records":[...]}` file per day into `dir`, with [`COPIES`] of every fixture
/// event at fresh times of that day and fresh ids; returns the number of events written.
fn write_trail(dir: &Path, first: DateTime<Utc>) -> usize {
    let events = trawl_ingest::bench::stratus_events();
    let per_day = events.len() * COPIES;
    let step = 86_400 / per_day as i64;
    for day in 0..DAYS {
        let records: Vec<serde_json::Value> = (0..per_day)
            .map(|i| {
                let mut e = events[i % events.len()].clone();
                let time = first + Duration::days(day) + Duration::seconds(i as i64 * step);
                e["eventTime"] = time.format("%Y-%m-%dT%H:%M:%SZ").to_string().into();
                e["eventID"] = format!("{}-{day}-{i}", e["eventID"].as_str().unwrap()).into();
                e
            })
            .collect();
        let text = serde_json::to_string(&serde_json::json!({ "Records": records })).unwrap();
        std::fs::write(dir.join(format!("day-{day:03}.json")), text).unwrap();
    }
    per_day * DAYS as usize
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let trail = dir.path().join("trail");
    std::fs::create_dir_all(&trail).unwrap();
    let first = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let now = first + Duration::days(DAYS);
    let events = write_trail(&trail, first);
    let lake = rt.block_on(async {
        let store = trawl_store::Lake::open(root.to_str().unwrap())
            .unwrap()
            .create_store(trawl_store::StoreConfig::new("bench", now).unwrap())
            .await
            .unwrap();
        let sources = [trail.display().to_string()];
        let options = trawl_ingest::IngestOptions::new(now);
        let report =
            trawl_ingest::ingest(&store, &sources, &options, &trawl_ingest::NoProgress).await.unwrap();
        assert_eq!(report.events_stored as usize, events);
        Lake::open(root.to_str().unwrap()).await.unwrap()
    });
    let run = |sql: &str| -> QueryStats { rt.block_on(lake.collect(sql)).unwrap().1 };

    let day = "SELECT eventname, count(*) FROM bench WHERE eventtime >= '2025-03-01 00:00:00' \
               AND eventtime < '2025-03-02 00:00:00' GROUP BY eventname";
    let all = "SELECT eventname, count(*) FROM bench GROUP BY eventname";
    let ip = "SELECT eventtime, eventname FROM bench WHERE sourceipaddress = '203.0.113.254'";
    let name = "SELECT eventtime, sourceipaddress FROM bench WHERE eventname = 'StopLogging'";
    let param = "SELECT eventtime, eventname, sourceipaddress FROM bench \
                 WHERE element_at(requestparameters, 'name') = 'stratus-red-team-ct-stop-trail-buykxbqejv'";
    // What each query reads, so that the timings below are known to measure pruning.
    let stats = run(day);
    assert_eq!((stats.files_pruned, stats.files_scanned), (DAYS as u64 - 1, 1), "{stats:?}");
    assert_eq!(run(all).files_pruned, 0);
    let plan = rt.block_on(lake.collect(&format!("EXPLAIN ANALYZE {ip}"))).unwrap().0;
    let plan = arrow::compute::cast(plan[0].column(1), &arrow::datatypes::DataType::Utf8).unwrap();
    let plan = plan.as_string::<i32>().value(0);
    let bloom = plan.split("row_groups_pruned_bloom_filter=").nth(1).and_then(|m| m.split(',').next());
    assert!(bloom.is_some_and(|m| m.ends_with(" total → 0 matched") && !m.starts_with("0 ")), "{plan}");
    assert_eq!(run(name).events_matched, (DAYS as usize * COPIES) as u64);
    assert_eq!(run(param).events_matched, (DAYS as usize * COPIES) as u64);

    let mut group = c.benchmark_group("pruning");
    group.sample_size(20);
    for (id, sql) in [
        ("one-day-of-120", day),
        ("all-120-days", all),
        ("absent-source-ip", ip),
        ("event-name", name),
        ("request-parameter", param),
    ] {
        group.bench_function(id, |b| b.iter(|| run(sql)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
