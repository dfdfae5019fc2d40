//! The crash harness (issue 23): kill -9 of the real binary at random points of an ingest, of
//! two ingests at once (of the same sources and of different ones), of `retention apply`, and
//! of `store create` and `store delete`. After each kill the store opens, holds no event twice,
//! and a rerun ends with exactly the events expected, nothing expired left on disk.
//!
//! `TRAWL_CRASH_TRIALS` sets the number of trials (a handful by default; the README's longer
//! campaign runs hundreds), `TRAWL_CRASH_SEED` the seed of the kill times.

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Lake, stratus_copies};
use crate::support::walk;

/// Kill times from a seeded xorshift: a failing trial is repeated by its seed.
struct Kills(u64);

impl Kills {
    /// A time in `0..=max`.
    fn within(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        max.mul_f64((self.0 % 10_001) as f64 / 10_000.0)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn spawn(lake: &Lake, args: &[&str]) -> Child {
    lake.command(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("run trawl")
}

/// Kills `child` with SIGKILL after `after`, unless it ended before.
fn kill_after(mut child: Child, after: Duration) {
    let deadline = Instant::now() + after;
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    child.wait().expect("wait");
}

/// The store opens, holds each event once, and (once `complete`) exactly `expected`.
fn check(lake: &Lake, store: &str, expected: &HashSet<String>, complete: bool, what: &str) {
    let events = lake.export(store);
    let ids: Vec<&str> = events.iter().map(|e| e["eventID"].as_str().expect("an eventID")).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "{what}: an event stored twice");
    assert_eq!(lake.events(store), ids.len() as u64, "{what}: count differs from the export");
    assert!(unique.iter().all(|id| expected.contains(*id)), "{what}: an event not in the input");
    if complete {
        assert_eq!(unique.len(), expected.len(), "{what}: events lost");
    }
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// How long an uninterrupted run of `args` takes on this machine: kills fall within it.
fn timed(lake: &Lake, args: &[&str]) -> Duration {
    let started = Instant::now();
    lake.ok(args);
    started.elapsed()
}

#[test]
fn kill_9_anywhere() {
    let trials = env_number("TRAWL_CRASH_TRIALS", 5);
    let mut kills = Kills(env_number("TRAWL_CRASH_SEED", 0x9e37_79b9_7f4a_7c15).max(1));
    let scratch = tempfile::tempdir().expect("tempdir");
    let a = scratch.path().join("a");
    let b = scratch.path().join("b");
    let in_a = stratus_copies(&a, 0..8);
    let in_b = stratus_copies(&b, 8..12);
    let both: HashSet<String> = in_a.union(&in_b).cloned().collect();
    let (a, b) = (a.to_str().expect("utf-8"), b.to_str().expect("utf-8"));
    let ingest = |source: &'static str, dir: &str| -> Vec<String> {
        [
            "ingest",
            "--store",
            source,
            "--create",
            "--commit-mib",
            "1",
            "--threads",
            "1",
            "--checkpoint-every",
            "3",
            dir,
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let stratus = crate::harness::fixture("stratus-red-team-detonation-logs");
    // A lake with a week of retention whose older days expire between the two clocks.
    let expiring = || {
        let lake = Lake::new("2024-08-05T00:00:00Z");
        lake.ok(&["store", "create", "audit", "--retention-days", "7"]);
        lake.ok(&["ingest", "--store", "audit", &stratus]);
        Lake { now: "2024-08-09T12:00:00Z".into(), ..lake }
    };
    let full = timed(&Lake::new("2024-12-31T00:00:00Z"), &args(&ingest("audit", a)));
    let retention = timed(&expiring(), &["retention", "apply"]);
    let create = timed(&Lake::new("2024-12-31T00:00:00Z"), &["store", "create", "xyz"]);

    for trial in 0..trials {
        let lake = Lake::new("2024-12-31T00:00:00Z");
        let what = format!("trial {trial} (TRAWL_CRASH_SEED={})", kills.0);
        match trial % 5 {
            // One ingest, killed; the rerun completes it.
            0 => {
                lake.ok(&["store", "create", "audit"]);
                kill_after(spawn(&lake, &args(&ingest("audit", a))), kills.within(full));
                check(&lake, "audit", &in_a, false, &what);
                lake.ok(&args(&ingest("audit", a)));
                check(&lake, "audit", &in_a, true, &what);
            }
            // Two ingests of the same sources at once, each killed at its own time.
            1 => {
                lake.ok(&["store", "create", "audit"]);
                let first = spawn(&lake, &args(&ingest("audit", a)));
                let second = spawn(&lake, &args(&ingest("audit", a)));
                let (t1, t2) = (kills.within(full * 2), kills.within(full * 2));
                let other = std::thread::spawn(move || kill_after(second, t2));
                kill_after(first, t1);
                other.join().expect("the second kill");
                check(&lake, "audit", &in_a, false, &what);
                lake.ok(&args(&ingest("audit", a)));
                check(&lake, "audit", &in_a, true, &what);
            }
            // Two ingests of different sources at once, one killed, into a store they create.
            2 => {
                let first = spawn(&lake, &args(&ingest("audit", a)));
                let second = spawn(&lake, &args(&ingest("audit", b)));
                kill_after(first, kills.within(full));
                let out = second.wait_with_output().expect("wait");
                assert!(out.status.success(), "{what}: the ingest that was not killed failed");
                check(&lake, "audit", &both, false, &what);
                lake.ok(&args(&ingest("audit", a)));
                lake.ok(&args(&ingest("audit", b)));
                check(&lake, "audit", &both, true, &what);
            }
            // retention apply, killed: the rerun leaves nothing expired, on disk or in the store.
            3 => {
                let later = expiring();
                let apply = ["retention", "apply"];
                kill_after(spawn(&later, &apply), kills.within(retention));
                later.ok(&apply);
                let on_disk: Vec<String> = walk(&later.root().join("audit"))
                    .into_iter()
                    .filter(|p| p.ends_with(".parquet") && !p.contains("_delta_log"))
                    .collect();
                let live = later.show("audit")["summary"]["files"].as_u64().expect("files");
                assert_eq!(on_disk.len() as u64, live, "{what}: files left on disk");
                let left = later.export("audit");
                assert!(left.iter().all(|e| e["eventTime"].as_str() >= Some("2024-08-02")), "{what}");
            }
            // store create and store delete, killed: each can be run again to its end.
            _ => {
                kill_after(spawn(&lake, &["store", "create", "audit"]), kills.within(create));
                let created = lake.run(&["store", "create", "audit", "--termination-protection", "off"]);
                let stderr = String::from_utf8_lossy(&created.stderr);
                assert!(created.status.success() || stderr.contains("already exists"), "{what}: {stderr}");
                lake.ok(&["store", "update", "audit", "--termination-protection", "off"]);
                kill_after(spawn(&lake, &["store", "delete", "audit"]), kills.within(create));
                let deleted = lake.run(&["store", "delete", "audit"]);
                let stderr = String::from_utf8_lossy(&deleted.stderr);
                assert!(deleted.status.success() || stderr.contains("pending deletion"), "{what}: {stderr}");
                lake.ok(&["store", "restore", "audit"]);
                lake.ok(&args(&ingest("audit", b)));
                check(&lake, "audit", &in_b, true, &what);
            }
        }
    }
}
