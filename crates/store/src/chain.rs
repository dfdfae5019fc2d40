//! The integrity chain of a store: evidence that what it holds is what was committed to it.
//!
//! Every Delta commit to a store gets a digest record, `<store>/_trawl/chain/<version>.json`:
//! the data files the commit added and removed, each with its size and SHA-256 (the writer
//! puts the hash in the file's `add` action, tag [`SHA256_TAG`], and a removal carries it on),
//! the version, the commit's time and operation, and the SHA-256 of the previous record's bytes,
//! so that no record can be edited, removed or put in without breaking the links after it. A
//! record may be signed (Ed25519, [`Signer`]): the signature covers the record as written
//! without it, and names the key by its fingerprint (the SHA-256 of the raw public key).
//!
//! Records are derived from the Delta log's commit entries, never from what a writer meant to
//! commit: the writer that commits a version writes its record, and any writer first writes the
//! records of the versions before it that have none (those of a run killed between its commit
//! and its record, or of a vacuum). [`crate::EventDataStore::verify`] checks the chain, the log
//! and the files against each other.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use deltalake::logstore::LogStore;

use crate::{Error, Result};

/// The `add` (and `remove`) tag that holds a data file's SHA-256, hex.
pub const SHA256_TAG: &str = "trawl.sha256";

/// Where a store's chain records are, under its `_trawl/`.
pub(crate) const CHAIN_DIR: &str = "chain";

/// The hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The bytes of hex `text` (surrounding whitespace ignored); none when it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A data file as a record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainFile {
    /// The path in the Delta log, relative to the store.
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// Hex SHA-256 of its bytes; none for files written before trawl recorded it.
    pub sha256: Option<String>,
}

/// The record of one Delta commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestRecord {
    /// The Delta version it records.
    pub version: u64,
    /// The commit's time, from the log.
    pub time: DateTime<Utc>,
    /// What made it: `ingest`, `retention`, `optimize`, or Delta's operation name.
    pub operation: String,
    /// Data files the commit added.
    pub added: Vec<ChainFile>,
    /// Data files the commit removed.
    pub removed: Vec<ChainFile>,
    /// Hex SHA-256 of the previous record's bytes; none for the first record.
    pub previous_hash: Option<String>,
    /// Ed25519 over the record without this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<RecordSignature>,
}

/// A record's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSignature {
    /// `Ed25519`.
    pub algorithm: String,
    /// Hex SHA-256 of the raw public key.
    pub public_key_fingerprint: String,
    /// Hex signature.
    pub value: String,
}

impl DigestRecord {
    /// The bytes a signature covers: the record as written, without its signature.
    fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = DigestRecord { signature: None, ..self.clone() };
        serde_json::to_vec_pretty(&unsigned).expect("a record serializes")
    }

    /// Whether the record carries a valid signature by `key`.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        let Some(signature) = &self.signature else { return false };
        let Some(value) = unhex(&signature.value) else { return false };
        signature.public_key_fingerprint == key.fingerprint() && key.verifies(&self.signed_bytes(), &value)
    }

    /// The record's bytes as stored, signed by `signer` when given.
    pub(crate) fn sign_and_encode(&mut self, signer: Option<&Signer>) -> Vec<u8> {
        if let Some(signer) = signer {
            self.signature = Some(RecordSignature {
                algorithm: "Ed25519".to_owned(),
                public_key_fingerprint: signer.fingerprint.clone(),
                value: hex(&signer.sign(&self.signed_bytes())),
            });
        }
        serde_json::to_vec_pretty(self).expect("a record serializes")
    }

    /// Whether the record names the same commit as `other` (links and signatures aside).
    pub fn same_commit(&self, other: &DigestRecord) -> bool {
        self.version == other.version
            && self.time == other.time
            && self.operation == other.operation
            && self.added == other.added
            && self.removed == other.removed
    }
}

