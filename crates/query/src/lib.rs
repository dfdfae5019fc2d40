//! trawl-query: SQL over a lake of event data stores, in CloudTrail Lake's dialect.
//!
//! [`Lake::open`] builds one DataFusion `SessionContext` in which every enabled event data store
//! is a table, under its name and under its id. [`Lake::sql`] accepts Lake's SQL: store ids as
//! bare table names, `$NAME` placeholders, camelCase identifiers (the schema is lower case and
//! DataFusion folds unquoted identifiers), string literals compared with timestamps. Only
//! `SELECT` runs: anything that writes, changes settings or reads outside the lake is refused.
//!
//! A `Lake` is shared by many tasks (`Arc<Lake>`): [`Lake::start`] plans a statement on a state
//! of its own, so statements running at once keep their own [`QueryStats`];
//! [`Running::stream`] yields the batches as they are computed, and [`Running::collect`] gathers
//! them. [`split`] cuts a text into statements.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let root = dir.path().to_str().unwrap();
//! # let now = chrono::Utc::now();
//! # let store = trawl_store::Lake::open(root)?
//! #     .create_store(trawl_store::StoreConfig::new("audit", now)?)
//! #     .await?;
//! # let file = dir.path().join("trail.json");
//! # let time = now.format("%Y-%m-%dT%H:%M:%SZ");
//! # std::fs::write(&file, format!(r#"{{"Records":[
//! #   {{"eventTime":"{time}","eventName":"DeleteBucket","eventSource":"s3.amazonaws.com","eventID":"e1"}},
//! #   {{"eventTime":"{time}","eventName":"DeleteBucket","eventSource":"s3.amazonaws.com","eventID":"e2"}}]}}"#))?;
//! # let options = trawl_ingest::IngestOptions::new(now);
//! # let sources = [file.display().to_string()];
//! # trawl_ingest::ingest(&store, &sources, &options, &trawl_ingest::NoProgress).await?;
//! // A lake with a store named `audit`:
//! let lake = trawl_query::Lake::open(root).await?;
//! let (batches, stats) = lake
//!     .collect("SELECT eventName, count(*) AS n FROM audit GROUP BY eventName ORDER BY n DESC LIMIT 10")
//!     .await?;
//! assert_eq!(batches[0].num_rows(), 1);
//! println!("{} events scanned", stats.events_scanned);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod coercion;
mod coop;
mod error;
mod functions;
mod journal;
mod lookup;
mod pruning;
mod records;
pub mod sql;
mod stats;
mod trail;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

pub use error::{Error, Result, closest};
pub use functions::trino_type;
pub use sql::placeholders;
pub use sql::split::{Piece, Split, split};
pub use stats::QueryStats;
pub use trail::{Decoder, TrailTable};

/// A store as SQL sees it.
#[derive(Debug, Clone)]
pub struct StoreTable {
    /// The store's name.
    pub name: String,
    /// The store's id.
    pub id: String,
}

/// `provider` showing only the events inside `bounds`.
fn bounded(
    name: &str,
    provider: Arc<dyn datafusion::datasource::TableProvider>,
    bounds: TimeBounds,
) -> Result<Arc<dyn datafusion::datasource::TableProvider>> {
    let Some(bound) = time_filter(bounds) else { return Ok(provider) };
    let source = datafusion::datasource::provider_as_source(provider);
    let plan = LogicalPlanBuilder::scan(name, source, None)?.filter(bound)?.build()?;
    Ok(Arc::new(datafusion::catalog::view::ViewTable::new(plan, None)))
}

/// Options of [`Lake::open_with`].
#[derive(Debug, Clone, Default)]
pub struct LakeOptions {
    /// Memory for query execution, in bytes; operators spill to disk past it. `None`: no limit.
    pub memory_limit: Option<usize>,
    /// Every store shows only events with `from <= eventTime < to`.
    pub time_bounds: TimeBounds,
}

