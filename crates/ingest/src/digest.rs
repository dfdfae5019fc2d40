//! CloudTrail log file integrity validation, offline, as `aws cloudtrail validate-logs` does it
//! (CLOUDTRAIL-LAKE.md §5.3): over a trail bucket or a local mirror of one.
//!
//! CloudTrail writes an hourly digest per trail and region, `.../CloudTrail-Digest/<region>/
//! YYYY/MM/DD/<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<end>.json.gz`,
//! listing the log files of the hour with the SHA-256 of each (uncompressed), and linked to the
//! digest before by that digest's hash and signature. Each digest is signed with SHA256withRSA
//! over `digestEndTime \n bucket/key \n hex(SHA-256 of the inflated digest) \n previous
//! signature (or "null")`; the signature is in the object's `x-amz-meta-signature`, which a
//! mirror keeps beside the digest as `<digest>.sig` (hex). A digest's signature is also in the
//! next digest (`previousDigestSignature`), so a mirror without sidecars still checks every
//! digest but the newest. The public keys are those `aws cloudtrail list-public-keys` returns.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{Attribute, ObjectStore, ObjectStoreExt};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use trawl_store::chain::{hex, unhex};

use crate::{Error, Result};

/// The public keys of CloudTrail, by fingerprint.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys(HashMap<String, Vec<u8>>);

impl PublicKeys {
    /// The keys of `aws cloudtrail list-public-keys` output (`{"PublicKeyList": [{"Value":
    /// base64 DER, "Fingerprint": hex, ...}]}`), or of the bare list.
    pub fn parse(json: &str) -> std::result::Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Key {
            value: String,
            fingerprint: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Listing {
            #[serde(rename_all = "PascalCase")]
            Wrapped {
                public_key_list: Vec<Key>,
            },
            Bare(Vec<Key>),
        }
        let keys = match serde_json::from_str::<Listing>(json).map_err(|e| e.to_string())? {
            Listing::Wrapped { public_key_list } => public_key_list,
            Listing::Bare(keys) => keys,
        };
        use base64::Engine;
        let mut map = HashMap::new();
        for key in keys {
            let der = base64::engine::general_purpose::STANDARD
                .decode(key.value.trim())
                .map_err(|e| format!("the key of fingerprint {} is not base64: {e}", key.fingerprint))?;
            map.insert(key.fingerprint.to_ascii_lowercase(), der);
        }
        Ok(Self(map))
    }
}

/// A digest file's fields that validation reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DigestFile {
    digest_end_time: String,
    #[serde(default)]
    digest_start_time: Option<String>,
    digest_s3_bucket: String,
    digest_s3_object: String,
    digest_public_key_fingerprint: String,
    #[serde(default)]
    previous_digest_s3_object: Option<String>,
    #[serde(default)]
    previous_digest_hash_value: Option<String>,
    #[serde(default)]
    previous_digest_signature: Option<String>,
    #[serde(default)]
    log_files: Vec<LogFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogFile {
    s3_bucket: String,
    s3_object: String,
    hash_value: String,
}

/// Digest or log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FileKind {
    /// A digest file.
    Digest,
    /// A log file a digest lists.
    Log,
}

/// One file's result, as the AWS CLI prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// Digest or log file.
    pub kind: FileKind,
    /// `s3://bucket/key`, or the path in a local mirror.
    pub location: String,
    /// `valid`, `INVALID: <why>`, or `not validated: <why>`.
    pub result: String,
    /// A log file's digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Verdict {
    /// Neither valid nor merely unchecked.
    pub fn invalid(&self) -> bool {
        self.result.starts_with("INVALID")
    }
}

/// What [`validate_trail`] found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TrailValidation {
    /// Every digest and log file, digests in the order of their chains.
    pub verdicts: Vec<Verdict>,
    /// The earliest digest's start and the latest digest's end.
    pub first: Option<String>,
    /// See `first`.
    pub last: Option<String>,
}