/// The record a Delta commit entry (its NDJSON actions) implies, without its link.
pub(crate) fn record_of_commit(version: u64, entry: &[u8]) -> Result<DigestRecord> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct FileAction {
        path: String,
        #[serde(default)]
        size: Option<i64>,
        #[serde(default)]
        tags: Option<HashMap<String, Option<String>>>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Line {
        add: Option<FileAction>,
        remove: Option<FileAction>,
        commit_info: Option<serde_json::Map<String, serde_json::Value>>,
    }
    let file = |a: FileAction| ChainFile {
        sha256: a.tags.and_then(|t| t.get(SHA256_TAG).cloned().flatten()),
        path: a.path,
        size: a.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
    };
    let mut record = DigestRecord {
        version,
        time: DateTime::UNIX_EPOCH,
        operation: String::new(),
        added: Vec::new(),
        removed: Vec::new(),
        previous_hash: None,
        signature: None,
    };
    for line in entry.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        let line: Line = serde_json::from_slice(line).map_err(|e| Error::Chain {
            store: String::new(),
            reason: format!("the Delta commit of version {version} cannot be read: {e}"),
        })?;
        if let Some(add) = line.add {
            record.added.push(file(add));
        }
        if let Some(remove) = line.remove {
            record.removed.push(file(remove));
        }
        if let Some(info) = line.commit_info {
            let text = |key: &str| info.get(key).and_then(|v| v.as_str()).map(str::to_owned);
            record.operation = text("trawl.operation").or_else(|| text("operation")).unwrap_or_default();
            if let Some(ms) = info.get("timestamp").and_then(serde_json::Value::as_i64) {
                record.time = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
            }
        }
    }
    record.added.sort_by(|a, b| a.path.cmp(&b.path));
    record.removed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(record)
}

/// A Delta table whose commits a chain records: a store, or one of the lake's record tables.
pub(crate) struct ChainSite<'a> {
    /// How errors and reports name it.
    pub(crate) name: String,
    /// Its directory below the lake's root; the chain is in its `_trawl/chain/`.
    pub(crate) dir: String,
    pub(crate) lake: &'a crate::Lake,
    /// The newest record this process knows of: its version and hash.
    pub(crate) tail: &'a tokio::sync::Mutex<Option<(u64, String)>>,
}

impl crate::EventDataStore {
    fn chain_site(&self) -> ChainSite<'_> {
        let name = self.config().name.clone();
        ChainSite { dir: name.clone(), name, lake: &self.lake, tail: &self.chain_tail }
    }

    /// Writes the chain records of the versions up to `upto` that have none (see
    /// [`ChainSite::extend`]).
    pub(crate) async fn extend_chain(&self, table: &deltalake::DeltaTable, upto: u64) -> Result<()> {
        self.chain_site().extend(table.log_store().as_ref(), upto).await
    }

    /// Checks the store's integrity chain, its Delta log and its files against each other (see
    /// [`VerifyReport`]); with `deep`, every live file is read and hashed.
    pub async fn verify(&self, deep: bool, key: Option<&PublicKey>) -> Result<VerifyReport> {
        let snapshot = self.snapshot().await?;
        let live = snapshot.files()?.into_iter().map(|f| (f.path.to_string(), f.size)).collect();
        self.chain_site()
            .verify(snapshot.table.log_store().as_ref(), snapshot.version(), live, deep, key)
            .await
    }
}

