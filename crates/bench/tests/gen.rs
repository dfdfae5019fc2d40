//! `trawl-bench gen`, the real binary, writing a trail bucket layout to a directory and to a
//! bucket of a real S3-compatible server (moto, read back with boto3).

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use support::{Moto, walk};

/// A small set: 2 accounts x 2 regions x 3 days of hourly files.
const SET: &str = "--events 6000 --days 3 --accounts 2 --regions 2 --seed 11 --file-minutes 60";

fn generate(out: &str, threads: &str, env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl-bench"))
        .args(["gen", out])
        .args(SET.split(' '))
        .args(["--threads", threads])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run trawl-bench")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `root`, keyed by its path from `root`.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walk(root)
        .into_iter()
        .map(|path| {
            let key = Path::new(&path).strip_prefix(root).expect("under root").display().to_string();
            (key, std::fs::read(&path).expect("read"))
        })
        .collect()
}

#[test]
fn a_bucket_gets_the_files_a_directory_gets() {
    let moto = Moto::start(&[]);
    moto.script(&["bucket", "trails"]);
    let out = generate("s3://trails/bench/set-11", "2", &moto.env());
    assert!(out.status.success(), "{}\nmoto:\n{}", stderr(&out), moto.log());
    assert!(out.stdout.is_empty(), "figures go to stderr");
    assert!(stderr(&out).starts_with("s3://trails/bench/set-11: 6000 events ("), "{}", stderr(&out));

    let local = tempfile::tempdir().expect("tempdir");
    let out = generate(local.path().to_str().expect("utf-8"), "1", &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let fetched = tempfile::tempdir().expect("tempdir");
    let count = moto.script(&["download", "trails", "bench/set-11", fetched.path().to_str().expect("utf-8")]);
    let (bucket, directory) = (files(fetched.path()), files(local.path()));
    assert_eq!(count.trim().parse::<usize>().ok(), Some(bucket.len()));
    assert_eq!(bucket.keys().collect::<Vec<_>>(), directory.keys().collect::<Vec<_>>());
    for (key, bytes) in &bucket {
        assert!(bytes == &directory[key], "{key} differs");
    }

    let manifest: serde_json::Value =
        serde_json::from_slice(&bucket["trawl-bench.manifest"]).expect("manifest is JSON");
    let logs = bucket.keys().filter(|k| k.starts_with("AWSLogs/") && k.ends_with(".json.gz")).count();
    assert_eq!(manifest["files"].as_u64(), Some(logs as u64));
    assert_eq!(manifest["events"].as_u64(), Some(6_000));
    // Hourly files of 2 x 2 streams over 3 days, fewer in the night hours.
    assert!((100..=2 * 2 * 3 * 24 * 2).contains(&logs), "{logs} log files");
    assert_eq!(bucket.len(), logs + 1, "log files and the manifest, nothing else");
}

#[test]
fn a_missing_bucket_fails_naming_the_object() {
    let moto = Moto::start(&[]);
    let out = generate("s3://no-such-bucket/set", "2", &moto.env());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.starts_with("error: cannot write set/AWSLogs/"), "{err}");
    assert!(err.contains(": invalid location 's3://no-such-bucket/set': the bucket does not exist"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