impl TrailValidation {
    /// (valid, invalid, not validated) of one kind of file.
    pub fn counts(&self, kind: FileKind) -> (usize, usize, usize) {
        let of = self.verdicts.iter().filter(|v| v.kind == kind);
        let (mut valid, mut invalid, mut unchecked) = (0, 0, 0);
        for v in of {
            match () {
                _ if v.result == "valid" => valid += 1,
                _ if v.invalid() => invalid += 1,
                _ => unchecked += 1,
            }
        }
        (valid, invalid, unchecked)
    }
}

impl TrailValidation {
    /// The log files found valid, by their key from `AWSLogs/` on, each with the digest that
    /// lists it: what `ingest --validate` stores.
    pub fn valid_logs(&self) -> HashMap<String, String> {
        self.verdicts
            .iter()
            .filter(|v| v.kind == FileKind::Log && v.result == "valid")
            .filter_map(|v| Some((crate::ingest::trail_key(&v.location)?.to_owned(), v.digest.clone()?)))
            .collect()
    }
}

/// A digest as read, where it was read.
struct Read {
    /// Its key, relative to the listing root.
    key: String,
    /// The inflated digest's hex SHA-256.
    hash: String,
    /// Its own signature (object metadata or sidecar), hex.
    signature: Option<String>,
    parsed: std::result::Result<DigestFile, String>,
}

impl Read {
    /// Where `key`, a key `digest` names (a log file, the previous digest), is below the listing
    /// root: after the part the digest's own recorded key has before `AWSLogs/` (a bucket
    /// prefix), below the part its listed key has there (a mirror's).
    fn locate(&self, digest: &DigestFile, key: &str) -> Option<String> {
        let (l, r) = (self.key.find("AWSLogs/")?, digest.digest_s3_object.find("AWSLogs/")?);
        let rest = key.strip_prefix(&digest.digest_s3_object[..r])?;
        Some(format!("{}{rest}", &self.key[..l]))
    }

    /// The trail it belongs to: its name without the end time (account, region, trail).
    fn trail(&self) -> &str {
        let name = self.key.rsplit('/').next().unwrap_or_default();
        name.rsplit_once('_').map_or(name, |(t, _)| t)
    }
}

