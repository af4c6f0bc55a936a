//! The router's deterministic core: threading, identity links, offers with history, replies on
//! the customer's channel, command results, and replay giving the same effects with the same ids.

use std::collections::{BTreeMap, BTreeSet};

use switchboard_core::agent::Author;
use switchboard_core::{AgentCommand, AgentDelivery, CommandAction, EventKind, OutboundKind};
use switchboard_router::{Effect, Entry, Router, RouterConfig};
use uuid::Uuid;

const ROUTING: &str = r#"
default_team = "support"
reopen_window_secs = 3600
[teams.support]
offer_timeout_secs = 60
sticky_wait_secs = 120
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "online"
[[agents]]
id = "bob"
teams = ["support"]
tiers = ["L1"]
status = "offline"
"#;

fn router() -> Router {
    Router::new(config()).expect("valid config")
}

fn config() -> RouterConfig {
    let endpoints =
        BTreeMap::from([("alice".to_string(), vec!["webhook".to_string()]), ("bob".into(), vec!["webhook".into()])]);
    RouterConfig {
        routing: toml::from_str(ROUTING).expect("routing toml"),
        endpoints,
        offer_history: 10,
        group: None,
        kb: None,
    }
}

/// Builds journal entries with increasing sequences and times (seconds).
struct Journal {
    seq: u64,
    next_conv: u128,
}

impl Journal {
    fn new() -> Journal {
        Journal { seq: 0, next_conv: 1 }
    }

    fn msg(
        &mut self,
        secs: i64,
        channel: &str,
        customer: &str,
        thread: &str,
        email: Option<&str>,
        text: &str,
    ) -> (u64, Entry) {
        self.seq += 1;
        self.next_conv += 1;
        let mut envelope = switchboard_adapter::testkit::envelope(channel, &format!("p-{}", self.seq), customer, text);
        envelope.received_at = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        envelope.customer.email = email.map(str::to_string);
        envelope.thread_key = thread.into();
        let entry = Entry::Inbound {
            at: secs * 1000,
            envelope: Box::new(envelope),
            new_conversation: Uuid::from_u128(self.next_conv),
            kb: Vec::new(),
            replies: Vec::new(),
        };
        (self.seq, entry)
    }

    fn cmd(&mut self, secs: i64, agent: &str, conversation: Option<Uuid>, action: CommandAction) -> (u64, Entry) {
        self.seq += 1;
        let command = AgentCommand {
            id: Uuid::from_u128(1_000_000 + u128::from(self.seq)),
            agent_id: agent.into(),
            conversation_id: conversation,
            issued_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            action,
        };
        (self.seq, Entry::Command { at: secs * 1000, command: Box::new(command), stream_sequence: None })
    }
}

fn apply(r: &mut Router, (seq, entry): (u64, Entry)) -> Vec<Effect> {
    r.apply(seq, &entry)
}

fn events(fx: &[Effect]) -> Vec<EventKind> {
    fx.iter().filter_map(|e| if let Effect::Event(e) = e { Some(e.kind) } else { None }).collect()
}

fn offers(fx: &[Effect]) -> Vec<(String, Vec<String>, Vec<String>)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Agent { delivery: AgentDelivery::Offer(o), kind, .. } if kind != "api" => {
                Some((o.agent_id.clone(), o.actions.clone(), o.history.iter().map(|h| h.text.clone()).collect()))
            }
            _ => None,
        })
        .collect()
}

fn result(fx: &[Effect]) -> Option<String> {
    fx.iter()
        .find_map(|e| if let Effect::CommandResult { rejected, .. } = e { Some(rejected.clone()) } else { None })
        .expect("a command result")
}

fn conversation(fx: &[Effect]) -> Uuid {
    fx.iter().find_map(|e| if let Effect::Store(r) = e { Some(r.id) } else { None }).expect("a stored record")
}

