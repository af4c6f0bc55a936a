//! A supervisor's changes (`Input::Supervise`): each op on a waiting, an offered and a held
//! conversation, and each refusal (which changes nothing).

mod sim;

use sim::Sim;
use switchboard_core::{AgentStatus, Priority, SupervisorOp, Tier};
use switchboard_routing::{Input, Snapshot};
use uuid::Uuid;

/// Two L1 agents and an L2 one in support, one L1 agent in billing; each holds one web chat.
const TEAMS: &str = r#"
default_team = "support"
aging_secs_per_point = 10
reopen_window_secs = 3600
l0_timeout_secs = 600

[teams.support]
offer_timeout_secs = 30
sticky_wait_secs = 60
first_response_secs = { P3 = 600 }

[teams.billing]
offer_timeout_secs = 30

[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 1 }
status = "online"

[[agents]]
id = "bob"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 1 }
status = "online"

[[agents]]
id = "dave"
teams = ["support"]
tiers = ["L2"]
capacity = { webchat = 1 }
status = "online"

[[agents]]
id = "carol"
teams = ["billing"]
tiers = ["L1"]
capacity = { webchat = 1 }
status = "online"

[[rules]]
name = "faq"
when = 'text.contains("faq")'
tier = "L0"
auto_reply = "see the FAQ"
"#;

fn transfer(to_agent: Option<&str>, to_team: Option<&str>) -> SupervisorOp {
    SupervisorOp::Transfer { to_agent: to_agent.map(Into::into), to_team: to_team.map(Into::into) }
}

fn escalate(tier: Option<Tier>) -> SupervisorOp {
    SupervisorOp::Escalate { tier }
}

fn priority(p: u8) -> SupervisorOp {
    SupervisorOp::SetPriority { priority: Priority(p) }
}

/// c1 held by alice (offered at 0, accepted at 1), c2 held by bob, c3 waiting behind them.
fn held() -> Sim {
    let mut s = Sim::new(TEAMS);
    assert_eq!(s.msg(0, "u1", "webchat", "hi"), ["opened c1", "queued c1 support L1 p50", "offer c1 alice"]);
    assert_eq!(s.accept(1, "alice", "c1"), ["assigned c1 alice"]);
    assert_eq!(s.msg(2, "u2", "webchat", "hi")[2], "offer c2 bob");
    assert_eq!(s.accept(2, "bob", "c2"), ["assigned c2 bob"]);
    assert_eq!(s.msg(3, "u3", "webchat", "hi"), ["opened c3", "queued c3 support L1 p50"]);
    s
}

/// c1 on offer to alice.
fn offered() -> Sim {
    let mut s = Sim::new(TEAMS);
    assert_eq!(s.msg(0, "u1", "webchat", "hi")[2], "offer c1 alice");
    s
}

/// c1 waiting: every support agent is offline (billing's carol is online).
fn waiting() -> Sim {
    let mut s = Sim::new(TEAMS);
    for a in ["alice", "bob", "dave"] {
        s.status(0, a, AgentStatus::Offline);
    }
    assert_eq!(s.msg(1, "u1", "webchat", "hi"), ["opened c1", "queued c1 support L1 p50"]);
    s
}

fn handle_times(s: &Sim) -> Vec<i64> {
    s.engine.snapshot().handle_times.iter().flatten().copied().collect()
}

fn queue(s: &Sim) -> Vec<String> {
    s.queue_names()
}

#[test]
fn transfer_of_a_held_conversation_lets_the_holder_go_and_the_holder_pulls_new_work() {
    let mut s = held();
    assert_eq!(
        s.supervise(10, "c1", transfer(None, Some("billing"))),
        ["transferred c1 alice -> - billing", "queued c1 billing L1 p50", "offer c1 carol", "offer c3 alice"]
    );
    assert_eq!(s.where_is("c1"), "offered carol");
    // Handle time as for an agent's transfer: alice had it from her offer at 0 to 10 s.
    assert_eq!(handle_times(&s), [10_000]);
    assert_eq!(s.engine.agents().iter().find(|a| a.id == "alice").map(|a| a.load), Some(1), "c3, not c1");
}

#[test]
fn transfer_of_an_offered_conversation_withdraws_the_offer_and_reserves_it_for_the_agent() {
    let mut s = offered();
    assert_eq!(
        s.supervise(5, "c1", transfer(Some("bob"), None)),
        ["withdrawn c1 alice", "transferred c1 - -> bob support", "queued c1 support L1 p50", "offer c1 bob"]
    );
    assert!(handle_times(&s).is_empty(), "an offer is not handling");
    // The withdrawn offer's timer is void: nothing lapses at alice's old deadline.
    assert_eq!(s.tick(30), Vec::<String>::new());
    assert_eq!(s.accept(31, "bob", "c1"), ["assigned c1 bob"]);
    assert_eq!(s.accept(31, "alice", "c1"), ["rejected: no open offer of this conversation to this agent"]);
}

