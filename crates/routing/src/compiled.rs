//! The configuration compiled for the engine: names interned to indices, durations in ms,
//! rules and business hours compiled. Invalid configuration is refused here, naming the key.

use std::collections::HashMap;

use switchboard_core::Tier;

use crate::config::{EscalationAction, RoutingConfig, Strategy};
use crate::hours::BusinessHours;
use crate::model::Ms;
use crate::rules::RuleSet;
use crate::skills::parse_skill;

/// A configuration the engine refuses: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("routing.{key}: {reason}")]
pub struct RoutingConfigError {
    /// Dotted key under `routing`, e.g. `agents[3].skills`.
    pub key: String,
    /// Why.
    pub reason: String,
}

fn err(key: impl Into<String>, reason: impl Into<String>) -> RoutingConfigError {
    RoutingConfigError { key: key.into(), reason: reason.into() }
}

/// A compiled escalation step.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Relax(u8),
    AddTier,
    Overflow(u16),
}

/// A compiled team.
#[derive(Debug)]
pub(crate) struct Team {
    pub name: String,
    pub strategy: Strategy,
    /// First-response target per priority class P1..P4, in ms.
    pub sla_ms: [Ms; 4],
    pub offer_timeout_ms: Option<Ms>,
    pub max_missed: u32,
    pub sticky_wait_ms: Ms,
    pub steps: Vec<(Ms, Step)>,
    pub hours: Option<BusinessHours>,
    pub out_of_hours_reply: Option<String>,
}

/// The compiled configuration.
pub(crate) struct Compiled {
    pub teams: Vec<Team>,
    pub team_ix: HashMap<String, u16>,
    pub skills: Vec<String>,
    pub skill_ix: HashMap<String, u16>,
    pub rules: RuleSet,
    pub default_team: u16,
    pub reopen_ms: Ms,
    pub aging_ms: i64,
    pub human_phrases: Vec<String>,
}

/// Default first-response targets (seconds) for P1..P4 when a team sets none.
const DEFAULT_SLA_SECS: [u64; 4] = [15 * 60, 60 * 60, 2 * 3600, 24 * 3600];