/// A lake opened for SQL.
pub struct Lake {
    ctx: SessionContext,
    stores: Vec<StoreTable>,
    /// Stores that could not be opened (name or id), with why.
    broken: Vec<(String, String)>,
    /// The local directory of a lake that does not exist.
    missing: Option<String>,
    /// Every column and nested field path of the stores, lower case, for suggestions.
    columns: Vec<String>,
    params: HashMap<String, String>,
    /// Raw trail tables: (name, location).
    trails: Vec<(String, String)>,
    time_bounds: TimeBounds,
    /// Where each store's files are, and its live files, by store name: what a [`Window`] reads.
    files: HashMap<String, (ObjectStoreUrl, Path, Vec<trawl_store::DataFile>)>,
    /// The records of the statements run, when asked for ([`Lake::record_queries`]).
    journal: Option<Arc<journal::Journal>>,
    /// Where the lake is, for errors that name a store it does not have.
    location: String,
}

/// What a statement started with [`Lake::start_in`] reads as `$EDS_ID`: some files of a store
/// (the new events of an audit's window), or its events in a time range.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// The store's name.
    pub store: String,
    /// The files to read; `None`: every live file.
    pub files: Option<Vec<trawl_store::DataFile>>,
    /// Only events with `from <= eventTime`.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events with `eventTime < to`.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

/// The session's settings, on `base`, for a memory limit of `memory_limit` bytes if any.
fn session_config(base: SessionConfig, memory_limit: Option<usize>) -> SessionConfig {
    let mut config =
        base.with_information_schema(true).set_bool("datafusion.execution.parquet.pushdown_filters", true);
    let Some(bytes) = memory_limit else { return config };
    // Each sort partition sets aside this much for merging its spilled runs, and the merge
    // cannot spill: DataFusion's 10 MiB each failed every ORDER BY under a limit below
    // partitions x 10 MiB. A quarter of the limit, shared by the partitions.
    let partitions = config.target_partitions().max(1);
    config = config.with_sort_spill_reservation_bytes((bytes / (4 * partitions)).clamp(64 << 10, 10 << 20));
    // A sort holds at least one batch whole, and a batch of 8,192 events with their eventjson
    // is several MiB: batches of one row per 64 KiB of the limit.
    config = config.with_batch_size((bytes >> 16).clamp(128, 8192));
    // DataFusion 55.2's RepartitionExec can wait forever when it spills under a memory limit
    // (apache/datafusion#24883, fixed after 55.2 by #24891): no plan under a limit has one.
    // Scans still split their files over the cores and aggregate partially on each; the final
    // steps of aggregations, joins, sorts and windows run on one.
    for option in
        ["repartition_aggregations", "repartition_joins", "repartition_sorts", "repartition_windows"]
    {
        config = config.set_bool(&format!("datafusion.optimizer.{option}"), false);
    }
    config.set_bool("datafusion.optimizer.enable_round_robin_repartition", false)
}

/// The session's cache of Parquet metadata (DataFusion's default: 50 MB).
const METADATA_CACHE_BYTES: usize = 256 << 20;

type TimeBounds = (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>);

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake").field("stores", &self.stores).finish_non_exhaustive()
    }
}

impl Lake {
    /// Opens the lake at `location` with default options.
    pub async fn open(location: &str) -> Result<Self> {
        Self::open_with(location, &LakeOptions::default()).await
    }