impl ChainSite<'_> {
    fn delta(&self, e: deltalake::DeltaTableError) -> Error {
        crate::eds::delta_error(&self.name, e)
    }

    fn chain_dir(&self) -> Path {
        Path::from(format!("{}/{}/{CHAIN_DIR}", self.dir, crate::lake::META_DIR))
    }

    fn chain_error(&self, reason: impl Into<String>) -> Error {
        Error::Chain { store: self.name.clone(), reason: reason.into() }
    }

    fn record_path(&self, version: u64) -> Path {
        self.chain_dir().join(format!("{version:020}.json").as_str())
    }

    /// The versions of the `<version>.json` files under `dir` (chain records, Delta commits), in
    /// order, with their paths.
    async fn numbered(&self, dir: &Path) -> Result<Vec<(u64, Path)>> {
        let listed: Vec<ObjectMeta> =
            self.lake.objects().list(Some(dir)).try_collect().await.map_err(|e| self.lake.explain(e))?;
        let mut versions: Vec<(u64, Path)> = listed
            .into_iter()
            .filter_map(|m| Some((m.location.filename()?.strip_suffix(".json")?.parse().ok()?, m.location)))
            .collect();
        versions.sort();
        Ok(versions)
    }

    /// The chain's records as stored: version, bytes (in version order).
    async fn chain_records(&self) -> Result<Vec<(u64, Bytes)>> {
        let objects = self.lake.objects();
        let versions = self.numbered(&self.chain_dir()).await?;
        let mut records = Vec::with_capacity(versions.len());
        for (version, path) in versions {
            let bytes = objects.get(&path).await.map_err(|e| self.lake.explain(e))?.bytes().await?;
            records.push((version, bytes));
        }
        Ok(records)
    }

    /// Writes the records of the versions up to `upto` that have none, each linked to the one
    /// before. The versions before the first the log still holds (a store older than the chain,
    /// its old commits cleaned up) are left out: the chain starts after them.
    pub(crate) async fn extend(&self, log: &dyn LogStore, upto: u64) -> Result<()> {
        let mut tail = self.tail.lock().await;
        if tail.is_none() {
            // A process that commits once (a statement's query log record, an audit run) finds
            // the record before its version where it belongs; only a gap needs the listing.
            let before = upto.checked_sub(1);
            let found = match before {
                Some(v) => match self.lake.objects().get(&self.record_path(v)).await {
                    Ok(got) => Some((v, got.bytes().await?)),
                    Err(object_store::Error::NotFound { .. }) => None,
                    Err(e) => return Err(self.lake.explain(e)),
                },
                None => None,
            };
            *tail = match found {
                Some((v, bytes)) => Some((v, sha256_hex(&bytes))),
                None => match self.numbered(&self.chain_dir()).await?.pop() {
                    Some((v, path)) => {
                        let got = self.lake.objects().get(&path).await.map_err(|e| self.lake.explain(e))?;
                        Some((v, sha256_hex(&got.bytes().await?)))
                    }
                    None => None,
                },
            };
        }
        let mut next = tail.as_ref().map_or(0, |(v, _)| v + 1);
        while next <= upto {
            let Some(entry) = log.read_commit_entry(next).await.map_err(|e| self.delta(e))? else {
                if tail.is_none() {
                    next += 1;
                    continue;
                }
                return Err(self.chain_error(format!("version {next} is no longer in the Delta log")));
            };
            let mut record = record_of_commit(next, &entry).map_err(|e| self.chain_error(e.to_string()))?;
            record.previous_hash = tail.as_ref().map(|(_, hash)| hash.clone());
            let bytes = record.sign_and_encode(self.lake.signer());
            let path = self.record_path(next);
            let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
            let hash = match self.lake.objects().put_opts(&path, PutPayload::from(bytes.clone()), opts).await
            {
                Ok(_) => sha256_hex(&bytes),
                // Another writer recorded it first: the chain goes on from its record.
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let theirs = self.lake.objects().get(&path).await.map_err(|e| self.lake.explain(e))?;
                    sha256_hex(&theirs.bytes().await?)
                }
                Err(e) => return Err(self.lake.explain(e)),
            };
            *tail = Some((next, hash));
            next += 1;
        }
        Ok(())
    }

    /// Checks the store's integrity chain, its Delta log and its files against each other (see
    /// [`VerifyReport`]); with `deep`, every live file is read and hashed.
    pub(crate) async fn verify(
        &self,
        log: &dyn LogStore,
        latest: Option<u64>,
        live: Vec<(String, u64)>,
        deep: bool,
        key: Option<&PublicKey>,
    ) -> Result<VerifyReport> {
        let mut report = VerifyReport { store: self.name.clone(), version: latest, ..Default::default() };
        let objects = self.lake.objects();

        // The chain: each record read, linked to the one before, signed when a key is given.
        let stored = self.chain_records().await?;
        report.records = stored.len();
        let mut records: Vec<DigestRecord> = Vec::with_capacity(stored.len());
        let mut previous: Option<(u64, String)> = None;
        for (i, (version, bytes)) in stored.iter().enumerate() {
            let hash = sha256_hex(bytes);
            let subject = format!("chain record {version}");
            match serde_json::from_slice::<DigestRecord>(bytes) {
                Ok(record) if record.version != *version => {
                    report.problem(Problem::BrokenLink, subject, format!("holds version {}", record.version));
                }
                Ok(record) => {
                    match (&previous, &record.previous_hash) {
                        (Some((v, h)), Some(link)) if *v + 1 == *version && h == link => {}
                        (Some((v, _)), _) if *v + 1 != *version => report.problem(
                            Problem::BrokenLink,
                            subject.clone(),
                            format!("follows record {v}: the records between are missing"),
                        ),
                        (Some((v, _)), _) => report.problem(
                            Problem::BrokenLink,
                            subject.clone(),
                            format!(
                                "its link does not match the hash of record {v} (one of them was edited)"
                            ),
                        ),
                        (None, Some(_)) if i == 0 => report.problem(
                            Problem::BrokenLink,
                            subject.clone(),
                            "links to a record before it that is missing".to_owned(),
                        ),
                        (None, _) => {}
                    }
                    if record.signature.is_some() {
                        report.signed += 1;
                    }
                    if let Some(key) = key {
                        if record.signature.is_none() {
                            report.problem(
                                Problem::BadSignature,
                                subject.clone(),
                                "is not signed".to_owned(),
                            );
                        } else if !record.signed_by(key) {
                            report.problem(
                                Problem::BadSignature,
                                subject.clone(),
                                "its signature is not by the key given, or does not match the record"
                                    .to_owned(),
                            );
                        }
                    }
                    records.push(record);
                }
                Err(e) => report.problem(Problem::BrokenLink, subject, format!("cannot be read: {e}")),
            }
            previous = Some((*version, hash));
        }

        // The Delta log: every version it holds has a record that says the same; every record
        // has its commit.
        let commits = self.numbered(&Path::from(format!("{}/_delta_log", self.dir))).await?;
        let by_version: HashMap<u64, &DigestRecord> = records.iter().map(|r| (r.version, r)).collect();
        if let (Some(&(first, _)), Some(latest)) = (commits.first(), latest) {
            for version in first..=latest {
                let Some(entry) = log.read_commit_entry(version).await.map_err(|e| self.delta(e))? else {
                    report.problem(
                        Problem::MissingCommit,
                        format!("Delta version {version}"),
                        "its commit is gone from the Delta log".to_owned(),
                    );
                    continue;
                };
                let logged =
                    record_of_commit(version, &entry).map_err(|e| self.chain_error(e.to_string()))?;
                match by_version.get(&version) {
                    None => report.problem(
                        Problem::NoDigest,
                        format!("Delta version {version}"),
                        format!(
                            "has no chain record ({} files added, {} removed)",
                            logged.added.len(),
                            logged.removed.len()
                        ),
                    ),
                    Some(record) if !record.same_commit(&logged) => report.problem(
                        Problem::Mismatch,
                        format!("chain record {version}"),
                        "does not say what the Delta commit of its version says".to_owned(),
                    ),
                    Some(_) => {}
                }
            }
        }
        for record in records.iter().filter(|r| latest.is_none_or(|l| r.version > l)) {
            report.problem(
                Problem::MissingCommit,
                format!("Delta version {}", record.version),
                "the chain records it, the Delta log does not have it (a commit was removed)".to_owned(),
            );
        }

        // The files: what the chain says is live, what the log says is live, what is there.
        let mut chained: HashMap<&str, &ChainFile> = HashMap::new();
        let mut removed: HashMap<&str, &ChainFile> = HashMap::new();
        for record in &records {
            for file in &record.added {
                chained.insert(&file.path, file);
                removed.remove(file.path.as_str());
            }
            for file in &record.removed {
                chained.remove(file.path.as_str());
                removed.insert(&file.path, file);
            }
        }
        report.live_files = live.len();
        let root = format!("{}/", self.dir);
        let mut present: HashMap<String, u64> = objects
            .list(Some(&Path::from(self.dir.as_str())))
            .try_filter_map(|m| {
                let root = root.clone();
                async move {
                    let rel = m.location.as_ref().strip_prefix(&root).map(str::to_owned);
                    Ok(rel
                        .filter(|r| !r.starts_with("_delta_log/") && !r.starts_with("_trawl/"))
                        .map(|r| (r, m.size)))
                }
            })
            .try_collect()
            .await
            .map_err(|e| self.lake.explain(e))?;
        let mut to_hash = Vec::new();
        for (path, size) in live {
            let expected = chained.remove(path.as_str());
            if expected.is_none() {
                report.problem(
                    Problem::Unrecorded,
                    path.clone(),
                    "live in the Delta log, added by no chain record".to_owned(),
                );
            }
            match present.remove(&path) {
                None => {
                    report.problem(Problem::Missing, path, "live in the Delta log, not in storage".to_owned())
                }
                Some(found) if found != size || expected.is_some_and(|e| e.size != found) => {
                    report.problem(
                        Problem::Modified,
                        path,
                        format!("{found} bytes, recorded as {}", expected.map_or(size, |e| e.size)),
                    );
                }
                Some(_) => match expected.and_then(|e| e.sha256.clone()) {
                    Some(sha) if deep => to_hash.push((path, sha)),
                    Some(_) => {}
                    None => report.unhashed += 1,
                },
            }
        }
        for (path, _) in chained {
            report.problem(
                Problem::Missing,
                path.to_owned(),
                "the chain has it live, the Delta log does not".to_owned(),
            );
        }
        let mut unexpected: Vec<(String, u64)> =
            present.into_iter().filter(|(path, _)| !removed.contains_key(path.as_str())).collect();
        unexpected.sort();
        for (path, size) in unexpected {
            report.problem(Problem::Unexpected, path, format!("{size} bytes in storage, in no commit"));
        }
        report.files_hashed = to_hash.len();
        let hashed: Vec<(String, String, String)> = futures::stream::iter(to_hash)
            .map(|(path, sha)| async move {
                let location = Path::from(format!("{}/{path}", self.dir));
                let bytes = self
                    .lake
                    .objects()
                    .get(&location)
                    .await
                    .map_err(|e| self.lake.explain(e))?
                    .bytes()
                    .await?;
                let actual = tokio::task::spawn_blocking(move || sha256_hex(&bytes))
                    .await
                    .map_err(|e| self.chain_error(e.to_string()))?;
                Ok::<_, Error>((path, sha, actual))
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        for (path, recorded, actual) in hashed {
            if recorded != actual {
                report.problem(Problem::Modified, path, format!("SHA-256 {actual}, recorded as {recorded}"));
            }
        }
        report.problems.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
        Ok(report)
    }
}

/// What [`crate::EventDataStore::verify`] found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// The store.
    pub store: String,
    /// Its Delta version.
    pub version: Option<u64>,
    /// Chain records read.
    pub records: usize,
    /// Records that carry a signature.
    pub signed: usize,
    /// Live data files.
    pub live_files: usize,
    /// Files read and hashed (`deep`).
    pub files_hashed: usize,
    /// Live files with no SHA-256 recorded (written before trawl recorded it): checked by size
    /// and block checksums only.
    pub unhashed: usize,
    /// Everything that does not match; none on a store nobody touched.
    pub problems: Vec<Finding>,
}

