//! Routing groups: who owns which message, conversation, team and agent, and what a group's
//! engine sees of the configuration.

use std::collections::BTreeMap;

use switchboard_routing::groups::DEFAULT_GROUP;
use switchboard_routing::{Engine, Layout, MessageInfo, RoutingConfig};
use uuid::Uuid;

fn config(toml_text: &str) -> RoutingConfig {
    toml::from_str(toml_text).expect("valid TOML")
}

const TWO_GROUPS: &str = r#"
default_team = "support"
timezone = "UTC"
[teams.support]
[teams.billing]
[teams.eu-support]
[[agents]]
id = "ann"
teams = ["support", "billing"]
tiers = ["L1"]
[[agents]]
id = "eve"
teams = ["eu-support"]
tiers = ["L1"]
[[rules]]
name = "invoices"
when = 'text.contains("invoice")'
team = "billing"
[[rules]]
name = "eu-urgent"
when = 'text.contains("urgent")'
team = "eu-support"
priority = "P1"
[[rules]]
name = "vip"
when = "customer.vip"
priority = "P2"
[[groups]]
name = "eu"
teams = ["eu-support"]
select = 'channel == "email" && "email.mailbox" in metadata && metadata["email.mailbox"] == "eu"'
[[groups]]
name = "main"
teams = ["support", "billing"]
"#;

fn message(channel: &str, metadata: &[(&str, &str)]) -> MessageInfo {
    MessageInfo {
        channel: channel.into(),
        text: "hello".into(),
        subject: None,
        tags: Vec::new(),
        language: None,
        vip: false,
        metadata: metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        kb_answers: Vec::new(),
    }
}

#[test]
fn messages_go_to_the_first_group_that_selects_them_and_the_rest_to_the_last() {
    let layout = Layout::new(&config(TWO_GROUPS)).unwrap();
    assert_eq!(layout.names().collect::<Vec<_>>(), ["eu", "main"]);
    assert_eq!(layout.owner_of_message(&message("email", &[("email.mailbox", "eu")]), "c1"), "eu");
    assert_eq!(layout.owner_of_message(&message("email", &[("email.mailbox", "us")]), "c1"), "main");
    assert_eq!(layout.owner_of_message(&message("email", &[]), "c1"), "main");
    assert_eq!(layout.owner_of_message(&message("telegram", &[("email.mailbox", "eu")]), "c1"), "main");
    assert_eq!(layout.catch_all(), "main");
}

#[test]
fn conversation_ids_carry_their_group() {
    let layout = Layout::new(&config(TWO_GROUPS)).unwrap();
    for _ in 0..100 {
        let eu = layout.tag_conversation("eu", Uuid::now_v7());
        let main = layout.tag_conversation("main", Uuid::now_v7());
        assert_eq!(layout.owner_of_conversation(eu), "eu");
        assert_eq!(layout.owner_of_conversation(main), "main");
        assert_eq!(eu.get_version_num(), 7, "still a UUIDv7");
    }
    // An id minted before groups existed belongs to the last group, unless it happens to carry a tag.
    let untagged = (0..10).map(|_| Uuid::now_v7()).filter(|id| layout.owner_of_conversation(*id) == "main").count();
    assert!(untagged >= 9, "untagged ids go to the last group: {untagged} of 10");
}

#[test]
fn teams_and_agents_belong_to_one_group() {
    let layout = Layout::new(&config(TWO_GROUPS)).unwrap();
    assert_eq!(layout.owner_of_team("billing"), Some("main"));
    assert_eq!(layout.owner_of_team("eu-support"), Some("eu"));
    assert_eq!(layout.owner_of_team("nope"), None);
    assert_eq!(layout.owner_of_agent("ann"), Some("main"));
    assert_eq!(layout.owner_of_agent("eve"), Some("eu"));
    assert_eq!(layout.owner_of_agent("bob"), None);
}

