//! Scenario tests: events in, decisions out, for every routing rule of the design and for the
//! failures users report in open-source helpdesks (each must be impossible here).

mod sim;

use sim::Sim;
use switchboard_core::AgentStatus;
use switchboard_routing::{Engine, Verdict};

/// Two L1 generalists and one L2 billing specialist, direct assignment, least loaded.
const BASIC: &str = r#"
default_team = "support"
human_phrases = ["human", "оператор", "agent"]

[teams.support]
strategy = "least_loaded"
offer_timeout_secs = 0
first_response_secs = { P3 = 600 }

[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 2 }
status = "online"

[[agents]]
id = "bob"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 2 }
status = "online"

[[agents]]
id = "carol"
teams = ["support"]
tiers = ["L2"]
skills = ["billing:4"]
status = "online"

[[rules]]
name = "billing"
when = 'text.contains("invoice")'
skills = ["billing:3"]
tier = "L2"
priority = "P2"
"#;

#[test]
fn least_loaded_spreads_and_never_exceeds_capacity() {
    let mut s = Sim::new(BASIC);
    assert_eq!(s.msg(0, "u1", "webchat", "hi"), ["opened c1", "queued c1 support L1 p50", "assigned c1 alice"]);
    assert_eq!(s.msg(1, "u2", "webchat", "hi"), ["opened c2", "queued c2 support L1 p50", "assigned c2 bob"]);
    assert_eq!(s.msg(2, "u3", "webchat", "hi")[2], "assigned c3 alice");
    assert_eq!(s.msg(3, "u4", "webchat", "hi")[2], "assigned c4 bob");
    // Both generalists are at their webchat capacity of 2: the fifth waits, it is not forced on anyone.
    assert_eq!(s.msg(4, "u5", "webchat", "hi"), ["opened c5", "queued c5 support L1 p50"]);
}

#[test]
fn a_freed_agent_gets_the_oldest_waiting_conversation_on_the_same_event() {
    let mut s = Sim::new(BASIC);
    for (i, u) in ["u1", "u2", "u3", "u4", "u5", "u6"].iter().enumerate() {
        s.msg(i as i64, u, "webchat", "hi");
    }
    assert_eq!(s.where_is("c5"), "queued");
    // No periodic sweep: resolving c1 hands c5 (the oldest waiting) to alice in the same call.
    assert_eq!(s.resolve(100, "alice", "c1"), ["resolved c1 alice", "assigned c5 alice"]);
    assert_eq!(s.where_is("c6"), "queued");
}

#[test]
fn least_loaded_counts_open_conversations_not_history() {
    let mut s = Sim::new(BASIC);
    s.msg(0, "u1", "webchat", "hi"); // alice
    s.msg(1, "u2", "webchat", "hi"); // bob
    s.msg(2, "u3", "webchat", "hi"); // alice
    s.resolve(3, "alice", "c1");
    s.resolve(4, "alice", "c3");
    // Alice handled two and holds none; bob holds one: alice is the least loaded now.
    assert_eq!(s.msg(5, "u4", "webchat", "hi")[2], "assigned c4 alice");
}

#[test]
fn rules_route_by_skill_and_tier() {
    let mut s = Sim::new(BASIC);
    assert_eq!(
        s.msg(0, "u1", "email", "my invoice is wrong"),
        ["opened c1", "queued c1 support L2 p25", "assigned c1 carol"]
    );
    let why = s.engine.explain(s.id("c1")).unwrap();
    assert_eq!(why.matched_rules, ["billing"]);
    assert_eq!(why.skills, ["billing:3"]);
    let verdicts: Vec<_> = why.candidates.iter().map(|(a, v)| (a.as_str(), *v)).collect();
    assert_eq!(verdicts, [("alice", Verdict::WrongTier), ("bob", Verdict::WrongTier), ("carol", Verdict::Eligible)]);
}

