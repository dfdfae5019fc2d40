//! Signed query results, in CloudTrail Lake's layout: result files and a `result_sign.json`
//! that lists each file's SHA-256 and signs them all, so that an auditor handed the files can
//! tell whether anyone changed, dropped or added one.
//!
//! As Lake's sign file (CLOUDTRAIL-LAKE.md §3.5): `files` holds each file's name and the hex
//! SHA-256 of its bytes as delivered (compressed), the string signed is those hashes joined by
//! single spaces, in the order listed, and `publicKeyFingerprint` names the key. Lake signs with
//! SHA256withRSA and an AWS key; trawl signs with the lake owner's Ed25519 key
//! ([`crate::chain::Signer`]) and says so in `signatureAlgorithm`.

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::chain::{PublicKey, Signer, hex, sha256_hex, unhex};
use crate::{Error, Result};

/// The sign file's name.
pub const SIGN_FILE: &str = "result_sign.json";

/// A delivered result file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedFile {
    /// Hex SHA-256 of the file's bytes.
    pub file_hash_value: String,
    /// Its name, beside the sign file.
    pub file_name: String,
}

/// `result_sign.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignFile {
    /// `1.0`.
    pub version: String,
    /// The query's id.
    pub query_id: String,
    /// The result files, in order.
    pub files: Vec<SignedFile>,
    /// `SHA-256`.
    pub hash_algorithm: String,
    /// `Ed25519`.
    pub signature_algorithm: String,
    /// When the query finished.
    pub query_complete_time: DateTime<Utc>,
    /// Hex signature of the files' hashes joined by single spaces.
    pub hash_signature: String,
    /// Hex SHA-256 of the raw public key.
    pub public_key_fingerprint: String,
}

impl SignFile {
    /// The string Lake signs: the files' hashes, joined by single spaces.
    pub fn string_to_sign(&self) -> String {
        let hashes: Vec<&str> = self.files.iter().map(|f| f.file_hash_value.as_str()).collect();
        hashes.join(" ")
    }
}

/// Where delivered results go: a directory or `s3://bucket/prefix`, and the folder of one query
/// in it (`CloudTrail-Lake/Query/YYYY/MM/DD/<query id>/`, Lake's layout below its account).
pub struct Delivery {
    objects: std::sync::Arc<dyn ObjectStore>,
    folder: Path,
    location: String,
    files: Vec<SignedFile>,
}

impl Delivery {
    /// A delivery of the results of `query_id`, run at `started`, to `location`.
    pub fn new(location: &str, query_id: &str, started: DateTime<Utc>) -> Result<Self> {
        let lake = crate::Lake::create(location)?;
        let folder = Path::from(format!("CloudTrail-Lake/Query/{}/{query_id}", started.format("%Y/%m/%d")));
        let location = format!("{}/{folder}/", lake.location().trim_end_matches('/'));
        Ok(Self { objects: lake.objects().clone(), folder, location, files: Vec::new() })
    }

    /// Where the files go, ending in `/`: a local path, or an `s3://` URL.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Puts the next result file (`result_<n>.csv.gz`).
    pub async fn put(&mut self, bytes: Vec<u8>) -> Result<()> {
        let name = format!("result_{}.csv.gz", self.files.len() + 1);
        let hash = sha256_hex(&bytes);
        self.objects.put(&self.folder.clone().join(name.as_str()), PutPayload::from(bytes)).await?;
        self.files.push(SignedFile { file_hash_value: hash, file_name: name });
        Ok(())
    }

    /// Signs the files put and writes the sign file, last: a delivery without one is unfinished.
    pub async fn finish(self, query_id: &str, completed: DateTime<Utc>, signer: &Signer) -> Result<SignFile> {
        let mut sign = SignFile {
            version: "1.0".to_owned(),
            query_id: query_id.to_owned(),
            files: self.files,
            hash_algorithm: "SHA-256".to_owned(),
            signature_algorithm: "Ed25519".to_owned(),
            query_complete_time: completed,
            hash_signature: String::new(),
            public_key_fingerprint: signer.public_key().fingerprint(),
        };
        sign.hash_signature = hex(&signer.sign(sign.string_to_sign().as_bytes()));
        let body = serde_json::to_vec_pretty(&sign).expect("a sign file serializes");
        self.objects.put(&self.folder.join(SIGN_FILE), PutPayload::from(body)).await?;
        Ok(sign)
    }
}

/// What [`verify_results`] found: each file with `valid` or why not, and the sign file's own.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResultsReport {
    /// The sign file's verdict.
    pub signature: String,
    /// (file name, verdict).
    pub files: Vec<(String, String)>,
}

impl ResultsReport {
    /// True when the signature and every file are valid.
    pub fn valid(&self) -> bool {
        self.signature == "valid" && self.files.iter().all(|(_, v)| v == "valid")
    }
}

/// Checks a delivery: `location` is its folder or its sign file, local or `s3://`.
pub async fn verify_results(location: &str, key: &PublicKey) -> Result<ResultsReport> {
    let folder = location.trim_end_matches('/').trim_end_matches(SIGN_FILE).trim_end_matches('/');
    let lake = crate::Lake::open(folder)?;
    let objects = lake.objects();
    let bytes = objects.get(&Path::from(SIGN_FILE)).await.map_err(|e| lake.explain(e))?.bytes().await?;
    let sign: SignFile = serde_json::from_slice(&bytes)
        .map_err(|source| Error::CorruptMetadata { path: format!("{}{SIGN_FILE}", lake.url()), source })?;
    let mut report = ResultsReport::default();
    let signature = unhex(&sign.hash_signature).unwrap_or_default();
    report.signature = if sign.public_key_fingerprint != key.fingerprint() {
        "INVALID: signed by another key (publicKeyFingerprint differs)".to_owned()
    } else if !key.verifies(sign.string_to_sign().as_bytes(), &signature) {
        "INVALID: signature verification failed".to_owned()
    } else {
        "valid".to_owned()
    };
    for file in &sign.files {
        let verdict = match objects.get(&Path::from(file.file_name.as_str())).await {
            Ok(got) => {
                if sha256_hex(&got.bytes().await?) == file.file_hash_value {
                    "valid".to_owned()
                } else {
                    "INVALID: hash value doesn't match".to_owned()
                }
            }
            Err(object_store::Error::NotFound { .. }) => "INVALID: not found".to_owned(),
            Err(e) => return Err(lake.explain(e)),
        };
        report.files.push((file.file_name.clone(), verdict));
    }
    // A result file beside the sign file that it does not list was put in afterwards.
    let listed: Vec<object_store::ObjectMeta> = {
        use futures::TryStreamExt;
        objects.list(None).try_collect().await.map_err(|e| lake.explain(e))?
    };
    for meta in listed {
        let name = meta.location.to_string();
        if name != SIGN_FILE && !sign.files.iter().any(|f| f.file_name == name) {
            report.files.push((name, "INVALID: not listed in the sign file".to_owned()));
        }
    }
    Ok(report)
}
