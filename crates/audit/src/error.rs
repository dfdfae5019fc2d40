//! The error type of trawl-audit.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with audit packs and runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A pack file or one of its audits is malformed.
    #[error("{file}: {reason}")]
    Pack {
        /// The pack's file (or directory, or the built-in pack's name).
        file: String,
        /// What is wrong, naming the audit and the field.
        reason: String,
    },
    /// A pack file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No audit of the packs has this id.
    #[error("no audit '{id}' in the packs{}", suggestion.as_ref().map(|s| format!("; did you mean '{s}'?")).unwrap_or_default())]
    UnknownAudit {
        /// The id asked for.
        id: String,
        /// The closest id.
        suggestion: Option<String>,
    },
    /// The lake or a store failed.
    #[error(transparent)]
    Store(#[from] trawl_store::Error),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] trawl_query::Error),
    /// Results could not be turned into findings.
    #[error("reading the results of audit '{audit}': {reason}")]
    Results {
        /// The audit.
        audit: String,
        /// Why.
        reason: String,
    },
}