impl VerifyReport {
    fn problem(&mut self, kind: Problem, subject: String, detail: String) {
        self.problems.push(Finding { kind, subject, detail });
    }
}

/// One thing that does not match.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: Problem,
    /// The file, record or version.
    pub subject: String,
    /// What was found.
    pub detail: String,
}

/// The kinds of [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Problem {
    /// A live file whose size or SHA-256 is not what was recorded.
    Modified,
    /// A live file that is not in storage, or a file the chain has live that the log does not.
    Missing,
    /// A file in storage that no commit added (or that one removed and vacuum has not yet taken).
    Unexpected,
    /// A live file no chain record added: the Delta log was changed outside trawl.
    Unrecorded,
    /// A record that does not link to the one before it, or cannot be read.
    BrokenLink,
    /// A record not signed by the key given.
    BadSignature,
    /// A Delta version with no chain record.
    NoDigest,
    /// A record that says otherwise than the Delta commit of its version.
    Mismatch,
    /// A Delta commit that is gone from the log.
    MissingCommit,
}

impl Problem {
    /// How reports name it.
    pub fn label(self) -> &'static str {
        match self {
            Problem::Modified => "MODIFIED",
            Problem::Missing => "MISSING",
            Problem::Unexpected => "UNEXPECTED",
            Problem::Unrecorded => "UNRECORDED",
            Problem::BrokenLink => "BROKEN LINK",
            Problem::BadSignature => "BAD SIGNATURE",
            Problem::NoDigest => "NO DIGEST",
            Problem::Mismatch => "MISMATCH",
            Problem::MissingCommit => "MISSING COMMIT",
        }
    }
}