    /// Opens the lake at `location`, registering every enabled store.
    pub async fn open_with(location: &str, options: &LakeOptions) -> Result<Self> {
        // No lake there: raw trail tables and queries of no store still run; a store named is
        // the missing lake's error.
        let (lake, missing) = match trawl_store::Lake::open(location) {
            Ok(lake) => (Some(lake), None),
            Err(trawl_store::Error::NoLake(path)) => (None, Some(path)),
            Err(e) => return Err(e.into()),
        };
        let config = session_config(SessionConfig::new(), options.memory_limit);
        // Room for the metadata of 2,048 data files (about three years of a store of 10M events
        // a year, two files a day): map lookups read it before their scans, which find it here.
        let mut runtime = RuntimeEnvBuilder::new().with_metadata_cache_limit(METADATA_CACHE_BYTES);
        if let Some(bytes) = options.memory_limit {
            runtime = runtime.with_memory_limit(bytes, 1.0);
        }
        let mut analyzer_rules = datafusion::optimizer::Analyzer::new().rules;
        analyzer_rules.insert(0, Arc::new(coercion::StringBoolComparison));
        let state = datafusion::execution::SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime.build_arc()?)
            .with_default_features()
            .with_analyzer_rules(analyzer_rules)
            .with_physical_optimizer_rule(Arc::new(coop::YieldingProducers))
            .build();
        let ctx = SessionContext::new_with_state(state);
        register_functions(&ctx);
        let mut stores = Vec::new();
        let mut columns = Vec::new();
        let mut store_files = HashMap::new();
        let mut verified: HashMap<ObjectStoreUrl, (Arc<dyn object_store::ObjectStore>, HashMap<Path, _>)> =
            HashMap::new();
        // A store that cannot be read is left out, and named when a query asks for it: one
        // broken store does not keep the others from answering.
        let (configs, mut broken) = match &lake {
            Some(lake) => lake.listing().await?,
            None => Default::default(),
        };
        for config in configs {
            let Some(lake) = &lake else { break };
            if config.status != trawl_store::Status::Enabled {
                continue;
            }
            let eds = lake.store(&config.name).await?;
            let snapshot = match eds.snapshot().await {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    broken.push((config.name.clone(), e.to_string()));
                    broken.push((config.id.to_string(), e.to_string()));
                    continue;
                }
            };
            let root = snapshot.root_url();
            let store_url = ObjectStoreUrl::parse(&root[..url::Position::BeforePath])?;
            let files = snapshot.files()?;
            let root = Path::from_url_path(root.path())
                .map_err(|e| datafusion::error::DataFusionError::from(object_store::Error::from(e)))?;
            // Every read of a data file is checked against the checksums written with it.
            let (_, checked) = verified
                .entry(store_url.clone())
                .or_insert_with(|| (snapshot.root_objects(), HashMap::new()));
            for file in &files {
                if let Some(blocks) = &file.blocks {
                    checked.insert(root.parts().chain(file.path.parts()).collect(), blocks.clone());
                }
            }
            store_files.insert(config.name.clone(), (store_url.clone(), root.clone(), files.clone()));
            let provider = pruning::StoreProvider::new(store_url, root, files);
            let provider = bounded(&config.name, Arc::new(provider), options.time_bounds)?;
            if columns.is_empty() {
                for field in provider.schema().fields() {
                    field_paths(&mut columns, field.name(), field.data_type());
                }
            }
            ctx.register_table(config.name.as_str(), provider.clone())?;
            ctx.register_table(config.id.to_string().as_str(), provider)?;
            stores.push(StoreTable { name: config.name.clone(), id: config.id.to_string() });
        }
        if let Some(lake) = &lake {
            records::register(&ctx, lake).await?;
        }
        for (url, (inner, files)) in verified {
            ctx.register_object_store(
                url.as_ref(),
                Arc::new(trawl_store::blocks::VerifiedStore::new(inner, files)),
            );
        }
        Ok(Self {
            ctx,
            stores,
            broken,
            missing,
            columns,
            params: HashMap::new(),
            trails: Vec::new(),
            time_bounds: options.time_bounds,
            files: store_files,
            journal: None,
            location: lake.as_ref().map_or_else(|| location.to_owned(), |l| l.url().to_string()),
        })
    }

    /// Registers the raw CloudTrail log files under `location` (`s3://bucket/prefix/` or a local
    /// directory; trail layouts are pruned by the query's `eventtime` bounds) as the table
    /// `name`, with the schema of a store. `decode` turns a file into events:
    /// `trawl_ingest::decode_file`.
    pub fn register_trail(&mut self, name: &str, location: &str, decode: Decoder) -> Result<()> {
        if self.stores.iter().any(|s| s.name.eq_ignore_ascii_case(name)) {
            return Err(Error::NameTaken(format!(
                "'{name}' is already an event data store; name the trail table otherwise"
            )));
        }
        let table = bounded(name, Arc::new(TrailTable::open(location, decode)?), self.time_bounds)?;
        self.ctx.deregister_table(name)?;
        self.ctx.register_table(name, table)?;
        self.trails.retain(|(n, _)| n != name);
        self.trails.push((name.to_owned(), location.to_owned()));
        Ok(())
    }

    /// The raw trail tables registered: (name, location).
    pub fn trails(&self) -> &[(String, String)] {
        &self.trails
    }

    /// The stores registered as tables.
    pub fn stores(&self) -> &[StoreTable] {
        &self.stores
    }

    /// The DataFusion context, for callers that need more than [`Lake::sql`].
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Every column and nested field path of the stores (`useridentity.sessioncontext.attributes`).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The `$NAME` placeholder values set.
    pub fn params(&self) -> &HashMap<String, String> {
        &self.params
    }

    /// The stores that could not be opened, with why (each by name and by id).
    pub fn broken(&self) -> &[(String, String)] {
        &self.broken
    }

    /// The error for a store `name` that does not exist, with the closest store name; or for a
    /// store that cannot be read, with why.
    pub fn unknown_store(&self, name: &str) -> Error {
        if let Some(path) = &self.missing {
            return Error::Store(trawl_store::Error::NoLake(path.clone()));
        }
        if let Some((name, reason)) = self.broken.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Error::BrokenStore { name: name.clone(), reason: reason.clone() };
        }
        let names = self.stores.iter().flat_map(|s| [s.name.as_str(), s.id.as_str()]);
        let stores = self.stores.iter().map(|s| s.name.clone()).collect();
        Error::UnknownStore {
            name: name.to_owned(),
            lake: self.location.clone(),
            suggestion: error::closest(name, names),
            stores,
        }
    }

    /// A planning error in the user's terms: unknown stores and columns with the closest match.
    fn explain(&self, e: datafusion::error::DataFusionError) -> Error {
        use datafusion::common::SchemaError;
        use datafusion::error::DataFusionError;
        match e.find_root() {
            DataFusionError::SchemaError(schema_error, _)
                if let SchemaError::FieldNotFound { field, valid_fields } = schema_error.as_ref() =>
            {
                let name = field.flat_name();
                let mut candidates: Vec<&str> = self.columns.iter().map(String::as_str).collect();
                candidates.extend(valid_fields.iter().map(|c| c.name()));
                let unqualified = match &field.relation {
                    Some(t) if self.stores.iter().any(|s| s.name == t.table() || s.id == t.table()) => {
                        field.name()
                    }
                    _ => name.as_str(),
                };
                // A store column named in a query that does not read a store has no better name.
                let suggestion =
                    error::closest(unqualified, candidates).filter(|s| !s.eq_ignore_ascii_case(unqualified));
                Error::UnknownColumn { name: unqualified.to_owned(), suggestion }
            }
            DataFusionError::Plan(msg)
                if msg.starts_with("Field ") && msg.ends_with(" not found in struct") =>
            {
                let name = &msg["Field ".len()..msg.len() - " not found in struct".len()];
                let fields = self.columns.iter().filter_map(|c| c.rsplit_once('.').map(|(_, f)| f));
                Error::UnknownColumn { name: name.to_owned(), suggestion: error::closest(name, fields) }
            }
            DataFusionError::Plan(msg) if msg.starts_with("table '") && msg.ends_with("' not found") => {
                let full = &msg["table '".len()..msg.len() - "' not found".len()];
                let name = full.rsplit('.').next().unwrap_or(full);
                self.unknown_store(name)
            }
            _ => Error::DataFusion(e),
        }
    }

    /// Keeps a record of every statement run from now on (its text, `user`, `host`, `source`,
    /// outcome and statistics) for the lake's query log; [`Lake::take_query_records`] hands
    /// them over. A statement is recorded when it fails to plan, or when its batches are
    /// dropped: `ok` read to the end, `error`, or `cancelled`.
    pub fn record_queries(&mut self, user: &str, host: &str, source: &str) {
        self.journal = Some(Arc::new(journal::Journal::new(user, host, source)));
    }

    /// The records kept since the last call (none unless [`Lake::record_queries`] was called).
    pub fn take_query_records(&self) -> Vec<trawl_store::records::QueryRecord> {
        self.journal.as_ref().map(|j| j.take()).unwrap_or_default()
    }

    /// Sets a `$NAME` placeholder value.
    pub fn set_param(&mut self, name: &str, value: &str) {
        self.params.insert(name.to_owned(), value.to_owned());
    }

    /// Plans one read-only statement in Lake's dialect.
    pub async fn sql(&self, text: &str) -> Result<DataFrame> {
        self.sql_with(text, &self.params).await
    }

    /// [`Lake::sql`] with these `$NAME` values.
    async fn sql_with(&self, text: &str, params: &HashMap<String, String>) -> Result<DataFrame> {
        let tables: Vec<String> = self
            .stores
            .iter()
            .flat_map(|s| [s.name.clone(), s.id.clone()])
            .chain(self.broken.iter().map(|(name, _)| name.clone()))
            .collect();
        let pieces = sql::split::split(text).pieces;
        let text = match pieces.as_slice() {
            [sql::split::Piece::Sql { text, .. }] => text,
            [sql::split::Piece::Meta { text, .. }] => {
                return Err(Error::Unsupported(format!("\\{text}: meta-commands run in the shell only")));
            }
            _ => return Err(Error::StatementCount(pieces.len())),
        };
        let sql = sql::text::rewrite(text, params, &tables)?;
        // Each statement plans on a state of its own, whose scans count what they skip.
        let mut state = self.ctx.state();
        state.config_mut().set_extension(Arc::new(pruning::ScanTally::default()));
        let mut statements =
            datafusion::sql::parser::DFParser::parse_sql_with_dialect(&sql, &sql::dialect::LakeDialect)?;
        if statements.len() != 1 {
            return Err(Error::StatementCount(statements.len()));
        }
        let mut statement = statements.pop_front().expect("one statement");
        check_read_only(&statement)?;
        match &mut statement {
            DfStatement::Statement(s) => sql::ast::rewrite(s)?,
            DfStatement::Explain(e) => {
                if let DfStatement::Statement(s) = e.statement.as_mut() {
                    sql::ast::rewrite(s)?
                }
            }
            _ => {}
        }
        let plan = state.statement_to_plan(statement).await.map_err(|e| self.explain(e))?;
        Ok(DataFrame::new(state, plan))
    }

    /// Runs one statement to completion; returns its batches and statistics.
    pub async fn collect(&self, sql: &str) -> Result<(Vec<RecordBatch>, QueryStats)> {
        self.start(sql).await?.collect().await
    }

    /// Plans one statement for execution: run it with [`Running::stream`] or
    /// [`Running::collect`] (dropping either cancels it) and watch it with [`Running::stats`].
    /// Statements started at once on one `Lake` (shared as `Arc<Lake>`) each keep their own
    /// statistics.
    pub async fn start(&self, sql: &str) -> Result<Running> {
        self.start_with(sql, &self.params).await
    }

    /// [`Lake::start`], reading `window` as `$EDS_ID`: an audit run's view of its store.
    pub async fn start_in(&self, sql: &str, window: &Window) -> Result<Running> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let (url, root, live) =
            self.files.get(&window.store).ok_or_else(|| self.unknown_store(&window.store))?;
        let files = window.files.clone().unwrap_or_else(|| live.clone());
        // A name of its own, registered while the statement is planned: windows planned at once
        // never see each other.
        let name = format!("trawl_window_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let provider = pruning::StoreProvider::new(url.clone(), root.clone(), files);
        self.ctx
            .register_table(name.as_str(), bounded(&name, Arc::new(provider), (window.from, window.to))?)?;
        let mut params = self.params.clone();
        params.insert("EDS_ID".to_owned(), name.clone());
        let running = self.start_with(sql, &params).await;
        self.ctx.deregister_table(name.as_str())?;
        running
    }

    async fn start_with(&self, sql: &str, params: &HashMap<String, String>) -> Result<Running> {
        let started = Instant::now();
        let entry = self.journal.as_ref().map(|journal| journal::Entry {
            journal: journal.clone(),
            sql: sql.into(),
            time: chrono::Utc::now(),
        });
        let planned = async {
            let (state, plan) = self.sql_with(sql, params).await?.into_parts();
            let tally = state.config().get_extension::<pruning::ScanTally>().unwrap_or_default();
            let plan = state.create_physical_plan(&plan).await?;
            Ok::<_, Error>((state, plan, tally))
        };
        match planned.await {
            Ok((state, plan, tally)) => Ok(Running { plan, task: state.task_ctx(), tally, started, entry }),
            Err(e) => {
                if let Some(entry) = entry {
                    entry.journal.push(entry.time, &entry.sql, Err(e.to_string()), None, false);
                }
                Err(e)
            }
        }
    }
}

