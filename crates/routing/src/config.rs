//! The routing configuration: teams, agents, rules, business hours. Deserialised from the
//! daemon's `[routing]` section and compiled by [`crate::Engine::new`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::{AgentStatus, SurveyKind, Tier};

/// Everything the engine needs to know before the first event.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Team a conversation goes to when no rule sets one.
    pub default_team: String,
    /// Timezone (IANA name) for the `time` variables of rules, e.g. `Europe/Moscow`.
    pub timezone: String,
    /// How long a resolved conversation can be reopened by the customer (a repeat contact).
    pub reopen_window_secs: u64,
    /// Aging: a waiting conversation gains one priority point per this many seconds.
    pub aging_secs_per_point: u64,
    /// How far back a customer's own time (`received_at`) may start a contact before the router
    /// took the message; an earlier one is taken as this long before (a channel's clock can be
    /// wrong, or the router's time ran ahead after a clock step). 0: 10 minutes, which covers a
    /// failover, a restart or a short outage. A time after the router's is taken as the router's.
    pub customer_clock_max_lag_secs: u64,
    /// Phrases (any language, matched case-insensitively as substrings) by which a customer asks
    /// for a human, e.g. "оператор", "human", "agent".
    pub human_phrases: Vec<String>,
    /// How long the L0 bot waits for the customer's "yes" or "no" after a knowledge-base answer
    /// (or a rule's L0 auto-reply) before the conversation counts as resolved at L0 without a
    /// reply. 0: one hour.
    pub l0_timeout_secs: u64,
    /// Teams by name.
    pub teams: BTreeMap<String, TeamConfig>,
    /// Agents.
    pub agents: Vec<AgentConfig>,
    /// Routing rules, evaluated in order.
    pub rules: Vec<RuleConfig>,
    /// What one rule may cost: checked at load (expression size, nesting) and per evaluation
    /// (input seen, time). See [`RuleBudgetConfig`].
    pub rule_budget: RuleBudgetConfig,
    /// Whether the router asks the customer to rate a resolved conversation on the channel they
    /// used, with the survey of the team holding it (`teams.<name>.survey`); `false` turns every
    /// survey off, whatever the teams say. Read by the router, not the engine; the web chat asks
    /// by itself, with the survey the `resolved` event names.
    pub csat_survey: bool,
    /// Routing groups (team sets), each routed by its own leader; none means one group,
    /// `default`, with every team. See [`crate::groups`].
    pub groups: Vec<GroupConfig>,
    /// Telling waiting customers their place in line and the expected wait. Read by the router,
    /// not the engine (which computes the figures). See [`QueueNoticeConfig`].
    pub queue_notice: QueueNoticeConfig,
}

/// `routing.queue_notice`: when waiting customers are told their place and the expected wait
/// (`docs/queue.md`). The web chat shows every change live; other channels get a message at most
/// every `interval_secs`, and only when the figures changed materially.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueNoticeConfig {
    /// Whether notices are sent at all (the figures are computed for the API either way).
    pub enabled: bool,
    /// Least time between two notices on a channel other than the web chat.
    pub interval_secs: u64,
    /// How often the router recomputes every waiting conversation's place while any waits.
    pub check_secs: u64,
    /// Notices only for a place at or beyond this one (1: every waiting customer).
    pub min_position: u32,
    /// Per channel on/off; a channel not named is on. Email is off unless turned on.
    pub channels: BTreeMap<String, bool>,
    /// Handle time assumed for a team until it has resolved conversations to measure.
    pub default_handle_secs: u64,
}

impl Default for QueueNoticeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 300,
            check_secs: 15,
            min_position: 1,
            channels: BTreeMap::from([("email".to_string(), false)]),
            default_handle_secs: 600,
        }
    }
}

impl QueueNoticeConfig {
    /// Whether customers on `channel` are sent notices.
    pub fn on_for(&self, channel: &str) -> bool {
        self.enabled && self.channels.get(channel).copied().unwrap_or(true)
    }
}

