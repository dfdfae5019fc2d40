//! `trawl` without a command, and `trawl demo`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use trawl_ingest::{IngestOptions, ingest};
use trawl_store::{Lake, StoreConfig};

use super::clock;
use crate::progress::Bar;

/// The three audits `trawl demo` prints when it has no terminal.
const DEMO_AUDITS: [&str; 3] =
    ["01-who-deleted-buckets", "03-console-logins-without-mfa", "09-cloudtrail-tampering"];

/// `trawl` without a command, and `trawl demo`: the SQL shell (or stdin's statements).
pub(crate) fn shell(runtime: &tokio::runtime::Runtime, location: &str, demo: bool) -> Result<ExitCode> {
    if demo {
        runtime.block_on(prepare_demo(location))?;
    }
    let mut lake = runtime
        .block_on(trawl_query::Lake::open(location))
        .with_context(|| format!("cannot open the lake at {location}"))?;
    let journal = runtime.block_on(super::journal(&mut lake, location, "shell"))?;
    let interactive = crate::repl::on_terminal();
    let mut session = crate::repl::Session::new(location, lake, journal, runtime, interactive)?;
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
    let mut lake = Lake::create(location).with_context(|| format!("cannot open the lake at {location}"))?;
    if let Some(signer) = super::verify::signer()? {
        lake = lake.with_signer(signer);
    }
    let clock = clock()?;
    let eds = match lake.store("demo").await {
        Ok(eds) => eds,
        Err(trawl_store::Error::StoreNotFound { .. }) => {
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
        "demo store: {} events stored from {} bundled files ({} already there, {} malformed records \
         skipped: the bundled files include damaged ones on purpose, to show how bad input is reported)",
        report.events_stored,
        report.files_read,
        report.files_already_ingested,
        report.bad_records
    );
    Ok(())
}
