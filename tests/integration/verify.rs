//! `trawl verify`: every tampering case named, on a local lake and on the S3 test server, and
//! nothing found on a store nobody touched; queries over a tampered file fail naming it.

use std::path::PathBuf;

use crate::harness::{Lake, fixture};
use crate::support::Moto;

const NOW: &str = "2024-12-31T00:00:00Z";

/// Where a lake's objects are, to change them behind trawl's back. Paths are relative to the
/// lake's root.
enum Storage<'m> {
    Local(PathBuf),
    S3 { moto: &'m Moto, bucket: &'static str, prefix: &'static str },
}

impl Storage<'_> {
    fn tamper(&self, action: &str, key: &str, other: &str) -> String {
        let Storage::S3 { moto, bucket, prefix } = self else { unreachable!("S3 only") };
        moto.script(&["tamper", bucket, action, &format!("{prefix}/{key}"), other])
    }

    /// The files under `dir`, relative to the root, sorted.
    fn files(&self, dir: &str) -> Vec<String> {
        let mut files = match self {
            Storage::Local(root) => crate::support::walk(&root.join(dir))
                .into_iter()
                .map(|p| p.trim_start_matches(&format!("{}/", root.display())).to_owned())
                .collect(),
            Storage::S3 { prefix, .. } => self
                .tamper("list", &format!("{dir}/"), "")
                .lines()
                .map(|k| k.trim_start_matches(&format!("{prefix}/")).to_owned())
                .collect::<Vec<_>>(),
        };
        files.sort();
        files
    }

    fn data_files(&self, store: &str) -> Vec<String> {
        self.files(store)
            .into_iter()
            .filter(|f| f.ends_with(".parquet") && f.contains("/eventdate="))
            .collect()
    }

    fn read(&self, path: &str) -> String {
        match self {
            Storage::Local(root) => std::fs::read_to_string(root.join(path)).unwrap(),
            Storage::S3 { .. } => self.tamper("read", path, ""),
        }
    }

    fn flip(&self, path: &str) {
        match self {
            Storage::Local(root) => {
                let mut bytes = std::fs::read(root.join(path)).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 1;
                std::fs::write(root.join(path), bytes).unwrap();
            }
            Storage::S3 { .. } => drop(self.tamper("flip", path, "")),
        }
    }

    fn delete(&self, path: &str) {
        match self {
            Storage::Local(root) => std::fs::remove_file(root.join(path)).unwrap(),
            Storage::S3 { .. } => drop(self.tamper("delete", path, "")),
        }
    }

    fn copy(&self, from: &str, to: &str) {
        match self {
            Storage::Local(root) => {
                std::fs::create_dir_all(root.join(to).parent().unwrap()).unwrap();
                std::fs::copy(root.join(from), root.join(to)).unwrap();
            }
            Storage::S3 { prefix, .. } => drop(self.tamper("copy", from, &format!("{prefix}/{to}"))),
        }
    }

    fn replace(&self, path: &str, old: &str, new: &str) {
        match self {
            Storage::Local(_) => {
                let text = self.read(path);
                assert!(text.contains(old), "{old} not in {path}");
                let Storage::Local(root) = self else { unreachable!() };
                std::fs::write(root.join(path), text.replacen(old, new, 1)).unwrap();
            }
            Storage::S3 { .. } => drop(self.tamper("replace", path, &format!("{old}=>{new}"))),
        }
    }
}

fn record(store: &str, version: u64) -> String {
    format!("{store}/_trawl/chain/{version:020}.json")
}

/// A store of three ingests (versions 1 to 3 after its creation), each commit signed.
fn build(lake: &Lake, store: &str) {
    lake.ok(&["store", "create", store, "--retention-days", "3653"]);
    for dir in ["stratus-red-team-detonation-logs", "trailscraper-fixtures", "plaso-testdata"] {
        lake.ok(&["ingest", "--store", store, &fixture(dir)]);
    }
}

