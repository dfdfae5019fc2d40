//! A store at one version of its Delta log: what readers need of it, and what a commit is built
//! on. delta-rs stays behind this type: callers see versions, files and object stores.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deltalake::DeltaTable;
use deltalake::kernel::{Add, LogicalFileView};
use object_store::ObjectStore;
use serde::Deserialize;
use url::Url;

use crate::blocks::FileBlocks;
use crate::eds::DataFile;
use crate::schema::{EVENT_DATE, EVENT_TIME};
use crate::{Error, Result};

/// One version of an event data store's table.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(crate) table: DeltaTable,
    /// The store's name, for errors and block checksums.
    pub(crate) store: String,
}

impl Snapshot {
    pub(crate) fn new(table: DeltaTable, store: &str) -> Self {
        Self { table, store: store.to_owned() }
    }

    /// The table version (`None` before the table's creation was read).
    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// The URL of the table's root.
    pub fn root_url(&self) -> Url {
        self.table.log_store().root_url().clone()
    }

    /// The object store holding the table, its paths relative to the table's root.
    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        self.table.object_store()
    }

    /// The object store holding the table, its paths relative to the root of the URL's
    /// authority (the bucket, or `/` for a local lake): what a query engine registers under
    /// the URL's scheme and authority.
    pub fn root_objects(&self) -> Arc<dyn ObjectStore> {
        self.table.log_store().root_object_store(None)
    }

    /// The live data files, in partition order, with their statistics and block checksums.
    pub fn files(&self) -> Result<Vec<DataFile>> {
        let mut files = self
            .views()?
            .iter()
            // delta-rs gives a file's tags only through its whole `add` action.
            .map(|view| {
                #[allow(deprecated)]
                let add = view.add_action();
                data_file(&self.store, view.object_store_path(), &add)
            })
            .collect::<Result<Vec<_>>>()?;
        files.sort_by(|a, b| (a.date, &a.path).cmp(&(b.date, &b.path)));
        Ok(files)
    }

    /// `remove` actions, dated `removed_at` (ms), for the live files `take` selects. Each keeps
    /// its file's tags: the integrity chain records the SHA-256 of what is removed too.
    pub(crate) fn removals(
        &self,
        removed_at: i64,
        data_change: bool,
        take: impl Fn(&LogicalFileView) -> bool,
    ) -> Result<Vec<deltalake::kernel::Action>> {
        use deltalake::kernel::{Action, Remove};
        Ok(self
            .views()?
            .into_iter()
            .filter(|view| take(view))
            .map(|view| {
                #[allow(deprecated)]
                let tags = view.add_action().tags;
                Action::Remove(Remove {
                    deletion_timestamp: Some(removed_at),
                    tags,
                    ..view.remove_action(data_change)
                })
            })
            .collect())
    }

    /// The live files of the Delta snapshot, as delta-rs sees them.
    pub(crate) fn views(&self) -> Result<Vec<LogicalFileView>> {
        let delta = |e| crate::eds::delta_error(&self.store, e);
        let state = self.table.snapshot().map_err(delta)?;
        // `log_data` panics where `try_log_data` says why.
        Ok(state.snapshot().try_log_data().map_err(delta)?.iter().collect())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileStats {
    #[serde(default)]
    num_records: u64,
    #[serde(default)]
    min_values: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    max_values: serde_json::Map<String, serde_json::Value>,
}

/// A data file of `store` as its `add` action describes it; `path` is the action's path as an
/// object store path.
pub(crate) fn data_file(store: &str, path: object_store::path::Path, add: &Add) -> Result<DataFile> {
    let date = add
        .partition_values
        .get(EVENT_DATE)
        .cloned()
        .flatten()
        .and_then(|v| NaiveDate::parse_from_str(&v, "%Y-%m-%d").ok())
        .ok_or_else(|| Error::Delta {
            store: store.to_owned(),
            source: format!("data file {path} has no eventdate partition").into(),
        })?;
    let stats: Option<FileStats> = add.stats.as_deref().and_then(|s| serde_json::from_str(s).ok());
    let time_range = stats.as_ref().and_then(|s| {
        let min = s.min_values.get(EVENT_TIME)?.as_str()?;
        let max = s.max_values.get(EVENT_TIME)?.as_str()?;
        Some((parse_stat_time(min)?, parse_stat_time(max)?))
    });
    let size = u64::try_from(add.size).unwrap_or(0);
    let blocks = add
        .tags
        .as_ref()
        .and_then(|t| t.get(crate::blocks::TAG).cloned().flatten())
        .and_then(|tag| FileBlocks::parse(store, path.as_ref(), size, &tag))
        .map(Arc::new);
    Ok(DataFile { path, size, date, num_records: stats.map_or(0, |s| s.num_records), time_range, blocks })
}

/// The `eventdate` partition of a live file.
pub(crate) fn partition_date(view: &LogicalFileView) -> Option<NaiveDate> {
    let value = view.partition_values_map().get(EVENT_DATE).cloned().flatten()?;
    NaiveDate::parse_from_str(&value, "%Y-%m-%d").ok()
}

fn parse_stat_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc())
}
