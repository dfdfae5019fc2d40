//! S3 the AWS way: credentials, region and endpoint come from the environment and the shared
//! config files, as for the AWS CLI; one client per bucket serves the lake, Delta and DataFusion.
//!
//! Resolution, first found wins:
//! - credentials: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`; the profile
//!   (`AWS_PROFILE`, else `default`) of `~/.aws/credentials` and `~/.aws/config` (static keys, or
//!   `web_identity_token_file` with `role_arn`); `AWS_WEB_IDENTITY_TOKEN_FILE` with
//!   `AWS_ROLE_ARN`; ECS/EKS container credentials; EC2 instance metadata;
//! - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, `us-east-1`;
//! - endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`;
//!   requests are path-style, and `AWS_ALLOW_HTTP=true` permits `http://` endpoints;
//! - retries: `AWS_MAX_ATTEMPTS` attempts per request (default 11).
//!
//! Writes that must not overwrite (Delta commits, store creation) are conditional puts
//! (`If-None-Match: *`), which S3 and the S3-compatible servers apply atomically.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};

use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::ObjectStore;
use object_store::RetryConfig;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use url::Url;

use crate::{Error, Result};

/// The object store of `url`'s bucket (rooted at the bucket) and the key prefix `url` names.
pub fn bucket_of(url: &Url) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| Error::InvalidLocation {
        location: url.to_string(),
        reason: "no bucket name".into(),
    })?;
    let prefix = Path::from_url_path(url.path())
        .map_err(|e| Error::InvalidLocation { location: url.to_string(), reason: e.to_string() })?;
    Ok((client(bucket)?, prefix))
}

/// Turns an object store error into one in the user's terms: a missing bucket, or access
/// refused, naming the location; other S3 errors reduced to their code and message.
pub fn explain(error: object_store::Error, url: &Url) -> Error {
    let location = url.to_string();
    let text = match &error {
        object_store::Error::NotFound { source, .. }
        | object_store::Error::PermissionDenied { source, .. }
        | object_store::Error::Unauthenticated { source, .. }
        | object_store::Error::Generic { source, .. } => chain(source.as_ref()),
        _ => return Error::ObjectStore(error),
    };
    let (code, message) = s3_error(&text);
    match code.as_deref() {
        // A PUT into a missing bucket is a 404 too.
        Some("NoSuchBucket") => {
            Error::InvalidLocation { location, reason: "the bucket does not exist".into() }
        }
        // Any other missing object is the caller's to handle.
        _ if matches!(error, object_store::Error::NotFound { .. }) => Error::ObjectStore(error),
        Some(
            "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken",
        ) => Error::AccessDenied { location, reason: message },
        _ if matches!(
            error,
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
        ) =>
        {
            Error::AccessDenied { location, reason: message }
        }
        Some(code) => Error::S3 { location, reason: format!("{code}: {message}") },
        // No answer from S3 at all: say why, once (the chain repeats the request at each level).
        None => Error::S3 { location, reason: text.lines().last().unwrap_or_default().to_owned() },
    }
}

/// The `<Code>` of an S3 error body and a one-line message.
fn s3_error(text: &str) -> (Option<String>, String) {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + end].to_owned())
    };
    // object_store restates some answers (DeleteObjects) as `... (code: AccessDenied)`.
    let restated = || {
        let start = text.find("(code: ")? + "(code: ".len();
        let end = text[start..].find(')')?;
        Some(text[start..start + end].to_owned())
    };
    let code = tag("Code").or_else(restated);
    let message = match (&code, tag("Message")) {
        (Some(code), Some(message)) => format!("{message} ({code})"),
        (_, Some(message)) => message,
        _ => text.lines().next().unwrap_or(text).to_owned(),
    };
    (code, message)
}

/// The error and its sources, as one text.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push('\n');
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

static CLIENTS: Mutex<Option<HashMap<String, Arc<dyn ObjectStore>>>> = Mutex::new(None);

