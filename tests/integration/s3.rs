//! Lakes and trail buckets on a real S3-compatible server: moto's `moto_server`, installed next
//! to the test Python by `scripts/test`, one server per test on a free port of 127.0.0.1. These
//! tests never skip: without moto they fail, saying how to install it.

use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{Lake, figure};
use crate::support::{Moto, endpoint_env, python_script};

const NOW: &str = "2026-03-20T00:00:00Z";

impl Moto {
    /// `(method, path and query)` of every request to `bucket` so far.
    pub(crate) fn requests(&self, bucket: &str) -> Vec<(String, String)> {
        let log = self.log();
        let prefix = format!("/{bucket}");
        log.lines()
            .filter_map(|line| {
                let request = line.split('"').nth(1)?;
                let mut words = request.split_whitespace();
                let method = words.next()?.rsplit('m').next()?.to_owned();
                let path = words.next()?.to_owned();
                (path == prefix
                    || path.starts_with(&format!("{prefix}/"))
                    || path.starts_with(&format!("{prefix}?")))
                .then_some((method, path))
            })
            .collect()
    }

    /// LIST and object GET requests to `bucket` so far.
    pub(crate) fn lists_and_gets(&self, bucket: &str) -> (usize, usize) {
        let requests = self.requests(bucket);
        let lists = requests.iter().filter(|(m, p)| m.ends_with("GET") && p.contains("list-type=2")).count();
        let gets = requests.iter().filter(|(m, p)| m.ends_with("GET") && !p.contains('?')).count();
        (lists, gets)
    }
}

/// The trail layout's summary printed by `s3_trail.py layout`.
fn layout(moto: &Moto, bucket: &str, files_per_day: &str) -> serde_json::Value {
    serde_json::from_str(&moto.script(&["layout", bucket, files_per_day])).expect("layout summary")
}

/// A moto server with a generated trail layout in `bucket`, an empty lake at `s3://lake/`, and
/// the layout's summary and event count.
fn trail_and_lake(bucket: &str, files_per_day: &str) -> (Moto, serde_json::Value, Lake, u64) {
    let moto = Moto::start(&[]);
    let summary = layout(&moto, bucket, files_per_day);
    moto.script(&["bucket", "lake"]);
    let lake = Lake::at("s3://lake/", NOW, moto.env());
    let total = summary["events"].as_u64().expect("events");
    (moto, summary, lake, total)
}

fn scalar(lake: &Lake, sql: &str) -> String {
    lake.ok(&["query", "-q", "--format", "csv", sql]).lines().nth(1).unwrap_or_default().to_owned()
}

