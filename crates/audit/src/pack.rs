//! Audit packs. A pack is a TOML file of `[[audit]]` tables, or a directory of `.sql` files whose
//! metadata is a header of `-- key: value` comment lines (the built-in pack, `sql-examples/`).
//! Both carry the same fields:
//!
//! | field | meaning | default |
//! |---|---|---|
//! | `id` | `[a-z0-9][a-z0-9._-]*`, unique in the pack | the file name (SQL files) |
//! | `title` (`Question` in a header) | one line | required |
//! | `description` | free text | empty |
//! | `sql` or `file` | the query; `$EDS_ID` names the store it audits | required |
//! | `severity` | `info`, `low`, `medium`, `high`, `critical` | `medium` |
//! | `mitre` | ATT&CK technique ids (`T1562.008`) | none |
//! | `schedule` | see [`Schedule`] | `every 15m` |
//! | `window` | `new-events`, or `lookback 24h` | `new-events` |
//! | `fires` | `rows > N` or `rows >= N`, per `dedup` key; `new-value 30d`: a key not found in the 30 days before; `flatline < N over 7d`: a key of the 7 days before with fewer than N rows | `rows > 0` |
//! | `dedup` | result columns that make a finding the same | none |
//! | `realert` | a repeat of a `dedup` key inside this period is suppressed | none |
//!
//! The run, not the SQL, bounds what an audit reads: `$EDS_ID` is the store seen through the
//! audit's window.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::Duration;
use serde::Deserialize;

use crate::schedule::{Schedule, format_duration, parse_duration};
use crate::{Error, Result};

/// A named list of audits.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The name runs and findings are recorded under.
    pub name: String,
    /// Its audits, in the order written.
    pub audits: Vec<Audit>,
    /// Sigma rules left out, each with the construct and the reason.
    pub refused: Vec<String>,
    /// Where its audits' findings are sent (`[[sink]]`), named `<pack>/<name>`.
    pub sinks: Vec<crate::Sink>,
}

/// One audit: a query, when it runs, over which events, and when it fires.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Unique in its pack.
    pub id: String,
    /// One line: what the audit finds.
    pub title: String,
    /// Free text.
    pub description: String,
    /// The query, reading the audited store as `$EDS_ID`.
    pub sql: String,
    /// How bad a finding is.
    pub severity: Severity,
    /// MITRE ATT&CK technique ids.
    pub mitre: Vec<String>,
    /// When it runs.
    pub schedule: Schedule,
    /// What a run reads.
    pub window: Window,
    /// When its rows are findings.
    pub fires: Fires,
    /// Result columns (lower case) that make two findings the same.
    pub dedup: Vec<String>,
    /// A repeat of a dedup key within this period is recorded, suppressed.
    pub realert: Option<Duration>,
    /// The file the audit comes from.
    pub origin: String,
    /// Who wrote it (a Sigma rule's `author`, carried into every finding as its licence asks).
    pub author: Option<String>,
    /// Where it is published.
    pub link: Option<String>,
    /// The pack's sinks its findings go to, by name (`None`: all of them).
    pub sinks: Option<Vec<String>>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return Err(format!("severity '{s}' is not one of info, low, medium, high, critical")),
        })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// The events a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The events committed since the audit's last run: each event is read by exactly one run.
    NewEvents,
    /// The events whose eventTime is in the period before the run's scheduled time.
    Lookback(Duration),
}

impl FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["new-events"] => Ok(Window::NewEvents),
            ["lookback", period] => Ok(Window::Lookback(parse_duration(period)?)),
            _ => Err(format!("window '{s}' is not `new-events` or `lookback PERIOD` (such as lookback 24h)")),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::NewEvents => f.write_str("new-events"),
            Window::Lookback(d) => write!(f, "lookback {}", format_duration(*d)),
        }
    }
}

/// When a run's rows are findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fires {
    /// When at least this many rows share a `dedup` key (all rows are one group without one).
    Rows {
        /// Rows a key needs.
        at_least: u64,
    },
    /// A row whose `dedup` key the same query found in none of the events of this period
    /// before the window (an access key used from a new address): its first row in the window.
    NewValue {
        /// How far back a key counts as seen.
        within: Duration,
    },
    /// A `dedup` key the same query found in the period before the window that has fewer rows
    /// than this in the window (a region or account gone silent: logging stopped). Its finding
    /// is the key and the rows it had.
    Flatline {
        /// Rows a key needs in the window.
        below: u64,
        /// How far back a key counts as expected.
        within: Duration,
    },
}

