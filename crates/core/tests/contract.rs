//! Contract tests: JSON round trips, validation errors that name the field, schema drift.

use std::path::PathBuf;

use switchboard_core::outbound::ChannelAddress;
use switchboard_core::{
    AgentCommand, CommandAction, Contract, Customer, Envelope, OutboundKind, OutboundMessage, ValidationError,
};
use uuid::Uuid;

fn envelope() -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        channel: "webhook".into(),
        provider_message_id: "demo:m-1".into(),
        received_at: chrono::Utc::now(),
        customer: Customer {
            id: "c-42".into(),
            name: Some("Ada".into()),
            email: Some("ada@example.com".into()),
            phone: None,
            language: Some("en".into()),
        },
        thread_key: "demo:c-42".into(),
        text: "My invoice is wrong".into(),
        subject: Some("Invoice".into()),
        html: None,
        attachments: vec![],
        metadata: [("plan".to_string(), "pro".to_string())].into(),
        raw_ref: None,
    }
}

/// Serialises, parses back with validation, and expects the first bad field (or none).
fn check_envelope(edit: impl FnOnce(&mut Envelope), expected_field: Option<&str>) {
    let mut e = envelope();
    edit(&mut e);
    let json = serde_json::to_vec(&e).unwrap();
    match (Envelope::from_json(&json), expected_field) {
        (Ok(parsed), None) => assert_eq!(parsed, e),
        (Err(err), Some(field)) => assert_eq!(err.field, field, "{err}"),
        (got, want) => panic!("expected error on {want:?}, got {got:?}"),
    }
}

#[test]
fn envelope_round_trips() {
    check_envelope(|_| {}, None);
}

#[test]
fn envelope_validation_names_the_field() {
    check_envelope(|e| e.channel = "Web Hook".into(), Some("channel"));
    check_envelope(|e| e.customer.id = " ".into(), Some("customer.id"));
    check_envelope(|e| e.customer.email = Some("nope".into()), Some("customer.email"));
    check_envelope(|e| e.text = String::new(), Some("text"));
    check_envelope(|e| e.thread_key = String::new(), Some("thread_key"));
    check_envelope(|e| e.id = Uuid::from_u128(0x1234_5678), Some("id"));
    check_envelope(|e| e.text = "x".repeat(300 * 1024), Some("text"));
}

#[test]
fn json_errors_name_the_field() {
    let mut value = serde_json::to_value(envelope()).unwrap();
    value.as_object_mut().unwrap().remove("text");
    let err = Envelope::from_json(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "text", "{err}");

    value.as_object_mut().unwrap().insert("surprise".into(), 1.into());
    value.as_object_mut().unwrap().insert("text".into(), "hi".into());
    let err = Envelope::from_json(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.field, "surprise", "{err}");

    let err: ValidationError = Envelope::from_json(b"{not json").unwrap_err();
    assert_eq!(err.field, "$");
}

#[test]
fn outbound_and_command_validate() {
    let out = OutboundMessage {
        id: Uuid::now_v7(),
        conversation_id: Uuid::now_v7(),
        channel: "webhook".into(),
        to: ChannelAddress { customer_id: "c-42".into(), thread_key: "demo:c-42".into() },
        text: "Fixed it".into(),
        subject: None,
        attachments: vec![],
        reply_to: None,
        kind: OutboundKind::AgentReply,
        agent_id: None,
        created_at: chrono::Utc::now(),
        metadata: Default::default(),
    };
    assert_eq!(out.validate().unwrap_err().field, "agent_id");

    let cmd = AgentCommand {
        id: Uuid::now_v7(),
        agent_id: "alice".into(),
        conversation_id: None,
        issued_at: chrono::Utc::now(),
        action: CommandAction::reply("hello"),
    };
    assert_eq!(cmd.validate().unwrap_err().field, "conversation_id");
    let json = serde_json::to_string(&cmd).unwrap();
    assert!(json.contains(r#""action":{"type":"reply","text":"hello"}"#), "{json}");
}

/// Fails when `docs/schema/` and the types disagree. `SB_BLESS=1` rewrites the files instead.
#[test]
fn checked_in_schemas_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema");
    let bless = std::env::var_os("SB_BLESS").is_some();
    let mut drifted = Vec::new();
    for (name, generated) in switchboard_core::schema::all() {
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, &generated).unwrap();
            continue;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        if checked_in != generated {
            drifted.push(name);
        }
    }
    assert!(drifted.is_empty(), "schemas drifted from the types: {drifted:?}; run `make schema` and review the diff");
}
