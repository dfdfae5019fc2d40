//! Bundles `sql-examples/*.sql` (for the REPL's `\examples` and the `builtin` audit pack), SigmaHQ's
//! CloudTrail rules (the `sigma` pack) and the real CloudTrail files of
//! `tests/fixtures` (for `trawl demo`) into the binary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut code = String::new();

    let examples = files(&root.join("sql-examples"), &|p| p.extension().is_some_and(|e| e == "sql"));
    code.push_str(
        "/// The bundled sql-examples: (name, SQL).\npub(crate) const EXAMPLES: &[(&str, &str)] = &[\n",
    );
    for path in &examples {
        let name = path.file_stem().and_then(|s| s.to_str()).expect("UTF-8 example name");
        writeln!(code, "    ({name:?}, include_str!({})),", from_root(&root, path))
            .expect("write to a String");
    }
    code.push_str("];\n\n");

    let sigma = root.join("crates/audit/sigma/rules");
    let rules = files(&sigma, &|p| p.extension().is_some_and(|e| e == "yml"));
    code.push_str("/// The bundled Sigma rules (the `sigma` pack): (file name, YAML).\n");
    code.push_str("pub(crate) const SIGMA: &[(&str, &str)] = &[\n");
    for path in &rules {
        let name = path.file_name().and_then(|s| s.to_str()).expect("UTF-8 rule name");
        writeln!(code, "    ({name:?}, include_str!({})),", from_root(&root, path))
            .expect("write to a String");
    }
    code.push_str("];\n\n");

    // The demo leaves out the deliberately malformed files of the processing library's tests.
    let fixtures = root.join("tests/fixtures");
    let demo = files(&fixtures, &|p| {
        let name = p.file_name().and_then(|s| s.to_str()).unwrap_or("");
        !name.ends_with(".md") && !p.to_string_lossy().contains("edge-cases-")
    });
    code.push_str("/// The bundled demo events: (path under tests/fixtures, bytes).\n");
    code.push_str("pub(crate) const DEMO_FILES: &[(&str, &[u8])] = &[\n");
    for path in &demo {
        let rel = path.strip_prefix(&fixtures).expect("under fixtures").display().to_string();
        writeln!(code, "    ({rel:?}, include_bytes!({})),", from_root(&root, path))
            .expect("write to a String");
    }
    code.push_str("];\n");
    std::fs::write(out.join("bundled.rs"), code).expect("write bundled.rs");
    println!("cargo:rerun-if-changed=sql-examples");
    println!("cargo:rerun-if-changed=crates/audit/sigma/rules");
    println!("cargo:rerun-if-changed=tests/fixtures");
}

/// `path` as an expression relative to the package root: the generated code stays valid when a
/// target directory is shared by clones in other places (cargo does not rerun this script then).
fn from_root(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).expect("under the package root").display().to_string();
    format!("concat!(env!(\"CARGO_MANIFEST_DIR\"), {:?})", format!("/{rel}"))
}

/// The files under `dir` that `keep` accepts, recursively, sorted.
fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if keep(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
