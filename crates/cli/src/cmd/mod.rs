//! The commands, one module each: each returns its exit code; errors bubble up to `main`.

mod audit;
mod export;
pub(crate) mod gaps;
pub(crate) mod history;
mod ingest;
pub(crate) mod lookup;
pub(crate) mod query;
mod retention;
pub(crate) mod saved;
pub(crate) mod shell;
mod store;
pub(crate) mod verify;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use trawl_store::{Clock, FixedClock, Lake, SystemClock};

use crate::args::{Command, LakeCommand, RetentionCommand, StoreCommand};

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

/// Who runs trawl, for the records of audit runs and the query log.
pub(crate) fn user() -> String {
    std::env::var("USER").unwrap_or_default()
}

/// This machine's name, for the records of audit runs and the query log.
pub(crate) fn host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Keeps a record of each statement `lake` runs when the lake's settings ask for a query log;
/// returns the lake to write the records to ([`record`]).
pub(crate) async fn journal(
    lake: &mut trawl_query::Lake,
    location: &str,
    source: &str,
) -> Result<Option<Lake>> {
    let store = match Lake::open(location) {
        // Its records are signed as every commit is.
        Ok(store) => match verify::signer()? {
            Some(signer) => store.with_signer(signer),
            None => store,
        },
        Err(trawl_store::Error::NoLake(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if !store
        .settings()
        .await
        .with_context(|| format!("cannot read the settings of the lake at {location}"))?
        .query_log
    {
        return Ok(None);
    }
    lake.record_queries(&user(), &host(), source);
    Ok(Some(store))
}

/// Appends the statements `lake` ran since the last call to the query log of `store`.
pub(crate) async fn record(store: &Lake, lake: &trawl_query::Lake) -> Result<()> {
    trawl_store::records::append_queries(store, &lake.take_query_records())
        .await
        .context("cannot record the statement in the lake's query log")
}

pub(crate) async fn run(location: &str, command: Command) -> Result<ExitCode> {
    let clock = clock()?;
    // Audits open what they need: a pack is listed without a lake, and a run records in it.
    if let Command::Audit(cmd) = command {
        return audit::run(location, cmd, clock.as_ref()).await;
    }
    if let Command::Key(cmd) = command {
        return verify::key(cmd);
    }
    // Stores deleted seven days ago or more go for good, but only when a command writes anyway:
    // a command that reads never writes (nor fails on a lake it may only read, nor creates one).
    let writes = match &command {
        Command::Store(StoreCommand::List { .. } | StoreCommand::Show { .. }) => false,
        Command::Store(_) | Command::Ingest(_) | Command::Optimize { .. } => true,
        Command::Retention(RetentionCommand::Apply { dry_run, .. }) => !dry_run,
        Command::Lake(LakeCommand::Set { .. }) => true,
        Command::Export(_)
        | Command::Query(_)
        | Command::Lookup(_)
        | Command::Saved(_)
        | Command::History(_)
        | Command::Verify(_)
        | Command::VerifyResults { .. }
        | Command::ValidateTrail { .. }
        | Command::Gaps(_)
        | Command::Key(_)
        | Command::Demo
        | Command::Audit(_)
        | Command::Lake(_) => false,
    };
    let mut lake = if writes { Lake::create(location) } else { Lake::open(location) }
        .with_context(|| format!("cannot open the lake at {location}"))?;
    // Commits sign their integrity chain records with the key `$TRAWL_SIGNING_KEY` names.
    if writes && let Some(signer) = verify::signer()? {
        lake = lake.with_signer(signer);
    }
    if writes {
        let purged = lake.purge_expired(deletion_clock(clock.as_ref()).as_ref()).await;
        for name in purged.context("cannot purge deleted stores")? {
            note!("removed event data store {name}: its seven days of pending deletion are over");
        }
    }
    match command {
        Command::Store(cmd) => store::run(&lake, cmd, clock.as_ref()).await,
        Command::Lake(cmd) => lake_settings(&lake, cmd).await,
        Command::Ingest(args) => ingest::run(&lake, location, args, clock.as_ref()).await,
        Command::Export(args) => export::run(&lake, args).await,
        Command::Verify(args) => verify::run(&lake, args).await,
        Command::Optimize { stores } => optimize(&lake, stores, clock).await,
        Command::Retention(RetentionCommand::Apply { store, dry_run }) => {
            retention::run(&lake, store, dry_run, deletion_clock(clock.as_ref())).await
        }
        Command::Query(_)
        | Command::Lookup(_)
        | Command::Saved(_)
        | Command::History(_)
        | Command::Key(_)
        | Command::VerifyResults { .. }
        | Command::ValidateTrail { .. }
        | Command::Gaps(_)
        | Command::Demo
        | Command::Audit(_) => {
            bail!("queries and the demo open the lake themselves")
        }
    }
}

/// The stores `names` names, or every enabled store when it names none.
async fn named_or_enabled(lake: &Lake, names: Vec<String>) -> Result<Vec<String>> {
    if !names.is_empty() {
        return Ok(names);
    }
    let stores = lake.stores().await?;
    Ok(stores.into_iter().filter(|c| c.status == trawl_store::Status::Enabled).map(|c| c.name).collect())
}

/// `trawl optimize`: each store compacted, a line each.
async fn optimize(lake: &Lake, stores: Vec<String>, clock: Arc<dyn Clock>) -> Result<ExitCode> {
    // Without --store, the lake's own record tables too: an audit daemon appends a file a run.
    if stores.is_empty() {
        use trawl_store::records::{RecordLog, Records};
        for (records, name) in [(Records::Audits, "audit log"), (Records::Queries, "query log")] {
            let mut log = RecordLog::open_records(lake, records).await?;
            if let Some((removed, added)) =
                log.compact().await.with_context(|| format!("cannot compact the {name}"))?
            {
                crate::output::to_stdout(|out| Ok(writeln!(out, "{name}: {removed} files into {added}")?))?;
            }
        }
    }
    for name in named_or_enabled(lake, stores).await? {
        let eds = lake.store(&name).await?;
        let r = eds
            .optimize(deletion_clock(clock.as_ref()))
            .await
            .with_context(|| format!("cannot optimize {name}"))?;
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        let vacuumed = format!("{} files of earlier rewrites deleted from storage", r.files_vacuumed);
        crate::output::to_stdout(|out| {
            match r.version {
                None => writeln!(out, "{name}: nothing to compact; {vacuumed}")?,
                Some(v) => writeln!(
                    out,
                    "{name}: {} partitions, {} files into {} ({:.1} MiB into {:.1} MiB), {} events, version {v}; {vacuumed}",
                    r.partitions,
                    r.files_removed,
                    r.files_added,
                    mib(r.bytes_removed),
                    mib(r.bytes_added),
                    r.events
                )?,
            }
            Ok(())
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `trawl lake show|set`.
async fn lake_settings(lake: &Lake, command: LakeCommand) -> Result<ExitCode> {
    let mut settings = lake.settings().await.context("cannot read the lake's settings")?;
    if let LakeCommand::Set { query_log } = command {
        if let Some(on) = query_log {
            settings.query_log = on;
        }
        lake.write_settings(&settings).await.context("cannot write the lake's settings")?;
    }
    let on_off = |b: bool| if b { "on" } else { "off" };
    crate::output::to_stdout(|out| {
        writeln!(out, "lake       {}", lake.url())?;
        writeln!(out, "query-log  {}", on_off(settings.query_log))?;
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