#[test]
fn a_thread_is_one_conversation_offered_with_its_history_and_the_reply_goes_back_on_its_channel() {
    let (mut r, mut j) = (router(), Journal::new());
    let fx = apply(&mut r, j.msg(0, "webhook", "cust-1", "t-1", None, "my order is late"));
    assert_eq!(events(&fx), [EventKind::MessageReceived, EventKind::ConversationOpened, EventKind::Offered]);
    assert_eq!(
        offers(&fx),
        [("alice".to_string(), vec!["accept".into(), "decline".into()], vec!["my order is late".into()])]
    );
    let c = conversation(&fx);

    // The same thread again while the offer is open: same conversation, no second offer.
    let fx = apply(&mut r, j.msg(5, "webhook", "cust-1", "t-1", None, "order 42"));
    assert_eq!(conversation(&fx), c);
    assert!(offers(&fx).is_empty());
    assert_eq!(r.record(c).unwrap().history.len(), 2);

    let fx = apply(&mut r, j.cmd(10, "alice", Some(c), CommandAction::Accept));
    assert_eq!(result(&fx), None);
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Agent { delivery: AgentDelivery::Update(u), .. } if u.change == "assigned"))
    );

    // Assigned: a new customer message goes straight to the agent.
    let fx = apply(&mut r, j.msg(20, "webhook", "cust-1", "t-1", None, "any news?"));
    let delivered: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Agent { kind, delivery: AgentDelivery::Message(m), copy } => {
                Some((kind.as_str(), m.entry.text.as_str(), *copy))
            }
            _ => None,
        })
        .collect();
    // Written once, on its endpoint, which the agent's own stream reads too.
    assert_eq!(delivered, [("webhook", "any news?", false)], "once, on its endpoint");

    let fx = apply(&mut r, j.cmd(30, "alice", Some(c), CommandAction::reply("shipped today")));
    assert_eq!(result(&fx), None);
    let out: Vec<_> = fx.iter().filter_map(|e| if let Effect::Outbound(o) = e { Some(o) } else { None }).collect();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].channel.as_str(), out[0].to.thread_key.as_str(), out[0].to.customer_id.as_str()),
        ("webhook", "t-1", "cust-1")
    );
    assert_eq!(out[0].reply_to.as_deref(), Some("p-4"), "threads under the customer's latest message");
    assert_eq!(out[0].kind, OutboundKind::AgentReply);
    let replied = fx.iter().find_map(|e| match e {
        Effect::Event(e) if e.kind == EventKind::AgentReplied => Some(e.data.clone()),
        _ => None,
    });
    assert_eq!(replied.unwrap()["first_response"], true);
    let history = &r.record(c).unwrap().history;
    assert_eq!(history.last().map(|h| (h.from, h.author.as_deref())), Some((Author::Agent, Some("alice"))));
}

#[test]
fn reopening_within_the_window_is_a_repeat_contact_back_to_the_same_agent() {
    let (mut r, mut j) = (router(), Journal::new());
    let c = conversation(&apply(&mut r, j.msg(0, "webhook", "cust-1", "t-1", None, "hi")));
    apply(&mut r, j.cmd(1, "alice", Some(c), CommandAction::Accept));
    let fx = apply(&mut r, j.cmd(2, "alice", Some(c), CommandAction::Resolve));
    assert!(events(&fx).contains(&EventKind::Resolved));
    assert_eq!(r.record(c).unwrap().state, "resolved");

    let fx = apply(&mut r, j.msg(600, "webhook", "cust-1", "t-1", None, "it broke again"));
    assert_eq!(conversation(&fx), c, "the same conversation, reopened");
    assert!(events(&fx).contains(&EventKind::ConversationReopened));
    assert!(r.record(c).unwrap().repeat);
    assert_eq!(offers(&fx)[0].0, "alice");

    // Past the window (and once the engine forgot it) the thread opens a new conversation,
    // and the old record is dropped from memory.
    apply(&mut r, j.cmd(601, "alice", Some(c), CommandAction::Accept));
    apply(&mut r, j.cmd(602, "alice", Some(c), CommandAction::Resolve));
    let fx = apply(&mut r, j.msg(602 + 3601, "webhook", "cust-1", "t-1", None, "new question"));
    assert_ne!(conversation(&fx), c);
    assert!(r.record(c).is_none());
}