impl FromStr for Fires {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let bad = || {
            format!(
                "fires '{s}' is not `rows > N`, `rows >= N`, `new-value PERIOD` or `flatline < N over PERIOD`"
            )
        };
        match words.as_slice() {
            ["new-value", period] => Ok(Fires::NewValue { within: parse_duration(period)? }),
            ["flatline", "<", n, "over", period] => Ok(Fires::Flatline {
                below: n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("fires '{s}': the count must be above 0"))?,
                within: parse_duration(period)?,
            }),
            ["rows", op, n] => {
                let n: u64 = n.parse().map_err(|_| bad())?;
                match *op {
                    ">" => Ok(Fires::Rows { at_least: n + 1 }),
                    ">=" if n > 0 => Ok(Fires::Rows { at_least: n }),
                    ">=" => Err(format!("fires '{s}': a run with no rows fires nothing; write `rows > 0`")),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Fires {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fires::Rows { at_least: 1 } => f.write_str("rows > 0"),
            Fires::Rows { at_least } => write!(f, "rows >= {at_least}"),
            Fires::NewValue { within } => write!(f, "new-value {}", format_duration(*within)),
            Fires::Flatline { below, within } => {
                write!(f, "flatline < {below} over {}", format_duration(*within))
            }
        }
    }
}

/// An audit as written, before its fields are read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    id: Option<String>,
    title: Option<String>,
    #[serde(default)]
    description: String,
    sql: Option<String>,
    file: Option<String>,
    severity: Option<String>,
    #[serde(default)]
    mitre: Vec<String>,
    schedule: Option<String>,
    window: Option<String>,
    fires: Option<String>,
    #[serde(default)]
    dedup: Vec<String>,
    realert: Option<String>,
    sinks: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    name: Option<String>,
    #[serde(default)]
    audit: Vec<Spec>,
    #[serde(default)]
    sink: Vec<crate::alert::SinkSpec>,
}

impl Spec {
    /// Reads the fields; `dir` is where a `file` is looked for.
    fn build(self, origin: &str, dir: Option<&Path>) -> std::result::Result<Audit, String> {
        let id = self.id.ok_or("no id")?;
        let valid = id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if !valid {
            return Err(format!("id '{id}' must be lower-case letters, digits, '.', '_' or '-'"));
        }
        let field = |what: &str, e: String| format!("audit '{id}': {what}: {e}");
        let sql = match (self.sql, self.file) {
            (Some(sql), None) => sql,
            (None, Some(file)) => {
                let path = dir.map_or_else(|| PathBuf::from(&file), |d| d.join(&file));
                std::fs::read_to_string(&path)
                    .map_err(|e| field("file", format!("{}: {e}", path.display())))?
            }
            (Some(_), Some(_)) => return Err(format!("audit '{id}' has both sql and file; keep one")),
            (None, None) => return Err(format!("audit '{id}' has no sql (or file)")),
        };
        if !sql.contains("$EDS_ID") && !sql.contains("${EDS_ID}") {
            return Err(format!("audit '{id}': its SQL must read the audited store as $EDS_ID"));
        }
        let title =
            self.title.filter(|t| !t.trim().is_empty()).ok_or(format!("audit '{id}' has no title"))?;
        let or = |text: Option<String>, default: &str| text.unwrap_or_else(|| default.to_owned());
        let severity = or(self.severity, "medium").parse().map_err(|e| field("severity", e))?;
        let schedule = or(self.schedule, "every 15m").parse().map_err(|e| field("schedule", e))?;
        let window = or(self.window, "new-events").parse().map_err(|e| field("window", e))?;
        let fires = or(self.fires, "rows > 0").parse().map_err(|e| field("fires", e))?;
        let realert =
            self.realert.map(|r| parse_duration(&r)).transpose().map_err(|e| field("realert", e))?;
        if matches!(fires, Fires::NewValue { .. } | Fires::Flatline { .. }) && self.dedup.is_empty() {
            return Err(field("fires", format!("{fires} needs the key: give `dedup` columns")));
        }
        if matches!(fires, Fires::Flatline { .. }) && !matches!(window, Window::Lookback(_)) {
            return Err(field(
                "fires",
                "flatline counts a period of eventTime: give `window = \"lookback PERIOD\"`".into(),
            ));
        }
        if realert.is_some() && self.dedup.is_empty() {
            return Err(field("realert", "suppresses repeats of a dedup key; give `dedup` columns".into()));
        }
        for t in &self.mitre {
            let ok = t.len() >= 5
                && t.starts_with('T')
                && t[1..].split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if !ok {
                return Err(field("mitre", format!("'{t}' is not an ATT&CK technique id such as T1562.008")));
            }
        }
        Ok(Audit {
            id,
            title: title.trim().to_owned(),
            description: self.description.trim().to_owned(),
            sql: sql.trim().to_owned(),
            severity,
            mitre: self.mitre,
            schedule,
            window,
            fires,
            dedup: self.dedup.iter().map(|c| c.trim().to_ascii_lowercase()).collect(),
            realert,
            origin: origin.to_owned(),
            author: None,
            link: None,
            sinks: self.sinks,
        })
    }
}