/// Runs `verify` on `store` and expects `code`; returns stdout.
fn verify(lake: &Lake, store: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["verify", "--store", store];
    args.extend(extra);
    let out = lake.run(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

/// Every case on its own store of `lake`, tampered with through `storage`.
fn tampering_is_found(lake: &Lake, storage: &Storage<'_>, public: &str) {
    let key = ["--public-key", public];
    let cases = [
        "intact",
        "flipped",
        "deleted",
        "added",
        "edited",
        "record-deleted",
        "signature-swapped",
        "commit-removed",
    ];
    for case in cases {
        build(lake, case);
    }

    // Untouched: intact, deep and with every signature checked.
    let (code, out) = verify(lake, "intact", &["--deep", "--public-key", public]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact: intact: version 3, 4 chain records, 4 signatures checked"), "{out}");

    // A byte flipped: the size holds, the SHA-256 does not (--deep); a query reading it fails
    // naming the file, never answering with altered values.
    let file = storage.data_files("flipped")[0].clone();
    storage.flip(&file);
    let (code, out) = verify(lake, "flipped", &["--deep"]);
    assert_eq!(code, 1, "{out}");
    let name = file.trim_start_matches("flipped/");
    assert!(out.contains(&format!("flipped\tMODIFIED\t{name}\tSHA-256 ")), "{out}");
    let (_, err) =
        lake.expect(1, &["query", "-q", "SELECT count(*), max(eventjson), max(eventid) FROM flipped"]);
    assert!(err.contains(name.rsplit('/').next().unwrap()), "{err}");

    // A file deleted: missing, and a query fails naming it.
    let file = storage.data_files("deleted")[0].clone();
    storage.delete(&file);
    let (code, out) = verify(lake, "deleted", &[]);
    let name = file.trim_start_matches("deleted/");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&format!("deleted\tMISSING\t{name}\t")), "{out}");
    let (_, err) = lake.expect(1, &["query", "-q", "SELECT max(eventjson) FROM deleted"]);
    assert!(err.contains(name.rsplit('/').next().unwrap()), "{err}");

    // A file put in: in no commit.
    let file = storage.data_files("added")[0].clone();
    storage.copy(&file, "added/eventdate=2024-01-01/part-00000-planted.zstd.parquet");
    let (code, out) = verify(lake, "added", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("added\tUNEXPECTED\teventdate=2024-01-01/part-00000-planted.zstd.parquet\t"),
        "{out}"
    );

    // A record edited: the next record's link breaks, it no longer says what the log says, and
    // its signature no longer holds.
    storage.replace(&record("edited", 1), "\"size\": ", "\"size\": 1");
    let (code, out) = verify(lake, "edited", &key);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("edited\tBROKEN LINK\tchain record 2\t"), "{out}");
    assert!(out.contains("edited\tMISMATCH\tchain record 1\t"), "{out}");
    assert!(out.contains("edited\tBAD SIGNATURE\tchain record 1\t"), "{out}");

    // A record deleted: its version has no digest, and the chain has a hole.
    storage.delete(&record("record-deleted", 2));
    let (code, out) = verify(lake, "record-deleted", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record-deleted\tNO DIGEST\tDelta version 2\t"), "{out}");
    assert!(out.contains("record-deleted\tBROKEN LINK\tchain record 3\tfollows record 1"), "{out}");

    // A signature swapped for another record's.
    let signature = |version| {
        let text = storage.read(&record("signature-swapped", version));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["signature"]["value"].as_str().unwrap().to_owned()
    };
    let (first, second) = (signature(1), signature(2));
    storage.replace(&record("signature-swapped", 1), &first, &second);
    let (code, out) = verify(lake, "signature-swapped", &key);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("signature-swapped\tBAD SIGNATURE\tchain record 1\t"), "{out}");
    // Without the key the swap is not seen, and verify says that signatures went unchecked.
    let (code, out) = verify(lake, "signature-swapped", &[]);
    assert!(code == 1 && out.contains("4 signed (--public-key checks them)"), "{out}");

    // A Delta commit removed: the chain records a version the log no longer has.
    storage.delete("commit-removed/_delta_log/00000000000000000003.json");
    let (code, out) = verify(lake, "commit-removed", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("commit-removed\tMISSING COMMIT\tDelta version 3\t"), "{out}");

    // Every store at once: exit 1, the intact one still intact.
    let (code, out) = verify(lake, "intact", &["--store", "added"]);
    assert!(code == 1 && out.contains("intact: intact") && out.contains("added: 1 finding"), "{out}");
}

/// A signing key in `lake`'s directory, named to every command; returns the public key file.
fn signing_key(lake: &mut Lake) -> String {
    let key = lake.dir.path().join("chain.pem");
    let public = lake.ok(&["key", "generate", key.to_str().unwrap()]);
    assert_eq!(public.trim().len(), 64, "{public}");
    assert_eq!(std::fs::read_to_string(format!("{}.pub", key.display())).unwrap(), public);
    lake.env.push(("TRAWL_SIGNING_KEY".to_owned(), key.display().to_string()));
    format!("{}.pub", key.display())
}

#[test]
fn tampering_with_a_local_lake_is_found() {
    let mut lake = Lake::new(NOW);
    let public = signing_key(&mut lake);
    let storage = Storage::Local(lake.root());
    tampering_is_found(&lake, &storage, &public);
}

#[test]
fn tampering_with_a_lake_in_a_bucket_is_found() {
    let moto = Moto::start(&[]);
    moto.script(&["bucket", "evidence"]);
    let mut lake = Lake::at("s3://evidence/lake", NOW, moto.env());
    let public = signing_key(&mut lake);
    let storage = Storage::S3 { moto: &moto, bucket: "evidence", prefix: "lake" };
    tampering_is_found(&lake, &storage, &public);
}