#[test]
fn lake_in_a_bucket() {
    let moto = Moto::start(&[]);
    moto.script(&["bucket", "audit-lake"]);
    let lake = Lake::at("s3://audit-lake/trawl", NOW, moto.env());

    // Stores: create, list, show, update, delete, restore.
    lake.ok(&["store", "create", "stratus", "--retention-days", "3653"]);
    lake.ok(&["store", "create", "scratch", "--termination-protection", "off"]);
    let (_, err) = lake.expect(1, &["store", "create", "stratus"]);
    assert!(err.contains("already exists"), "{err}");
    let list = lake.ok(&["store", "list"]);
    assert!(list.contains("stratus") && list.contains("scratch"), "{list}");
    lake.ok(&["store", "delete", "scratch"]);
    assert!(lake.ok(&["store", "list"]).contains("PENDING_DELETION"));
    lake.ok(&["store", "restore", "scratch"]);
    let show = lake.show("stratus");
    assert_eq!(show["location"], "s3://audit-lake/trawl/stratus/");

    // Ingest of local files into the bucket, then queries, export and retention.
    let fixtures = crate::harness::fixture("stratus-red-team-detonation-logs");
    let report = lake.ok(&["ingest", "--store", "stratus", "--create", &fixtures]);
    let stored = figure(&report, "events", "stored");
    assert!(stored > 100, "{report}");
    assert_eq!(lake.events("stratus"), stored);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM stratus"), stored.to_string());
    assert_eq!(scalar(&lake, "SELECT count(DISTINCT eventid) FROM stratus"), stored.to_string());
    let exported = lake.export("stratus");
    assert_eq!(exported.len() as u64, stored);
    let again = lake.ok(&["ingest", "--store", "stratus", "--create", &fixtures]);
    assert_eq!(figure(&again, "events", "stored"), 0, "{again}");
    // Every object is under the lake's prefix, the Delta log included.
    let puts: Vec<String> = moto
        .requests("audit-lake")
        .into_iter()
        .filter(|(m, p)| m.ends_with("PUT") && p != "/audit-lake")
        .map(|(_, p)| p)
        .collect();
    assert!(puts.iter().all(|p| p.starts_with("/audit-lake/trawl/")), "{puts:?}");
    assert!(puts.iter().any(|p| p.contains("/stratus/_delta_log/00000000000000000001.json")), "{puts:?}");

    // Audits over the bucket's lake: the audit log and the result files in the bucket too.
    let (found, _) = lake.expect(
        1,
        &["audit", "run", "--once", "--out", "s3://audit-lake/results", "--out-format", "parquet"],
    );
    assert!(found.contains("builtin/cloudtrail-tampering"), "{found}");
    let recorded =
        scalar(&lake, "SELECT count(*) FROM trawl_audit_runs WHERE result_file LIKE 'builtin/%.parquet'");
    assert!(recorded.parse::<u64>().unwrap() > 0, "{recorded}");
    let (again, _) = lake.expect(0, &["audit", "run", "--once"]);
    assert_eq!(again, "");
    let puts: Vec<String> = moto.requests("audit-lake").into_iter().map(|(_, p)| p).collect();
    assert!(puts.iter().any(|p| p.starts_with("/audit-lake/trawl/_trawl/audits/_delta_log/")), "{puts:?}");
    assert!(
        puts.iter().any(|p| p.starts_with("/audit-lake/results/builtin/") && p.ends_with(".parquet")),
        "{puts:?}"
    );

    // Retention: seven days, at a time long after the events, drops them all.
    lake.ok(&["store", "update", "stratus", "--retention-days", "7"]);
    let (out, _) = lake.expect(0, &["retention", "apply", "--store", "stratus"]);
    assert!(out.contains("deleted"), "{out}");
    assert_eq!(scalar(&lake, "SELECT count(*) FROM stratus"), "0");
    assert_eq!(lake.events("stratus"), 0);

    // A bucket that does not exist.
    let missing = Lake::at("s3://no-such-bucket/trawl", NOW, moto.env());
    let (_, err) = missing.expect(1, &["store", "list"]);
    assert!(err.contains("s3://no-such-bucket/trawl/") && err.contains("bucket does not exist"), "{err}");
}

#[test]
fn trail_bucket_import_prunes_prefixes() {
    let (moto, summary, lake, total) = trail_and_lake("org-trail", "3");
    let per_day = |day: &str| summary["per_day"][day].as_u64().expect("day");

    // Two days of a ten-day layout: the day prefixes of the two days and the day after them.
    let (lists0, gets0) = moto.lists_and_gets("org-trail");
    let report = lake.ok(&[
        "ingest",
        "--store",
        "week",
        "--create",
        "s3://org-trail/",
        "--start",
        "2026-03-03",
        "--end",
        "2026-03-05",
    ]);
    let (lists1, gets1) = moto.lists_and_gets("org-trail");
    // 3 owners x 2 regions x 3 day prefixes, 3 files each.
    assert_eq!(figure(&report, "prefixes", "found"), 18, "{report}");
    assert_eq!(figure(&report, "prefixes", "completed"), 18, "{report}");
    assert_eq!(figure(&report, "files", "found"), 54, "{report}");
    assert_eq!(gets1 - gets0, 54, "one GET per log file in range\n{report}");
    let lists = figure(&report, "prefixes", "LIST");
    assert_eq!(lists1 - lists0, lists as usize, "{report}");
    assert_eq!(
        figure(&report, "events", "stored"),
        per_day("2026-03-03") + per_day("2026-03-04"),
        "{report}"
    );

    // The whole bucket: digests, Insights and Config left out, never mixed in.
    let report = lake.ok(&["ingest", "--store", "all", "--create", "s3://org-trail/"]);
    let (lists2, gets2) = moto.lists_and_gets("org-trail");
    assert_eq!(figure(&report, "prefixes", "found"), 60, "{report}");
    assert_eq!(figure(&report, "prefixes", "left"), 9, "{report}");
    assert_eq!(figure(&report, "files", "found"), 180, "{report}");
    assert_eq!(gets2 - gets1, 180);
    assert!(
        (lists as usize) < lists2 - lists1,
        "the two-day import listed {lists}, the whole bucket {}",
        lists2 - lists1
    );
    assert_eq!(figure(&report, "events", "stored"), total, "{report}");
    assert_eq!(lake.events("all"), total);
    assert_eq!(scalar(&lake, "SELECT count(*) FROM \"all\" WHERE eventtype = 'AwsCloudTrailInsight'"), "0");
    assert_eq!(
        scalar(
            &lake,
            "SELECT count(DISTINCT recipientaccountid) || '/' || count(DISTINCT awsregion) FROM \"all\""
        ),
        "3/2"
    );

    // One account of the organization trail, one region.
    let report = lake.ok(&[
        "ingest",
        "--store",
        "member",
        "--create",
        "s3://org-trail/AWSLogs/",
        "--account",
        "333333333333",
        "--region",
        "eu-west-1",
    ]);
    assert_eq!(figure(&report, "files", "found"), 30, "{report}");
    assert_eq!(
        scalar(
            &lake,
            "SELECT count(*) FROM member WHERE recipientaccountid <> '333333333333' OR awsregion <> 'eu-west-1'"
        ),
        "0"
    );

    // A rerun reads nothing: the ledger has every object (key, ETag, size).
    let (_, gets3) = moto.lists_and_gets("org-trail");
    let report = lake.ok(&["ingest", "--store", "all", "--create", "s3://org-trail/"]);
    let (_, gets4) = moto.lists_and_gets("org-trail");
    assert_eq!(gets4, gets3, "a rerun fetched objects\n{report}");
    assert_eq!(figure(&report, "files", "already"), 180, "{report}");
    assert_eq!(figure(&report, "events", "stored"), 0, "{report}");
}

