//! The code map stays a tree: inside each crate, files import each other without cycles (a file
//! that imports another never is imported back, directly or around a loop), so a newcomer can
//! read a crate from its leaves up. Imports are the `crate::a::b` and `super::x` paths outside
//! comments and `#[cfg(test)] mod tests`; a child module using its parent is not counted (a
//! module declares its children and they see its private items by design).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Every `.rs` file below `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `src`: `router/service/inputs.rs` is `service::inputs`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("below src").with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without comments and without its unit-test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The paths following each occurrence of `prefix` (`crate::` or `super::`), as segments.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        out.push(rest[..end].split("::").filter(|s| !s.is_empty()).collect());
    }
    out
}

/// Which modules of one crate each module imports.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files.into_iter().map(|f| (module_of(src, &f), f)).collect();
    let longest_module = |segments: &[&str], base: &str| {
        (1..=segments.len()).rev().find_map(|k| {
            let tail = segments[..k].join("::");
            let name = if base.is_empty() { tail } else { format!("{base}::{tail}") };
            modules.contains_key(&name).then_some(name)
        })
    };
    let mut graph = BTreeMap::new();
    for (module, file) in &modules {
        let code = code(&std::fs::read_to_string(file).expect("a source file"));
        let parent = module.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        let mut edges = BTreeSet::new();
        for segments in paths_after(&code, "crate::") {
            edges.extend(longest_module(&segments, ""));
        }
        for segments in paths_after(&code, "super::") {
            edges.extend(longest_module(&segments, parent));
        }
        edges.remove(module);
        // A child reaching into its parent is the module tree itself, not a cycle.
        edges.retain(|to| !(module.starts_with(&format!("{to}::")) || to.is_empty()));
        graph.insert(module.clone(), edges);
    }
    graph
}

/// A cycle in `graph`, if there is one, as the modules around it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            return Some(path[at..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

#[test]
fn files_inside_each_crate_import_each_other_as_a_tree() {
    let mut cycles = Vec::new();
    let mut crates: Vec<PathBuf> =
        std::fs::read_dir(root().join("crates")).unwrap().map(|e| e.unwrap().path().join("src")).collect();
    crates.push(root().join("tests/src"));
    for src in crates.into_iter().filter(|s| s.is_dir()) {
        if let Some(around) = cycle(&imports(&src)) {
            cycles.push(format!("{}: {}", src.display(), around.join(" -> ")));
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles inside crates (move what both sides need into a third file):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_check_sees_a_cycle_and_ignores_comments_and_the_module_tree() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("b")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(src.join("a.rs"), "use crate::b::Thing;\n// crate::c is only a comment\n").unwrap();
    std::fs::write(src.join("b/mod.rs"), "mod inner;\npub struct Thing;\n").unwrap();
    std::fs::write(src.join("b/inner.rs"), "use super::Thing;\n").unwrap();
    std::fs::write(src.join("c.rs"), "use crate::a::X;\n").unwrap();
    assert_eq!(cycle(&imports(src)), None, "a tree, a comment and a child using its parent");
    std::fs::write(src.join("b/inner.rs"), "use super::Thing;\nfn f() { crate::a::g() }\n").unwrap();
    std::fs::write(src.join("b/mod.rs"), "mod inner;\npub struct Thing;\nuse crate::c::Y;\n").unwrap();
    let found = cycle(&imports(src)).expect("a -> b -> c -> a");
    assert_eq!(found.len(), 3, "{found:?}");
}
