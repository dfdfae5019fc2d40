//! The command line: clap's types, apart from the code of the commands. Values out of range
//! are refused here, naming the range, never clamped later.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use clap::builder::RangedU64ValueParser;
use trawl_store::{DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS};

use crate::output::Format;

/// A count of at least `min`: clap names the range when a value is outside it.
fn at_least(min: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::new().range(min..)
}

fn retention_help() -> String {
    format!(
        "Days of events kept, by eventTime ({MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}) \
         [default on create: {DEFAULT_RETENTION_DAYS}]"
    )
}

/// CloudTrail event data stores on Delta Lake, queried with SQL.
#[derive(Debug, Parser)]
#[command(name = "trawl", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// The lake: a local directory or s3://bucket/prefix [default: $TRAWL_LAKE, else ./trawl-lake]
    #[arg(long, global = true, env = "TRAWL_LAKE", default_value = "trawl-lake", hide_default_value = true)]
    pub(crate) lake: String,
    /// Without a command: the SQL shell on a terminal, else the statements read from stdin
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, list, show, update, delete and restore event data stores
    #[command(subcommand)]
    Store(StoreCommand),
    /// Ingest CloudTrail files, directories and trail buckets (s3://) into a store
    Ingest(IngestArgs),
    /// Write a store's events back out as NDJSON (the original JSON of each event)
    Export(ExportArgs),
    /// Compact stores: rewrite the small files of each partition (many small ingests) into few,
    /// sorted by eventtime, in one commit that adds no event; then delete from storage what
    /// rewrites removed more than a day ago. Without --store, the lake's audit log and query log
    /// too
    Optimize {
        /// Only this store (repeatable) [default: every enabled store, and the lake's logs]
        #[arg(long = "store", value_name = "NAME")]
        stores: Vec<String>,
    },
    /// Apply retention: drop day partitions older than the store's retention
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Run one SQL query (CloudTrail Lake's dialect) over the stores
    Query(QueryArgs),
    /// Look events up by attribute, as CloudTrail's Event history (`aws cloudtrail
    /// lookup-events`) does: newest first
    Lookup(LookupArgs),
    /// Saved queries, shared through the lake (`_trawl/queries/`): add, list, show, run, rm
    #[command(subcommand)]
    Saved(SavedCommand),
    /// The last statements run over the lake, with their status, duration and statistics, from
    /// its query log (`trawl lake set --query-log on` keeps one)
    History(HistoryArgs),
    /// Check stores against their integrity chains: every Delta commit recorded, every record
    /// linked to the one before (and signed, with --public-key), every live file there with
    /// its recorded size (and SHA-256, with --deep), no file no commit added. Exit 1 on any
    /// finding
    Verify(VerifyArgs),
    /// Check results delivered with `query --deliver`: each file against its SHA-256 in
    /// result_sign.json, and the sign file's signature. Exit 1 on anything invalid
    VerifyResults {
        /// The delivery's folder or its result_sign.json (a directory or s3://)
        location: String,
        /// The Ed25519 public key the results were signed with: 64 hex digits, or a file
        #[arg(long, value_name = "KEY|FILE", required = true)]
        public_key: String,
    },
    /// Validate a trail's log files against CloudTrail's digest files, offline, as `aws
    /// cloudtrail validate-logs` does: each digest's place, signature and link to the one
    /// before, each log file's SHA-256. Exit 1 on anything invalid
    ValidateTrail {
        /// The trail bucket (s3://bucket/[prefix/]) or a local mirror of it (digest signatures
        /// from the objects' metadata, or from NAME.sig files beside them)
        source: String,
        /// CloudTrail's public keys, as `aws cloudtrail list-public-keys` prints them
        #[arg(long, value_name = "FILE", required = true)]
        public_keys: PathBuf,
        /// Print every file, valid ones included
        #[arg(long)]
        verbose: bool,
        /// Print every file's result as JSON
        #[arg(long)]
        json: bool,
    },
    /// Is the record complete? Per account and region: hours with no events (--store) and no
    /// digest nor log file (--trail), digest chains that restart, log files digests list that are
    /// gone, log files no digest lists, days the store holds only part of; a heat map of account
    /// x day. Exit 1 when anything is found
    Gaps(GapsArgs),
    /// Signing keys for the integrity chain: `key generate FILE` writes one ($TRAWL_SIGNING_KEY
    /// names it to the commands that commit)
    #[command(subcommand)]
    Key(KeyCommand),
    /// Scheduled audits: run the packs' audits that are due, list them, show their SQL and runs
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The lake's own settings: show them, or set them
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Build a demo store from bundled real CloudTrail events and open the SQL shell on it
    /// (without a terminal: run three example audits and print them)
    Demo,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Only this store (repeatable) [default: every enabled store]
    #[arg(long = "store", value_name = "NAME")]
    pub(crate) stores: Vec<String>,
    /// Also read every live file and check its SHA-256 (reads the whole store)
    #[arg(long)]
    pub(crate) deep: bool,
    /// Check each record's signature against this Ed25519 public key: 64 hex digits, or a file
    /// holding them (as `key generate` writes FILE.pub)
    #[arg(long, value_name = "KEY|FILE")]
    pub(crate) public_key: Option<String>,
    /// Print the findings as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GapsArgs {
    /// The store whose events are counted hour by hour
    #[arg(long, value_name = "NAME")]
    pub(crate) store: Option<String>,
    /// The trail bucket (s3://bucket/[prefix/]) or a local mirror whose digests and log files are
    /// read
    #[arg(long, value_name = "SOURCE")]
    pub(crate) trail: Option<String>,
    /// From this time (RFC 3339 or YYYY-MM-DD) [default: the first hour found]
    #[arg(long, value_name = "TIME")]
    pub(crate) start: Option<String>,
    /// Before this time [default: after the last hour found]
    #[arg(long, value_name = "TIME")]
    pub(crate) end: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Write a new Ed25519 signing key to FILE (PKCS#8 PEM, readable by its owner only) and its
    /// public key to FILE.pub
    Generate { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SavedCommand {
    /// Save a query under a name: the SQL as an argument, from -f FILE, or from stdin
    Add {
        /// 1 to 128 letters, digits, '.', '_' and '-'
        name: String,
        /// One statement; $NAME placeholders are filled at each run (--param NAME=VALUE)
        sql: Option<String>,
        /// Read the SQL from a file
        #[arg(short, long, value_name = "FILE", conflicts_with = "sql")]
        file: Option<PathBuf>,
        /// What the query answers
        #[arg(long, value_name = "TEXT", default_value = "")]
        description: String,
        /// Replace a saved query of that name
        #[arg(long)]
        replace: bool,
    },
    /// List the saved queries
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a saved query's SQL
    Show { name: String },
    /// Run a saved query, as `query` runs SQL
    Run {
        name: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Remove a saved query
    Rm { name: String },
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Statements shown, the newest last
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N", value_parser = at_least(1))]
    pub(crate) limit: usize,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LakeCommand {
    /// Print the lake's settings
    Show,
    /// Change the lake's settings
    Set {
        /// Record every statement run over the lake (shell, query, audits) in its query log,
        /// the table trawl_query_log
        #[arg(long, value_name = "on|off", value_parser = on_off)]
        query_log: Option<bool>,
    },
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("'{s}' is not on or off")),
    }
}

#[derive(Debug, Args)]
pub(crate) struct LookupArgs {
    /// KEY=VALUE, with LookupEvents' keys: EventId, EventName, ReadOnly, Username,
    /// ResourceType, ResourceName, EventSource, AccessKeyId (repeatable: all must hold)
    #[arg(long = "attr", value_name = "KEY=VALUE")]
    pub(crate) attrs: Vec<String>,
    /// Events at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    pub(crate) start: Option<String>,
    /// Events before this time
    #[arg(long, value_name = "TIME")]
    pub(crate) end: Option<String>,
    /// The store [default: the lake's only store]
    #[arg(long)]
    pub(crate) store: Option<String>,
    /// Events at most, newest first
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) max_results: u64,
    /// table, or json as `aws cloudtrail lookup-events` prints it
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: LookupFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum LookupFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// The SQL; read from -f FILE or stdin when absent
    pub(crate) sql: Option<String>,
    /// Read the SQL from a file
    #[arg(short, long, value_name = "FILE", conflicts_with = "sql")]
    pub(crate) file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// How a statement runs and where its result goes: what `query` and `saved run` share.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Output format [default: from the extension of -o FILE (.csv, .json, .ndjson, .jsonl,
    /// .md, .parquet), else table]
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,
    /// Write results to a file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Deliver the result as CloudTrail Lake does, signed: gzipped CSV files and a
    /// result_sign.json under LOCATION/CloudTrail-Lake/Query/YYYY/MM/DD/QUERY_ID/ (a directory
    /// or s3://bucket/prefix), signed with the key $TRAWL_SIGNING_KEY names; prints the sign
    /// file's location
    #[arg(long, value_name = "LOCATION", conflicts_with_all = ["output", "format"])]
    pub(crate) deliver: Option<String>,
    /// Rows a table shows; the rest are counted, not kept (0: all) [default: 100 on a
    /// terminal, else all]
    #[arg(long, value_name = "N")]
    pub(crate) max_rows: Option<usize>,
    /// A placeholder value, as NAME=VALUE (fills $NAME in the SQL)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub(crate) params: Vec<String>,
    /// Raw trail logs as a table, as Athena reads them: URL (table `trail`) or NAME=URL; URL is
    /// s3://bucket/[prefix/] or a local directory; eventtime bounds prune the day prefixes read
    #[arg(long = "trail", value_name = "[NAME=]URL")]
    pub(crate) trails: Vec<String>,
    /// Only events at or after this time, in every store (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    pub(crate) from: Option<String>,
    /// Only events before this time, in every store (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    pub(crate) to: Option<String>,
    /// Memory for query execution in MiB; past it, sorts and aggregations spill to disk
    #[arg(long, value_name = "MIB", value_parser = at_least(1))]
    pub(crate) memory_mib: Option<usize>,
    /// Do not print statistics on stderr
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum OnOff {
    On,
    Off,
}

impl OnOff {
    pub(crate) fn is_on(self) -> bool {
        self == OnOff::On
    }
}

#[derive(Debug, Clone, Args)]
pub(crate) struct StoreSettings {
    #[arg(
        long,
        value_name = "DAYS",
        help = retention_help(),
        value_parser = clap::value_parser!(u32).range(i64::from(MIN_RETENTION_DAYS)..=i64::from(MAX_RETENTION_DAYS)),
    )]
    pub(crate) retention_days: Option<u32>,
    /// Termination protection: blocks `store delete` [default on create: on]
    #[arg(long, value_name = "ON|OFF")]
    pub(crate) termination_protection: Option<OnOff>,
    /// Advanced event selectors, as CloudTrail Lake's JSON array, or @FILE holding it
    #[arg(long, value_name = "JSON|@FILE")]
    pub(crate) selectors: Option<String>,
    /// Whether `ingest` may add events [default on create: on]
    #[arg(long, value_name = "ON|OFF")]
    pub(crate) ingestion: Option<OnOff>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
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
pub(crate) struct IngestArgs {
    /// Files and directories (.json, .json.gz, .jsonl, .ndjson; directories recursively), and
    /// s3://bucket/[prefix/] locations (trail layouts: AWSLogs/[o-id/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/)
    #[arg(required = true, value_name = "SOURCE")]
    pub(crate) sources: Vec<String>,
    /// Only events at or after this time (RFC 3339 or YYYY-MM-DD); trail layouts list only the
    /// day prefixes from this day on
    #[arg(long, value_name = "TIME")]
    pub(crate) start: Option<String>,
    /// Only events before this time (RFC 3339 or YYYY-MM-DD); trail layouts list only the day
    /// prefixes up to the day after it
    #[arg(long, value_name = "TIME")]
    pub(crate) end: Option<String>,
    /// Only this account's prefixes of trail layouts (repeatable)
    #[arg(long = "account", value_name = "ACCOUNT")]
    pub(crate) accounts: Vec<String>,
    /// Only this region's prefixes of trail layouts (repeatable)
    #[arg(long = "region", value_name = "REGION")]
    pub(crate) regions: Vec<String>,
    /// Objects fetched at once from S3
    #[arg(long, default_value_t = 32, value_name = "N", value_parser = at_least(1))]
    pub(crate) concurrency: usize,
    /// Keep running: look for new objects every SECS seconds (live ingestion) until interrupted
    #[arg(
        long,
        value_name = "SECS",
        num_args = 0..=1,
        default_missing_value = "60",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) follow: Option<u64>,
    /// After each round that stored events, run this pack's `on-commit` audits over the store
    /// (repeatable; as `audit run --pack`): findings to stdout, as `audit run` prints them
    #[arg(long = "audit", value_name = "PACK")]
    pub(crate) audits: Vec<String>,
    /// Send the alerts of those audits here too (repeatable; as `audit run --alert`)
    #[arg(long = "alert", value_name = "SINK", requires = "audits")]
    pub(crate) alerts: Vec<String>,
    /// The store (name or id)
    #[arg(long, default_value = "default")]
    pub(crate) store: String,
    /// Create the store when the lake has none of that name, with the settings below (a
    /// store name mistyped is otherwise an error, not a new store)
    #[arg(long)]
    pub(crate) create: bool,
    /// With --create: the new store's settings (`store update` changes an existing store's)
    #[command(flatten)]
    pub(crate) settings: StoreSettings,
    /// Store only the log files CloudTrail's digests validate (as `validate-trail` does, over
    /// each source: a trail bucket or a mirror); each source's digest is recorded in the ledger
    #[arg(long, requires = "public_keys")]
    pub(crate) validate: bool,
    /// With --validate: CloudTrail's public keys, as `aws cloudtrail list-public-keys` prints them
    #[arg(long, value_name = "FILE")]
    pub(crate) public_keys: Option<PathBuf>,
    /// Reject a whole file when any of its records is malformed, and exit 1
    #[arg(long)]
    pub(crate) strict: bool,
    /// Decode threads [default: one per core]
    #[arg(long, value_parser = at_least(1))]
    pub(crate) threads: Option<usize>,
    /// Decoded JSON per commit, in MiB (bounds memory)
    #[arg(long, default_value_t = 32, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) commit_mib: u64,
    /// Write a Delta checkpoint every N table versions (each commit of a run gets slower the
    /// more commits there are since the last one)
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) checkpoint_every: u64,
    /// The most text one file may decompress to, in MiB: a larger file (a gzip bomb) is
    /// reported and skipped
    #[arg(
        long,
        default_value_t = trawl_ingest::MAX_TEXT_BYTES >> 20,
        value_name = "MIB",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) max_file_mib: u64,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The store
    #[arg(long)]
    pub(crate) store: String,
    /// Only events at or after this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    pub(crate) start: Option<String>,
    /// Only events before this time (RFC 3339 or YYYY-MM-DD)
    #[arg(long, value_name = "TIME")]
    pub(crate) end: Option<String>,
    /// Output file [default: stdout, as '-']
    #[arg(short, long, value_name = "FILE", default_value = "-")]
    pub(crate) output: PathBuf,
}

