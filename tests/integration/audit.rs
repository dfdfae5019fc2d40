//! `trawl audit`: the built-in pack over the fixture events, run by the real binary.

use std::collections::HashSet;

use crate::harness::{Lake, fixtures};
use crate::hook;

fn findings(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn the_builtin_pack_finds_what_the_fixtures_hold_once() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    lake.expect(3, &["ingest", "--store", "demo", fixtures().to_str().unwrap()]);

    // Read commands write nothing: no audit log before the first run.
    assert!(lake.ok(&["audit", "list"]).contains("cloudtrail-tampering"));
    let (history, _) = lake.expect(0, &["audit", "history"]);
    assert_eq!(history.lines().filter(|l| l.starts_with("| 20")).count(), 0, "{history}");
    assert!(!lake.root().join("_trawl").exists());

    let (stdout, stderr) = lake.expect(1, &["audit", "run", "--once", "--format", "ndjson"]);
    let found = findings(&stdout);
    assert!(stderr.contains("0 errors"), "{stderr}");
    let by =
        |audit: &str| -> Vec<&serde_json::Value> { found.iter().filter(|f| f["audit"] == audit).collect() };
    // The root user's calls, and CloudTrail switched off or deleted (Stratus Red Team's
    // detonations, among others), each with its event.
    assert!(!by("root-account-activity").is_empty());
    let tampering: HashSet<&str> =
        by("cloudtrail-tampering").iter().filter_map(|f| f["row"]["eventname"].as_str()).collect();
    assert!(tampering.contains("StopLogging") && tampering.contains("DeleteTrail"), "{tampering:?}");
    for f in &found {
        // Event-level audits name their event (one fixture event has no id).
        assert_eq!(f["eventid"], f["row"]["eventid"], "{f}");
        assert_ne!(f["severity"], "info", "informational audits alert nobody");
    }
    assert!(found.iter().filter(|f| f["eventid"].is_string()).count() > found.len() * 9 / 10);
    let ids: HashSet<&str> = found.iter().map(|f| f["finding_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), found.len());

    // Nothing new: nothing found, exit 0.
    let (stdout, _) = lake.expect(0, &["audit", "run", "--once", "--format", "ndjson"]);
    assert_eq!(stdout, "");

    // The findings are in the lake, queryable, once each.
    let count =
        |sql: &str| lake.ok(&["query", "-q", "--format", "csv", sql]).lines().nth(1).unwrap().to_owned();
    let alerted = count(
        "SELECT count(DISTINCT finding_id) FROM trawl_audit_findings WHERE severity <> 'info' AND NOT suppressed",
    );
    assert_eq!(alerted, found.len().to_string());
    assert_eq!(count("SELECT count(*) FROM trawl_audit_runs"), "70");
    let tampering_rows = count(
        "SELECT count(*) FROM trawl_audit_findings WHERE audit = 'cloudtrail-tampering' \
         AND json_extract_scalar(row, '$.eventname') IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors')",
    );
    let expected = by("cloudtrail-tampering")
        .iter()
        .filter(|f| {
            ["StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors"]
                .contains(&f["row"]["eventname"].as_str().unwrap())
        })
        .count();
    assert_eq!(tampering_rows, expected.to_string());

    // The SQL of an audit; a typo gets the closest id.
    assert!(lake.ok(&["audit", "sql", "cloudtrail-tampering"]).contains("StopLogging"));
    let (_, stderr) = lake.expect(1, &["audit", "sql", "cloudtrail-tamperin"]);
    assert!(stderr.contains("did you mean 'cloudtrail-tampering'?"), "{stderr}");
}

#[test]
fn packs_that_are_wrong_say_where() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    let pack = lake.dir.path().join("team.toml");
    std::fs::write(
        &pack,
        "[[audit]]\nid = \"x\"\ntitle = \"t\"\nsql = \"SELECT 1 FROM $EDS_ID\"\nschedule = \"weekly\"\n",
    )
    .unwrap();
    let (_, stderr) = lake.expect(1, &["audit", "list", "--pack", pack.to_str().unwrap()]);
    assert!(stderr.contains("team.toml: audit 'x': schedule: 'weekly' is not a schedule"), "{stderr}");
}

#[test]
fn sigma_rules_agree_with_an_independent_evaluator() {
    let now = "2025-01-01T00:00:00Z";
    let lake = Lake::new(now);
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    lake.expect(3, &["ingest", "--store", "demo", fixtures().to_str().unwrap()]);
    let (stdout, stderr) =
        lake.expect(1, &["audit", "run", "--pack", "sigma", "--once", "--format", "ndjson"]);
    assert!(!stderr.contains("left out"), "every shipped rule converts: {stderr}");
    for f in findings(&stdout) {
        // The licence's terms: every finding names the rule's author and links the rule.
        assert!(
            f["author"].is_string()
                && f["link"].as_str().unwrap().starts_with("https://github.com/SigmaHQ/sigma/"),
            "{f}"
        );
    }
    let file = lake.dir.path().join("sigma.ndjson");
    std::fs::write(&file, &stdout).unwrap();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/audit/sigma/rules");
    let report = crate::support::run_python(
        "sigma.py",
        &["check", fixtures().to_str().unwrap(), file.to_str().unwrap(), rules.to_str().unwrap(), now],
    );
    println!("{report}");
}

/// Lines a child writes, as they come.
fn lines(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `n` lines (at most a minute).
fn take(rx: &std::sync::mpsc::Receiver<String>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| rx.recv_timeout(std::time::Duration::from_secs(60)).expect("a finding within a minute"))
        .collect()
}

#[test]
fn the_daemon_audits_each_commit_once_until_stopped() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    let pack = lake.dir.path().join("watch.toml");
    std::fs::write(
        &pack,
        "[[audit]]\nid = \"every-event\"\ntitle = \"Every event\"\nschedule = \"on-commit\"\n\
         sql = \"SELECT eventid, eventtime, eventname FROM $EDS_ID\"\n",
    )
    .unwrap();
    let mut daemon = lake
        .command(&["audit", "daemon", "--pack", pack.to_str().unwrap(), "--poll", "1s", "--format", "ndjson"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let found = lines(daemon.stdout.take().unwrap());
    let stratus = fixtures().join("stratus-red-team-detonation-logs");
    lake.ok(&["ingest", "--store", "demo", stratus.to_str().unwrap()]);
    let first = lake.events("demo") as usize;
    let mut ids: Vec<String> = take(&found, first);
    // Real files with two damaged records (exit 3): the 15 others are stored.
    lake.expect(3, &["ingest", "--store", "demo", fixtures().join("cloudtrail2sightings").to_str().unwrap()]);
    let all = lake.events("demo") as usize;
    ids.extend(take(&found, all - first));
    // Nothing more: each event once.
    assert!(found.recv_timeout(std::time::Duration::from_secs(3)).is_err());
    let ids: HashSet<String> = ids
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["finding_id"].to_string())
        .collect();
    assert_eq!(ids.len(), all);

    std::process::Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().unwrap();
    let out = daemon.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("audit daemon: stopped"), "{stderr}");
}

