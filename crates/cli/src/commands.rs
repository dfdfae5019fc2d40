//! The commands: each returns its exit code; errors bubble up to `main`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use trawl_ingest::{IngestOptions, IngestReport, export, ingest};
use trawl_store::selectors::AdvancedEventSelector;
use trawl_store::trail::TrailFilter;
use trawl_store::{Clock, FixedClock, Lake, Status, StoreConfig, SystemClock};

use crate::progress::Bar;
use crate::{Command, ExportArgs, IngestArgs, RetentionCommand, StoreCommand, StoreSettings};

/// Ingest finished but skipped bad input.
const EXIT_BAD_INPUT: u8 = 3;

/// The clock: `TRAWL_NOW` (RFC 3339) pins it, for tests and reproducible retention runs.
fn clock() -> Result<Arc<dyn Clock>> {
    match std::env::var("TRAWL_NOW") {
        Ok(s) => Ok(Arc::new(FixedClock(parse_time(&s).context("TRAWL_NOW")?))),
        Err(_) => Ok(Arc::new(SystemClock)),
    }
}

/// The clock deletions are judged by (retention, the end of pending deletion): `TRAWL_NOW` may
/// hold time back, to test or to reproduce a run, but never move it past the wall clock, so
/// nothing is deleted before it is due.
fn deletion_clock(clock: &dyn Clock) -> Arc<dyn Clock> {
    Arc::new(FixedClock(clock.now().min(Utc::now())))
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    trawl_store::time::parse_timestamp(s).with_context(|| {
        format!("'{s}' is not a time (use RFC 3339, e.g. 2024-01-31T00:00:00Z, or YYYY-MM-DD)")
    })
}

pub(crate) async fn run(location: &str, command: Command) -> Result<ExitCode> {
    let clock = clock()?;
    // Stores deleted seven days ago or more go for good, but only when a command writes anyway:
    // a command that reads never writes (nor fails on a lake it may only read, nor creates one).
    let writes = match &command {
        Command::Store(StoreCommand::List { .. } | StoreCommand::Show { .. }) => false,
        Command::Store(_) | Command::Ingest(_) => true,
        Command::Retention(RetentionCommand::Apply { dry_run, .. }) => !dry_run,
        Command::Export(_) | Command::Query(_) | Command::Demo => false,
    };
    let lake = if writes { Lake::create(location) } else { Lake::open(location) }
        .with_context(|| format!("cannot open the lake at {location}"))?;
    if writes {
        let purged = lake.purge_expired(deletion_clock(clock.as_ref()).as_ref()).await;
        for name in purged.context("cannot purge deleted stores")? {
            note!("removed event data store {name}: its seven days of pending deletion are over");
        }
    }
    match command {
        Command::Store(cmd) => store(&lake, cmd, clock.as_ref()).await,
        Command::Ingest(args) => ingest_cmd(&lake, args, clock.as_ref()).await,
        Command::Export(args) => export_cmd(&lake, args).await,
        Command::Retention(RetentionCommand::Apply { store, dry_run }) => {
            retention(&lake, store, dry_run, deletion_clock(clock.as_ref())).await
        }
        Command::Query(_) | Command::Demo => bail!("queries and the demo open the lake themselves"),
    }
}

/// The three audits `trawl demo` prints when it has no terminal.
const DEMO_AUDITS: [&str; 3] =
    ["01-who-deleted-buckets", "03-console-logins-without-mfa", "09-cloudtrail-tampering"];

