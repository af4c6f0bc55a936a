//! `docs/contract.md` against the names in `contract.rs`: every stream, bucket, object store and
//! header has its row, and the reason and id formats the code writes are the ones documented.

use std::path::PathBuf;

use switchboard_core::contract::{self, buckets, headers, streams, subjects};

fn contract_md() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/contract.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names that open a table row (`| \`NAME\` | ...`), i.e. the ones the document describes.
fn table_rows(doc: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn every_stream_bucket_store_and_header_has_a_row_in_contract_md() {
    let doc = contract_md();
    let rows = table_rows(&doc);
    let mut missing = Vec::new();
    let names = streams::ALL
        .iter()
        .map(|(s, _)| *s)
        .chain(buckets::ALL.iter().copied())
        .chain(contract::OBJECT_STORES.iter().copied())
        .chain(headers::ALL.iter().copied());
    for name in names {
        // A header row may list several (`Sb-Dlq-Reason`, `Sb-Dlq-Component`, ...).
        let in_a_row = rows.iter().any(|r| r == name)
            || doc
                .lines()
                .any(|l| l.starts_with("| `") && l.split('|').nth(1).is_some_and(|c| c.contains(&format!("`{name}`"))));
        if !in_a_row {
            missing.push(name);
        }
    }
    for subject in [subjects::AGENT_IN, subjects::AGENT_TYPING] {
        if !doc.contains(&format!("`{subject}`")) {
            missing.push(subject);
        }
    }
    assert!(missing.is_empty(), "docs/contract.md has no row for {missing:?} (crates/core/src/contract.rs)");
}

#[test]
fn reasons_and_ids_read_as_the_code_writes_them() {
    let doc = contract_md().split_whitespace().collect::<Vec<_>>().join(" ");
    let reason = contract::unsupported_schema("envelope/2", "envelope/1");
    assert!(doc.contains(&format!("`{reason}`")), "contract.md should quote the reason `{reason}`");
    let dlq_id = contract::dlq_msg_id("<component>", "<stream>", 7).replace('7', "<stream sequence>");
    assert!(doc.contains(&format!("`{dlq_id}`")), "contract.md should give a dead letter's id as `{dlq_id}`");
    let inbound = contract::inbound_msg_id("<channel>", "<provider message id>");
    assert!(doc.contains(&format!("`{inbound}`")), "contract.md should give an envelope's id as `{inbound}`");
    let mismatch = contract::channel_mismatch("<channel>", "<subject>");
    assert!(doc.contains(&format!("``{mismatch}``")), "contract.md should quote the reason ``{mismatch}``");
    let invalid = contract::invalid_payload("<schema id>", &"invalid field `<field>`: <why>");
    assert!(doc.contains(&format!("``{invalid}``")), "contract.md should quote the reason ``{invalid}``");
    let error = switchboard_core::ValidationError { field: "<field>".into(), reason: "<why>".into() };
    assert_eq!(error.to_string(), "invalid field `<field>`: <why>", "a validation error reads as documented");
    let asyncapi = switchboard_core::asyncapi::document().to_string();
    assert!(asyncapi.contains(&reason), "asyncapi.yaml should quote the reason `{reason}`");
    assert!(asyncapi.contains(&dlq_id), "asyncapi.yaml should give a dead letter's id as `{dlq_id}`");
}