#[test]
fn transfer_of_a_waiting_conversation_moves_it_to_the_team_keeping_its_age() {
    let mut s = waiting();
    assert_eq!(
        s.supervise(5, "c1", transfer(None, Some("billing"))),
        ["transferred c1 - -> - billing", "queued c1 billing L1 p50", "offer c1 carol"]
    );
    let mut s = waiting();
    // Reserved for an offline agent: it waits for alice, then for the team.
    assert_eq!(
        s.supervise(5, "c1", transfer(Some("alice"), None)),
        ["transferred c1 - -> alice support", "queued c1 support L1 p50"]
    );
    assert_eq!(s.engine.queue()[0].waiting_since, 1000, "not sent to the back");
    assert_eq!(s.online(6, "bob"), Vec::<String>::new(), "reserved for alice during the sticky wait");
    assert_eq!(s.online(7, "alice"), ["offer c1 alice"]);
}

#[test]
fn escalation_by_a_supervisor_from_each_state() {
    let mut s = held();
    assert_eq!(
        s.supervise(10, "c1", escalate(None)),
        ["escalated c1 Supervisor L2 support", "queued c1 support L2 p50", "offer c1 dave", "offer c3 alice"]
    );
    assert_eq!(handle_times(&s), [10_000]);

    let mut s = offered();
    assert_eq!(
        s.supervise(5, "c1", escalate(Some(Tier::L2))),
        ["withdrawn c1 alice", "escalated c1 Supervisor L2 support", "queued c1 support L2 p50", "offer c1 dave"]
    );

    let mut s = waiting();
    assert_eq!(
        s.supervise(5, "c1", escalate(Some(Tier::L3))),
        ["escalated c1 Supervisor L3 support", "queued c1 support L3 p50"]
    );
    assert_eq!(s.engine.queue()[0].tier, Tier::L3);
    assert_eq!(s.engine.queue()[0].waiting_since, 1000);
}

#[test]
fn set_priority_reorders_the_queue_keeping_the_waiting_time() {
    let mut s = waiting();
    s.msg(10, "u2", "webchat", "hi");
    s.msg(20, "u3", "webchat", "hi");
    assert_eq!(queue(&s), ["c1", "c2", "c3"]);
    assert_eq!(s.supervise(30, "c3", priority(1)), ["priority c3 p50 -> p1"]);
    assert_eq!(queue(&s), ["c3", "c1", "c2"]);
    let c3 = &s.engine.queue()[0];
    assert_eq!((c3.priority, c3.waiting_since), (Priority(1), 20_000));
    // Back to 50 it is where its age puts it, not at the back behind a newer one.
    s.msg(40, "u4", "webchat", "hi");
    assert_eq!(s.supervise(41, "c3", priority(50)), ["priority c3 p1 -> p50"]);
    assert_eq!(queue(&s), ["c1", "c2", "c3", "c4"]);
    assert_eq!(s.supervise(42, "c2", priority(75)), ["priority c2 p50 -> p75"]);
    assert_eq!(queue(&s), ["c1", "c3", "c4", "c2"]);
    // The engine's order, not only the view's: a freed agent takes the head.
    assert_eq!(s.supervise(43, "c4", priority(10)), ["priority c4 p50 -> p10"]);
    assert_eq!(s.online(44, "bob"), ["offer c4 bob"]);
}

#[test]
fn set_priority_of_an_offered_or_held_conversation_records_it() {
    let mut s = offered();
    assert_eq!(s.supervise(5, "c1", priority(1)), ["priority c1 p50 -> p1"]);
    assert_eq!(s.where_is("c1"), "offered alice");
    assert_eq!(s.engine.explain(s.id("c1")).map(|e| e.priority), Some(Priority(1)));
    let mut s = held();
    assert_eq!(s.supervise(10, "c1", priority(25)), ["priority c1 p50 -> p25"]);
    assert_eq!(s.where_is("c1"), "assigned alice");
}

