//! The router service on a real NATS server: a message is offered, accepted and answered on the
//! customer's channel; state survives a restart and a crash of the leader; a standby takes over.

use std::time::Duration;

use switchboard_adapter::testkit::{TestBus, envelope, wait_for};
use switchboard_core::contract::{buckets, streams, subjects};
use switchboard_core::{AgentCommand, AgentDelivery, CommandAction, Contract, OutboundMessage};
use switchboard_router::{ConversationRecord, RouterConfig};
use uuid::Uuid;

mod support;
use support::{Proc, WAIT, deliveries};

const ROUTING: &str = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 300
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
default_capacity = 50
max_total = 50
status = "online"
"#;

const SHORT_OFFERS: &str = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 1
max_missed_offers = 5
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "online"
[[agents]]
id = "bob"
teams = ["support"]
tiers = ["L1"]
status = "online"
"#;

fn config() -> RouterConfig {
    config_with(ROUTING)
}

fn config_with(routing: &str) -> RouterConfig {
    support::config(routing, &["alice", "bob"])
}

async fn start_router(t: &TestBus, name: &str) -> Proc {
    start_router_with(t, name, config()).await
}

async fn start_router_with(t: &TestBus, name: &str, config: RouterConfig) -> Proc {
    support::start(t, name, config).await
}

async fn offers(t: &TestBus) -> Vec<(Uuid, Vec<String>)> {
    deliveries(t)
        .await
        .into_iter()
        .filter_map(|d| match d {
            AgentDelivery::Offer(o) => Some((o.conversation_id, o.history.into_iter().map(|h| h.text).collect())),
            _ => None,
        })
        .collect()
}

async fn say(t: &TestBus, provider_id: &str, customer: &str, text: &str) {
    let e = envelope("webhook", provider_id, customer, text);
    t.bus.publish(&subjects::inbound("webhook"), &e, &format!("webhook:{provider_id}")).await.unwrap();
}

async fn command(t: &TestBus, conversation: Uuid, action: CommandAction) {
    let c = AgentCommand {
        id: Uuid::now_v7(),
        agent_id: "alice".into(),
        conversation_id: Some(conversation),
        issued_at: chrono::Utc::now(),
        action,
    };
    c.validate().unwrap();
    t.bus.publish(subjects::AGENT_IN, &c, &c.id.to_string()).await.unwrap();
}

async fn record(t: &TestBus, id: Uuid) -> Option<ConversationRecord> {
    let kv = t.bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.unwrap();
    let value = kv.get(id.to_string()).await.unwrap()?;
    Some(serde_json::from_slice(&value).unwrap())
}

#[tokio::test]
async fn a_message_is_offered_accepted_and_answered_and_the_state_survives_restart_and_crash() {
    let t = TestBus::start().await;
    let router = start_router(&t, "r1").await;
    say(&t, "p1", "cust-1", "where is my order?").await;
    wait_for("the offer", WAIT, || async { offers(&t).await.len() == 1 }).await;
    let (c, history) = offers(&t).await.remove(0);
    assert_eq!(history, ["where is my order?"]);

    command(&t, c, CommandAction::Accept).await;
    wait_for("the assignment", WAIT, || async {
        record(&t, c).await.is_some_and(|r| r.state == "assigned" && r.agent.as_deref() == Some("alice"))
    })
    .await;

    // A graceful restart: the next process continues from the snapshot.
    router.stop().await;
    let router = start_router(&t, "r2").await;
    command(&t, c, CommandAction::reply("it ships today")).await;
    wait_for("the reply on the customer's channel", WAIT, || async {
        !t.stored(streams::OUTBOUND, &subjects::outbound("webhook")).await.is_empty()
    })
    .await;
    let out = t.stored(streams::OUTBOUND, &subjects::outbound("webhook")).await;
    let reply: OutboundMessage = serde_json::from_slice(&out[0].1).unwrap();
    assert_eq!(
        (reply.text.as_str(), reply.to.thread_key.as_str(), reply.conversation_id),
        ("it ships today", "cust-1", c)
    );

    // A crash: the next process replays the journal after the last snapshot.
    router.kill();
    let router = start_router(&t, "r3").await;
    say(&t, "p2", "cust-1", "thanks!").await;
    wait_for("the follow-up delivered to the assigned agent", WAIT, || async {
        deliveries(&t)
            .await
            .iter()
            .any(|d| matches!(d, AgentDelivery::Message(m) if m.entry.text == "thanks!" && m.conversation_id == c))
    })
    .await;
    assert_eq!(offers(&t).await.len(), 1, "the follow-up is not a new conversation");
    assert_eq!(t.stored(streams::OUTBOUND, &subjects::outbound("webhook")).await.len(), 1, "the reply went once");
    router.stop().await;
}

