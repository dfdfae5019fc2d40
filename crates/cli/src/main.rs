//! `trawl`: CloudTrail event data stores on Delta Lake.
//!
//! Exit codes: 0 success; 1 error; 2 usage error; 3 ingest finished but skipped bad input
//! (malformed records or unreadable files, all reported on stderr). Statements read from stdin
//! by `trawl` without a command: 1 when any of them failed.

/// A line on stderr. A closed stderr (`trawl ... 2>&1 | head`) is no reason to panic: the line
/// is dropped.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// A line on stdout for the shell's own output (help, lists); a closed stdout drops it.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod commands;

/// `sql-examples/` and the demo's fixture files, bundled by `build.rs`.
mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}
mod output;
mod progress;
mod query;
mod repl;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// CloudTrail event data stores on Delta Lake, queried with SQL.
#[derive(Debug, Parser)]
#[command(name = "trawl", version, about, propagate_version = true)]
struct Cli {
    /// The lake: a local directory or s3://bucket/prefix [default: $TRAWL_LAKE, else ./trawl-lake]
    #[arg(long, global = true, env = "TRAWL_LAKE", default_value = "trawl-lake", hide_default_value = true)]
    lake: String,
    /// Without a command: the SQL shell on a terminal, else the statements read from stdin
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, show, update, delete and restore event data stores
    #[command(subcommand)]
    Store(StoreCommand),
    /// Ingest CloudTrail files, directories and trail buckets (s3://) into a store
    Ingest(IngestArgs),
    /// Write a store's events back out as NDJSON (the original JSON of each event)
    Export(ExportArgs),
    /// Apply retention: drop day partitions older than the store's retention
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Run one SQL query (CloudTrail Lake's dialect) over the stores
    Query(QueryArgs),
    /// Build a demo store from bundled real CloudTrail events and open the SQL shell on it
    /// (without a terminal: run three example audits and print them)
    Demo,
}

#[derive(Debug, Args)]
struct QueryArgs {
    /// The SQL; read from -f FILE or stdin when absent
    sql: Option<String>,
    /// Read the SQL from a file
    #[arg(short, long, value_name = "FILE", conflicts_with = "sql")]
    file: Option<PathBuf>,
    /// Output format [default: from the extension of -o FILE (.csv, .json, .ndjson, .jsonl,
    /// .md, .parquet), else table]
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write results to a file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Rows a table shows; the rest are counted, not kept (0: all) [default: 100 on a
    /// terminal, else all]
    #[arg(long, value_name = "N")]
    max_rows: Option<usize>,
    /// A placeholder value, as NAME=VALUE (fills $NAME in the SQL)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Raw trail logs as a table, as Athena reads them: URL (table `trail`) or NAME=URL; URL is
    /// s3://bucket/[prefix/] or a local directory; eventtime bounds prune the day prefixes read
    #[arg(long = "trail", value_name = "[NAME=]URL")]
    trails: Vec<String>,
    /// Only events at or after this time, in every store (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Only events before this time, in every store (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Memory for query execution in MiB; past it, sorts and aggregations spill to disk
    #[arg(long, value_name = "MIB")]
    memory_mib: Option<usize>,
    /// Do not print statistics on stderr
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn is_on(self) -> bool {
        self == OnOff::On
    }
}

#[derive(Debug, Args)]
struct StoreSettings {
    /// Days of events kept, by eventTime (7 to 3653) [default on create: 2557]
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<u32>,
    /// Termination protection: blocks `store delete` [default on create: on]
    #[arg(long, value_name = "ON|OFF")]
    termination_protection: Option<OnOff>,
    /// Advanced event selectors, as CloudTrail Lake's JSON array, or @FILE holding it
    #[arg(long, value_name = "JSON|@FILE")]
    selectors: Option<String>,
    /// Whether `ingest` may add events [default on create: on]
    #[arg(long, value_name = "ON|OFF")]
    ingestion: Option<OnOff>,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Create an event data store
    Create {
        /// 3 to 128 characters of letters, digits, '.', '_' and '-'
        name: String,
        #[command(flatten)]
        settings: StoreSettings,
    },
    /// List event data stores
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show a store's configuration and figures
    Show {
        /// Name or id
        store: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Change a store's settings
    Update {
        /// Name or id
        store: String,
        #[command(flatten)]
        settings: StoreSettings,
    },
    /// Delete a store: it stays restorable for 7 days, then is removed
    Delete {
        /// Name or id
        store: String,
    },
    /// Restore a store pending deletion
    Restore {
        /// Name or id
        store: String,
    },
}

#[derive(Debug, Args)]
struct IngestArgs {
    /// Files and directories (.json, .json.gz, .jsonl, .ndjson; directories recursively), and
    /// s3://bucket/[prefix/] locations (trail layouts: AWSLogs/[o-id/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/)
    #[arg(required = true, value_name = "SOURCE")]
    sources: Vec<String>,
    /// Only events at or after this time (RFC 3339 or YYYY-MM-DD); trail layouts list only the
    /// day prefixes from this day on
    #[arg(long, value_name = "TIME")]
    start: Option<String>,
    /// Only events before this time (RFC 3339 or YYYY-MM-DD); trail layouts list only the day
    /// prefixes up to the day after it
    #[arg(long, value_name = "TIME")]
    end: Option<String>,
    /// Only this account's prefixes of trail layouts (repeatable)
    #[arg(long = "account", value_name = "ACCOUNT")]
    accounts: Vec<String>,
    /// Only this region's prefixes of trail layouts (repeatable)
    #[arg(long = "region", value_name = "REGION")]
    regions: Vec<String>,
    /// Objects fetched at once from S3
    #[arg(long, default_value_t = 32, value_name = "N")]
    concurrency: usize,
    /// Keep running: look for new objects every SECS seconds (live ingestion) until interrupted
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "60")]
    follow: Option<u64>,
    /// The store; created with default settings when missing
    #[arg(long, default_value = "default")]
    store: String,
    /// Reject a whole file when any of its records is malformed, and exit 1
    #[arg(long)]
    strict: bool,
    /// Decode threads [default: one per core]
    #[arg(long)]
    threads: Option<usize>,
    /// Decoded JSON per commit, in MiB (bounds memory)
    #[arg(long, default_value_t = 32, value_name = "MIB")]
    commit_mib: u64,
    /// Write a Delta checkpoint every N table versions (each commit of a run gets slower the
    /// more commits there are since the last one)
    #[arg(long, default_value_t = 64, value_name = "N")]
    checkpoint_every: u64,
    /// The most text one file may decompress to, in MiB: a larger file (a gzip bomb) is
    /// reported and skipped
    #[arg(long, default_value_t = trawl_ingest::MAX_TEXT_BYTES >> 20, value_name = "MIB")]
    max_file_mib: u64,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// The store
    #[arg(long)]
    store: String,
    /// Only events at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    start: Option<String>,
    /// Only events before this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    end: Option<String>,
    /// Output file ('-' for stdout)
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Delete expired partitions and vacuum their files
    Apply {
        /// Only this store [default: every store]
        #[arg(long)]
        store: Option<String>,
        /// Report what would be deleted, delete nothing
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            note!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.command {
        None => commands::shell(&runtime, &cli.lake, false),
        Some(Command::Demo) => commands::shell(&runtime, &cli.lake, true),
        // A query opens the lake for SQL itself (and needs none for raw trail tables).
        Some(Command::Query(args)) => runtime.block_on(query::run(&cli.lake, args)),
        Some(command) => runtime.block_on(commands::run(&cli.lake, command)),
    };
    // A query abandoned by Ctrl-C may still be winding down: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        // The reader of the output went away (`trawl query ... | head`): done, as ripgrep is.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {}", describe(&e));
            ExitCode::from(1)
        }
    }
}