#[test]
fn conversations_arriving_while_everyone_is_offline_are_queued_with_their_sla_clock_running() {
    let mut s = Sim::new(BASIC);
    for a in ["alice", "bob", "carol"] {
        s.status(0, a, AgentStatus::Offline);
    }
    assert_eq!(s.msg(10, "u1", "webchat", "anyone?"), ["opened c1", "queued c1 support L1 p50"]);
    assert_eq!(s.engine.queue().len(), 1);
    assert_eq!(s.engine.queue()[0].sla_deadline, (10 + 600) * 1000);
    assert_eq!(s.tick(609), Vec::<String>::new());
    assert_eq!(s.tick(610), Vec::<String>::new(), "the deadline's own millisecond is still within");
    assert_eq!(s.tick(611), ["sla-breached c1"]);
    assert_eq!(s.online(700, "bob"), ["assigned c1 bob"]);
    assert_eq!(s.reply(701, "bob", "c1"), ["first-response c1 late"]);
}

#[test]
fn first_response_within_sla_is_reported_and_the_breach_timer_is_void() {
    let mut s = Sim::new(BASIC);
    s.msg(0, "u1", "webchat", "hi");
    assert_eq!(s.reply(30, "alice", "c1"), ["first-response c1 in-sla"]);
    assert_eq!(s.reply(40, "alice", "c1"), Vec::<String>::new(), "only the first reply counts");
    assert_eq!(s.tick(10_000), Vec::<String>::new(), "no breach after a reply");
}

#[test]
fn a_reply_in_the_deadlines_millisecond_is_within_and_never_also_a_breach() {
    let mut s = Sim::new(BASIC);
    s.msg(0, "u1", "webchat", "hi");
    assert_eq!(s.tick(600), Vec::<String>::new(), "no breach at the deadline itself");
    assert_eq!(s.reply(600, "alice", "c1"), ["first-response c1 in-sla"]);
    assert_eq!(s.tick(10_000), Vec::<String>::new());
}

/// Offers with a timeout, longest idle.
const OFFERS: &str = r#"
default_team = "support"
[teams.support]
strategy = "longest_idle"
offer_timeout_secs = 30
max_missed_offers = 2

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

#[test]
fn an_unanswered_offer_goes_to_the_next_agent_and_repeated_misses_set_the_agent_away() {
    let mut s = Sim::new(OFFERS);
    assert_eq!(s.msg(0, "u1", "webchat", "hi"), ["opened c1", "queued c1 support L1 p50", "offer c1 alice"]);
    assert_eq!(s.tick(30), ["timeout c1 alice", "offer c1 bob"]);
    assert_eq!(s.accept(31, "bob", "c1"), ["assigned c1 bob"]);
    assert_eq!(s.accept(32, "bob", "c1"), Vec::<String>::new(), "a button pressed twice acts once");
    assert_eq!(s.accept(33, "alice", "c1"), ["rejected: no open offer of this conversation to this agent"]);

    // Alice is longest idle again (bob just got one) and lets a second offer lapse: away.
    assert_eq!(s.msg(40, "u2", "webchat", "hi")[2], "offer c2 alice");
    assert_eq!(s.tick(70), ["timeout c2 alice", "status alice Away", "offer c2 bob"]);
    assert_eq!(s.msg(80, "u3", "webchat", "hi")[2], "offer c3 bob", "no offers to an away agent");
}

#[test]
fn an_offer_made_while_catching_up_on_late_timers_gets_its_whole_timeout() {
    let mut s = Sim::new(OFFERS);
    assert_eq!(s.msg(0, "u1", "webchat", "hi")[2], "offer c1 alice");
    // The next tick comes an hour late: the wall clock jumped, or no router ran meanwhile.
    assert_eq!(s.tick(3600), ["timeout c1 alice", "offer c1 bob"], "bob's offer does not lapse at once");
    assert_eq!(s.tick(3629), Vec::<String>::new());
    assert_eq!(s.accept(3629, "bob", "c1"), ["assigned c1 bob"]);
}

#[test]
fn a_declined_offer_goes_to_someone_else_and_never_back_to_the_decliner() {
    let mut s = Sim::new(OFFERS);
    s.msg(0, "u1", "webchat", "hi");
    assert_eq!(s.decline(5, "alice", "c1"), ["offer c1 bob"]);
    assert_eq!(s.decline(6, "bob", "c1"), Vec::<String>::new());
    assert_eq!(s.where_is("c1"), "queued");
}

