//! Running audits: which are due, over which window, and the record of each run and finding.
//!
//! Each (audit, store) pair has two watermarks in the audit log, as Delta `txn` versions:
//! `version:<pack>/<audit>@<store id>`, the store version its last run read up to, and
//! `slot:<...>`, the scheduled time (Unix seconds) of that run. A `new-events` run reads the
//! files that the store's commits after the first added as new events; a `lookback` run reads
//! the events whose eventTime is in the period before its scheduled time. All runs of one call
//! commit together with their findings and new watermarks, so a call killed before its commit
//! is redone with the same windows, and one killed after it is not redone at all. Finding ids
//! are a hash of the audit, the store and the event (or the row), so a redone run names its
//! findings as the first did.

use std::collections::HashMap;

use arrow::array::RecordBatch;
use chrono::{DateTime, Duration, Utc};
use object_store::ObjectStoreExt;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use trawl_store::records::{AuditLog, audit_log_schema};
use trawl_store::{Clock, EventDataStore, Snapshot, StoreConfig};

use crate::alert::{Delivery, Retry, Sink};
use crate::pack::{Audit, Fires, Pack, Window};
use crate::schedule::Schedule;
use crate::{Error, Result};

/// What [`run`] runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run every audit now, each over its own window, whatever its schedule.
    pub once: bool,
    /// Only these stores (names or ids); empty: every enabled store.
    pub stores: Vec<String>,
    /// A first `new-events` run reads only the events from this time on.
    pub since: Option<DateTime<Utc>>,
    /// Who runs, and where: recorded with each run.
    pub user: String,
    /// The host name.
    pub host: String,
    /// Where each run's result is written, if anywhere.
    pub out: Option<ResultsOut>,
    /// Sinks every audit's alerts go to, beside its pack's.
    pub sinks: Vec<Sink>,
    /// How HTTP deliveries are retried.
    pub retry: Retry,
    /// Findings recorded per run at most (`None`: [`MAX_FINDINGS`]); the rows that fire past
    /// it are counted in the run's record (a first run over years of events should not hold
    /// millions of findings in memory, nor page anyone a million times), and are in the
    /// result file of `out`.
    pub max_findings: Option<usize>,
    /// Where each run's result is delivered signed, as `query --deliver` does (gzipped CSV and
    /// `result_sign.json` under `<location>/CloudTrail-Lake/Query/YYYY/MM/DD/<run id>/`).
    pub deliver: Option<Deliver>,
    /// Signs the integrity chain records of the audit log's commits.
    pub signer: Option<std::sync::Arc<trawl_store::chain::Signer>>,
}

/// A location for signed results, and the key that signs them.
#[derive(Debug, Clone)]
pub struct Deliver {
    /// A local directory or `s3://bucket/prefix`.
    pub location: String,
    /// The lake owner's key.
    pub signer: std::sync::Arc<trawl_store::chain::Signer>,
}

/// Findings recorded per run by default.
pub const MAX_FINDINGS: usize = 10_000;

/// Where and how runs' results are written: `<location>/<pack>/<audit>/<store>/<run id>.<ext>`.
#[derive(Debug, Clone)]
pub struct ResultsOut {
    /// A local directory or `s3://bucket/prefix`.
    pub location: String,
    /// The files' format.
    pub format: ResultFormat,
}

/// The format of result files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// A header line, then a line per row; nested values as JSON text.
    Csv,
    /// A JSON object per row, nulls written.
    Ndjson,
    /// Parquet, zstd.
    Parquet,
}

impl ResultFormat {
    fn extension(self) -> &'static str {
        match self {
            ResultFormat::Csv => "csv",
            ResultFormat::Ndjson => "ndjson",
            ResultFormat::Parquet => "parquet",
        }
    }
}

/// What a call of [`run`] did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// The runs, in the order of the packs, their audits and the stores.
    pub runs: Vec<AuditRun>,
    /// The audit log version that recorded them (`None` when nothing was due).
    pub version: Option<u64>,
    /// The alerts tried: this call's and those left in the outbox by earlier ones.
    pub deliveries: Vec<Delivery>,
    /// Alerts in the outbox for sinks this call does not have (a pack's sink since removed, an
    /// `--alert` not given again).
    pub waiting: Vec<(String, usize)>,
}

impl RunReport {
    /// Findings, suppressed or not, over all runs.
    pub fn findings(&self) -> usize {
        self.runs.iter().map(|r| r.findings.len()).sum()
    }

    /// The findings to tell someone about: not suppressed by `realert`, of audits above `info`
    /// (informational audits, reports, record their rows and alert nobody, as Sigma's
    /// `informational` level means).
    pub fn alerts(&self) -> impl Iterator<Item = (&AuditRun, &Finding)> {
        self.runs
            .iter()
            .filter(|r| r.audit.severity > crate::Severity::Info)
            .flat_map(|r| r.findings.iter().filter(|f| !f.suppressed).map(move |f| (r, f)))
    }

    /// Alerts tried and not delivered: they stay in the outbox.
    pub fn undelivered(&self) -> impl Iterator<Item = &Delivery> {
        self.deliveries.iter().filter(|d| !d.delivered)
    }