/// Retention removes files and vacuums (commits of its own): the chain records them all, and
/// the store stays intact.
#[test]
fn retention_keeps_the_chain_whole() {
    let lake = Lake::new("2026-12-31T00:00:00Z");
    lake.ok(&["store", "create", "audit", "--retention-days", "3653"]);
    lake.ok(&["ingest", "--store", "audit", &fixture("stratus-red-team-detonation-logs")]);
    lake.ok(&["ingest", "--store", "audit", &fixture("trailscraper-fixtures")]);
    let before = lake.show("audit")["summary"]["files"].as_u64().unwrap();
    // The 2017 events go; those of 2024 stay.
    lake.ok(&["store", "update", "audit", "--retention-days", "2000"]);
    lake.ok(&["retention", "apply"]);
    let after = lake.show("audit")["summary"]["files"].as_u64().unwrap();
    assert!(0 < after && after < before, "retention: {before} files, then {after}");
    let (code, out) = verify(&lake, "audit", &["--deep"]);
    assert_eq!(code, 0, "{out}");
    let removals = std::fs::read_dir(lake.root().join("audit/_trawl/chain"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|text| text.contains("\"operation\": \"retention\""))
        .count();
    assert_eq!(removals, 1, "{out}");
}

/// The Delta log stays small: small ingests (an hourly cron) write no checkpoint each, and once
/// a checkpoint stands, the commits older than the log retention (Delta's
/// `logRetentionDuration`, 30 days) before it are deleted. The chain still verifies: the
/// versions the log no longer holds are not checked against it, the records still link.
#[test]
fn the_delta_log_is_checkpointed_at_an_interval_and_cleaned_up() {
    let lake = Lake::new(NOW);
    lake.ok(&["store", "create", "hourly", "--retention-days", "3653"]);
    let files: Vec<_> = std::fs::read_dir(fixture("stratus-red-team-detonation-logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    let mut runs = 0;
    for file in files.iter().take(12) {
        lake.ok(&["ingest", "--store", "hourly", file.to_str().unwrap()]);
        runs += 1;
    }
    let log = lake.root().join("hourly/_delta_log");
    let listed = |suffix: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&log)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(suffix))
            .collect();
        names.sort();
        names
    };
    assert_eq!(runs, 12);
    assert!(listed(".checkpoint.parquet").is_empty(), "{:?}", listed(".checkpoint.parquet"));
    let commits = listed(".json").len();
    assert!(commits >= 12, "{commits} commits");

    // Forty days later, a checkpoint, then the next commit cleans up what it supersedes.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(40 * 86_400);
    for name in listed(".json") {
        std::fs::File::options().write(true).open(log.join(name)).unwrap().set_modified(old).unwrap();
    }
    let events = lake.events("hourly");
    lake.ok(&["ingest", "--store", "hourly", "--checkpoint-every", "1", files[12].to_str().unwrap()]);
    lake.ok(&["ingest", "--store", "hourly", files[13].to_str().unwrap()]);
    let left = listed(".json");
    assert!(left.len() <= 3 && !left.contains(&format!("{:020}.json", 0)), "{left:?}");
    assert!(lake.events("hourly") > events);
    let (code, out) = verify(&lake, "hourly", &["--deep"]);
    assert_eq!(code, 0, "{out}");
}