/// A planned statement. Cloning it is cheap: clones share the plan and its metrics.
#[derive(Clone)]
pub struct Running {
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<datafusion::execution::TaskContext>,
    tally: Arc<pruning::ScanTally>,
    started: Instant,
    /// Where the statement is recorded, if anywhere.
    entry: Option<journal::Entry>,
}

impl Running {
    /// The statistics so far: the figures grow as the query runs.
    pub fn stats(&self) -> QueryStats {
        let mut stats = QueryStats::from_plan(&self.plan);
        // Files skipped before any was opened count as pruned too.
        stats.files_pruned += self.tally.pruned.load(Ordering::Relaxed);
        stats.bytes_scanned += self.tally.bytes.load(Ordering::Relaxed);

        stats.execution_time = self.started.elapsed();
        stats
    }

    /// The schema of the results.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// Runs the statement; its batches come as they are computed, so a result of any size is
    /// never held whole. Dropping the stream cancels the query.
    pub fn stream(&self) -> Result<Batches> {
        let inner = match execute_stream(self.plan.clone(), self.task.clone()) {
            Ok(inner) => inner,
            Err(e) => {
                if let Some(entry) = &self.entry {
                    entry.journal.push(
                        entry.time,
                        &entry.sql,
                        Err(e.to_string()),
                        Some(&self.stats()),
                        false,
                    );
                }
                return Err(e.into());
            }
        };
        let record = self.entry.as_ref().map(|_| (self.clone(), None));
        Ok(Batches { inner, record })
    }

