//! The agents of a run: the configuration's plus the traffic's groups, all starting offline and
//! coming online for their shifts.

use std::collections::{BTreeMap, HashMap};

use switchboard_core::AgentStatus;
use switchboard_metrics::Ms;
use switchboard_routing::RoutingConfig;
use switchboard_routing::config::AgentConfig;

use crate::SimError;
use crate::traffic::{Shift, Traffic};

/// Agents by index, with what the simulation needs to know about each.
pub(crate) struct Roster {
    /// The routing configuration the router runs with (agents added, all offline at first).
    pub routing: RoutingConfig,
    /// Agent ids by index.
    pub ids: Vec<String>,
    /// Index by id.
    pub index: HashMap<String, u32>,
    /// Skill levels by index.
    pub skills: Vec<BTreeMap<String, u8>>,
    /// `(at, agent, online)` status changes over the run, in time order.
    pub shifts: Vec<(Ms, u32, bool)>,
}

pub(crate) fn roster(routing: &RoutingConfig, traffic: &Traffic, start: Ms, horizon: Ms) -> Result<Roster, SimError> {
    let mut routing = routing.clone();
    let mut shifts_by_agent: Vec<Shift> = Vec::new();
    for a in &routing.agents {
        shifts_by_agent.push(traffic.shifts.get(&a.id).cloned().unwrap_or_else(Shift::all_day));
    }
    for g in &traffic.agents {
        for n in 1..=g.count {
            let mut a = AgentConfig::new(&format!("{}-{n}", g.id));
            a.teams = g.teams.clone();
            a.tiers = g.tiers.clone();
            a.skills = g.skills.clone();
            a.capacity = g.capacity.clone();
            a.default_capacity = g.default_capacity.unwrap_or(a.default_capacity);
            a.max_total = g.max_total.unwrap_or(a.max_total);
            routing.agents.push(a);
            shifts_by_agent.push(g.shift.clone().unwrap_or_else(Shift::all_day));
        }
    }
    let mut ids = Vec::new();
    let mut index = HashMap::new();
    let mut skills = Vec::new();
    let mut shifts = Vec::new();
    for (i, (a, shift)) in routing.agents.iter_mut().zip(&shifts_by_agent).enumerate() {
        // The shifts decide when agents work, not the file's start-up status.
        a.status = AgentStatus::Offline;
        let (from, to) = shift.bounds_ms().ok_or_else(|| SimError::Shift {
            agent: a.id.clone(),
            reason: format!("`{}`-`{}` is not HH:MM to a later HH:MM within a day", shift.start, shift.end),
        })?;
        let mut day = start;
        while day < horizon {
            shifts.push((day + from, i as u32, true));
            shifts.push((day + to, i as u32, false));
            day += 86_400_000;
        }
        ids.push(a.id.clone());
        index.insert(a.id.clone(), i as u32);
        skills.push(
            a.skills
                .iter()
                .filter_map(|s| s.split_once(':'))
                .filter_map(|(name, level)| Some((name.to_string(), level.parse().ok()?)))
                .collect(),
        );
    }
    // An agent ending one day at 24:00 and starting the next at 00:00 stays online.
    shifts.sort_by_key(|&(at, agent, online)| (at, agent, online));
    Ok(Roster { routing, ids, index, skills, shifts })
}
