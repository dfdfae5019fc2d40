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
    /// A placeholder in table position has a value that is not a store name or id.
    #[error("${name} stands for a store after FROM or JOIN, and '{value}' is not a store name or id")]
    InvalidParameter { name: String, value: String },
    /// Only `SELECT` (and `EXPLAIN` of one) may run.
    #[error(
        "only SELECT queries are allowed on event data stores; this is {0} (DESCRIBE STORE, SHOW TABLES and the shell's \\d describe them)"
    )]
    NotReadOnly(String),
    /// More or fewer than one statement.
    #[error("give exactly one SQL statement (found {0})")]
    StatementCount(usize),
    /// No store by that name or id: the closest name, else the names there are.
    #[error("unknown event data store '{name}' in the lake at {lake}{}", closest_or_all(.suggestion, .stores))]
    UnknownStore { name: String, lake: String, suggestion: Option<String>, stores: Vec<String> },
    /// The store exists but cannot be read.
    #[error("event data store '{name}' cannot be read: {reason}")]
    BrokenStore { name: String, reason: String },
    /// No column (or nested field) by that name.
    #[error("unknown column '{name}'{}", did_you_mean(.suggestion))]
    UnknownColumn { name: String, suggestion: Option<String> },
    /// A raw trail table's location is not one trawl can read.
    #[error("trail location '{location}': {reason}")]
    TrailLocation { location: String, reason: String },
    /// A name is taken.
    #[error("{0}")]
    NameTaken(String),
    /// Trino syntax trawl does not support (yet).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The lake could not be opened or read.
    #[error(transparent)]
    Store(#[from] trawl_store::Error),
    /// A data file of a store is not as it was written (changed, cut short or gone): the query
    /// stops rather than answer from what is left.
    #[error("{detail}")]
    CorruptStore { store: String, file: String, detail: String },
    /// DataFusion failed to plan or run the query.
    #[error(transparent)]
    DataFusion(datafusion::error::DataFusionError),
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        match trawl_store::blocks::Corrupt::find(&e) {
            Some(c) => Error::CorruptStore {
                store: c.store().to_owned(),
                file: c.file().to_owned(),
                detail: c.to_string(),
            },
            None => Error::DataFusion(e),
        }
    }
}

fn closest_or_all(suggestion: &Option<String>, stores: &[String]) -> String {
    match (suggestion, stores) {
        (Some(_), _) => did_you_mean(suggestion),
        (None, []) => "; the lake has no event data stores".to_owned(),
        (None, names) => format!("; the stores are {}", names.join(", ")),
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map_or_else(String::new, |s| format!("; did you mean '{s}'?"))
}

/// The candidate closest to `word` by edit distance (ignoring case), if it is close enough to be
/// a likely typo: at most a third of the word's length, and at least 1, edits away.
pub fn closest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    let word = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c.to_owned())
}

/// Edits (insertions, deletions, substitutions and swaps of neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_matches() {
        let names = ["eventname", "eventsource", "useridentity.arn", "errorcode"];
        assert_eq!(closest("eventnme", names).as_deref(), Some("eventname"));
        assert_eq!(closest("EventSorce", names).as_deref(), Some("eventsource"));
        assert_eq!(closest("useridentity.ar", names).as_deref(), Some("useridentity.arn"));
        assert_eq!(closest("evnetname", names).as_deref(), Some("eventname"));
        assert_eq!(closest("region", names), None);
    }
}
