//! Saved queries: named statements a team shares, one JSON object each under
//! `<lake>/_trawl/queries/NAME.json`, as CloudTrail Lake's console saves queries.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::lake::Lake;
use crate::{Error, Result};

const QUERIES_DIR: &str = "_trawl/queries";

/// A named statement, with its `$NAME` placeholders left for the run to fill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedQuery {
    /// 1 to 128 letters, digits, '.', '_' and '-'; not starting with '.'.
    pub name: String,
    /// What the query answers, for whoever lists them.
    #[serde(default)]
    pub description: String,
    /// The statement.
    pub sql: String,
    /// Who saved it (the user name of the machine).
    #[serde(default)]
    pub saved_by: String,
    /// When it was saved.
    pub saved_at: DateTime<Utc>,
}

/// Refuses a name that is not a plain file name.
pub fn validate_query_name(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !(1..=128).contains(&name.len()) || !ok_chars || name.starts_with('.') {
        return Err(Error::InvalidSavedQuery(format!(
            "name '{name}' must be 1 to 128 characters of letters, digits, '.', '_' and '-', not starting with '.'"
        )));
    }
    Ok(())
}

fn query_path(name: &str) -> Path {
    Path::from(format!("{QUERIES_DIR}/{name}.json"))
}

impl Lake {
    /// The lake's saved queries, sorted by name.
    pub async fn saved_queries(&self) -> Result<Vec<SavedQuery>> {
        let objects: Vec<_> = self
            .objects()
            .list(Some(&Path::from(QUERIES_DIR)))
            .try_collect()
            .await
            .map_err(|e| self.explain(e))?;
        let mut queries = Vec::with_capacity(objects.len());
        for meta in objects.iter().filter(|m| m.location.extension() == Some("json")) {
            queries.push(self.read_saved(&meta.location).await?);
        }
        queries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(queries)
    }

    /// The saved query named `name`.
    pub async fn saved_query(&self, name: &str) -> Result<SavedQuery> {
        validate_query_name(name)?;
        match self.read_saved(&query_path(name)).await {
            Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => {
                Err(Error::SavedQueryNotFound { name: name.to_owned(), lake: self.location() })
            }
            other => other,
        }
    }

    async fn read_saved(&self, path: &Path) -> Result<SavedQuery> {
        let bytes = match self.objects().get(path).await {
            Ok(got) => got.bytes().await.map_err(|e| self.explain(e))?,
            Err(e @ object_store::Error::NotFound { .. }) => return Err(Error::ObjectStore(e)),
            Err(e) => return Err(self.explain(e)),
        };
        serde_json::from_slice(&bytes)
            .map_err(|source| Error::CorruptMetadata { path: format!("{}{path}", self.url()), source })
    }

    /// Saves `query`; one of that name already saved is [`Error::SavedQueryExists`] unless
    /// `replace`. Two people saving the same new name at once: one of them is told it exists.
    pub async fn save_query(&self, query: &SavedQuery, replace: bool) -> Result<()> {
        validate_query_name(&query.name)?;
        let body = PutPayload::from(serde_json::to_vec_pretty(query).expect("a saved query serializes"));
        let mode = if replace { PutMode::Overwrite } else { PutMode::Create };
        let opts = PutOptions { mode, ..Default::default() };
        match self.objects().put_opts(&query_path(&query.name), body, opts).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(Error::SavedQueryExists(query.name.clone()))
            }
            Err(e) => Err(self.explain(e)),
        }
    }

    /// Removes the saved query named `name`.
    pub async fn remove_saved_query(&self, name: &str) -> Result<()> {
        // Named in the error when it is not there: a delete of nothing succeeds on S3.
        self.saved_query(name).await?;
        self.objects().delete(&query_path(name)).await.map_err(|e| self.explain(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, sql: &str) -> SavedQuery {
        SavedQuery {
            name: name.into(),
            description: String::new(),
            sql: sql.into(),
            saved_by: "alice".into(),
            saved_at: DateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn saved_queries_are_shared_through_the_lake() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::create(dir.path().to_str().unwrap()).unwrap();
        assert!(lake.saved_queries().await.unwrap().is_empty());
        lake.save_query(&query("b-deletes", "SELECT 2"), false).await.unwrap();
        lake.save_query(&query("a-logins", "SELECT 1"), false).await.unwrap();
        let names: Vec<String> = lake.saved_queries().await.unwrap().into_iter().map(|q| q.name).collect();
        assert_eq!(names, ["a-logins", "b-deletes"]);

        let again = lake.save_query(&query("a-logins", "SELECT 3"), false).await;
        assert!(matches!(again, Err(Error::SavedQueryExists(_))), "{again:?}");
        lake.save_query(&query("a-logins", "SELECT 3"), true).await.unwrap();
        assert_eq!(lake.saved_query("a-logins").await.unwrap().sql, "SELECT 3");

        lake.remove_saved_query("a-logins").await.unwrap();
        let gone = lake.saved_query("a-logins").await;
        assert!(matches!(gone, Err(Error::SavedQueryNotFound { .. })), "{gone:?}");
        assert!(matches!(lake.remove_saved_query("a-logins").await, Err(Error::SavedQueryNotFound { .. })));
        assert!(matches!(lake.saved_query("../x").await, Err(Error::InvalidSavedQuery(_))));
    }
}
