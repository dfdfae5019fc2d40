//! `trawl ingest`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use trawl_ingest::{IngestOptions, IngestReport, ingest};
use trawl_store::trail::TrailFilter;
use trawl_store::{Clock, Lake, StoreConfig};

use super::parse_time;
use crate::args::IngestArgs;
use crate::progress::Bar;

/// Ingest finished but skipped bad input.
const EXIT_BAD_INPUT: u8 = 3;

pub(super) async fn run(
    lake: &Lake,
    location: &str,
    args: IngestArgs,
    clock: &dyn Clock,
) -> Result<ExitCode> {
    for source in args.sources.iter().filter(|s| !trawl_ingest::is_url(s)) {
        std::fs::metadata(source).with_context(|| format!("cannot read source {source}"))?;
    }
    let eds = open_store(lake, location, &args, clock).await?;
    let mut options = IngestOptions::new(clock.now());
    options.strict = args.strict;
    options.wave_bytes = args.commit_mib << 20;
    options.checkpoint_every = args.checkpoint_every;
    options.max_text_bytes = args.max_file_mib << 20;
    if let Some(t) = args.threads {
        options.threads = t;
    }
    options.scope = TrailFilter {
        start: args.start.as_deref().map(parse_time).transpose()?,
        end: args.end.as_deref().map(parse_time).transpose()?,
        accounts: args.accounts.clone(),
        regions: args.regions.clone(),
        concurrency: args.concurrency,
        ..Default::default()
    };
    let audits = OnCommit::new(location, &eds, &args.audits, &args.alerts)?;
    let Some(every) = args.follow else {
        let report = ingest_once(&eds, &args.sources, &mut options, &args).await?;
        if let Some(audits) = &audits {
            audits.run(&report, clock).await;
        }
        return Ok(exit_code(&report, args.strict));
    };
    // Live ingestion: each round lists again (from the newest day prefix seen, less a day, for
    // late deliveries) and takes only objects the ledger does not have.
    let mut clean = true;
    // Registered once, so an interrupt during a round is not lost: it ends the next wait.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let report = ingest_once(&eds, &args.sources, &mut options, &args).await?;
        if let Some(audits) = &audits {
            audits.run(&report, clock).await;
        }
        clean &= report.is_clean();
        if let Some(newest) = report.newest_prefix_day {
            options.scope.listed_from = Some(newest - chrono::Days::new(1));
        }
        tokio::select! {
            _ = &mut interrupted => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(every)) => {}
        }
        options.now = clock.now();
    }
    note!("stopped following");
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(EXIT_BAD_INPUT) })
}

/// The store to ingest into: an existing one, or (with `--create`) a new one with the settings
/// given. A name the lake does not have, without `--create`, is an error naming the closest.
async fn open_store(
    lake: &Lake,
    location: &str,
    args: &IngestArgs,
    clock: &dyn Clock,
) -> Result<trawl_store::EventDataStore> {
    let settings = &args.settings;
    let given = settings.retention_days.is_some()
        || settings.termination_protection.is_some()
        || settings.selectors.is_some()
        || settings.ingestion.is_some();
    match lake.store(&args.store).await {
        Ok(eds) => {
            if given {
                bail!(
                    "event data store {} exists: its settings are changed by `trawl store update`, not by ingest",
                    eds.config().name
                );
            }
            Ok(eds)
        }
        Err(trawl_store::Error::StoreNotFound { .. }) if args.create => {
            let mut config = StoreConfig::new(&args.store, clock.now())?;
            super::store::apply_settings(&mut config, settings.clone())?;
            match lake.create_store(config).await {
                Ok(eds) => {
                    note!(
                        "created event data store {} ({}), {} days of retention",
                        eds.config().name,
                        eds.config().id,
                        eds.config().retention_days
                    );
                    Ok(eds)
                }
                // Another ingest created it meanwhile: this one goes on into it.
                Err(trawl_store::Error::StoreExists(_)) => Ok(lake.store(&args.store).await?),
                Err(e) => Err(e.into()),
            }
        }
        Err(trawl_store::Error::StoreNotFound { .. }) => {
            let names: Vec<String> = lake.stores().await?.into_iter().map(|c| c.name).collect();
            let closest = trawl_query::closest(&args.store, names.iter().map(String::as_str));
            let hint = match (closest, names.is_empty()) {
                (Some(c), _) => format!("did you mean '{c}'? "),
                (None, false) => format!("it has {}; ", names.join(", ")),
                (None, true) => "it has none; ".to_owned(),
            };
            bail!(
                "no event data store '{}' in the lake at {location}: {hint}--create makes it (with --retention-days ...)",
                args.store
            )
        }
        Err(e) => Err(e.into()),
    }
}

/// The `on-commit` audits of `--audit` packs, run over the store after each round that stored
/// events. Their windows are the commits each has not read, as in `audit run`, so what the
/// round committed is audited once whatever ran before.
struct OnCommit {
    location: String,
    packs: Vec<trawl_audit::Pack>,
    options: trawl_audit::RunOptions,
}