    /// Runs that failed.
    pub fn errors(&self) -> usize {
        self.runs.iter().filter(|r| matches!(r.outcome, Outcome::Error(_))).count()
    }
}

/// One run of one audit over one store.
#[derive(Debug, Clone)]
pub struct AuditRun {
    /// Unique to this run.
    pub run_id: String,
    /// The pack's name.
    pub pack: String,
    /// The audit.
    pub audit: Audit,
    /// The store's name.
    pub store: String,
    /// The store's id.
    pub store_id: String,
    /// When the run was due.
    pub scheduled: DateTime<Utc>,
    /// When it started and finished (wall clock).
    pub started: DateTime<Utc>,
    #[allow(missing_docs)]
    pub finished: DateTime<Utc>,
    /// The store versions read: after `from_version`, up to `to_version`.
    pub from_version: Option<u64>,
    #[allow(missing_docs)]
    pub to_version: Option<u64>,
    /// The eventTime range read (lookback windows, `--since`).
    pub from_time: Option<DateTime<Utc>>,
    #[allow(missing_docs)]
    pub to_time: Option<DateTime<Utc>>,
    /// Data files read.
    pub files: u64,
    /// Rows of the result.
    pub rows: u64,
    /// Events and bytes the query scanned.
    pub events_scanned: u64,
    #[allow(missing_docs)]
    pub bytes_scanned: u64,
    /// What came of it.
    pub outcome: Outcome,
    /// SHA-256 of the result file (with `out`), else of the result as NDJSON (one object per
    /// row, nulls written).
    pub result_sha256: Option<String>,
    /// The result file, relative to `out`'s location.
    pub result_file: Option<String>,
    /// The result's rows that fired (at most [`RunOptions::max_findings`]).
    pub findings: Vec<Finding>,
    /// Rows that fired past [`RunOptions::max_findings`]: counted, not recorded.
    pub unrecorded: u64,
    /// The result's batches, until its file is written (then dropped: a run holds no result
    /// once it is recorded).
    pub batches: Vec<RecordBatch>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing fired.
    Clean,
    /// Some rows fired.
    Findings,
    /// The query failed; the window is read again by the next run.
    Error(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Clean => "clean",
            Outcome::Findings => "findings",
            Outcome::Error(_) => "error",
        }
    }
}

/// One row that fired.
#[derive(Debug, Clone)]
pub struct Finding {
    /// A hash of the audit, the store and the event (or the row): the same for a run redone.
    pub finding_id: String,
    /// The event's id and time, when the result has `eventid` and `eventtime` columns.
    pub eventid: Option<String>,
    #[allow(missing_docs)]
    pub eventtime: Option<DateTime<Utc>>,
    /// The values of the audit's `dedup` columns, as a JSON array.
    pub dedup_key: Option<String>,
    /// A repeat of the key within `realert`: recorded, not alerted.
    pub suppressed: bool,
    /// The row.
    pub row: Map<String, Value>,
}

/// Runs the audits of `packs` that are due at `clock`'s time (all of them with
/// [`RunOptions::once`]) over the stores of the lake at `location`, and records them.
pub async fn run(
    location: &str,
    packs: &[Pack],
    options: &RunOptions,
    clock: &dyn Clock,
) -> Result<RunReport> {
    let mut lake = trawl_store::Lake::open(location)?;
    if let Some(signer) = &options.signer {
        lake = lake.with_signer(signer.clone());
    }
    let mut attempt = 0;
    loop {
        match run_once(&lake, location, packs, options, clock).await {
            // Another run committed first: its watermarks change what is due.
            Err(Error::Store(trawl_store::Error::Conflict { .. })) if attempt < 3 => attempt += 1,
            result => return result,
        }
    }
}

async fn run_once(
    lake: &trawl_store::Lake,
    location: &str,
    packs: &[Pack],
    options: &RunOptions,
    clock: &dyn Clock,
) -> Result<RunReport> {
    let mut log = AuditLog::open(lake).await?;
    let now = clock.now();
    let stores = stores(lake, &options.stores).await?;
    // The snapshots first, then the lake for SQL: it sees these versions or newer.
    let mut snapshots: Vec<(StoreConfig, EventDataStore, Snapshot)> = Vec::new();
    for config in stores {
        let eds = lake.store(&config.name).await?;
        let snapshot = eds.snapshot().await?;
        snapshots.push((config, eds, snapshot));
    }
    let mut sql = trawl_query::Lake::open(location).await?;
    let log_queries = lake.settings().await?.query_log;
    if log_queries {
        sql.record_queries(&options.user, &options.host, "audit");
    }
    let mut report = RunReport::default();
    let mut marks = Vec::new();
    for pack in packs {
        for audit in &pack.audits {
            for (config, eds, snapshot) in &snapshots {
                let app = format!("{}/{}@{}", pack.name, audit.id, config.id);
                let seen = log.watermark(&format!("version:{app}")).await?;
                let last_slot = log.watermark(&format!("slot:{app}")).await?;
                let version = snapshot.version().unwrap_or(0);
                let scheduled = if options.once {
                    now
                } else {
                    match due(&audit.schedule, now, last_slot, seen, version) {
                        Some(t) => t,
                        None => continue,
                    }
                };
                let target = Target { pack: &pack.name, audit, config, eds, snapshot };
                let mut run = run_audit(&sql, &target, seen, scheduled, options).await?;
                if let Some(out) = &options.out {
                    write_result(out, &mut run).await?;
                }
                if let Some(deliver) = &options.deliver {
                    deliver_result(deliver, &run).await?;
                }
                run.batches = Vec::new();
                if !matches!(run.outcome, Outcome::Error(_)) {
                    marks.push((format!("version:{app}"), i64::try_from(version).unwrap_or(i64::MAX)));
                    marks.push((format!("slot:{app}"), scheduled.timestamp()));
                }
                report.runs.push(run);
            }
        }
    }
    if !report.runs.is_empty() {
        let queued = queue(&sql, &report.runs, packs, options).await?;
        let batch = records(&report.runs, &queued, options, now)?;
        report.version = Some(log.append(&[batch], &marks).await?);
    }
    let sinks: Vec<&Sink> = packs.iter().flat_map(|p| &p.sinks).chain(&options.sinks).collect();
    if !sinks.is_empty() {
        (report.deliveries, report.waiting) =
            deliver_outbox(&sql, &mut log, &sinks, options.retry, clock).await?;
    }
    if log_queries {
        trawl_store::records::append_queries(lake, &sql.take_query_records()).await?;
    }
    Ok(report)
}