#[test]
fn follow_takes_objects_added_later() {
    let (moto, _, lake, total) = trail_and_lake("live-trail", "1");
    let mut follower = lake
        .command(&["ingest", "--store", "live", "--create", "s3://live-trail/", "--follow", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trawl ingest --follow");
    let wait_for = |events: u64| {
        let started = Instant::now();
        loop {
            // Until the first round creates the store, the query fails: no events yet.
            let out = lake.run(&["query", "-q", "--format", "csv", "SELECT count(*) FROM live"]);
            let now =
                String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
            if now == events {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(90), "waited for {events} events, have {now}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait_for(total);
    let added: u64 = moto.script(&["add", "live-trail", "2026-03-10"]).trim().parse().expect("count");
    wait_for(total + added);
    let added_next_day: u64 =
        moto.script(&["add", "live-trail", "2026-03-11"]).trim().parse().expect("count");
    wait_for(total + added + added_next_day);
    Command::new("kill").args(["-INT", &follower.id().to_string()]).status().expect("kill -INT");
    let out = wait_with_timeout(&mut follower, Duration::from_secs(30));
    assert!(out.0.success(), "follow exited with {:?}\n{}", out.0, out.1);
    assert_eq!(lake.events("live"), total + added + added_next_day);
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return (status, err);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("trawl did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_concurrent_ingests_lose_nothing() {
    let moto = Moto::start(&[]);
    let _ = layout(&moto, "shared-trail", "2");
    moto.script(&["bucket", "lake"]);
    let lake = Lake::at("s3://lake/", NOW, moto.env());
    lake.ok(&["store", "create", "shared"]);
    // Two writers, one account each, a commit per day: twenty commits racing for versions.
    let writers: Vec<_> = ["111111111111", "222222222222"]
        .into_iter()
        .map(|account| {
            let days: Vec<String> = (1..=10).map(|d| format!("2026-03-{d:02}")).collect();
            let mut commands = Vec::new();
            for (i, day) in days.iter().enumerate() {
                let next = format!("2026-03-{:02}", i + 2);
                commands.push(lake.command(&[
                    "ingest",
                    "--store",
                    "shared",
                    "s3://shared-trail/",
                    "--account",
                    account,
                    "--start",
                    day,
                    "--end",
                    &next,
                ]));
            }
            std::thread::spawn(move || {
                for mut cmd in commands {
                    let out = cmd.output().expect("run trawl");
                    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let stored = scalar(&lake, "SELECT count(*) FROM shared");
    // Every event of the two accounts, each once: compare with a single ingest of the same.
    let single = Lake::at("s3://lake/single/", NOW, moto.env());
    let report = single.ok(&[
        "ingest",
        "--store",
        "one",
        "--create",
        "s3://shared-trail/",
        "--account",
        "111111111111",
        "--account",
        "222222222222",
        "--start",
        "2026-03-01",
        "--end",
        "2026-03-11",
    ]);
    let want = figure(&report, "events", "stored");
    assert_eq!(stored, want.to_string());
    assert_eq!(scalar(&lake, "SELECT count(DISTINCT eventid) FROM shared"), want.to_string());
    // Twenty ingest commits after the table's creation.
    let commits = moto
        .requests("lake")
        .into_iter()
        .filter(|(m, p)| {
            m.ends_with("PUT") && p.starts_with("/lake/shared/_delta_log/") && p.ends_with(".json")
        })
        .count();
    assert!(commits >= 21, "{commits} commit PUTs");
    assert_eq!(lake.show("shared")["summary"]["version"], 20);
}

/// A TCP relay to the server that can be cut, as if the server went away: moto keeps its
/// objects in memory, so stopping the process would lose the bucket the rerun needs.
struct Relay {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let mut guard = o.lock().expect("lock");
                guard.extend([client.try_clone().expect("clone"), server.try_clone().expect("clone")]);
                drop(guard);
                for (mut from, mut to) in [
                    (client.try_clone().expect("clone"), server.try_clone().expect("clone")),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Self { port, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().expect("lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

#[test]
fn server_gone_mid_ingest_then_back() {
    let moto = Moto::start(&[]);
    let summary = layout(&moto, "big-trail", "8");
    moto.script(&["bucket", "lake"]);
    let total = summary["events"].as_u64().expect("events");
    let relay = Relay::start(moto.port);
    let env = endpoint_env(
        &format!("http://127.0.0.1:{}", relay.port),
        &[("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_MAX_ATTEMPTS", "2")],
    );
    let lake = Lake::at("s3://lake/", NOW, env);
    lake.ok(&["store", "create", "cut"]);
    let mut run = lake
        .command(&["ingest", "--store", "cut", "s3://big-trail/", "--commit-mib", "1", "--concurrency", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start trawl");
    // Cut the line once the first ingest commit is in.
    let started = Instant::now();
    while !moto
        .requests("lake")
        .iter()
        .any(|(m, p)| m.ends_with("PUT") && p.ends_with("_delta_log/00000000000000000001.json"))
    {
        assert!(started.elapsed() < Duration::from_secs(60), "no commit");
        std::thread::sleep(Duration::from_millis(20));
    }
    relay.cut();
    let (status, err) = wait_with_timeout(&mut run, Duration::from_secs(120));
    relay.restore();
    assert!(!status.success(), "the ingest finished before the cut; nothing was tested\n{err}");
    let partial = lake.events("cut");
    assert!(partial > 0 && partial < total, "{partial} of {total} stored before the cut\n{err}");

    let report = lake.ok(&["ingest", "--store", "cut", "s3://big-trail/"]);
    assert_eq!(lake.events("cut"), total, "{report}");
    assert_eq!(scalar(&lake, "SELECT count(DISTINCT eventid) FROM cut"), total.to_string());
}

#[test]
fn credentials_from_env_profiles_and_wrong_keys() {
    // Authentication on after the three IAM calls that make the test user.
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let keys = moto.script(&["iam"]);
    let (key, secret) = keys.trim().split_once(' ').expect("KEY SECRET");
    let out = python_script("s3_trail.py")
        .args(["bucket", &moto.endpoint(), "secure-lake"])
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .expect("create bucket");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Environment variables.
    let env =
        endpoint_env(&moto.endpoint(), &[("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret)]);
    let lake = Lake::at("s3://secure-lake/lake", NOW, env);
    lake.ok(&["store", "create", "by-env"]);

    // A named profile: keys in the credentials file, region in the config file.
    let home = tempfile::tempdir().expect("tempdir");
    let aws = home.path().join(".aws");
    std::fs::create_dir_all(&aws).expect("mkdir");
    std::fs::write(aws.join("credentials"), format!("[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = x\n\n[auditor]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")).expect("write");
    std::fs::write(aws.join("config"), "[profile auditor]\nregion = eu-west-1\n").expect("write");
    let profile = vec![
        ("AWS_ENDPOINT_URL".to_owned(), moto.endpoint()),
        ("AWS_ALLOW_HTTP".to_owned(), "true".to_owned()),
        ("HOME".to_owned(), home.path().display().to_string()),
        ("AWS_PROFILE".to_owned(), "auditor".to_owned()),
    ];
    let mut cmd = Lake::at("s3://secure-lake/lake", NOW, profile).command(&["store", "list"]);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run trawl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("by-env"));

    // Wrong keys: access denied, naming the bucket.
    let wrong = endpoint_env(
        &moto.endpoint(),
        &[("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
    );
    let (_, err) = Lake::at("s3://secure-lake/lake", NOW, wrong).expect(1, &["store", "list"]);
    assert!(err.contains("access denied to s3://secure-lake/lake/"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let unknown = endpoint_env(
        &moto.endpoint(),
        &[("AWS_ACCESS_KEY_ID", "AKIANOTAKEY"), ("AWS_SECRET_ACCESS_KEY", "x")],
    );
    let (_, err) = Lake::at("s3://secure-lake/lake", NOW, unknown)
        .expect(1, &["ingest", "--store", "x", "s3://secure-lake/AWSLogs/"]);
    assert!(err.contains("access denied to s3://secure-lake/"), "{err}");
}

#[test]
fn raw_trail_queries_equal_store_queries() {
    let (moto, summary, lake, total) = trail_and_lake("athena-trail", "3");
    lake.ok(&["ingest", "--store", "ingested", "--create", "s3://athena-trail/"]);

    let queries = [
        "SELECT count(*), count(DISTINCT eventid), min(eventtime), max(eventtime) FROM {t}",
        "SELECT eventid, eventname, eventsource, awsregion, recipientaccountid, sourceipaddress, \
         useridentity.arn, element_at(requestparameters, 'bucketName') AS bucket, errorcode, readonly \
         FROM {t} WHERE eventtime >= '2026-03-04 00:00:00' AND eventtime < '2026-03-05 00:00:00' ORDER BY eventid",
        "SELECT eventname, count(*) AS n FROM {t} WHERE eventtime BETWEEN '2026-03-02 06:00:00' AND '2026-03-08 18:00:00' \
         GROUP BY eventname ORDER BY n DESC, eventname",
        "SELECT useridentity.type, count(*) FROM {t} WHERE recipientaccountid = '333333333333' GROUP BY 1 ORDER BY 1",
    ];
    for q in queries {
        let raw = lake.ok(&[
            "query",
            "-q",
            "--format",
            "csv",
            "--trail",
            "s3://athena-trail/",
            &q.replace("{t}", "trail"),
        ]);
        let stored = lake.ok(&["query", "-q", "--format", "csv", &q.replace("{t}", "ingested")]);
        assert_eq!(raw, stored, "{q}");
        assert!(raw.lines().count() > 1, "{q}: no rows");
    }

    // One day in the query: only the day prefixes of that day and the next are read.
    let (_, before) = moto.lists_and_gets("athena-trail");
    let one_day = "SELECT count(*) FROM logs WHERE eventtime >= '2026-03-04 00:00:00' AND eventtime < '2026-03-05 00:00:00'";
    let count = lake.ok(&["query", "-q", "--format", "csv", "--trail", "logs=s3://athena-trail/", one_day]);
    let (_, after) = moto.lists_and_gets("athena-trail");
    assert_eq!(after - before, 3 * 2 * 2 * 3, "GETs for one day of a ten-day layout");
    assert_eq!(count.lines().nth(1), Some(summary["per_day"]["2026-03-04"].to_string().as_str()));

    // The whole layout, and the shell's \trail.
    let all = lake.ok(&[
        "query",
        "-q",
        "--format",
        "csv",
        "--trail",
        "s3://athena-trail/",
        "SELECT count(*) FROM trail",
    ]);
    assert_eq!(all.lines().nth(1), Some(total.to_string().as_str()));
    let mut shell = lake
        .command(&[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("trawl");
    use std::io::Write;
    shell
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"\\trail ct s3://athena-trail/AWSLogs/111111111111/\n\\format csv\nSELECT count(DISTINCT recipientaccountid) AS accounts FROM ct;\n\\d\n")
        .expect("write");
    let out = shell.wait_with_output().expect("shell");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("accounts\n1\n"), "{stdout}");
    assert!(stdout.contains("ct\ttrail logs at s3://athena-trail/AWSLogs/111111111111/"), "{stdout}");
}

#[test]
fn raw_trail_over_a_local_directory() {
    let lake = Lake::new(NOW);
    let dir = crate::harness::fixture("stratus-red-team-detonation-logs");
    lake.ok(&["ingest", "--store", "stratus", "--create", &dir]);
    let q = "SELECT DISTINCT eventid, eventname, eventtime, useridentity.arn FROM {t} ORDER BY eventid";
    let trail = format!("local={dir}");
    let raw = lake.ok(&["query", "-q", "--format", "csv", "--trail", &trail, &q.replace("{t}", "local")]);
    let stored = lake.ok(&["query", "-q", "--format", "csv", &q.replace("{t}", "stratus")]);
    assert_eq!(raw, stored);
    assert!(raw.lines().count() > 100);
}

/// Credentials that may only read (issue 23, defects 3 and 12): every read command works on
/// the lake, and a write is refused with the location named, not S3's XML.
#[test]
fn read_only_credentials() {
    // Authentication on after the six IAM calls that make the two users.
    let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", "6")]);
    let keys = moto.script(&["iam-reader"]);
    let mut lines = keys.lines().map(|l| l.split_once(' ').expect("KEY SECRET"));
    let (admin, reader_keys) = (lines.next().expect("auditor"), lines.next().expect("reader"));
    let out = python_script("s3_trail.py")
        .args(["bucket", &moto.endpoint(), "secure-lake"])
        .env("AWS_ACCESS_KEY_ID", admin.0)
        .env("AWS_SECRET_ACCESS_KEY", admin.1)
        .output()
        .expect("create bucket");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let as_user = |(key, secret): (&str, &str)| {
        let env =
            endpoint_env(&moto.endpoint(), &[("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret)]);
        Lake::at("s3://secure-lake/lake", NOW, env)
    };
    let writer = as_user(admin);
    writer.ok(&["ingest", "--store", "audit", "--create", &crate::harness::fixture("plaso-testdata")]);
    writer.ok(&["store", "create", "gone", "--termination-protection", "off"]);
    writer.ok(&["store", "delete", "gone"]);

    let later = |lake: Lake| Lake { now: "2026-12-31T00:00:00Z".into(), ..lake };
    let reader = later(as_user(reader_keys));
    assert!(reader.ok(&["store", "list"]).contains("audit"));
    assert_eq!(reader.ok(&["query", "-q", "--format", "csv", "SELECT count(*) AS n FROM audit"]), "n\n6\n");
    reader.ok(&["retention", "apply", "--dry-run"]);
    assert_eq!(reader.events("audit"), 6);
    assert_eq!(reader.show("audit")["summary"]["events"], 6);
    // The statements of stdin, as the shell runs them, and a raw trail table beside the stores.
    let mut shell = reader.command(&[]);
    shell.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    let mut child = shell.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"\\format csv\nSELECT count(*) AS n FROM audit; /* ; */ SELECT count(*) AS m FROM audit;\n",
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n\n6\nm\n6\n");
    let trail = crate::harness::fixture("plaso-testdata");
    let sql = "SELECT (SELECT count(*) FROM audit) AS a, (SELECT count(*) FROM trail) AS t";
    assert_eq!(reader.ok(&["query", "-q", "--format", "csv", "--trail", &trail, sql]), "a,t\n6,6\n");
    let (_, err) = reader.expect(
        1,
        &["ingest", "--store", "audit", &crate::harness::fixture("stratus-red-team-detonation-logs")],
    );
    assert!(err.contains("access denied to s3://secure-lake/lake/"), "{err}");
    assert!(!err.contains("<?xml") && !err.contains("Failed to read delta log"), "{err}");
    // With no store to purge, the first write refused is the data file's or the commit's.
    let env = |(key, secret): (&str, &str)| {
        endpoint_env(&moto.endpoint(), &[("AWS_ACCESS_KEY_ID", key), ("AWS_SECRET_ACCESS_KEY", secret)])
    };
    Lake::at("s3://secure-lake/other", NOW, env(admin)).ok(&["store", "create", "audit"]);
    let (_, err) = Lake::at("s3://secure-lake/other", NOW, env(reader_keys))
        .expect(1, &["ingest", "--store", "audit", &crate::harness::fixture("plaso-testdata")]);
    assert!(err.contains("access denied to s3://secure-lake/other/audit/"), "{err}");
    assert!(!err.contains("<?xml") && !err.contains("Failed to read delta log"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
