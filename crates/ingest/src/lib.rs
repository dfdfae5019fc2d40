//! trawl-ingest: CloudTrail files into event data stores, and back out.
//!
//! ```text
//! files, dirs, s3:// ─ discover (trail layouts pruned) ─ delivery order ─ ledger?
//!     ─ units of ~512 KiB of files ─ fetch (32 objects at once)
//!     ─┬─ blocking pool: gunzip ─ frame ─ check ─ build one batch per unit ─┐
//!      └─ ...                                                               ├─ writer:
//!     waves of whole files ─ dedupe (eventid, account) ─┬─ task: sort by eventtime per day ─ Parquet ─ Delta commit ─ ledger
//!                                                        └─ next wave meanwhile
//! ```
//!
//! Framing ([`framing`](crate)) finds events in every shape CloudTrail files come in and
//! reports malformed records precisely, keeping the good ones around them. Checking applies
//! the store's advanced event selectors and retention. Building turns each event into a row of
//! the Lake schema ([`trawl_store::schema`]), with `eventjson` keeping the original.

#![warn(missing_docs)]

mod columns;
mod decode;
pub mod digest;
mod error;
mod event;
mod export;
mod framing;
mod ingest;
mod json;
#[cfg(test)]
mod mutations;
mod segment;
mod source;

pub use decode::Problem;
pub use error::{Error, Result};
pub use event::event_key;
pub use export::{ExportReport, export};
pub use ingest::{IngestOptions, IngestReport, NoProgress, Progress, ingest, trail_key};
pub use source::{MAX_TEXT_BYTES, Origin, Skipped, SourceFile, Sources, discover, discover_all, is_url};

/// Decodes one raw CloudTrail file (gzip or not, any framing) into a batch of the event schema,
/// as raw trail tables read them: every CloudTrail event, Insights events and digests left out,
/// malformed records skipped. `Ok(None)` when the file holds no event; `Err` names why the file
/// cannot be read at all.
pub fn decode_file(
    name: &str,
    raw: Vec<u8>,
) -> std::result::Result<Option<arrow::array::RecordBatch>, String> {
    let text = decode::FileText::of(raw, source::MAX_TEXT_BYTES)?;
    let selectors = trawl_store::selectors::SelectorSet::default();
    let rules = event::Rules {
        selectors: &selectors,
        retention_cutoff: chrono::DateTime::<chrono::Utc>::MIN_UTC,
        window: (None, None),
    };
    let (mut builder, _, _) = decode::decode_text(name, &text, &rules);
    Ok((builder.rows() > 0).then(|| builder.finish().0))
}

#[doc(hidden)]
pub mod bench {
    //! Entry points for the criterion benchmarks; not a stable API.
    use trawl_store::selectors::SelectorSet;

    use crate::framing::{Framer, Visitor};
    use crate::json::Entries;

    /// The real Stratus Red Team events of the repository's `tests/fixtures`, in file order: the
    /// input of the ingest and pruning benchmarks.
    pub fn stratus_events() -> Vec<serde_json::Value> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/stratus-red-team-detonation-logs");
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .expect("the fixtures directory")
            .map(|e| e.expect("a fixture entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .flat_map(|p| {
                let text = std::fs::read(p).expect("a readable fixture");
                serde_json::from_slice::<Vec<serde_json::Value>>(&text).expect("a JSON array of events")
            })
            .collect()
    }

    /// Frames, checks and builds one file's text into a record batch of the event schema, as
    /// ingest does for each file (all events kept).
    pub fn decode_text(text: &str) -> arrow::array::RecordBatch {
        let selectors = SelectorSet::default();
        let text = crate::decode::FileText::from(text.to_owned());
        crate::decode::decode_text("bench", &text, &crate::event::Rules::keep_all(&selectors)).0.finish().0
    }

    /// Frames one file's text only: finds its events and their top-level entries. Returns the
    /// number of events.
    pub fn frame(text: &str) -> usize {
        struct Count(usize);
        impl Visitor for Count {
            fn event(&mut self, _: usize, _: usize, _: &str, _: &Entries<'_>) {
                self.0 += 1;
            }
            fn problem(&mut self, _: Option<usize>, _: usize, _: String) {}
            fn digest(&mut self) {}
        }
        let mut count = Count(0);
        Framer::run(text, &[], crate::framing::Place::default(), &mut count);
        count.0
    }

    /// Normalizes one event the way its columns are filled: every top-level value to Lake's
    /// string form (scalars as text, nested values as compact JSON), and the whole event
    /// minified for `eventjson`. Returns the bytes produced.
    pub fn normalize(event: &str) -> usize {
        let entries: Entries<'_> = serde_json::from_str(event).expect("an event object");
        let values: usize =
            entries.0.iter().filter_map(|(_, v)| crate::json::to_lake_string(*v)).map(|s| s.len()).sum();
        values + crate::json::minify(event).len()
    }
}
