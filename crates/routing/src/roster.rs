//! An agent's routing definition built from its configuration and checked against the compiled
//! configuration: used at start, when an agent is defined at runtime and on restore.

use smallvec::SmallVec;

use crate::compiled::{Compiled, RoutingConfigError, tier_bit};
use crate::config::AgentConfig;
use crate::skills::parse_skill;
use crate::state::{Agent, State, intern_kind, set_at};

/// The definition part of an agent (what configuration says), checked against the compiled
/// configuration; runtime fields (status, load, turns) start empty.
pub(crate) fn build_agent(
    cfg: &Compiled,
    st: &mut State,
    engine_kinds: &mut std::collections::HashMap<String, u16>,
    a: &AgentConfig,
) -> Result<Agent, RoutingConfigError> {
    let err = |key: &str, reason: String| RoutingConfigError { key: key.into(), reason };
    if a.teams.is_empty() {
        return Err(err("teams", "an agent needs at least one team".into()));
    }
    let mut teams = SmallVec::new();
    for t in &a.teams {
        teams.push(*cfg.team_ix.get(t).ok_or_else(|| err("teams", format!("unknown team `{t}`")))?);
    }
    if a.tiers.is_empty() {
        return Err(err("tiers", "an agent needs at least one tier".into()));
    }
    if a.max_total == 0 {
        return Err(err("max_total", "must be greater than 0".into()));
    }
    let mut skills = SmallVec::new();
    for s in &a.skills {
        let (name, level) = parse_skill(s).map_err(|e| err("skills", e))?;
        let ix = cfg.skill_ix.get(&name).ok_or_else(|| {
            err("skills", format!("skill `{name}` is used by no rule and no agent of the configuration file"))
        })?;
        skills.push((*ix, level));
    }
    skills.sort_unstable();
    skills.dedup_by_key(|(s, _)| *s);
    let mut capacity = SmallVec::new();
    for (kind, cap) in &a.capacity {
        let k = intern_kind(&mut st.kinds, engine_kinds, kind);
        set_at(&mut capacity, k, Some(*cap));
    }
    Ok(Agent {
        id: a.id.as_str().into(),
        name: a.name.clone(),
        teams,
        tiers: a.tiers.iter().fold(0, |m, t| m | tier_bit(*t)),
        skills,
        capacity,
        default_capacity: a.default_capacity,
        max_total: a.max_total,
        status: a.status,
        load: SmallVec::new(),
        total: 0,
        last_assigned: 0,
        rr_seq: 0,
        missed: 0,
    })
}