/// A pack of one audit over the events CloudTrail's own API logged: the Stratus Red Team
/// detonations stop, delete and re-point trails.
const TRAILS: &str = r#"
[[audit]]
id = "trail-calls"
title = "Calls to CloudTrail's API"
severity = "high"
sql = "SELECT eventid, eventtime, eventname FROM $EDS_ID WHERE eventsource = 'cloudtrail.amazonaws.com'"
"#;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A lake of the Stratus Red Team detonations and the pack `text`; returns the pack's path and
/// the ids of the events `TRAILS` finds.
fn alert_lake(text: &str) -> (Lake, String, HashSet<String>) {
    let mut lake = Lake::new("2025-01-01T00:00:00Z");
    lake.env.push(("TRAWL_WEBHOOK_SECRET".into(), SECRET.into()));
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    let stratus = fixtures().join("stratus-red-team-detonation-logs");
    lake.ok(&["ingest", "--store", "demo", stratus.to_str().unwrap()]);
    let pack = lake.dir.path().join("alerts.toml");
    std::fs::write(&pack, text).unwrap();
    let ids = lake.ok(&[
        "query",
        "-q",
        "--format",
        "csv",
        "SELECT eventid FROM demo WHERE eventsource = 'cloudtrail.amazonaws.com'",
    ]);
    let ids: HashSet<String> = ids.lines().skip(1).map(str::to_owned).collect();
    assert!(ids.len() >= 3, "{ids:?}");
    (lake, pack.display().to_string(), ids)
}

