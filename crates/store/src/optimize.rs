//! Compaction: the small files of a partition (from many small commits: `--follow`, hourly
//! cron ingests, backfills) rewritten into few, sorted by `eventtime`, in one Delta commit that
//! adds no event (`dataChange: false`, so audits do not read the rewritten events as new).
//!
//! Crash-safe as every commit is: the new files are uploaded first and are in no commit until
//! the one commit that swaps them for the old; a process killed before it leaves uploads in no
//! commit, which a vacuum takes after a day. The old files stay in storage for readers of older
//! versions until a vacuum after [`REWRITE_GRACE`]. Idempotent: a partition holds at most one
//! small file afterwards, and a run finds nothing more to do.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, RecordBatch, TimestampMicrosecondArray};
use deltalake::kernel::Action;
use deltalake::protocol::DeltaOperation;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::clock::Clock;
use crate::eds::{DataFile, EventDataStore, by_partition};
use crate::schema::{EVENT_TIME, event_schema, file_schema};
use crate::{Error, Result};

/// A file smaller than this is compacted with the other small files of its partition.
pub const SMALL_FILE_BYTES: u64 = 64 << 20;
/// The most bytes of small files rewritten together (read whole into memory, several times their
/// size): a partition of more is rewritten as several groups.
pub(crate) const GROUP_BYTES: u64 = 128 << 20;
/// How long files a rewrite removed stay in storage, for queries that started on the version
/// before it.
pub const REWRITE_GRACE: chrono::Duration = chrono::Duration::days(1);

/// What an `optimize` did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OptimizeReport {
    /// Partitions rewritten.
    pub partitions: usize,
    /// Files the rewrite removed.
    pub files_removed: usize,
    /// Files it added.
    pub files_added: usize,
    /// Bytes of the removed files.
    pub bytes_removed: u64,
    /// Bytes of the added files.
    pub bytes_added: u64,
    /// Events rewritten.
    pub events: u64,
    /// The version of the rewrite's commit; none when there was nothing to do.
    pub version: Option<u64>,
    /// Files of earlier rewrites and retention deleted from storage now.
    pub files_vacuumed: usize,
}

impl EventDataStore {
    /// Rewrites the small files of each partition into files near the writer's target size,
    /// in one commit; then deletes from storage what earlier rewrites removed more than
    /// [`REWRITE_GRACE`] ago.
    pub async fn optimize(&self, clock: Arc<dyn Clock>) -> Result<OptimizeReport> {
        let mut snapshot = self.snapshot().await?;
        let files = snapshot.files()?;
        let objects = snapshot.objects();
        let mut report = OptimizeReport::default();
        let mut rewritten: Vec<DataFile> = Vec::new();
        let mut adds = Vec::new();
        for (_, partition) in by_partition(&files) {
            let small: Vec<DataFile> = partition.into_iter().filter(|f| f.size < SMALL_FILE_BYTES).collect();
            let mut partition_done = false;
            for group in groups(small) {
                let mut writer = self.writer();
                let (batches, rows) = self.sorted_rows(&snapshot, &group).await?;
                let refs: Vec<&RecordBatch> = batches.iter().collect();
                writer.write_rows(&refs, &rows)?;
                report.events += writer.rows();
                let mut added = writer.upload(objects.clone()).await?;
                for add in &mut added {
                    // The same events, rearranged: no new data for readers of changes.
                    add.data_change = false;
                }
                report.bytes_added += added.iter().map(|a| u64::try_from(a.size).unwrap_or(0)).sum::<u64>();
                adds.extend(added);
                rewritten.extend(group);
                partition_done = true;
            }
            report.partitions += usize::from(partition_done);
        }
        if rewritten.is_empty() {
            report.files_vacuumed = self.vacuum_removed(&snapshot, clock).await?;
            return Ok(report);
        }
        report.files_removed = rewritten.len();
        report.files_added = adds.len();
        report.bytes_removed = rewritten.iter().map(|f| f.size).sum();
        let gone: HashSet<String> = rewritten.iter().map(|f| f.path.to_string()).collect();
        let uploaded: Vec<object_store::path::Path> =
            adds.iter().map(|a| object_store::path::Path::from(a.path.as_str())).collect();
        // Appends of a concurrent ingest leave the rewrite valid: it is committed again on top of
        // them. A removal of one of its files (retention) does not: the uploads are dropped.
        let version = loop {
            let removed_at = clock.now().timestamp_millis();
            let removes = snapshot
                .removals(removed_at, false, |view| gone.contains(view.object_store_path().as_ref()))?;
            if removes.len() != gone.len() {
                for path in &uploaded {
                    let _ = objects.delete(path).await;
                }
                return Err(Error::Conflict { version: snapshot.version().unwrap_or(0) });
            }
            let mut actions = removes;
            actions.extend(adds.iter().cloned().map(Action::Add));
            let operation =
                DeltaOperation::Optimize { predicate: None, target_size: SMALL_FILE_BYTES as i64 };
            let metadata = [
                ("trawl.operation", serde_json::json!("optimize")),
                ("trawl.events", serde_json::json!(report.events)),
            ];
            match self.commit_actions(&mut snapshot, actions, operation, metadata).await {
                Ok(version) => break version,
                Err(Error::Conflict { .. }) => self.refresh(&mut snapshot).await?,
                Err(e) => return Err(e),
            }
        };
        report.version = Some(version);
        report.files_vacuumed = self.vacuum_removed(&snapshot, clock).await?;
        Ok(report)
    }

