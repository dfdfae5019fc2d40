//! The statements a [`crate::Lake`] runs, kept for the lake's query log when the caller asks.
//!
//! trawl-query never writes to the lake: it keeps each finished statement's record (who, what,
//! when, what came of it, Lake's statistics) until the caller takes them and appends them to
//! the query log (`trawl_store::records`), one commit per batch.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use trawl_store::records::QueryRecord;

/// Who runs the statements of a lake, and their records so far.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    user: String,
    host: String,
    source: String,
    records: Mutex<Vec<QueryRecord>>,
}

impl Journal {
    pub(crate) fn new(user: &str, host: &str, source: &str) -> Self {
        Self { user: user.into(), host: host.into(), source: source.into(), records: Mutex::default() }
    }

    /// Keeps the record of a statement that started at `time`.
    pub(crate) fn push(
        &self,
        time: DateTime<Utc>,
        sql: &str,
        outcome: Result<(), String>,
        stats: Option<&crate::QueryStats>,
        cancelled: bool,
    ) {
        let stats = stats.cloned().unwrap_or_default();
        let record = QueryRecord {
            time,
            user: self.user.clone(),
            host: self.host.clone(),
            source: self.source.clone(),
            sql: sql.to_owned(),
            outcome: match (&outcome, cancelled) {
                (Err(_), _) => "error",
                (Ok(()), true) => "cancelled",
                (Ok(()), false) => "ok",
            },
            error: outcome.err(),
            duration_ms: u64::try_from(stats.execution_time.as_millis()).unwrap_or(u64::MAX),
            events_scanned: stats.events_scanned,
            events_matched: stats.events_matched,
            bytes_scanned: stats.bytes_scanned,
            files_scanned: stats.files_scanned,
            files_pruned: stats.files_pruned,
        };
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(record);
    }

    pub(crate) fn take(&self) -> Vec<QueryRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// A running statement's part in the journal: recorded when its batches are dropped.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) journal: Arc<Journal>,
    pub(crate) sql: Arc<str>,
    pub(crate) time: DateTime<Utc>,
}