    /// Runs to completion; returns the batches and the final statistics.
    pub async fn collect(&self) -> Result<(Vec<RecordBatch>, QueryStats)> {
        let batches = self.stream()?.try_collect().await?;
        Ok((batches, self.stats()))
    }
}

/// The batches of a running statement, as they come.
pub struct Batches {
    inner: SendableRecordBatchStream,
    /// The statement to record when this is dropped, and how it ended (`None`: not yet).
    record: Option<(Running, Option<std::result::Result<(), String>>)>,
}

impl Drop for Batches {
    fn drop(&mut self) {
        if let Some((running, ended)) = self.record.take()
            && let Some(entry) = &running.entry
        {
            let cancelled = ended.is_none();
            let outcome = ended.unwrap_or(Ok(()));
            entry.journal.push(entry.time, &entry.sql, outcome, Some(&running.stats()), cancelled);
        }
    }
}

impl Batches {
    /// The schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches").field("schema", &self.inner.schema()).finish_non_exhaustive()
    }
}

impl futures::Stream for Batches {
    type Item = Result<RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        polled.map(|next| {
            let ended = match &next {
                None => Some(Ok(())),
                Some(Err(e)) => Some(Err(e.to_string())),
                Some(Ok(_)) => None,
            };
            if let (Some(ended), Some((_, slot))) = (ended, self.record.as_mut())
                && slot.is_none()
            {
                *slot = Some(ended);
            }
            next.map(|batch| Ok(batch?))
        })
    }
}

