//! The configuration compiled for the engine: names interned to indices, durations in ms,
//! rules and business hours compiled. Invalid configuration is refused here, naming the key.

use std::collections::HashMap;

use switchboard_core::Tier;

use crate::config::{EscalationAction, RoutingConfig, RuleBudgetConfig, Strategy};
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

/// Longest duration a setting may give (ten years), so that milliseconds and deadlines computed
/// from it stay far inside `Ms`.
const MAX_DURATION_SECS: u64 = 10 * 365 * 24 * 3600;

/// A duration setting in milliseconds, refused (naming `key`) over [`MAX_DURATION_SECS`].
fn duration_ms(key: impl FnOnce() -> String, secs: u64) -> Result<Ms, RoutingConfigError> {
    if secs > MAX_DURATION_SECS {
        return Err(err(key(), format!("{secs} s is longer than ten years ({MAX_DURATION_SECS} s)")));
    }
    // Within the bound the product fits easily.
    Ok(secs as Ms * 1000)
}

/// Refuses a rule budget that would not bound anything (or nothing useful), naming the key.
fn check_rule_budget(b: &RuleBudgetConfig) -> Result<(), RoutingConfigError> {
    let key = |k: &str| format!("rule_budget.{k}");
    if !(1..=MAX_RULE_INPUT_BYTES).contains(&b.max_input_bytes) {
        return Err(err(key("max_input_bytes"), format!("must be between 1 and {MAX_RULE_INPUT_BYTES}")));
    }
    if b.max_comprehension_depth > MAX_COMPREHENSION_DEPTH {
        return Err(err(
            key("max_comprehension_depth"),
            format!("at most {MAX_COMPREHENSION_DEPTH}: each level multiplies a rule's work by its input"),
        ));
    }
    if !(1..=MAX_EXPRESSION_NODES).contains(&b.max_expression_nodes) {
        return Err(err(key("max_expression_nodes"), format!("must be between 1 and {MAX_EXPRESSION_NODES}")));
    }
    if !(1..=MAX_RULE_BUDGET_MS).contains(&b.budget_ms) {
        return Err(err(
            key("budget_ms"),
            format!(
                "must be between 1 and {MAX_RULE_BUDGET_MS}: every other conversation waits while a rule runs, and a router held for longer than its lease (router.lease_ttl_secs) loses it"
            ),
        ));
    }
    Ok(())
}

/// Upper bounds of the `rule_budget` settings: a second per rule already holds every other
/// conversation of the group a second per message.
const MAX_RULE_INPUT_BYTES: usize = 1 << 20;
const MAX_COMPREHENSION_DEPTH: u8 = 8;
const MAX_EXPRESSION_NODES: usize = 100_000;
const MAX_RULE_BUDGET_MS: u64 = 1_000;

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
    pub kb_first: bool,
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
    pub customer_clock_ms: Ms,
    pub human_phrases: Vec<String>,
    /// How long the L0 bot waits for the customer's answer (`l0_timeout_secs`).
    pub l0_timeout_ms: Ms,
    /// Handle time assumed for a team before it has any measured (`queue_notice.default_handle_secs`).
    pub default_handle_ms: Ms,
}

/// Default first-response targets (seconds) for P1..P4 when a team sets none.
const DEFAULT_SLA_SECS: [u64; 4] = [15 * 60, 60 * 60, 2 * 3600, 24 * 3600];

