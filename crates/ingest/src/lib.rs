//! trawl-ingest: CloudTrail files into event data stores, and back out.
//!
//! ```text
//! files/dirs ─ discover ─ ledger? ─┬─ worker: read ─ gunzip ─ frame ─ check ─ build ─┐
//!                                  └─ worker: ...                                     ├─ writer:
//!     waves of whole files ─ dedupe (eventid, account) ─ sort by eventtime per day ─ Parquet ─ Delta commit ─ ledger
//! ```
//!
//! Framing ([`framing`](crate)) finds events in every shape CloudTrail files come in and
//! reports malformed records precisely, keeping the good ones around them. Checking applies
//! the store's advanced event selectors and retention. Building turns each event into a row of
//! the Lake schema ([`trawl_store::schema`]), with `eventjson` keeping the original.

#![warn(missing_docs)]

mod columns;
mod decode;
mod error;
mod event;
mod export;
mod framing;
mod ingest;
mod json;
mod source;

pub use decode::Problem;
pub use error::{Error, Result};
pub use event::event_key;
pub use export::{ExportReport, export};
pub use ingest::{IngestOptions, IngestReport, NoProgress, Progress, ingest};
pub use source::{Origin, SourceFile, Sources, discover, discover_all, is_url};

#[doc(hidden)]
pub mod bench {
    //! Entry points for the criterion benchmarks; not a stable API.
    use trawl_store::selectors::SelectorSet;

    /// Frames, checks and builds one file's text into a record batch of the event schema, as
    /// ingest does for each file (all events kept).
    pub fn decode_text(text: &str) -> arrow::array::RecordBatch {
        let selectors = SelectorSet::default();
        let rules = crate::event::Rules {
            selectors: &selectors,
            retention_cutoff: chrono::DateTime::<chrono::Utc>::MIN_UTC,
            window: (None, None),
        };
        crate::decode::decode_text("bench", text, &rules).0.finish().0
    }
}