/// The satisfaction survey's answer names the agent who resolved the conversation, and the
/// channels read that agent from the record (`docs/contract.md`, "The satisfaction survey"): a
/// resolved record keeps it until the conversation is reopened.
#[tokio::test]
async fn a_resolved_record_names_the_agent_who_resolved_it_until_it_reopens() {
    let t = TestBus::start().await;
    let router = start_router(&t, "r1").await;
    say(&t, "p1", "cust-1", "where is my order?").await;
    wait_for("the offer", WAIT, || async { offers(&t).await.len() == 1 }).await;
    let (c, _) = offers(&t).await.remove(0);
    command(&t, c, CommandAction::Accept).await;
    command(&t, c, CommandAction::Resolve).await;
    wait_for("the resolution", WAIT, || async { record(&t, c).await.is_some_and(|r| r.state == "resolved") }).await;
    assert_eq!(record(&t, c).await.unwrap().agent.as_deref(), Some("alice"), "the resolver stays on the record");

    say(&t, "p2", "cust-1", "it did not arrive after all").await;
    wait_for("the reopened conversation offered again", WAIT, || async {
        record(&t, c).await.is_some_and(|r| r.state != "resolved")
    })
    .await;
    let reopened = record(&t, c).await.unwrap();
    assert!(
        reopened.state != "queued" || reopened.agent.is_none(),
        "a waiting conversation names no agent: {reopened:?}"
    );
    router.stop().await;
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_dies_and_nothing_is_lost_or_offered_twice() {
    let t = TestBus::start().await;
    let leader = start_router(&t, "leader").await;
    // Give the leader the lease before the standby starts contending.
    wait_for("the leader's lease", WAIT, || async {
        let kv = t.bus.jetstream().get_key_value(buckets::ROUTER).await.unwrap();
        kv.get("lease.router.default").await.unwrap().is_some_and(|v| String::from_utf8_lossy(&v).contains("leader"))
    })
    .await;
    let standby = start_router(&t, "standby").await;

    for i in 0..10 {
        say(&t, &format!("a{i}"), &format!("cust-{i}"), "help").await;
    }
    wait_for("ten offers from the leader", WAIT, || async { offers(&t).await.len() == 10 }).await;
    leader.kill();
    for i in 10..20 {
        say(&t, &format!("a{i}"), &format!("cust-{i}"), "help").await;
    }
    wait_for("ten more offers from the standby", WAIT, || async { offers(&t).await.len() >= 20 }).await;
    // Anything in flight at the kill is redelivered: wait until every input is acknowledged.
    wait_for("every inbound message acknowledged", WAIT, || async {
        let stream = t.bus.jetstream().get_stream(streams::INBOUND).await.unwrap();
        let mut consumer = stream
            .get_consumer::<switchboard_bus::async_nats::jetstream::consumer::pull::Config>("router-default")
            .await
            .unwrap();
        let info = consumer.info().await.unwrap();
        info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
    let all = offers(&t).await;
    let distinct: std::collections::BTreeSet<_> = all.iter().map(|(c, _)| *c).collect();
    assert_eq!((all.len(), distinct.len()), (20, 20), "every message offered once");
    standby.stop().await;
}

#[tokio::test]
async fn an_offer_deadline_that_passed_while_no_router_ran_fires_on_the_next_start() {
    let t = TestBus::start().await;
    let router = start_router_with(&t, "r1", config_with(SHORT_OFFERS)).await;
    say(&t, "p1", "cust-1", "hello?").await;
    wait_for("the first offer", WAIT, || async { offers(&t).await.len() == 1 }).await;
    let first = deliveries(&t).await.into_iter().find_map(|d| match d {
        AgentDelivery::Offer(o) => Some((o.agent_id, o.offer_deadline)),
        _ => None,
    });
    let (first_agent, deadline) = first.unwrap();
    router.stop().await;

    // The deadline passes while nothing runs; the stored timer must still fire.
    while chrono::Utc::now() <= deadline + chrono::Duration::milliseconds(200) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let router = start_router_with(&t, "r2", config_with(SHORT_OFFERS)).await;
    wait_for("the lapsed offer reported and the next agent offered", WAIT, || async {
        !t.events("offer_timed_out").await.is_empty() && offers(&t).await.len() >= 2
    })
    .await;
    let second = deliveries(&t).await.into_iter().filter_map(|d| match d {
        AgentDelivery::Offer(o) => Some(o.agent_id),
        _ => None,
    });
    let agents: Vec<_> = second.collect();
    assert_ne!(agents[1], first_agent, "the lapsed offer went to the other agent: {agents:?}");
    router.stop().await;
}

const PRIORITIES: &str = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 300
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
max_total = 1
status = "away"
[[rules]]
name = "urgent"
when = 'text.contains("urgent")'
priority = "P1"
[[rules]]
name = "chat is live"
when = 'channel == "webchat"'
priority = "P2"
[[rules]]
name = "mail can wait"
when = 'channel == "email"'
priority = "P4"
"#;

#[tokio::test]
async fn waiting_work_from_every_channel_is_offered_in_one_priority_order() {
    let t = TestBus::start().await;
    let router = start_router_with(&t, "r1", config_with(PRIORITIES)).await;
    // Arrival order is the reverse of priority order, across four channels.
    let arrivals = [
        ("email", "m1", "mail-cust", "my invoice"),
        ("webhook", "m2", "hook-cust", "a question"),
        ("webchat", "m3", "chat-cust", "hello"),
        ("telegram", "m4", "tg-cust", "urgent: cannot log in"),
    ];
    for (channel, id, customer, text) in arrivals {
        let e = envelope(channel, id, customer, text);
        t.bus.publish(&subjects::inbound(channel), &e, &format!("{channel}:{id}")).await.unwrap();
    }
    let queued = || async {
        let m = t.bus.client().request(subjects::router_queue("default"), "".into()).await.ok()?;
        serde_json::from_slice::<Vec<serde_json::Value>>(&m.payload).ok()
    };
    wait_for("all four queued", WAIT, || async { queued().await.is_some_and(|q| q.len() == 4) }).await;
    let channels: Vec<String> =
        queued().await.unwrap().iter().map(|q| q["channel"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(channels, ["telegram", "webchat", "webhook", "email"], "the queue view is in priority order");

    // Alice comes online with room for one at a time: each resolve frees her for the next.
    let online = AgentCommand {
        id: Uuid::now_v7(),
        agent_id: "alice".into(),
        conversation_id: None,
        issued_at: chrono::Utc::now(),
        action: CommandAction::SetStatus { status: switchboard_core::AgentStatus::Online },
    };
    t.bus.publish(subjects::AGENT_IN, &online, &online.id.to_string()).await.unwrap();
    let mut order = Vec::new();
    for n in 1..=4 {
        wait_for("the next offer", WAIT, || async { offers(&t).await.len() == n }).await;
        let (c, history) = offers(&t).await.remove(n - 1);
        order.push(history[0].clone());
        command(&t, c, CommandAction::Accept).await;
        command(&t, c, CommandAction::Resolve).await;
    }
    assert_eq!(order, ["urgent: cannot log in", "hello", "a question", "my invoice"]);
    router.stop().await;
}

#[tokio::test]
async fn inputs_journaled_in_a_group_by_a_leader_that_died_before_acking_act_once() {
    let t = TestBus::start().await;
    // A leader journaled two messages as one group and died before publishing or acking anything:
    // both are still pending on the input stream.
    let now = chrono::Utc::now().timestamp_millis();
    let (first, second) = (envelope("webhook", "g1", "cust-1", "help"), envelope("webhook", "g2", "cust-2", "help"));
    for e in [&first, &second] {
        t.bus.publish(&subjects::inbound("webhook"), e, &format!("webhook:{}", e.id)).await.unwrap();
    }
    let entries = [&first, &second].map(|e| switchboard_router::Entry::Inbound {
        at: now,
        envelope: Box::new(e.clone()),
        new_conversation: Uuid::now_v7(),
        kb: Vec::new(),
        replies: Vec::new(),
    });
    let parts: Vec<_> = entries.iter().map(switchboard_router::encode_entry).collect();
    let mut journal = t.bus.open_journal(&subjects::router_journal("default")).await.unwrap();
    journal.append(switchboard_router::encode_entries(&parts).into(), "group:dead-leader").await.unwrap();

    let router = start_router(&t, "next").await;
    wait_for("both inputs acknowledged", WAIT, || async {
        let stream = t.bus.jetstream().get_stream(streams::INBOUND).await.unwrap();
        let Ok(mut consumer) = stream
            .get_consumer::<switchboard_bus::async_nats::jetstream::consumer::pull::Config>("router-default")
            .await
        else {
            return false;
        };
        let info = consumer.info().await.unwrap();
        info.delivered.stream_sequence == 2 && info.num_pending == 0 && info.num_ack_pending == 0
    })
    .await;
    // The replayed group offered both; their redeliveries were recognised, not threaded again.
    let all = deliveries(&t).await;
    assert_eq!(all.len(), 2, "one offer each and nothing more: {all:?}");
    let conversations: std::collections::BTreeSet<_> = offers(&t).await.into_iter().map(|(c, _)| c).collect();
    let journaled: std::collections::BTreeSet<_> = entries
        .iter()
        .map(|e| match e {
            switchboard_router::Entry::Inbound { new_conversation, .. } => *new_conversation,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(conversations, journaled, "the offers are for the journaled conversations");
    assert_eq!(journal.read_after(0).await.unwrap().len(), 1, "nothing journaled again");
    router.stop().await;
}

#[tokio::test]
async fn an_envelope_on_another_channels_subject_is_a_dead_letter_and_routes_nothing() {
    use switchboard_bus::{InboundOutcome, outcomes};
    let t = TestBus::start().await;
    let router = start_router(&t, "r1").await;
    // An adapter allowed to publish only on sb.in.pigeon speaks for a webhook customer.
    let spoofed = envelope("webhook", "spoof-1", "cust-1", "send the refund to my other account");
    t.bus.publish(&subjects::inbound("pigeon"), &spoofed, "pigeon:spoof-1").await.unwrap();
    // The real customer on their own channel, after it: routed as usual.
    say(&t, "p1", "cust-1", "where is my order?").await;
    wait_for("the real message offered", WAIT, || async { offers(&t).await.len() == 1 }).await;
    wait_for("the spoofed message dead-lettered", WAIT, || async {
        !t.dead_letters("router-default").await.is_empty()
    })
    .await;
    let dead = t.dead_letters("router-default").await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].0.get("Sb-Dlq-Reason").map(|v| v.to_string()).unwrap_or_default();
    assert!(reason.contains("channel mismatch"), "reason: {reason}");
    // The spoofed text is in no conversation and reached no agent.
    let (c, history) = offers(&t).await.remove(0);
    assert_eq!(history, ["where is my order?"]);
    let r = record(&t, c).await.expect("record");
    assert!(r.history.iter().all(|h| !h.text.contains("refund")), "{:?}", r.history);
    assert_eq!(outcomes::count("pigeon", InboundOutcome::DeadLetter), 1);
    assert!(outcomes::count("webhook", InboundOutcome::Routed) >= 1);
    router.stop().await;
}

#[tokio::test]
async fn a_command_with_an_unknown_field_is_a_dead_letter_naming_it_and_changes_nothing() {
    let t = TestBus::start().await;
    let router = start_router(&t, "r1").await;
    say(&t, "p1", "cust-1", "where is my order?").await;
    wait_for("the offer", WAIT, || async { offers(&t).await.len() == 1 }).await;
    let (c, _) = offers(&t).await.remove(0);
    command(&t, c, CommandAction::Accept).await;
    wait_for("the assignment", WAIT, || async { record(&t, c).await.is_some_and(|r| r.state == "assigned") }).await;

    // `resolve` has no fields: command.v1.json forbids `reason` there.
    let id = Uuid::now_v7();
    let raw = serde_json::json!({
        "id": id, "agent_id": "alice", "conversation_id": c, "issued_at": chrono::Utc::now(),
        "action": { "type": "resolve", "reason": "spam" }
    });
    let mut headers = switchboard_bus::async_nats::HeaderMap::new();
    headers.insert(switchboard_core::contract::headers::SCHEMA, AgentCommand::SCHEMA);
    t.bus.publish_raw(subjects::AGENT_IN, headers, raw.to_string().into(), &id.to_string()).await.unwrap();
    wait_for("the command dead-lettered", WAIT, || async { !t.dead_letters("router-default").await.is_empty() }).await;
    let dead = t.dead_letters("router-default").await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0].0.get("Sb-Dlq-Reason").map(|v| v.to_string()).unwrap_or_default();
    assert!(reason.contains("`reason`"), "the reason names the field: {reason}");
    let r = record(&t, c).await.expect("record");
    assert_eq!(r.state, "assigned", "the conversation was not resolved");
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customers_quick_messages_are_journaled_in_the_order_they_were_written() {
    let t = TestBus::start().await;
    // Stored before the router starts, so its consumer finds all of them at once and hands them
    // to many handlers together, the way a reconnecting web chat's outbox arrives.
    let written: Vec<String> = (1..=60).map(|i| format!("message {i:02}")).collect();
    for (i, text) in written.iter().enumerate() {
        say(&t, &format!("burst-{i}"), "cust-burst", text).await;
    }
    let router = start_router(&t, "r1").await;
    wait_for("every message recorded", WAIT, || async {
        match offers(&t).await.first() {
            Some((c, _)) => record(&t, *c).await.is_some_and(|r| r.history.len() == written.len()),
            None => false,
        }
    })
    .await;
    let (c, _) = offers(&t).await.remove(0);
    let history: Vec<String> = record(&t, c).await.unwrap().history.into_iter().map(|h| h.text).collect();
    assert_eq!(history, written, "in the order the customer wrote");
    router.stop().await;
}

#[tokio::test]
async fn a_customer_who_writes_while_no_router_runs_is_measured_from_when_they_wrote() {
    let t = TestBus::start().await;
    let written = chrono::Utc::now().timestamp_millis();
    say(&t, "outage-1", "cust-outage", "is anyone there?").await;
    // The router is down for a while (a deploy, a failover) while the message waits on the bus.
    let outage = Duration::from_millis(1500);
    tokio::time::sleep(outage).await;
    let router = start_router(&t, "r1").await;
    wait_for("the offer", WAIT, || async { !offers(&t).await.is_empty() }).await;
    let (c, _) = offers(&t).await.remove(0);
    let record = record(&t, c).await.unwrap();
    assert!(
        (written - 50..=written + 50).contains(&record.opened_at),
        "the contact starts when the customer wrote ({written}), not when the router took it: {}",
        record.opened_at
    );
    let taken_after = record.offered_at.unwrap_or_default() - record.opened_at;
    assert!(taken_after >= outage.as_millis() as i64, "the outage is part of the wait: {taken_after} ms");
    router.stop().await;
}

/// The journal's agent commands, in journal order: (command id, its `SB_AGENT` sequence), and
/// how many journal messages held at least one.
async fn journaled_commands(t: &TestBus) -> (Vec<(Uuid, Option<u64>)>, usize) {
    let mut journal = t.bus.open_journal(&subjects::router_journal("default")).await.unwrap();
    let mut commands = Vec::new();
    let mut messages = 0;
    for message in journal.read_after(0).await.unwrap() {
        let before = commands.len();
        for entry in switchboard_router::decode_entries(&message.payload).unwrap() {
            if let switchboard_router::Entry::Command { command, stream_sequence, .. } = entry {
                commands.push((command.id, stream_sequence));
            }
        }
        messages += usize::from(commands.len() > before);
    }
    (commands, messages)
}

#[tokio::test]
async fn commands_are_taken_in_stream_order_many_at_once_and_a_new_leader_resumes_after_the_last_journaled() {
    let t = TestBus::start().await;
    let router = start_router(&t, "r1").await;
    for i in 0..20 {
        say(&t, &format!("o{i}"), &format!("cust-{i}"), "help").await;
    }
    wait_for("twenty offers", WAIT, || async { offers(&t).await.len() == 20 }).await;
    let conversations: Vec<Uuid> = offers(&t).await.into_iter().map(|(c, _)| c).collect();
    router.stop().await;

    // Written while no router runs: for each conversation an accept and then the reply, which
    // would be refused ("not assigned") if it overtook its accept.
    for c in &conversations {
        command(&t, *c, CommandAction::Accept).await;
        command(&t, *c, CommandAction::reply("on its way")).await;
    }
    let router = start_router(&t, "r2").await;
    wait_for("twenty replies on the customers' channel", WAIT, || async {
        t.stored(streams::OUTBOUND, &subjects::outbound("webhook")).await.len() == 20
    })
    .await;
    let (journaled, messages) = journaled_commands(&t).await;
    assert_eq!(journaled.len(), 40, "every command journaled once");
    let sequences: Vec<u64> = journaled.iter().map(|(_, s)| s.expect("a journaled command has its sequence")).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "journaled in stream order: {sequences:?}");
    assert!(messages < 40, "commands waiting together are journaled together ({messages} journal messages)");

    // A crash, then one more command: the next leader reads only that one.
    router.kill();
    let router = start_router(&t, "r3").await;
    command(&t, conversations[0], CommandAction::Resolve).await;
    wait_for("the resolve applied", WAIT, || async {
        record(&t, conversations[0]).await.is_some_and(|r| r.state == "resolved")
    })
    .await;
    let (journaled, _) = journaled_commands(&t).await;
    assert_eq!(journaled.len(), 41, "nothing read before the crash was taken again");
    let replies = t.stored(streams::OUTBOUND, &subjects::outbound("webhook")).await;
    let replies = replies.iter().filter(|(_, body)| String::from_utf8_lossy(body).contains("on its way")).count();
    assert_eq!(replies, 20, "each reply went once");
    router.stop().await;
}