#[test]
fn resolve_by_a_supervisor_from_each_state() {
    let mut s = held();
    assert_eq!(s.supervise(10, "c1", SupervisorOp::Resolve {}), ["resolved c1 alice", "offer c3 alice"]);
    assert_eq!(handle_times(&s), [10_000]);

    let mut s = offered();
    assert_eq!(s.supervise(5, "c1", SupervisorOp::Resolve {}), ["withdrawn c1 alice", "resolved c1 -"]);
    assert_eq!(s.engine.agents().iter().map(|a| a.load).sum::<u32>(), 0);
    assert_eq!(s.tick(30), Vec::<String>::new(), "the withdrawn offer does not lapse");

    let mut s = waiting();
    assert_eq!(s.supervise(5, "c1", SupervisorOp::Resolve {}), ["resolved c1 -"]);
    assert!(s.engine.queue().is_empty());
    assert_eq!(s.online(6, "alice"), Vec::<String>::new(), "nothing left to offer");
}

#[test]
fn refusals_name_the_reason_and_change_nothing() {
    let mut s = held();
    let before: Snapshot = s.engine.snapshot();
    let cases = [
        (transfer(None, Some("sales")), "unknown team `sales`"),
        (transfer(Some("zed"), None), "unknown agent `zed`"),
        (transfer(None, None), "a transfer needs an agent or a team"),
        (transfer(Some("alice"), Some("billing")), "`alice` already holds the conversation"),
        (escalate(Some(Tier::L1)), "escalation must go to a tier above L1, not L1"),
        (priority(50), "the conversation already has priority 50"),
        (priority(0), "priority must be 1 to 100, not 0"),
    ];
    for (op, reason) in cases {
        assert_eq!(s.supervise(5, "c1", op), [format!("rejected: {reason}")]);
    }
    assert_eq!(s.engine.snapshot(), Snapshot { now: 5000, ..before });

    assert_eq!(
        s.supervise(6, "c1", escalate(Some(Tier::L4))),
        ["escalated c1 Supervisor L4 support", "queued c1 support L4 p50", "offer c3 alice"]
    );
    assert_eq!(s.supervise(7, "c1", escalate(None)), ["rejected: already at the highest tier"]);

    assert_eq!(s.supervise(8, "c2", SupervisorOp::Resolve {}), ["resolved c2 bob"]);
    for op in [SupervisorOp::Resolve {}, priority(1), escalate(None), transfer(None, Some("billing"))] {
        assert_eq!(s.supervise(9, "c2", op), ["rejected: the conversation is already resolved"]);
    }
    let unknown = s.engine.handle(Input::Supervise {
        at: 10_000,
        supervisor: "lead".into(),
        conversation: Uuid::from_u128(999),
        op: SupervisorOp::Resolve {},
        note: None,
    });
    assert_eq!(
        unknown,
        [switchboard_routing::Decision::Rejected {
            conversation: Some(Uuid::from_u128(999)),
            agent: Some("lead".into()),
            reason: "unknown conversation".into()
        }]
    );
}

#[test]
fn the_same_supervised_inputs_give_the_same_state() {
    let run = || {
        let mut s = held();
        s.supervise(10, "c1", transfer(Some("bob"), Some("support")));
        s.supervise(11, "c3", priority(5));
        s.supervise(12, "c2", escalate(None));
        s.tick(200);
        s.engine.snapshot()
    };
    let a = run();
    assert_eq!(a, run());
    let json = serde_json::to_string(&a).expect("serialises");
    let back: Snapshot = serde_json::from_str(&json).expect("loads");
    assert_eq!(back, a);
}

#[test]
fn a_conversation_with_the_bot_goes_to_people_when_a_supervisor_moves_it() {
    let at_l0 = || {
        let mut s = Sim::new(TEAMS);
        assert_eq!(s.msg(0, "u1", "webchat", "faq please"), ["opened c1", "auto-reply c1 Rule: see the FAQ"]);
        assert_eq!(s.where_is("c1"), "bot");
        s
    };
    let mut s = at_l0();
    assert_eq!(
        s.supervise(5, "c1", transfer(None, Some("billing"))),
        ["transferred c1 - -> - billing", "queued c1 billing L1 p50", "offer c1 carol"]
    );
    assert_eq!(s.accept(6, "carol", "c1"), ["assigned c1 carol"]);
    // The bot's wait for an answer is over: its timeout resolves nothing.
    assert_eq!(s.tick(700), Vec::<String>::new());
    assert_eq!(s.where_is("c1"), "assigned carol");

    let mut s = at_l0();
    assert_eq!(
        s.supervise(5, "c1", escalate(None)),
        ["escalated c1 Supervisor L1 support", "queued c1 support L1 p50", "offer c1 alice"]
    );
    let mut s = at_l0();
    assert_eq!(s.supervise(5, "c1", priority(1)), ["priority c1 p50 -> p1"]);
    assert_eq!(s.where_is("c1"), "bot");
    assert_eq!(s.supervise(6, "c1", SupervisorOp::Resolve {}), ["resolved c1 -"]);
}