/// The shared client of `bucket`, built on first use.
fn client(bucket: &str) -> Result<Arc<dyn ObjectStore>> {
    let mut clients = CLIENTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let clients = clients.get_or_insert_with(HashMap::new);
    if let Some(client) = clients.get(bucket) {
        return Ok(client.clone());
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (key, value) in profile_settings(&env)? {
        builder = builder.with_config(key, value);
    }
    if let Some(attempts) = env("AWS_MAX_ATTEMPTS") {
        let attempts: usize = attempts.parse().map_err(|_| {
            Error::AwsConfig(format!("AWS_MAX_ATTEMPTS must be a whole number, not '{attempts}'"))
        })?;
        builder =
            builder.with_retry(RetryConfig { max_retries: attempts.saturating_sub(1), ..Default::default() });
    }
    let client: Arc<dyn ObjectStore> =
        Arc::new(builder.build().map_err(|e| Error::AwsConfig(e.to_string()))?);
    clients.insert(bucket.to_owned(), client.clone());
    Ok(client)
}

/// Settings from the shared config and credentials files that the environment does not set.
fn profile_settings(env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(AmazonS3ConfigKey, String)>> {
    let explicit = env("AWS_PROFILE");
    let name = explicit.clone().unwrap_or_else(|| "default".to_owned());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| {
        env(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(default)))
    };
    let config_file = file("AWS_CONFIG_FILE", ".aws/config");
    let credentials_file = file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");

    let mut profile: HashMap<String, String> = HashMap::new();
    let mut found = false;
    let config_section = if name == "default" { "default".to_owned() } else { format!("profile {name}") };
    for (path, section) in [(&config_file, config_section.as_str()), (&credentials_file, name.as_str())] {
        let Some(path) = path else { continue };
        let Ok(text) = std::fs::read_to_string(path) else { continue };
        if let Some(values) = ini_section(&text, section) {
            found = true;
            profile.extend(values);
        }
    }
    if !found {
        return match explicit {
            Some(name) => Err(Error::AwsConfig(format!(
                "AWS_PROFILE is '{name}', but no such profile is in {} or {}",
                shown(&config_file),
                shown(&credentials_file)
            ))),
            None => Ok(Vec::new()),
        };
    }

    let mut settings = Vec::new();
    let mut take = |key: AmazonS3ConfigKey, field: &str| {
        if let Some(value) = profile.get(field) {
            settings.push((key, value.clone()));
        }
    };
    if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
        take(AmazonS3ConfigKey::Region, "region");
    }
    if env("AWS_ENDPOINT_URL").is_none() && env("AWS_ENDPOINT_URL_S3").is_none() {
        take(AmazonS3ConfigKey::Endpoint, "endpoint_url");
    }
    if env("AWS_ACCESS_KEY_ID").is_none() && env("AWS_WEB_IDENTITY_TOKEN_FILE").is_none() {
        if profile.contains_key("aws_access_key_id") {
            take(AmazonS3ConfigKey::AccessKeyId, "aws_access_key_id");
            take(AmazonS3ConfigKey::SecretAccessKey, "aws_secret_access_key");
            take(AmazonS3ConfigKey::Token, "aws_session_token");
        } else if profile.contains_key("web_identity_token_file") {
            take(AmazonS3ConfigKey::WebIdentityTokenFile, "web_identity_token_file");
            take(AmazonS3ConfigKey::RoleArn, "role_arn");
            take(AmazonS3ConfigKey::RoleSessionName, "role_session_name");
        } else if let Some(field) = ["credential_process", "sso_session", "sso_start_url", "role_arn"]
            .iter()
            .find(|f| profile.contains_key(**f))
        {
            return Err(Error::AwsConfig(format!(
                "profile '{name}' gets its credentials with '{field}', which trawl does not support; \
                 export them first, for example with \
                 eval \"$(aws configure export-credentials --profile {name} --format env)\""
            )));
        }
    }
    Ok(settings)
}

fn shown(path: &Option<PathBuf>) -> String {
    path.as_ref().map_or_else(|| "(no home directory)".to_owned(), |p| p.display().to_string())
}

/// The `key = value` pairs of `[section]` in an INI text, keys lower-cased. Indented lines
/// (nested settings such as `s3 =` blocks) and comments are skipped.
fn ini_section(text: &str, section: &str) -> Option<HashMap<String, String>> {
    let mut values: Option<HashMap<String, String>> = None;
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            inside = header.split_whitespace().collect::<Vec<_>>().join(" ") == section;
            if inside {
                values.get_or_insert_with(HashMap::new);
            }
            continue;
        }
        if !inside || line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = trimmed.split_once('=')
            && let Some(values) = values.as_mut()
        {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    values
}

/// Teaches delta-rs to open `s3://` tables with the shared clients, committing with
/// conditional puts (its default log store), once per process.
pub(crate) fn register_with_delta() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let scheme = Url::parse("s3://").expect("a valid scheme URL");
        object_store_factories().insert(scheme.clone(), Arc::new(Factory));
        logstore_factories().insert(scheme, Arc::new(Factory));
    });
}

struct Factory;

impl ObjectStoreFactory for Factory {
    fn parse_url_opts(&self, url: &Url, _: &StorageConfig) -> DeltaResult<(ObjectStoreRef, Path)> {
        bucket_of(url).map_err(|e| DeltaTableError::Generic(e.to_string()))
    }
}

impl LogStoreFactory for Factory {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(prefixed_store, root_store, location, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_sections() {
        let text = "[default]\nregion = eu-west-1\n\n[profile audit]\n# note\nregion=us-east-2\n\
                    s3 =\n  addressing_style = path\nendpoint_url = http://x\n";
        let default = ini_section(text, "default").unwrap();
        assert_eq!(default["region"], "eu-west-1");
        let audit = ini_section(text, "profile audit").unwrap();
        assert_eq!(audit["region"], "us-east-2");
        assert_eq!(audit["endpoint_url"], "http://x");
        assert!(!audit.contains_key("addressing_style"));
        assert!(ini_section(text, "audit").is_none());
    }

    #[test]
    fn profiles_fill_what_the_environment_leaves() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("credentials"),
            "[audit]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = secret\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("config"), "[profile audit]\nregion = eu-west-3\n").unwrap();
        let vars: HashMap<&str, String> = HashMap::from([
            ("AWS_PROFILE", "audit".to_owned()),
            ("AWS_CONFIG_FILE", dir.path().join("config").display().to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("credentials").display().to_string()),
        ]);
        let env = |k: &str| vars.get(k).cloned();
        let settings = profile_settings(&env).unwrap();
        let get = |key: AmazonS3ConfigKey| settings.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        assert_eq!(get(AmazonS3ConfigKey::AccessKeyId), Some("AKIAEXAMPLE"));
        assert_eq!(get(AmazonS3ConfigKey::SecretAccessKey), Some("secret"));
        assert_eq!(get(AmazonS3ConfigKey::Region), Some("eu-west-3"));

        let mut with_env = vars.clone();
        with_env.insert("AWS_ACCESS_KEY_ID", "AKIAENV".to_owned());
        with_env.insert("AWS_REGION", "ap-south-1".to_owned());
        let env = |k: &str| with_env.get(k).cloned();
        assert!(profile_settings(&env).unwrap().is_empty());

        let mut missing = vars.clone();
        missing.insert("AWS_PROFILE", "nope".to_owned());
        let env = |k: &str| missing.get(k).cloned();
        let e = profile_settings(&env).unwrap_err().to_string();
        assert!(e.contains("'nope'") && e.contains("credentials"), "{e}");
    }
}
