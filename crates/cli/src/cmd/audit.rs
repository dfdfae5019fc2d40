//! `trawl audit run|list|sql|history`: scheduled audits over the stores.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use trawl_audit::{Outcome, Pack, ResultFormat, ResultsOut, RunOptions};
use trawl_store::Clock;

use crate::args::{AuditCommand, AuditFormat, AuditRunArgs, OutFormat};
use crate::output::{self, Format, Sink};

/// Exit codes of `audit run`.
const FOUND: u8 = 1;
const FAILED: u8 = 2;

pub(crate) async fn run(location: &str, command: AuditCommand, clock: &dyn Clock) -> Result<ExitCode> {
    match command {
        AuditCommand::Run { run, once } => {
            let packs = load(&run.packs)?;
            let format = run.format;
            let options = options(once, run)?;
            let report = trawl_audit::run(location, &packs, &options, clock)
                .await
                .with_context(|| format!("cannot run the audits over the lake at {location}"))?;
            let alerts = print(&report, format)?;
            Ok(if report.errors() > 0 || report.undelivered().next().is_some() {
                ExitCode::from(FAILED)
            } else if alerts > 0 {
                ExitCode::from(FOUND)
            } else {
                ExitCode::SUCCESS
            })
        }
        AuditCommand::Daemon { run, poll } => {
            let packs = load(&run.packs)?;
            let format = run.format;
            let options = options(false, run)?;
            let poll = trawl_audit::schedule::parse_duration(&poll)
                .map_err(|e| anyhow::anyhow!("--poll: {e}"))?
                .to_std()
                .context("--poll")?;
            daemon(location, &packs, &options, clock, poll, format).await
        }
        AuditCommand::List { packs } => {
            let packs = load(&packs)?;
            output::to_stdout(|out| {
                writeln!(
                    out,
                    "{:<10} {:<40} {:<8} {:<28} {:<13} title",
                    "pack", "audit", "severity", "schedule", "window"
                )?;
                for pack in &packs {
                    for a in &pack.audits {
                        writeln!(
                            out,
                            "{:<10} {:<40} {:<8} {:<28} {:<13} {}",
                            pack.name,
                            a.id,
                            a.severity.to_string(),
                            a.schedule.to_string(),
                            a.window.to_string(),
                            a.title
                        )?;
                    }
                }
                Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Sql { audit, packs } => {
            let packs = load(&packs)?;
            let found = find(&packs, &audit)?;
            output::to_stdout(|out| Ok(writeln!(out, "{}", found.sql)?))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::History { audit, limit } => {
            let filter = match &audit {
                Some(id) => format!("WHERE audit = '{}'", id.replace('\'', "''")),
                None => String::new(),
            };
            let sql = format!(
                "SELECT started, pack, audit, store, window, from_version, to_version, rows, findings, outcome, \
                 duration_ms, error FROM trawl_audit_runs {filter} ORDER BY started DESC, audit LIMIT {limit}"
            );
            let lake = trawl_query::Lake::open(location)
                .await
                .with_context(|| format!("cannot open the lake at {location}"))?;
            let running = lake.start(&sql).await?;
            let batches = running.stream()?;
            let out = output::Stdout::new();
            let closed = out.closed();
            let sink = Sink::new(Format::Table, batches.schema(), out, None)?;
            output::ended(super::query::drain(batches, sink, "stdout").await, &closed)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Options with the sinks of `--alert` specs, run by this user on this host.
pub(super) fn run_options(alerts: &[String]) -> Result<RunOptions> {
    let sinks = alerts
        .iter()
        .map(|spec| spec.parse::<trawl_audit::Sink>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    Ok(RunOptions { user: super::user(), host: super::host(), sinks, ..RunOptions::default() })
}

fn options(once: bool, run: AuditRunArgs) -> Result<RunOptions> {
    let signer = super::verify::signer()?;
    let format = match run.out_format {
        OutFormat::Csv => ResultFormat::Csv,
        OutFormat::Ndjson => ResultFormat::Ndjson,
        OutFormat::Parquet => ResultFormat::Parquet,
    };
    Ok(RunOptions {
        once,
        stores: run.stores,
        since: run.since.as_deref().map(super::parse_time).transpose()?,
        out: run.out.map(|location| ResultsOut { location, format }),
        max_findings: Some(run.max_findings),
        deliver: match run.deliver {
            Some(location) => {
                Some(trawl_audit::Deliver { location, signer: super::verify::delivery_signer()? })
            }
            None => None,
        },
        signer,
        ..run_options(&run.alerts)?
    })
}

/// Prints the alerts of `report` to stdout, its errors and a summary to stderr; returns the
/// number of alerts.
pub(super) fn print(report: &trawl_audit::RunReport, format: AuditFormat) -> Result<usize> {
    output::to_stdout(|out| {
        for (run, f) in report.alerts() {
            match format {
                AuditFormat::Text => writeln!(
                    out,
                    "{:<8} {}/{} {} {} {}",
                    run.audit.severity.to_string(),
                    run.pack,
                    run.audit.id,
                    run.store,
                    f.eventtime.map_or_else(|| "-".into(), |t| t.to_rfc3339()),
                    serde_json::Value::Object(f.row.clone())
                )?,
                AuditFormat::Ndjson => {
                    let line = serde_json::json!({
                        "finding_id": f.finding_id,
                        "pack": run.pack,
                        "audit": run.audit.id,
                        "title": run.audit.title,
                        "severity": run.audit.severity.to_string(),
                        "mitre": run.audit.mitre,
                        "author": run.audit.author,
                        "link": run.audit.link,
                        "store": run.store,
                        "eventid": f.eventid,
                        "eventtime": f.eventtime.map(|t| t.to_rfc3339()),
                        "run_id": run.run_id,
                        "row": f.row,
                    });
                    writeln!(out, "{line}")?;
                }
            }
        }
        Ok(())
    })?;
    for run in &report.runs {
        if let Outcome::Error(e) = &run.outcome {
            note!("error: audit {}/{} over {}: {e}", run.pack, run.audit.id, run.store);
        }
        if run.unrecorded > 0 {
            note!(
                "warning: audit {}/{} over {}: {} more rows fired than the {} findings recorded (--max-findings)",
                run.pack,
                run.audit.id,
                run.store,
                run.unrecorded,
                run.findings.len()
            );
        }
    }
    let alerts = report.alerts().count();
    let count = |runs: &mut dyn Iterator<Item = &trawl_audit::AuditRun>, suppressed: bool| -> usize {
        runs.map(|r| r.findings.iter().filter(|f| f.suppressed == suppressed).count()).sum()
    };
    let suppressed = count(&mut report.runs.iter(), true);
    let informational =
        count(&mut report.runs.iter().filter(|r| r.audit.severity == trawl_audit::Severity::Info), false);
    note!(
        "{} runs, {} findings: {alerts} alerts, {suppressed} suppressed by realert, {informational} of \
         informational audits; {} errors",
        report.runs.len(),
        report.findings(),
        report.errors()
    );
    if !report.deliveries.is_empty() {
        let delivered = report.deliveries.iter().filter(|d| d.delivered).count();
        let mut failed: Vec<(&str, &str, usize)> = Vec::new();
        for d in report.undelivered() {
            let error = d.error.as_deref().unwrap_or_default();
            match failed
                .iter_mut()
                .find(|(s, e, _)| *s == d.sink && (*e == error || error.starts_with("not tried")))
            {
                Some((_, _, n)) => *n += 1,
                None => failed.push((&d.sink, error, 1)),
            }
        }
        note!("alerts: {delivered} delivered, {} left in the outbox", report.deliveries.len() - delivered);
        for (sink, error, n) in failed {
            note!("error: {n} alerts to {sink} not delivered: {error}");
        }
    }
    for (sink, n) in &report.waiting {
        note!("alerts: {n} wait in the outbox for {sink}, not a sink of this run");
    }
    Ok(alerts)
}

/// `audit daemon`: runs what is due, then sleeps until the next scheduled time (or `poll`, when an
/// audit runs on commit), until SIGINT or SIGTERM. A run that fails (the lake out of reach) is
/// reported and tried again at the next wake-up: nothing is lost, since what a run reads is
/// decided by the watermarks in the lake, not by the daemon's memory.
async fn daemon(
    location: &str,
    packs: &[Pack],
    options: &RunOptions,
    clock: &dyn Clock,
    poll: std::time::Duration,
    format: AuditFormat,
) -> Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let audits = packs.iter().flat_map(|p| &p.audits).count();
    note!("audit daemon: {audits} audits of {} packs over the lake at {location}", packs.len());
    loop {
        match trawl_audit::run(location, packs, options, clock).await {
            Ok(report) if report.runs.is_empty() => {}
            Ok(report) => {
                note!("{}:", clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                print(&report, format)?;
            }
            Err(e) => note!("error: {}", crate::describe(&anyhow::Error::from(e))),
        }
        let now = clock.now();
        let on_commit =
            packs.iter().flat_map(|p| &p.audits).any(|a| a.schedule == trawl_audit::Schedule::OnCommit);
        let next = packs.iter().flat_map(|p| &p.audits).filter_map(|a| a.schedule.next_after(now)).min();
        let mut wait = next.map_or(poll, |t| (t - now).to_std().unwrap_or_default());
        if on_commit {
            wait = wait.min(poll);
        }
        tokio::select! {
            () = tokio::time::sleep(wait.max(std::time::Duration::from_secs(1))) => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
        }
    }
    note!("audit daemon: stopped");
    Ok(ExitCode::SUCCESS)
}

/// The packs named: `builtin` (the bundled `sql-examples/`), `sigma` (the bundled SigmaHQ
/// CloudTrail rules), a TOML file or a directory. None named: the built-in pack. Sigma rules
/// that cannot be converted are named on stderr, with why.
pub(super) fn load(names: &[String]) -> Result<Vec<Pack>> {
    let bundled = |files: &[(&str, &str)]| -> Vec<(String, String)> {
        files.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned())).collect()
    };
    let builtin =
        || Pack::from_sql_files("builtin", bundled(crate::bundled::EXAMPLES)).context("the built-in pack");
    let names: Vec<&str> =
        if names.is_empty() { vec!["builtin"] } else { names.iter().map(String::as_str).collect() };
    let mut packs: Vec<Pack> = Vec::new();
    for name in names {
        let pack = match name {
            "builtin" => builtin()?,
            "sigma" => {
                let link = |file: &str| Some(format!("{}/{file}", trawl_audit::sigma::RULES_URL));
                Pack::from_sigma_files("sigma", bundled(crate::bundled::SIGMA), &link)?
            }
            path => Pack::load(Path::new(path))?,
        };
        for reason in &pack.refused {
            note!("pack {}: rule left out: {reason}", pack.name);
        }
        if packs.iter().any(|p| p.name == pack.name) {
            bail!("two packs are named '{}'; give one a `name` of its own", pack.name);
        }
        packs.push(pack);
    }
    Ok(packs)
}

/// The audit `id` (or `pack/id`) of `packs`.
fn find<'a>(packs: &'a [Pack], id: &str) -> Result<&'a trawl_audit::Audit> {
    let (pack, id) = match id.split_once('/') {
        Some((p, i)) => (Some(p), i),
        None => (None, id),
    };
    let audits = packs.iter().filter(|p| pack.is_none_or(|n| n == p.name)).flat_map(|p| &p.audits);
    if let Some(a) = audits.clone().find(|a| a.id == id) {
        return Ok(a);
    }
    let suggestion = trawl_query::closest(id, audits.map(|a| a.id.as_str()));
    Err(trawl_audit::Error::UnknownAudit { id: id.to_owned(), suggestion }.into())
}
