//! Checksums of data files, block by block, so that a flipped bit is an error naming the store
//! and the file, never a different answer.
//!
//! The Parquet writer of arrow-rs writes no page checksums, and zstd frames carry none, so a
//! bit flipped in a page can decode to other values (an `eventid` one character off). When a
//! file is written, the low 32 bits of the XXH3 hash of each 64 KiB block go into its Delta
//! `add` action (tag [`TAG`], hex). Reads of the file go through [`VerifiedStore`], which widens
//! each range to whole blocks and checks them before handing the bytes on: a point lookup that
//! reads three pages checks the blocks of those pages and nothing else. Files written before the
//! tag existed are read unchecked.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// The Delta `add` tag that holds a data file's block checksums.
pub const TAG: &str = "trawl.blocks.xxh3-64k";
/// Bytes per checked block.
const BLOCK: u64 = 64 << 10;

/// The checksum tag of a file's bytes.
pub(crate) fn tag_of(bytes: &[u8]) -> String {
    let mut tag = String::with_capacity(bytes.len().div_ceil(BLOCK as usize) * 8);
    for block in bytes.chunks(BLOCK as usize) {
        tag.push_str(&format!("{:08x}", sum(block)));
    }
    tag
}

fn sum(block: &[u8]) -> u32 {
    xxhash_rust::xxh3::xxh3_64(block) as u32
}

/// The block checksums of one data file, and what to name it by when one does not match.
#[derive(Debug)]
pub struct FileBlocks {
    /// The store the file belongs to.
    store: String,
    /// The file, as the store names it (relative to the table).
    file: String,
    size: u64,
    sums: Vec<u32>,
}

impl FileBlocks {
    /// The checksums of a file of `size` bytes from its tag; `None` when the tag is malformed
    /// or does not fit the size (then the file is read unchecked, as files written before the
    /// tag were).
    pub(crate) fn parse(store: &str, file: &str, size: u64, tag: &str) -> Option<Self> {
        if !tag.len().is_multiple_of(8) || (tag.len() / 8) as u64 != size.div_ceil(BLOCK) {
            return None;
        }
        let sums = (0..tag.len())
            .step_by(8)
            .map(|i| u32::from_str_radix(tag.get(i..i + 8)?, 16).ok())
            .collect::<Option<Vec<u32>>>()?;
        Some(Self { store: store.to_owned(), file: file.to_owned(), size, sums })
    }

    /// The byte range of whole blocks that covers `range`.
    fn widen(&self, range: &Range<u64>) -> Range<u64> {
        (range.start / BLOCK * BLOCK)..(range.end.div_ceil(BLOCK) * BLOCK).min(self.size)
    }

    fn damaged(&self, damage: Damage) -> Corrupt {
        Corrupt { store: self.store.clone(), file: self.file.clone(), damage }
    }

    /// Checks `bytes`, the whole blocks starting at byte `start`.
    fn check(&self, start: u64, bytes: &[u8]) -> Result<(), Corrupt> {
        for (i, block) in bytes.chunks(BLOCK as usize).enumerate() {
            let index = (start / BLOCK) as usize + i;
            if self.sums.get(index) != Some(&sum(block)) {
                let at = index as u64 * BLOCK;
                return Err(self.damaged(Damage::Mismatch(at..at + block.len() as u64)));
            }
        }
        Ok(())
    }
}

/// A data file of a store that is not as it was written: a block that does not match its
/// checksum, or the file gone or cut short.
#[derive(Debug, Clone)]
pub struct Corrupt {
    store: String,
    file: String,
    damage: Damage,
}

#[derive(Debug, Clone)]
enum Damage {
    /// These bytes do not match their checksum.
    Mismatch(Range<u64>),
    /// The file is not there.
    Missing,
    /// The file is shorter than it was written.
    Short,
}

/// The words that end a [`Corrupt`]'s message.
const CORRUPT_END: &str = "(bit rot, or a change made outside trawl)";

impl Corrupt {
    /// The store the file belongs to.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The file, relative to the store's table.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The `Corrupt` among `error` and its sources.
    pub fn find<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Corrupt> {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(corrupt) = e.downcast_ref::<Corrupt>() {
                return Some(corrupt);
            }
            next = e.source();
        }
        None
    }

    /// The message of a `Corrupt` inside `text`, an error message that holds it (DataFusion and
    /// Parquet restate the errors of the layers below them as text, more than once).
    pub fn find_in(text: &str) -> Option<&str> {
        let end = text.find(CORRUPT_END)? + CORRUPT_END.len();
        let start = text[..end].rfind("data file ")?;
        Some(&text[start..end])
    }
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "data file {} of event data store '{}' is damaged: ", self.file, self.store)?;
        match &self.damage {
            Damage::Mismatch(range) => {
                write!(f, "bytes {}..{} do not match the checksum written with them", range.start, range.end)?
            }
            Damage::Missing => write!(f, "it is missing")?,
            Damage::Short => write!(f, "it is shorter than it was written")?,
        }
        write!(f, " {CORRUPT_END}")
    }
}

