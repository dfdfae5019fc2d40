//! `trawl lookup`: CloudTrail's Event history lookup (`LookupEvents`) over a store, as SQL.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;
use serde_json::{Value, json};
use trawl_query::Lake;

use crate::args::{LookupArgs, LookupFormat};
use crate::output::{self, Format, Sink};

/// Event history's user name: the IAM user's, else the last part of the identity's ARN (an
/// assumed role's session, `root`).
const USERNAME: &str = "coalesce(useridentity.username, regexp_extract(useridentity.arn, '[^/:]+$'))";

/// `LookupEvents`' attribute keys and the predicate each stands for (`{}`: the value, quoted;
/// `{user}`: [`USERNAME`]).
const ATTRIBUTES: &[(&str, &str)] = &[
    ("EventId", "eventid = {}"),
    ("EventName", "eventname = {}"),
    ("ReadOnly", "readonly = {}"),
    ("Username", "{user} = {}"),
    ("ResourceType", "any_match(resources, r -> r.type = {})"),
    // Event history names a resource by its ARN or by the ARN's last part (a bucket's name, an
    // instance's id).
    ("ResourceName", "any_match(resources, r -> r.arn = {} OR regexp_extract(r.arn, '[^:/]+$') = {})"),
    ("EventSource", "eventsource = {}"),
    ("AccessKeyId", "useridentity.accesskeyid = {}"),
];

/// The columns of an event as Event history shows them (`{user}`: [`USERNAME`]).
const COLUMNS: &str = "CAST(eventtime AS VARCHAR) AS \"EventTime\", eventname AS \"EventName\", \
    {user} AS \"Username\", \
    eventsource AS \"EventSource\", CAST(readonly AS VARCHAR) AS \"ReadOnly\", \
    useridentity.accesskeyid AS \"AccessKeyId\", eventid AS \"EventId\", \
    json_format(json_extract(eventjson, '$.resources')) AS \"Resources\"";

pub(crate) async fn run(location: &str, args: LookupArgs) -> Result<ExitCode> {
    let lake = Lake::open(location).await.with_context(|| format!("cannot open the lake at {location}"))?;
    let store = match (&args.store, lake.stores()) {
        (Some(s), _) => s.clone(),
        (None, [one]) => one.name.clone(),
        (None, stores) => {
            let names: Vec<&str> = stores.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "the lake at {location} has {} stores ({}): say which with --store",
                names.len(),
                names.join(", ")
            )
        }
    };
    // The table leaves the event's JSON out: it would be every row's width.
    let sql = statement(&lake, &store, &args, args.format == LookupFormat::Json).await?;
    let running = lake.start(&sql).await?;
    let mut batches = running.stream()?;
    match args.format {
        LookupFormat::Table => {
            let out = output::Stdout::new();
            let closed = out.closed();
            let sink = Sink::new(Format::Table, batches.schema(), out, None)?;
            output::ended(super::query::drain(batches, sink, "stdout").await, &closed)?;
        }
        LookupFormat::Json => {
            let mut events = Vec::new();
            while let Some(batch) = batches.try_next().await? {
                let mut buf = Vec::new();
                let mut writer = arrow::json::LineDelimitedWriter::new(&mut buf);
                writer.write(&batch)?;
                writer.finish()?;
                drop(writer);
                for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    events.push(event(serde_json::from_slice(line)?));
                }
            }
            let text = serde_json::to_string_pretty(&json!({ "Events": events }))?;
            output::to_stdout(|out| Ok(writeln!(out, "{text}")?))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The statement of a lookup: the attributes' predicates, the time range, newest first. The
/// newest events are found first by their ids and times alone, then read whole by id within
/// their time span: bloom filters and partitions find them without reading every matching
/// event's JSON.
pub(crate) async fn statement(
    lake: &Lake,
    store: &str,
    args: &LookupArgs,
    with_event: bool,
) -> Result<String> {
    let quote = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let mut conditions = Vec::new();
    for attr in &args.attrs {
        let Some((key, value)) = attr.split_once('=') else {
            bail!("--attr {attr}: expected KEY=VALUE");
        };
        let Some((_, predicate)) = ATTRIBUTES.iter().find(|(k, _)| k.eq_ignore_ascii_case(key.trim())) else {
            let keys: Vec<&str> = ATTRIBUTES.iter().map(|(k, _)| *k).collect();
            bail!("--attr {attr}: '{key}' is not one of {}", keys.join(", "));
        };
        let value = if key.trim().eq_ignore_ascii_case("ReadOnly") {
            match value.to_ascii_lowercase().as_str() {
                "true" | "false" => value.to_ascii_lowercase(),
                _ => bail!("--attr {attr}: ReadOnly is true or false"),
            }
        } else {
            quote(value)
        };
        conditions.push(predicate.replace("{user}", USERNAME).replace("{}", &value));
    }
    for (bound, op) in [(&args.start, ">="), (&args.end, "<")] {
        if let Some(t) = bound {
            let t = super::parse_time(t)?;
            conditions.push(format!("eventtime {op} TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")));
        }
    }
    let filter = |more: &[String]| {
        let all: Vec<&String> = conditions.iter().chain(more).collect();
        if all.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", all.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" AND "))
        }
    };
    let newest = format!(
        "SELECT eventid, CAST(eventtime AS VARCHAR) AS t FROM \"{store}\" {} \
         ORDER BY eventtime DESC, eventid LIMIT {}",
        filter(&[]),
        args.max_results
    );
    let (batches, _) = lake.collect(&newest).await?;
    let mut ids = Vec::new();
    let mut times = Vec::new();
    for batch in &batches {
        let options = arrow::util::display::FormatOptions::default();
        let id = arrow::util::display::ArrayFormatter::try_new(batch.column(0).as_ref(), &options)?;
        let t = arrow::util::display::ArrayFormatter::try_new(batch.column(1).as_ref(), &options)?;
        for row in 0..batch.num_rows() {
            ids.push(quote(&id.value(row).to_string()));
            times.push(t.value(row).to_string());
        }
    }
    let found = match (times.iter().min(), times.iter().max()) {
        (Some(first), Some(last)) => vec![
            format!("eventid IN ({})", ids.join(", ")),
            format!("eventtime >= TIMESTAMP {} AND eventtime <= TIMESTAMP {}", quote(first), quote(last)),
        ],
        _ => vec!["false".to_owned()],
    };
    let event = if with_event { ", eventjson AS \"CloudTrailEvent\"" } else { "" };
    let columns = COLUMNS.replace("{user}", USERNAME);
    Ok(format!(
        "SELECT {columns}{event} FROM \"{store}\" {} ORDER BY eventtime DESC, eventid LIMIT {}",
        filter(&found),
        args.max_results
    ))
}

/// An event as `aws cloudtrail lookup-events` prints it: `Resources` as a list of
/// `{ResourceType, ResourceName}`, the event itself as JSON text in `CloudTrailEvent`.
fn event(mut row: serde_json::Map<String, Value>) -> Value {
    let resources: Vec<Value> = row
        .remove("Resources")
        .and_then(|r| r.as_str().and_then(|t| serde_json::from_str::<Vec<Value>>(t).ok()))
        .unwrap_or_default()
        .into_iter()
        .map(|r| json!({"ResourceType": r["type"], "ResourceName": r["ARN"]}))
        .collect();
    row.insert("Resources".into(), Value::Array(resources));
    Value::Object(row)
}