/// Standard Webhooks' signature, checked here with ring's HMAC, not trawl's code.
fn verify(request: &hook::Request) {
    use base64::Engine;
    let (id, at) = (request.header("webhook-id").unwrap(), request.header("webhook-timestamp").unwrap());
    let key = base64::engine::general_purpose::STANDARD.decode(&SECRET["whsec_".len()..]).unwrap();
    let signed = [format!("{id}.{at}.").as_bytes(), &request.body].concat();
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), &signed);
    let expected = format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(tag.as_ref()));
    assert!(request.header("webhook-signature").unwrap().split(' ').any(|s| s == expected), "{request:?}");
}

fn accepted(hook: &hook::Hook) -> Vec<String> {
    hook.requests()
        .into_iter()
        .filter(|r| r.answered.is_some_and(|s| (200..300).contains(&s)))
        .map(|r| r.header("webhook-id").unwrap_or_default().to_owned())
        .collect()
}

fn column(lake: &Lake, sql: &str) -> String {
    lake.ok(&["query", "-q", "--format", "csv", sql]).lines().nth(1).unwrap_or_default().to_owned()
}

#[test]
fn a_failing_webhook_is_retried_and_each_finding_delivered_once() {
    let (lake, pack, ids) = alert_lake(TRAILS);
    // A 503, then a 429 asking for a second, then success.
    let hook = hook::Hook::start(|_, n| match n {
        0 => hook::Reply::Status(503, vec![]),
        1 => hook::Reply::Status(429, vec![("retry-after", "1".into())]),
        _ => hook::Reply::Status(200, vec![]),
    });
    let url = format!("{}/hooks/trawl", hook.url);
    let (stdout, stderr) = lake.expect(
        1,
        &[
            "audit",
            "run",
            "--once",
            "--pack",
            &pack,
            "--format",
            "ndjson",
            "--alert",
            &format!("webhook:{url}"),
        ],
    );
    assert!(stderr.contains(&format!("alerts: {} delivered, 0 left", ids.len())), "{stderr}");
    let requests = hook.requests();
    assert_eq!(requests.len(), ids.len() + 2);
    // Retries carry the same id; every request is signed and names its finding.
    assert_eq!(requests[0].header("webhook-id"), requests[2].header("webhook-id"));
    let findings: HashSet<String> =
        findings(&stdout).iter().map(|f| f["finding_id"].as_str().unwrap().to_owned()).collect();
    for r in &requests {
        verify(r);
        assert_eq!(r.path, "/hooks/trawl");
        let body = r.json();
        assert_eq!(body["type"], "trawl.finding");
        assert_eq!(body["data"]["finding_id"].as_str(), r.header("webhook-id"));
        assert!(ids.contains(body["data"]["eventid"].as_str().unwrap()), "{body}");
        assert_eq!(body["data"]["severity"], "high");
    }
    let delivered = accepted(&hook);
    assert_eq!(delivered.iter().collect::<HashSet<_>>().len(), delivered.len(), "each finding once");
    assert_eq!(delivered.into_iter().collect::<HashSet<_>>(), findings);

    // Recorded: the run's alerts all delivered.
    assert_eq!(
        column(
            &lake,
            "SELECT alerts || '/' || alerts_delivered || '/' || alerts_pending FROM trawl_audit_runs"
        ),
        format!("{0}/{0}/0", ids.len())
    );
    // A second run finds nothing new and sends nothing.
    lake.expect(0, &["audit", "run", "--once", "--pack", &pack, "--alert", &format!("webhook:{url}")]);
    assert_eq!(hook.requests().len(), ids.len() + 2);
}