/// Struct, list and map columns as compact JSON text (null fields left out), for formats whose
/// cells are text.
pub fn nested_as_json(batch: &RecordBatch) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    if !batch.schema().fields().iter().any(|f| f.data_type().is_nested()) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<arrow::array::ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let single = RecordBatch::try_new(
            Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
                "v",
                field.data_type().clone(),
                true,
            )])),
            vec![column.clone()],
        )?;
        let mut buf = Vec::new();
        let mut w = arrow::json::ArrayWriter::new(&mut buf);
        w.write(&single)?;
        w.finish()?;
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = if buf.is_empty() {
            Vec::new()
        } else {
            serde_json::from_slice(&buf).map_err(|e| arrow::error::ArrowError::JsonError(e.to_string()))?
        };
        let text: arrow::array::StringArray =
            rows.iter().map(|r| r.get("v").map(|v| v.to_string())).collect();
        fields.push(arrow::datatypes::Field::new(field.name(), arrow::datatypes::DataType::Utf8, true));
        columns.push(Arc::new(text));
    }
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}

/// Registers the Trino functions (the pack's, and Trino's names for DataFusion's) on `ctx`.
pub(crate) fn register_functions(ctx: &SessionContext) {
    ctx.add_analyzer_rule(Arc::new(functions::TryRule));
    for f in functions::scalars() {
        ctx.register_udf(f);
    }
    for f in functions::aggregate::all() {
        ctx.register_udaf(f);
    }
    // Trino names for DataFusion functions: arbitrary(x) is any_value(x), split(s, d) is
    // string_to_array(s, d), approx_percentile(x, p) is approx_percentile_cont(x, p).
    let state = ctx.state();
    for (name, trino) in [("any_value", "arbitrary"), ("approx_percentile_cont", "approx_percentile")] {
        if let Some(f) = state.aggregate_functions().get(name) {
            ctx.register_udaf(f.as_ref().clone().with_aliases([trino]));
        }
    }
    if let Some(split) = state.scalar_functions().get("string_to_array") {
        ctx.register_udf(split.as_ref().clone().with_aliases(["split"]));
    }
    // Trino's lambda functions are DataFusion's higher-order array functions.
    for (name, trino) in [("array_transform", "transform"), ("array_filter", "filter")] {
        if let Some(f) = state.higher_order_functions().get(name) {
            ctx.register_higher_order_function(Arc::new(f.as_ref().clone().with_aliases([trino])));
        }
    }
}

