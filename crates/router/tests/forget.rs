//! Erasing a person from the router (`Entry::Forget`) and ending silent customers' memory
//! (`Entry::Expire`): what is gone, what stays, and that replay does the same.

use std::collections::BTreeMap;

use switchboard_core::{AgentCommand, AgentDelivery, CommandAction, EventKind, OutboundKind};
use switchboard_router::{Effect, Entry, Router, RouterConfig};
use uuid::Uuid;

const ROUTING: &str = r#"
default_team = "support"
reopen_window_secs = 60
[teams.support]
offer_timeout_secs = 600
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "online"
[agents.capacity]
webhook = 5
webchat = 5
"#;

fn router() -> Router {
    let endpoints = BTreeMap::from([("alice".to_string(), vec!["webhook".to_string()])]);
    let cfg = RouterConfig {
        routing: toml::from_str(ROUTING).expect("routing toml"),
        endpoints,
        offer_history: 10,
        group: None,
        kb: None,
    };
    Router::new(cfg).expect("valid config")
}

/// Journal entries with increasing sequences; times in seconds.
#[derive(Default)]
struct Journal {
    seq: u64,
    entries: Vec<(u64, Entry)>,
}

impl Journal {
    fn push(&mut self, r: &mut Router, entry: Entry) -> Vec<Effect> {
        self.seq += 1;
        self.entries.push((self.seq, entry.clone()));
        r.apply(self.seq, &entry)
    }

    fn msg(
        &mut self,
        r: &mut Router,
        secs: i64,
        channel: &str,
        customer: &str,
        email: Option<&str>,
        text: &str,
    ) -> Vec<Effect> {
        let mut envelope =
            switchboard_adapter::testkit::envelope(channel, &format!("p-{}", self.seq + 1), customer, text);
        envelope.customer.email = email.map(str::to_string);
        envelope.thread_key = format!("thread-{customer}");
        let entry = Entry::Inbound {
            at: secs * 1000,
            envelope: Box::new(envelope),
            new_conversation: Uuid::from_u128(u128::from(self.seq) + 1),
            kb: Vec::new(),
            replies: Vec::new(),
        };
        self.push(r, entry)
    }

    fn cmd(&mut self, r: &mut Router, secs: i64, conversation: Uuid, action: CommandAction) -> Vec<Effect> {
        let command = AgentCommand {
            id: Uuid::from_u128(1_000_000 + u128::from(self.seq)),
            agent_id: "alice".into(),
            conversation_id: Some(conversation),
            issued_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            action,
        };
        self.push(r, Entry::Command { at: secs * 1000, command: Box::new(command), stream_sequence: None })
    }
}

fn offered(fx: &[Effect]) -> Option<(Uuid, Vec<String>)> {
    fx.iter().find_map(|e| match e {
        Effect::Agent { delivery: AgentDelivery::Offer(o), kind, .. } if kind != "api" => {
            Some((o.conversation_id, o.history.iter().map(|h| h.text.clone()).collect()))
        }
        _ => None,
    })
}

fn opened_repeat(fx: &[Effect]) -> bool {
    fx.iter()
        .find_map(|e| match e {
            Effect::Event(e) if e.kind == EventKind::ConversationOpened => {
                e.data.get("repeat").and_then(|v| v.as_bool())
            }
            _ => None,
        })
        .expect("a conversation_opened event")
}