/// Bounds on what evaluating one rule (or a group's `select`) may cost, so that one heavy rule
/// cannot stall routing for everyone else.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleBudgetConfig {
    /// Bytes of `text`, `subject`, each tag and each metadata value that rules see; longer
    /// values are cut (on a character boundary) for the rules only, the message keeps them.
    pub max_input_bytes: usize,
    /// How deeply comprehensions (`exists`, `all`, `map`, `filter`, ...) may nest in one rule;
    /// each level multiplies the work by the size of what it iterates over.
    pub max_comprehension_depth: u8,
    /// Nodes a rule's expression may have once its macros are expanded.
    pub max_expression_nodes: usize,
    /// Milliseconds one rule's evaluation may take for one message; a rule that runs over is
    /// stopped, counted as not matching for that message and named in a warning.
    pub budget_ms: u64,
}

impl Default for RuleBudgetConfig {
    fn default() -> Self {
        Self { max_input_bytes: 4096, max_comprehension_depth: 2, max_expression_nodes: 512, budget_ms: 50 }
    }
}

/// One routing group: a set of teams with its own router leader, lease and journal.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// The group's name (`a-z`, `0-9`, `-`, `_`): its lease is `router.<name>`.
    pub name: String,
    /// The teams it routes to; each team belongs to exactly one group.
    pub teams: Vec<String>,
    /// Which customer messages it owns: a CEL condition over `channel`, `metadata` and
    /// `customer` (the variables that stay the same within a thread). The last group has none:
    /// it owns every message no other group selects.
    pub select: Option<String>,
    /// Team for its messages no rule sends elsewhere; `routing.default_team` if it is one of
    /// the group's teams, else the group's first team.
    pub default_team: Option<String>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            default_team: String::new(),
            timezone: String::new(),
            reopen_window_secs: 0,
            aging_secs_per_point: 0,
            customer_clock_max_lag_secs: 0,
            human_phrases: Vec::new(),
            l0_timeout_secs: 0,
            teams: BTreeMap::new(),
            agents: Vec::new(),
            rules: Vec::new(),
            rule_budget: RuleBudgetConfig::default(),
            csat_survey: true,
            groups: Vec::new(),
            queue_notice: QueueNoticeConfig::default(),
        }
    }
}

/// How a team assigns and escalates.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TeamConfig {
    /// Which eligible agent gets a conversation.
    pub strategy: Strategy,
    /// First-response targets (SLA) in seconds by priority class: `P1`..`P4`.
    pub first_response_secs: BTreeMap<String, u64>,
    /// How long an agent has to accept an offer; `0` assigns conversations directly, without offers.
    pub offer_timeout_secs: Option<u64>,
    /// Offers an agent may let time out in a row before being set away.
    pub max_missed_offers: u32,
    /// How long a repeat contact waits for its previous agent before any agent may take it.
    pub sticky_wait_secs: u64,
    /// Time-based escalation steps, in order of `after_secs`.
    pub escalation: Vec<EscalationStep>,
    /// Opening hours; absent means always open.
    pub business_hours: Option<BusinessHoursConfig>,
    /// Auto-reply out of hours; `{next_open}` is replaced by the next opening time.
    pub out_of_hours_reply: Option<String>,
    /// The survey its resolved conversations are asked: `csat` (1-5, the default), `nps` (0-10),
    /// `ces` (1-7) or `none`.
    pub survey: TeamSurvey,
    /// Every new conversation of the team meets the L0 bot first: when the knowledge base has
    /// an answer above `kb.min_score`, the bot sends it and asks whether it helped; otherwise
    /// (or when the rules set tier L2 or above) it goes straight to a human.
    pub kb_first: bool,
}

/// Which survey a team's customers are asked when their conversation is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TeamSurvey {
    /// Customer satisfaction, 1-5.
    #[default]
    Csat,
    /// Net Promoter Score, 0-10.
    Nps,
    /// Customer Effort Score, 1-7.
    Ces,
    /// No survey.
    None,
}