/// A column and, for structs, every nested field path under it (`useridentity.arn`).
fn field_paths(out: &mut Vec<String>, path: &str, t: &arrow::datatypes::DataType) {
    out.push(path.to_owned());
    if let arrow::datatypes::DataType::Struct(fields) = t {
        for f in fields {
            field_paths(out, &format!("{path}.{}", f.name()), f.data_type());
        }
    }
}

/// `eventtime >= from AND eventtime < to`, for the bounds given.
fn time_filter((from, to): TimeBounds) -> Option<Expr> {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{col, lit};
    let at = |t: chrono::DateTime<chrono::Utc>| {
        lit(ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into())))
    };
    let time = trawl_store::schema::EVENT_TIME;
    let lower = from.map(|t| col(time).gt_eq(at(t)));
    let upper = to.map(|t| col(time).lt(at(t)));
    match (lower, upper) {
        (Some(l), Some(u)) => Some(l.and(u)),
        (l, u) => l.or(u),
    }
}

fn check_read_only(statement: &DfStatement) -> Result<()> {
    let refuse = |what: &str| Err(Error::NotReadOnly(what.to_owned()));
    match statement {
        DfStatement::Statement(s) => match s.as_ref() {
            Statement::Query(_) => Ok(()),
            Statement::Explain { statement, .. } if matches!(statement.as_ref(), Statement::Query(_)) => {
                Ok(())
            }
            // What there is to query, as datafusion-cli and duckdb answer them.
            Statement::ShowTables { .. } | Statement::ShowColumns { .. } | Statement::ExplainTable { .. } => {
                Ok(())
            }
            other => {
                let text = other.to_string();
                let kind = text.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                refuse(&format!("a {kind} statement"))
            }
        },
        DfStatement::Explain(e) => match e.statement.as_ref() {
            DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_)) => Ok(()),
            _ => refuse("an EXPLAIN of something other than a SELECT"),
        },
        DfStatement::CreateExternalTable(_) => refuse("CREATE EXTERNAL TABLE"),
        DfStatement::CopyTo(_) => refuse("COPY"),
        _ => refuse("a statement that is not a query"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// apache/datafusion#24883: under a memory limit a grouped aggregation on two partitions
    /// could wait forever (RepartitionExec's spill pool with two open files), fixed by #24891
    /// after 55.2. With trawl's settings under a limit, the query of the issue, twelve times,
    /// each bounded: none may hang, and the plan has no RepartitionExec. (With DataFusion's own
    /// settings the third attempt hung.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_aggregation_under_a_memory_limit_never_hangs() {
        for attempt in 0..12 {
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_pool(std::sync::Arc::new(GreedyMemoryPool::new(2 << 20)))
                .build_arc()
                .unwrap();
            let base = SessionConfig::new().with_target_partitions(2);
            let config = super::session_config(base, Some(2 << 20)).with_batch_size(64);
            let ctx = SessionContext::new_with_config_rt(config, runtime);
            let sql = "select g, count(distinct trace_id) as n from (select v % 13 as g, \
                       concat('trace-', cast(v % 337 as varchar), '-', repeat('x', 24)) as trace_id \
                       from generate_series(1, 40000) as s(v)) group by g";
            if attempt == 0 {
                let plan = ctx.sql(&format!("EXPLAIN {sql}")).await.unwrap().collect().await.unwrap();
                let text = arrow::util::pretty::pretty_format_batches(&plan).unwrap().to_string();
                assert!(!text.contains("RepartitionExec"), "{text}");
            }
            let run = async { ctx.sql(sql).await?.collect().await };
            match tokio::time::timeout(Duration::from_secs(20), run).await {
                Ok(Ok(batches)) => assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 13),
                // Running out of memory is an answer; waiting forever is not.
                Ok(Err(_)) => {}
                Err(_) => panic!("attempt {attempt} hung for 20 s"),
            }
        }
    }

    /// A lake shared by statements running at once: each keeps its own figures (one tally per
    /// `Lake`, reset by every `start`, gave the first statement the second's pruning).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn statements_at_once_keep_their_own_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let now = chrono::Utc::now();
        let config = trawl_store::StoreConfig::new("audit", now).unwrap();
        let store = trawl_store::Lake::create(root).unwrap().create_store(config).await.unwrap();
        // Twenty days, five events each: a file a day.
        let mut records = Vec::new();
        for day in 0..20 {
            for n in 0..5 {
                let time = (now - chrono::Duration::days(day)).format("%Y-%m-%dT%H:%M:%SZ");
                records.push(format!(
                    r#"{{"eventTime":"{time}","eventName":"Call{n}","eventSource":"s3.amazonaws.com","eventID":"e{day}-{n}"}}"#
                ));
            }
        }
        let file = dir.path().join("trail.json");
        std::fs::write(&file, format!(r#"{{"Records":[{}]}}"#, records.join(","))).unwrap();
        let options = trawl_ingest::IngestOptions::new(now);
        let sources = [file.display().to_string()];
        trawl_ingest::ingest(&store, &sources, &options, &trawl_ingest::NoProgress).await.unwrap();

        let lake = Arc::new(super::Lake::open(root).await.unwrap());
        let since = (now - chrono::Duration::days(2)).format("%Y-%m-%d");
        let narrow = format!("SELECT count(*) FROM audit WHERE eventtime >= TIMESTAMP '{since} 00:00:00'");
        let wide = "SELECT eventname, eventid FROM audit";
        let timeless = |mut s: super::QueryStats| {
            s.execution_time = Duration::ZERO;
            s
        };
        let (counted, narrow_alone) = lake.collect(&narrow).await.unwrap();
        let narrow_alone = timeless(narrow_alone);
        // Events matched are the events that passed the filters, not the one row of the count.
        let counted =
            counted[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0);
        assert_eq!(narrow_alone.events_matched, counted as u64, "{narrow_alone:?}");
        assert!(counted > 1);
        let wide_alone = timeless(lake.collect(wide).await.unwrap().1);
        assert_eq!(narrow_alone.files_pruned, 17, "{narrow_alone:?}");
        assert_eq!((wide_alone.files_pruned, wide_alone.events_matched), (0, 100), "{wide_alone:?}");
        // Both planned before either runs, then run at once from two tasks.
        let a = lake.start(&narrow).await.unwrap();
        let b = lake.start(wide).await.unwrap();
        let (a, b) = tokio::join!(
            tokio::spawn(async move { a.collect().await.map(|r| r.1) }),
            tokio::spawn(async move { b.collect().await.map(|r| r.1) })
        );
        assert_eq!(timeless(a.unwrap().unwrap()), narrow_alone);
        assert_eq!(timeless(b.unwrap().unwrap()), wide_alone);
    }
}