#[test]
fn forget_erases_the_person_and_their_linked_identity_and_keeps_the_others() {
    let (mut r, mut j) = (router(), Journal::default());
    // Ann on the web chat and by webhook with the same address: one person. Bob apart.
    let (ann_chat, _) =
        offered(&j.msg(&mut r, 1, "webchat", "visitor:s1", Some("ann@example.com"), "ANN-CHAT")).unwrap();
    let (ann_hook, history) =
        offered(&j.msg(&mut r, 2, "webhook", "ann-42", Some("Ann@Example.com"), "ANN-HOOK")).unwrap();
    assert_eq!(history, ["ANN-CHAT", "ANN-HOOK"], "linked history before the erasure");
    let (bob, _) = offered(&j.msg(&mut r, 3, "webhook", "bob-7", None, "BOB")).unwrap();
    j.cmd(&mut r, 4, ann_hook, CommandAction::Accept);
    j.cmd(&mut r, 5, bob, CommandAction::Accept);

    let fx = j.push(&mut r, Entry::Forget { at: 6000, customers: vec!["webchat:visitor:s1".into()], threads: vec![] });
    let mut forgotten = r.forgotten().to_vec();
    forgotten.sort();
    let mut expected = vec![ann_chat, ann_hook];
    expected.sort();
    assert_eq!(forgotten, expected, "both of Ann's conversations, by the identity link");
    // Her open conversations are resolved for the agent, without a survey to her.
    let erased_updates = fx
        .iter()
        .filter(|e| {
            matches!(e, Effect::Agent { delivery: AgentDelivery::Update(u), kind, .. }
            if kind != "api" && u.change == "resolved" && u.note.as_deref() == Some("customer data erased"))
        })
        .count();
    assert_eq!(erased_updates, 2, "alice held one and was being offered the other: both end for her");
    assert!(!fx.iter().any(|e| matches!(e, Effect::Outbound(o) if o.kind == OutboundKind::System)), "no survey");
    assert!(!fx.iter().any(|e| matches!(e, Effect::Store(_))), "no record stored again");
    for key in ["webchat:visitor:s1", "webhook:ann-42", "email:ann@example.com", "webchat:thread-visitor:s1"] {
        assert!(!r.remembers(key), "{key} remembered");
    }
    assert!(r.record(ann_hook).is_none() && r.record(ann_chat).is_none());
    let state = serde_json::to_string(&r.state()).unwrap();
    for mark in ["ann@example.com", "ANN-", "visitor:s1", "ann-42"] {
        assert!(!state.to_lowercase().contains(&mark.to_lowercase()), "the snapshot still holds {mark}");
    }
    assert!(r.remembers("webhook:bob-7") && state.contains("BOB"), "Bob is untouched");

    // Ann writes again: a new conversation, with no history and no memory of her agent.
    let fx = j.msg(&mut r, 7, "webhook", "ann-42", Some("ann@example.com"), "ANN-AGAIN");
    let (again, history) = offered(&fx).expect("offered");
    assert!(!forgotten.contains(&again));
    assert_eq!(history, ["ANN-AGAIN"]);
    assert!(!opened_repeat(&fx));

    // Replaying the journal gives the same state: the erasure is part of it.
    let mut replayed = router();
    for (seq, entry) in &j.entries {
        replayed.apply(*seq, entry);
    }
    assert_eq!(replayed.state(), r.state());
}

#[test]
fn expire_ends_the_memory_of_customers_silent_since_the_cut_off() {
    let run = |expire: bool| {
        let (mut r, mut j) = (router(), Journal::default());
        let (c, _) = offered(&j.msg(&mut r, 1, "webhook", "cara", None, "first")).unwrap();
        j.cmd(&mut r, 2, c, CommandAction::Accept);
        j.cmd(&mut r, 3, c, CommandAction::Resolve);
        if expire {
            // The expiry's own tick closes the reopen window first.
            j.push(&mut r, Entry::Expire { at: 101_000, before: 50_000 });
            assert!(!r.remembers("webhook:cara") && !r.remembers("webhook:thread-cara"));
        }
        opened_repeat(&j.msg(&mut r, 200, "webhook", "cara", None, "second"))
    };
    assert!(run(false), "without expiry she is a repeat customer");
    assert!(!run(true), "after expiry nothing remembers her");
}

#[test]
fn expire_keeps_customers_who_wrote_since_the_cut_off() {
    let (mut r, mut j) = (router(), Journal::default());
    let (c, _) = offered(&j.msg(&mut r, 1, "webhook", "dan", None, "hi")).unwrap();
    j.cmd(&mut r, 2, c, CommandAction::Accept);
    j.cmd(&mut r, 3, c, CommandAction::Resolve);
    j.push(&mut r, Entry::Tick { at: 100_000 });
    j.push(&mut r, Entry::Expire { at: 101_000, before: 500 });
    assert!(r.remembers("webhook:thread-dan"));
    assert!(opened_repeat(&j.msg(&mut r, 200, "webhook", "dan", None, "again")));
}

#[test]
fn expire_ends_resolved_conversations_within_their_reopen_window() {
    let (mut r, mut j) = (router(), Journal::default());
    let (c, _) = offered(&j.msg(&mut r, 1, "webhook", "eve", None, "hi")).unwrap();
    j.cmd(&mut r, 2, c, CommandAction::Accept);
    j.cmd(&mut r, 3, c, CommandAction::Resolve);
    // 10 s after resolving, well within the 60 s reopen window, but past the retention.
    j.push(&mut r, Entry::Expire { at: 10_000, before: 5_000 });
    assert!(r.record(c).is_none(), "the record outlived the retention");
    assert!(!r.remembers("webhook:thread-eve"));
    let fx = j.msg(&mut r, 11, "webhook", "eve", None, "back");
    let (again, history) = offered(&fx).expect("a new conversation, not a reopened one");
    assert_ne!(again, c);
    assert_eq!(history, ["back"]);
    assert!(!opened_repeat(&fx));
}
