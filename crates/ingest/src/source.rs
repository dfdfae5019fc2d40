//! Source files: discovery (local files and directories, recursively; `s3://` locations, trail
//! layouts pruned by account, region and day) and reading (gzip or not).

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use object_store::{ObjectStore, ObjectStoreExt};
use trawl_store::SourceId;
use trawl_store::trail::{self, TrailFilter};
use url::Url;

use crate::{Error, Result};

/// A file to ingest.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Where its bytes are.
    pub origin: Origin,
    /// Its identity in the ledger.
    pub id: SourceId,
    /// The trail day prefix it was found under (`s3://bucket/AWSLogs/.../2024/01/31/`).
    pub day_prefix: Option<String>,
}

/// Where a source's bytes are.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A local file.
    File(PathBuf),
    /// An object of an object store.
    Object(Arc<dyn ObjectStore>, object_store::path::Path),
}

impl SourceFile {
    /// Reads the raw (possibly compressed) bytes.
    pub(crate) async fn fetch(&self) -> std::result::Result<Vec<u8>, String> {
        match &self.origin {
            Origin::File(_) => {
                let source = self.clone();
                tokio::task::spawn_blocking(move || source.read())
                    .await
                    .map_err(|e| format!("cannot read: {e}"))?
            }
            Origin::Object(store, path) => {
                let get = async { store.get(path).await?.bytes().await };
                get.await.map(|b| b.to_vec()).map_err(|e| match Url::parse(&self.id.location) {
                    Ok(url) => format!("cannot read: {}", trawl_store::s3::explain(e, &url)),
                    Err(_) => format!("cannot read: {e}"),
                })
            }
        }
    }

    /// Reads a local file's bytes, blocking (objects are fetched instead).
    pub(crate) fn read(&self) -> std::result::Result<Vec<u8>, String> {
        match &self.origin {
            Origin::File(path) => std::fs::read(path).map_err(|e| format!("cannot read: {e}")),
            Origin::Object(..) => Err("an object is fetched, not read".into()),
        }
    }
}

/// A path that could not be ingested, and why.
pub type Skipped = (String, String);

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The files, in a stable order, each once.
    pub files: Vec<SourceFile>,
    /// Trail day prefixes listed.
    pub day_prefixes: usize,
    /// The newest day of the trail day prefixes listed.
    pub newest_day: Option<chrono::NaiveDate>,
    /// Prefixes left out (digests, Insights, Config ...), as URLs.
    pub skipped_prefixes: Vec<String>,
    /// LIST requests made.
    pub lists: usize,
    /// Entries of local directories that cannot be ingested (dangling links, FIFOs, sockets,
    /// unreadable entries), with why: reported, and the rest of the walk goes on.
    pub unreadable: Vec<Skipped>,
}

/// Whether `input` names an object store location rather than a local path.
pub fn is_url(input: &str) -> bool {
    input.starts_with("s3://")
}

/// The files named by `inputs`: local files as given, local directories walked recursively
/// (taking files with a JSON extension), `s3://` locations listed as trail layouts with
/// `filter`'s pruning.
pub async fn discover_all(inputs: &[String], filter: &TrailFilter) -> Result<Sources> {
    let mut sources = Sources::default();
    let mut local = Vec::new();
    for input in inputs {
        if !is_url(input) {
            local.push(PathBuf::from(input));
            continue;
        }
        let url =
            Url::parse(input).map_err(|e| Error::Source { path: input.clone(), reason: e.to_string() })?;
        let (store, root) = trawl_store::s3::bucket_of(&url)?;
        let listing = trail::list(&store, &root, filter).await.map_err(|e| e.at(&url))?;
        sources.lists += listing.lists;
        sources.day_prefixes += listing.day_prefixes.len();
        sources.newest_day = sources.newest_day.max(listing.newest_day);
        let bucket = url.host_str().unwrap_or_default().to_owned();
        let as_url = |p: &object_store::path::Path| format!("s3://{bucket}/{p}");
        sources.skipped_prefixes.extend(listing.skipped_prefixes.iter().map(|p| format!("{}/", as_url(p))));
        for (meta, day) in listing.files {
            sources.files.push(SourceFile {
                id: SourceId {
                    location: as_url(&meta.location),
                    size: meta.size,
                    fingerprint: meta.e_tag.clone().unwrap_or_default(),
                },
                origin: Origin::Object(store.clone(), meta.location),
                day_prefix: day.map(|d| format!("{}/", as_url(&d))),
            });
        }
    }
    let mut files = std::mem::take(&mut sources.files);
    let (found, unreadable) = discover(&local)?;
    files.extend(found);
    sources.unreadable = unreadable;
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.id.location.clone()));
    // Trail layouts list account by account and region by region; taken in delivery order
    // instead, a run works through each day once (its waves write a day's events together, and
    // its dedupe keys stay those of the last days).
    files.sort_by_cached_key(|f| delivery_time(&f.id.location).map(str::to_owned));
    sources.files = files;
    Ok(sources)
}