#[test]
fn the_same_email_on_two_channels_is_one_person_and_the_offer_shows_both_histories() {
    let (mut r, mut j) = (router(), Journal::new());
    let first =
        conversation(&apply(&mut r, j.msg(0, "webchat", "visitor-9", "s-1", Some("Ann@Example.com"), "card declined")));
    apply(&mut r, j.cmd(1, "alice", Some(first), CommandAction::Accept));
    let fx = apply(&mut r, j.msg(100, "email", "ann@example.com", "<m1@x>", Some("ann@example.com"), "still declined"));
    let second = conversation(&fx);
    assert_ne!(first, second, "another channel thread is another conversation");
    assert_eq!(r.record(first).unwrap().person, r.record(second).unwrap().person);
    // Alice has room for a second conversation; its offer carries both threads.
    let offered = offers(&fx);
    assert_eq!(offered.len(), 1);
    assert_eq!(offered[0].2, ["card declined", "still declined"], "nobody asks twice");
}

#[test]
fn bad_commands_are_rejected_and_change_nothing() {
    let (mut r, mut j) = (router(), Journal::new());
    let c = conversation(&apply(&mut r, j.msg(0, "webhook", "cust-1", "t-1", None, "hi")));
    let before = r.state();

    let unknown = Uuid::from_u128(999);
    let fx = apply(&mut r, j.cmd(1, "alice", Some(unknown), CommandAction::reply("x")));
    assert_eq!(result(&fx).as_deref(), Some("unknown conversation"));
    let fx = apply(&mut r, j.cmd(2, "bob", Some(c), CommandAction::Accept));
    assert!(result(&fx).unwrap().contains("no open offer"), "bob was not offered it");
    let fx = apply(&mut r, j.cmd(3, "bob", Some(c), CommandAction::reply("hello")));
    assert!(result(&fx).unwrap().contains("not assigned"));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Outbound(_))), "no reply reaches the customer");
    let fx = apply(&mut r, j.cmd(4, "mallory", Some(c), CommandAction::Note { text: "x".into() }));
    assert!(result(&fx).unwrap().contains("unknown agent"));
    let fx = apply(&mut r, j.cmd(5, "bob", Some(c), CommandAction::Note { text: "not mine".into() }));
    assert!(result(&fx).unwrap().contains("not assigned"), "bob's note on alice's conversation is refused");

    let mut after = r.state();
    after.sequence = before.sequence;
    after.engine.now = before.engine.now;
    assert_eq!(after, before, "rejected commands changed the state");
}

#[test]
fn replay_from_a_snapshot_gives_the_same_effects_with_the_same_ids_and_old_entries_are_ignored() {
    let mut j = Journal::new();
    let mut entries = vec![j.msg(0, "webhook", "c1", "t1", None, "one"), j.msg(1, "webhook", "c2", "t2", None, "two")];
    let mut full = router();
    let c1 = conversation(&full.apply(entries[0].0, &entries[0].1));
    full.apply(entries[1].0, &entries[1].1);
    entries.push(j.cmd(2, "alice", Some(c1), CommandAction::Accept));
    entries.push(j.cmd(3, "alice", Some(c1), CommandAction::reply("hi")));
    entries.push((j.seq + 1, Entry::Tick { at: 120_000 }));
    entries.push(j.msg(130, "webhook", "c1", "t1", None, "thanks"));

    let mut a = router();
    let mut b = router();
    let mut all_ids = BTreeSet::new();
    let cut = 3;
    for (i, (seq, entry)) in entries.iter().enumerate() {
        if i == cut {
            let json = serde_json::to_string(&b.state()).unwrap();
            b = Router::restore(config(), serde_json::from_str(&json).unwrap()).unwrap();
            // Replaying what the snapshot already holds does nothing.
            for (old_seq, old) in &entries[..cut] {
                assert!(b.apply(*old_seq, old).is_empty());
            }
        }
        let fa = a.apply(*seq, entry);
        let fb = b.apply(*seq, entry);
        assert_eq!(fa, fb, "entry {i} gave different effects after restore");
        for e in &fa {
            let id = match e {
                Effect::Event(e) => e.id,
                Effect::Outbound(o) => o.id,
                Effect::Agent { delivery: AgentDelivery::Offer(o), .. } => o.id,
                Effect::Agent { delivery: AgentDelivery::Message(m), .. } => m.id,
                Effect::Agent { delivery: AgentDelivery::Update(u), .. } => u.id,
                Effect::Store(_) | Effect::CommandResult { .. } => continue,
            };
            assert!(all_ids.insert(id), "effect id {id} reused");
        }
    }
    assert_eq!(a.state(), b.state());
}