impl TeamSurvey {
    /// The survey asked, `None` for `none`.
    pub fn kind(self) -> Option<SurveyKind> {
        match self {
            TeamSurvey::Csat => Some(SurveyKind::Csat),
            TeamSurvey::Nps => Some(SurveyKind::Nps),
            TeamSurvey::Ces => Some(SurveyKind::Ces),
            TeamSurvey::None => None,
        }
    }
}

impl Default for TeamConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::LongestIdle,
            first_response_secs: BTreeMap::new(),
            offer_timeout_secs: Some(60),
            max_missed_offers: 2,
            sticky_wait_secs: 120,
            escalation: Vec::new(),
            business_hours: None,
            out_of_hours_reply: None,
            survey: TeamSurvey::Csat,
            kb_first: false,
        }
    }
}

/// Assignment strategy among eligible agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest.
    LongestIdle,
    /// The agent with the fewest open conversations.
    LeastLoaded,
    /// The agent with the highest sum of levels in the required skills.
    BestSkillMatch,
    /// Agents in turn.
    RoundRobin,
}

/// One escalation step, taken when a conversation has waited `after_secs` unassigned.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    /// Seconds of waiting after which this step applies.
    pub after_secs: u64,
    /// What the step does.
    pub action: EscalationAction,
}

/// What an escalation step does.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum EscalationAction {
    /// Lower every required skill level by this much (not below 1).
    RelaxSkills {
        /// Levels to subtract.
        by: u8,
    },
    /// Also accept agents of the next tier up.
    AddNextTier,
    /// Move to another team's queue.
    Overflow {
        /// The team.
        team: String,
    },
}

/// Opening hours of a team, in its timezone.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHoursConfig {
    /// IANA timezone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Opening ranges by weekday (`mon`..`sun`), e.g. `mon = ["09:00-13:00", "14:00-18:00"]`.
    pub weekly: BTreeMap<String, Vec<String>>,
    /// Closed days, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Unique id.
    pub id: String,
    /// Display name, shown to customers.
    #[serde(default)]
    pub name: Option<String>,
    /// Teams the agent works for.
    pub teams: Vec<String>,
    /// Tiers the agent works at.
    pub tiers: Vec<Tier>,
    /// Skills as `name:level` (level 1-5), e.g. `billing:3`.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Concurrent conversations per channel kind, e.g. `{ webchat = 3, email = 10 }`; a channel
    /// not listed takes `default_capacity`.
    #[serde(default)]
    pub capacity: BTreeMap<String, u32>,
    /// Capacity for channels not in `capacity`.
    #[serde(default = "default_capacity")]
    pub default_capacity: u32,
    /// Concurrent conversations in total.
    #[serde(default = "default_max_total")]
    pub max_total: u32,
    /// Status at start-up.
    #[serde(default = "default_status")]
    pub status: AgentStatus,
}

impl AgentConfig {
    /// An agent with this id, no teams, tiers or skills, and the default capacity and status.
    pub fn new(id: &str) -> AgentConfig {
        AgentConfig {
            id: id.into(),
            name: None,
            teams: Vec::new(),
            tiers: Vec::new(),
            skills: Vec::new(),
            capacity: BTreeMap::new(),
            default_capacity: default_capacity(),
            max_total: default_max_total(),
            status: default_status(),
        }
    }
}

fn default_capacity() -> u32 {
    3
}

fn default_max_total() -> u32 {
    10
}

fn default_status() -> AgentStatus {
    AgentStatus::Offline
}

/// One routing rule: when `when` (a CEL expression) holds, apply the actions.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name, used in errors and explanations.
    pub name: String,
    /// CEL condition, e.g. `channel == "email" && "vip" in customer.tags`.
    pub when: String,
    /// Priority: `P1`..`P4` or `1`..`100`.
    #[serde(default)]
    pub priority: Option<String>,
    /// Required skills as `name:level`, added to those already required.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Tier to route at.
    #[serde(default)]
    pub tier: Option<Tier>,
    /// Team to route to.
    #[serde(default)]
    pub team: Option<String>,
    /// Automatic reply to send.
    #[serde(default)]
    pub auto_reply: Option<String>,
    /// Stop evaluating later rules when this one matched.
    #[serde(default)]
    pub stop: bool,
}
