//! Property tests over random event sequences: capacity, eligibility, one place per
//! conversation, no idle eligible agent while work waits, determinism, snapshot equivalence.

mod sim;

use proptest::prelude::*;
use switchboard_core::AgentStatus;
use switchboard_routing::{ConvState, Decision, Engine, Input, MessageInfo, RoutingConfig, Snapshot, Verdict};
use uuid::Uuid;

const CONFIG: &str = r#"
default_team = "support"
human_phrases = ["human"]
reopen_window_secs = 600
aging_secs_per_point = 5
[teams.support]
strategy = "least_loaded"
offer_timeout_secs = 20
max_missed_offers = 2
sticky_wait_secs = 30
escalation = [ { after_secs = 60, action = { type = "relax_skills", by = 2 } }, { after_secs = 120, action = { type = "add_next_tier" } } ]
[teams.billing]
strategy = "longest_idle"
offer_timeout_secs = 0
escalation = [ { after_secs = 90, action = { type = "overflow", team = "support" } } ]
[[agents]]
id = "a0"
teams = ["support"]
tiers = ["L1"]
skills = ["net:3"]
capacity = { chat = 2, email = 3 }
max_total = 4
status = "online"
[[agents]]
id = "a1"
teams = ["support", "billing"]
tiers = ["L1", "L2"]
skills = ["billing:4", "net:1"]
capacity = { chat = 1 }
max_total = 2
status = "online"
[[agents]]
id = "a2"
teams = ["billing"]
tiers = ["L2"]
skills = ["billing:2"]
max_total = 3
[[agents]]
id = "a3"
teams = ["support"]
tiers = ["L2", "L3"]
skills = ["net:5", "billing:5"]
capacity = { chat = 3 }
max_total = 3
[[rules]]
name = "billing"
when = 'text.contains("invoice")'
team = "billing"
skills = ["billing:3"]
priority = "P2"
[[rules]]
name = "network"
when = 'text.contains("wifi")'
skills = ["net:4"]
[[rules]]
name = "bot"
when = 'text.contains("faq")'
tier = "L0"
auto_reply = "see our FAQ"
"#;

const AGENTS: [&str; 4] = ["a0", "a1", "a2", "a3"];
const TEXTS: [&str; 5] = ["hello", "my invoice", "wifi down", "faq please", "human please"];

/// A step of a random scenario, by small indices; times advance by `dt` seconds.
#[derive(Debug, Clone)]
enum Step {
    Message { customer: u8, chat: bool, text: u8 },
    Status { agent: u8, status: u8 },
    Accept { agent: u8, conv: u8 },
    Decline { agent: u8, conv: u8 },
    Reply { agent: u8, conv: u8 },
    Resolve { agent: u8, conv: u8 },
    Transfer { agent: u8, conv: u8, to: u8 },
    Escalate { agent: u8, conv: u8 },
    Tick,
}

fn step() -> impl Strategy<Value = (u16, Step)> {
    let s = prop_oneof![
        4 => (0u8..6, any::<bool>(), 0u8..5).prop_map(|(customer, chat, text)| Step::Message { customer, chat, text }),
        2 => (0u8..4, 0u8..3).prop_map(|(agent, status)| Step::Status { agent, status }),
        3 => (0u8..4, 0u8..12).prop_map(|(agent, conv)| Step::Accept { agent, conv }),
        1 => (0u8..4, 0u8..12).prop_map(|(agent, conv)| Step::Decline { agent, conv }),
        2 => (0u8..4, 0u8..12).prop_map(|(agent, conv)| Step::Reply { agent, conv }),
        3 => (0u8..4, 0u8..12).prop_map(|(agent, conv)| Step::Resolve { agent, conv }),
        1 => (0u8..4, 0u8..12, 0u8..6).prop_map(|(agent, conv, to)| Step::Transfer { agent, conv, to }),
        1 => (0u8..4, 0u8..12).prop_map(|(agent, conv)| Step::Escalate { agent, conv }),
        2 => Just(Step::Tick),
    ];
    (0u16..90, s)
}