const TIERED: &str = r#"
default_team = "support"
reopen_window_secs = 3600
[teams.support]
offer_timeout_secs = 30
[teams.billing]
offer_timeout_secs = 30
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 1, email = 5 }
status = "online"
[[agents]]
id = "carol"
teams = ["support", "billing"]
tiers = ["L2"]
skills = ["billing:4"]
status = "online"
[[agents]]
id = "dave"
teams = ["billing"]
tiers = ["L1"]
status = "online"
[[rules]]
name = "invoices"
when = 'text.contains("invoice")'
skills = ["billing:3"]
tier = "L2"
priority = "P1"
stop = true
"#;

/// A scenario across channels, skills, tiers, offers, transfer, escalation, resolve and reopen.
fn scenario(j: &mut Journal) -> Vec<(u64, Entry)> {
    let mut e = vec![
        j.msg(0, "webchat", "u1", "s1", None, "hello"), // -> alice (L1)
        j.msg(1, "email", "u2", "<e2@x>", None, "my invoice is wrong"), // rule: billing:3, L2, P1 -> carol
        j.msg(2, "webchat", "u3", "s3", None, "hi there"), // alice full for webchat: waits
    ];
    // New conversations get ids 2, 3, 4, ... from Journal::msg's counter.
    let (c1, c2) = (Uuid::from_u128(2), Uuid::from_u128(3));
    e.push(j.cmd(3, "alice", Some(c1), CommandAction::Accept));
    e.push(j.cmd(4, "carol", Some(c2), CommandAction::Accept));
    e.push(j.cmd(5, "alice", Some(c1), CommandAction::reply("how can I help?")));
    e.push(j.cmd(
        6,
        "alice",
        Some(c1),
        CommandAction::Transfer {
            to_agent: None,
            to_team: Some("billing".into()),
            note: Some("refund question".into()),
        },
    ));
    e.push(j.cmd(7, "carol", Some(c2), CommandAction::Escalate { tier: None, note: Some("needs L3".into()) }));
    e.push((j.seq + 1, Entry::Tick { at: 40_000 }));
    j.seq += 1;
    e.push(j.cmd(41, "alice", Some(c1), CommandAction::Note { text: "not mine any more".into() }));
    e.push(j.msg(42, "webchat", "u1", "s1", None, "anyone?"));
    e
}

#[test]
fn restoring_between_every_step_gives_the_same_effects_as_running_straight_through() {
    let routing: switchboard_routing::RoutingConfig = toml::from_str(TIERED).unwrap();
    let endpoints: BTreeMap<_, _> =
        ["alice", "carol", "dave"].map(|a| (a.to_string(), vec!["webhook".to_string()])).into();
    let cfg = || RouterConfig {
        routing: routing.clone(),
        endpoints: endpoints.clone(),
        offer_history: 10,
        group: None,
        kb: None,
    };
    let entries = scenario(&mut Journal::new());
    let mut straight = Router::new(cfg()).unwrap();
    let mut restarted = Router::new(cfg()).unwrap();
    let mut all = Vec::new();
    for (seq, entry) in &entries {
        let a = straight.apply(*seq, entry);
        let json = serde_json::to_string(&restarted.state()).unwrap();
        restarted = Router::restore(cfg(), serde_json::from_str(&json).unwrap()).unwrap();
        let b = restarted.apply(*seq, entry);
        assert_eq!(a, b, "entry {seq} differs after a restart");
        all.extend(a);
    }
    assert_eq!(straight.state(), restarted.state());

    // And the scenario did what the rules say.
    let offered: Vec<(String, Uuid)> = all
        .iter()
        .filter_map(|e| match e {
            Effect::Agent { delivery: AgentDelivery::Offer(o), kind, .. }
                if kind != "api" && o.actions[0] == "accept" =>
            {
                Some((o.agent_id.clone(), o.conversation_id))
            }
            _ => None,
        })
        .collect();
    let (c1, c2, c3) = (Uuid::from_u128(2), Uuid::from_u128(3), Uuid::from_u128(4));
    assert_eq!(offered[0], ("alice".into(), c1), "L1 generalist");
    assert_eq!(offered[1], ("carol".into(), c2), "the invoice rule asks for billing:3 at L2: {offered:?}");
    assert!(!offered[..2].iter().any(|(_, c)| *c == c3), "alice had no webchat room for c3 at first");
    let kinds = events(&all);
    assert!(kinds.contains(&EventKind::Transferred) && kinds.contains(&EventKind::Escalated));
    let r1 = straight.record(c1).unwrap();
    assert_eq!(r1.team, "billing", "transferred with its history");
    assert!(
        r1.history.iter().any(|h| h.from == Author::Note && h.text == "refund question"),
        "the transfer note travels"
    );
    assert!(
        !r1.history.iter().any(|h| h.text == "not mine any more"),
        "alice passed c1 on: her note on it is refused (agents write only on their own conversations)"
    );
    let r2 = straight.record(c2).unwrap();
    assert_eq!(r2.tier, switchboard_core::Tier::L3, "escalated one tier up");
    assert!(r2.history.iter().any(|h| h.text == "needs L3"));
    // After alice let c1 go, her webchat slot took the waiting c3 at once.
    assert!(offered.iter().any(|(a, c)| a == "alice" && *c == c3), "{offered:?}");
}

