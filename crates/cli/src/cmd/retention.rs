//! `trawl retention apply`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use trawl_store::{Clock, Lake};

pub(super) async fn run(
    lake: &Lake,
    store: Option<String>,
    dry_run: bool,
    clock: Arc<dyn Clock>,
) -> Result<ExitCode> {
    let names: Vec<String> = match store {
        Some(s) => vec![lake.store(&s).await?.config().name.clone()],
        None => super::named_or_enabled(lake, Vec::new()).await?,
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
