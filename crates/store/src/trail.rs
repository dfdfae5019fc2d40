//! Trail buckets: the key layout CloudTrail delivers log files in, listed with pruning.
//!
//! ```text
//! [prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz
//!                                      CloudTrail-Digest/...    digests: skipped
//!                                      CloudTrail-Insight/...   Insights events: skipped
//! ```
//!
//! Listing walks the layout one level at a time with delimited LISTs, so account, region and
//! date filters prune whole subtrees: with a time range, only the day prefixes in range are
//! listed (the day after the range too, for files delivered after midnight). A location with
//! no `AWSLogs/` is listed whole.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};

use crate::Result;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct TrailFilter {
    /// Events at or after this time.
    pub start: Option<DateTime<Utc>>,
    /// Events before this time.
    pub end: Option<DateTime<Utc>>,
    /// Only these accounts (empty: all).
    pub accounts: Vec<String>,
    /// Only these regions (empty: all).
    pub regions: Vec<String>,
    /// LISTs in flight.
    pub concurrency: usize,
    /// List no day prefix before this day (live ingestion lists only recent days).
    pub listed_from: Option<NaiveDate>,
}

impl TrailFilter {
    /// The day prefixes that may hold events of the range: its days and the day after it.
    fn days(&self) -> (Option<NaiveDate>, Option<NaiveDate>) {
        let first = self.start.map(|t| t.date_naive()).max(self.listed_from);
        let last = self.end.map(|t| {
            let inclusive = t - chrono::Duration::microseconds(1);
            inclusive.date_naive() + Days::new(1)
        });
        (first, last)
    }

    fn takes_day(&self, day: NaiveDate) -> bool {
        let (first, last) = self.days();
        first.is_none_or(|f| day >= f) && last.is_none_or(|l| day <= l)
    }
}