/// The alerts of `runs`: (run index, finding index, sink name), one per finding to tell and
/// sink that takes its severity; none twice for a finding already queued (a lookback window
/// that overlaps the one before finds its events again).
async fn queue(
    sql: &trawl_query::Lake,
    runs: &[AuditRun],
    packs: &[Pack],
    options: &RunOptions,
) -> Result<Vec<(usize, usize, String)>> {
    let mut queued = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        if run.audit.severity == crate::Severity::Info || run.findings.iter().all(|f| f.suppressed) {
            continue;
        }
        let pack = packs.iter().find(|p| p.name == run.pack);
        let own = pack.map(|p| p.sinks.as_slice()).unwrap_or_default().iter().filter(|s| {
            run.audit
                .sinks
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| s.name == format!("{}/{n}", run.pack)))
        });
        let sinks: Vec<&Sink> =
            own.chain(&options.sinks).filter(|s| run.audit.severity >= s.min_severity).collect();
        if sinks.is_empty() {
            continue;
        }
        let before = match run.audit.window {
            Window::Lookback(_) => alerted(sql, run).await?,
            Window::NewEvents => std::collections::HashSet::new(),
        };
        for (j, f) in run.findings.iter().enumerate().filter(|(_, f)| !f.suppressed) {
            for sink in &sinks {
                if !before.contains(&(f.finding_id.clone(), sink.name.clone())) {
                    queued.push((i, j, sink.name.clone()));
                }
            }
        }
    }
    Ok(queued)
}

/// The (finding, sink) pairs already queued for the audit of `run` over its store.
async fn alerted(
    sql: &trawl_query::Lake,
    run: &AuditRun,
) -> Result<std::collections::HashSet<(String, String)>> {
    let quote = |s: &str| s.replace('\'', "''");
    let text = format!(
        "SELECT DISTINCT finding_id, sink FROM trawl_audit_alerts WHERE pack = '{}' AND audit = '{}' AND store_id = '{}'",
        quote(&run.pack),
        quote(&run.audit.id),
        run.store_id
    );
    let (batches, _) = sql.collect(&text).await?;
    let rows = ndjson(&batches).map_err(|reason| Error::Results { audit: run.audit.id.clone(), reason })?;
    Ok(rows
        .into_iter()
        .filter_map(|(_, r)| {
            Some((r.get("finding_id")?.as_str()?.to_owned(), r.get("sink")?.as_str()?.to_owned()))
        })
        .collect())
}

/// The outbox: alerts queued and not delivered, oldest first, each as the JSON it is sent as
/// and the sink it waits for.
const OUTBOX: &str = "\
    WITH alerts AS (\
        SELECT finding_id, sink FROM trawl_audit_alerts GROUP BY finding_id, sink \
        HAVING NOT bool_or(state = 'delivered')), \
    findings AS (\
        SELECT *, row_number() OVER (PARTITION BY finding_id ORDER BY scheduled) AS n \
        FROM trawl_audit_findings) \
    SELECT f.finding_id, f.pack, f.audit, f.title, f.severity, f.mitre, f.author, f.link, f.store, \
        f.store_id, f.run_id, f.scheduled, f.eventid, f.eventtime, f.row, a.sink \
    FROM alerts a JOIN findings f ON f.finding_id = a.finding_id AND f.n = 1 \
    ORDER BY f.scheduled, f.eventtime, f.finding_id, a.sink";

