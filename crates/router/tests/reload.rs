//! A routing configuration reloaded while running: the leader journals it as one `configure`
//! entry, routes by it from that entry on, a standby that takes over routes by it too, and a
//! router replaying the journal from the start switches at the same entry.

use std::sync::Arc;

use switchboard_adapter::testkit::{TestBus, envelope, wait_for};
use switchboard_core::AgentDelivery;
use switchboard_core::contract::{buckets, streams, subjects};
use switchboard_router::{Effect, Router, RouterConfig, decode_entries};
use switchboard_routing::RoutingConfig;
use tokio::sync::watch;
use uuid::Uuid;

mod support;
use support::{Proc, WAIT};

const BEFORE: &str = r#"
default_team = "support"
[teams.support]
[teams.billing]
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
default_capacity = 50
max_total = 50
status = "online"
[[agents]]
id = "bob"
teams = ["billing"]
tiers = ["L1"]
default_capacity = 50
max_total = 50
status = "online"
"#;

/// The same, plus a rule sending refunds to billing.
fn after() -> String {
    format!("{BEFORE}\n[[rules]]\nname = \"refunds\"\nwhen = 'text.contains(\"refund\")'\nteam = \"billing\"\n")
}

fn routing(toml_text: &str) -> RoutingConfig {
    toml::from_str(toml_text).expect("routing toml")
}

fn config(routing_toml: &str) -> RouterConfig {
    support::config(routing_toml, &["alice", "bob"])
}

/// A router and the sender of the routing sections it follows.
struct Reloading {
    proc: Proc,
    reload: watch::Sender<Arc<RoutingConfig>>,
}

async fn start_router(t: &TestBus, name: &str) -> Reloading {
    let (reload, updates) = watch::channel(Arc::new(routing(BEFORE)));
    Reloading { proc: support::start_following(t, name, config(BEFORE), updates).await, reload }
}

/// Who each conversation was offered to, in the order offers were made.
fn offered(deliveries: impl IntoIterator<Item = AgentDelivery>) -> Vec<(Uuid, String)> {
    deliveries
        .into_iter()
        .filter_map(|d| match d {
            AgentDelivery::Offer(o) => Some((o.conversation_id, o.agent_id)),
            _ => None,
        })
        .collect()
}

async fn offers(t: &TestBus) -> Vec<(Uuid, String)> {
    let stored = t.stored(streams::AGENT, &subjects::agent_out_filter("webhook")).await;
    offered(stored.iter().map(|(_, p)| serde_json::from_slice::<AgentDelivery>(p).unwrap()))
}

async fn say(t: &TestBus, provider_id: &str, customer: &str, text: &str) {
    let e = envelope("webhook", provider_id, customer, text);
    t.bus.publish(&subjects::inbound("webhook"), &e, &format!("webhook:{provider_id}")).await.unwrap();
}

/// The journal's entries, each with its message's stream sequence.
async fn journal(t: &TestBus) -> Vec<(u64, Vec<switchboard_router::Entry>)> {
    let stream = t.bus.jetstream().get_stream(streams::ROUTER).await.unwrap();
    let info = stream.get_info().await.unwrap();
    let mut out = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await
            && m.subject.as_str() == subjects::router_journal("default")
        {
            out.push((seq, decode_entries(&m.payload).unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn a_reloaded_rule_applies_from_its_journal_entry_on_every_router_of_the_group() {
    let t = TestBus::start().await;
    let leader = start_router(&t, "leader").await;
    wait_for("the leader's lease", WAIT, || async {
        let kv = t.bus.jetstream().get_key_value(buckets::ROUTER).await.unwrap();
        kv.get("lease.router.default").await.unwrap().is_some_and(|v| String::from_utf8_lossy(&v).contains("leader"))
    })
    .await;
    let standby = start_router(&t, "standby").await;

    say(&t, "r1", "cust-1", "a refund please").await;
    wait_for("the first refund offered", WAIT, || async { offers(&t).await.len() == 1 }).await;
    assert_eq!(offers(&t).await[0].1, "alice", "no refund rule yet: support");

    // The operator reloads every process (here: both), the leader journals the section once.
    for p in [&leader, &standby] {
        p.reload.send_replace(Arc::new(routing(&after())));
    }
    wait_for("a configure entry in the journal", WAIT, || async {
        journal(&t).await.iter().flat_map(|(_, e)| e).any(|e| matches!(e, switchboard_router::Entry::Configure { .. }))
    })
    .await;
    say(&t, "r2", "cust-2", "another refund").await;
    wait_for("the second refund offered", WAIT, || async { offers(&t).await.len() == 2 }).await;
    assert_eq!(offers(&t).await[1].1, "bob", "the reloaded rule sends refunds to billing");

    // The leader dies; the standby leads by the same section and journals nothing new.
    leader.proc.kill();
    say(&t, "r3", "cust-3", "refund, third time").await;
    wait_for("the third refund offered", WAIT, || async { offers(&t).await.len() == 3 }).await;
    assert_eq!(offers(&t).await[2].1, "bob", "the standby routes by the reloaded section");
    let entries = journal(&t).await;
    let configures = entries
        .iter()
        .flat_map(|(seq, e)| e.iter().map(move |e| (*seq, e)))
        .filter(|(_, e)| matches!(e, switchboard_router::Entry::Configure { .. }))
        .count();
    assert_eq!(configures, 1, "one reload, one entry");

    // A router replaying the whole journal from the first entry, on the old file, makes the
    // same offers: it switched at the same entry.
    let mut replay = Router::new(config(BEFORE)).unwrap();
    let mut deliveries = Vec::new();
    for (seq, batch) in &entries {
        for effect in replay.apply_batch(*seq, batch) {
            if let Effect::Agent { kind, delivery, .. } = effect
                && kind == "webhook"
            {
                deliveries.push(delivery);
            }
        }
    }
    assert_eq!(offered(deliveries), offers(&t).await, "replay offers alike");
    standby.proc.stop().await;
    drop(leader.reload);
}

#[test]
fn a_section_with_other_teams_or_a_broken_rule_is_refused_before_it_is_journaled() {
    let router = Router::new(config(BEFORE)).unwrap();
    assert!(!router.routes_differently(&routing(BEFORE)));
    assert!(router.routes_differently(&routing(&after())));
    router.check_routing(&routing(&after())).expect("a new rule applies");
    let more_teams = format!("{BEFORE}\n[teams.sales]\n");
    let refused = router.check_routing(&routing(&more_teams)).unwrap_err().to_string();
    assert!(refused.contains("teams") && refused.contains("needs a restart"), "{refused}");
    let broken = format!("{BEFORE}\n[[rules]]\nname = \"x\"\nwhen = 'text.contains('\nteam = \"billing\"\n");
    assert!(router.check_routing(&routing(&broken)).is_err());
}