/// The log files found, and what the walk saw.
#[derive(Debug, Clone, Default)]
pub struct TrailListing {
    /// CloudTrail log files, each with the day prefix it was found under.
    pub files: Vec<(ObjectMeta, Option<Path>)>,
    /// Day prefixes listed.
    pub day_prefixes: Vec<Path>,
    /// The newest day of the day prefixes listed.
    pub newest_day: Option<NaiveDate>,
    /// Prefixes left out: digests, Insights and anything that is not `CloudTrail/`.
    pub skipped_prefixes: Vec<Path>,
    /// LIST requests made.
    pub lists: usize,
    /// False when the location has no trail layout and was listed whole.
    pub trail_layout: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Level {
    /// Under `AWSLogs/`: accounts and organization ids.
    Owners,
    /// Under `AWSLogs/o-.../`: accounts.
    OrgAccounts,
    /// Under an account: `CloudTrail/`, `CloudTrail-Digest/`, ...
    Services,
    /// Under `CloudTrail/`: regions.
    Regions,
    Years,
    Months(i32),
    Days(i32, u32),
    /// A day prefix: list its files.
    Files(Option<NaiveDate>),
}

/// File names that hold JSON events.
pub fn is_json_file(name: &str) -> bool {
    const EXTENSIONS: &[&str] = &[".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"];
    let name = name.to_ascii_lowercase();
    !name.starts_with('.') && EXTENSIONS.iter().any(|e| name.ends_with(e))
}

/// Lists the CloudTrail log files under `root` of `store` that `filter` may need.
pub async fn list(store: &Arc<dyn ObjectStore>, root: &Path, filter: &TrailFilter) -> Result<TrailListing> {
    let mut listing = TrailListing::default();
    let Some(start) = locate(store, root, &mut listing).await? else {
        // No trail layout: every JSON file under the location.
        listing.lists += 1;
        let files: Vec<ObjectMeta> = store.list(Some(root)).try_collect().await?;
        listing.files = files
            .into_iter()
            .filter(|m| m.location.filename().is_some_and(is_json_file))
            .map(|m| (m, None))
            .collect();
        return Ok(listing);
    };
    listing.trail_layout = true;
    let mut frontier = vec![start];
    while !frontier.is_empty() {
        let results: Vec<Result<Step>> = futures::stream::iter(frontier)
            .map(|(prefix, level)| step(store.clone(), prefix, level, filter))
            .buffer_unordered(filter.concurrency.max(1))
            .collect()
            .await;
        frontier = Vec::new();
        for step in results {
            let step = step?;
            listing.lists += 1;
            frontier.extend(step.next);
            listing.skipped_prefixes.extend(step.skipped);
            if let Some(day) = step.day {
                listing.files.extend(step.files.into_iter().map(|f| (f, Some(day.clone()))));
                listing.day_prefixes.push(day);
                listing.newest_day = listing.newest_day.max(step.date);
            }
        }
    }
    listing.day_prefixes.sort();
    listing.files.sort_by(|a, b| a.0.location.cmp(&b.0.location));
    Ok(listing)
}

/// Where `root` is in the layout: the first prefix and level to walk, or `None` when the
/// location has no `AWSLogs/`.
async fn locate(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    listing: &mut TrailListing,
) -> Result<Option<(Path, Level)>> {
    let parts: Vec<String> = root.parts().map(|p| p.as_ref().to_owned()).collect();
    let Some(at) = parts.iter().position(|p| p == "AWSLogs") else {
        listing.lists += 1;
        let top = store.list_with_delimiter(Some(root)).await?;
        let logs = top.common_prefixes.into_iter().find(|p| p.filename() == Some("AWSLogs"));
        return Ok(logs.map(|p| (p, Level::Owners)));
    };
    let mut level = Level::Owners;
    for part in &parts[at + 1..] {
        level = match level {
            Level::Owners if part.starts_with("o-") => Level::OrgAccounts,
            Level::Owners | Level::OrgAccounts => Level::Services,
            Level::Services if part == "CloudTrail" => Level::Regions,
            Level::Services => return Ok(None),
            Level::Regions => Level::Years,
            Level::Years => Level::Months(part.parse().unwrap_or(0)),
            Level::Months(y) => Level::Days(y, part.parse().unwrap_or(0)),
            Level::Days(y, m) => {
                Level::Files(part.parse().ok().and_then(|d| NaiveDate::from_ymd_opt(y, m, d)))
            }
            Level::Files(day) => Level::Files(day),
        };
    }
    Ok(Some((root.clone(), level)))
}

#[derive(Default)]
struct Step {
    next: Vec<(Path, Level)>,
    skipped: Vec<Path>,
    day: Option<Path>,
    date: Option<NaiveDate>,
    files: Vec<ObjectMeta>,
}

async fn step(store: Arc<dyn ObjectStore>, prefix: Path, level: Level, filter: &TrailFilter) -> Result<Step> {
    let mut out = Step::default();
    if let Level::Files(date) = level {
        out.date = date;
        let files: Vec<ObjectMeta> = store.list(Some(&prefix)).try_collect().await?;
        out.files = files.into_iter().filter(|m| m.location.filename().is_some_and(is_json_file)).collect();
        out.day = Some(prefix);
        return Ok(out);
    }
    let children = store.list_with_delimiter(Some(&prefix)).await?.common_prefixes;
    for child in children {
        let Some(name) = child.filename().map(str::to_owned) else { continue };
        let next = match level {
            Level::Owners if name.starts_with("o-") => Some(Level::OrgAccounts),
            Level::Owners | Level::OrgAccounts => {
                (filter.accounts.is_empty() || filter.accounts.contains(&name)).then_some(Level::Services)
            }
            Level::Services if name == "CloudTrail" => Some(Level::Regions),
            Level::Services => {
                out.skipped.push(child);
                continue;
            }
            Level::Regions => {
                (filter.regions.is_empty() || filter.regions.contains(&name)).then_some(Level::Years)
            }
            Level::Years => name.parse::<i32>().ok().filter(|&y| year_in(filter, y)).map(Level::Months),
            Level::Months(y) => {
                name.parse::<u32>().ok().filter(|&m| month_in(filter, y, m)).map(|m| Level::Days(y, m))
            }
            Level::Days(y, m) => name
                .parse::<u32>()
                .ok()
                .and_then(|d| NaiveDate::from_ymd_opt(y, m, d))
                .filter(|&day| filter.takes_day(day))
                .map(|day| Level::Files(Some(day))),
            Level::Files(_) => None,
        };
        if let Some(next) = next {
            out.next.push((child, next));
        }
    }
    Ok(out)
}

fn year_in(filter: &TrailFilter, year: i32) -> bool {
    let (first, last) = filter.days();
    first.is_none_or(|f| year >= f.year()) && last.is_none_or(|l| year <= l.year())
}

fn month_in(filter: &TrailFilter, year: i32, month: u32) -> bool {
    let (first, last) = filter.days();
    let key = (year, month);
    first.is_none_or(|f| key >= (f.year(), f.month())) && last.is_none_or(|l| key <= (l.year(), l.month()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    async fn bucket(keys: &[&str]) -> Arc<dyn ObjectStore> {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        for key in keys {
            store.put(&Path::from(*key), PutPayload::from_static(b"{}")).await.unwrap();
        }
        store
    }

    fn names(listing: &TrailListing) -> Vec<String> {
        listing.files.iter().map(|(m, _)| m.location.to_string()).collect()
    }

    #[tokio::test]
    async fn walks_the_layout_with_filters() {
        let store = bucket(&[
            "logs/AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/30/a.json.gz",
            "logs/AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/31/b.json.gz",
            "logs/AWSLogs/111111111111/CloudTrail/us-east-1/2024/02/01/c.json.gz",
            "logs/AWSLogs/111111111111/CloudTrail/us-east-1/2024/02/02/d.json.gz",
            "logs/AWSLogs/111111111111/CloudTrail/eu-west-1/2024/01/31/e.json.gz",
            "logs/AWSLogs/111111111111/CloudTrail-Digest/us-east-1/2024/01/31/f.json.gz",
            "logs/AWSLogs/111111111111/CloudTrail-Insight/us-east-1/2024/01/31/g.json.gz",
            "logs/AWSLogs/o-abc123/222222222222/CloudTrail/us-east-1/2024/01/31/h.json.gz",
            "logs/AWSLogs/o-abc123/333333333333/CloudTrail/us-east-1/2024/01/31/i.json.gz",
            "logs/other/j.json.gz",
        ])
        .await;
        let root = Path::from("logs");
        let all = list(&store, &root, &TrailFilter { concurrency: 4, ..Default::default() }).await.unwrap();
        assert!(all.trail_layout);
        assert_eq!(all.files.len(), 7);
        assert_eq!(all.skipped_prefixes.len(), 2);

        let start = "2024-01-31T00:00:00Z".parse().unwrap();
        let end = "2024-02-01T00:00:00Z".parse().unwrap();
        let filter = TrailFilter {
            start: Some(start),
            end: Some(end),
            accounts: vec!["111111111111".into(), "222222222222".into()],
            regions: vec!["us-east-1".into()],
            concurrency: 2,
            ..Default::default()
        };
        let some = list(&store, &root, &filter).await.unwrap();
        assert_eq!(
            names(&some),
            [
                "logs/AWSLogs/111111111111/CloudTrail/us-east-1/2024/01/31/b.json.gz",
                "logs/AWSLogs/111111111111/CloudTrail/us-east-1/2024/02/01/c.json.gz",
                "logs/AWSLogs/o-abc123/222222222222/CloudTrail/us-east-1/2024/01/31/h.json.gz",
            ]
        );
        assert_eq!(some.day_prefixes.len(), 3);

        // Starting inside the layout.
        let inside = Path::from("logs/AWSLogs/111111111111/CloudTrail/eu-west-1");
        let eu = list(&store, &inside, &TrailFilter::default()).await.unwrap();
        assert_eq!(names(&eu), ["logs/AWSLogs/111111111111/CloudTrail/eu-west-1/2024/01/31/e.json.gz"]);

        // No layout: everything JSON.
        let other = list(&store, &Path::from("logs/other"), &TrailFilter::default()).await.unwrap();
        assert!(!other.trail_layout);
        assert_eq!(other.files.len(), 1);
    }
}