/// `query --deliver`: gzipped CSV and a sign file as Lake's (the hashes of the files joined by
/// single spaces, signed), checked here with ring and flate2 rather than trawl's own code;
/// `verify-results` finds each tampering.
fn deliveries(lake: &Lake, storage: &Storage<'_>, target: &str, public: &str) {
    let sql = "SELECT eventname, count(*) AS n FROM intact GROUP BY eventname ORDER BY n DESC, eventname";
    let expected = lake.ok(&["query", "-q", "--format", "csv", sql]);
    let deliver = || lake.ok(&["query", "-q", "--deliver", target, sql]).trim().to_owned();
    let sign_file = deliver();
    assert!(sign_file.starts_with(target) && sign_file.ends_with("/result_sign.json"), "{sign_file}");
    let folder = sign_file.trim_end_matches("result_sign.json").to_owned();
    let rel = |name: &str| rel_of(storage, &folder, name);
    let sign: serde_json::Value = serde_json::from_str(&storage.read(&rel("result_sign.json"))).unwrap();
    assert_eq!(sign["files"][0]["fileName"], "result_1.csv.gz");
    let key = std::fs::read_to_string(public).unwrap();
    let key: Vec<u8> = (0..64).step_by(2).map(|i| u8::from_str_radix(&key[i..i + 2], 16).unwrap()).collect();
    let hashes: Vec<&str> =
        sign["files"].as_array().unwrap().iter().map(|f| f["fileHashValue"].as_str().unwrap()).collect();
    let signature = sign["hashSignature"].as_str().unwrap();
    let signature: Vec<u8> = (0..signature.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&signature[i..i + 2], 16).unwrap())
        .collect();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
        .verify(hashes.join(" ").as_bytes(), &signature)
        .expect("the sign file's signature holds over the hashes joined by spaces");
    if let Storage::Local(_) = storage {
        let gz = std::fs::read(format!("{folder}result_1.csv.gz")).unwrap();
        let mut csv = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut csv).unwrap();
        assert_eq!(csv, expected);
    }
    let check = |location: &str, key: &str| {
        let out = lake.run(&["verify-results", location, "--public-key", key]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = check(&sign_file, public);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Results file\tresult_1.csv.gz\tvalid")
            && out.contains("1/1 result files valid, signature valid"),
        "{out}"
    );

    // Another key's results do not pass for these.
    let other = lake.dir.path().join("other.pem");
    lake.ok(&["key", "generate", other.to_str().unwrap()]);
    let (code, out) = check(&folder, &format!("{}.pub", other.display()));
    assert!(
        code == Some(1) && out.contains("Sign file\tresult_sign.json\tINVALID: signed by another key"),
        "{out}"
    );

    // A file changed; a file removed; a file put in; the sign file edited.
    storage.flip(&rel("result_1.csv.gz"));
    let (code, out) = check(&folder, public);
    assert!(code == Some(1) && out.contains("result_1.csv.gz\tINVALID: hash value doesn't match"), "{out}");
    let folder = deliver().trim_end_matches("result_sign.json").to_owned();
    storage.delete(&rel_of(storage, &folder, "result_1.csv.gz"));
    let (code, out) = check(&folder, public);
    assert!(code == Some(1) && out.contains("result_1.csv.gz\tINVALID: not found"), "{out}");
    let folder = deliver().trim_end_matches("result_sign.json").to_owned();
    storage.copy(&rel_of(storage, &folder, "result_1.csv.gz"), &rel_of(storage, &folder, "result_2.csv.gz"));
    let (code, out) = check(&folder, public);
    assert!(
        code == Some(1) && out.contains("result_2.csv.gz\tINVALID: not listed in the sign file"),
        "{out}"
    );
    let folder = deliver().trim_end_matches("result_sign.json").to_owned();
    let sign_rel = rel_of(storage, &folder, "result_sign.json");
    let sign: serde_json::Value = serde_json::from_str(&storage.read(&sign_rel)).unwrap();
    let hash = sign["files"][0]["fileHashValue"].as_str().unwrap().to_owned();
    storage.replace(&sign_rel, &hash, &"0".repeat(64));
    let (code, out) = check(&folder, public);
    assert!(
        code == Some(1)
            && out.contains("Sign file\tresult_sign.json\tINVALID: signature verification failed"),
        "{out}"
    );
}

/// `name` in the delivery `folder`, relative to the storage's root.
fn rel_of(storage: &Storage<'_>, folder: &str, name: &str) -> String {
    let full = format!("{folder}{name}");
    match storage {
        Storage::Local(root) => full.trim_start_matches(&format!("{}/", root.display())).to_owned(),
        Storage::S3 { bucket, prefix, .. } => {
            full.trim_start_matches(&format!("s3://{bucket}/{prefix}/")).to_owned()
        }
    }
}

#[test]
fn delivered_results_are_signed_and_checked() {
    let mut lake = Lake::new(NOW);
    let public = signing_key(&mut lake);
    build(&lake, "intact");
    let target = lake.dir.path().join("results").display().to_string();
    deliveries(&lake, &Storage::Local(lake.dir.path().to_path_buf()), &target, &public);
}

#[test]
fn results_delivered_to_a_bucket_are_signed_and_checked() {
    let moto = Moto::start(&[]);
    moto.script(&["bucket", "evidence"]);
    let mut lake = Lake::at("s3://evidence/lake", NOW, moto.env());
    let public = signing_key(&mut lake);
    build(&lake, "intact");
    let storage = Storage::S3 { moto: &moto, bucket: "evidence", prefix: "results" };
    deliveries(&lake, &storage, "s3://evidence/results", &public);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Rewrites the gzipped file at `path` through `edit` of its text.
fn edit_gz(path: &std::path::Path, edit: impl FnOnce(String) -> String) {
    let mut text = String::new();
    let raw = std::fs::read(path).unwrap();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut text).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, edit(text).as_bytes()).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