impl Pack {
    /// Reads a pack: a TOML file, a directory of `.sql` files with headers, or a directory of
    /// Sigma rules (`.yml`).
    pub fn load(path: &Path) -> Result<Pack> {
        let io = |e| Error::Io { path: path.display().to_string(), source: e };
        if !path.is_dir() {
            let text = std::fs::read_to_string(path).map_err(io)?;
            return Pack::from_toml(path, &text);
        }
        let (mut sql, mut sigma) = (Vec::new(), Vec::new());
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for file in entries {
            let files = match file.extension().and_then(|e| e.to_str()) {
                Some("sql") => &mut sql,
                Some("yml" | "yaml") => &mut sigma,
                _ => continue,
            };
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::Io { path: file.display().to_string(), source: e })?;
            files.push((file.display().to_string(), text));
        }
        let name = path.file_name().map_or("pack".into(), |n| n.to_string_lossy().into_owned());
        match (sql.is_empty(), sigma.is_empty()) {
            (false, true) => Pack::from_sql_files(&name, sql),
            (true, false) => {
                // A rule read from a directory links to its file.
                let link = |file: &str| Some(file.to_owned());
                Pack::from_sigma_files(&name, sigma, &link)
            }
            (false, false) => Err(Error::Pack {
                file: path.display().to_string(),
                reason: "the directory holds both .sql audits and Sigma rules; keep them apart".into(),
            }),
            (true, true) => Err(Error::Pack {
                file: path.display().to_string(),
                reason: "the directory holds no .sql audits and no Sigma rules (.yml)".into(),
            }),
        }
    }

    /// A pack of Sigma rules (file, text): the CloudTrail rules become audits, the others are
    /// left out, and a rule that cannot be converted exactly is refused (in `refused`).
    /// `link` gives where a rule is published, from its file name.
    pub fn from_sigma_files(
        name: &str,
        files: Vec<(String, String)>,
        link: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Pack> {
        let mut audits = Vec::new();
        let mut refused = Vec::new();
        for (file, text) in files {
            if !crate::sigma::is_cloudtrail(&text) {
                continue;
            }
            match crate::sigma::audit(&file, &text, link(&file)) {
                Ok(audit) => audits.push(audit),
                Err(reason) => refused.push(reason),
            }
        }
        let mut pack = Pack::new(name.to_owned(), audits, name)?;
        pack.refused = refused;
        Ok(pack)
    }

    /// A TOML pack; its name is its `name`, else the file's stem.
    pub fn from_toml(path: &Path, text: &str) -> Result<Pack> {
        let origin = path.display().to_string();
        let error = |reason: String| Error::Pack { file: origin.clone(), reason };
        let file: PackFile = toml::from_str(text).map_err(|e| error(e.to_string().trim().to_owned()))?;
        let name = file
            .name
            .unwrap_or_else(|| path.file_stem().map_or("pack".into(), |s| s.to_string_lossy().into_owned()));
        let audits = file
            .audit
            .into_iter()
            .map(|spec| spec.build(&origin, path.parent()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(&error)?;
        let sinks = file
            .sink
            .into_iter()
            .map(|spec| spec.build(&name))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(&error)?;
        for (i, sink) in sinks.iter().enumerate() {
            if sinks[..i].iter().any(|s| s.name == sink.name) {
                return Err(error(format!("two sinks are named '{}'; give one a `name`", sink.name)));
            }
        }
        for audit in &audits {
            for wanted in audit.sinks.iter().flatten() {
                if !sinks.iter().any(|s| s.name == format!("{name}/{wanted}")) {
                    let names = sinks.iter().map(|s| s.name[name.len() + 1..].to_owned()).collect::<Vec<_>>();
                    return Err(error(format!(
                        "audit '{}': sinks: no sink '{wanted}' in the pack (it has: {})",
                        audit.id,
                        if names.is_empty() { "none".into() } else { names.join(", ") }
                    )));
                }
            }
        }
        let mut pack = Pack::new(name, audits, &origin)?;
        pack.sinks = sinks;
        Ok(pack)
    }

    /// A pack of `.sql` files (name, text), each with its header; in the order of their names.
    pub fn from_sql_files(name: &str, mut files: Vec<(String, String)>) -> Result<Pack> {
        files.sort();
        let audits = files
            .iter()
            .map(|(file, text)| {
                header(file, text).map_err(|reason| Error::Pack { file: file.clone(), reason })
            })
            .collect::<Result<Vec<_>>>()?;
        Pack::new(name.to_owned(), audits, name)
    }

    fn new(name: String, audits: Vec<Audit>, origin: &str) -> Result<Pack> {
        let mut seen = HashSet::new();
        for a in &audits {
            if !seen.insert(a.id.as_str()) {
                return Err(Error::Pack {
                    file: origin.to_owned(),
                    reason: format!("audit id '{}' twice", a.id),
                });
            }
        }
        Ok(Pack { name, audits, refused: Vec::new(), sinks: Vec::new() })
    }
}

/// An audit from a `.sql` file: its header's `-- key: value` lines, then the query. A comment line
/// that names no key continues the field above it. The id defaults to the file's name without
/// its number (`09-cloudtrail-tampering.sql` is `cloudtrail-tampering`).
fn header(file: &str, text: &str) -> std::result::Result<Audit, String> {
    const KEYS: &[&str] = &[
        "id",
        "question",
        "title",
        "description",
        "severity",
        "mitre",
        "schedule",
        "window",
        "fires",
        "dedup",
        "realert",
    ];
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let Some(comment) = line.trim_start().strip_prefix("--") else { break };
        let comment = comment.trim();
        match comment.split_once(':') {
            Some((key, value)) if KEYS.contains(&key.trim().to_ascii_lowercase().as_str()) => {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
            _ => match fields.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(comment);
                }
                None => return Err(format!("the header's first line must be `-- key: value`, not '{line}'")),
            },
        }
    }
    let stem = Path::new(file).file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let numbered = stem.split_once('-').filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()));
    let mut spec =
        Spec { id: Some(numbered.map_or(stem.clone(), |(_, rest)| rest.to_owned())), ..Spec::default() };
    let list = |v: &str| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    for (key, value) in fields {
        match key.as_str() {
            "id" => spec.id = Some(value),
            "question" | "title" => spec.title = Some(value),
            "description" => spec.description = value,
            "severity" => spec.severity = Some(value),
            "mitre" => spec.mitre = list(&value),
            "schedule" => spec.schedule = Some(value),
            "window" => spec.window = Some(value),
            "fires" => spec.fires = Some(value),
            "dedup" => spec.dedup = list(&value),
            _ => spec.realert = Some(value),
        }
    }
    spec.sql = Some(text.to_owned());
    spec.build(file, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_pack() {
        let text = r#"
            name = "team"
            [[audit]]
            id = "dynamodb-table-deleted"
            title = "DynamoDB table deleted"
            sql = "SELECT eventtime, eventid FROM $EDS_ID WHERE eventname = 'DeleteTable'"
            severity = "high"
            mitre = ["T1485"]
            schedule = "every 5m"
            dedup = ["useridentity.arn"]
            realert = "1h"

            [[audit]]
            id = "busy-principals"
            title = "Principals with many calls"
            sql = "SELECT useridentity.arn FROM $EDS_ID"
            window = "lookback 24h"
            fires = "rows >= 100"
            schedule = "daily at 06:00 Europe/Paris"
        "#;
        let pack = Pack::from_toml(Path::new("team.toml"), text).unwrap();
        assert_eq!(pack.name, "team");
        let a = &pack.audits[0];
        assert_eq!(
            (a.severity, a.window, a.fires),
            (Severity::High, Window::NewEvents, Fires::Rows { at_least: 1 })
        );
        assert_eq!(a.schedule.to_string(), "every 5m");
        assert_eq!(a.realert, Some(Duration::hours(1)));
        let b = &pack.audits[1];
        assert_eq!(
            (b.window, b.fires),
            (Window::Lookback(Duration::hours(24)), Fires::Rows { at_least: 100 })
        );
        assert_eq!(b.severity, Severity::Medium);
    }

    #[test]
    fn pack_errors_name_the_file_the_audit_and_the_field() {
        let bad = |body: &str| {
            let text =
                format!("[[audit]]\nid = \"a\"\ntitle = \"t\"\nsql = \"SELECT 1 FROM $EDS_ID\"\n{body}");
            Pack::from_toml(Path::new("p.toml"), &text).unwrap_err().to_string()
        };
        assert!(bad("severity = \"urgent\"").contains("p.toml: audit 'a': severity: severity 'urgent'"));
        assert!(bad("schedule = \"weekly\"").contains("audit 'a': schedule: 'weekly' is not a schedule"));
        assert!(bad("window = \"last 24h\"").contains("audit 'a': window"));
        assert!(bad("fires = \"rows >= 0\"").contains("write `rows > 0`"));
        assert!(bad("realert = \"1h\"").contains("give `dedup` columns"));
        assert!(bad("mitre = [\"1485\"]").contains("ATT&CK"));
        assert!(bad("colour = \"red\"").contains("unknown field `colour`"));
        let e =
            Pack::from_toml(Path::new("p.toml"), "[[audit]]\nid = \"a\"\ntitle = \"t\"\nsql = \"SELECT 1\"")
                .unwrap_err()
                .to_string();
        assert!(e.contains("$EDS_ID"), "{e}");
        let twice = "[[audit]]\nid = \"a\"\ntitle = \"t\"\nsql = \"SELECT 1 FROM $EDS_ID\"\n";
        let e = Pack::from_toml(Path::new("p.toml"), &twice.repeat(2)).unwrap_err().to_string();
        assert!(e.contains("audit id 'a' twice"), "{e}");
    }

    #[test]
    fn sql_headers() {
        let text = "-- Question: Which logs were switched off (flow logs,\n-- DNS query logs)?\n\
                    -- severity: high\n-- mitre: T1562.008, T1685.002\n-- dedup: arn\n\
                    SELECT eventtime, useridentity.arn FROM $EDS_ID";
        let pack = Pack::from_sql_files("builtin", vec![("24-logging-off.sql".into(), text.into())]).unwrap();
        let a = &pack.audits[0];
        assert_eq!(a.id, "logging-off");
        assert_eq!(a.title, "Which logs were switched off (flow logs, DNS query logs)?");
        assert_eq!(a.mitre, ["T1562.008", "T1685.002"]);
        assert_eq!(a.dedup, ["arn"]);
        assert!(a.sql.ends_with("FROM $EDS_ID"));
        let e = Pack::from_sql_files("b", vec![("x.sql".into(), "-- hello\nSELECT 1 FROM $EDS_ID".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.sql: the header's first line"), "{e}");
    }

    #[test]
    fn the_bundled_examples_are_a_pack() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql-examples");
        let pack = Pack::load(&dir).unwrap();
        assert!(pack.audits.len() >= 35, "{}", pack.audits.len());
        assert!(pack.audits.iter().any(|a| a.id == "cloudtrail-tampering" && a.severity >= Severity::High));
    }
}
