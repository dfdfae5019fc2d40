//! The error type of trawl-query.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a query could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    /// A `$NAME` placeholder has no value.
    #[error("no value for the placeholder ${0} (give it with --param {0}=VALUE or \\set {0} VALUE)")]
    MissingParameter(String),
    /// Only `SELECT` (and `EXPLAIN` of one) may run.
    #[error("only SELECT queries are allowed on event data stores; this is {0}")]
    NotReadOnly(String),
    /// More or fewer than one statement.
    #[error("give exactly one SQL statement (found {0})")]
    StatementCount(usize),
    /// Trino syntax trawl does not support (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The lake could not be opened or read.
    #[error(transparent)]
    Store(#[from] trawl_store::Error),
    /// DataFusion failed to plan or run the query.
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// delta-rs failed to provide a table.
    #[error("delta table: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
}