#[test]
fn each_group_engine_sees_its_teams_agents_and_rules() {
    let cfg = config(TWO_GROUPS);
    let layout = Layout::new(&cfg).unwrap();
    let eu = layout.config_for(&cfg, "eu").unwrap();
    assert_eq!(eu.teams.keys().collect::<Vec<_>>(), ["eu-support"]);
    assert_eq!(eu.default_team, "eu-support");
    assert_eq!(eu.agents.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["eve"]);
    assert_eq!(eu.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["eu-urgent", "vip"]);
    let main = layout.config_for(&cfg, "main").unwrap();
    assert_eq!(main.default_team, "support");
    assert_eq!(main.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["invoices", "vip"]);
    assert!(layout.config_for(&cfg, "other").is_none());
    for group in [eu, main] {
        Engine::new(&group).expect("each group's configuration is valid for the engine");
    }
}

#[test]
fn without_groups_there_is_one_default_group_and_ids_are_untouched() {
    let cfg = config("default_team = \"support\"\n[teams.support]\n[teams.sales]\n");
    let layout = Layout::new(&cfg).unwrap();
    assert_eq!(layout.names().collect::<Vec<_>>(), [DEFAULT_GROUP]);
    assert!(!layout.divided());
    let id = Uuid::now_v7();
    assert_eq!(layout.tag_conversation(DEFAULT_GROUP, id), id);
    assert_eq!(layout.owner_of_conversation(id), DEFAULT_GROUP);
    assert_eq!(layout.owner_of_message(&message("email", &[]), "c"), DEFAULT_GROUP);
    assert_eq!(layout.config_for(&cfg, DEFAULT_GROUP).unwrap().teams.len(), 2);
}

#[test]
fn bad_groups_are_refused_naming_the_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\"]\nselect = 'channel == \"email\"'\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\n",
            "teams.z",
            "not in any",
        ),
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\", \"z\"]\nselect = 'channel == \"email\"'\n[[groups]]\nname = \"b\"\nteams = [\"y\", \"x\"]\n",
            "groups[1].teams[1]",
            "already in group `a`",
        ),
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\", \"z\"]\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\n",
            "groups[0].select",
            "only the last group",
        ),
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\", \"z\"]\nselect = 'channel == \"email\"'\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\nselect = 'true'\n",
            "groups[1].select",
            "leave `select` out",
        ),
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\", \"z\"]\nselect = 'text.contains(\"eu\")'\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\n",
            "groups[0].select",
            "`text` can change within a thread",
        ),
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\", \"z\"]\nselect = 'channel =='\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\n",
            "groups[0].select",
            "invalid CEL",
        ),
        (
            "[[groups]]\nname = \"A b\"\nteams = [\"x\", \"z\"]\nselect = 'true'\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\n",
            "groups[0].name",
            "a-z",
        ),
        (
            "[[groups]]\nname = \"b\"\nteams = [\"x\", \"z\"]\nselect = 'true'\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\n",
            "groups[1].name",
            "duplicate",
        ),
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\", \"q\"]\nselect = 'true'\n[[groups]]\nname = \"b\"\nteams = [\"y\", \"z\"]\n",
            "groups[0].teams[1]",
            "unknown team `q`",
        ),
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\", \"z\"]\nselect = 'true'\ndefault_team = \"y\"\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\n",
            "groups[0].default_team",
            "not one of the group's teams",
        ),
        (
            "[[groups]]\nname = \"a\"\nteams = [\"x\", \"z\"]\nselect = 'true'\n[[groups]]\nname = \"b\"\nteams = [\"y\"]\n[[agents]]\nid = \"ann\"\nteams = [\"x\", \"y\"]\ntiers = [\"L1\"]\n",
            "agents[0].teams",
            "teams in two groups",
        ),
    ];
    for (groups, key, reason) in cases {
        let text = format!("default_team = \"x\"\n[teams.x]\n[teams.y]\n[teams.z]\n{groups}");
        let e = Layout::new(&config(&text)).expect_err(groups);
        assert_eq!(e.key, *key, "{groups}: {e}");
        assert!(e.reason.contains(reason), "{groups}: {e}");
    }
}