/// `validate-trail` over a trail signed with our own RSA key (`signed_trail.py`, written with
/// Python's `cryptography`, not trawl's code): valid as built, and each defect named as `aws
/// cloudtrail validate-logs` names it.
#[test]
fn trail_digests_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let built = crate::support::run_python("signed_trail.py", &["build", dir.path().to_str().unwrap()]);
    assert!(built.contains("\"digests\": 5") && built.contains("\"logs\": 8"), "{built}");
    let lake = Lake::new(NOW);
    let keys = dir.path().join("keys.json").display().to_string();
    let validate = |trail: &std::path::Path, keys: &str| {
        let out = lake.run(&["validate-trail", trail.to_str().unwrap(), "--public-keys", keys, "--verbose"]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let trail = dir.path().join("trail");
    let (code, out) = validate(&trail, &keys);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("5/5 digest files valid\n8/8 log files valid"), "{out}");
    assert!(out.contains("Results found for 2024-03-01T00:00:00Z to 2024-03-01T05:00:00Z:"), "{out}");

    let day = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01";
    let digests = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01";
    let log = |hour: u32, n: u32| {
        format!(
            "{day}/111122223333_CloudTrail_us-east-1_20240301T0{hour}{}Z_h{hour}n{n}.json.gz",
            10 + 20 * n
        )
    };
    let digest = |hour: u32| {
        format!(
            "{digests}/111122223333_CloudTrail-Digest_us-east-1_audit_us-east-1_20240301T0{hour}0000Z.json.gz"
        )
    };
    let case = |name: &str, tamper: &dyn Fn(&std::path::Path)| {
        let copy = dir.path().join(name);
        copy_dir(&trail, &copy);
        tamper(&copy);
        validate(&copy, &keys)
    };

    // A log file changed; a log file removed.
    let (code, out) =
        case("log-changed", &|t| edit_gz(&t.join(log(1, 0)), |s| s.replace("alice", "mallory")));
    assert!(
        code == Some(1)
            && out.contains(&format!(
                "Log file\t{}/log-changed/{}\tINVALID: hash value doesn't match",
                dir.path().display(),
                log(1, 0)
            )),
        "{out}"
    );
    assert!(out.contains("7/8 log files valid, 1/8 log files INVALID"), "{out}");
    let (code, out) = case("log-missing", &|t| std::fs::remove_file(t.join(log(2, 1))).unwrap());
    assert!(code == Some(1) && out.contains(&format!("{}\tINVALID: not found", log(2, 1))), "{out}");

    // A digest edited (a log file's hash replaced, to hide a change): the next digest's link
    // no longer matches it. The newest, edited, fails its own signature.
    let (code, out) = case("digest-edited", &|t| {
        edit_gz(&t.join(digest(2)), |s| s.replacen("\"hashValue\": \"", "\"hashValue\": \"0", 1))
    });
    assert!(
        code == Some(1) && out.contains(&format!("{}\tINVALID: hash value doesn't match", digest(2))),
        "{out}"
    );
    let (code, out) = case("newest-edited", &|t| {
        edit_gz(&t.join(digest(5)), |s| s.replace("\"logFiles\": []", "\"logFiles\": [] "))
    });
    assert!(
        code == Some(1) && out.contains(&format!("{}\tINVALID: signature verification failed", digest(5))),
        "{out}"
    );

    // The chain broken: a digest deleted.
    let (code, out) = case("chain-broken", &|t| {
        std::fs::remove_file(t.join(digest(3))).unwrap();
        std::fs::remove_file(t.join(format!("{}.sig", digest(3)))).unwrap();
    });
    assert!(
        code == Some(1)
            && out.contains(&format!(
                "Digest file\t{}/chain-broken/{}\tINVALID: not found",
                dir.path().display(),
                digest(3)
            )),
        "{out}"
    );

    // Another key under the fingerprint: no signature holds.
    let (code, out) = validate(&trail, &dir.path().join("wrong-keys.json").display().to_string());
    assert!(code == Some(1) && out.contains("0/5 digest files valid, 5/5 digest files INVALID"), "{out}");
    assert!(out.contains("INVALID: signature verification failed"), "{out}");

    // A mirror without the signatures' sidecars: every digest but the newest is checked by
    // the signature the next one holds; the newest cannot be, and says so.
    let (code, out) = case("no-sidecars", &|t| {
        for hour in 1..=5 {
            std::fs::remove_file(t.join(format!("{}.sig", digest(hour)))).unwrap();
        }
    });
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("4/5 digest files valid, 1/5 digest files not validated"), "{out}");

    // In a bucket, the signatures in the digests' metadata.
    let moto = Moto::start(&[]);
    let uploaded = crate::support::run_python(
        "signed_trail.py",
        &["upload", &moto.endpoint(), "trail-bucket", trail.to_str().unwrap()],
    );
    assert_eq!(uploaded.trim(), "13", "{uploaded}");
    let in_bucket = Lake::at("s3://trail-bucket/", NOW, moto.env());
    let run = |keys: &str| {
        let out = in_bucket.run(&["validate-trail", "s3://trail-bucket/", "--public-keys", keys]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run(&keys);
    assert!(code == Some(0) && out.contains("5/5 digest files valid\n8/8 log files valid"), "{out}");
    moto.script(&["tamper", "trail-bucket", "flip", &log(3, 0), ""]);
    let (code, out) = run(&keys);
    assert!(
        code == Some(1)
            && out.contains(&format!(
                "Log file\ts3://trail-bucket/{}\tINVALID: hash value doesn't match",
                log(3, 0)
            )),
        "{out}"
    );
}

/// A store of one ingest per file of the stratus fixture: several small files a day.
fn small_ingests(lake: &Lake, store: &str) {
    lake.ok(&["store", "create", store, "--retention-days", "3653"]);
    let mut files: Vec<_> = std::fs::read_dir(fixture("stratus-red-team-detonation-logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for file in &files {
        lake.ok(&["ingest", "--store", store, file.to_str().unwrap()]);
    }
}

/// What must not change: every event, whole, and figures over them.
fn answers(lake: &Lake, store: &str) -> String {
    let figures = lake.ok(&[
        "query",
        "-q",
        "--format",
        "csv",
        &format!(
            "SELECT count(*), count(DISTINCT eventid), sum(length(eventjson)), min(eventtime), max(eventtime), \
             count(DISTINCT eventdate) FROM {store}"
        ),
    ]);
    let events = lake.ok(&[
        "query",
        "-q",
        "--format",
        "csv",
        &format!(
            "SELECT eventid, eventtime, eventname, eventjson, sourceipaddress FROM {store} ORDER BY eventid"
        ),
    ]);
    format!("{figures}{events}")
}

/// `optimize`: fewer files, the same answers, nothing new for audits, idempotent, in the chain.
#[test]
fn optimize_compacts_small_ingests_without_changing_an_answer() {
    let mut lake = Lake::new(NOW);
    small_ingests(&lake, "hourly");
    let before = answers(&lake, "hourly");
    let files_before = lake.show("hourly")["summary"]["files"].as_u64().unwrap();
    let days = lake.show("hourly")["summary"]["partitions"].as_u64().unwrap();
    assert!(files_before > days, "{files_before} files over {days} days: nothing to compact");

    let out = lake.ok(&["optimize"]);
    // "hourly: P partitions, R files into A (...)"
    let figure = |after: &str| -> u64 {
        out.split(after)
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{out}"))
    };
    let (removed, added) =
        (figure(" files into"), out.split(" files into ").nth(1).unwrap().split(' ').next().unwrap());
    let added: u64 = added.parse().unwrap();
    assert!(removed > added && added > 0, "{out}");
    assert_eq!(lake.show("hourly")["summary"]["files"].as_u64().unwrap(), days);
    assert_eq!(answers(&lake, "hourly"), before);
    // The rewrite adds no event: its files are not data changes.
    let log = lake.root().join("hourly/_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    commits.sort();
    let optimize =
        commits.iter().map(|p| std::fs::read_to_string(p).unwrap()).find(|t| t.contains("OPTIMIZE")).unwrap();
    assert!(
        optimize.contains("\"dataChange\":false") && !optimize.contains("\"dataChange\":true"),
        "{optimize}"
    );

    let again = lake.ok(&["optimize", "--store", "hourly"]);
    assert!(again.contains("hourly: nothing to compact"), "{again}");
    let (code, out) = verify(&lake, "hourly", &["--deep"]);
    assert_eq!(code, 0, "{out}");
    // The old files stay for readers of the older version, until a day has passed.
    let on_disk = crate::support::walk(&lake.root().join("hourly"))
        .iter()
        .filter(|p| p.ends_with(".parquet") && p.contains("eventdate="))
        .count();
    assert_eq!(on_disk as u64, files_before + added);
    // Two days on, the next run deletes them; the store still verifies, vacuum commits included.
    lake.now = "2025-01-02T00:00:00Z".to_owned();
    let later = lake.ok(&["optimize"]);
    assert!(
        later.contains(&format!("nothing to compact; {removed} files of earlier rewrites deleted")),
        "{later}"
    );
    let on_disk = crate::support::walk(&lake.root().join("hourly"))
        .iter()
        .filter(|p| p.ends_with(".parquet") && p.contains("eventdate="))
        .count();
    assert_eq!(on_disk as u64, days);
    let (code, out) = verify(&lake, "hourly", &["--deep"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(answers(&lake, "hourly"), before);
}

/// kill -9 at any moment of an optimize: the store is the one before or the one after, every
/// answer the same, and the next run finishes the job; only uploads in no commit are left,
/// which `verify` names and a vacuum takes after a day.
#[test]
fn optimize_killed_at_any_moment_loses_nothing() {
    let template = Lake::new(NOW);
    small_ingests(&template, "hourly");
    let before = answers(&template, "hourly");
    let days = template.show("hourly")["summary"]["partitions"].as_u64().unwrap();
    for trial in 0..8u64 {
        let lake = Lake::new(NOW);
        copy_dir(&template.root(), &lake.root());
        let mut child = lake.command(&["optimize"]).stdout(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(trial * 40));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(answers(&lake, "hourly"), before, "trial {trial}: after the kill");
        lake.ok(&["optimize"]);
        assert_eq!(answers(&lake, "hourly"), before, "trial {trial}: after the rerun");
        assert_eq!(lake.show("hourly")["summary"]["files"].as_u64().unwrap(), days, "trial {trial}");
        let (_, out) = verify(&lake, "hourly", &["--deep"]);
        for line in out.lines().filter(|l| l.starts_with("hourly\t")) {
            assert!(line.starts_with("hourly\tUNEXPECTED\teventdate="), "trial {trial}: {out}");
        }
    }
}

/// `gaps` over a generated trail with known holes (`signed_trail.py`: five hours of 2024-03-01,
/// a digest an hour, two log files an hour but the last), and over a store holding part of it.
#[test]
fn gaps_name_each_known_hole() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::run_python("signed_trail.py", &["build", dir.path().to_str().unwrap()]);
    let trail = dir.path().join("trail");
    let lake = Lake::new(NOW);
    let gaps = |extra: &[&str]| {
        let mut args = vec!["gaps", "--trail", trail.to_str().unwrap()];
        args.extend(extra);
        let out = lake.run(&args);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = gaps(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("111122223333 us-east-1  █") && out.contains("complete: no gaps"), "{out}");

    let logs = trail.join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01");
    let digests = trail.join("AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01");
    let digest = |hour: u32| {
        digests.join(format!(
            "111122223333_CloudTrail-Digest_us-east-1_audit_us-east-1_20240301T0{hour}0000Z.json.gz"
        ))
    };
    let log = |hour: u32, n: u32| {
        logs.join(format!(
            "111122223333_CloudTrail_us-east-1_20240301T0{hour}{}Z_h{hour}n{n}.json.gz",
            10 + 20 * n
        ))
    };
    // 02:00 to 03:00: its digest and its log files gone. A listed log file of 01:00 gone. A log
    // file no digest lists put in at 00:50. The 04:00 digest starting a chain anew.
    std::fs::remove_file(digest(3)).unwrap();
    std::fs::remove_file(log(2, 0)).unwrap();
    std::fs::remove_file(log(2, 1)).unwrap();
    std::fs::remove_file(log(1, 0)).unwrap();
    std::fs::copy(log(0, 0), logs.join("111122223333_CloudTrail_us-east-1_20240301T0050Z_planted.json.gz"))
        .unwrap();
    edit_gz(&digest(5), |text| {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut v = v.as_object().unwrap().clone();
        for key in [
            "previousDigestS3Bucket",
            "previousDigestS3Object",
            "previousDigestHashValue",
            "previousDigestSignature",
        ] {
            v.insert(key.to_owned(), serde_json::Value::Null);
        }
        serde_json::to_string(&v).unwrap()
    });
    // The store holds the files of 00:00 only.
    lake.ok(&["store", "create", "audit", "--retention-days", "3653"]);
    lake.ok(&["ingest", "--store", "audit", log(0, 0).to_str().unwrap(), log(0, 1).to_str().unwrap()]);

    let (code, out) = gaps(&["--store", "audit"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("111122223333 us-east-1\t2024-03-01T02:00Z to 2024-03-01T03:00Z\t1 h"), "{out}");
    assert!(out.contains("111122223333 us-east-1 111122223333_CloudTrail-Digest_us-east-1_audit_us-east-1\tat 2024-03-01T04:00Z"), "{out}");
    assert!(out.contains("_h1n0.json.gz\t(listed in "), "{out}");
    assert!(out.contains("Log files present but listed in no digest:\n  AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0050Z_planted.json.gz"), "{out}");
    assert!(out.contains("2024-03-01\t2 of 6 log files ingested"), "{out}");
    assert!(out.contains("5 findings"), "{out}");

    // The same as JSON, and the store alone: the hours with no events.
    let (_, json) = gaps(&["--store", "audit", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["series"][0]["missing"][0]["hours"], 1);
    assert_eq!(report["chainRestarts"].as_array().unwrap().len(), 1);
    let out = lake.run(&[
        "gaps",
        "--store",
        "audit",
        "--start",
        "2024-03-01T00:00:00Z",
        "--end",
        "2024-03-01T05:00:00Z",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("2024-03-01T01:00Z to 2024-03-01T05:00Z\t4 h"), "{text}");
}

/// `ingest --validate` stores only the log files the digests validate, and the ledger says by
/// which digest (`trawl_ledger`); the others are named and left out (exit 3).
#[test]
fn ingest_validate_stores_only_validated_files() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::run_python("signed_trail.py", &["build", dir.path().to_str().unwrap()]);
    let trail = dir.path().join("trail");
    let logs = trail.join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01");
    let changed = logs.join("111122223333_CloudTrail_us-east-1_20240301T0110Z_h1n0.json.gz");
    edit_gz(&changed, |s| s.replace("alice", "mallory"));
    std::fs::copy(
        logs.join("111122223333_CloudTrail_us-east-1_20240301T0010Z_h0n0.json.gz"),
        logs.join("111122223333_CloudTrail_us-east-1_20240301T0050Z_planted.json.gz"),
    )
    .unwrap();
    let lake = Lake::new(NOW);
    lake.ok(&["store", "create", "audit", "--retention-days", "3653"]);
    let keys = dir.path().join("keys.json");
    let (out, err) = lake.expect(
        3,
        &[
            "ingest",
            "--store",
            "audit",
            trail.to_str().unwrap(),
            "--validate",
            "--public-keys",
            keys.to_str().unwrap(),
        ],
    );
    assert!(out.contains("unvalidated  2 log files not stored"), "{out}");
    assert!(
        err.contains("_h1n0.json.gz: INVALID: hash value doesn't match")
            && err.contains("_planted.json.gz: not stored"),
        "{err}"
    );
    // Seven files of three events each, every one validated by a digest.
    assert_eq!(lake.events("audit"), 21);
    let sql = "SELECT count(*) FROM audit e JOIN trawl_ledger l ON l.store = 'audit' AND l.location = e.sourceobject \
               WHERE l.validated_by LIKE '%CloudTrail-Digest%'";
    assert_eq!(lake.ok(&["query", "-q", "--format", "csv", sql]), "_col0\n21\n");
    let mallory = "SELECT count(*) FROM audit WHERE eventjson LIKE '%mallory%'";
    assert_eq!(lake.ok(&["query", "-q", "--format", "csv", mallory]), "_col0\n0\n");

    // Without --validate the rest goes in, and the ledger says it was not validated.
    lake.ok(&["ingest", "--store", "audit", trail.to_str().unwrap()]);
    let unvalidated =
        "SELECT count(*) FROM trawl_ledger WHERE validated_by IS NULL AND location LIKE '%/CloudTrail/%'";
    assert_eq!(lake.ok(&["query", "-q", "--format", "csv", unvalidated]), "_col0\n2\n");
}

/// `audit run --deliver`: each run with findings delivers its result signed, under its run id;
/// `verify-results` checks it.
#[test]
fn audit_runs_deliver_signed_results() {
    let mut lake = Lake::new(NOW);
    let public = signing_key(&mut lake);
    build(&lake, "intact");
    let target = lake.dir.path().join("evidence");
    let (stdout, err) = lake
        .expect(1, &["audit", "run", "--once", "--format", "ndjson", "--deliver", target.to_str().unwrap()]);
    assert!(err.contains("0 errors"), "{err}");
    let sign_files: Vec<String> =
        crate::support::walk(&target).into_iter().filter(|p| p.ends_with("/result_sign.json")).collect();
    assert!(!sign_files.is_empty(), "{stdout}");
    let runs = lake.ok(&[
        "query",
        "-q",
        "--format",
        "csv",
        "SELECT run_id FROM trawl_audit_runs WHERE findings > 0",
    ]);
    for sign in &sign_files {
        let run_id = sign.trim_end_matches("/result_sign.json").rsplit('/').next().unwrap();
        assert!(runs.contains(run_id), "{run_id} not among the runs with findings:\n{runs}");
        let (out, _) = lake.expect(0, &["verify-results", sign, "--public-key", &public]);
        assert!(out.contains("1/1 result files valid, signature valid"), "{out}");
    }
    assert_eq!(sign_files.len(), runs.lines().count() - 1, "{runs}");

    // The audit log has its chain too, signed as the stores' are; `verify` without --store
    // checks it, and names a record taken out of it.
    let (out, _) = lake.expect(0, &["verify", "--public-key", &public]);
    assert!(out.contains("intact: intact") && out.contains("audit log: intact"), "{out}");
    let chain = lake.root().join("_trawl/audits/_trawl/chain");
    std::fs::remove_file(chain.join(format!("{:020}.json", 1))).unwrap();
    let (out, _) = lake.expect(1, &["verify", "--public-key", &public]);
    assert!(out.contains("audit log\tNO DIGEST\tDelta version 1\t"), "{out}");
}

/// `optimize` also compacts the lake's audit log and query log (a file an append): the same
/// rows, and the watermarks kept (the next scheduled run finds nothing new).
#[test]
fn optimize_compacts_the_audit_log_and_the_query_log() {
    let lake = Lake::new(NOW);
    small_ingests(&lake, "hourly");
    lake.ok(&["lake", "set", "--query-log", "on"]);
    for _ in 0..3 {
        // Exit 1 when a run finds something, 0 when not: each run is recorded either way.
        let code = lake.run(&["audit", "run", "--once", "--format", "ndjson"]).status.code();
        assert!(matches!(code, Some(0 | 1)), "{code:?}");
        lake.ok(&["query", "-q", "SELECT count(*) FROM hourly"]);
    }
    let rows =
        |table: &str| lake.ok(&["query", "-q", "--format", "csv", &format!("SELECT count(*) FROM {table}")]);
    let (audits, runs) = (rows("trawl_audit_log"), lake.ok(&["audit", "history", "--limit", "1000"]));
    let out = lake.ok(&["optimize"]);
    assert!(out.contains("audit log: ") && out.contains("query log: "), "{out}");
    assert_eq!(rows("trawl_audit_log"), audits);
    assert_eq!(lake.ok(&["audit", "history", "--limit", "1000"]), runs);
    // Scheduled runs after it: the watermarks say every commit was audited already.
    let (stdout, _) = lake.expect(0, &["audit", "run", "--format", "ndjson"]);
    assert!(stdout.trim().is_empty(), "{stdout}");
    let again = lake.ok(&["optimize"]);
    assert!(!again.contains("audit log: "), "{again}");
}
