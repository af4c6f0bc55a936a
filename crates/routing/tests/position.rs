//! A waiting conversation's place in line and expected wait (`docs/queue.md`): counted among the
//! conversations the same agents could take, moving as the queue moves, honest when nobody is
//! online, naming the opening time when the team is closed.

mod sim;

use sim::Sim;
use switchboard_core::AgentStatus;
use switchboard_routing::QueueStatus;

/// Support and sales, one agent each with room for one chat; `dana` works billing in support.
const TWO_TEAMS: &str = r#"
default_team = "support"

[queue_notice]
default_handle_secs = 600

[teams.support]
offer_timeout_secs = 0

[teams.sales]
offer_timeout_secs = 0

[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 1 }
status = "online"

[[agents]]
id = "bob"
teams = ["sales"]
tiers = ["L1"]
capacity = { webchat = 1 }
status = "online"

[[agents]]
id = "dana"
teams = ["support"]
tiers = ["L1"]
skills = ["billing:3"]
capacity = { webchat = 1 }
status = "offline"

[[rules]]
name = "sales"
when = 'text.contains("buy")'
team = "sales"

[[rules]]
name = "billing"
when = 'text.contains("invoice")'
skills = ["billing:3"]
"#;

fn status(s: &Sim, conv: &str) -> QueueStatus {
    s.engine.queue_status(s.id(conv)).unwrap_or_else(|| panic!("{conv} is not waiting"))
}

/// Every waiting conversation's status from the one-pass computation equals its own.
fn all_agree(s: &Sim) {
    let all = s.engine.queue_statuses();
    assert_eq!(all.len(), s.engine.queued());
    for st in all {
        assert_eq!(Some(&st), s.engine.queue_status(st.conversation).as_ref());
    }
}

#[test]
fn only_conversations_the_same_agents_could_take_count_ahead() {
    let mut s = Sim::new(TWO_TEAMS);
    s.msg(0, "u1", "webchat", "hi"); // c1 → alice
    s.msg(1, "u2", "webchat", "I want to buy"); // c2 → bob
    s.msg(2, "u3", "webchat", "hi"); // c3 waits for support
    s.msg(3, "u4", "webchat", "buy more"); // c4 waits for sales
    s.msg(4, "u5", "webchat", "hi"); // c5 waits for support
    s.msg(5, "u6", "webchat", "my invoice"); // c6 needs billing: only dana (offline)
    assert_eq!(s.where_is("c5"), "queued");
    // c4 (sales) arrived before c5 but only bob can take it: not ahead of c5.
    assert_eq!(status(&s, "c3").position, 1);
    assert_eq!(status(&s, "c4").position, 1);
    assert_eq!(status(&s, "c5").position, 2);
    // dana could take c3 and c5 as well as c6: they are ahead of c6; alice could not take c6,
    // but she does not count for it: c6's agents are dana alone.
    assert_eq!(status(&s, "c6").position, 3);
    all_agree(&s);
}

#[test]
fn the_place_moves_as_the_queue_moves_and_the_estimate_follows() {
    let mut s = Sim::new(TWO_TEAMS);
    s.msg(0, "u1", "webchat", "hi");
    s.msg(1, "u2", "webchat", "hi");
    s.msg(2, "u3", "webchat", "hi");
    // One slot (alice's), no handle time measured yet: 600 s a place.
    let c3 = status(&s, "c3");
    assert_eq!((c3.position, c3.agents_online, c3.estimate_ms), (2, 1, Some(1_200_000)));
    // Alice resolves c1 after 100 s and takes c2: c3 is next, and handle times are measured.
    assert_eq!(s.resolve(100, "alice", "c1"), ["resolved c1 alice", "assigned c2 alice"]);
    let c3 = status(&s, "c3");
    assert_eq!((c3.position, c3.estimate_ms), (1, Some(100_000)));
    all_agree(&s);
    // Another agent comes online and takes it.
    s.online(101, "dana");
    assert_eq!(s.where_is("c3"), "assigned dana");
    assert_eq!(s.engine.queue_status(s.id("c3")), None, "an assigned conversation has no place");
}

#[test]
fn with_nobody_online_there_is_no_estimate() {
    let mut s = Sim::new(TWO_TEAMS);
    s.msg(0, "u1", "webchat", "hi");
    s.msg(1, "u2", "webchat", "hi");
    s.status(2, "alice", AgentStatus::Offline);
    let c2 = status(&s, "c2");
    assert_eq!((c2.position, c2.agents_online, c2.estimate_ms), (1, 0, None));
    assert_eq!(c2.opens_at, None, "a team without hours is never closed");
    all_agree(&s);
}

#[test]
fn a_closed_team_names_when_it_opens() {
    let toml = r#"
default_team = "support"
[teams.support]
offer_timeout_secs = 0
business_hours = { timezone = "Europe/Moscow", weekly = { mon = ["09:00-18:00"], tue = ["09:00-18:00"], wed = ["09:00-18:00"], thu = ["09:00-18:00"], fri = ["09:00-18:00"] } }
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
"#;
    let mut s = Sim::new(toml);
    // Saturday 2026-11-21 12:00 UTC: Moscow opens on Monday at 09:00 (06:00 UTC).
    let sat = 1_795_262_400;
    s.msg(sat, "u1", "webchat", "hi");
    let c1 = status(&s, "c1");
    assert_eq!((c1.position, c1.agents_online, c1.estimate_ms), (1, 0, None));
    assert_eq!(c1.opens_at, Some((sat + 2 * 86_400 - 6 * 3600) * 1000));
    assert_eq!(c1.opens_at_local.as_deref(), Some("2026-11-23 09:00 MSK"));
}

#[test]
fn a_reserved_conversation_waits_for_its_agent_alone() {
    let mut s = Sim::new(TWO_TEAMS);
    s.msg(0, "u1", "webchat", "hi"); // c1 → alice
    s.msg(1, "u2", "webchat", "hi"); // c2 waits
    s.resolve(10, "alice", "c1"); // alice takes c2
    // u1 comes back: reserved for alice (busy with c2); c3 from u3 waits for the team.
    s.msg(20, "u1", "webchat", "again");
    s.msg(21, "u3", "webchat", "hi");
    let back = s.engine.current_conversation("u1").expect("remembered");
    let st = s.engine.queue_status(back).expect("waiting");
    assert_eq!((st.position, st.agents_online), (1, 1));
    all_agree(&s);
}
