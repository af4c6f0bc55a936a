//! The shell commands the documentation shows: fenced `sh` blocks of `README.md` and
//! `docs/*.md`, split into commands, for the tests that check or run them.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One fenced shell block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The file, relative to the repository.
    pub file: String,
    /// The line of the block's first command (1-based).
    pub line: usize,
    /// The block's text, as written.
    pub text: String,
}

/// Every fenced block tagged `sh`, `bash`, `shell` or `console` in `text`.
pub fn shell_blocks(file: &str, text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (n, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(tag)) if matches!(tag.trim(), "sh" | "bash" | "shell" | "console") => {
                open = Some(Block { file: file.to_string(), line: n + 2, text: String::new() });
            }
            (Some(_), Some(_)) => blocks.extend(open.take()),
            (Some(b), None) => {
                b.text.push_str(line);
                b.text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The blocks of `README.md` and every `docs/*.md`, in file order.
pub fn all_blocks() -> Vec<Block> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).expect("readable doc");
            let name = path.strip_prefix(repo()).unwrap_or(path).display().to_string();
            shell_blocks(name.trim_start_matches("./").trim_start_matches("../"), &text)
        })
        .collect()
}

/// The commands of a block, each with its line: continuation lines joined, comment lines and
/// trailing comments (` # ...` outside quotes) dropped.
pub fn commands(block: &Block) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = block.line;
    for (i, line) in block.text.lines().enumerate() {
        if current.is_empty() {
            start = block.line + i;
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                out.push((start, strip_comment(&current).trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

/// `text` up to a ` #` that starts a comment (outside single and double quotes).
fn strip_comment(text: &str) -> &str {
    let (mut single, mut double, mut prev) = (false, false, ' ');
    for (i, c) in text.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &text[..i],
            _ => {}
        }
        prev = c;
    }
    text
}

/// The README's walk-through: its section's shell blocks, in order.
pub fn walkthrough() -> Vec<Block> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme.split("\n## A five-minute walk-through").nth(1).expect("README has the walk-through");
    let section = section.split("\n## ").next().unwrap_or_default();
    // Line numbers relative to the README, for messages.
    let offset = readme[..readme.find(section).unwrap_or(0)].lines().count();
    shell_blocks("README.md", section).into_iter().map(|b| Block { line: b.line + offset, ..b }).collect()
}
