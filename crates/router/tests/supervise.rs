//! A supervisor's changes (`command/1` action `supervise`) through the router service on a real
//! NATS server: a held conversation moved to another team reaches that team's agent as an offer,
//! the old holder is told, the supervisor's note is in the history for agents and never in a
//! message to the customer; a new priority reorders the queue; resolving waiting ones empties
//! it; and a router replaying the journal (restart, crash, or from a snapshot) ends in the same
//! state.

use switchboard_adapter::testkit::{TestBus, envelope, wait_for};
use switchboard_core::agent::Author;
use switchboard_core::contract::{buckets, streams, subjects};
use switchboard_core::verdict::CommandVerdict;
use switchboard_core::{
    AgentCommand, AgentDelivery, CommandAction, Contract, Event, OutboundMessage, Priority, SupervisorOp,
};
use switchboard_router::{ConversationRecord, Effect, Entry, Router, RouterConfig};
use uuid::Uuid;

mod support;
use support::{Proc, WAIT, deliveries};

/// Alice (support) holds one conversation at a time; carol works in billing.
const TEAMS: &str = r#"
default_team = "support"
reopen_window_secs = 3600
[teams.support]
offer_timeout_secs = 300
[teams.billing]
offer_timeout_secs = 300
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
max_total = 1
status = "online"
[[agents]]
id = "carol"
teams = ["billing"]
tiers = ["L1"]
status = "online"
"#;

/// Nobody online: everything waits.
const NOBODY: &str = r#"
default_team = "support"
aging_secs_per_point = 10
[teams.support]
offer_timeout_secs = 300
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "offline"
"#;

const NOTE: &str = "VIP customer, refund approved";

fn config(routing: &str) -> RouterConfig {
    support::config(routing, &["alice", "carol"])
}

async fn start_router(t: &TestBus, name: &str, routing: &str) -> Proc {
    support::start(t, name, config(routing)).await
}

async fn outbound(t: &TestBus) -> Vec<OutboundMessage> {
    let stored = t.stored(streams::OUTBOUND, &subjects::outbound("webhook")).await;
    stored.iter().map(|(_, p)| serde_json::from_slice(p).unwrap()).collect()
}

async fn events(t: &TestBus, kind: &str) -> Vec<Event> {
    t.events(kind).await
}

async fn say(t: &TestBus, provider_id: &str, customer: &str, text: &str) {
    let e = envelope("webhook", provider_id, customer, text);
    t.bus.publish(&subjects::inbound("webhook"), &e, &format!("webhook:{provider_id}")).await.unwrap();
}

/// Publishes a command by `agent` and returns its id.
async fn command(t: &TestBus, agent: &str, conversation: Uuid, action: CommandAction) -> Uuid {
    let c = AgentCommand {
        id: Uuid::now_v7(),
        agent_id: agent.into(),
        conversation_id: Some(conversation),
        issued_at: chrono::Utc::now(),
        action,
    };
    c.validate().unwrap();
    t.bus.publish(subjects::AGENT_IN, &c, &c.id.to_string()).await.unwrap();
    c.id
}

async fn supervise(t: &TestBus, conversation: Uuid, op: SupervisorOp, note: Option<&str>) -> Uuid {
    command(t, "lead", conversation, CommandAction::Supervise { op, note: note.map(Into::into) }).await
}

/// The command's verdict once the router gave it: `Ok(())` done, `Err(reason)` refused.
async fn verdict(t: &TestBus, id: Uuid) -> Result<(), String> {
    let kv = t.bus.jetstream().get_key_value(buckets::COMMANDS).await.unwrap();
    let read = || async {
        let value = kv.get(CommandVerdict::key(&id)).await.ok()??;
        serde_json::from_slice::<CommandVerdict>(&value).ok()
    };
    wait_for("the command's verdict", WAIT, || async { read().await.is_some() }).await;
    match read().await.unwrap().rejected {
        None => Ok(()),
        Some(reason) => Err(reason),
    }
}

async fn record(t: &TestBus, id: Uuid) -> Option<ConversationRecord> {
    let kv = t.bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.unwrap();
    let value = kv.get(id.to_string()).await.unwrap()?;
    Some(serde_json::from_slice(&value).unwrap())
}