#[test]
fn an_agent_going_offline_loses_pending_offers_to_others() {
    let mut s = Sim::new(OFFERS);
    s.msg(0, "u1", "webchat", "hi");
    assert_eq!(s.status(1, "alice", AgentStatus::Offline), ["withdrawn c1 alice", "offer c1 bob"]);
}

#[test]
fn higher_priority_goes_first_and_aging_prevents_starvation() {
    let toml = r#"
default_team = "support"
aging_secs_per_point = 10
[teams.support]
offer_timeout_secs = 0
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 1 }
[[rules]]
name = "urgent"
when = 'text.contains("down")'
priority = "P1"
[[rules]]
name = "low"
when = 'text.contains("later")'
priority = "P4"
"#;
    let mut s = Sim::new(toml);
    s.msg(0, "u1", "webchat", "question for later"); // p75, waiting since 0 => key 750
    s.msg(100, "u2", "webchat", "normal question"); // p50 at 100 => key 600
    s.msg(200, "u3", "webchat", "site is down"); // p1 at 200 => key 210
    let order: Vec<_> = s.engine.queue().iter().map(|q| q.priority.0).collect();
    assert_eq!(order, [1, 50, 75]);
    assert_eq!(s.online(201, "alice"), ["assigned c3 alice"]);
    // A P1 arriving now (key 300+10=...): the P4 from t=0 has aged past any new P3 arrival.
    s.msg(700, "u4", "webchat", "another normal one"); // p50 at 700 => key 1200
    s.resolve(701, "alice", "c3");
    assert_eq!(s.where_is("c2"), "assigned alice");
    s.resolve(702, "alice", "c2");
    assert_eq!(s.where_is("c1"), "assigned alice", "the old P4 goes before the newer P3");
}

/// An L0 bot with a hand-off to humans.
const BOT: &str = r#"
default_team = "support"
human_phrases = ["human", "оператор"]
[teams.support]
offer_timeout_secs = 0
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "online"
[[rules]]
name = "faq-hours"
when = 'text.contains("hours")'
tier = "L0"
auto_reply = "We are open 9-18."
"#;

#[test]
fn the_bot_answers_and_a_second_message_goes_to_a_human_with_context() {
    let mut s = Sim::new(BOT);
    assert_eq!(
        s.msg(0, "u1", "telegram", "what are your hours?"),
        ["opened c1", "auto-reply c1 Rule: We are open 9-18."]
    );
    assert_eq!(s.where_is("c1"), "bot");
    assert_eq!(
        s.msg(5, "u1", "telegram", "that does not help"),
        ["escalated c1 HumanRequested L1 support", "queued c1 support L1 p50", "assigned c1 alice"]
    );
}

#[test]
fn asking_for_a_human_skips_the_bot() {
    let mut s = Sim::new(BOT);
    assert_eq!(
        s.msg(0, "u1", "telegram", "Оператор! hours please"),
        ["opened c1", "auto-reply c1 Rule: We are open 9-18.", "queued c1 support L1 p50", "assigned c1 alice"]
    );
}

/// Sticky routing and reopening.
const STICKY: &str = r#"
default_team = "support"
reopen_window_secs = 3600
[teams.support]
offer_timeout_secs = 0
sticky_wait_secs = 60
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

#[test]
fn a_message_within_the_reopen_window_reopens_and_goes_back_to_the_previous_agent() {
    let mut s = Sim::new(STICKY);
    s.msg(0, "u1", "webchat", "hi");
    assert_eq!(s.where_is("c1"), "assigned alice");
    s.msg(1, "u2", "webchat", "hi"); // bob
    s.resolve(10, "alice", "c1");
    s.msg(11, "u3", "webchat", "hi"); // alice is longest idle
    assert_eq!(
        s.msg(20, "u1", "webchat", "it broke again"),
        ["reopened c1", "queued c1 support L1 p50", "assigned c1 alice"]
    );
}