#[test]
fn an_agent_changes_capacity_at_runtime_and_waiting_work_flows_at_once() {
    let (mut r, mut j) = (router(), Journal::new());
    for i in 0..4 {
        apply(&mut r, j.msg(i, "webhook", &format!("cust-{i}"), &format!("t-{i}"), None, "hi"));
    }
    assert_eq!(r.queue_view(10_000).len(), 1, "alice's default capacity is 3");
    let more = CommandAction::SetCapacity { capacity: BTreeMap::from([("webhook".into(), 5)]), max_total: 10 };
    let fx = apply(&mut r, j.cmd(5, "alice", None, more));
    assert_eq!(result(&fx), None);
    assert_eq!(offers(&fx).len(), 1, "the waiting conversation is offered on the change itself");
    assert!(r.queue_view(10_000).is_empty());
    let bad = CommandAction::SetCapacity { capacity: BTreeMap::new(), max_total: 3 };
    let fx = apply(&mut r, j.cmd(6, "nobody", None, bad));
    assert!(result(&fx).unwrap().contains("unknown agent"));
}

fn define(endpoints: &[&str], status: Option<switchboard_core::AgentStatus>) -> CommandAction {
    CommandAction::DefineAgent {
        name: Some("Dave".into()),
        teams: vec!["support".into()],
        tiers: vec![switchboard_core::Tier::L1],
        skills: vec![],
        capacity: BTreeMap::new(),
        default_capacity: None,
        max_total: None,
        status,
        endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn an_agent_defined_at_runtime_gets_offers_on_its_endpoints_and_survives_a_restore() {
    let (mut r, mut j) = (router(), Journal::new());
    for i in 0..4 {
        apply(&mut r, j.msg(i, "webhook", &format!("cust-{i}"), &format!("t-{i}"), None, "hi"));
    }
    assert_eq!(r.queue_view(10_000).len(), 1, "alice is full");
    let online = Some(switchboard_core::AgentStatus::Online);
    let fx = apply(&mut r, j.cmd(5, "dave", None, define(&["webhook", "telegram"], online)));
    assert_eq!(result(&fx), None);
    let kinds: Vec<(&str, bool)> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Agent { kind, delivery: AgentDelivery::Offer(o), copy } if o.agent_id == "dave" => {
                Some((kind.as_str(), *copy))
            }
            _ => None,
        })
        .collect();
    // The agent's own stream (`GET /v1/agent/events`) shows the first; the second is a copy.
    assert_eq!(
        kinds,
        [("webhook", false), ("telegram", true)],
        "the waiting conversation is offered on both new endpoints"
    );
    // A restore (snapshot, JSON, same file) keeps dave and his endpoints.
    let state: switchboard_router::RouterState =
        serde_json::from_str(&serde_json::to_string(&r.state()).unwrap()).unwrap();
    let mut restored = Router::restore(config(), state).expect("restore");
    assert_eq!(restored.state(), r.state());
    // Redefined with one endpoint and no status: keeps online, deliveries go to the webhook only.
    let fx = apply(&mut restored, j.cmd(6, "dave", None, define(&["webhook"], None)));
    assert_eq!(result(&fx), None);
    let fx = apply(&mut restored, j.msg(7, "webhook", "cust-9", "t-9", None, "hi"));
    let to_dave: Vec<&str> =
        fx.iter().filter_map(|e| if let Effect::Agent { kind, .. } = e { Some(kind.as_str()) } else { None }).collect();
    assert_eq!(to_dave, ["webhook"]);
}