/// Sends what waits in the outbox to `sinks` and records what came of it.
async fn deliver_outbox(
    sql: &trawl_query::Lake,
    log: &mut AuditLog,
    sinks: &[&Sink],
    retry: Retry,
    clock: &dyn Clock,
) -> Result<(Vec<Delivery>, Vec<(String, usize)>)> {
    let failed = |reason: String| Error::Results { audit: "(the alert outbox)".into(), reason };
    let (batches, _) = sql.collect(OUTBOX).await?;
    let mut by_sink: Vec<(&Sink, Vec<Value>)> = sinks.iter().map(|s| (*s, Vec::new())).collect();
    let mut waiting: Vec<(String, usize)> = Vec::new();
    for (_, mut alert) in ndjson(&batches).map_err(failed)? {
        let sink = alert.remove("sink").and_then(|s| s.as_str().map(str::to_owned)).unwrap_or_default();
        // The row as the object it is, not as text.
        if let Some(Value::String(row)) = alert.get("row")
            && let Ok(row) = serde_json::from_str::<Value>(row)
        {
            alert.insert("row".into(), row);
        }
        match by_sink.iter_mut().find(|(s, _)| s.name == sink) {
            Some((_, alerts)) => alerts.push(Value::Object(alert)),
            None => match waiting.iter_mut().find(|(s, _)| *s == sink) {
                Some((_, n)) => *n += 1,
                None => waiting.push((sink, 1)),
            },
        }
    }
    // A delivery is recorded under its finding's run, pack, audit and store.
    let mut shared: HashMap<String, Value> = HashMap::new();
    for alert in by_sink.iter().flat_map(|(_, a)| a) {
        let pick = ["run_id", "pack", "audit", "store", "store_id", "scheduled"]
            .map(|k| (k.to_owned(), alert[k].clone()));
        shared.insert(
            alert["finding_id"].as_str().unwrap_or_default().to_owned(),
            Value::Object(pick.into_iter().collect()),
        );
    }
    let mut deliveries = Vec::new();
    for (sink, alerts) in by_sink.iter().filter(|(_, a)| !a.is_empty()) {
        deliveries.extend(crate::alert::deliver(sink, alerts, retry).await);
    }
    let tried: Vec<&Delivery> = deliveries.iter().filter(|d| d.attempts > 0).collect();
    if !tried.is_empty() {
        let now = clock.now().to_rfc3339();
        let rows: Vec<Value> = tried
            .iter()
            .map(|d| {
                let mut row = shared.get(&d.finding_id).cloned().unwrap_or_else(|| json!({"run_id": ""}));
                extend(
                    &mut row,
                    json!({
                        "kind": "alert",
                        "finding_id": d.finding_id,
                        "sink": d.sink,
                        "state": if d.delivered { "delivered" } else { "failed" },
                        "attempts": d.attempts,
                        "error": d.error,
                        "attempted": now,
                    }),
                );
                row
            })
            .collect();
        log.append_rows(&record_batch(&rows)?).await?;
    }
    Ok((deliveries, waiting))
}

/// The enabled stores, or those named (an unknown name is an error).
async fn stores(lake: &trawl_store::Lake, names: &[String]) -> Result<Vec<StoreConfig>> {
    let (configs, _) = lake.listing().await?;
    let enabled: Vec<StoreConfig> =
        configs.into_iter().filter(|c| c.status == trawl_store::Status::Enabled).collect();
    if names.is_empty() {
        return Ok(enabled);
    }
    names
        .iter()
        .map(|n| {
            enabled
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(n) || c.id.to_string().eq_ignore_ascii_case(n))
                .cloned()
                .ok_or_else(|| Error::Store(lake.store_not_found(n)))
        })
        .collect()
}

/// When a run of `schedule` is due at `now`: the latest scheduled time not run yet; for
/// `on-commit`, now, when the store has commits the audit has not read.
fn due(
    schedule: &Schedule,
    now: DateTime<Utc>,
    last_slot: Option<i64>,
    seen: Option<i64>,
    version: u64,
) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::OnCommit => {
            let unseen = seen.is_none_or(|s| u64::try_from(s).map_or(true, |s| s < version));
            unseen.then_some(now)
        }
        schedule => schedule.last_at_or_before(now).filter(|t| last_slot.is_none_or(|l| t.timestamp() > l)),
    }
}

/// An audit and the store it reads.
struct Target<'a> {
    pack: &'a str,
    audit: &'a Audit,
    config: &'a StoreConfig,
    eds: &'a EventDataStore,
    snapshot: &'a Snapshot,
}