#[test]
fn a_returning_customer_waits_briefly_for_a_busy_previous_agent_then_anyone() {
    let mut s = Sim::new(STICKY);
    s.msg(0, "u1", "webchat", "hi"); // alice
    s.resolve(10, "alice", "c1");
    // Fill alice (default capacity 3) while bob is away.
    s.status(10, "bob", AgentStatus::Away);
    for u in ["a", "b", "c"] {
        s.msg(11, u, "webchat", "hi");
    }
    assert_eq!(s.msg(20, "u1", "webchat", "again"), ["reopened c1", "queued c1 support L1 p50"]);
    assert_eq!(s.online(30, "bob"), Vec::<String>::new(), "bob may not take it while it is reserved");
    assert_eq!(s.tick(79), Vec::<String>::new(), "reserved for alice during the sticky wait");
    assert_eq!(s.tick(80), ["assigned c1 bob"], "then any agent; bob had room");
}

#[test]
fn a_reopened_conversation_is_never_sent_back_to_an_offline_previous_agent() {
    let mut s = Sim::new(STICKY);
    s.msg(0, "u1", "webchat", "hi"); // alice
    s.resolve(10, "alice", "c1");
    s.status(11, "alice", AgentStatus::Offline);
    assert_eq!(
        s.msg(20, "u1", "webchat", "again"),
        ["reopened c1", "queued c1 support L1 p50", "assigned c1 bob"],
        "no wait for an agent who is not working"
    );
}

#[test]
fn after_the_reopen_window_a_new_conversation_remembers_the_last_agent() {
    let mut s = Sim::new(STICKY);
    s.msg(0, "u1", "webchat", "hi"); // alice
    s.resolve(10, "alice", "c1");
    s.msg(11, "u9", "webchat", "hi"); // bob
    assert_eq!(
        s.msg(4000, "u1", "webchat", "new problem"),
        ["opened c3 repeat", "queued c3 support L1 p50", "assigned c3 alice"]
    );
    assert_eq!(s.where_is("c1"), "gone", "forgotten after the window");
}

/// Escalation steps: relax skills, add the next tier, overflow.
const BULLSEYE: &str = r#"
default_team = "billing"
[teams.billing]
offer_timeout_secs = 0
escalation = [
  { after_secs = 60, action = { type = "relax_skills", by = 1 } },
  { after_secs = 120, action = { type = "add_next_tier" } },
  { after_secs = 180, action = { type = "overflow", team = "general" } },
]
[teams.general]
offer_timeout_secs = 0
[[agents]]
id = "junior"
teams = ["billing"]
tiers = ["L1"]
skills = ["billing:2"]
status = "online"
[[rules]]
name = "billing"
when = 'true'
skills = ["billing:3"]
"#;

#[test]
fn waiting_relaxes_skills_then_adds_a_tier_then_overflows() {
    let mut s = Sim::new(BULLSEYE);
    s.status(0, "junior", AgentStatus::Away);
    assert_eq!(s.msg(0, "u1", "email", "refund"), ["opened c1", "queued c1 billing L1 p50"]);
    assert_eq!(s.tick(60), ["escalated c1 SkillsRelaxed L1 billing", "queued c1 billing L1 p50"]);
    assert_eq!(s.tick(120), ["escalated c1 TierAdded L2 billing", "queued c1 billing L2 p50"]);
    assert_eq!(s.tick(180), ["escalated c1 Overflow L2 general", "queued c1 general L2 p50"]);

    // Without the wait, junior (billing:2) could not take a billing:3 conversation; after the
    // first step it can.
    let mut s = Sim::new(BULLSEYE);
    s.status(0, "junior", AgentStatus::Away);
    s.msg(0, "u1", "email", "refund");
    s.online(10, "junior");
    assert_eq!(s.where_is("c1"), "queued");
    assert_eq!(s.tick(60), ["escalated c1 SkillsRelaxed L1 billing", "queued c1 billing L1 p50", "assigned c1 junior"]);
}