#[test]
fn defining_a_file_agent_or_an_invalid_one_is_rejected_and_changes_nothing() {
    let (mut r, mut j) = (router(), Journal::new());
    apply(&mut r, j.msg(0, "webhook", "cust", "t", None, "hi"));
    let before = r.state();
    let fx = apply(&mut r, j.cmd(1, "alice", None, define(&["webhook"], None)));
    assert_eq!(result(&fx).as_deref(), Some("agent `alice` is defined in the configuration file; change it there"));
    let mut bad = define(&["webhook"], None);
    if let CommandAction::DefineAgent { teams, .. } = &mut bad {
        *teams = vec!["nowhere".into()];
    }
    let fx = apply(&mut r, j.cmd(2, "dave", None, bad));
    assert_eq!(result(&fx).as_deref(), Some("invalid agent: teams: unknown team `nowhere`"));
    let after = r.state();
    assert_eq!((after.engine.agents, after.agent_endpoints), (before.engine.agents, before.agent_endpoints));
}

fn surveys(fx: &[Effect]) -> Vec<&switchboard_core::OutboundMessage> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Outbound(o) if o.kind == OutboundKind::System => Some(o),
            _ => None,
        })
        .collect()
}

#[test]
fn a_resolve_asks_the_customer_for_a_rating_on_their_channel_except_in_web_chat_or_when_disabled() {
    use switchboard_core::contract::metadata;
    let (mut r, mut j) = (router(), Journal::new());
    let c = conversation(&apply(&mut r, j.msg(0, "telegram", "cust-1", "chat-1", None, "hi")));
    apply(&mut r, j.cmd(1, "alice", Some(c), CommandAction::Accept));
    let fx = apply(&mut r, j.cmd(2, "alice", Some(c), CommandAction::Resolve));
    let asked = surveys(&fx);
    assert_eq!(asked.len(), 1);
    let q = asked[0];
    assert_eq!(
        (q.channel.as_str(), q.to.customer_id.as_str(), q.to.thread_key.as_str()),
        ("telegram", "cust-1", "chat-1")
    );
    assert_eq!(q.text, switchboard_router::CSAT_QUESTION);
    assert_eq!(q.metadata.get(metadata::CSAT).map(String::as_str), Some(metadata::CSAT_REQUEST));
    assert_eq!(q.metadata.get(metadata::CSAT_CONVERSATION), Some(&c.to_string()));
    assert_eq!(q.metadata.get(metadata::CSAT_AGENT).map(String::as_str), Some("alice"));
    assert_eq!(q.conversation_id, c);

    let w = conversation(&apply(&mut r, j.msg(10, "webchat", "visitor-1", "s-1", None, "hello")));
    apply(&mut r, j.cmd(11, "alice", Some(w), CommandAction::Accept));
    let fx = apply(&mut r, j.cmd(12, "alice", Some(w), CommandAction::Resolve));
    assert!(events(&fx).contains(&EventKind::Resolved));
    assert!(surveys(&fx).is_empty(), "the web chat asks by itself");

    let mut cfg = config();
    cfg.routing.csat_survey = false;
    let (mut r, mut j) = (Router::new(cfg).unwrap(), Journal::new());
    let c = conversation(&apply(&mut r, j.msg(0, "email", "a@example.com", "<m@x>", None, "hi")));
    apply(&mut r, j.cmd(1, "alice", Some(c), CommandAction::Accept));
    let fx = apply(&mut r, j.cmd(2, "alice", Some(c), CommandAction::Resolve));
    assert!(events(&fx).contains(&EventKind::Resolved));
    assert!(surveys(&fx).is_empty(), "csat_survey = false");
}

/// The `resolved` event among `fx`.
fn resolved_event(fx: &[Effect]) -> &switchboard_core::Event {
    fx.iter()
        .find_map(|e| match e {
            Effect::Event(e) if e.kind == EventKind::Resolved => Some(e),
            _ => None,
        })
        .expect("a resolved event")
}

