//! Routing groups: the teams split into sets, each routed by its own leader, so that several
//! router processes share the work.
//!
//! Every router process and every process that asks a router something compiles the same
//! [`Layout`] from the same configuration and so agrees, without asking anyone, which group owns
//! what:
//!
//! - a customer message: the first group whose `select` matches it (over `channel`, `metadata`
//!   and `customer`, which stay the same within a thread, so a thread never changes group); the
//!   last group has no `select` and owns the rest;
//! - a conversation: the group whose tag its id carries. The leader of a group mints conversation
//!   ids with the group's tag in their last two bytes (the random part of a UUIDv7); an id with
//!   no group's tag (minted before groups were configured) belongs to the last group;
//! - an agent: the group of the agent's teams (an agent's teams lie in one group); an agent
//!   added at runtime belongs to the group of the first team it was defined with.
//!
//! Without `[[routing.groups]]` there is one group, `default`, with every team, and ids carry no
//! tag: configurations from before groups keep working unchanged.

use std::collections::HashMap;

use chrono::DateTime;
use uuid::Uuid;

use crate::compiled::RoutingConfigError;
use crate::config::{GroupConfig, RoutingConfig, RuleBudgetConfig, RuleConfig};
use crate::hours::parse_timezone;
use crate::model::MessageInfo;
use crate::rules::{RuleInput, RuleSet};

/// The group of a configuration without `[[routing.groups]]`.
pub const DEFAULT_GROUP: &str = "default";

/// Variables a group's `select` may use: those that stay the same within a thread.
const SELECT_VARIABLES: [&str; 3] = ["channel", "metadata", "customer"];

/// A compiled group.
#[derive(Debug)]
struct Group {
    name: String,
    tag: u16,
    select: Option<RuleSet>,
    default_team: String,
    teams: Vec<String>,
}

/// Which routing group owns which message, conversation, team and agent.
#[derive(Debug)]
pub struct Layout {
    groups: Vec<Group>,
    team_group: HashMap<String, usize>,
    agent_group: HashMap<String, usize>,
}

fn err(key: impl Into<String>, reason: impl Into<String>) -> RoutingConfigError {
    RoutingConfigError { key: key.into(), reason: reason.into() }
}