#[test]
fn agents_escalate_and_transfer_with_a_note_and_the_conversation_keeps_its_place() {
    let toml = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 0
[teams.sales]
offer_timeout_secs = 0
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
status = "online"
[[agents]]
id = "sam"
teams = ["sales"]
tiers = ["L1"]
status = "online"
[[agents]]
id = "erin"
teams = ["support"]
tiers = ["L2"]
status = "online"
"#;
    let mut s = Sim::new(toml);
    s.msg(0, "u1", "webchat", "hi");
    assert_eq!(
        s.escalate(10, "alice", "c1"),
        ["escalated c1 Agent L2 support", "queued c1 support L2 p50", "assigned c1 erin"]
    );
    assert_eq!(s.escalate(11, "alice", "c1"), ["rejected: the conversation is not assigned to this agent"]);
    assert_eq!(
        s.transfer(20, "erin", "c1", None, Some("sales")),
        ["transferred c1 erin -> - sales", "queued c1 sales L2 p50"],
        "sales has no L2 agent: it waits there, it is not lost"
    );
    s.msg(30, "u2", "webchat", "hi"); // alice
    assert_eq!(
        s.transfer(31, "alice", "c2", Some("sam"), None),
        ["transferred c2 alice -> sam support", "queued c2 support L1 p50", "assigned c2 sam"]
    );
}

#[test]
fn commands_for_unknown_or_foreign_conversations_are_rejected_and_change_nothing() {
    let mut s = Sim::new(BASIC);
    s.msg(0, "u1", "webchat", "hi"); // alice
    let before = s.engine.snapshot();
    assert_eq!(s.resolve(1, "bob", "c1"), ["rejected: the conversation is held by another agent"]);
    assert_eq!(s.reply(1, "bob", "c1"), ["rejected: the conversation is not assigned to this agent"]);
    assert_eq!(s.online(1, "nobody"), ["rejected: unknown agent `nobody`"]);
    let mut after = s.engine.snapshot();
    after.now = before.now;
    assert_eq!(after, before);
    assert_eq!(s.resolve(2, "alice", "c1"), ["resolved c1 alice"]);
    assert_eq!(s.resolve(3, "alice", "c1"), Vec::<String>::new(), "resolving twice acts once");
}

#[test]
fn best_skill_match_and_round_robin() {
    let toml = |strategy: &str| {
        format!(
            r#"
default_team = "t"
[teams.t]
strategy = "{strategy}"
offer_timeout_secs = 0
[[agents]]
id = "a"
teams = ["t"]
tiers = ["L1"]
skills = ["net:2", "lang-ru:2"]
status = "online"
max_total = 100
default_capacity = 100
[[agents]]
id = "b"
teams = ["t"]
tiers = ["L1"]
skills = ["net:5", "lang-ru:4"]
status = "online"
max_total = 100
default_capacity = 100
[[rules]]
name = "net"
when = 'true'
skills = ["net:1", "lang-ru:1"]
"#
        )
    };
    let mut s = Sim::new(&toml("best_skill_match"));
    for i in 0..3 {
        assert_eq!(s.msg(i, &format!("u{i}"), "chat", "x")[2], format!("assigned c{} b", i + 1));
    }
    let mut s = Sim::new(&toml("round_robin"));
    let got: Vec<String> = (0..4).map(|i| s.msg(i, &format!("u{i}"), "chat", "x")[2].clone()).collect();
    assert_eq!(got, ["assigned c1 a", "assigned c2 b", "assigned c3 a", "assigned c4 b"]);
}

#[test]
fn out_of_hours_auto_reply_names_the_next_opening_and_keeps_the_conversation_queued() {
    let toml = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 0
out_of_hours_reply = "We are closed; we answer from {next_open}."
business_hours = { timezone = "UTC", weekly = { mon = ["09:00-18:00"], tue = ["09:00-18:00"], wed = ["09:00-18:00"], thu = ["09:00-18:00"], fri = ["09:00-18:00"] } }
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
"#;
    let mut s = Sim::new(toml);
    // Saturday 2026-11-21 12:00 UTC.
    let sat = 1_763_726_400 + 365 * 86_400;
    let out = s.msg(sat, "u1", "email", "hello");
    assert_eq!(out[0], "opened c1");
    assert!(
        out[1].starts_with("auto-reply c1 OutOfHours: We are closed; we answer from 2026-11-23T09:00:00"),
        "{out:?}"
    );
    assert_eq!(out[2], "queued c1 support L1 p50");
}