async fn run_audit(
    sql: &trawl_query::Lake,
    t: &Target<'_>,
    seen: Option<i64>,
    scheduled: DateTime<Utc>,
    options: &RunOptions,
) -> Result<AuditRun> {
    let started = Utc::now();
    let version = t.snapshot.version();
    let mut window = trawl_query::Window { store: t.config.name.clone(), ..Default::default() };
    let from_version = seen.and_then(|s| u64::try_from(s).ok());
    // The snapshot's files, never the SQL lake's own (it may have seen later commits, which
    // the watermark recorded for this run would then not cover).
    let files = match (t.audit.window, from_version) {
        (Window::NewEvents, Some(after)) => t.eds.added_between(t.snapshot, after).await,
        _ => t.snapshot.files(),
    };
    match t.audit.window {
        Window::NewEvents if from_version.is_none() => window.from = options.since,
        Window::NewEvents => {}
        Window::Lookback(period) => {
            window.from = Some(scheduled - period);
            window.to = Some(scheduled);
        }
    }
    let (files, failed) = match files {
        Ok(files) => (files, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    window.files = Some(files.clone());
    let mut run = AuditRun {
        run_id: run_id(t, scheduled, started),
        pack: t.pack.to_owned(),
        audit: t.audit.clone(),
        store: t.config.name.clone(),
        store_id: t.config.id.to_string(),
        scheduled,
        started,
        finished: started,
        from_version: if t.audit.window == Window::NewEvents { from_version } else { None },
        to_version: version,
        from_time: window.from,
        to_time: window.to,
        files: files.len() as u64,
        rows: 0,
        events_scanned: 0,
        bytes_scanned: 0,
        outcome: Outcome::Clean,
        result_sha256: None,
        result_file: None,
        findings: Vec::new(),
        unrecorded: 0,
        batches: Vec::new(),
    };
    if let Some(reason) = failed {
        run.outcome = Outcome::Error(reason);
        run.finished = Utc::now();
        return Ok(run);
    }
    // Nothing new: no query to run.
    if files.is_empty() {
        run.finished = Utc::now();
        return Ok(run);
    }
    let (start, end) = time_span(&window, &files);
    let text = fill_times(&t.audit.sql, start, end);
    let result = match sql.start_in(&text, &window).await {
        Ok(running) => running.collect().await,
        Err(e) => Err(e),
    };
    match result {
        Ok((batches, stats)) => {
            run.events_scanned = stats.events_scanned;
            run.bytes_scanned = stats.bytes_scanned;
            run.rows = batches.iter().map(|b| b.num_rows() as u64).sum();
            // The hash of the result as NDJSON, a batch at a time: never the whole text at once.
            let (sha256, counts) = tally(t.audit, &batches)
                .map_err(|reason| Error::Results { audit: t.audit.id.clone(), reason })?;
            run.result_sha256 = Some(sha256);
            let cap = options.max_findings.unwrap_or(MAX_FINDINGS);
            match findings(sql, t, &window, scheduled, &batches, &counts, cap).await {
                Ok((found, unrecorded)) => {
                    run.outcome = if found.is_empty() { Outcome::Clean } else { Outcome::Findings };
                    run.findings = found;
                    run.unrecorded = unrecorded;
                }
                Err(reason) => run.outcome = Outcome::Error(reason),
            }
            run.batches = batches;
        }
        Err(e) => run.outcome = Outcome::Error(e.to_string()),
    }
    run.finished = Utc::now();
    Ok(run)
}

/// Writes the result of a run that has rows, before it is recorded, so that the record holds
/// the file's name and SHA-256. A run redone after a crash writes its file again under its new
/// run id.
async fn write_result(out: &ResultsOut, run: &mut AuditRun) -> Result<()> {
    if run.rows == 0 {
        return Ok(());
    }
    // A lake's location is what the files go to: a directory or a bucket prefix.
    let target = trawl_store::Lake::create(&out.location)?;
    let bytes =
        encode(run, out.format).map_err(|reason| Error::Results { audit: run.audit.id.clone(), reason })?;
    let name =
        format!("{}/{}/{}/{}.{}", run.pack, run.audit.id, run.store, run.run_id, out.format.extension());
    let path = object_store::path::Path::from(name.as_str());
    let put = target.objects().put(&path, bytes.clone().into()).await;
    put.map_err(|e| Error::Store(trawl_store::Error::ObjectStore(e)))?;
    run.result_sha256 = Some(hex(&Sha256::digest(&bytes)));
    run.result_file = Some(name);
    Ok(())
}

/// Delivers the result of a run that has rows, signed, under its run id.
async fn deliver_result(deliver: &Deliver, run: &AuditRun) -> Result<()> {
    if run.rows == 0 {
        return Ok(());
    }
    let failed = |reason: String| Error::Results { audit: run.audit.id.clone(), reason };
    let csv = encode(run, ResultFormat::Csv).map_err(failed)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &csv).map_err(|e| failed(e.to_string()))?;
    let gz = gz.finish().map_err(|e| failed(e.to_string()))?;
    let mut delivery = trawl_store::signed::Delivery::new(&deliver.location, &run.run_id, run.started)?;
    delivery.put(gz).await?;
    delivery.finish(&run.run_id, run.finished, &deliver.signer).await?;
    Ok(())
}

/// A run's result as a file of `format`.
fn encode(run: &AuditRun, format: ResultFormat) -> std::result::Result<Vec<u8>, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match format {
        ResultFormat::Ndjson => {
            let mut buf = Vec::new();
            for b in &run.batches {
                buf.extend(ndjson_lines(b)?);
            }
            Ok(buf)
        }
        ResultFormat::Csv => {
            let mut buf = Vec::new();
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut buf);
            for b in &run.batches {
                w.write(&trawl_query::nested_as_json(b).map_err(|e| text(&e))?).map_err(|e| text(&e))?;
            }
            drop(w);
            Ok(buf)
        }
        ResultFormat::Parquet => {
            let Some(schema) = run.batches.first().map(RecordBatch::schema) else { return Ok(Vec::new()) };
            let props = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut buf = Vec::new();
            let mut w =
                parquet::arrow::ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(|e| text(&e))?;
            for b in &run.batches {
                w.write(b).map_err(|e| text(&e))?;
            }
            w.close().map_err(|e| text(&e))?;
            Ok(buf)
        }
    }
}

