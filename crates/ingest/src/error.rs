//! The error type of trawl-ingest.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an ingest or export failed as a whole. Bad records are not errors: they are reported
/// in the [`crate::IngestReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    /// A source path is missing or unreadable.
    #[error("{path}: {reason}")]
    Source { path: String, reason: String },
    /// A task of the pipeline panicked or was cancelled: a defect of trawl, not of the input.
    #[error("the ingest's {task} task failed (a defect of trawl; please report it): {reason}")]
    Task { task: &'static str, reason: String },
    /// The store refuses new events.
    #[error(
        "event data store '{0}' has ingestion stopped; `trawl store update {0} --ingestion on` starts it"
    )]
    IngestionStopped(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] trawl_store::Error),
    /// Building batches failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing output failed.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl Error {
    /// This error with an object store failure of the store at `url` restated (see
    /// [`trawl_store::Error::at`]).
    pub fn at(self, url: &url::Url) -> Self {
        match self {
            Error::Store(e) => Error::Store(e.at(url)),
            e => e,
        }
    }
}