#[test]
fn a_dead_sink_leaves_its_alerts_in_the_outbox_for_the_next_run() {
    let (lake, pack, ids) = alert_lake(TRAILS);
    let hook = hook::Hook::start(|_, _| hook::Reply::Status(503, vec![("retry-after", "0".into())]));
    let alert = format!("webhook:{}/down", hook.url);
    let (_, stderr) = lake.expect(2, &["audit", "run", "--once", "--pack", &pack, "--alert", &alert]);
    assert!(stderr.contains(&format!("alerts: 0 delivered, {} left in the outbox", ids.len())), "{stderr}");
    assert!(stderr.contains("503"), "{stderr}");
    // Tried four times, then the sink is given up for this run: the rest wait untried.
    assert_eq!(hook.requests().len(), 4);
    let run = column(&lake, "SELECT alerts_pending || ' ' || alert_error FROM trawl_audit_runs");
    assert!(run.starts_with(&format!("{} ", ids.len())) && run.contains("503"), "{run}");
    assert_eq!(column(&lake, "SELECT count(*) FROM trawl_audit_alerts WHERE state = 'failed'"), "1");

    // The receiver is back: the next run finds nothing new and delivers the outbox.
    hook.answer(|_, _| hook::Reply::Status(204, vec![]));
    let (_, stderr) = lake.expect(0, &["audit", "run", "--once", "--pack", &pack, "--alert", &alert]);
    assert!(stderr.contains(&format!("alerts: {} delivered, 0 left", ids.len())), "{stderr}");
    assert_eq!(accepted(&hook).into_iter().collect::<HashSet<_>>().len(), ids.len());
    assert_eq!(column(&lake, "SELECT alerts_pending FROM trawl_audit_runs"), "0");
    // Without the sink, nothing waits and nothing is sent.
    lake.expect(0, &["audit", "run", "--once", "--pack", &pack]);
}

#[test]
fn slack_pagerduty_file_and_command_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.ndjson");
    let piped = dir.path().join("piped.json");
    let hook = hook::Hook::start(|_, _| hook::Reply::Status(202, vec![]));
    let pack = format!(
        r#"{TRAILS}
sinks = ["pd", "slack", "file", "cmd"]

[[audit]]
id = "trail-reads"
title = "Trail reads (low: not for PagerDuty)"
severity = "low"
sql = "SELECT eventid, eventtime FROM $EDS_ID WHERE eventname = 'DescribeTrails'"

[[sink]]
name = "pd"
kind = "pagerduty"
url = "{url}/v2/enqueue"
routing_key_env = "TEST_ROUTING_KEY"
min_severity = "high"

[[sink]]
name = "slack"
kind = "slack"
url = "{url}/services/T0/B0/x"

[[sink]]
name = "file"
kind = "file"
path = "{file}"

[[sink]]
name = "cmd"
kind = "command"
command = ["sh", "-c", "cat > '{piped}'"]
"#,
        url = hook.url,
        file = file.display(),
        piped = piped.display(),
    );
    let (mut lake, pack, ids) = alert_lake(&pack);
    lake.env.push(("TEST_ROUTING_KEY".into(), "R0123456789abcdef0123456789abcd".into()));
    let (stdout, stderr) = lake.expect(1, &["audit", "run", "--once", "--pack", &pack, "--format", "ndjson"]);
    let found = findings(&stdout);
    let reads = found.iter().filter(|f| f["audit"] == "trail-reads").count();
    assert!(stderr.contains(&format!("alerts: {} delivered", ids.len() * 4 + reads * 3)), "{stderr}");

    let requests = hook.requests();
    let pd: Vec<serde_json::Value> =
        requests.iter().filter(|r| r.path == "/v2/enqueue").map(|r| r.json()).collect();
    assert_eq!(pd.len(), ids.len(), "only the high audit reaches PagerDuty");
    for event in &pd {
        assert_eq!(event["routing_key"], "R0123456789abcdef0123456789abcd");
        assert_eq!(event["event_action"], "trigger");
        assert_eq!(event["payload"]["severity"], "error");
        assert_eq!(event["dedup_key"], event["payload"]["custom_details"]["finding_id"]);
        assert!(event["payload"]["summary"].as_str().unwrap().contains("Calls to CloudTrail's API"));
    }
    let slack: Vec<serde_json::Value> =
        requests.iter().filter(|r| r.path.starts_with("/services/")).map(|r| r.json()).collect();
    // Only `trail-calls` names its sinks; `trail-reads` goes to all of them but PagerDuty.
    assert_eq!(slack.len(), ids.len() + reads);
    assert!(slack.iter().all(|m| m["text"].as_str().unwrap().starts_with("*[")));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), ids.len() + reads);
    let piped: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&piped).unwrap()).unwrap();
    assert_eq!(piped.as_array().unwrap().len(), ids.len() + reads);
    assert!(lines.iter().all(|l| l["row"].is_object() && l["store"] == "demo"));
}