/// `trawl` without a command, and `trawl demo`: the SQL shell (or stdin's statements).
pub(crate) fn shell(runtime: &tokio::runtime::Runtime, location: &str, demo: bool) -> Result<ExitCode> {
    if demo {
        runtime.block_on(prepare_demo(location))?;
    }
    let lake = runtime
        .block_on(trawl_query::Lake::open(location))
        .with_context(|| format!("cannot open the lake at {location}"))?;
    let interactive = crate::repl::on_terminal();
    let mut session = crate::repl::Session::new(lake, runtime, interactive)?;
    if interactive {
        session.interact()?;
    } else if demo {
        for name in DEMO_AUDITS {
            if !session.input(&format!("\\examples {name}")) {
                break;
            }
            say!();
        }
    } else {
        crate::repl::run_stdin(&mut session)?;
    }
    Ok(if !interactive && session.errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The `demo` store of `trawl demo`: created with ten years of retention and filled from the
/// bundled fixture files, once.
async fn prepare_demo(location: &str) -> Result<()> {
    let lake = Lake::create(location).with_context(|| format!("cannot open the lake at {location}"))?;
    let clock = clock()?;
    let eds = match lake.store("demo").await {
        Ok(eds) => eds,
        Err(trawl_store::Error::StoreNotFound(_)) => {
            let mut config = StoreConfig::new("demo", clock.now())?;
            config.retention_days = trawl_store::MAX_RETENTION_DAYS;
            lake.create_store(config).await?
        }
        Err(e) => return Err(e.into()),
    };
    // A fixed place, so the ledger knows the files on a second run.
    let sources = std::env::temp_dir().join("trawl-demo-events");
    for (rel, bytes) in crate::bundled::DEMO_FILES {
        let path = sources.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let bar = Bar::new();
    let inputs = [sources.display().to_string()];
    let report = ingest(&eds, &inputs, &IngestOptions::new(clock.now()), &bar).await;
    bar.finish();
    let _ = std::fs::remove_dir_all(&sources);
    let report = report.context("cannot build the demo store")?;
    note!(
        "demo store: {} events stored from {} bundled files ({} already there, {} malformed records skipped)",
        report.events_stored,
        report.files_read,
        report.files_already_ingested,
        report.bad_records
    );
    Ok(())
}

fn apply_settings(config: &mut StoreConfig, s: StoreSettings) -> Result<()> {
    if let Some(days) = s.retention_days {
        config.retention_days = days;
    }
    if let Some(on) = s.termination_protection {
        config.termination_protection = on.is_on();
    }
    if let Some(on) = s.ingestion {
        config.ingestion_enabled = on.is_on();
    }
    if let Some(sel) = s.selectors {
        let text = match sel.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
            None => sel,
        };
        let selectors: Vec<AdvancedEventSelector> = serde_json::from_str(&text)
            .context("--selectors is not a JSON array of advanced event selectors")?;
        config.advanced_event_selectors = selectors;
    }
    Ok(())
}

async fn store(lake: &Lake, cmd: StoreCommand, clock: &dyn Clock) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        StoreCommand::Create { name, settings } => {
            let mut config = StoreConfig::new(&name, clock.now())?;
            apply_settings(&mut config, settings)?;
            let eds = lake.create_store(config).await?;
            writeln!(out, "created event data store {} ({})", eds.config().name, eds.config().id)?;
        }
        StoreCommand::List { json } => {
            let (stores, broken) = lake.listing().await?;
            for (name, reason) in &broken {
                note!("warning: event data store {name} cannot be read: {reason}");
            }
            if json {
                serde_json::to_writer_pretty(&mut out, &stores)?;
                writeln!(out)?;
            } else {
                writeln!(
                    out,
                    "{:<24} {:<36} {:<16} {:>9} {:<10}",
                    "NAME", "ID", "STATUS", "RETENTION", "INGESTION"
                )?;
                for s in stores {
                    let status = match s.status {
                        Status::Enabled => "ENABLED",
                        Status::PendingDeletion => "PENDING_DELETION",
                    };
                    let ingestion = if s.ingestion_enabled { "on" } else { "stopped" };
                    writeln!(
                        out,
                        "{:<24} {:<36} {:<16} {:>8}d {:<10}",
                        s.name, s.id, status, s.retention_days, ingestion
                    )?;
                }
                for (name, _) in &broken {
                    writeln!(out, "{name:<24} {:<36} {:<16} {:>9} {:<10}", "-", "UNREADABLE", "-", "-")?;
                }
            }
        }
        StoreCommand::Show { store, json } => {
            let eds = lake.store(&store).await?;
            let summary = eds.summary().await?;
            if let Some(ledger) = summary.ledger_version.filter(|&v| v > summary.version.unwrap_or(0)) {
                note!(
                    "warning: the ledger records version {ledger}, past the Delta log's last version {}: \
                     commits are missing, and the next ingest of their sources stores their events again",
                    summary.version.unwrap_or(0)
                );
            }
            let c = eds.config();
            if json {
                let v =
                    serde_json::json!({ "config": c, "summary": summary, "location": eds.url().as_str() });
                serde_json::to_writer_pretty(&mut out, &v)?;
                writeln!(out)?;
            } else {
                let time = |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), |t| t.to_rfc3339());
                writeln!(out, "name                    {}", c.name)?;
                writeln!(out, "id                      {}", c.id)?;
                writeln!(out, "location                {}", eds.url())?;
                writeln!(out, "category                CloudTrail events")?;
                writeln!(out, "retention               {} days", c.retention_days)?;
                writeln!(
                    out,
                    "termination protection  {}",
                    if c.termination_protection { "on" } else { "off" }
                )?;
                writeln!(
                    out,
                    "ingestion               {}",
                    if c.ingestion_enabled { "on" } else { "stopped" }
                )?;
                let selectors = if c.advanced_event_selectors.is_empty() {
                    "all events".to_owned()
                } else {
                    serde_json::to_string(&c.advanced_event_selectors)?
                };
                writeln!(out, "selectors               {selectors}")?;
                writeln!(out, "created                 {}", c.created_at.to_rfc3339())?;
                writeln!(out, "events                  {}", summary.events)?;
                writeln!(out, "files                   {}", summary.files)?;
                if summary.unchecked_files > 0 {
                    writeln!(
                        out,
                        "files without checksums {} (written before block checksums: read unchecked)",
                        summary.unchecked_files
                    )?;
                }
                writeln!(out, "bytes                   {}", summary.bytes)?;
                writeln!(out, "partitions              {}", summary.partitions)?;
                writeln!(out, "oldest event            {}", time(summary.oldest_event))?;
                writeln!(out, "newest event            {}", time(summary.newest_event))?;
                writeln!(
                    out,
                    "table version           {}",
                    summary.version.map_or("-".into(), |v| v.to_string())
                )?;
            }
        }
        StoreCommand::Update { store, settings } => {
            let mut config = lake.store(&store).await?.config().clone();
            if settings.retention_days.is_none()
                && settings.termination_protection.is_none()
                && settings.selectors.is_none()
                && settings.ingestion.is_none()
            {
                bail!(
                    "nothing to update: give at least one of --retention-days, --termination-protection, --selectors, --ingestion"
                );
            }
            apply_settings(&mut config, settings)?;
            config.updated_at = clock.now();
            lake.write_config(&config).await?;
            writeln!(out, "updated event data store {}", config.name)?;
        }
        StoreCommand::Delete { store } => {
            let c = lake.delete_store(&store, clock).await?;
            writeln!(
                out,
                "event data store {} is pending deletion; `trawl store restore {}` brings it back within 7 days",
                c.name, c.name
            )?;
        }
        StoreCommand::Restore { store } => {
            let c = lake.restore_store(&store, clock).await?;
            writeln!(out, "restored event data store {}", c.name)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn ingest_cmd(lake: &Lake, args: IngestArgs, clock: &dyn Clock) -> Result<ExitCode> {
    for source in args.sources.iter().filter(|s| !trawl_ingest::is_url(s)) {
        std::fs::metadata(source).with_context(|| format!("cannot read source {source}"))?;
    }
    let eds = match lake.store(&args.store).await {
        Ok(eds) => eds,
        Err(trawl_store::Error::StoreNotFound(_)) => {
            match lake.create_store(StoreConfig::new(&args.store, clock.now())?).await {
                Ok(eds) => {
                    note!(
                        "created event data store {} ({}) with default settings",
                        eds.config().name,
                        eds.config().id
                    );
                    eds
                }
                // Another ingest created it meanwhile: this one goes on into it.
                Err(trawl_store::Error::StoreExists(_)) => lake.store(&args.store).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    let mut options = IngestOptions::new(clock.now());
    options.strict = args.strict;
    options.wave_bytes = args.commit_mib.max(1) << 20;
    options.checkpoint_every = args.checkpoint_every;
    options.max_text_bytes = args.max_file_mib.max(1) << 20;
    if let Some(t) = args.threads {
        options.threads = t.max(1);
    }
    options.scope = TrailFilter {
        start: args.start.as_deref().map(parse_time).transpose()?,
        end: args.end.as_deref().map(parse_time).transpose()?,
        accounts: args.accounts,
        regions: args.regions,
        concurrency: args.concurrency.max(1),
        ..Default::default()
    };
    let Some(every) = args.follow else {
        let report = ingest_once(&eds, &args.sources, &options, args.strict).await?;
        return Ok(exit_code(&report, args.strict));
    };
    // Live ingestion: each round lists again (from the newest day prefix seen, less a day, for
    // late deliveries) and takes only objects the ledger does not have.
    let mut clean = true;
    // Registered once, so an interrupt during a round is not lost: it ends the next wait.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let report = ingest_once(&eds, &args.sources, &options, args.strict).await?;
        clean &= report.is_clean();
        if let Some(newest) = report.newest_prefix_day {
            options.scope.listed_from = Some(newest - chrono::Days::new(1));
        }
        tokio::select! {
            _ = &mut interrupted => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(every.max(1))) => {}
        }
        options.now = clock.now();
    }
    note!("stopped following");
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(EXIT_BAD_INPUT) })
}

