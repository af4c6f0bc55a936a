//! The OpenAPI document against the code: the checked-in file is what the handlers generate,
//! every route is registered through a documented handler, and `security.md` lists the same
//! routes. (`tests/tests/openapi_e2e.rs` requests each documented route on a running daemon.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails when `docs/openapi.json` and the handlers disagree. `SB_BLESS=1` rewrites the file instead.
#[test]
fn checked_in_openapi_matches_the_code() {
    let path = repo().join("docs/openapi.json");
    let generated = switchboard::openapi::render();
    if std::env::var_os("SB_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json drifted from the handlers; run `make schema` and review the diff"
    );
    let parsed: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    assert_eq!(parsed["openapi"], "3.1.0");
}

/// `METHOD /path` of every operation in the generated document.
fn documented() -> BTreeSet<String> {
    let doc = serde_json::to_value(switchboard::openapi::document()).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&method.as_str()) {
                ops.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crates whose routers the daemon serves register routes only through utoipa-axum's
/// `routes!` (path and methods from the handler's `#[utoipa::path]`), never axum's own calls, so
/// no route can be served without being in the document.
#[test]
fn routes_are_registered_only_through_documented_handlers() {
    let crates = [
        "switchboard",
        "adapter",
        "channel-webhook",
        "channel-email",
        "channel-telegram",
        "channel-webchat",
        "channel-slack",
        "channel-whatsapp",
        "channel-vk",
    ];
    let undocumented = [".route(", ".route_service(", ".nest(", ".nest_service(", "MethodRouter"];
    let mut files = Vec::new();
    for c in crates {
        sources(&repo().join("crates").join(c).join("src"), &mut files);
    }
    assert!(files.len() > 40, "found too few sources: {}", files.len());
    // Servers of their own that the daemon never serves: `switchboard demo-inbox` (the receiver
    // `make run` starts beside the daemon for the README's walk-through).
    let other_servers = ["src/demo_inbox.rs"];
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !other_servers.iter().any(|o| f.ends_with(o))) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if undocumented.iter().any(|call| line.contains(call)) && !line.trim_start().starts_with("//") {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "routes registered outside `routes!` (not in the OpenAPI document): {found:#?}");
    let mut registered = 0;
    for file in &files {
        registered += std::fs::read_to_string(file).unwrap().matches("routes!(").count();
    }
    // Each `routes!(..)` registers one path; some paths have two handlers (upload, preflight).
    let paths: BTreeSet<String> = documented().iter().map(|op| op.split_once(' ').unwrap().1.to_string()).collect();
    assert_eq!(registered, paths.len(), "every `routes!` call is one documented path");
}

/// `security.md`'s route table names exactly the documented operations.
#[test]
fn security_md_lists_every_documented_route() {
    let text = std::fs::read_to_string(repo().join("docs/security.md")).unwrap();
    let mut listed = BTreeSet::new();
    for line in text.lines() {
        let Some(cell) = line.strip_prefix("| `") else { continue };
        let Some((route, _)) = cell.split_once('`') else { continue };
        let Some((method, path)) = route.split_once(' ') else { continue };
        let path = path.split('?').next().unwrap();
        listed.insert(format!("{method} {path}"));
    }
    assert_eq!(listed, documented(), "docs/security.md's routes vs the OpenAPI document");
}