/// An Ed25519 key that signs chain records.
pub struct Signer {
    pair: ring::signature::Ed25519KeyPair,
    fingerprint: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

impl Signer {
    /// The key of a PKCS#8 file, PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey
    /// -algorithm ed25519` writes it) or DER.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self> {
        let der = pem_body(bytes, "PRIVATE KEY").unwrap_or_else(|| bytes.to_vec());
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| Error::InvalidKey(format!("not an Ed25519 PKCS#8 private key: {e}")))?;
        use ring::signature::KeyPair;
        let fingerprint = PublicKey(pair.public_key().as_ref().to_vec()).fingerprint();
        Ok(Self { pair, fingerprint })
    }

    /// A new key, as PEM PKCS#8.
    pub fn generate() -> Result<String> {
        let rng = ring::rand::SystemRandom::new();
        let der = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|e| Error::InvalidKey(format!("cannot generate a key: {e}")))?;
        Ok(pem("PRIVATE KEY", der.as_ref()))
    }

    /// The signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        use ring::signature::KeyPair;
        PublicKey(self.pair.public_key().as_ref().to_vec())
    }
}

/// An Ed25519 public key (its 32 raw bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(Vec<u8>);

impl PublicKey {
    /// The key from its text: 64 hex digits (as [`Self::to_hex`] writes it).
    pub fn parse(text: &str) -> Result<Self> {
        match unhex(text) {
            Some(bytes) if bytes.len() == 32 => Ok(Self(bytes)),
            _ => Err(Error::InvalidKey("an Ed25519 public key is 64 hex digits".to_owned())),
        }
    }