/// Everything under `lake`'s root, and its digests read; with `signatures`, each digest's own
/// signature too, from the object's metadata or from a `NAME.sig` sidecar.
async fn list_and_read(
    lake: &trawl_store::Lake,
    signatures: bool,
) -> Result<(Vec<object_store::ObjectMeta>, Vec<Read>)> {
    let objects = lake.objects().clone();
    let listed: Vec<object_store::ObjectMeta> =
        objects.list(None).try_collect().await.map_err(|e| trawl_store::Error::from(e).at(lake.url()))?;
    let sidecars: std::collections::HashSet<String> =
        listed.iter().map(|m| m.location.to_string()).filter(|k| k.ends_with(".json.gz.sig")).collect();
    let digest_keys: Vec<String> = listed
        .iter()
        .map(|m| m.location.to_string())
        .filter(|k| k.contains("/CloudTrail-Digest/") && k.ends_with(".json.gz"))
        .collect();
    let reads = futures::stream::iter(digest_keys)
        .map(|key| {
            let objects = objects.clone();
            let sidecar = signatures && sidecars.contains(&format!("{key}.sig"));
            async move { read_digest(&objects, key, sidecar).await }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    Ok((listed, reads))
}

/// Validates the digests under `source` (a local mirror of a trail bucket, or `s3://bucket/
/// prefix`) and the log files they list.
pub async fn validate_trail(source: &str, keys: &PublicKeys) -> Result<TrailValidation> {
    let lake = trawl_store::Lake::open(source)?;
    let objects = lake.objects().clone();
    let s3 = lake.url().scheme() == "s3";
    let bucket = lake.url().host_str().unwrap_or_default().to_owned();
    // The objects below an s3:// prefix are named by their keys in the bucket, as digests
    // name them; a mirror's by their path below it.
    let prefix = if s3 { lake.url().path().trim_start_matches('/').to_owned() } else { String::new() };
    let display = |key: &str| -> String {
        if s3 { format!("s3://{bucket}/{prefix}{key}") } else { format!("{}/{key}", lake.location()) }
    };
    let (_, reads) = list_and_read(&lake, true).await?;

    let mut report = TrailValidation::default();
    // Chains: by account, region and trail (the digest's name without its end time).
    let mut chains: HashMap<String, Vec<&Read>> = HashMap::new();
    for read in &reads {
        chains.entry(read.trail().to_owned()).or_default().push(read);
    }
    let mut names: Vec<&String> = chains.keys().collect();
    names.sort();
    let by_recorded: HashMap<&str, &Read> =
        reads.iter().filter_map(|r| Some((r.parsed.as_ref().ok()?.digest_s3_object.as_str(), r))).collect();
    let mut log_checks = Vec::new();
    for name in names {
        let mut chain = chains[name].clone();
        chain.sort_by(|a, b| {
            let end = |r: &Read| r.parsed.as_ref().map(|d| d.digest_end_time.clone()).unwrap_or_default();
            end(a).cmp(&end(b)).then(a.key.cmp(&b.key))
        });
        for (i, read) in chain.iter().enumerate() {
            let digest = match &read.parsed {
                Ok(d) => d,
                Err(e) => {
                    report.verdicts.push(Verdict {
                        kind: FileKind::Digest,
                        location: display(&read.key),
                        result: format!("INVALID: invalid format ({e})"),
                        digest: None,
                    });
                    continue;
                }
            };
            if let Some(start) = &digest.digest_start_time {
                report.first = Some(report.first.take().map_or(start.clone(), |f| f.min(start.clone())));
            }
            report.last = Some(
                report
                    .last
                    .take()
                    .map_or(digest.digest_end_time.clone(), |l| l.max(digest.digest_end_time.clone())),
            );
            // The previous digest must be there, and be what this one says it was.
            if let Some(previous) = &digest.previous_digest_s3_object
                && !by_recorded.contains_key(previous.as_str())
            {
                let location = read.locate(digest, previous).unwrap_or_else(|| previous.clone());
                report.verdicts.push(Verdict {
                    kind: FileKind::Digest,
                    location: display(&location),
                    result: "INVALID: not found".to_owned(),
                    digest: None,
                });
            }
            let next = chain
                .get(i + 1)
                .and_then(|n| n.parsed.as_ref().ok())
                .filter(|n| n.previous_digest_s3_object.as_deref() == Some(digest.digest_s3_object.as_str()));
            let result = verdict(read, digest, next, keys, s3.then_some((&bucket, &prefix)));
            let valid = result == "valid" || result.starts_with("not validated");
            report.verdicts.push(Verdict {
                kind: FileKind::Digest,
                location: display(&read.key),
                result,
                digest: None,
            });
            if valid {
                for log in &digest.log_files {
                    let key = read.locate(digest, &log.s3_object);
                    log_checks.push((key, log.clone(), display(&read.key)));
                }
            }
        }
    }
    let logs: Vec<Verdict> = futures::stream::iter(log_checks)
        .map(|(key, log, digest)| {
            let objects = objects.clone();
            let location =
                key.as_deref().map_or_else(|| format!("s3://{}/{}", log.s3_bucket, log.s3_object), display);
            async move {
                let result = match key {
                    None => "INVALID: not found".to_owned(),
                    Some(key) => match objects.get(&Path::from(key.as_str())).await {
                        Ok(got) => {
                            let raw = got.bytes().await.map_err(trawl_store::Error::from)?;
                            let text = crate::source::decompress(raw.to_vec(), crate::MAX_TEXT_BYTES)
                                .map(|(text, _)| text)
                                .unwrap_or_else(|_| raw.to_vec());
                            if hex(&Sha256::digest(&text)) == log.hash_value.to_ascii_lowercase() {
                                "valid".to_owned()
                            } else {
                                "INVALID: hash value doesn't match".to_owned()
                            }
                        }
                        Err(object_store::Error::NotFound { .. }) => "INVALID: not found".to_owned(),
                        Err(e) => return Err(Error::Store(e.into())),
                    },
                };
                Ok::<_, Error>(Verdict { kind: FileKind::Log, location, result, digest: Some(digest) })
            }
        })
        .buffered(16)
        .try_collect()
        .await?;
    report.verdicts.extend(logs);
    Ok(report)
}

/// Reads the digest at `key`, its signature from its metadata or its sidecar.
async fn read_digest(objects: &Arc<dyn ObjectStore>, key: String, sidecar: bool) -> Result<Read> {
    let got = objects.get(&Path::from(key.as_str())).await.map_err(trawl_store::Error::from)?;
    let mut signature = got.attributes.get(&Attribute::Metadata("signature".into())).map(|v| v.to_string());
    let raw = got.bytes().await.map_err(trawl_store::Error::from)?;
    if signature.is_none() && sidecar {
        let side = objects.get(&Path::from(format!("{key}.sig"))).await.map_err(trawl_store::Error::from)?;
        let text = side.bytes().await.map_err(trawl_store::Error::from)?;
        signature = Some(String::from_utf8_lossy(&text).trim().to_owned());
    }
    let (inflated, damage) = match crate::source::decompress(raw.to_vec(), crate::MAX_TEXT_BYTES) {
        Ok(done) => done,
        Err(e) => (raw.to_vec(), Some(e)),
    };
    let hash = hex(&Sha256::digest(&inflated));
    let parsed = match damage {
        Some(damage) => Err(damage),
        None => serde_json::from_slice::<DigestFile>(&inflated).map_err(|e| e.to_string()),
    };
    Ok(Read { key, hash, signature, parsed })
}

/// A digest's verdict: where it is, its signature, and what the next digest says of it.
fn verdict(
    read: &Read,
    digest: &DigestFile,
    next: Option<&DigestFile>,
    keys: &PublicKeys,
    s3: Option<(&String, &String)>,
) -> String {
    // Where it was read must be where CloudTrail wrote it.
    let moved = match s3 {
        Some((bucket, prefix)) => {
            *bucket != digest.digest_s3_bucket || format!("{prefix}{}", read.key) != digest.digest_s3_object
        }
        None => crate::ingest::trail_key(&read.key) != crate::ingest::trail_key(&digest.digest_s3_object),
    };
    if moved {
        return "INVALID: has been moved from its original location".to_owned();
    }
    if let Some(next) = next
        && next.previous_digest_hash_value.as_deref().map(str::to_ascii_lowercase) != Some(read.hash.clone())
    {
        return "INVALID: hash value doesn't match".to_owned();
    }
    let signature = read.signature.clone().or_else(|| next.and_then(|n| n.previous_digest_signature.clone()));
    let Some(signature) = signature else {
        return "not validated: its signature is only in the object's metadata (save it beside it as NAME.sig)"
            .to_owned();
    };
    if let (Some(own), Some(next)) = (&read.signature, next)
        && next.previous_digest_signature.as_deref() != Some(own.as_str())
    {
        return "INVALID: signature verification failed (the next digest holds another)".to_owned();
    }
    let Some(key) = keys.0.get(&digest.digest_public_key_fingerprint.to_ascii_lowercase()) else {
        return format!(
            "INVALID: public key not found for fingerprint {}",
            digest.digest_public_key_fingerprint
        );
    };
    let message = format!(
        "{}\n{}/{}\n{}\n{}",
        digest.digest_end_time,
        digest.digest_s3_bucket,
        digest.digest_s3_object,
        read.hash,
        digest.previous_digest_signature.as_deref().unwrap_or("null")
    );
    let Some(signature) = unhex(&signature) else {
        return "INVALID: signature verification failed (not hex)".to_owned();
    };
    match ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, key)
        .verify(message.as_bytes(), &signature)
    {
        Ok(()) => "valid".to_owned(),
        Err(_) => "INVALID: signature verification failed".to_owned(),
    }
}

/// A log file of a trail, from its key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogObject {
    /// Account and region of its path.
    pub account: String,
    #[allow(missing_docs)]
    pub region: String,
    /// The delivery time in its name (`..._YYYYMMDDTHHMMZ_...`).
    pub time: chrono::DateTime<chrono::Utc>,
    /// Its key below the listing root.
    pub key: String,
}

