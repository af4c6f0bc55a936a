//! Reading the folder: which files count, within which limits, and the fingerprint that tells
//! a reload whether anything changed.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::Problem;

/// How much of a folder is read; beyond these, `check` reports a problem instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file read, in bytes.
    pub max_file_bytes: u64,
    /// Most files (articles and replies together) in the folder.
    pub max_articles: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_file_bytes: 256 * 1024, max_articles: 2_000 }
    }
}

/// Subfolders deeper than this are not read (a symlink loop ends here too).
const MAX_DEPTH: usize = 8;

/// A file's identity for change detection: path, modification time, size.
pub type Stamp = (PathBuf, Option<SystemTime>, u64);

/// The `*.md` files under `folder` (subfolders included, hidden entries and `README.md`
/// skipped), sorted, with their stamps; or the problem with the folder itself.
pub fn scan(folder: &Path, limits: &Limits) -> Result<Vec<Stamp>, Problem> {
    let problem = |reason: String| Problem { file: folder.to_path_buf(), line: 0, reason };
    if !folder.is_dir() {
        return Err(problem("no such folder".into()));
    }
    let mut out = Vec::new();
    let mut stack = vec![(folder.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| Problem { file: dir.clone(), line: 0, reason: e.to_string() })?;
        for entry in entries {
            let entry = entry.map_err(|e| Problem { file: dir.clone(), line: 0, reason: e.to_string() })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // Follows symlinks, as an operator linking an article in would expect.
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
            } else if name.ends_with(".md") && !name.eq_ignore_ascii_case("readme.md") {
                out.push((path, meta.modified().ok(), meta.len()));
                if out.len() > limits.max_articles {
                    return Err(problem(format!(
                        "more than {} articles (the `[kb] max_articles` limit)",
                        limits.max_articles
                    )));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}
