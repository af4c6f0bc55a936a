//! The AsyncAPI document against the code: the checked-in file is what the code generates, and
//! every name of the contract (subject, stream, bucket, header, schema file) is in it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use switchboard_core::asyncapi;
use switchboard_core::contract::{self, buckets, headers, streams};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The document as checked in: YAML, with a header saying where it comes from.
fn rendered() -> String {
    let yaml = yaml_serde::to_string(&asyncapi::document()).expect("the document renders as YAML");
    format!("# Generated from crates/core/src/asyncapi.rs by `make schema`; do not edit by hand.\n{yaml}")
}

/// Fails when `docs/asyncapi.yaml` and the code disagree. `SB_BLESS=1` rewrites the file instead.
#[test]
fn checked_in_asyncapi_matches_the_code() {
    let path = repo().join("docs/asyncapi.yaml");
    let generated = rendered();
    if std::env::var_os("SB_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(checked_in == generated, "docs/asyncapi.yaml drifted from the code; run `make schema` and review the diff");
    // The file is the document, not just equal text: it parses back to the same value.
    let parsed: Value = yaml_serde::from_str(&checked_in).expect("docs/asyncapi.yaml is YAML");
    assert_eq!(parsed, asyncapi::document());
}

/// Every `$ref` string in the document.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Resolves a local `#/a/b` pointer.
fn resolve<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    doc.pointer(pointer.strip_prefix('#')?)
}

#[test]
fn every_reference_resolves_and_every_schema_file_is_used() {
    let doc = asyncapi::document();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    let mut files = BTreeSet::new();
    for r in &all {
        if r.starts_with('#') {
            assert!(resolve(&doc, r).is_some(), "`{r}` points at nothing in the document");
        } else {
            let file = r.strip_prefix("./").unwrap_or(r);
            assert!(repo().join("docs").join(file).is_file(), "`{r}` names a file that does not exist in docs/");
            files.insert(file.trim_start_matches("schema/").to_string());
        }
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(repo().join("docs/schema"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, on_disk, "every schema in docs/schema/ is some message's payload, and only those");
    let generated: BTreeSet<String> =
        switchboard_core::schema::all().into_iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(files, generated, "the payloads are the schemas the types generate");
}

#[test]
fn every_stream_bucket_store_and_header_is_in_the_document() {
    let doc = asyncapi::document();
    let listed = doc["x-switchboard-streams"].as_array().unwrap();
    assert_eq!(listed.len(), streams::ALL.len());
    for (stream, subjects) in streams::ALL {
        let entry = listed.iter().find(|s| s["name"] == *stream).unwrap_or_else(|| panic!("{stream} missing"));
        assert_eq!(entry["subjects"], serde_json::json!(subjects), "{stream}'s subjects");
        let channels = entry["channels"].as_array().unwrap();
        assert!(!channels.is_empty(), "no channel of the document is stored in {stream}");
        for c in channels {
            assert_eq!(doc["channels"][c.as_str().unwrap()]["x-switchboard-stream"], *stream);
        }
    }
    assert_eq!(doc["x-switchboard-buckets"], serde_json::json!(buckets::ALL));
    assert_eq!(doc["x-switchboard-object-stores"], serde_json::json!(contract::OBJECT_STORES));

    let mut named_headers = BTreeSet::new();
    for message in doc["components"]["messages"].as_object().unwrap().values() {
        if let Some(props) = message["headers"]["properties"].as_object() {
            named_headers.extend(props.keys().cloned());
        }
    }
    let contract_headers: BTreeSet<String> = headers::ALL.iter().map(|h| h.to_string()).collect();
    assert_eq!(named_headers, contract_headers, "the headers the messages carry are the contract's");

    // Every address is stored in the stream the contract says, or is core NATS on purpose.
    for (id, channel) in doc["channels"].as_object().unwrap() {
        if let Some(address) = channel["address"].as_str() {
            let stream = channel["x-switchboard-stream"].as_str();
            assert_eq!(stream, asyncapi::stream_of(address), "{id}");
            assert!(
                stream.is_some() || channel["x-switchboard-transport"].is_string(),
                "{id}: neither stored nor core"
            );
        }
    }
}

/// The names `contract.rs` defines: `pub const` values and `pub fn` names per module (the
/// generator cannot reach a name that no list holds, so a new one must be added to it).
fn contract_names() -> Vec<(String, String, Option<String>)> {
    let source = std::fs::read_to_string(repo().join("crates/core/src/contract.rs")).unwrap();
    let mut module = String::new();
    let mut names = Vec::new();
    for line in source.lines() {
        if let Some(rest) = line.strip_prefix("pub mod ") {
            module = rest.trim_end_matches(" {").to_string();
        } else if line == "}" {
            module.clear();
        }
        let item = line.trim_start();
        if let Some(rest) = item.strip_prefix("pub const ") {
            let name = rest.split(':').next().unwrap().to_string();
            let value = rest.split_once("= \"").map(|(_, v)| v.trim_end_matches("\";").to_string());
            names.push((module.clone(), name, value));
        } else if let Some(rest) = item.strip_prefix("pub fn ") {
            names.push((module.clone(), rest.split('(').next().unwrap().to_string(), None));
        }
    }
    names
}

#[test]
fn every_name_in_contract_rs_is_in_the_document() {
    let doc = asyncapi::document().to_string();
    let generator = std::fs::read_to_string(repo().join("crates/core/src/asyncapi.rs")).unwrap();
    let names = contract_names();
    assert!(names.len() > 30, "contract.rs parsed to too few names: {names:?}");
    let mut missing = Vec::new();
    for (module, name, value) in names {
        match (module.as_str(), value) {
            // Metadata keys are payload content, described by the schemas and contract.md.
            ("metadata", _) => {}
            // Every subject constant or function is used by the generator (and so in the document).
            ("subjects", _) if !generator.contains(&format!("subjects::{name}")) => missing.push(name),
            ("subjects", _) => {}
            // A string constant (stream, bucket, store, header): its value is in the document.
            (_, Some(value)) if !doc.contains(&format!("\"{value}\"")) => missing.push(format!("{name} = {value}")),
            _ => {}
        }
    }
    assert!(missing.is_empty(), "contract.rs names missing from the AsyncAPI document: {missing:?}");
}