/// A digest of a trail, as far as completeness goes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DigestSummary {
    /// Account, region and trail of its name.
    pub account: String,
    #[allow(missing_docs)]
    pub region: String,
    #[allow(missing_docs)]
    pub trail: String,
    /// The hour it covers.
    pub start: chrono::DateTime<chrono::Utc>,
    #[allow(missing_docs)]
    pub end: chrono::DateTime<chrono::Utc>,
    /// No previous digest: the start of a chain (logging or validation was off before it).
    pub starts_chain: bool,
    /// The log files it lists, as keys below the listing root.
    pub listed: Vec<String>,
    /// Its key below the listing root.
    pub key: String,
}

/// The log files and digests under a trail location.
#[derive(Debug, Clone, Default)]
pub struct TrailInventory {
    /// Every log file.
    pub logs: Vec<LogObject>,
    /// Every digest that could be read.
    pub digests: Vec<DigestSummary>,
    /// Digests that could not be read, with why.
    pub unreadable: Vec<(String, String)>,
}

/// Account and region of a key of the trail layout (`.../AWSLogs/[o-id/]ACCOUNT/SERVICE/REGION/...`).
fn account_region(key: &str, service: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().position(|p| *p == service)?;
    Some((parts.get(at.checked_sub(1)?)?.to_string(), parts.get(at + 1)?.to_string()))
}

fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// Lists `source` (a trail bucket or a mirror) and reads its digests.
pub async fn inventory(source: &str) -> Result<TrailInventory> {
    let lake = trawl_store::Lake::open(source)?;
    let (listed, reads) = list_and_read(&lake, false).await?;
    let mut inventory = TrailInventory::default();
    for meta in &listed {
        let key = meta.location.to_string();
        if !key.ends_with(".json.gz") || key.contains("/CloudTrail-Digest/") {
            continue;
        }
        if let Some((account, region)) = account_region(&key, "CloudTrail") {
            let name = key.rsplit('/').next().unwrap_or_default();
            let stamp = name.split('_').nth(3).unwrap_or_default();
            if let Ok(time) = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ") {
                inventory.logs.push(LogObject { account, region, time: time.and_utc(), key });
            }
        }
    }
    for read in &reads {
        let digest = match &read.parsed {
            Ok(d) => d,
            Err(e) => {
                inventory.unreadable.push((read.key.clone(), e.clone()));
                continue;
            }
        };
        let (Some((account, region)), Some(end)) =
            (account_region(&read.key, "CloudTrail-Digest"), parse_time(&digest.digest_end_time))
        else {
            inventory.unreadable.push((read.key.clone(), "not a digest of the trail layout".to_owned()));
            continue;
        };
        let start = digest
            .digest_start_time
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(end - chrono::Duration::hours(1));
        let listed = digest
            .log_files
            .iter()
            .map(|f| read.locate(digest, &f.s3_object).unwrap_or_else(|| f.s3_object.clone()))
            .collect();
        inventory.digests.push(DigestSummary {
            account,
            region,
            trail: read.trail().to_owned(),
            start,
            end,
            starts_chain: digest.previous_digest_s3_object.is_none(),
            listed,
            key: read.key.clone(),
        });
    }
    inventory.digests.sort_by(|a, b| {
        (&a.account, &a.region, &a.trail, a.end).cmp(&(&b.account, &b.region, &b.trail, b.end))
    });
    inventory.logs.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(inventory)
}