/// A group name's tag: stable across versions (FNV-1a folded to 16 bits), so conversation ids
/// minted before an upgrade still name their group.
fn tag_of(name: &str) -> u16 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    ((hash >> 16) ^ (hash & 0xffff)) as u16
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Layout {
    /// Compiles `routing.groups`, refusing (naming the key) teams in no group or in two, agents
    /// whose teams span groups, a `select` that is invalid or reads more than `channel`,
    /// `metadata` and `customer`, and a last group with a `select`.
    pub fn new(cfg: &RoutingConfig) -> Result<Layout, RoutingConfigError> {
        let configured: Vec<GroupConfig> = if cfg.groups.is_empty() {
            vec![GroupConfig {
                name: DEFAULT_GROUP.into(),
                teams: cfg.teams.keys().cloned().collect(),
                select: None,
                default_team: None,
            }]
        } else {
            cfg.groups.clone()
        };
        let tz = if cfg.timezone.is_empty() { Ok(chrono_tz::UTC) } else { parse_timezone(&cfg.timezone) }
            .map_err(|reason| err("timezone", reason))?;
        let last = configured.len() - 1;
        let mut groups: Vec<Group> = Vec::with_capacity(configured.len());
        let mut team_group: HashMap<String, usize> = HashMap::new();
        for (i, g) in configured.iter().enumerate() {
            let key = |field: &str| format!("groups[{i}].{field}");
            if !valid_name(&g.name) {
                return Err(err(key("name"), "use only a-z, 0-9, '-', '_' (and at least one)"));
            }
            let tag = tag_of(&g.name);
            if let Some(other) = groups.iter().find(|o: &&Group| o.name == g.name || o.tag == tag) {
                let reason = if other.name == g.name {
                    "duplicate group name".to_string()
                } else {
                    format!("its tag collides with group `{}`'s; rename one of them", other.name)
                };
                return Err(err(key("name"), reason));
            }
            if g.teams.is_empty() && !cfg.groups.is_empty() {
                return Err(err(key("teams"), "a group needs at least one team"));
            }
            for (t, team) in g.teams.iter().enumerate() {
                if !cfg.teams.contains_key(team) {
                    return Err(err(format!("groups[{i}].teams[{t}]"), format!("unknown team `{team}`")));
                }
                if let Some(other) = team_group.insert(team.clone(), i) {
                    return Err(err(
                        format!("groups[{i}].teams[{t}]"),
                        format!("team `{team}` is already in group `{}`", configured[other].name),
                    ));
                }
            }
            let select = match (&g.select, i == last) {
                (Some(_), true) if configured.len() > 1 => {
                    return Err(err(
                        key("select"),
                        "the last group owns every message no other group selects: leave `select` out",
                    ));
                }
                (None, false) => return Err(err(key("select"), "only the last group may leave `select` out")),
                (Some(when), _) => {
                    Some(compile_select(when, tz, &cfg.rule_budget).map_err(|reason| err(key("select"), reason))?)
                }
                (None, true) => None,
            };
            let default_team = match &g.default_team {
                Some(team) if g.teams.contains(team) => team.clone(),
                Some(team) => {
                    return Err(err(key("default_team"), format!("`{team}` is not one of the group's teams")));
                }
                None if g.teams.contains(&cfg.default_team) || g.teams.is_empty() => cfg.default_team.clone(),
                None => g.teams[0].clone(),
            };
            groups.push(Group { name: g.name.clone(), tag, select, default_team, teams: g.teams.clone() });
        }
        if let Some(team) = cfg.teams.keys().find(|t| !team_group.contains_key(*t)) {
            return Err(err(format!("teams.{team}"), "not in any of routing.groups"));
        }
        let mut agent_group = HashMap::new();
        for (a, agent) in cfg.agents.iter().enumerate() {
            let mut owner: Option<usize> = None;
            for team in &agent.teams {
                // Unknown teams are the engine's to refuse, with its own message.
                let Some(&g) = team_group.get(team) else { continue };
                match owner {
                    Some(o) if o != g => {
                        return Err(err(
                            format!("agents[{a}].teams"),
                            format!(
                                "teams in two groups (`{}` and `{}`): an agent works in one group",
                                groups[o].name, groups[g].name
                            ),
                        ));
                    }
                    _ => owner = Some(g),
                }
            }
            if let Some(g) = owner {
                agent_group.insert(agent.id.clone(), g);
            }
        }
        Ok(Layout { groups, team_group, agent_group })
    }

    /// The groups' names, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// Whether `group` is one of them.
    pub fn contains(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g.name == group)
    }

    /// The group that owns what no other group selects (the last one).
    pub fn catch_all(&self) -> &str {
        // `new` always makes at least one group.
        self.groups.last().map_or(DEFAULT_GROUP, |g| g.name.as_str())
    }

    /// Whether there is more than one group (ids carry tags, inputs are divided).
    pub fn divided(&self) -> bool {
        self.groups.len() > 1
    }

    /// The routing configuration one group's engine runs: its teams, the agents of those teams,
    /// the rules that send nowhere else, its default team. `None` for an unknown group.
    pub fn config_for(&self, cfg: &RoutingConfig, group: &str) -> Option<RoutingConfig> {
        let g = self.groups.iter().find(|g| g.name == group)?;
        if !self.divided() {
            return Some(RoutingConfig { groups: Vec::new(), ..cfg.clone() });
        }
        let mine = |team: &String| g.teams.contains(team);
        let rules: Vec<RuleConfig> = cfg.rules.iter().filter(|r| r.team.as_ref().is_none_or(mine)).cloned().collect();
        Some(RoutingConfig {
            default_team: g.default_team.clone(),
            teams: cfg.teams.iter().filter(|(name, _)| mine(name)).map(|(n, t)| (n.clone(), t.clone())).collect(),
            agents: cfg.agents.iter().filter(|a| a.teams.iter().any(mine)).cloned().collect(),
            rules,
            groups: Vec::new(),
            ..cfg.clone()
        })
    }

    /// The group that owns a customer message (see the module docs).
    pub fn owner_of_message(&self, info: &MessageInfo, customer_id: &str) -> &str {
        let input = RuleInput {
            channel: &info.channel,
            text: "",
            subject: None,
            customer_id,
            customer_tags: &info.tags,
            customer_language: info.language.as_deref(),
            vip: info.vip,
            metadata: &info.metadata,
            now: DateTime::UNIX_EPOCH,
            repeat_contact: false,
            previous_agent: None,
            wait_secs: 0,
        };
        for g in &self.groups {
            match &g.select {
                Some(select) if select.evaluate(&input).matched.is_empty() => continue,
                _ => return &g.name,
            }
        }
        self.catch_all()
    }

    /// The group that owns a conversation, by the tag in its id.
    pub fn owner_of_conversation(&self, id: Uuid) -> &str {
        if !self.divided() {
            return self.catch_all();
        }
        let tag = u16::from_be_bytes([id.as_bytes()[14], id.as_bytes()[15]]);
        self.groups.iter().find(|g| g.tag == tag).map_or(self.catch_all(), |g| g.name.as_str())
    }

    /// A new conversation id for `group`: `id` with the group's tag (unchanged with one group).
    pub fn tag_conversation(&self, group: &str, id: Uuid) -> Uuid {
        let Some(g) = self.groups.iter().find(|g| g.name == group).filter(|_| self.divided()) else { return id };
        let mut bytes = *id.as_bytes();
        bytes[14..16].copy_from_slice(&g.tag.to_be_bytes());
        Uuid::from_bytes(bytes)
    }

    /// The group of a team, if the team is configured.
    pub fn owner_of_team(&self, team: &str) -> Option<&str> {
        self.team_group.get(team).map(|&g| self.groups[g].name.as_str())
    }

    /// The group of an agent of the configuration file, if it is one.
    pub fn owner_of_agent(&self, agent: &str) -> Option<&str> {
        self.agent_group.get(agent).map(|&g| self.groups[g].name.as_str())
    }
}

/// Compiles a group's `select` as a one-rule set, refusing variables that can change within a thread.
///
/// Every process must pick the same owner for a message, so a `select` has no time budget (a
/// clock could stop it in one process and not in another: nobody, or two groups, would route
/// the message). Instead it may not nest comprehensions at all: over inputs cut to
/// `max_input_bytes` and at most `max_expression_nodes`, one loop level stays cheap.
fn compile_select(when: &str, tz: chrono_tz::Tz, budget: &RuleBudgetConfig) -> Result<RuleSet, String> {
    let rule = RuleConfig { name: "select".into(), when: when.into(), ..Default::default() };
    let limits = RuleBudgetConfig { max_comprehension_depth: budget.max_comprehension_depth.min(1), ..budget.clone() };
    let set = RuleSet::compile_with(std::slice::from_ref(&rule), tz, &limits).map_err(|e| e.reason)?.untimed();
    if let Some(var) = set.variables().into_iter().find(|v| !SELECT_VARIABLES.contains(v)) {
        return Err(format!(
            "`{var}` can change within a thread, which would move the thread between groups: use only {}",
            SELECT_VARIABLES.join(", ")
        ));
    }
    Ok(set)
}