/// Turns steps into inputs; conversation indices refer to ids handed out so far.
fn inputs(steps: &[(u16, Step)]) -> Vec<Input> {
    let mut now = 1_700_000_000_000i64;
    let mut next = 1u128;
    let conv = |i: u8, next: u128| Uuid::from_u128(1 + u128::from(i) % next.max(1));
    steps
        .iter()
        .map(|(dt, s)| {
            now += i64::from(*dt) * 1000;
            let agent = |a: &u8| AGENTS[*a as usize % 4].to_string();
            match s {
                Step::Message { customer, chat, text } => {
                    next += 1;
                    Input::CustomerMessage {
                        at: now,
                        customer: format!("u{customer}"),
                        new_id: Uuid::from_u128(next - 1),
                        written_at: None,
                        message: MessageInfo {
                            channel: if *chat { "chat" } else { "email" }.into(),
                            text: TEXTS[*text as usize].into(),
                            ..Default::default()
                        },
                    }
                }
                Step::Status { agent: a, status } => Input::AgentStatus {
                    at: now,
                    agent: agent(a),
                    status: [AgentStatus::Online, AgentStatus::Away, AgentStatus::Offline][*status as usize],
                },
                Step::Accept { agent: a, conv: c } => {
                    Input::Accept { at: now, agent: agent(a), conversation: conv(*c, next) }
                }
                Step::Decline { agent: a, conv: c } => {
                    Input::Decline { at: now, agent: agent(a), conversation: conv(*c, next) }
                }
                Step::Reply { agent: a, conv: c } => {
                    Input::AgentReplied { at: now, agent: agent(a), conversation: conv(*c, next) }
                }
                Step::Resolve { agent: a, conv: c } => {
                    Input::Resolve { at: now, agent: agent(a), conversation: conv(*c, next) }
                }
                Step::Transfer { agent: a, conv: c, to } => Input::Transfer {
                    at: now,
                    agent: agent(a),
                    conversation: conv(*c, next),
                    to_agent: (*to < 4).then(|| AGENTS[*to as usize].to_string()),
                    to_team: (*to >= 4).then(|| if *to == 4 { "support" } else { "billing" }.to_string()),
                    note: None,
                },
                Step::Escalate { agent: a, conv: c } => {
                    Input::Escalate { at: now, agent: agent(a), conversation: conv(*c, next), tier: None, note: None }
                }
                Step::Tick => Input::Tick { at: now },
            }
        })
        .collect()
}

fn config() -> RoutingConfig {
    sim::config(CONFIG)
}

/// Checks every invariant on the engine after one input and its decisions.
fn check(engine: &Engine, before: &Snapshot, decisions: &[Decision]) -> Result<(), TestCaseError> {
    let snap = engine.snapshot();
    priority_order(before, &snap, decisions)?;
    // Capacity: never over the total or a channel's cap.
    for a in &snap.agents {
        prop_assert!(a.total <= a.max_total, "{} over total cap: {}/{}", a.id, a.total, a.max_total);
        for (k, load) in a.load.iter().enumerate() {
            prop_assert!(*load <= a.capacity_for(k as u16), "{} over {} cap", a.id, snap.kinds[k]);
        }
    }
    // One place: the load agents carry is exactly the conversations offered to or held by them,
    // and the queues hold exactly the queued conversations.
    let mut held = vec![0u32; snap.agents.len()];
    let mut queued = 0;
    for c in snap.convs.iter().flatten() {
        if let Some(a) = c.holder() {
            held[a as usize] += 1;
        }
        if engine.where_is(c.id).map(|w| w.0) == Some("queued") {
            queued += 1;
            let ix = snap.convs.iter().position(|s| s.as_ref().is_some_and(|q| q.id == c.id)).expect("slot") as u32;
            let in_queue = match c.sticky {
                Some((agent, _)) => snap.reserved.contains(&(agent, c.queue_key, c.seq, ix)),
                None => snap.classes[c.class as usize].queue.contains(&(c.queue_key, c.seq, ix)),
            };
            prop_assert!(in_queue, "queued conversation {} missing from its queue", c.id);
            if c.sticky.is_none() {
                let class = &snap.classes[c.class as usize];
                let mut skills = c.skills.clone();
                skills.sort_unstable();
                prop_assert!(
                    class.team == c.team && class.tiers == c.tiers && class.kind == c.kind && class.skills == skills,
                    "conversation {} waits in a class with other requirements",
                    c.id
                );
            }
        }
    }
    prop_assert_eq!(queued, engine.queued(), "queue entries without a queued conversation");
    for (a, n) in snap.agents.iter().zip(&held) {
        prop_assert_eq!(a.total, *n, "{} load does not match what it holds", a.id);
    }
    // Eligibility at the moment of every offer or assignment.
    for (i, d) in decisions.iter().enumerate() {
        if let Decision::Offer { conversation, agent, .. } | Decision::Assigned { conversation, agent } = d {
            // One input can fire timers spanning minutes: an offer that lapsed or was withdrawn
            // later in the same batch is judged by that, not by the agent's final status.
            let withdrawn = decisions[i..].iter().any(|w| {
                matches!(w, Decision::OfferWithdrawn { conversation: c, agent: a } | Decision::OfferTimedOut { conversation: c, agent: a }
                    if c == conversation && a == agent)
            });
            if withdrawn {
                continue;
            }
            let a = snap.agents.iter().find(|x| x.id == agent).expect("known agent");
            let c = snap.convs.iter().flatten().find(|c| &c.id == conversation).expect("live conversation");
            if matches!(d, Decision::Offer { .. }) {
                prop_assert_eq!(a.status, AgentStatus::Online, "offer to {} who is not online", agent);
            }
            prop_assert!(a.has_tier(c.tiers), "{} lacks the tier of {}", agent, conversation);
            for &(s, min) in &c.skills {
                prop_assert!(a.level(s) >= min, "{} lacks a skill for {}", agent, conversation);
            }
        }
    }
    // Work conservation: nothing waits that an online agent with room could take right now.
    for q in engine.queue() {
        let why = engine.explain(q.conversation).expect("explainable");
        let idle: Vec<_> = why.candidates.iter().filter(|(_, v)| *v == Verdict::Eligible).collect();
        prop_assert!(idle.is_empty(), "{} waits while {:?} could take it", q.conversation, idle);
    }
    Ok(())
}