/// Unique to a run: the audit, the store, when it was due and when it started.
fn run_id(t: &Target<'_>, scheduled: DateTime<Utc>, started: DateTime<Utc>) -> String {
    let text = format!("{}/{}@{}\n{scheduled}\n{started}", t.pack, t.audit.id, t.config.id);
    hex(&Sha256::digest(text.as_bytes()))[..32].to_owned()
}

/// The eventTime span a run covers, for `$StartTime$` and `$EndTime$`: its window's bounds, or
/// the span of the files' events.
fn time_span(
    window: &trawl_query::Window,
    files: &[trawl_store::DataFile],
) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = files.iter().filter_map(|f| f.time_range.map(|r| r.0)).min();
    let last = files.iter().filter_map(|f| f.time_range.map(|r| r.1)).max();
    let start = window.from.or(first).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    // The end is exclusive: one second past the last event.
    let end = window.to.or(last.map(|t| t + Duration::seconds(1))).unwrap_or_else(Utc::now);
    (start, end)
}

/// Fills Lake dashboards' `$StartTime$`, `$EndTime$` and `$Period$` (a `date_trunc` unit
/// suited to the span), wherever they are: they are written inside quotes.
fn fill_times(sql: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let span = end - start;
    let period = if span <= Duration::hours(2) {
        "minute"
    } else if span <= Duration::days(7) {
        "hour"
    } else {
        "day"
    };
    let format = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    sql.replace("$StartTime$", &format(start)).replace("$EndTime$", &format(end)).replace("$Period$", period)
}

/// A result row: its JSON line, and the object.
type Row = (Vec<u8>, Map<String, Value>);

/// The rows of `batch` as JSON lines, each ending in a newline (nulls written, so every row has
/// every column): the text a result's SHA-256 and NDJSON file are of.
fn ndjson_lines(batch: &RecordBatch) -> std::result::Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    Ok(buf)
}

/// Each row of `batches` as a JSON line and as an object.
fn ndjson(batches: &[RecordBatch]) -> std::result::Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for batch in batches {
        for line in ndjson_lines(batch)?.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let row: Map<String, Value> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            rows.push((line.to_vec(), row));
        }
    }
    Ok(rows)
}

/// The rows that fire, with their ids and whether `realert` suppresses them.
/// The dedup key of a result row: its `dedup` columns' values as a JSON array (`None` without
/// `dedup` columns).
fn dedup_key(audit: &Audit, row: &Map<String, Value>) -> Option<String> {
    if audit.dedup.is_empty() {
        return None;
    }
    let values: Vec<Value> = audit.dedup.iter().map(|c| row.get(c).cloned().unwrap_or(Value::Null)).collect();
    Some(Value::from(values).to_string())
}

/// One pass over a result, a batch at a time as JSON lines: the SHA-256 of the result as NDJSON,
/// and its rows per dedup key (without `dedup` columns, all rows under `None`).
fn tally(
    audit: &Audit,
    batches: &[RecordBatch],
) -> std::result::Result<(String, HashMap<Option<String>, u64>), String> {
    let mut hash = Sha256::new();
    let mut counts: HashMap<Option<String>, u64> = HashMap::new();
    for batch in batches {
        let lines = ndjson_lines(batch)?;
        hash.update(&lines);
        if audit.dedup.is_empty() {
            *counts.entry(None).or_default() += batch.num_rows() as u64;
            continue;
        }
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let row: Map<String, Value> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
            *counts.entry(dedup_key(audit, &row)).or_default() += 1;
        }
    }
    Ok((hex(&hash.finalize()), counts))
}

/// The result is read a batch at a time as JSON (twice when rows count per dedup key), so a
/// large result is never held as JSON whole; past `cap` findings, rows that fire are counted.
async fn findings(
    sql: &trawl_query::Lake,
    t: &Target<'_>,
    window: &trawl_query::Window,
    scheduled: DateTime<Utc>,
    batches: &[RecordBatch],
    counts: &HashMap<Option<String>, u64>,
    cap: usize,
) -> std::result::Result<(Vec<Finding>, u64), String> {
    let audit = t.audit;
    let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
    if let Some(schema) = batches.first().map(RecordBatch::schema)
        && rows > 0
    {
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for c in &audit.dedup {
            if !columns.contains(&c.as_str()) {
                return Err(format!(
                    "dedup column '{c}' is not a column of the result ({})",
                    columns.join(", ")
                ));
            }
        }
    }
    let key = |row: &Map<String, Value>| dedup_key(audit, row);
    // The keys the same query finds in the period before the window, for `new-value`.
    let seen = match audit.fires {
        Fires::NewValue { within } | Fires::Flatline { within, .. } => {
            Some(earlier_keys(sql, t, window, within, &key).await?)
        }
        Fires::Rows { .. } => None,
    };
    let (mut found, unrecorded) = match (audit.fires, &seen) {
        (Fires::Flatline { below, .. }, Some(expected)) => {
            let mut found = flatlines(t, window, expected, counts, below);
            let over = found.len().saturating_sub(cap);
            found.truncate(cap);
            (found, over as u64)
        }
        _ => fired(t, window, batches, &seen, counts, &key, cap)?,
    };
    if let Some(realert) = audit.realert {
        let mut last = last_alerts(sql, t).await?;
        found.sort_by_key(|f| f.eventtime.unwrap_or(scheduled));
        for f in &mut found {
            let at = f.eventtime.unwrap_or(scheduled);
            let key = f.dedup_key.clone().unwrap_or_default();
            // Within the period either side: a late event (a backfill) repeats a key as much
            // as a new one does.
            match last.get(&key) {
                Some(prev) if (at - *prev).abs() < realert => f.suppressed = true,
                _ => {
                    last.insert(key, at);
                }
            }
        }
    }
    Ok((found, unrecorded))
}