/// The waiting conversations in the leader's queue view (`Router::queue_view`), in order, with
/// their priorities.
async fn queue(t: &TestBus) -> Option<Vec<(Uuid, u8)>> {
    let m = t.bus.client().request(subjects::router_queue("default"), "".into()).await.ok()?;
    let items = serde_json::from_slice::<Vec<switchboard_router::QueueItem>>(&m.payload).ok()?;
    Some(items.into_iter().map(|q| (q.conversation_id, q.priority.0)).collect())
}

fn offers_to(all: &[AgentDelivery], agent: &str) -> Vec<switchboard_core::agent::Offer> {
    all.iter()
        .filter_map(|d| match d {
            AgentDelivery::Offer(o) if o.agent_id == agent => Some((**o).clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_supervisors_transfer_reaches_the_other_team_and_its_note_only_agents() {
    let t = TestBus::start().await;
    let router = start_router(&t, "r1", TEAMS).await;
    say(&t, "p1", "cust-1", "my invoice is wrong").await;
    wait_for("the offer to alice", WAIT, || async { offers_to(&deliveries(&t).await, "alice").len() == 1 }).await;
    let c = offers_to(&deliveries(&t).await, "alice")[0].conversation_id;
    command(&t, "alice", c, CommandAction::Accept).await;
    wait_for("alice holds it", WAIT, || async { record(&t, c).await.is_some_and(|r| r.state == "assigned") }).await;

    let op = SupervisorOp::Transfer { to_agent: None, to_team: Some("billing".into()) };
    let id = supervise(&t, c, op, Some(NOTE)).await;
    assert_eq!(verdict(&t, id).await, Ok(()));
    wait_for("the offer to carol", WAIT, || async { offers_to(&deliveries(&t).await, "carol").len() == 1 }).await;

    // Carol's offer carries the supervisor's note in its history, as a note.
    let line = format!("Supervisor lead moved this to team billing: {NOTE}");
    let offer = offers_to(&deliveries(&t).await, "carol").remove(0);
    assert_eq!(offer.conversation_id, c);
    let texts: Vec<&str> = offer.history.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(texts, ["my invoice is wrong", line.as_str()]);
    // The old holder is told, as after an agent's transfer.
    let told: Vec<_> = deliveries(&t)
        .await
        .into_iter()
        .filter_map(|d| match d {
            AgentDelivery::Update(u) if u.agent_id == "alice" => Some((u.change, u.note)),
            _ => None,
        })
        .collect();
    let expected = [("assigned".to_string(), None), ("transferred".to_string(), Some(NOTE.to_string()))];
    assert_eq!(told, expected);

    let r = record(&t, c).await.unwrap();
    assert_eq!((r.state.as_str(), r.agent.as_deref(), r.team.as_str()), ("offered", Some("carol"), "billing"));
    let note = r.history.iter().find(|h| h.text == line).expect("the note in the record's history");
    assert_eq!((note.from, note.author.as_deref()), (Author::Note, Some("lead")));

    let transferred = events(&t, "transferred").await;
    assert_eq!(transferred.len(), 1);
    let e = &transferred[0];
    assert_eq!((e.agent_id.as_deref(), e.data["by_supervisor"].as_str()), (Some("alice"), Some("lead")));
    assert_eq!(e.data["team"], "billing");

    // Carol answers; the supervisor resolves it: the customer gets the reply and the survey
    // question, and nothing the supervisor wrote.
    command(&t, "carol", c, CommandAction::Accept).await;
    command(&t, "carol", c, CommandAction::reply("Your refund is on its way.")).await;
    let id = supervise(&t, c, SupervisorOp::Resolve {}, None).await;
    assert_eq!(verdict(&t, id).await, Ok(()));
    wait_for("the survey question", WAIT, || async { outbound(&t).await.len() == 2 }).await;
    let resolved = events(&t, "resolved").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].agent_id.as_deref(), resolved[0].data["by_supervisor"].as_str()),
        (Some("carol"), Some("lead"))
    );
    let r = record(&t, c).await.unwrap();
    assert_eq!(r.state, "resolved");
    assert!(r.history.iter().any(|h| h.from == Author::Note && h.text == "Supervisor lead resolved this."));
    let carol_told = deliveries(&t).await.into_iter().any(|d| {
        matches!(d, AgentDelivery::Update(u) if u.agent_id == "carol" && u.change == "resolved" && u.conversation_id == c)
    });
    assert!(carol_told, "the holder hears the conversation was resolved");

    // A refused change: nothing happens, and the reason is the verdict.
    let id = supervise(&t, c, SupervisorOp::SetPriority { priority: Priority(1) }, Some(NOTE)).await;
    assert_eq!(verdict(&t, id).await, Err("the conversation is already resolved".to_string()));
    let unknown = SupervisorOp::Transfer { to_agent: Some("zed".into()), to_team: None };
    let id = supervise(&t, Uuid::now_v7(), unknown, None).await;
    assert_eq!(verdict(&t, id).await, Err("unknown conversation".to_string()));

    // A crash and a replay of the journal: the same state, nothing sent twice.
    router.kill();
    let router = start_router(&t, "r2", TEAMS).await;
    let id = supervise(&t, c, SupervisorOp::Resolve {}, None).await;
    assert_eq!(verdict(&t, id).await, Err("the conversation is already resolved".to_string()));
    assert_eq!(offers_to(&deliveries(&t).await, "carol").len(), 1);
    let sent = outbound(&t).await;
    assert_eq!(sent.len(), 2, "the reply and the survey question, once each");
    for m in &sent {
        assert!(!m.text.contains("VIP") && !m.text.contains("Supervisor"), "sent to the customer: {}", m.text);
        assert!(m.metadata.values().all(|v| !v.contains("VIP")));
    }
    router.stop().await;
}

#[tokio::test]
async fn a_new_priority_reorders_the_queue_and_resolving_waiting_ones_empties_it() {
    let t = TestBus::start().await;
    let router = start_router(&t, "r1", NOBODY).await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        say(&t, &format!("p{n}"), &format!("cust-{n}"), "hello?").await;
        wait_for("queued", WAIT, || async { queue(&t).await.is_some_and(|q| q.len() == n) }).await;
        ids.push(queue(&t).await.unwrap()[n - 1].0);
    }
    let (c1, c2, c3) = (ids[0], ids[1], ids[2]);
    assert_eq!(queue(&t).await.unwrap(), [(c1, 50), (c2, 50), (c3, 50)]);

    let id = supervise(&t, c3, SupervisorOp::SetPriority { priority: Priority(1) }, Some(NOTE)).await;
    assert_eq!(verdict(&t, id).await, Ok(()));
    assert_eq!(queue(&t).await.unwrap(), [(c3, 1), (c1, 50), (c2, 50)]);
    let changed = events(&t, "priority_changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].conversation_id, Some(c3));
    assert_eq!(
        (changed[0].data["from"].as_u64(), changed[0].data["to"].as_u64(), changed[0].data["by_supervisor"].as_str()),
        (Some(50), Some(1), Some("lead"))
    );
    wait_for("the record's priority", WAIT, || async { record(&t, c3).await.is_some_and(|r| r.priority.0 == 1) }).await;
    let r = record(&t, c3).await.unwrap();
    let line = format!("Supervisor lead changed the priority from 50 to 1: {NOTE}");
    assert!(r.history.iter().any(|h| h.from == Author::Note && h.text == line), "{:?}", r.history);

    // A restart continues with the same queue.
    router.stop().await;
    let router = start_router(&t, "r2", NOBODY).await;
    wait_for("the queue after the restart", WAIT, || async { queue(&t).await.is_some() }).await;
    assert_eq!(queue(&t).await.unwrap(), [(c3, 1), (c1, 50), (c2, 50)]);

    for c in [c1, c3] {
        let id = supervise(&t, c, SupervisorOp::Resolve {}, None).await;
        assert_eq!(verdict(&t, id).await, Ok(()));
    }
    assert_eq!(queue(&t).await.unwrap(), [(c2, 50)]);
    let id = supervise(&t, c2, SupervisorOp::Resolve {}, None).await;
    assert_eq!(verdict(&t, id).await, Ok(()));
    assert_eq!(queue(&t).await.unwrap(), []);
    let resolved = events(&t, "resolved").await;
    assert_eq!(resolved.len(), 3);
    assert!(resolved.iter().all(|e| e.agent_id.is_none() && e.data["by_supervisor"] == "lead"));

    // A crash: the replayed journal keeps them resolved, and the queue empty.
    router.kill();
    let router = start_router(&t, "r3", NOBODY).await;
    wait_for("the queue after the crash", WAIT, || async { queue(&t).await.is_some() }).await;
    assert_eq!(queue(&t).await.unwrap(), []);
    let id = supervise(&t, c2, SupervisorOp::SetPriority { priority: Priority(5) }, None).await;
    assert_eq!(verdict(&t, id).await, Err("the conversation is already resolved".to_string()));
    router.stop().await;
}

/// The router applied to a journal, entry by entry (no bus): what every router of the group does.
struct Journal {
    entries: Vec<Entry>,
}

impl Journal {
    fn msg(&mut self, secs: i64, customer: &str, n: u128) {
        let mut e = envelope("webhook", &format!("p{n}"), customer, "hello");
        e.received_at = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        let entry = Entry::Inbound {
            at: secs * 1000,
            envelope: Box::new(e),
            new_conversation: Uuid::from_u128(n),
            kb: Vec::new(),
            replies: Vec::new(),
        };
        self.entries.push(entry);
    }

    fn command(&mut self, secs: i64, agent: &str, conversation: u128, action: CommandAction) {
        let command = AgentCommand {
            id: Uuid::from_u128(1_000 + self.entries.len() as u128),
            agent_id: agent.into(),
            conversation_id: Some(Uuid::from_u128(conversation)),
            issued_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            action,
        };
        self.entries.push(Entry::Command { at: secs * 1000, command: Box::new(command), stream_sequence: None });
    }

    fn supervise(&mut self, secs: i64, conversation: u128, op: SupervisorOp) {
        self.command(secs, "lead", conversation, CommandAction::Supervise { op, note: Some(NOTE.into()) });
    }
}

#[test]
fn replaying_the_journal_or_continuing_from_a_snapshot_gives_the_same_state_and_effects() {
    let mut j = Journal { entries: Vec::new() };
    j.msg(0, "cust-1", 1); // offered to alice
    j.command(1, "alice", 1, CommandAction::Accept);
    j.msg(2, "cust-2", 2); // waits: alice is full
    j.msg(3, "cust-3", 3);
    j.supervise(4, 3, SupervisorOp::SetPriority { priority: Priority(2) });
    j.supervise(5, 1, SupervisorOp::Escalate { tier: None });
    j.supervise(6, 2, SupervisorOp::Transfer { to_agent: Some("carol".into()), to_team: None });
    j.supervise(7, 2, SupervisorOp::Transfer { to_agent: None, to_team: None }); // refused
    j.supervise(8, 3, SupervisorOp::Resolve {});
    j.supervise(9, 1, SupervisorOp::Transfer { to_agent: None, to_team: Some("billing".into()) });

    let run = |from: Option<(usize, String)>| {
        let (mut router, start) = match from {
            None => (Router::new(config(TEAMS)).unwrap(), 0),
            Some((at, snapshot)) => {
                let state = serde_json::from_str(&snapshot).expect("the snapshot loads");
                (Router::restore(config(TEAMS), state).unwrap(), at)
            }
        };
        let mut effects = Vec::new();
        for (i, entry) in j.entries.iter().enumerate().skip(start) {
            effects.push(router.apply(i as u64 + 1, entry));
        }
        (router, effects)
    };
    let (first, effects) = run(None);
    let (again, effects_again) = run(None);
    assert_eq!(first.state(), again.state());
    assert_eq!(effects, effects_again);

    let results: Vec<Option<String>> = effects
        .iter()
        .flatten()
        .filter_map(|e| match e {
            Effect::CommandResult { rejected, .. } => Some(rejected.clone()),
            _ => None,
        })
        .collect();
    let refused = Some("a transfer needs an agent or a team".to_string());
    assert_eq!(results, [None, None, None, None, refused, None, None]);

    // A snapshot taken after the first supervisor's change, in the service's format (JSON).
    let mut partial = Router::new(config(TEAMS)).unwrap();
    for (i, entry) in j.entries.iter().enumerate().take(5) {
        partial.apply(i as u64 + 1, entry);
    }
    let snapshot = serde_json::to_string(&partial.state()).unwrap();
    let (restored, rest) = run(Some((5, snapshot)));
    assert_eq!(restored.state(), first.state());
    assert_eq!(rest, effects[5..]);
    let r = first.record(Uuid::from_u128(1)).unwrap();
    assert_eq!((r.team.as_str(), r.tier), ("billing", switchboard_core::Tier::L2));
}