/// True when `e` is a write into a pipe whose reader has gone.
pub(crate) fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes, each said once. The contexts trawl adds come first; a cause whose
/// words the message already holds is left out (DataFusion's and Parquet's errors restate their
/// sources). A damaged data file is named by its own message alone.
pub(crate) fn describe(e: &anyhow::Error) -> String {
    let full = format!("{e:#}");
    let corrupt = trawl_store::blocks::Corrupt::find_in(&full);
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if corrupt.is_some_and(|c| text.contains(c)) {
            break;
        }
        // A layer whose message ends with its source's: its own words only.
        let own = match cause.source().map(|s| s.to_string()) {
            Some(source) if !source.is_empty() && text.ends_with(&source) => {
                text[..text.len() - source.len()].trim_end_matches([':', ' ']).to_owned()
            }
            _ => text,
        };
        if own.is_empty() || out.contains(&own) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&own);
    }
    match corrupt {
        Some(c) if out.is_empty() => c.to_owned(),
        Some(c) => format!("{out}: {c}"),
        None => out,
    }
}

/// Keeps freed memory in glibc's heap instead of handing it back to the kernel at once.
///
/// Left to adjust its thresholds itself, glibc's malloc maps blocks above its mmap threshold
/// (128 KiB, rising to 32 MiB at most) afresh at each allocation and trims the heaps of worker
/// threads whenever 128 KiB is free at their top, so the ingest's page-sized column buffers and
/// batch-sized builders fault their memory in again and again: 8.1 million page faults and
/// 34-37 s of system time for 10M events. Fixed thresholds (blocks up to 32 MiB from the heap,
/// trimming above 64 MiB free) took that to 0.3-0.9 million faults and 14 s, with peak RSS no
/// higher (805-834 against 849-925 MiB): the history of BENCHMARKS.md has the runs.
///
/// Each malloc arena may then keep up to 64 MiB free, and glibc makes up to eight arenas per
/// core, one per thread that finds the others busy: the peak RSS of a 10M ingest ranged from
/// 838 to 1,030 MiB with the same build. Two arenas per core took it to 636-699 MiB, with wall
/// and CPU time within the noise.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    let arenas = std::thread::available_parallelism().map_or(2, |n| n.get()).saturating_mul(2);
    let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` sets allocator parameters and touches no memory of ours; it runs before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