impl std::error::Error for Corrupt {}

/// An object store that checks the data files it knows the block checksums of, on every read.
#[derive(Debug)]
pub struct VerifiedStore {
    inner: Arc<dyn ObjectStore>,
    files: HashMap<Path, Arc<FileBlocks>>,
}

impl VerifiedStore {
    /// `inner`, checking reads of `files` (paths as `inner` names them).
    pub fn new(inner: Arc<dyn ObjectStore>, files: HashMap<Path, Arc<FileBlocks>>) -> Self {
        Self { inner, files }
    }
}

impl fmt::Display for VerifiedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifiedStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for VerifiedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let Some(blocks) = self.files.get(location) else {
            return self.inner.get_opts(location, options).await;
        };
        if options.head {
            return self.inner.get_opts(location, options).await;
        }
        let size = blocks.size;
        let wanted = match &options.range {
            None => 0..size,
            Some(GetRange::Bounded(r)) => r.start..r.end.min(size),
            Some(GetRange::Offset(o)) => (*o).min(size)..size,
            Some(GetRange::Suffix(n)) => size.saturating_sub(*n)..size,
        };
        if wanted.start > wanted.end {
            // Past the end of the file: the store says so.
            return self.inner.get_opts(location, options).await;
        }
        let widened = blocks.widen(&wanted);
        let options = GetOptions { range: Some(GetRange::Bounded(widened.clone())), ..options };
        let damaged = |damage| object_store::Error::Generic {
            store: "trawl",
            source: Box::new(blocks.damaged(damage)),
        };
        let result = match self.inner.get_opts(location, options).await {
            Err(object_store::Error::NotFound { .. }) => return Err(damaged(Damage::Missing)),
            result => result?,
        };
        let (meta, attributes) = (result.meta.clone(), result.attributes.clone());
        let bytes = result.bytes().await?;
        blocks
            .check(widened.start, &bytes)
            .map_err(|e| object_store::Error::Generic { store: "trawl", source: Box::new(e) })?;
        let from = (wanted.start - widened.start) as usize;
        let Some(part) = bytes.get(from..from + (wanted.end - wanted.start) as usize) else {
            // The object is shorter than the file was: a checked block would have failed first.
            return Err(damaged(Damage::Short));
        };
        let part = bytes.slice_ref(part);
        Ok(GetResult {
            payload: GetResultPayload::Stream(Box::pin(futures::stream::once(async move { Ok(part) }))),
            meta,
            range: wanted,
            attributes,
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test]
    async fn every_flipped_bit_is_caught() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let tag = tag_of(&bytes);
        let path = Path::from("eventdate=2024-01-01/part-0.parquet");
        let blocks = Arc::new(FileBlocks::parse("audit", path.as_ref(), bytes.len() as u64, &tag).unwrap());
        for at in [0usize, 65_535, 65_536, 150_000, 199_999] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x10;
            let inner = Arc::new(InMemory::new());
            inner.put(&path, PutPayload::from(flipped)).await.unwrap();
            let store = VerifiedStore::new(inner, HashMap::from([(path.clone(), blocks.clone())]));
            // A read of the flipped byte fails, naming the store and file; one elsewhere works.
            let err = store.get_range(&path, at as u64..at as u64 + 1).await.unwrap_err().to_string();
            assert!(err.contains("event data store 'audit' is damaged"), "{err}");
            assert!(err.contains("part-0.parquet"), "{err}");
            let far = if at < 100_000 { 190_000..190_010 } else { 10..20 };
            let got = store.get_range(&path, far.clone()).await.unwrap();
            assert_eq!(&got[..], &bytes[far.start as usize..far.end as usize]);
        }
        // A range past the end is the store's error, not a panic.
        let inner = Arc::new(InMemory::new());
        inner.put(&path, PutPayload::from(bytes.clone())).await.unwrap();
        let store = VerifiedStore::new(inner, HashMap::from([(path.clone(), blocks.clone())]));
        assert!(store.get_range(&path, 300_000..300_010).await.is_err());
        // A truncated file is an error too.
        let inner = Arc::new(InMemory::new());
        inner.put(&path, PutPayload::from(bytes[..100_000].to_vec())).await.unwrap();
        let store = VerifiedStore::new(inner, HashMap::from([(path.clone(), blocks.clone())]));
        assert!(store.get_range(&path, 150_000..150_010).await.is_err());
        assert!(FileBlocks::parse("audit", "f", 10, "zz").is_none());
    }
}