impl Compiled {
    pub fn new(cfg: &RoutingConfig) -> Result<Compiled, RoutingConfigError> {
        if cfg.teams.is_empty() {
            return Err(err("teams", "define at least one team"));
        }
        let team_ix: HashMap<String, u16> =
            cfg.teams.keys().enumerate().map(|(i, name)| (name.clone(), i as u16)).collect();
        let mut teams = Vec::new();
        for (name, t) in &cfg.teams {
            let key = |k: &str| format!("teams.{name}.{k}");
            let mut sla_ms = [0; 4];
            for (i, default) in DEFAULT_SLA_SECS.iter().enumerate() {
                sla_ms[i] = *default as Ms * 1000;
            }
            for (class, secs) in &t.first_response_secs {
                let i = match class.to_ascii_uppercase().as_str() {
                    "P1" => 0,
                    "P2" => 1,
                    "P3" => 2,
                    "P4" => 3,
                    _ => return Err(err(key("first_response_secs"), format!("`{class}` is not P1..P4"))),
                };
                sla_ms[i] = *secs as Ms * 1000;
            }
            let mut steps = Vec::new();
            let mut last = 0;
            for (i, s) in t.escalation.iter().enumerate() {
                if s.after_secs <= last && i > 0 {
                    return Err(err(key(&format!("escalation[{i}].after_secs")), "steps must be in increasing order"));
                }
                last = s.after_secs;
                let step =
                    match &s.action {
                        EscalationAction::RelaxSkills { by } if *by == 0 => {
                            return Err(err(key(&format!("escalation[{i}].by")), "must be at least 1"));
                        }
                        EscalationAction::RelaxSkills { by } => Step::Relax(*by),
                        EscalationAction::AddNextTier => Step::AddTier,
                        EscalationAction::Overflow { team } => Step::Overflow(*team_ix.get(team).ok_or_else(|| {
                            err(key(&format!("escalation[{i}].team")), format!("unknown team `{team}`"))
                        })?),
                    };
                steps.push((s.after_secs as Ms * 1000, step));
            }
            let hours = match &t.business_hours {
                Some(h) => Some(BusinessHours::compile(h).map_err(|e| err(key("business_hours"), e))?),
                None => None,
            };
            teams.push(Team {
                name: name.clone(),
                strategy: t.strategy,
                sla_ms,
                offer_timeout_ms: t.offer_timeout_secs.filter(|s| *s > 0).map(|s| s as Ms * 1000),
                max_missed: t.max_missed_offers,
                sticky_wait_ms: t.sticky_wait_secs as Ms * 1000,
                steps,
                hours,
                out_of_hours_reply: t.out_of_hours_reply.clone(),
            });
        }
        let default_team = *team_ix
            .get(&cfg.default_team)
            .ok_or_else(|| err("default_team", format!("`{}` is not a defined team", cfg.default_team)))?;

        let mut skills = Vec::new();
        let mut skill_ix = HashMap::new();
        let mut intern = |name: &str| -> u16 {
            *skill_ix.entry(name.to_string()).or_insert_with(|| {
                skills.push(name.to_string());
                (skills.len() - 1) as u16
            })
        };
        let mut seen = std::collections::HashSet::new();
        for (i, a) in cfg.agents.iter().enumerate() {
            let key = |k: &str| format!("agents[{i}].{k}");
            if a.id.trim().is_empty() {
                return Err(err(key("id"), "must not be empty"));
            }
            if !seen.insert(a.id.as_str()) {
                return Err(err(key("id"), format!("duplicate agent id `{}`", a.id)));
            }
            if a.teams.is_empty() {
                return Err(err(key("teams"), "an agent needs at least one team"));
            }
            for t in &a.teams {
                if !team_ix.contains_key(t) {
                    return Err(err(key("teams"), format!("unknown team `{t}`")));
                }
            }
            if a.tiers.is_empty() {
                return Err(err(key("tiers"), "an agent needs at least one tier"));
            }
            if a.max_total == 0 {
                return Err(err(key("max_total"), "must be greater than 0"));
            }
            for s in &a.skills {
                let (name, _) = parse_skill(s).map_err(|e| err(key("skills"), e))?;
                intern(&name);
            }
        }
        for (i, r) in cfg.rules.iter().enumerate() {
            for s in &r.skills {
                let (name, _) = parse_skill(s).map_err(|e| err(format!("rules[{i}].skills"), e))?;
                intern(&name);
            }
            if let Some(team) = &r.team
                && !team_ix.contains_key(team)
            {
                return Err(err(format!("rules[{i}].team"), format!("unknown team `{team}`")));
            }
        }
        let tz = if cfg.timezone.is_empty() { "UTC" } else { cfg.timezone.as_str() };
        let tz = crate::rules::parse_timezone(tz).map_err(|e| err("timezone", e))?;
        let rules = RuleSet::compile(&cfg.rules, tz).map_err(|e| err("rules", e.to_string()))?;
        let aging_secs = if cfg.aging_secs_per_point == 0 { 30 } else { cfg.aging_secs_per_point };
        Ok(Compiled {
            teams,
            team_ix,
            skills,
            skill_ix,
            rules,
            default_team,
            reopen_ms: if cfg.reopen_window_secs == 0 {
                7 * 24 * 3600 * 1000
            } else {
                cfg.reopen_window_secs as Ms * 1000
            },
            aging_ms: aging_secs as i64 * 1000,
            human_phrases: cfg.human_phrases.iter().map(|p| p.to_lowercase()).filter(|p| !p.is_empty()).collect(),
        })
    }

    /// Whether `text` asks for a human.
    pub fn asks_for_human(&self, text: &str) -> bool {
        if self.human_phrases.is_empty() {
            return false;
        }
        let text = text.to_lowercase();
        self.human_phrases.iter().any(|p| text.contains(p.as_str()))
    }
}

/// Bit of a tier in a tier mask.
pub(crate) fn tier_bit(t: Tier) -> u8 {
    1 << (t as u8)
}

/// The tier one above, if any.
pub(crate) fn next_tier(t: Tier) -> Option<Tier> {
    match t {
        Tier::L0 => Some(Tier::L1),
        Tier::L1 => Some(Tier::L2),
        Tier::L2 => Some(Tier::L3),
        Tier::L3 => Some(Tier::L4),
        Tier::L4 => None,
    }
}

/// P1..P4 class (0..=3) of a priority value.
pub(crate) fn priority_class(p: switchboard_core::Priority) -> usize {
    match p.0 {
        0..=24 => 0,
        25..=49 => 1,
        50..=74 => 2,
        _ => 3,
    }
}