impl Compiled {
    pub fn new(cfg: &RoutingConfig) -> Result<Compiled, RoutingConfigError> {
        if cfg.teams.is_empty() {
            return Err(err("teams", "define at least one team"));
        }
        let qn = &cfg.queue_notice;
        if qn.check_secs == 0 || qn.interval_secs == 0 || qn.default_handle_secs == 0 || qn.min_position == 0 {
            let reason = "check_secs, interval_secs, default_handle_secs and min_position must be at least 1";
            return Err(err("queue_notice", reason));
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
                if *secs == 0 {
                    // Nothing can be answered in no time: every conversation would breach at once.
                    let reason = "must be at least 1 second";
                    return Err(err(key(&format!("first_response_secs.{class}")), reason.to_string()));
                }
                sla_ms[i] = duration_ms(|| key(&format!("first_response_secs.{class}")), *secs)?;
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
                steps.push((duration_ms(|| key(&format!("escalation[{i}].after_secs")), s.after_secs)?, step));
            }
            let hours = match &t.business_hours {
                Some(h) => Some(BusinessHours::compile(h).map_err(|e| err(key("business_hours"), e))?),
                None => None,
            };
            let offer_timeout_ms = match t.offer_timeout_secs.filter(|s| *s > 0) {
                Some(secs) => Some(duration_ms(|| key("offer_timeout_secs"), secs)?),
                None => None,
            };
            teams.push(Team {
                name: name.clone(),
                strategy: t.strategy,
                sla_ms,
                offer_timeout_ms,
                max_missed: t.max_missed_offers,
                sticky_wait_ms: duration_ms(|| key("sticky_wait_secs"), t.sticky_wait_secs)?,
                steps,
                hours,
                out_of_hours_reply: t.out_of_hours_reply.clone(),
                kb_first: t.kb_first,
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
        let tz = crate::hours::parse_timezone(tz).map_err(|e| err("timezone", e))?;
        check_rule_budget(&cfg.rule_budget)?;
        let rules = RuleSet::compile_with(&cfg.rules, tz, &cfg.rule_budget).map_err(|e| {
            let key = e.index.map_or_else(|| "rules".to_string(), |i| format!("rules[{i}]"));
            err(key, e.to_string())
        })?;
        let aging_secs = if cfg.aging_secs_per_point == 0 { 30 } else { cfg.aging_secs_per_point };
        let aging_ms = duration_ms(|| "aging_secs_per_point".into(), aging_secs)?;
        let reopen_ms = match cfg.reopen_window_secs {
            0 => 7 * 24 * 3600 * 1000,
            secs => duration_ms(|| "reopen_window_secs".into(), secs)?,
        };
        let customer_clock_ms = match cfg.customer_clock_max_lag_secs {
            0 => 10 * 60 * 1000,
            secs => duration_ms(|| "customer_clock_max_lag_secs".into(), secs)?,
        };
        let l0_timeout_ms = match cfg.l0_timeout_secs {
            0 => 3_600_000,
            secs => duration_ms(|| "l0_timeout_secs".into(), secs)?,
        };
        Ok(Compiled {
            customer_clock_ms,
            teams,
            team_ix,
            skills,
            skill_ix,
            rules,
            default_team,
            reopen_ms,
            aging_ms,
            l0_timeout_ms,
            human_phrases: cfg.human_phrases.iter().map(|p| p.to_lowercase()).filter(|p| !p.is_empty()).collect(),
            default_handle_ms: cfg.queue_notice.default_handle_secs as Ms * 1000,
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

#[cfg(test)]
mod tests {
    use crate::{Engine, RoutingConfig};

    fn engine(toml: &str) -> Result<Engine, crate::RoutingConfigError> {
        let cfg: RoutingConfig = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}"));
        Engine::new(&cfg)
    }

    /// Found while writing the `rules` fuzz target: seconds times 1000 overflowed (a panic with overflow
    /// checks, a negative deadline without).
    #[test]
    fn durations_beyond_ten_years_are_refused_naming_the_key() {
        let huge = i64::MAX;
        for (toml, key) in [
            (format!("[teams.s]\nfirst_response_secs = {{ P1 = {huge} }}"), "teams.s.first_response_secs.P1"),
            (format!("[teams.s]\noffer_timeout_secs = {huge}"), "teams.s.offer_timeout_secs"),
            (format!("[teams.s]\nsticky_wait_secs = {huge}"), "teams.s.sticky_wait_secs"),
            (
                format!("[teams.s]\nescalation = [{{ after_secs = {huge}, action = {{ type = \"add_next_tier\" }} }}]"),
                "teams.s.escalation[0].after_secs",
            ),
            (format!("reopen_window_secs = {huge}\n[teams.s]"), "reopen_window_secs"),
            (format!("aging_secs_per_point = {huge}\n[teams.s]"), "aging_secs_per_point"),
        ] {
            let err =
                engine(&format!("default_team = \"s\"\n{toml}")).err().unwrap_or_else(|| panic!("{toml} accepted"));
            assert_eq!(err.key, key, "{err}");
            assert!(err.reason.contains("longer than ten years"), "{err}");
        }
        let err =
            engine("default_team = \"s\"\n[teams.s]\nfirst_response_secs = { P2 = 0 }").err().expect("0 s refused");
        assert_eq!(
            (err.key.as_str(), err.reason.as_str()),
            ("teams.s.first_response_secs.P2", "must be at least 1 second")
        );
        let ten_years = 10 * 365 * 24 * 3600;
        assert!(
            engine(&format!("default_team = \"s\"\n[teams.s]\nfirst_response_secs = {{ P1 = {ten_years} }}")).is_ok()
        );
    }
}