    /// 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Whether `signature` is this key's of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }

    /// Hex SHA-256 of the raw key: how records name it.
    pub fn fingerprint(&self) -> String {
        sha256_hex(&self.0)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        text.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn pem_body(bytes: &[u8], label: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = std::str::from_utf8(bytes).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text.split_once(&begin)?.1.split_once(&end)?.0;
    let body: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_field() {
        let key = Signer::from_pkcs8(Signer::generate().unwrap().as_bytes()).unwrap();
        let mut record = DigestRecord {
            version: 3,
            time: DateTime::UNIX_EPOCH,
            operation: "ingest".into(),
            added: vec![ChainFile { path: "a.parquet".into(), size: 10, sha256: Some(sha256_hex(b"a")) }],
            removed: Vec::new(),
            previous_hash: Some(sha256_hex(b"previous")),
            signature: None,
        };
        let bytes = record.sign_and_encode(Some(&key));
        let stored: DigestRecord = serde_json::from_slice(&bytes).unwrap();
        assert!(stored.signed_by(&key.public_key()));
        let other = Signer::from_pkcs8(Signer::generate().unwrap().as_bytes()).unwrap();
        assert!(!stored.signed_by(&other.public_key()));
        let mut edited = stored.clone();
        edited.added[0].size = 11;
        assert!(!edited.signed_by(&key.public_key()));
        let parsed = PublicKey::parse(&key.public_key().to_hex()).unwrap();
        assert_eq!(parsed, key.public_key());
    }

    #[test]
    fn a_commit_entry_gives_its_files() {
        let entry = br#"{"commitInfo":{"timestamp":1700000000000,"operation":"WRITE","trawl.operation":"ingest"}}
{"add":{"path":"eventdate=2024-01-01/b.parquet","size":20,"tags":{"trawl.sha256":"bb"},"partitionValues":{},"modificationTime":0,"dataChange":true}}
{"add":{"path":"eventdate=2024-01-01/a.parquet","size":10,"partitionValues":{},"modificationTime":0,"dataChange":true}}
{"remove":{"path":"eventdate=2023-01-01/c.parquet","size":5,"dataChange":true}}
"#;
        let record = record_of_commit(7, entry).unwrap();
        assert_eq!(record.operation, "ingest");
        assert_eq!(record.time.timestamp_millis(), 1_700_000_000_000);
        let paths: Vec<&str> = record.added.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["eventdate=2024-01-01/a.parquet", "eventdate=2024-01-01/b.parquet"]);
        assert_eq!(record.added[1].sha256.as_deref(), Some("bb"));
        assert_eq!(record.removed[0].size, 5);
    }
}