#[test]
fn sigma_alerts_name_the_rules_author() {
    let (lake, _, _) = alert_lake(TRAILS);
    let file = lake.dir.path().join("sigma.ndjson");
    let alert = format!("file:{}", file.display());
    lake.expect(1, &["audit", "run", "--once", "--pack", "sigma", "--alert", &alert]);
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(l["author"].as_str().is_some_and(|a| !a.is_empty()), "{l}");
        assert!(l["link"].as_str().unwrap().starts_with("https://github.com/SigmaHQ/sigma/"), "{l}");
    }
}

#[test]
fn a_run_killed_anywhere_delivers_each_finding_once() {
    let pack = "[[audit]]\nid = \"every-event\"\ntitle = \"Every event\"\nseverity = \"low\"\n\
                sql = \"SELECT eventid, eventtime, eventname FROM $EDS_ID\"\n";
    let (lake, pack, _) = alert_lake(pack);
    // While the receiver hangs, nothing is acknowledged: each run is killed somewhere in its
    // queries, its commit or its deliveries.
    let hook = hook::Hook::start(|_, _| hook::Reply::Hang);
    let alert = format!("webhook:{}/", hook.url);
    let args = ["audit", "run", "--once", "--pack", &pack, "--alert", &alert];
    for delay in [30, 120, 250, 400, 700, 1200, 2500] {
        let mut child = lake
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // Some run was killed while a request waited for its answer.
    assert!(hook.requests().iter().any(|r| r.answered.is_none()));
    hook.answer(|_, _| hook::Reply::Status(200, vec![]));
    lake.run(&args);
    let events = lake.events("demo") as usize;
    let delivered = accepted(&hook);
    assert_eq!(delivered.len(), events, "each event's finding acknowledged once");
    assert_eq!(delivered.iter().collect::<HashSet<_>>().len(), events);
    assert_eq!(
        column(&lake, "SELECT count(*) || ' ' || count(DISTINCT finding_id) FROM trawl_audit_findings"),
        format!("{events} {events}")
    );
    assert_eq!(column(&lake, "SELECT sum(alerts_pending) FROM trawl_audit_runs"), "0");
}

#[test]
fn ingest_follow_runs_on_commit_audits_after_each_round() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    let pack = lake.dir.path().join("watch.toml");
    std::fs::write(
        &pack,
        "[[audit]]\nid = \"every-event\"\ntitle = \"Every event\"\nschedule = \"on-commit\"\nseverity = \"low\"\n\
         sql = \"SELECT eventid, eventtime, eventname FROM $EDS_ID\"\n\n\
         [[audit]]\nid = \"hourly\"\ntitle = \"Left to the daemon\"\nschedule = \"hourly\"\n\
         sql = \"SELECT eventid FROM $EDS_ID\"\n",
    )
    .unwrap();
    let inbox = lake.dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let copy = |dir: &str| {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, inbox.join(path.file_name().unwrap())).unwrap();
        }
    };
    copy("stratus-red-team-detonation-logs");
    let alerts = lake.dir.path().join("alerts.ndjson");
    let follower = lake
        .command(&[
            "ingest",
            "--store",
            "demo",
            inbox.to_str().unwrap(),
            "--follow",
            "1",
            "--audit",
            pack.to_str().unwrap(),
            "--alert",
            &format!("file:{}", alerts.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Waits until the store holds more than `before` events and each has its alert.
    let settle = |before: usize| -> usize {
        for _ in 0..600 {
            let stored = lake.events("demo") as usize;
            let alerted = std::fs::read_to_string(&alerts).map(|t| t.lines().count()).unwrap_or(0);
            if stored > before && alerted == stored {
                return stored;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no alert for each event within a minute");
    };
    let first = settle(0);
    copy("cloudtrail2sightings");
    settle(first);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    std::process::Command::new("kill").args(["-INT", &follower.id().to_string()]).status().unwrap();
    let out = follower.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped following"), "{stderr}");
    assert!(stderr.contains("1 audits not on-commit are left"), "{stderr}");
    // Each event once: no round audited a commit twice.
    let all = lake.events("demo") as usize;
    assert!(all > first);
    let ids: HashSet<String> = std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["finding_id"].to_string())
        .collect();
    assert_eq!(ids.len(), all);
    assert_eq!(std::fs::read_to_string(&alerts).unwrap().lines().count(), all);
}