/// The record stored last for `c` among `fx`.
fn stored(fx: &[Effect], c: Uuid) -> &switchboard_core::record::ConversationRecord {
    fx.iter()
        .rev()
        .find_map(|e| match e {
            Effect::Store(r) if r.id == c => Some(&**r),
            _ => None,
        })
        .expect("a stored record")
}

#[test]
fn a_team_asks_its_own_survey_nps_ces_or_none_and_says_which_on_the_resolved_event_and_record() {
    use switchboard_core::SurveyKind;
    use switchboard_core::contract::metadata;
    let with_switch = |survey: &str, on: bool| {
        let mut cfg = config();
        cfg.routing.teams.get_mut("support").unwrap().survey =
            serde_json::from_value(serde_json::json!(survey)).expect("a survey name");
        cfg.routing.csat_survey = on;
        (Router::new(cfg).unwrap(), Journal::new())
    };
    let with = |survey: &str| with_switch(survey, true);
    for (name, kind, question) in [
        ("nps", SurveyKind::Nps, switchboard_router::NPS_QUESTION),
        ("ces", SurveyKind::Ces, switchboard_router::CES_QUESTION),
    ] {
        let (mut r, mut j) = with(name);
        let c = conversation(&apply(&mut r, j.msg(0, "telegram", "cust-1", "chat-1", None, "hi")));
        apply(&mut r, j.cmd(1, "alice", Some(c), CommandAction::Accept));
        let fx = apply(&mut r, j.cmd(2, "alice", Some(c), CommandAction::Resolve));
        let asked = surveys(&fx);
        assert_eq!(asked.len(), 1, "{name}");
        let q = asked[0];
        assert_eq!(q.text, question);
        assert_eq!(q.metadata.get(metadata::SURVEY).map(String::as_str), Some(name));
        assert_eq!(q.metadata.get(metadata::SURVEY_CONVERSATION), Some(&c.to_string()));
        assert_eq!(q.metadata.get(metadata::SURVEY_AGENT).map(String::as_str), Some("alice"));
        assert!(!q.metadata.contains_key(metadata::CSAT), "an {name} question is not a CSAT request: {:?}", q.metadata);
        assert_eq!(resolved_event(&fx).data.get("survey"), Some(&serde_json::json!(name)));
        assert_eq!(stored(&fx, c).survey, Some(kind));

        // The web chat gets no question but the resolved event names the survey for its buttons.
        let w = conversation(&apply(&mut r, j.msg(10, "webchat", "visitor-1", "s-1", None, "hello")));
        apply(&mut r, j.cmd(11, "alice", Some(w), CommandAction::Accept));
        let fx = apply(&mut r, j.cmd(12, "alice", Some(w), CommandAction::Resolve));
        assert!(surveys(&fx).is_empty());
        assert_eq!(resolved_event(&fx).data.get("survey"), Some(&serde_json::json!(name)));
    }

    // CSAT (the default) carries both the survey keys and the previous release's csat keys.
    let (mut r, mut j) = (router(), Journal::new());
    let c = conversation(&apply(&mut r, j.msg(0, "email", "a@example.com", "<m@x>", None, "hi")));
    apply(&mut r, j.cmd(1, "alice", Some(c), CommandAction::Accept));
    let fx = apply(&mut r, j.cmd(2, "alice", Some(c), CommandAction::Resolve));
    let q = surveys(&fx)[0];
    assert_eq!(q.metadata.get(metadata::SURVEY).map(String::as_str), Some("csat"));
    assert_eq!(q.metadata.get(metadata::CSAT).map(String::as_str), Some(metadata::CSAT_REQUEST));
    assert_eq!(resolved_event(&fx).data.get("survey"), Some(&serde_json::json!("csat")));

    let (mut r, mut j) = with("none");
    let c = conversation(&apply(&mut r, j.msg(0, "telegram", "cust-1", "chat-1", None, "hi")));
    apply(&mut r, j.cmd(1, "alice", Some(c), CommandAction::Accept));
    let fx = apply(&mut r, j.cmd(2, "alice", Some(c), CommandAction::Resolve));
    assert!(surveys(&fx).is_empty(), "survey = \"none\" asks nothing");
    assert_eq!(resolved_event(&fx).data.get("survey"), None);
    assert_eq!(stored(&fx, c).survey, None);

    // The global switch turns a team's NPS off too.
    let (mut r, mut j) = with_switch("nps", false);
    let c = conversation(&apply(&mut r, j.msg(0, "telegram", "cust-1", "chat-1", None, "hi")));
    apply(&mut r, j.cmd(1, "alice", Some(c), CommandAction::Accept));
    let fx = apply(&mut r, j.cmd(2, "alice", Some(c), CommandAction::Resolve));
    assert!(surveys(&fx).is_empty(), "csat_survey = false turns NPS off");
    assert_eq!(resolved_event(&fx).data.get("survey"), None);
}