/// The delivery time in a CloudTrail log file name,
/// `<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz`, as written there.
fn delivery_time(location: &str) -> Option<&str> {
    let name = location.rsplit(['/', '\\']).next()?;
    name.split('_').nth(3).filter(|t| {
        let b = t.as_bytes();
        b.len() == 14
            && b[8] == b'T'
            && b[13] == b'Z'
            && b[..8].iter().chain(&b[9..13]).all(u8::is_ascii_digit)
    })
}

/// The local files named by `inputs`: files as given, directories walked recursively (taking
/// files with a JSON extension), in a stable order, each once; and the entries found in the
/// directories that cannot be read, with why. An input that cannot be read is an error.
pub fn discover(inputs: &[PathBuf]) -> Result<(Vec<SourceFile>, Vec<Skipped>)> {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for input in inputs {
        let canonical = input.canonicalize().map_err(|e| failed(input, e))?;
        let meta = std::fs::metadata(&canonical).map_err(|e| failed(input, e))?;
        if meta.is_dir() {
            // Below a canonical directory, the walk's paths are canonical too: it descends
            // into directories only, not into links. A trail holds hundreds of thousands of
            // files; resolving each one again would cost a system call per path component.
            let mut found = Vec::new();
            walk(&canonical, &mut found, &mut unreadable);
            found.sort_by(|a, b| a.0.cmp(&b.0));
            files.extend(found);
        } else {
            files.push((canonical, meta));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(files.len());
    for (path, meta) in files {
        if !seen.insert(path.clone()) {
            continue;
        }
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        out.push(SourceFile {
            id: SourceId {
                location: path.display().to_string(),
                size: meta.len(),
                fingerprint: format!("mtime:{modified}"),
            },
            origin: Origin::File(path),
            day_prefix: None,
        });
    }
    unreadable.sort();
    Ok((out, unreadable))
}

/// Walks `dir`: JSON files into `out`, entries that cannot be ingested into `unreadable`. Only
/// regular files are read: reading a FIFO would wait for a writer forever.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>, unreadable: &mut Vec<Skipped>) {
    fn skip(unreadable: &mut Vec<Skipped>, path: &Path, reason: String) {
        unreadable.push((path.display().to_string(), reason));
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return skip(unreadable, dir, format!("cannot read directory: {e}")),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                skip(unreadable, dir, format!("cannot read directory: {e}"));
                continue;
            }
        };
        let path = entry.path();
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                skip(unreadable, &path, format!("cannot read: {e}"));
                continue;
            }
        };
        if file_type.is_dir() {
            walk(&path, out, unreadable);
            continue;
        }
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(trail::is_json_file) {
            continue;
        }
        let found = if file_type.is_symlink() {
            path.canonicalize().and_then(|target| Ok((std::fs::metadata(&target)?, target)))
        } else {
            entry.metadata().map(|meta| (meta, path.clone()))
        };
        match found {
            Ok((meta, target)) if meta.is_file() => out.push((target, meta)),
            Ok(_) => skip(unreadable, &path, "not a regular file".to_owned()),
            Err(e) if file_type.is_symlink() => {
                skip(unreadable, &path, format!("cannot follow the link: {e}"))
            }
            Err(e) => skip(unreadable, &path, format!("cannot read: {e}")),
        }
    }
}

fn failed(path: &Path, e: std::io::Error) -> Error {
    Error::Source { path: path.display().to_string(), reason: e.to_string() }
}

/// The largest text a file may decompress to (1 GiB) unless ingest is told otherwise: a
/// gzip bomb of a megabyte expands past a gigabyte, and a file is held whole while it is framed.
pub const MAX_TEXT_BYTES: u64 = 1 << 30;

