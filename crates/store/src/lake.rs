//! The lake: a root directory or bucket prefix holding one directory per event data store. Every store's configuration lives in `<store>/_trawl/store.json`.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Duration;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

use crate::clock::Clock;
use crate::config::{PENDING_DELETION_DAYS, Status, StoreConfig, validate_name};
use crate::eds::EventDataStore;
use crate::{Error, Result};

/// Where trawl metadata lives inside a store directory.
pub(crate) const META_DIR: &str = "_trawl";
const CONFIG_FILE: &str = "store.json";

/// The lake's own settings, in `<lake>/_trawl/lake.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeSettings {
    /// Every statement run over the lake (shell, `query`, audits, the library) is recorded in
    /// its query log, `trawl_query_log`. Off by default: a command that reads writes nothing.
    #[serde(default)]
    pub query_log: bool,
}

const SETTINGS_FILE: &str = "_trawl/lake.json";

/// A lake of event data stores.
#[derive(Debug, Clone)]
pub struct Lake {
    url: Url,
    objects: Arc<dyn ObjectStore>,
    /// Signs the records of the stores' integrity chains.
    signer: Option<Arc<crate::chain::Signer>>,
}

impl Lake {
    /// Opens the lake at `location`: a local path, a `file://` URL or `s3://bucket/prefix`. A
    /// missing local directory is [`Error::NoLake`]: opening creates nothing ([`Self::create`]
    /// does).
    pub fn open(location: &str) -> Result<Self> {
        Self::open_or_create(location, false)
    }

    /// Opens the lake at `location`, creating a missing local directory: for commands that write.
    pub fn create(location: &str) -> Result<Self> {
        Self::open_or_create(location, true)
    }

