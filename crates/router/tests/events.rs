//! Events carry what the KPIs are cut by: every conversation event names its channel, and the
//! routing ones (opened, reopened, assigned, escalated, transferred, resolved) its team, tier and
//! priority; an agent's own status changes are events too.

use std::collections::BTreeMap;

use switchboard_core::{AgentCommand, AgentStatus, CommandAction, Event, EventKind, Tier};
use switchboard_router::{Effect, Entry, Router, RouterConfig};
use uuid::Uuid;

const ROUTING: &str = r#"
default_team = "support"
reopen_window_secs = 3600
[teams.support]
offer_timeout_secs = 0
[teams.billing]
offer_timeout_secs = 0
[[agents]]
id = "alice"
teams = ["support", "billing"]
tiers = ["L1"]
status = "online"
[[agents]]
id = "bob"
teams = ["support", "billing"]
tiers = ["L2"]
status = "offline"
[[rules]]
name = "billing"
when = 'text.contains("invoice")'
team = "billing"
priority = "P2"
[[rules]]
name = "faq"
when = 'text.contains("faq")'
tier = "L0"
auto_reply = "see the FAQ"
"#;

struct Run {
    router: Router,
    seq: u64,
}

impl Run {
    fn new() -> Run {
        let routing = toml::from_str(ROUTING).expect("routing toml");
        Run {
            router: Router::new(RouterConfig {
                routing,
                endpoints: BTreeMap::new(),
                offer_history: 5,
                group: None,
                kb: None,
            })
            .unwrap(),
            seq: 0,
        }
    }

    fn msg(&mut self, secs: i64, channel: &str, thread: &str, text: &str) -> Vec<Event> {
        self.seq += 1;
        let mut envelope = switchboard_adapter::testkit::envelope(channel, &format!("p-{}", self.seq), thread, text);
        envelope.thread_key = thread.into();
        let entry = Entry::Inbound {
            at: secs * 1000,
            envelope: Box::new(envelope),
            new_conversation: Uuid::from_u128(u128::from(self.seq)),
            kb: Vec::new(),
            replies: Vec::new(),
        };
        events(self.router.apply(self.seq, &entry))
    }

    fn cmd(&mut self, secs: i64, agent: &str, conversation: Option<Uuid>, action: CommandAction) -> Vec<Event> {
        self.seq += 1;
        let command = AgentCommand {
            id: Uuid::from_u128(1_000_000 + u128::from(self.seq)),
            agent_id: agent.into(),
            conversation_id: conversation,
            issued_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            action,
        };
        events(
            self.router.apply(
                self.seq,
                &Entry::Command { at: secs * 1000, command: Box::new(command), stream_sequence: None },
            ),
        )
    }
}

fn events(fx: Vec<Effect>) -> Vec<Event> {
    fx.into_iter().filter_map(|e| if let Effect::Event(e) = e { Some(e) } else { None }).collect()
}

fn find(events: &[Event], kind: EventKind) -> &Event {
    events.iter().find(|e| e.kind == kind).unwrap_or_else(|| panic!("no {kind:?} in {events:#?}"))
}

fn routing(e: &Event) -> (String, String, u64) {
    (
        e.data["team"].as_str().unwrap_or_default().to_string(),
        e.data["tier"].as_str().unwrap_or_default().to_string(),
        e.data["priority"].as_u64().unwrap_or_default(),
    )
}

#[test]
fn opened_assigned_escalated_and_resolved_carry_channel_team_tier_and_priority() {
    let mut run = Run::new();
    let fx = run.msg(0, "email", "t-1", "my invoice is wrong");
    let opened = find(&fx, EventKind::ConversationOpened);
    assert_eq!(routing(opened), ("billing".into(), "L1".into(), 25), "the rule's routing, not the defaults");
    assert_eq!(opened.data["repeat"], false);
    let assigned = find(&fx, EventKind::Assigned);
    assert_eq!(routing(assigned), ("billing".into(), "L1".into(), 25));
    let c = opened.conversation_id.unwrap();
    for e in &fx {
        assert_eq!(e.channel.as_deref(), Some("email"), "{:?} names the channel", e.kind);
    }

    let fx = run.cmd(10, "alice", Some(c), CommandAction::reply("looking"));
    let replied = find(&fx, EventKind::AgentReplied);
    assert_eq!((replied.channel.as_deref(), replied.data["first_response"].as_bool()), (Some("email"), Some(true)));

    let fx = run.cmd(20, "alice", Some(c), CommandAction::Escalate { tier: None, note: Some("L2 please".into()) });
    let escalated = find(&fx, EventKind::Escalated);
    assert_eq!(routing(escalated), ("billing".into(), "L2".into(), 25), "the new tier");
    assert_eq!(escalated.channel.as_deref(), Some("email"));

    let fx = run.cmd(30, "bob", None, CommandAction::SetStatus { status: AgentStatus::Online });
    let status = find(&fx, EventKind::AgentStatusChanged);
    assert_eq!((status.agent_id.as_deref(), status.data["status"].as_str()), (Some("bob"), Some("online")));
    let assigned = find(&fx, EventKind::Assigned);
    assert_eq!((assigned.agent_id.as_deref(), routing(assigned).1.as_str()), (Some("bob"), "L2"));

    let fx = run.cmd(
        40,
        "bob",
        Some(c),
        CommandAction::Transfer { to_agent: None, to_team: Some("support".into()), note: None },
    );
    let transferred = find(&fx, EventKind::Transferred);
    assert_eq!(routing(transferred), ("support".into(), "L2".into(), 25));
    let fx = run.cmd(50, "bob", Some(c), CommandAction::Resolve);
    let resolved = find(&fx, EventKind::Resolved);
    assert_eq!((resolved.channel.as_deref(), routing(resolved)), (Some("email"), ("support".into(), "L2".into(), 25)));

    let fx = run.msg(60, "email", "t-1", "it is wrong again");
    let reopened = find(&fx, EventKind::ConversationReopened);
    assert_eq!((reopened.channel.as_deref(), routing(reopened).0.as_str()), (Some("email"), "support"));
}

#[test]
fn a_conversation_the_bot_answers_opens_at_l0() {
    let mut run = Run::new();
    let fx = run.msg(0, "telegram", "t-9", "faq please");
    let opened = find(&fx, EventKind::ConversationOpened);
    assert_eq!((opened.channel.as_deref(), routing(opened).1), (Some("telegram"), format!("{:?}", Tier::L0)));
    assert_eq!(find(&fx, EventKind::AutoReplied).channel.as_deref(), Some("telegram"));
}