/// Decompresses gzip (recognised by its magic bytes), member after member; other bytes are
/// returned as they are. A damaged stream keeps what decompressed before the damage, with a
/// note saying what was lost: the records before it are still whole. More than `limit` bytes
/// of text is an error.
pub(crate) fn decompress(raw: Vec<u8>, limit: u64) -> std::result::Result<(Vec<u8>, Option<String>), String> {
    if !raw.starts_with(&GZIP_MAGIC) {
        if raw.len() as u64 > limit {
            return Err(too_large(limit));
        }
        return Ok((raw, None));
    }
    // The trailer's ISIZE is the size of a one-member file (trail files have one member);
    // deflate expands 1,032 times at most, so a false ISIZE cannot ask for more.
    let size = raw.last_chunk::<4>().map_or(0, |b| u32::from_le_bytes(*b) as u64);
    let most = (raw.len() as u64).saturating_mul(1032).min(limit);
    let mut out = Vec::with_capacity(usize::try_from(size.clamp(raw.len() as u64, most)).unwrap_or(0));
    let mut text = TextReader::new(std::io::Cursor::new(raw), limit);
    text.read_to_end(&mut out).map_err(|e| e.to_string())?;
    Ok((out, text.damage))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn too_large(limit: u64) -> String {
    format!("decompresses to more than {} MiB (the limit is --max-file-mib)", limit >> 20)
}

/// A file's text as a stream: gunzipped member after member when it starts as gzip, at most
/// `limit` bytes of it (past that, a read fails). A damaged gzip stream ends at the damage, and
/// [`TextReader::damage`] says what was lost; zero padding after the last member loses nothing.
pub(crate) struct TextReader<R: BufRead> {
    stage: Stage<Counted<R>>,
    limit: u64,
    read: u64,
    members: usize,
    damage: Option<String>,
}

enum Stage<R: BufRead> {
    Start(R),
    Plain(R),
    Member(Box<flate2::bufread::GzDecoder<R>>),
    Between(R),
    Done,
}

impl<R: BufRead> TextReader<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Self { stage: Stage::Start(Counted { inner, at: 0 }), limit, read: 0, members: 0, damage: None }
    }

    /// What a damaged gzip stream lost, once the stream has ended.
    pub(crate) fn damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }

    fn end(&mut self, damage: String) -> std::io::Result<usize> {
        self.damage = Some(damage);
        self.stage = Stage::Done;
        Ok(0)
    }
}

impl<R: BufRead> Read for TextReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = match std::mem::replace(&mut self.stage, Stage::Done) {
                Stage::Start(mut r) => {
                    let head = r.fill_buf()?;
                    self.stage =
                        if head.starts_with(&GZIP_MAGIC) { Stage::Between(r) } else { Stage::Plain(r) };
                    continue;
                }
                Stage::Plain(mut r) => {
                    let n = r.read(buf)?;
                    self.stage = Stage::Plain(r);
                    n
                }
                Stage::Member(mut d) => match d.read(buf) {
                    Ok(0) => {
                        self.members += 1;
                        self.stage = Stage::Between(d.into_inner());
                        continue;
                    }
                    Ok(n) => {
                        self.stage = Stage::Member(d);
                        n
                    }
                    Err(e) => {
                        let at = d.get_ref().at;
                        let read = self.read;
                        return self.end(format!(
                            "bad gzip data before byte {at} ({e}): the text after byte {read} is lost"
                        ));
                    }
                },
                Stage::Between(mut r) => {
                    let head = r.fill_buf()?;
                    if head.is_empty() {
                        return Ok(0);
                    }
                    if head.starts_with(&GZIP_MAGIC) {
                        self.stage = Stage::Member(Box::new(flate2::bufread::GzDecoder::new(r)));
                        continue;
                    }
                    let at = r.at;
                    let mut rest = Vec::new();
                    r.read_to_end(&mut rest)?;
                    if self.members > 0 && rest.iter().all(|&b| b == 0) {
                        return Ok(0);
                    }
                    return self
                        .end(format!("{} bytes after the gzip data at byte {at} were ignored", rest.len()));
                }
                Stage::Done => return Ok(0),
            };
            self.read += n as u64;
            if self.read > self.limit {
                return Err(std::io::Error::other(too_large(self.limit)));
            }
            return Ok(n);
        }
    }
}

/// A reader that counts the bytes consumed from it, for the offsets of damage.
struct Counted<R> {
    inner: R,
    at: u64,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.at += n as u64;
        self.inner.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::delivery_time;

    #[test]
    fn delivery_time_of_trail_file_names() {
        let name = "s3://b/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/03/04/\
                    111122223333_CloudTrail_eu-west-1_20260304T2355Z_h3b0dKJjFTdeJsqB.json.gz";
        assert_eq!(delivery_time(name), Some("20260304T2355Z"));
        assert_eq!(delivery_time("/x/o_CloudTrail_r_20260304T2355Z_u.json"), Some("20260304T2355Z"));
        assert_eq!(delivery_time("/x/a_b_c_d_e.json"), None);
        assert_eq!(delivery_time("/x/1_CloudTrail_r_2026030412355Z_u.json"), None);
        assert_eq!(delivery_time("export.json"), None);
    }
}
