//! `trawl saved`: queries saved in the lake under a name, shared by everyone who opens it.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use trawl_store::{Lake, SavedQuery};

use crate::args::SavedCommand;

pub(crate) async fn run(location: &str, command: SavedCommand) -> Result<ExitCode> {
    let open = || Lake::open(location).with_context(|| format!("cannot open the lake at {location}"));
    match command {
        SavedCommand::Add { name, sql, file, description, replace } => {
            let text = match (sql, file) {
                (Some(sql), _) => sql,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                (None, None) => {
                    let mut sql = String::new();
                    std::io::stdin().read_to_string(&mut sql).context("cannot read SQL from stdin")?;
                    sql
                }
            };
            let sql = one_statement(&text)?;
            // Saving writes: the lake is made when there is none yet.
            let lake =
                Lake::create(location).with_context(|| format!("cannot open the lake at {location}"))?;
            let clock = super::clock()?;
            let query = SavedQuery { name, description, sql, saved_by: super::user(), saved_at: clock.now() };
            lake.save_query(&query, replace).await?;
            let placeholders = trawl_query::placeholders(&query.sql);
            let fill = if placeholders.is_empty() {
                String::new()
            } else {
                let params: Vec<String> = placeholders.iter().map(|p| format!("--param {p}=...")).collect();
                format!(" {}", params.join(" "))
            };
            note!("saved query {}: `trawl saved run {}{fill}` runs it", query.name, query.name);
        }
        SavedCommand::List { json } => {
            let queries = open()?.saved_queries().await?;
            crate::output::to_stdout(|out| list(out, &queries, json))?;
        }
        SavedCommand::Show { name } => {
            let query = find(&open()?, &name).await?;
            crate::output::to_stdout(|out| {
                if !query.description.is_empty() {
                    writeln!(out, "-- {}", query.description.replace('\n', "\n-- "))?;
                }
                writeln!(out, "{};", query.sql)?;
                Ok(())
            })?;
        }
        SavedCommand::Run { name, run } => {
            let query = find(&open()?, &name).await?;
            let given: Vec<&str> = run
                .params
                .iter()
                .filter_map(|p| p.split_once('='))
                .map(|(n, _)| n.trim_start_matches('$'))
                .collect();
            let missing: Vec<String> = trawl_query::placeholders(&query.sql)
                .into_iter()
                .filter(|p| !given.iter().any(|g| g.eq_ignore_ascii_case(p)))
                .map(|p| format!("--param {p}=..."))
                .collect();
            if !missing.is_empty() {
                bail!("saved query {name} needs {}", missing.join(" "));
            }
            return super::query::run_sql(location, &query.sql, &run, "saved").await;
        }
        SavedCommand::Rm { name } => {
            let lake = open()?;
            find(&lake, &name).await?;
            lake.remove_saved_query(&name).await?;
            note!("removed saved query {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The single statement of `text`, without its `;` and comments.
fn one_statement(text: &str) -> Result<String> {
    let split = trawl_query::split(text);
    match split.pieces.as_slice() {
        [trawl_query::Piece::Sql { text, .. }] => Ok(text.trim().to_owned()),
        [] => bail!("no SQL to save"),
        [trawl_query::Piece::Meta { .. }] => bail!("a saved query is SQL, not a meta-command"),
        pieces => bail!("a saved query is one statement; this text holds {}", pieces.len()),
    }
}

/// The saved query `name`; an unknown name suggests the closest saved.
pub(crate) async fn find(lake: &Lake, name: &str) -> Result<SavedQuery> {
    match lake.saved_query(name).await {
        Err(e @ trawl_store::Error::SavedQueryNotFound { .. }) => {
            let names: Vec<String> = lake.saved_queries().await?.into_iter().map(|q| q.name).collect();
            match trawl_query::closest(name, names.iter().map(String::as_str)) {
                Some(close) => bail!("{e}; did you mean '{close}'?"),
                None => Err(e.into()),
            }
        }
        other => Ok(other?),
    }
}

/// The saved queries: a line each, or JSON with their placeholders.
pub(crate) fn list(out: &mut dyn Write, queries: &[SavedQuery], json: bool) -> Result<()> {
    if json {
        let items: Vec<serde_json::Value> = queries
            .iter()
            .map(|q| {
                let mut v = serde_json::to_value(q)?;
                v["placeholders"] = serde_json::json!(trawl_query::placeholders(&q.sql));
                Ok(v)
            })
            .collect::<Result<_, serde_json::Error>>()?;
        serde_json::to_writer_pretty(&mut *out, &items)?;
        writeln!(out)?;
        return Ok(());
    }
    if queries.is_empty() {
        writeln!(out, "no saved queries (`trawl saved add NAME SQL` saves one)")?;
        return Ok(());
    }
    let width = queries.iter().map(|q| q.name.len()).max().unwrap_or(0).max(4);
    writeln!(out, "{:<width$}  {:<20}  {:<12}  {:<24}  DESCRIPTION", "NAME", "SAVED", "BY", "PARAMETERS")?;
    for q in queries {
        let params: Vec<String> = trawl_query::placeholders(&q.sql).iter().map(|p| format!("${p}")).collect();
        writeln!(
            out,
            "{:<width$}  {:<20}  {:<12}  {:<24}  {}",
            q.name,
            q.saved_at.format("%Y-%m-%dT%H:%M:%SZ"),
            q.saved_by,
            params.join(" "),
            q.description.lines().next().unwrap_or("")
        )?;
    }
    Ok(())
}
