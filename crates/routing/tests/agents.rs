//! Agents added and redefined at runtime, and how a restore reconciles them with the file.

mod sim;

use sim::Sim;
use switchboard_routing::Engine;

/// One L1 agent with room for one web chat, and a billing rule so a skill is known.
const ONE: &str = r#"
default_team = "support"

[teams.support]
strategy = "least_loaded"
offer_timeout_secs = 0

[teams.billing]
offer_timeout_secs = 0

[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 1 }
status = "online"

[[rules]]
name = "billing"
when = 'text.contains("invoice")'
skills = ["billing:3"]
"#;

const DAVE: &str = r#"
id = "dave"
teams = ["support"]
tiers = ["L1"]
capacity = { webchat = 2 }
status = "online"
"#;

#[test]
fn an_agent_added_at_runtime_takes_waiting_work_at_once() {
    let mut s = Sim::new(ONE);
    assert_eq!(s.msg(0, "u1", "webchat", "hi")[2], "assigned c1 alice");
    assert_eq!(s.msg(1, "u2", "webchat", "hi").len(), 2, "alice is full: c2 waits");
    assert_eq!(s.define(2, DAVE, true), ["assigned c2 dave"]);
    assert_eq!(s.msg(3, "u3", "webchat", "hi")[2], "assigned c3 dave");
}

#[test]
fn a_redefined_agent_keeps_what_it_holds_and_its_status_when_asked() {
    let mut s = Sim::new(ONE);
    s.define(0, DAVE, true);
    assert_eq!(s.msg(1, "u1", "webchat", "hi")[2], "assigned c1 alice");
    assert_eq!(s.msg(2, "u2", "webchat", "hi")[2], "assigned c2 dave");
    // Dave moves to billing only and goes offline in the definition, but the status is kept.
    let billing_only = DAVE.replace(r#"teams = ["support"]"#, r#"teams = ["billing"]"#).replace("online", "offline");
    assert_eq!(s.define(3, &billing_only, true), Vec::<String>::new());
    assert_eq!(s.where_is("c2"), "assigned dave", "what he holds stays his");
    assert_eq!(s.msg(4, "u3", "webchat", "hi").len(), 2, "no longer in support: c3 waits");
    // Now the definition's status applies: offline, so nothing more for him anywhere.
    assert_eq!(s.define(5, &billing_only, false), Vec::<String>::new());
    assert_eq!(s.where_is("c3"), "queued");
}

#[test]
fn an_invalid_definition_is_rejected_and_changes_nothing() {
    let mut s = Sim::new(ONE);
    s.msg(0, "u1", "webchat", "hi");
    let before = s.engine.snapshot();
    let cases = [
        (DAVE.replace(r#"["support"]"#, r#"["nowhere"]"#), "rejected: invalid agent: teams: unknown team `nowhere`"),
        (
            format!("{DAVE}skills = [\"juggling:2\"]"),
            "rejected: invalid agent: skills: skill `juggling` is used by no rule and no agent of the configuration file",
        ),
        (
            format!("{DAVE}skills = [\"billing:9\"]"),
            "rejected: invalid agent: skills: skill `billing:9`: level must be 1-5",
        ),
        (
            DAVE.replace(r#"tiers = ["L1"]"#, "tiers = []"),
            "rejected: invalid agent: tiers: an agent needs at least one tier",
        ),
    ];
    for (toml, want) in cases {
        assert_eq!(s.define(1, &toml, true), [want]);
        assert_eq!(s.engine.snapshot().agents, before.agents);
    }
}

#[test]
fn a_restore_keeps_runtime_agents_and_applies_the_file_to_its_own() {
    let mut s = Sim::new(ONE);
    s.define(0, DAVE, true);
    s.msg(1, "u1", "webchat", "hi");
    s.msg(2, "u2", "webchat", "hi");
    let snap = s.engine.snapshot();
    // Restored with the same file: identical.
    let same = Engine::restore(&sim::config(ONE), snap.clone()).expect("restore");
    assert_eq!(same.snapshot(), snap);
    // The file now gives alice L2 as well and adds erin; alice keeps her status and load.
    let changed = ONE.replace(r#"tiers = ["L1"]"#, r#"tiers = ["L1", "L2"]"#)
        + "\n[[agents]]\nid = \"erin\"\nteams = [\"billing\"]\ntiers = [\"L1\"]\nstatus = \"online\"\n";
    let mut restored = Engine::restore(&sim::config(&changed), snap.clone()).expect("restore with a changed file");
    let after = restored.snapshot();
    let ids: Vec<&str> = after.agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["alice", "dave", "erin"], "runtime agents keep their place; new file agents are appended");
    assert_eq!(after.agents[0].tiers, 0b110, "the file's definition of alice applies");
    assert_eq!((after.agents[0].status, after.agents[0].total), (snap.agents[0].status, snap.agents[0].total));
    assert_eq!(after.agents[1], snap.agents[1], "dave, added at runtime, is untouched");
    assert!(restored.knows_agent("erin"));
    // The restored engine routes on: alice is full, dave has room.
    let out = restored.handle(switchboard_routing::Input::CustomerMessage {
        at: 10_000,
        customer: "u9".into(),
        new_id: uuid::Uuid::from_u128(99),
        written_at: None,
        message: switchboard_routing::MessageInfo {
            channel: "webchat".into(),
            text: "hi".into(),
            ..Default::default()
        },
    });
    assert!(
        out.iter().any(|d| matches!(d, switchboard_routing::Decision::Assigned { agent, .. } if agent == "dave")),
        "{out:?}"
    );
}