/// Nothing ahead in the queue was passed over: when agent A got conversation C, no conversation
/// that waited through the whole input, ranked ahead of C (priority with aging, then age) and that
/// A could take (same channel kind, so A had room for it) is still waiting.
fn priority_order(before: &Snapshot, after: &Snapshot, decisions: &[Decision]) -> Result<(), TestCaseError> {
    for d in decisions {
        let (Decision::Offer { conversation, agent, .. } | Decision::Assigned { conversation, agent }) = d else {
            continue;
        };
        let a_ix = after.agents.iter().position(|x| x.id == agent).expect("known agent") as u32;
        let a = &after.agents[a_ix as usize];
        let c = after.convs.iter().flatten().find(|c| &c.id == conversation).expect("live conversation");
        for (slot, q) in after.convs.iter().enumerate() {
            let Some(q) = q else { continue };
            let was = before.convs.get(slot).and_then(Option::as_ref).filter(|p| p.id == q.id);
            let waited_through = was.is_some_and(|p| {
                p.state == ConvState::Queued && p.epoch == q.epoch && p.sticky.is_none() && p.team == q.team
            });
            if q.state != ConvState::Queued || !waited_through || q.sticky.is_some() || q.kind != c.kind {
                continue;
            }
            let could = a.status == AgentStatus::Online
                && a.teams.contains(&q.team)
                && a.has_tier(q.tiers)
                && a.meets(&q.skills)
                && !q.declined.contains(&a_ix);
            prop_assert!(
                !(could && (q.queue_key, q.seq) < (c.queue_key, c.seq)),
                "{} got {} while {} (ahead in the queue) waited",
                agent,
                conversation,
                q.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_input(steps in proptest::collection::vec(step(), 1..60)) {
        let mut engine = Engine::new(&config()).expect("valid config");
        for input in inputs(&steps) {
            let before = engine.snapshot();
            let decisions = engine.handle(input);
            check(&engine, &before, &decisions)?;
        }
    }

    #[test]
    fn same_inputs_same_decisions_and_snapshots_continue_identically(
        steps in proptest::collection::vec(step(), 2..60),
        cut in 0usize..60,
    ) {
        let inputs = inputs(&steps);
        let cut = cut % inputs.len();
        let mut a = Engine::new(&config()).expect("valid config");
        let mut b = Engine::new(&config()).expect("valid config");
        for input in &inputs[..cut] {
            prop_assert_eq!(a.handle(input.clone()), b.handle(input.clone()));
        }
        let json = serde_json::to_string(&b.snapshot()).expect("serialisable");
        let mut c = Engine::restore(&config(), serde_json::from_str(&json).expect("parses")).expect("restores");
        for input in &inputs[cut..] {
            let expected = a.handle(input.clone());
            prop_assert_eq!(&expected, &b.handle(input.clone()));
            prop_assert_eq!(&expected, &c.handle(input.clone()));
        }
        prop_assert_eq!(a.snapshot(), c.snapshot());
    }
}
