//! trawl-store: the on-disk contract of trawl.
//!
//! ```text
//! <lake>/                        a local directory or s3://bucket/prefix
//!   <store-name>/                one event data store = one Delta table
//!     _delta_log/                the only truth about which files are live
//!     eventdate=YYYY-MM-DD/      UTC date of eventTime
//!       part-*.zstd.parquet      sorted by eventtime, zstd, page index, bloom filters
//!     _trawl/store.json          the store's configuration
//!     _trawl/ledger/*.json       source objects whose events are all committed
//!     _trawl/chain/<v>.json      the integrity chain: a digest record per Delta commit
//!   _trawl/lake.json             the lake's settings
//!   _trawl/queries/NAME.json     saved queries ([`SavedQuery`])
//! ```
//!
//! [`Lake`] finds, creates, deletes and restores stores; [`EventDataStore`] reads figures and
//! files, writes and commits new files ([`StoreWriter`]), removes expired partitions and
//! vacuums; a [`Snapshot`] is one version of a store (its live files and where they are), and
//! every commit goes through one function. delta-rs stays inside this crate. The Arrow schema is in [`schema`], the selectors in [`selectors`], the retention
//! arithmetic in [`retention`], the block checksums every read of a data file is checked
//! against in [`blocks`].

#![warn(missing_docs)]

pub mod blocks;
pub mod chain;
mod clock;
mod config;
mod eds;
mod error;
mod lake;
pub mod optimize;
pub mod records;
pub mod retention;
pub mod s3;
mod saved;
pub mod schema;
pub mod selectors;
pub mod signed;
mod snapshot;
pub mod time;
pub mod trail;
mod writer;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{
    Category, DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, PENDING_DELETION_DAYS, Status,
    StoreConfig, validate_name, validate_retention,
};
pub use eds::{
    CommitOutcome, DataFile, EventDataStore, LedgerEntry, RetentionReport, SourceId, StoreSummary,
    by_partition,
};
pub use error::{Error, Result};
pub use lake::{Lake, LakeSettings};
pub use saved::{SavedQuery, validate_query_name};
pub use snapshot::Snapshot;
pub use writer::StoreWriter;