/// What `audit run` and `audit daemon` share.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditRunArgs {
    /// An audit pack: `builtin`, `sigma` (SigmaHQ's CloudTrail rules), a TOML file, a
    /// directory of .sql audits or of Sigma rules (repeatable) [default: builtin]
    #[arg(long = "pack", value_name = "PACK")]
    pub(crate) packs: Vec<String>,
    /// Only this store (repeatable) [default: every enabled store]
    #[arg(long = "store", value_name = "NAME")]
    pub(crate) stores: Vec<String>,
    /// A first run reads only events from this time on (RFC 3339 or YYYY-MM-DD) [default:
    /// everything stored]
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// How findings are printed
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: AuditFormat,
    /// Also write each run's result under this directory or s3://bucket/prefix, as
    /// PACK/AUDIT/STORE/RUN_ID.EXT (its SHA-256 is recorded with the run)
    #[arg(long, value_name = "LOCATION")]
    pub(crate) out: Option<String>,
    /// The format of the result files
    #[arg(long, value_enum, default_value = "ndjson", requires = "out")]
    pub(crate) out_format: OutFormat,
    /// Also deliver each run's result signed, as `query --deliver` does: gzipped CSV and
    /// result_sign.json under LOCATION/CloudTrail-Lake/Query/YYYY/MM/DD/RUN_ID/, signed with the
    /// key $TRAWL_SIGNING_KEY names
    #[arg(long, value_name = "LOCATION")]
    pub(crate) deliver: Option<String>,
    /// Also send every audit's alerts here (repeatable): stdout, stderr, file:PATH,
    /// webhook:URL (signed with $TRAWL_WEBHOOK_SECRET), slack[:URL], pagerduty[:URL]
    /// ($TRAWL_PAGERDUTY_ROUTING_KEY), command:PROGRAM ARG...
    #[arg(long = "alert", value_name = "SINK")]
    pub(crate) alerts: Vec<String>,
    /// Findings recorded per run at most; rows that fire past it are counted in the run's
    /// record (and are in --out's file)
    #[arg(long, value_name = "N", default_value_t = trawl_audit::MAX_FINDINGS, value_parser = at_least(1))]
    pub(crate) max_findings: usize,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Run the audits that are due, each over the events committed since its last run (or its
    /// lookback period); findings to stdout. Exit 0: nothing found, 1: findings, 2: an audit
    /// failed or an alert was not delivered
    Run {
        #[command(flatten)]
        run: AuditRunArgs,
        /// Run every audit now, whatever its schedule, each over its own window
        #[arg(long)]
        once: bool,
    },
    /// Run each audit on its schedule until stopped (SIGINT, SIGTERM): what `audit run` does,
    /// again at every scheduled time
    Daemon {
        #[command(flatten)]
        run: AuditRunArgs,
        /// How often `on-commit` audits look for new commits
        #[arg(long, value_name = "PERIOD", default_value = "1m")]
        poll: String,
    },
    /// List the audits of the packs
    List {
        /// An audit pack (repeatable) [default: builtin]
        #[arg(long = "pack", value_name = "PACK")]
        packs: Vec<String>,
    },
    /// Print the SQL an audit runs
    Sql {
        /// The audit's id (or PACK/ID)
        audit: String,
        /// An audit pack (repeatable) [default: builtin]
        #[arg(long = "pack", value_name = "PACK")]
        packs: Vec<String>,
    },
    /// Show the recorded runs, newest first
    History {
        /// Only this audit's runs
        audit: Option<String>,
        /// Runs shown
        #[arg(long, default_value_t = 20, value_parser = at_least(1))]
        limit: usize,
    },
}

/// The format of `audit run --out` files.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OutFormat {
    Csv,
    Ndjson,
    Parquet,
}

/// How `audit run` prints findings.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum AuditFormat {
    /// One line per finding: severity, pack/audit, store, eventTime, the row
    Text,
    /// One JSON object per finding
    Ndjson,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RetentionCommand {
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
