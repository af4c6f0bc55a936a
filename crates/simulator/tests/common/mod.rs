//! An M/M/c queue for the simulator's tests: Poisson arrivals on one channel, agents who take
//! one conversation at a time and reply at once (so the first response is the wait for an
//! agent), exponential handle times.

use chrono::{DateTime, Utc};
use switchboard_routing::RoutingConfig;
use switchboard_simulator::{AgentBehaviour, AgentGroup, ChannelTraffic, Dist, Topic, Traffic, parse_routing};

/// One team `q` whose conversations are assigned without offers and never breach.
pub fn single_queue() -> RoutingConfig {
    parse_routing("default_team = \"q\"\n[teams.q]\noffer_timeout_secs = 0\nfirst_response_secs = { P3 = 86400 }\n")
        .unwrap()
}

/// `agents` agents, `per_hour` arrivals an hour for `hours`, handle times exponential around
/// `handle_secs`.
pub fn mmc(agents: u32, per_hour: f64, handle_secs: f64, hours: u32) -> Traffic {
    let start: DateTime<Utc> = "2026-03-02T00:00:00Z".parse().unwrap();
    let topic = Topic {
        name: "any".into(),
        weight: 1.0,
        text: "hello".into(),
        metadata: Default::default(),
        skill: None,
        handle: None,
        escalate_probability: 0.0,
        questions: Vec::new(),
    };
    Traffic {
        start,
        hours,
        channels: vec![ChannelTraffic {
            channel: "webchat".into(),
            per_day: per_hour * 24.0,
            profile: Vec::new(),
            topics: vec![topic],
        }],
        agent: AgentBehaviour {
            accept: Dist::Fixed { secs: 0.0 },
            first_reply: Dist::Fixed { secs: 0.0 },
            handle: Dist::Exponential { mean_secs: handle_secs },
            unskilled_factor: 1.0,
            skill_level: 1,
        },
        customer: Default::default(),
        shifts: Default::default(),
        agents: vec![AgentGroup {
            id: "a".into(),
            count: agents,
            teams: vec!["q".into()],
            tiers: vec![switchboard_core::Tier::L1],
            skills: Vec::new(),
            capacity: Default::default(),
            default_capacity: Some(1),
            max_total: Some(1),
            shift: None,
        }],
    }
}
