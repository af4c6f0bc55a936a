//! Scale-out: the teams divided into two routing groups (`chat`: the web chat's team; `main`:
//! everything else), routed by three router processes (`r-both` runs both groups, `r-chat` and
//! `r-main` one each) behind one adapter process, against one NATS. Customers write through the
//! webhook and the web chat, agents of both groups answer through the agent API; meanwhile the
//! leader of each group is killed with SIGKILL and a standby of that group takes over.
//!
//! Checked: nothing lost or duplicated either way (the fault checker); each group always has one
//! leader, and after a kill a different process of that group; each group's journal holds only
//! its own customer messages and commands on its own conversations, and every command was
//! journaled by exactly one group (so no input was routed twice or by the wrong group).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use switchboard_core::contract::streams;
use switchboard_e2e::faults::cluster::{Cluster, Role, Settings};
use switchboard_e2e::faults::desk::DeskBehaviour;
use switchboard_e2e::faults::workload::{Traffic, Workload, budget, read_stream};
use switchboard_router::{Entry, decode_entries};

const GROUPS: &str = r#"
[routing.teams.chat]
strategy = "longest_idle"
offer_timeout_secs = 3600

[[routing.groups]]
name = "chat"
teams = ["chat"]
select = 'channel == "webchat"'

[[routing.groups]]
name = "main"
teams = ["support"]
"#;

/// The process leading `group` once one does, checked to be one of `allowed`.
async fn leader_of(cluster: &Cluster, group: &str, allowed: &[usize], not: Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(i) = cluster.leader_of(group).await
            && Some(i) != not
        {
            assert!(
                allowed.contains(&i),
                "group {group} is led by {}, which does not run it",
                cluster.daemons[i].role.name
            );
            return i;
        }
        assert!(Instant::now() < deadline, "no process took over group {group} within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_routing_groups_over_three_routers_fail_over_separately() {
    let traffic = Traffic { webhook: 16, webchat: 8, dead: 0, messages: 4, spread: Duration::from_secs(8) };
    let mut work = Workload::new(DeskBehaviour { answer: true, ..Default::default() }, budget(&traffic)).await;
    let settings = Settings { routing_extra: GROUPS.into(), webchat_team: "chat".into(), ..work.settings() };
    let roles = vec![
        Role::new("adapter", false, true, true),
        Role::router_of("r-both", &["chat", "main"]),
        Role::router_of("r-chat", &["chat"]),
        Role::router_of("r-main", &["main"]),
    ];
    let mut cluster = Cluster::start(roles, &settings).await;
    work.attach(&cluster);
    work.define_agents_of(&cluster, "support", &["ann", "bob"]).await;
    work.define_agents_of(&cluster, "chat", &["cat", "dan"]).await;
    let runs_group = |group: &str| -> Vec<usize> {
        (0..cluster.daemons.len())
            .filter(|&i| {
                let role = &cluster.daemons[i].role;
                role.router && (role.groups.is_empty() || role.groups.iter().any(|g| g == group))
            })
            .collect()
    };
    let (chat_routers, main_routers) = (runs_group("chat"), runs_group("main"));

    work.start(&traffic, 11);
    let total = traffic.total();
    for (k, group) in ["chat", "main"].into_iter().enumerate() {
        work.wait_acknowledged(total * (k + 1) / 3, Duration::from_secs(120)).await;
        let allowed = if group == "chat" { &chat_routers } else { &main_routers };
        let leader = leader_of(&cluster, group, allowed, None).await;
        println!(
            "SCALE-OUT: kill -9 {} (leading {group}) after {} messages",
            cluster.daemons[leader].role.name,
            work.acknowledged()
        );
        cluster.daemons[leader].kill9();
        let next = leader_of(&cluster, group, allowed, Some(leader)).await;
        println!("SCALE-OUT: {} leads {group} now", cluster.daemons[next].role.name);
        cluster.daemons[leader].spawn();
        let http = cluster.http.clone();
        cluster.daemons[leader].wait_ready(&http, Duration::from_secs(60)).await;
    }
    let reports = work.finish(&cluster, "scale-out").await;
    cluster.assert_running();
    for r in &reports[..2] {
        r.assert_clean("scale-out");
        assert_eq!(r.sent, total, "every customer message and its answer was sent");
    }

    // What each group's journal holds.
    let mut channels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut conversations: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut commands: BTreeMap<String, String> = BTreeMap::new();
    for m in read_stream(&cluster.nats.url(), streams::ROUTER).await {
        let Some(group) = m.subject.as_str().strip_prefix("sb.router.journal.") else { continue };
        for entry in decode_entries(&m.payload).expect("journal entries decode") {
            match entry {
                Entry::Inbound { envelope, .. } => {
                    channels.entry(group.into()).or_default().insert(envelope.channel.clone());
                }
                Entry::Command { command, .. } => {
                    if let Some(c) = command.conversation_id {
                        conversations.entry(group.into()).or_default().insert(c.to_string());
                    }
                    // A define_agent is journaled by every group (the others note where it lives).
                    if command.conversation_id.is_some()
                        && let Some(other) = commands.insert(command.id.to_string(), group.into())
                    {
                        assert_eq!(other, group, "command {} journaled by two groups", command.id);
                    }
                }
                // A failed delivery is journaled by the group owning its conversation.
                Entry::Undelivered { event, .. } => {
                    if let Some(c) = event.conversation_id {
                        conversations.entry(group.into()).or_default().insert(c.to_string());
                    }
                }
                Entry::Tick { .. } | Entry::Forget { .. } | Entry::Expire { .. } | Entry::Configure { .. } => {}
            }
        }
    }
    println!("SCALE-OUT: channels by group {channels:?}; commands journaled: {}", commands.len());
    assert_eq!(
        channels.get("chat"),
        Some(&BTreeSet::from(["webchat".to_string()])),
        "the chat group routed only web chats"
    );
    assert_eq!(
        channels.get("main"),
        Some(&BTreeSet::from(["webhook".to_string()])),
        "the main group routed only webhooks"
    );
    let (chat, main) = (&conversations["chat"], &conversations["main"]);
    assert!(!chat.is_empty() && !main.is_empty(), "both groups took agents' commands");
    assert!(chat.is_disjoint(main), "no conversation's commands went to both groups");
    // Every answer is a reply command, and each conversation's accept comes on top.
    let customers = traffic.webhook + traffic.webchat;
    assert!(
        commands.len() >= total + customers,
        "a reply per message and an accept per conversation: {}",
        commands.len()
    );
}
