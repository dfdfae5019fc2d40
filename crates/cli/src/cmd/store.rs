//! `trawl store`: create, list, show, update, delete and restore event data stores.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use trawl_store::selectors::AdvancedEventSelector;
use trawl_store::{Clock, Lake, Status, StoreConfig};

use crate::args::{StoreCommand, StoreSettings};

pub(super) fn apply_settings(config: &mut StoreConfig, s: StoreSettings) -> Result<()> {
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

pub(super) async fn run(lake: &Lake, cmd: StoreCommand, clock: &dyn Clock) -> Result<ExitCode> {
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