/// One ingest run with its progress bar, warnings and report.
async fn ingest_once(
    eds: &trawl_store::EventDataStore,
    sources: &[String],
    options: &IngestOptions,
    strict: bool,
) -> Result<IngestReport> {
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
    print_report(&eds.config().name, &report)?;
    Ok(report)
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

async fn export_cmd(lake: &Lake, args: ExportArgs) -> Result<ExitCode> {
    let eds = lake.store(&args.store).await?;
    let start = args.start.as_deref().map(parse_time).transpose()?;
    let end = args.end.as_deref().map(parse_time).transpose()?;
    let report = if args.output.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        export(&eds, start, end, &mut out).await?
    } else {
        // Written next to the target and renamed, so a failed export leaves no partial file.
        let tmp = args.output.with_extension("partial");
        let file = std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let report = export(&eds, start, end, &mut out).await?;
        drop(out);
        std::fs::rename(&tmp, &args.output)
            .with_context(|| format!("cannot write {}", args.output.display()))?;
        report
    };
    note!("exported {} events ({} bytes) from {}", report.events, report.bytes, eds.config().name);
    Ok(ExitCode::SUCCESS)
}

async fn retention(
    lake: &Lake,
    store: Option<String>,
    dry_run: bool,
    clock: Arc<dyn Clock>,
) -> Result<ExitCode> {
    let names: Vec<String> = match store {
        Some(s) => vec![lake.store(&s).await?.config().name.clone()],
        None => {
            lake.stores().await?.into_iter().filter(|c| c.status == Status::Enabled).map(|c| c.name).collect()
        }
    };
    let mut out = std::io::stdout().lock();
    if dry_run {
        for c in lake.expired_deletions(clock.as_ref()).await? {
            writeln!(out, "{}: pending deletion for seven days or more: would be removed", c.name)?;
        }
    }
    for name in names {
        let eds = lake.store(&name).await?;
        let r = eds
            .apply_retention(clock.clone(), dry_run)
            .await
            .map_err(|e| e.at(&eds.url()))
            .with_context(|| format!("retention of {name} failed"))?;
        let verb = if dry_run { "would delete" } else { "deleted" };
        writeln!(
            out,
            "{name}: retention {} days, cutoff {}: {verb} {} partitions, {} files, {} events, {} bytes{}",
            eds.config().retention_days,
            r.cutoff.to_rfc3339(),
            r.partitions.len(),
            r.files,
            r.events,
            r.bytes,
            if dry_run {
                String::new()
            } else {
                format!("; vacuumed {} files and {} orphaned files", r.files_deleted, r.orphans_deleted)
            }
        )?;
        for p in &r.partitions {
            writeln!(out, "  eventdate={p}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