impl OnCommit {
    fn new(
        location: &str,
        eds: &trawl_store::EventDataStore,
        packs: &[String],
        alerts: &[String],
    ) -> Result<Option<Self>> {
        if packs.is_empty() {
            return Ok(None);
        }
        let mut packs = super::audit::load(packs)?;
        for pack in &mut packs {
            let others = pack.audits.iter().filter(|a| a.schedule != trawl_audit::Schedule::OnCommit).count();
            if others > 0 {
                note!(
                    "pack {}: {others} audits not on-commit are left to `audit run` and `audit daemon`",
                    pack.name
                );
            }
            pack.audits.retain(|a| a.schedule == trawl_audit::Schedule::OnCommit);
        }
        let mut options = super::audit::run_options(alerts)?;
        options.stores = vec![eds.config().id.to_string()];
        Ok(Some(Self { location: location.to_owned(), packs, options }))
    }

    /// Runs them; a failure is reported and left for the next round (or `audit run`) to redo.
    async fn run(&self, report: &IngestReport, clock: &dyn Clock) {
        if report.events_stored == 0 {
            return;
        }
        match trawl_audit::run(&self.location, &self.packs, &self.options, clock).await {
            Ok(report) => {
                if let Err(e) = super::audit::print(&report, crate::args::AuditFormat::Text) {
                    note!("error: {}", crate::describe(&e));
                }
            }
            Err(e) => note!("error: on-commit audits: {}", crate::describe(&anyhow::Error::from(e))),
        }
    }
}

/// One ingest run with its progress bar, warnings and report.
async fn ingest_once(
    eds: &trawl_store::EventDataStore,
    sources: &[String],
    options: &mut IngestOptions,
    args: &IngestArgs,
) -> Result<IngestReport> {
    let strict = args.strict;
    if let Some(keys) = &args.public_keys
        && args.validate
    {
        options.validated = Some(std::sync::Arc::new(validated(sources, keys).await?));
    }
    let bar = Bar::new();
    let report = ingest(eds, sources, options, &bar).await;
    bar.finish();
    let report = report.with_context(|| format!("ingest into {} failed", eds.config().name))?;
    for problem in &report.problems {
        note!("warning: {problem}");
    }
    for (file, reason) in &report.rejected_files {
        note!("{}: {file}: {reason}", if strict { "error" } else { "warning" });
    }
    for file in &report.unvalidated {
        note!("warning: {file}: not stored: no valid digest lists it (`trawl validate-trail` says why)");
    }
    print_report(&eds.config().name, &report)?;
    Ok(report)
}

/// The log files of `sources` that CloudTrail's digests validate, each with its digest; every
/// digest or log file that is not valid is said on stderr.
async fn validated(
    sources: &[String],
    keys: &std::path::Path,
) -> Result<std::collections::HashMap<String, String>> {
    let keys = super::verify::cloudtrail_keys(keys)?;
    let mut valid = std::collections::HashMap::new();
    for source in sources {
        let report = trawl_ingest::digest::validate_trail(source, &keys)
            .await
            .with_context(|| format!("cannot validate the digests of {source}"))?;
        for v in report.verdicts.iter().filter(|v| v.result != "valid") {
            note!("warning: {}: {}", v.location, v.result);
        }
        valid.extend(report.valid_logs());
    }
    Ok(valid)
}

fn exit_code(report: &IngestReport, strict: bool) -> ExitCode {
    if strict && !report.rejected_files.is_empty() {
        ExitCode::from(1)
    } else if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    }
}

fn print_report(store: &str, r: &IngestReport) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    writeln!(out, "ingested into {store}")?;
    if r.prefixes_found > 0 || r.lists > 0 {
        writeln!(
            out,
            "  prefixes     {} found, {} completed, {} left out, {} LIST requests",
            r.prefixes_found,
            r.prefixes_completed,
            r.skipped_prefixes.len(),
            r.lists
        )?;
    }
    writeln!(
        out,
        "  files        {} found, {} already ingested, {} read, {} digest, {} rejected",
        r.files_found,
        r.files_already_ingested,
        r.files_read,
        r.digest_files,
        r.rejected_files.len()
    )?;
    writeln!(
        out,
        "  events       {} read, {} stored, {} duplicates",
        r.events_read, r.events_stored, r.duplicates
    )?;
    writeln!(
        out,
        "  left out     {} by selectors, {} by retention, {} outside --start/--end, {} insights events",
        r.filtered_by_selectors, r.filtered_by_retention, r.filtered_by_time, r.insight_events
    )?;
    writeln!(out, "  skipped      {} bad records ({} problems reported)", r.bad_records, r.problems.len())?;
    if !r.unvalidated.is_empty() {
        writeln!(
            out,
            "  unvalidated  {} log files not stored: no valid digest lists them",
            r.unvalidated.len()
        )?;
    }
    writeln!(
        out,
        "  bytes        {:.1} MiB read, {:.1} MiB JSON, {:.1} MiB Parquet written, {} commits",
        mib(r.bytes_read),
        mib(r.json_bytes),
        mib(r.bytes_written),
        r.commits
    )?;
    writeln!(out, "  elapsed      {:.2}s, {:.0} events/s", r.elapsed.as_secs_f64(), r.events_per_second())?;
    Ok(())
}