#[test]
fn bad_configuration_is_refused_naming_the_key() {
    let check = |toml: &str, key: &str, reason: &str| {
        let err = Engine::new(&sim::config(toml)).err().unwrap_or_else(|| panic!("accepted: {toml}"));
        assert_eq!(err.key, key, "{err}");
        assert!(err.reason.contains(reason), "{err}");
    };
    let team = "default_team = \"t\"\n[teams.t]\n";
    check(
        &format!("{team}[[agents]]\nid=\"a\"\nteams=[\"t\"]\ntiers=[\"L1\"]\nskills=[\"billing\"]\n"),
        "agents[0].skills",
        "name:level",
    );
    check(
        &format!("{team}[[agents]]\nid=\"a\"\nteams=[\"t\"]\ntiers=[\"L1\"]\nskills=[\"billing:7\"]\n"),
        "agents[0].skills",
        "1-5",
    );
    check(
        &format!(
            "{team}[[agents]]\nid=\"a\"\nteams=[\"t\"]\ntiers=[\"L1\"]\n[[agents]]\nid=\"a\"\nteams=[\"t\"]\ntiers=[\"L1\"]\n"
        ),
        "agents[1].id",
        "duplicate",
    );
    check(&format!("{team}[[agents]]\nid=\"a\"\nteams=[\"x\"]\ntiers=[\"L1\"]\n"), "agents[0].teams", "unknown team");
    check(
        &format!("{team}[[agents]]\nid=\"a\"\nteams=[\"t\"]\ntiers=[\"L1\"]\nmax_total=0\n"),
        "agents[0].max_total",
        "greater than 0",
    );
    check(&format!("{team}[[rules]]\nname=\"r\"\nwhen=\"text.contains(\"\n"), "rules[0]", "`r`");
    check(&format!("{team}[[rules]]\nname=\"r\"\nwhen=\"true\"\npriority=\"P9\"\n"), "rules[0]", "`r`");
    check("default_team = \"nope\"\n[teams.t]\n", "default_team", "not a defined team");
    check("default_team = \"t\"\n", "teams", "at least one team");
    assert!(
        toml::from_str::<switchboard_routing::RoutingConfig>(&format!(
            "{team}[[agents]]\nid=\"a\"\nteams=[\"t\"]\ntiers=[\"L1\"]\nmax_total=-1\n"
        ))
        .is_err(),
        "negative capacity does not even parse"
    );
}

#[test]
fn snapshot_and_restore_continue_exactly() {
    let cfg = sim::config(OFFERS);
    let mut a = Sim::new(OFFERS);
    let mut b = Sim::new(OFFERS);
    for s in [&mut a, &mut b] {
        s.msg(0, "u1", "webchat", "hi");
        s.msg(1, "u2", "webchat", "hi");
    }
    let snap = a.engine.snapshot();
    let json = serde_json::to_string(&snap).unwrap();
    b.engine = Engine::restore(&cfg, serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(b.engine.snapshot(), snap);
    // The same inputs after the restore give the same decisions and the same state.
    let (ta, tb) = (a.tick(30), b.tick(30));
    assert_eq!(ta, tb);
    assert_eq!(ta[0], "timeout c1 alice", "the restored engine kept the offer timers");
    assert_eq!(a.accept(40, "bob", "c2"), b.accept(40, "bob", "c2"));
    assert_eq!(a.msg(50, "u3", "email", "x"), b.msg(50, "u3", "email", "x"));
    assert_eq!(a.tick(500), b.tick(500));
    assert_eq!(a.engine.snapshot(), b.engine.snapshot());
}

#[test]
fn the_documented_example_configuration_compiles_and_routes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/routing.md"))
        .expect("docs/routing.md");
    let toml = doc.split("```toml").nth(1).and_then(|s| s.split("```").next()).expect("a toml block");
    let mut s = Sim::new(toml);
    let mut vip = switchboard_routing::MessageInfo {
        channel: "webchat".into(),
        text: "my invoice is wrong".into(),
        ..Default::default()
    };
    vip.tags = vec!["vip".into()];
    let out = s.msg_with(0, "u1", vip);
    assert!(out.iter().any(|d| d.starts_with("queued c1 support L2")), "{out:?}");
}