    fn open_or_create(location: &str, create: bool) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidLocation { location: location.into(), reason };
        let path = match Url::parse(location) {
            Ok(mut url) if url.scheme() == "s3" => {
                if !url.path().ends_with('/') {
                    url.set_path(&format!("{}/", url.path()));
                }
                crate::s3::register_with_delta();
                let (bucket, prefix) = crate::s3::bucket_of(&url)?;
                let objects: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
                    bucket
                } else {
                    Arc::new(PrefixStore::new(bucket, prefix))
                };
                return Ok(Self { url, objects, signer: None });
            }
            Ok(url) if url.scheme() == "file" => {
                url.to_file_path().map_err(|()| invalid("not a local file URL".into()))?
            }
            Ok(url) if url.scheme().len() > 1 => {
                return Err(invalid(format!("unsupported scheme '{}'", url.scheme())));
            }
            _ => PathBuf::from(location),
        };
        if create {
            std::fs::create_dir_all(&path).map_err(|source| Error::Io {
                context: format!("cannot create lake directory {}", path.display()),
                source,
            })?;
        } else if !path.is_dir() {
            let absolute = std::path::absolute(&path).unwrap_or(path);
            return Err(Error::NoLake(absolute.display().to_string()));
        }
        let path = path.canonicalize().map_err(|source| Error::Io {
            context: format!("cannot open lake directory {}", path.display()),
            source,
        })?;
        let mut url = Url::from_directory_path(&path).map_err(|()| invalid("not an absolute path".into()))?;
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        let objects = Arc::new(LocalFileSystem::new_with_prefix(&path)?);
        Ok(Self { url, objects, signer: None })
    }

    /// This lake, signing the integrity chain records its stores' commits write.
    pub fn with_signer(mut self, signer: Arc<crate::chain::Signer>) -> Self {
        self.signer = Some(signer);
        self
    }

    pub(crate) fn signer(&self) -> Option<&crate::chain::Signer> {
        self.signer.as_deref()
    }

    /// The lake's root URL, ending in `/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Where the lake is, as people write it: a local path, or its URL.
    pub fn location(&self) -> String {
        match self.url.to_file_path() {
            Ok(path) if self.url.scheme() == "file" => {
                let path = path.display().to_string();
                match path.strip_suffix('/') {
                    Some(trimmed) if !trimmed.is_empty() => trimmed.to_owned(),
                    _ => path,
                }
            }
            _ => self.url.to_string(),
        }
    }

    /// [`Error::StoreNotFound`] for `name` in this lake.
    pub fn store_not_found(&self, name: &str) -> Error {
        Error::StoreNotFound { name: name.to_owned(), lake: self.location() }
    }

    /// The object store rooted at the lake.
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// An object store error of this lake, naming the lake when access was refused.
    pub(crate) fn explain(&self, error: object_store::Error) -> Error {
        crate::s3::explain(error, &self.url)
    }

    pub(crate) fn store_url(&self, name: &str) -> Url {
        // Store names are validated to URL-safe characters.
        self.url.join(&format!("{name}/")).expect("validated store names join to a URL")
    }

    fn config_path(name: &str) -> Path {
        Path::from(format!("{name}/{META_DIR}/{CONFIG_FILE}"))
    }

    /// Every store in the lake, pending deletion included, sorted by name. Stores whose
    /// configuration cannot be read are left out: [`Self::listing`] names them.
    pub async fn stores(&self) -> Result<Vec<StoreConfig>> {
        Ok(self.listing().await?.0)
    }

    /// Every store in the lake, sorted by name, and the stores whose configuration cannot be
    /// read, with why: one broken store does not hide the others.
    pub async fn listing(&self) -> Result<(Vec<StoreConfig>, Vec<(String, String)>)> {
        let listing = self.objects.list_with_delimiter(None).await.map_err(|e| self.explain(e))?;
        let mut stores = Vec::new();
        let mut broken = Vec::new();
        for dir in listing.common_prefixes {
            let Some(name) = dir.filename() else { continue };
            if validate_name(name).is_err() {
                continue;
            }
            match self.read_config(name).await {
                Ok(config) => stores.push(config),
                Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => {}
                Err(e @ Error::CorruptMetadata { .. }) => broken.push((name.to_owned(), e.to_string())),
                Err(e) => return Err(e),
            }
        }
        stores.sort_by(|a, b| a.name.cmp(&b.name));
        broken.sort();
        Ok((stores, broken))
    }

    async fn read_config(&self, name: &str) -> Result<StoreConfig> {
        let path = Self::config_path(name);
        let bytes = self.objects.get(&path).await.map_err(|e| self.explain(e))?.bytes().await?;
        serde_json::from_slice(&bytes)
            .map_err(|source| Error::CorruptMetadata { path: path.to_string(), source })
    }

    /// Finds a store by name or id, whatever its status.
    pub async fn find(&self, name_or_id: &str) -> Result<StoreConfig> {
        if validate_name(name_or_id).is_ok() {
            match self.read_config(name_or_id).await {
                Ok(config) => return Ok(config),
                Err(Error::ObjectStore(object_store::Error::NotFound { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        self.stores()
            .await?
            .into_iter()
            .find(|c| c.id.to_string().eq_ignore_ascii_case(name_or_id))
            .ok_or_else(|| self.store_not_found(name_or_id))
    }

    /// Opens an enabled store by name or id.
    pub async fn store(&self, name_or_id: &str) -> Result<EventDataStore> {
        let config = self.find(name_or_id).await?;
        if config.status == Status::PendingDeletion {
            return Err(Error::PendingDeletion(config.name));
        }
        Ok(EventDataStore::new(self.clone(), config))
    }

    /// Creates a store and its (empty) Delta table.
    pub async fn create_store(&self, config: StoreConfig) -> Result<EventDataStore> {
        config.validate()?;
        let (stores, broken) = self.listing().await?;
        if stores.iter().map(|c| &c.name).chain(broken.iter().map(|(n, _)| n)).any(|n| *n == config.name) {
            return Err(Error::StoreExists(config.name));
        }
        let eds = EventDataStore::new(self.clone(), config);
        eds.create_table().await?;
        let body = PutPayload::from(serde_json::to_vec_pretty(eds.config()).expect("config serializes"));
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match self.objects.put_opts(&Self::config_path(&eds.config().name), body, opts).await {
            Ok(_) => Ok(eds),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(Error::StoreExists(eds.config().name.clone()))
            }
            Err(e) => Err(self.explain(e)),
        }
    }

    /// Replaces a store's configuration after validating it.
    pub async fn write_config(&self, config: &StoreConfig) -> Result<()> {
        config.validate()?;
        let body = PutPayload::from(serde_json::to_vec_pretty(config).expect("config serializes"));
        self.objects.put(&Self::config_path(&config.name), body).await.map_err(|e| self.explain(e))?;
        Ok(())
    }

    /// The lake's settings (the defaults when none were written).
    pub async fn settings(&self) -> Result<LakeSettings> {
        match self.objects.get(&Path::from(SETTINGS_FILE)).await {
            Ok(got) => {
                let bytes = got.bytes().await.map_err(|e| self.explain(e))?;
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::InvalidConfig(format!("{}{SETTINGS_FILE}: {e}", self.url)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(LakeSettings::default()),
            Err(e) => Err(self.explain(e)),
        }
    }

    /// Writes the lake's settings.
    pub async fn write_settings(&self, settings: &LakeSettings) -> Result<()> {
        let body = PutPayload::from(serde_json::to_vec_pretty(settings).expect("settings serialize"));
        self.objects.put(&Path::from(SETTINGS_FILE), body).await.map_err(|e| self.explain(e))?;
        Ok(())
    }

    /// Moves a store to pending deletion, unless termination protection is on.
    pub async fn delete_store(&self, name_or_id: &str, clock: &dyn Clock) -> Result<StoreConfig> {
        let mut config = self.find(name_or_id).await?;
        if config.status == Status::PendingDeletion {
            return Err(Error::PendingDeletion(config.name));
        }
        if config.termination_protection {
            return Err(Error::TerminationProtected(config.name));
        }
        config.status = Status::PendingDeletion;
        config.deleted_at = Some(clock.now());
        config.updated_at = clock.now();
        self.write_config(&config).await?;
        Ok(config)
    }

    /// Brings a store pending deletion back.
    pub async fn restore_store(&self, name_or_id: &str, clock: &dyn Clock) -> Result<StoreConfig> {
        let mut config = self.find(name_or_id).await?;
        if config.status != Status::PendingDeletion {
            return Err(Error::NotPendingDeletion(config.name));
        }
        config.status = Status::Enabled;
        config.deleted_at = None;
        config.updated_at = clock.now();
        self.write_config(&config).await?;
        Ok(config)
    }

    /// The stores that have been pending deletion for seven days or more.
    pub async fn expired_deletions(&self, clock: &dyn Clock) -> Result<Vec<StoreConfig>> {
        let now = clock.now();
        let mut stores = self.stores().await?;
        stores.retain(|config| {
            config.status == Status::PendingDeletion
                && config.deleted_at.is_some_and(|at| now - at >= Duration::days(PENDING_DELETION_DAYS))
        });
        Ok(stores)
    }

    /// Removes, for good, every store that has been pending deletion for seven days or more.
    /// Returns the names removed.
    pub async fn purge_expired(&self, clock: &dyn Clock) -> Result<Vec<String>> {
        let mut purged = Vec::new();
        for config in self.expired_deletions(clock).await? {
            // The configuration goes last, so an interrupted purge is retried by the next one.
            let prefix = Path::from(config.name.as_str());
            let config_path = Self::config_path(&config.name);
            let objects: Vec<Path> = self
                .objects
                .list(Some(&prefix))
                .map_ok(|m| m.location)
                .try_filter(|p| futures::future::ready(*p != config_path))
                .try_collect()
                .await?;
            for path in objects {
                self.objects.delete(&path).await.map_err(|e| self.explain(e))?;
            }
            self.objects.delete(&config_path).await.map_err(|e| self.explain(e))?;
            if let Ok(root) = self.url.to_file_path() {
                // Local lakes also drop the now empty directories.
                let _ = std::fs::remove_dir_all(root.join(&config.name));
            }
            purged.push(config.name);
        }
        Ok(purged)
    }
}