    /// Every row of `files` (one partition), with its `eventdate`, as the writer takes them:
    /// the batches, and the rows in `eventtime` order.
    async fn sorted_rows(
        &self,
        snapshot: &crate::Snapshot,
        files: &[DataFile],
    ) -> Result<(Vec<RecordBatch>, Vec<(usize, usize)>)> {
        let file_schema = file_schema();
        let columns: Vec<&str> = file_schema.fields().iter().map(|f| f.name().as_str()).collect();
        let read: Vec<RecordBatch> = self.read_files(snapshot, files, &columns).try_collect().await?;
        let events = event_schema();
        let day = crate::schema::epoch_day(files[0].date);
        let mut batches = Vec::with_capacity(read.len());
        for batch in &read {
            let mut arrays: Vec<ArrayRef> = Vec::with_capacity(events.fields().len());
            for (field, array) in events.fields().iter().zip(batch.columns()) {
                // The file's types, as Parquet gives them back, are cast to the event schema's
                // (time zone names, map entry names).
                let array = if array.data_type() == field.data_type() {
                    array.clone()
                } else {
                    arrow::compute::cast(array, field.data_type())?
                };
                arrays.push(array);
            }
            arrays.push(Arc::new(Date32Array::from(vec![day; batch.num_rows()])));
            batches.push(RecordBatch::try_new(events.clone(), arrays)?);
        }
        let time = events.index_of(EVENT_TIME).map_err(|e| Error::Write(e.to_string()))?;
        let mut rows: Vec<(i64, usize, usize)> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let times = batch
                .column(time)
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()
                .ok_or_else(|| Error::Write("eventtime is not a timestamp column".into()))?;
            rows.extend((0..batch.num_rows()).map(|r| (times.value(r), b, r)));
        }
        rows.sort_unstable();
        Ok((batches, rows.into_iter().map(|(_, b, r)| (b, r)).collect()))
    }
}

/// The small files of a partition in groups of at most [`GROUP_BYTES`], each of two files or
/// more (a file alone is left as it is).
fn groups(mut small: Vec<DataFile>) -> Vec<Vec<DataFile>> {
    small.sort_by_key(|f| f.time_range.map(|r| r.0));
    let mut groups: Vec<Vec<DataFile>> = Vec::new();
    let mut current: Vec<DataFile> = Vec::new();
    let mut bytes = 0;
    for file in small {
        if !current.is_empty() && bytes + file.size > GROUP_BYTES {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += file.size;
        current.push(file);
    }
    groups.push(current);
    groups.retain(|g| g.len() > 1);
    groups
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn file(size: u64, minute: i64) -> DataFile {
        let t = chrono::DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute);
        DataFile {
            path: object_store::path::Path::from(format!("f{minute}")),
            size,
            date: t.date_naive(),
            num_records: 1,
            time_range: Some((t, t)),
            blocks: None,
        }
    }

    #[test]
    fn small_files_are_grouped_up_to_the_limit_and_a_lone_file_is_left() {
        assert!(groups(vec![file(10, 0)]).is_empty());
        let big = GROUP_BYTES / 2 + 1;
        let grouped = groups(vec![file(big, 3), file(big, 1), file(10, 2), file(10, 4)]);
        let minutes: Vec<Vec<String>> =
            grouped.iter().map(|g| g.iter().map(|f| f.path.to_string()).collect()).collect();
        assert_eq!(minutes, [vec!["f1", "f2"], vec!["f3", "f4"]]);
    }
}
