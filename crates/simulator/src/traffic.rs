//! The traffic a simulation replays: arrivals per channel with topics, agents' behaviour (accept,
//! first reply and handle times), customers' (reopenings, CSAT answers), and extra agents with
//! shifts. Read from JSON, or generated from a seed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use switchboard_core::Tier;

/// A duration distribution, sampled in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Always the same.
    Fixed {
        /// Seconds.
        secs: f64,
    },
    /// Memoryless, as in M/M/c queues.
    Exponential {
        /// Mean seconds.
        mean_secs: f64,
    },
    /// Right-skewed, as handle times usually are; given by its own mean and standard deviation.
    LogNormal {
        /// Mean seconds.
        mean_secs: f64,
        /// Standard deviation, seconds.
        sd_secs: f64,
    },
    /// Anything between two bounds equally likely.
    Uniform {
        /// Lowest seconds.
        min_secs: f64,
        /// Highest seconds.
        max_secs: f64,
    },
}

impl Dist {
    /// A sample in milliseconds (never negative).
    pub fn sample_ms(&self, rng: &mut impl Rng) -> i64 {
        use rand_distr::Distribution;
        let secs = match *self {
            Dist::Fixed { secs } => secs,
            Dist::Exponential { mean_secs } if mean_secs > 0.0 => {
                rand_distr::Exp::new(1.0 / mean_secs).map_or(mean_secs, |d| d.sample(rng))
            }
            Dist::Exponential { .. } => 0.0,
            Dist::LogNormal { mean_secs, sd_secs } if mean_secs > 0.0 => {
                // The underlying normal's parameters from the log-normal's mean and deviation.
                let sigma2 = (1.0 + (sd_secs / mean_secs).powi(2)).ln();
                let mu = mean_secs.ln() - sigma2 / 2.0;
                rand_distr::LogNormal::new(mu, sigma2.sqrt()).map_or(mean_secs, |d| d.sample(rng))
            }
            Dist::LogNormal { .. } => 0.0,
            Dist::Uniform { min_secs, max_secs } if max_secs > min_secs => rng.random_range(min_secs..max_secs),
            Dist::Uniform { min_secs, .. } => min_secs,
        };
        (secs.max(0.0) * 1000.0).round() as i64
    }

    /// The mean, seconds.
    pub fn mean_secs(&self) -> f64 {
        match *self {
            Dist::Fixed { secs } => secs,
            Dist::Exponential { mean_secs } | Dist::LogNormal { mean_secs, .. } => mean_secs,
            Dist::Uniform { min_secs, max_secs } => (min_secs + max_secs) / 2.0,
        }
    }
}

/// What customers write about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Name, for reports.
    pub name: String,
    /// Relative frequency within the channel.
    #[serde(default = "one")]
    pub weight: f64,
    /// The message text; the routing rules see it (and set priority, skills, tier, team).
    pub text: String,
    /// Envelope metadata the rules may read (e.g. `customer.vip`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The skill that makes an agent fast at this topic; agents without it at `skill_level` take
    /// `unskilled_factor` times as long.
    #[serde(default)]
    pub skill: Option<String>,
    /// Handle time for this topic; the agents' default otherwise.
    #[serde(default)]
    pub handle: Option<Dist>,
    /// Chance that the agent escalates instead of resolving (once per conversation).
    #[serde(default)]
    pub escalate_probability: f64,
    /// Questions customers of this topic ask (one drawn per arrival, as the message text), each
    /// with the article that answers it when labelled; none: the topic's `text`.
    #[serde(default)]
    pub questions: Vec<crate::l0::Question>,
}

fn one() -> f64 {
    1.0
}

/// Arrivals on one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelTraffic {
    /// Channel name (`webchat`, `email`, ...); also the capacity kind.
    pub channel: String,
    /// Conversations per day (a Poisson process; the day's count varies around it).
    pub per_day: f64,
    /// Relative arrival rate per hour of the day (24 values); flat when absent.
    #[serde(default)]
    pub profile: Vec<f64>,
    /// What they write about.
    pub topics: Vec<Topic>,
}

/// How agents work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentBehaviour {
    /// From an offer to accepting it.
    pub accept: Dist,
    /// From assignment to the first reply.
    pub first_reply: Dist,
    /// From assignment to resolution (at least the first reply plus a second).
    pub handle: Dist,
    /// Handle and reply time multiplier for a topic outside the agent's skills.
    pub unskilled_factor: f64,
    /// The level of the topic's skill that counts as skilled.
    pub skill_level: u8,
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        AgentBehaviour {
            accept: Dist::Uniform { min_secs: 2.0, max_secs: 20.0 },
            first_reply: Dist::Exponential { mean_secs: 60.0 },
            handle: Dist::LogNormal { mean_secs: 600.0, sd_secs: 400.0 },
            unskilled_factor: 1.0,
            skill_level: 1,
        }
    }
}

