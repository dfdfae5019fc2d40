//! The error type of trawl-store.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the lake and its event data stores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    /// A location (the lake's, a trail bucket's) is neither a local path nor a supported URL,
    /// or its bucket does not exist.
    #[error("invalid location '{location}': {reason}")]
    InvalidLocation { location: String, reason: String },
    /// No lake at that local path.
    #[error("no lake at {0} (`trawl store create` or `trawl ingest` makes one there)")]
    NoLake(String),
    /// No event data store of the lake at `lake` has that name or id.
    #[error("no event data store named '{name}' in the lake at {lake} (see `trawl store list`)")]
    StoreNotFound { name: String, lake: String },
    /// A store with that name already exists.
    #[error("an event data store named '{0}' already exists")]
    StoreExists(String),
    /// The store is pending deletion: only `restore` works on it.
    #[error("event data store '{0}' is pending deletion; `trawl store restore {0}` brings it back")]
    PendingDeletion(String),
    /// The store is not pending deletion, so there is nothing to restore.
    #[error("event data store '{0}' is not pending deletion")]
    NotPendingDeletion(String),
    /// Termination protection blocks deletion.
    #[error(
        "event data store '{0}' has termination protection on; \
         `trawl store update {0} --termination-protection off` first"
    )]
    TerminationProtected(String),
    /// A store setting is out of range or malformed.
    #[error("invalid store configuration: {0}")]
    InvalidConfig(String),
    /// Rows handed to the data file writer do not fit the event schema, or an encoding thread
    /// failed.
    #[error("writing data files: {0}")]
    Write(String),
    /// A data file of a store does not hold what the store's schema says it must.
    #[error("data file {file} of event data store '{store}': {reason}")]
    DataFile { store: String, file: String, reason: String },
    /// No saved query of the lake at `lake` has that name.
    #[error("no saved query named '{name}' in the lake at {lake} (see `trawl saved list`)")]
    SavedQueryNotFound { name: String, lake: String },
    /// A saved query of that name exists, and replacing it was not asked for.
    #[error("a saved query named '{0}' already exists (--replace replaces it)")]
    SavedQueryExists(String),
    /// A saved query's name is not a plain file name.
    #[error("invalid saved query: {0}")]
    InvalidSavedQuery(String),
    /// A store's integrity chain cannot be read or extended.
    #[error("the integrity chain of event data store '{store}': {reason}")]
    Chain { store: String, reason: String },
    /// A signing or public key is unusable.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// An advanced event selector is malformed.
    #[error("invalid advanced event selector: {0}")]
    InvalidSelector(String),
    /// A metadata file under `_trawl/` could not be parsed.
    #[error("corrupt metadata file '{path}': {source}")]
    CorruptMetadata { path: String, source: serde_json::Error },
    /// The object store refused the credentials or the request.
    #[error("access denied to {location}: {reason}")]
    AccessDenied { location: String, reason: String },
    /// S3 answered with an error.
    #[error("S3 error at {location}: {reason}")]
    S3 { location: String, reason: String },
    /// The AWS settings (environment, profile files) are unusable.
    #[error("AWS configuration: {0}")]
    AwsConfig(String),
    /// Another writer committed to the store after `version`, which a commit was built on:
    /// nothing was committed, and the commit must be checked again against the new version.
    #[error("another writer committed to the store after version {version}")]
    Conflict { version: u64 },
    /// A commit the caller needs is no longer in the store's Delta log (log files older than the
    /// log retention are cleaned up).
    #[error("event data store '{store}': version {version} is no longer in its Delta log")]
    LogGap { store: String, version: u64 },
    /// Object store I/O failed.
    #[error(transparent)]
    ObjectStore(#[from] object_store::Error),
    /// The store's Delta table could not be read or written.
    #[error("the Delta table of event data store '{store}': {source}")]
    Delta { store: String, source: Box<dyn std::error::Error + Send + Sync> },
    /// One of the lake's record tables (the audit log `_trawl/audits/`, the query log
    /// `_trawl/query-log/`) could not be read or written.
    #[error("the {records} at {location}: {source}")]
    Records { records: &'static str, location: String, source: Box<dyn std::error::Error + Send + Sync> },
    /// A Parquet file could not be read or written.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// An Arrow kernel failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl Error {
    /// This error with an object store failure restated for `url` (see [`crate::s3::explain`]).
    pub fn at(self, url: &url::Url) -> Self {
        match self {
            Error::ObjectStore(e) => crate::s3::explain(e, url),
            e => e,
        }
    }
}