/// Effect ids of `fx`, in order.
fn effect_ids(fx: &[Effect]) -> Vec<Uuid> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Event(e) => Some(e.id),
            Effect::Outbound(o) => Some(o.id),
            Effect::Agent { delivery: AgentDelivery::Offer(o), .. } => Some(o.id),
            Effect::Agent { delivery: AgentDelivery::Message(m), .. } => Some(m.id),
            Effect::Agent { delivery: AgentDelivery::Update(u), .. } => Some(u.id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_group_of_entries_acts_like_the_entries_one_by_one_with_distinct_reproducible_ids() {
    let mut j = Journal::new();
    let entries: Vec<Entry> = vec![
        j.msg(10, "webhook", "c1", "t1", None, "one").1,
        j.msg(10, "webhook", "c2", "t2", None, "two").1,
        j.msg(10, "webhook", "c1", "t1", None, "one more").1,
    ];
    let (mut one_by_one, mut grouped) = (router(), router());
    let mut singles = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        singles.extend(one_by_one.apply(i as u64 + 1, e));
    }
    let batch = grouped.apply_batch(1, &entries);
    assert_eq!(events(&batch), events(&singles), "the same events in the same order");
    assert_eq!(offers(&batch), offers(&singles), "the same offers");
    let ids = effect_ids(&batch);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "every effect has its own id");
    // A replay of the group (a standby from an earlier snapshot) yields the very same ids.
    let mut replayed = router();
    assert_eq!(effect_ids(&replayed.apply_batch(1, &entries)), ids);
    assert!(replayed.apply_batch(1, &entries).is_empty(), "an applied group is not applied twice");
}

#[test]
fn a_customer_message_while_offered_reaches_the_offered_agent_and_comes_with_the_assignment() {
    let (mut r, mut j) = (router(), Journal::new());
    let fx = apply(&mut r, j.msg(0, "webhook", "cust-1", "t-1", None, "my order is late"));
    let c = conversation(&fx);
    assert_eq!(offers(&fx)[0].0, "alice");
    // Offered, not yet accepted: the customer writes twice more.
    let messages = |fx: &[Effect]| -> Vec<(String, String)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Agent { delivery: AgentDelivery::Message(m), kind, .. } if kind != "api" => {
                    Some((m.agent_id.clone(), m.entry.text.clone()))
                }
                _ => None,
            })
            .collect()
    };
    let fx = apply(&mut r, j.msg(5, "webhook", "cust-1", "t-1", None, "order 17, by the way"));
    assert_eq!(messages(&fx), [("alice".to_string(), "order 17, by the way".to_string())]);
    let fx = apply(&mut r, j.msg(6, "webhook", "cust-1", "t-1", None, "hello?"));
    assert_eq!(messages(&fx), [("alice".to_string(), "hello?".to_string())]);
    // The acceptance carries what came in after the offer, not the offer's own history again.
    let fx = apply(&mut r, j.cmd(10, "alice", Some(c), CommandAction::Accept));
    let assigned: Vec<Vec<String>> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Agent { delivery: AgentDelivery::Update(u), kind, .. }
                if kind != "api" && u.change == "assigned" =>
            {
                Some(u.history.iter().map(|h| h.text.clone()).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(assigned, [vec!["order 17, by the way".to_string(), "hello?".to_string()]]);
    // Held now: a further message is a plain delivery, as before.
    let fx = apply(&mut r, j.msg(20, "webhook", "cust-1", "t-1", None, "thanks"));
    assert_eq!(messages(&fx), [("alice".to_string(), "thanks".to_string())]);
}