/// The rows that fire under `rows >= N` or `new-value`, each a finding up to `cap`; and how
/// many more fired.
fn fired(
    t: &Target<'_>,
    window: &trawl_query::Window,
    batches: &[RecordBatch],
    seen: &Option<std::collections::HashSet<String>>,
    counts: &HashMap<Option<String>, u64>,
    key: &dyn Fn(&Map<String, Value>) -> Option<String>,
    cap: usize,
) -> std::result::Result<(Vec<Finding>, u64), String> {
    let audit = t.audit;
    let mut firsts: std::collections::HashSet<Option<String>> = std::collections::HashSet::new();
    let mut fires = |row: &Map<String, Value>| match (audit.fires, seen) {
        (Fires::Rows { at_least }, _) => counts.get(&key(row)).is_some_and(|n| *n >= at_least),
        (Fires::NewValue { .. }, Some(seen)) => {
            let k = key(row);
            !k.as_ref().is_some_and(|k| seen.contains(k)) && firsts.insert(k)
        }
        (Fires::NewValue { .. } | Fires::Flatline { .. }, _) => false,
    };
    // Rows alike (events without ids, alike in every column read) are told apart by their
    // rank among themselves: one finding per row, the same in a run redone.
    // Keyed by the line's hash: a large result's text is not kept.
    let mut alike: HashMap<[u8; 32], usize> = HashMap::new();
    let mut found = Vec::new();
    let mut unrecorded = 0u64;
    for batch in batches {
        for (line, row) in ndjson(std::slice::from_ref(batch))? {
            if !fires(&row) {
                continue;
            }
            let rank = alike.entry(Sha256::digest(&line).into()).or_default();
            *rank += 1;
            let rank = *rank;
            if found.len() >= cap {
                unrecorded += 1;
                continue;
            }
            let eventid = row.get("eventid").and_then(Value::as_str).map(str::to_owned);
            let eventtime =
                row.get("eventtime").and_then(Value::as_str).and_then(trawl_store::time::parse_timestamp);
            // A row of events (it has their id) is one finding whatever window shows it; a row
            // of an aggregate is one per window. The row, not the id alone: ids repeat across
            // accounts.
            let row_text = String::from_utf8_lossy(&line);
            let identity = match &eventid {
                Some(_) => format!("event row {row_text} #{rank}"),
                None => format!("row {row_text} #{rank} {:?} {:?}", window.from, window.to),
            };
            let text = format!("{}/{}\n{}\n{identity}", t.pack, audit.id, t.config.id);
            found.push(Finding {
                finding_id: hex(&Sha256::digest(text.as_bytes()))[..32].to_owned(),
                eventid,
                eventtime,
                dedup_key: key(&row),
                suppressed: false,
                row,
            });
        }
    }
    Ok((found, unrecorded))
}

/// A finding per expected key with fewer than `below` rows in the window: the key's columns
/// and `rows`, the count.
fn flatlines(
    t: &Target<'_>,
    window: &trawl_query::Window,
    expected: &std::collections::HashSet<String>,
    counts: &HashMap<Option<String>, u64>,
    below: u64,
) -> Vec<Finding> {
    let mut keys: Vec<&String> = expected.iter().collect();
    keys.sort();
    keys.into_iter()
        .filter_map(|k| {
            let n = counts.get(&Some(k.clone())).copied().unwrap_or(0);
            (n < below).then_some((k, n))
        })
        .map(|(k, n)| {
            let values: Vec<Value> = serde_json::from_str(k).unwrap_or_default();
            let mut row: Map<String, Value> = t.audit.dedup.iter().cloned().zip(values).collect();
            row.insert("rows".into(), json!(n));
            let text = format!(
                "{}/{}\n{}\nflatline {k} {:?} {:?}",
                t.pack, t.audit.id, t.config.id, window.from, window.to
            );
            Finding {
                finding_id: hex(&Sha256::digest(text.as_bytes()))[..32].to_owned(),
                eventid: None,
                eventtime: None,
                dedup_key: Some(k.clone()),
                suppressed: false,
                row,
            }
        })
        .collect()
}

/// The dedup keys of the audit's rows over the store's events of the `within` before the window
/// (before its first event, for `new-events`).
async fn earlier_keys(
    sql: &trawl_query::Lake,
    t: &Target<'_>,
    window: &trawl_query::Window,
    within: Duration,
    key: &dyn Fn(&Map<String, Value>) -> Option<String>,
) -> std::result::Result<std::collections::HashSet<String>, String> {
    let files = window.files.clone().unwrap_or_default();
    let (start, _) = time_span(window, &files);
    let before = trawl_query::Window {
        store: t.config.name.clone(),
        files: Some(t.snapshot.files().map_err(|e| e.to_string())?),
        from: Some(start - within),
        to: Some(start),
    };
    let text = fill_times(&t.audit.sql, start - within, start);
    let running = sql.start_in(&text, &before).await.map_err(|e| format!("reading the earlier keys: {e}"))?;
    let (batches, _) = running.collect().await.map_err(|e| format!("reading the earlier keys: {e}"))?;
    Ok(ndjson(&batches)?.iter().filter_map(|(_, row)| key(row)).collect())
}