/// How customers behave after a resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CustomerBehaviour {
    /// Chance the customer writes again about the same problem.
    pub reopen_probability: f64,
    /// When, after the resolution.
    pub reopen_after: Dist,
    /// Chance the customer answers the CSAT survey (teams with `survey = "csat"`, the default).
    pub csat_response_rate: f64,
    /// Chance of a 4 or 5 when the first response was within the SLA.
    pub csat_satisfied_in_sla: f64,
    /// Chance of a 4 or 5 when it was late.
    pub csat_satisfied_late: f64,
    /// Chance the customer answers the NPS survey (teams with `survey = "nps"`).
    pub nps_response_rate: f64,
    /// Chances of a promoter (9-10) and of a detractor (0-6) when the first response was within
    /// the SLA; the rest are passives (7-8).
    pub nps_promoter_in_sla: f64,
    /// See `nps_promoter_in_sla`.
    pub nps_detractor_in_sla: f64,
    /// Chance of a promoter when the first response was late.
    pub nps_promoter_late: f64,
    /// Chance of a detractor when it was late.
    pub nps_detractor_late: f64,
    /// Chance the customer answers the CES survey (teams with `survey = "ces"`).
    pub ces_response_rate: f64,
    /// Chance of an easy answer (5-7, else 1-4) when the first response was within the SLA.
    pub ces_easy_in_sla: f64,
    /// Chance of an easy answer when it was late.
    pub ces_easy_late: f64,
    /// Share of customers who never answer the L0 bot's question (resolved at L0 after
    /// `routing.l0_timeout_secs`).
    pub l0_silent_share: f64,
    /// Chance of "yes" when the bot's top article is the question's expected one (else the
    /// customer stays silent); a wrong article or a question without an answer gets "no".
    pub l0_yes_probability: f64,
    /// From the bot's answer to the customer's.
    pub l0_answer_after: Dist,
}

impl Default for CustomerBehaviour {
    fn default() -> Self {
        CustomerBehaviour {
            reopen_probability: 0.0,
            reopen_after: Dist::Exponential { mean_secs: 3600.0 },
            csat_response_rate: 0.0,
            csat_satisfied_in_sla: 0.92,
            csat_satisfied_late: 0.6,
            nps_response_rate: 0.0,
            nps_promoter_in_sla: 0.6,
            nps_detractor_in_sla: 0.1,
            nps_promoter_late: 0.25,
            nps_detractor_late: 0.4,
            ces_response_rate: 0.0,
            ces_easy_in_sla: 0.85,
            ces_easy_late: 0.45,
            l0_silent_share: 0.1,
            l0_yes_probability: 0.8,
            l0_answer_after: Dist::Exponential { mean_secs: 60.0 },
        }
    }
}

/// A working time within each day, `HH:MM` to `HH:MM` (`24:00` is the day's end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    /// Start.
    pub start: String,
    /// End.
    pub end: String,
}

impl Shift {
    /// The whole day.
    pub fn all_day() -> Shift {
        Shift { start: "00:00".into(), end: "24:00".into() }
    }

    /// Start and end in ms from midnight; `None` when malformed.
    pub fn bounds_ms(&self) -> Option<(i64, i64)> {
        let parse = |s: &str| -> Option<i64> {
            let (h, m) = s.split_once(':')?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60).then_some((h * 60 + m) * 60_000)
        };
        let (s, e) = (parse(&self.start)?, parse(&self.end)?);
        (s < e).then_some((s, e))
    }
}

/// A group of identical agents added to the routing configuration's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentGroup {
    /// Id prefix: the agents are `<id>-1` .. `<id>-<count>`.
    pub id: String,
    /// How many.
    #[serde(default = "one_u32")]
    pub count: u32,
    /// Teams.
    pub teams: Vec<String>,
    /// Tiers.
    pub tiers: Vec<Tier>,
    /// Skills as `name:level`.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Capacity per channel.
    #[serde(default)]
    pub capacity: BTreeMap<String, u32>,
    /// Capacity for channels not listed.
    #[serde(default)]
    pub default_capacity: Option<u32>,
    /// Conversations at once in total.
    #[serde(default)]
    pub max_total: Option<u32>,
    /// When they work; all day when absent.
    #[serde(default)]
    pub shift: Option<Shift>,
}

fn one_u32() -> u32 {
    1
}

/// Everything a simulation replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traffic {
    /// Start of the simulated period (midnight of the first day, usually).
    pub start: DateTime<Utc>,
    /// Length of the arrival period, hours; work in progress then is finished.
    #[serde(default = "day")]
    pub hours: u32,
    /// Arrivals by channel.
    pub channels: Vec<ChannelTraffic>,
    /// Agents' behaviour.
    #[serde(default)]
    pub agent: AgentBehaviour,
    /// Customers' behaviour.
    #[serde(default)]
    pub customer: CustomerBehaviour,
    /// Shifts of the configuration's agents by id; all day for those not listed.
    #[serde(default)]
    pub shifts: BTreeMap<String, Shift>,
    /// Agents added to the configuration's.
    #[serde(default)]
    pub agents: Vec<AgentGroup>,
}

fn day() -> u32 {
    24
}

impl Traffic {
    /// Reads traffic JSON, naming the bad field.
    pub fn from_json(text: &str) -> Result<Traffic, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Conversations expected over the period.
    pub fn expected_conversations(&self) -> f64 {
        self.channels.iter().map(|c| c.per_day * f64::from(self.hours) / 24.0).sum()
    }
}
