//! Runs the real binary against a temporary lake.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub(crate) fn fixture(rel: &str) -> String {
    fixtures().join(rel).display().to_string()
}

/// A lake (in a temporary directory, or at a URL) and a pinned clock.
pub(crate) struct Lake {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) now: String,
    /// The lake's location when it is not the temporary directory.
    pub(crate) location: Option<String>,
    /// Environment of every run.
    pub(crate) env: Vec<(String, String)>,
}

impl Lake {
    pub(crate) fn new(now: &str) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            now: now.to_owned(),
            location: None,
            env: Vec::new(),
        }
    }

    /// A lake at `location` (`s3://...`), run with `env`.
    pub(crate) fn at(location: &str, now: &str, env: Vec<(String, String)>) -> Self {
        Self { location: Some(location.to_owned()), env, ..Self::new(now) }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("lake")
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trawl"));
        let lake = self.location.clone().unwrap_or_else(|| self.root().display().to_string());
        cmd.args(args).env("TRAWL_LAKE", lake).env("TRAWL_NOW", &self.now).envs(self.env.iter().cloned());
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run trawl")
    }

    /// Runs and expects `code`; returns stdout, stderr.
    pub(crate) fn expect(&self, code: i32, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "trawl {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        (stdout, stderr)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        self.expect(0, args).0
    }

    /// `store show --json` as a value.
    pub(crate) fn show(&self, store: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["store", "show", store, "--json"])).expect("show --json")
    }

    pub(crate) fn events(&self, store: &str) -> u64 {
        self.show(store)["summary"]["events"].as_u64().expect("events")
    }

    /// The store's events, exported, as parsed JSON.
    pub(crate) fn export(&self, store: &str) -> Vec<serde_json::Value> {
        let out = self.dir.path().join(format!("{store}.jsonl"));
        self.ok(&["export", "--store", store, "-o", out.to_str().expect("utf-8 path")]);
        std::fs::read_to_string(out)
            .expect("export file")
            .lines()
            .map(|l| serde_json::from_str(l).expect("exported line is JSON"))
            .collect()
    }
}

/// A figure from the ingest report: the number before `label` on the line starting with `line`.
pub(crate) fn figure(report: &str, line: &str, label: &str) -> u64 {
    let l = report
        .lines()
        .find(|l| l.trim_start().starts_with(line))
        .unwrap_or_else(|| panic!("no {line} line in\n{report}"));
    let words: Vec<&str> = l.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.trim_end_matches(',') == label)
        .unwrap_or_else(|| panic!("no {label} in {l}"));
    words[..at]
        .iter()
        .rev()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no number before {label} in {l}"))
}

/// Copies of the Stratus files under `input` (`copyNNN/`, one for each number of `copies`), each
/// copy with its own eventIDs, which are returned.
pub(crate) fn stratus_copies(input: &Path, copies: std::ops::Range<usize>) -> HashSet<String> {
    let mut ids = HashSet::new();
    for i in copies {
        let dir = input.join(format!("copy{i:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(fixtures().join("stratus-red-team-detonation-logs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let mut events: Vec<serde_json::Value> =
                    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                for e in &mut events {
                    let id = format!("{}-{i}", e["eventID"].as_str().unwrap());
                    ids.insert(id.clone());
                    e["eventID"] = id.into();
                }
                std::fs::write(dir.join(path.file_name().unwrap()), serde_json::to_vec(&events).unwrap())
                    .unwrap();
            }
        }
    }
    ids
}
