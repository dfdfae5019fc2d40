//! `trawl-bench`: realistic CloudTrail data at scale, for trawl's benchmarks.
//!
//! ```text
//! trawl-bench gen OUT --events N --days D --accounts A --regions R --seed S
//! ```
//! writes a trail bucket layout (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/...json.gz`)
//! to a local directory or `s3://bucket/prefix`, and `OUT/trawl-bench.manifest` (JSON) with
//! its figures.
//!
//! ```text
//! trawl-bench audit-loop LAKE --pack DIR... --runs 1000 --step 15m
//! ```
//! runs what `trawl audit daemon` runs at each wake-up, `--runs` times, the clock moved on by
//! `--step` each time, and prints the process's resident memory as it goes.

mod audit_loop;
mod synth;
mod templates;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::{Parser, Subcommand};

/// Realistic CloudTrail trail buckets at scale, for trawl's benchmarks
#[derive(Debug, Parser)]
#[command(name = "trawl-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a trail bucket layout of generated events
    Gen {
        /// A directory, or s3://bucket/prefix
        out: String,
        /// Distinct events (about 0.1% more records: re-deliveries)
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Days, from --start
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Accounts, each with its own trail
        #[arg(long, default_value_t = 3)]
        accounts: u32,
        /// Regions per account
        #[arg(long, default_value_t = 2)]
        regions: u32,
        /// Seed: the same options and seed write the same files
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First day (UTC)
        #[arg(long, default_value = "2025-01-01")]
        start: NaiveDate,
        /// Where the template events are (real CloudTrail files)
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))]
        templates: PathBuf,
        /// Minutes of events per log file (CloudTrail delivers about every 5)
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1440))]
        file_minutes: u32,
        /// Writer threads [default: one per core]
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Run the audit daemon's loop body many times over a lake, under a clock that moves on by
    /// --step each time; print resident memory every 100 runs and a JSON summary at the end
    AuditLoop {
        /// The lake
        lake: String,
        /// Audit packs: TOML files, directories of .sql audits or of Sigma rules
        #[arg(long = "pack", required = true)]
        packs: Vec<PathBuf>,
        /// Wake-ups
        #[arg(long, default_value_t = 1000)]
        runs: u32,
        /// How far the clock moves between wake-ups
        #[arg(long, default_value = "15m")]
        step: String,
        /// The clock at the first wake-up (RFC 3339)
        #[arg(long, default_value = "2026-01-01T00:00:00Z")]
        start: String,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let (out, events, days, accounts, regions, seed, start, file_minutes, templates, threads) =
        match cli.command {
            Command::Gen {
                out,
                events,
                days,
                accounts,
                regions,
                seed,
                start,
                file_minutes,
                templates,
                threads,
            } => (out, events, days, accounts, regions, seed, start, file_minutes, templates, threads),
            Command::AuditLoop { lake, packs, runs, step, start } => {
                return audit_loop::run(&lake, &packs, runs, &step, &start);
            }
        };
    anyhow::ensure!(
        days > 0 && accounts > 0 && regions > 0,
        "--days, --accounts and --regions must be at least 1"
    );
    let apis = templates::load(&templates)?;
    let spec = synth::Spec { events, days, accounts, regions, seed, start, file_minutes };
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let summary = if out.starts_with("s3://") {
        let url = url::Url::parse(&out).with_context(|| format!("'{out}' is not a URL"))?;
        let sink = synth::s3_sink(&url, runtime.handle().clone())?;
        let summary = synth::generate(&spec, &apis, threads, &sink)?;
        sink(MANIFEST, manifest(&spec, &apis, &summary).into_bytes())?;
        summary
    } else {
        let sink = synth::local_sink(PathBuf::from(&out));
        let summary = synth::generate(&spec, &apis, threads, &sink)?;
        sink(MANIFEST, manifest(&spec, &apis, &summary).into_bytes())?;
        summary
    };
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{out}: {} events ({} records) in {} files, {:.1} MiB gzip ({:.1} MiB JSON), {} API calls, {:.1}s, {:.0} events/s",
        summary.events,
        summary.records,
        summary.files,
        summary.gzip_bytes as f64 / 1048576.0,
        summary.json_bytes as f64 / 1048576.0,
        apis.len(),
        secs,
        summary.records as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// The set's figures, for the benchmark suite: JSON, named so that ingesting the directory
/// does not take it for events.
const MANIFEST: &str = "trawl-bench.manifest";

/// The set's figures, for the benchmark suite.
fn manifest(spec: &synth::Spec, apis: &[templates::Api], s: &synth::Summary) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "events": s.events, "records": s.records, "files": s.files,
        "gzipBytes": s.gzip_bytes, "jsonBytes": s.json_bytes, "apiCalls": apis.len(),
        "days": spec.days, "start": spec.start.to_string(), "accounts": synth::accounts(spec),
        "regions": spec.regions, "seed": spec.seed, "fileMinutes": spec.file_minutes,
    }))
    .unwrap_or_default()
}
