//! Synthetic traffic: a day of `n` conversations over chat, e-mail and Telegram with a daytime
//! peak, four topics (two needing a specialist skill), and a roster sized for the load.

use chrono::{DateTime, Utc};
use switchboard_core::Tier;

use crate::traffic::{AgentBehaviour, AgentGroup, ChannelTraffic, CustomerBehaviour, Dist, Topic, Traffic};

/// Relative arrivals per hour of the day: quiet at night, a peak late morning and afternoon.
const PROFILE: [f64; 24] = [
    0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.3, 1.7, 1.9, 1.9, 1.7, 1.8, 1.9, 1.8, 1.6, 1.3, 1.0, 0.8, 0.6, 0.5, 0.4,
    0.3,
];

fn topics() -> Vec<Topic> {
    let topic = |name: &str, weight: f64, text: &str, skill: Option<&str>, escalate: f64| Topic {
        name: name.into(),
        weight,
        text: text.into(),
        metadata: Default::default(),
        skill: skill.map(str::to_string),
        handle: None,
        escalate_probability: escalate,
        questions: Vec::new(),
    };
    vec![
        topic("billing", 4.0, "I was charged twice, please check my invoice", Some("billing"), 0.02),
        topic("technical", 4.0, "the app shows an error when I log in", Some("tech"), 0.05),
        topic("general", 2.0, "how do I change my delivery address?", None, 0.0),
        topic("urgent", 0.5, "urgent: my account is locked", Some("tech"), 0.1),
    ]
}

/// About `n` conversations in one day from `start`, for agents of `team`. The roster (billing and
/// technical specialists, two chats or five e-mails at once) is sized so the peak hour runs at
/// about 85% occupancy when every conversation reaches a specialist.
pub fn synthetic(n: u64, team: &str, start: DateTime<Utc>) -> Traffic {
    let n = n as f64;
    let channel = |name: &str, share: f64| ChannelTraffic {
        channel: name.into(),
        per_day: n * share,
        profile: PROFILE.to_vec(),
        topics: topics(),
    };
    let agent = AgentBehaviour {
        accept: Dist::Uniform { min_secs: 2.0, max_secs: 20.0 },
        first_reply: Dist::Exponential { mean_secs: 45.0 },
        handle: Dist::LogNormal { mean_secs: 480.0, sd_secs: 300.0 },
        unskilled_factor: 2.0,
        skill_level: 3,
    };
    // Peak arrivals per second times the mean handle time: the busy conversation slots needed.
    let peak_share = PROFILE.iter().cloned().fold(0.0, f64::max) / PROFILE.iter().sum::<f64>();
    let slots = n * peak_share / 3600.0 * agent.handle.mean_secs() / 0.85;
    let per_group = (slots / 2.0 / 2.0).ceil().max(1.0) as u32;
    let group = |id: &str, skills: &[&str]| AgentGroup {
        id: id.into(),
        count: per_group,
        teams: vec![team.to_string()],
        tiers: vec![Tier::L1, Tier::L2],
        skills: skills.iter().map(|s| s.to_string()).collect(),
        capacity: [("webchat".to_string(), 2), ("telegram".to_string(), 2), ("email".to_string(), 5)].into(),
        default_capacity: Some(2),
        max_total: Some(2),
        shift: None,
    };
    Traffic {
        start,
        hours: 24,
        channels: vec![channel("webchat", 0.5), channel("email", 0.3), channel("telegram", 0.2)],
        agent,
        customer: CustomerBehaviour {
            reopen_probability: 0.06,
            reopen_after: Dist::Exponential { mean_secs: 4.0 * 3600.0 },
            csat_response_rate: 0.3,
            csat_satisfied_in_sla: 0.93,
            csat_satisfied_late: 0.65,
            nps_response_rate: 0.2,
            ces_response_rate: 0.25,
            ..CustomerBehaviour::default()
        },
        shifts: Default::default(),
        agents: vec![group("syn-billing", &["billing:4", "tech:1"]), group("syn-tech", &["tech:4", "billing:1"])],
    }
}
