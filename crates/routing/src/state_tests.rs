//! Layout and serialised-form tests of the engine's records.

use super::*;
use std::mem::{offset_of, size_of};

/// What resolving a conversation reads is in its first cache line, what giving it to an agent
/// also reads in its second; a field added in between would silently cost a miss per event.
#[test]
fn hot_fields_share_cache_lines() {
    let end = |offset: usize, size: usize| offset + size;
    for (field, last) in [
        ("state", end(offset_of!(Conv, state), size_of::<ConvState>())),
        ("held_since", end(offset_of!(Conv, held_since), 8)),
        ("id", end(offset_of!(Conv, id), 16)),
        ("kind", end(offset_of!(Conv, kind), 2)),
        ("team", end(offset_of!(Conv, team), 2)),
        ("live", end(offset_of!(Conv, live), 8)),
    ] {
        assert!(last <= 64, "{field} ends at byte {last}");
    }
    for (field, last) in [
        ("seq", end(offset_of!(Conv, seq), 8)),
        ("queue_key", end(offset_of!(Conv, queue_key), 8)),
        ("sticky", end(offset_of!(Conv, sticky), size_of::<Option<(AgentIx, Ms)>>())),
        ("declined", end(offset_of!(Conv, declined), size_of::<Box<[AgentIx]>>())),
        ("class", end(offset_of!(Conv, class), 4)),
    ] {
        assert!(last <= 128, "{field} ends at byte {last}");
    }
    assert_eq!(std::mem::align_of::<Conv>(), 128);
    // An agent: what freeing it reads in the first pair of lines, what choosing its next
    // conversation also reads in the second.
    assert!(offset_of!(Agent, missed) + 4 <= 128, "agent's first pair overflows");
    assert!(offset_of!(Agent, skills) >= 128);
    assert_eq!((std::mem::align_of::<Agent>(), size_of::<Agent>()), (128, 256));
    assert_eq!(size_of::<Conv>(), 256);
    // A free slot costs nothing beyond the record's own size.
    assert_eq!(size_of::<Option<Conv>>(), size_of::<Conv>());
}

/// The serialised form keeps its historical field order, whatever the memory layout.
#[test]
fn serialised_field_order_is_unchanged() {
    let c = Conv {
        state: ConvState::Queued,
        held_since: 0,
        seq: 1,
        id: ConversationId::from_u128(7),
        kind: 0,
        team: 0,
        class: 0,
        live: Live::Yes,
        queue_key: 0,
        sticky: None,
        previous_agent: None,
        declined: Box::default(),
        customer: "c".into(),
        skills: Vec::new(),
        matched_rules: Vec::new(),
        opened_at: 0,
        waiting_since: 0,
        sla_deadline: 0,
        first_response: None,
        cust: 0,
        epoch: 0,
        tier: Tier::L1,
        tiers: 2,
        priority: Priority::P3,
        sla_breached: false,
        steps_taken: 0,
        repeat: false,
    };
    let json = serde_json::to_string(&c).unwrap();
    let keys: Vec<&str> = json
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|k| k.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        .collect();
    let expected = [
        "id",
        "customer",
        "cust",
        "kind",
        "team",
        "tier",
        "tiers",
        "priority",
        "skills",
        "state",
        "opened_at",
        "waiting_since",
        "queue_key",
        "class",
        "seq",
        "epoch",
        "sla_deadline",
        "first_response",
        "sla_breached",
        "previous_agent",
        "sticky",
        "declined",
        "steps_taken",
        "repeat",
        "matched_rules",
        "held_since",
    ];
    let keys: Vec<&str> = keys.into_iter().filter(|k| expected.contains(k)).collect();
    assert_eq!(keys, expected);
    assert_eq!(serde_json::from_str::<Conv>(&json).unwrap(), c);
}