/// When each dedup key of this audit and store last alerted, from the audit log.
async fn last_alerts(
    sql: &trawl_query::Lake,
    t: &Target<'_>,
) -> std::result::Result<HashMap<String, DateTime<Utc>>, String> {
    let quote = |s: &str| s.replace('\'', "''");
    let text = format!(
        "SELECT dedup_key, CAST(max(coalesce(eventtime, scheduled)) AS VARCHAR) AS t FROM trawl_audit_findings \
         WHERE pack = '{}' AND audit = '{}' AND store_id = '{}' AND NOT suppressed GROUP BY dedup_key",
        quote(t.pack),
        quote(&t.audit.id),
        t.config.id
    );
    let (batches, _) = sql.collect(&text).await.map_err(|e| format!("reading earlier findings: {e}"))?;
    let rows = ndjson(&batches)?;
    Ok(rows
        .into_iter()
        .filter_map(|(_, row)| {
            let key = row.get("dedup_key")?.as_str()?.to_owned();
            let t = trawl_store::time::parse_timestamp(row.get("t")?.as_str()?)?;
            Some((key, t))
        })
        .collect())
}

/// The audit log rows of `runs`: one per run, one per finding, one per alert `queued`.
fn records(
    runs: &[AuditRun],
    queued: &[(usize, usize, String)],
    options: &RunOptions,
    now: DateTime<Utc>,
) -> Result<RecordBatch> {
    let time = |t: Option<DateTime<Utc>>| t.map(|t| json!(t.to_rfc3339()));
    let mut rows: Vec<Value> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let shared = json!({
            "run_id": run.run_id,
            "pack": run.pack,
            "audit": run.audit.id,
            "store": run.store,
            "store_id": run.store_id,
            "scheduled": run.scheduled.to_rfc3339(),
        });
        let mut row = shared.clone();
        let error = match &run.outcome {
            Outcome::Error(e) => Some(e.clone()),
            _ => None,
        };
        extend(
            &mut row,
            json!({
                "kind": "run",
                "started": run.started.to_rfc3339(),
                "finished": run.finished.to_rfc3339(),
                "window": run.audit.window.to_string(),
                "from_version": run.from_version,
                "to_version": run.to_version,
                "from_time": time(run.from_time),
                "to_time": time(run.to_time),
                "files": run.files,
                "rows": run.rows,
                "findings": run.findings.len(),
                "unrecorded": run.unrecorded,
                "events_scanned": run.events_scanned,
                "bytes_scanned": run.bytes_scanned,
                "duration_ms": (run.finished - run.started).num_milliseconds(),
                "outcome": run.outcome.label(),
                "error": error,
                "result_sha256": run.result_sha256,
            "result_file": run.result_file,
                "user": options.user,
                "host": options.host,
            }),
        );
        rows.push(row);
        for f in &run.findings {
            let mut row = shared.clone();
            extend(
                &mut row,
                json!({
                    "kind": "finding",
                    "finding_id": f.finding_id,
                    "title": run.audit.title,
                    "severity": run.audit.severity.to_string(),
                    "mitre": run.audit.mitre,
                    "author": run.audit.author,
                    "link": run.audit.link,
                    "eventid": f.eventid,
                    "eventtime": time(f.eventtime),
                    "dedup_key": f.dedup_key,
                    "suppressed": f.suppressed,
                    "row": Value::Object(f.row.clone()).to_string(),
                }),
            );
            rows.push(row);
        }
        for (_, j, sink) in queued.iter().filter(|(r, _, _)| *r == i) {
            let mut row = shared.clone();
            extend(
                &mut row,
                json!({
                    "kind": "alert",
                    "finding_id": run.findings[*j].finding_id,
                    "sink": sink,
                    "state": "queued",
                    "attempts": 0,
                    "attempted": now.to_rfc3339(),
                }),
            );
            rows.push(row);
        }
    }
    record_batch(&rows)
}

/// Audit log rows as a batch of its schema.
fn record_batch(rows: &[Value]) -> Result<RecordBatch> {
    let mut decoder = arrow::json::ReaderBuilder::new(audit_log_schema())
        .with_batch_size(rows.len().max(1))
        .build_decoder()
        .map_err(|e| Error::Results { audit: String::new(), reason: e.to_string() })?;
    let failed = |e: arrow::error::ArrowError| Error::Results { audit: String::new(), reason: e.to_string() };
    decoder.serialize(rows).map_err(failed)?;
    Ok(decoder.flush().map_err(failed)?.unwrap_or_else(|| RecordBatch::new_empty(audit_log_schema())))
}

fn extend(row: &mut Value, more: Value) {
    if let (Value::Object(row), Value::Object(more)) = (row, more) {
        row.extend(more);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
