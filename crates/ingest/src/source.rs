//! Source files: discovery (files and directories, recursively) and reading (gzip or not).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use trawl_store::SourceId;

use crate::{Error, Result};

/// A file to ingest.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its identity in the ledger.
    pub id: SourceId,
}

const EXTENSIONS: &[&str] = &[".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"];

/// Whether a file found in a directory is taken: `.json`, `.jsonl`, `.ndjson`, gzipped or not.
fn wanted(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
    !name.starts_with('.') && EXTENSIONS.iter().any(|e| name.ends_with(e))
}

/// The files named by `inputs`: files as given, directories walked recursively (taking files
/// with a JSON extension), in a stable order, each once.
pub fn discover(inputs: &[PathBuf]) -> Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|source| Error::Source {
            path: input.display().to_string(),
            reason: source.to_string(),
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(input, &mut found)?;
            found.sort();
            files.extend(found);
        } else {
            files.push(input.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let canonical = path
            .canonicalize()
            .map_err(|e| Error::Source { path: path.display().to_string(), reason: e.to_string() })?;
        if !seen.insert(canonical.clone()) {
            continue;
        }
        let meta = std::fs::metadata(&canonical)
            .map_err(|e| Error::Source { path: path.display().to_string(), reason: e.to_string() })?;
        let modified =
            meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        out.push(SourceFile {
            id: SourceId {
                location: canonical.display().to_string(),
                size: meta.len(),
                fingerprint: format!("mtime:{modified}"),
            },
            path: canonical,
        });
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::Source { path: dir.display().to_string(), reason: e.to_string() })?;
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::Source { path: dir.display().to_string(), reason: e.to_string() })?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| Error::Source { path: path.display().to_string(), reason: e.to_string() })?;
        if file_type.is_dir() {
            walk(&path, out)?;
        } else if wanted(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a source's bytes, decompressing gzip (recognised by its magic bytes).
pub(crate) fn read(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("bad gzip data: {e}"))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}
