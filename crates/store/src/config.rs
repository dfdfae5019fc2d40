//! Event data store configuration, kept in `<store>/_trawl/store.json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::selectors::{AdvancedEventSelector, SelectorSet};
use crate::{Error, Result};

/// Shortest retention, in days.
pub const MIN_RETENTION_DAYS: u32 = 7;
/// Longest retention, in days (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3653;
/// Default retention, in days (seven years).
pub const DEFAULT_RETENTION_DAYS: u32 = 2557;
/// How long a deleted store stays restorable, in days.
pub const PENDING_DELETION_DAYS: i64 = 7;

/// What kind of events a store holds. Each store holds one category, as in Lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Category {
    /// CloudTrail management, data and network activity events.
    #[serde(rename = "CloudTrailEvents")]
    CloudTrailEvents,
}

/// Lifecycle status of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Queryable and writable.
    Enabled,
    /// Deleted: not queryable, restorable until purged.
    PendingDeletion,
}

/// The configuration of one event data store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreConfig {
    /// Stable identifier; SQL accepts it as a table name.
    pub id: Uuid,
    /// `[a-zA-Z0-9._-]{3,128}`, the store's directory in the lake.
    pub name: String,
    /// Event category.
    pub category: Category,
    /// Events whose `eventTime` is older than this many days are not kept.
    pub retention_days: u32,
    /// Blocks deletion while on.
    pub termination_protection: bool,
    /// Which events the store keeps; empty keeps all.
    #[serde(default)]
    pub advanced_event_selectors: Vec<AdvancedEventSelector>,
    /// Whether `ingest` may add events.
    pub ingestion_enabled: bool,
    /// Lifecycle status.
    pub status: Status,
    /// When the store was deleted (set while pending deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last configuration change.
    pub updated_at: DateTime<Utc>,
}

impl StoreConfig {
    /// A new enabled store with Lake's defaults: seven years of retention, termination
    /// protection on, all events selected, ingestion enabled.
    pub fn new(name: &str, now: DateTime<Utc>) -> Result<Self> {
        validate_name(name)?;
        Ok(Self {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            category: Category::CloudTrailEvents,
            retention_days: DEFAULT_RETENTION_DAYS,
            termination_protection: true,
            advanced_event_selectors: Vec::new(),
            ingestion_enabled: true,
            status: Status::Enabled,
            deleted_at: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// Checks every rule a stored configuration must satisfy.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        validate_retention(self.retention_days)?;
        SelectorSet::try_new(&self.advanced_event_selectors)?;
        Ok(())
    }

    /// The prepared selectors of this store.
    pub fn selector_set(&self) -> Result<SelectorSet> {
        SelectorSet::try_new(&self.advanced_event_selectors)
    }
}

/// Store names follow Lake's rule: 3 to 128 characters of `[a-zA-Z0-9._-]`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !(3..=128).contains(&name.len()) || !ok_chars {
        return Err(Error::InvalidConfig(format!(
            "store name '{name}' must be 3 to 128 characters of letters, digits, '.', '_' and '-'"
        )));
    }
    if name.starts_with('_') || name.starts_with('.') {
        return Err(Error::InvalidConfig(format!(
            "store name '{name}' must not start with '_' or '.' (reserved)"
        )));
    }
    Ok(())
}

/// Retention is 7 to 3653 days.
pub fn validate_retention(days: u32) -> Result<()> {
    if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
        return Err(Error::InvalidConfig(format!(
            "retention of {days} days is out of range ({MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["abc", "my-store_1.x", &"a".repeat(128)] {
            validate_name(ok).unwrap();
        }
        for bad in ["ab", "has space", "slash/x", &"a".repeat(129), "_trawl", "ünï"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retention_bounds() {
        assert!(validate_retention(6).is_err());
        validate_retention(7).unwrap();
        validate_retention(3653).unwrap();
        assert!(validate_retention(3654).is_err());
    }

    #[test]
    fn round_trips_as_json() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
        let c = StoreConfig::new("audit", now).unwrap();
        let back: StoreConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(c, back);
    }
}
