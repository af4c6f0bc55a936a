//! Agents' definitions: built from the configuration at start, added or redefined at runtime, and
//! reconciled with a snapshot on restore (the file defines its agents, runtime state is kept).

use switchboard_core::AgentStatus;

use crate::compiled::RoutingConfigError;
use crate::config::AgentConfig;
use crate::engine::Engine;
use crate::model::Decision;
use crate::roster::build_agent;
use crate::state::{Agent, AgentIx};

impl Engine {
    /// Adds an agent, or replaces a known agent's definition while keeping what it holds.
    pub(crate) fn define_agent(&mut self, a: AgentConfig, keep_status: bool, out: &mut Vec<Decision>) {
        let mut st = std::mem::take(&mut self.st);
        let built = build_agent(&self.cfg, &mut st, &mut self.kind_ix, &a);
        self.st = st;
        let new = match built {
            Ok(agent) => agent,
            Err(e) => {
                out.push(Decision::Rejected {
                    conversation: None,
                    agent: Some(a.id),
                    reason: format!("invalid agent: {}: {}", e.key, e.reason),
                });
                return;
            }
        };
        let Some(ix) = self.agent_ix.get(a.id.as_str()).copied() else {
            let ix = self.st.agents.len() as AgentIx;
            let status = new.status;
            self.st.agents.push(Agent { status: AgentStatus::Offline, ..new });
            self.agent_ix.insert(a.id.as_str().into(), ix);
            self.set_status(ix, status, None, out);
            return;
        };
        let status = if keep_status { self.st.agents[ix as usize].status } else { new.status };
        self.redefine(ix, new);
        self.set_status(ix, status, None, out);
    }

    /// Replaces agent `ix`'s definition, keeping its status, load and turns.
    pub(crate) fn redefine(&mut self, ix: AgentIx, new: Agent) {
        self.index_agent(ix, false);
        let agent = &mut self.st.agents[ix as usize];
        agent.name = new.name;
        agent.teams = new.teams;
        agent.tiers = new.tiers;
        agent.skills = new.skills;
        agent.capacity = new.capacity;
        agent.default_capacity = new.default_capacity;
        agent.max_total = new.max_total;
        self.index_agent(ix, true);
    }

    /// Reconciles a restored state with the configuration file: agents the file defines take
    /// its definition (status, capacity changes made at runtime and what they hold are kept:
    /// runtime state), agents new in the file are added, agents added at runtime stay.
    pub(crate) fn reconcile_agents(&mut self, agents: &[AgentConfig]) -> Result<(), RoutingConfigError> {
        self.agent_ix = self.st.agents.iter().enumerate().map(|(i, a)| (a.id.clone(), i as AgentIx)).collect();
        for a in agents {
            let mut st = std::mem::take(&mut self.st);
            let built = build_agent(&self.cfg, &mut st, &mut self.kind_ix, a);
            self.st = st;
            let new = built?;
            match self.agent_ix.get(a.id.as_str()).copied() {
                Some(ix) => {
                    let old = &self.st.agents[ix as usize];
                    // Capacity set at runtime stays; the file's other fields win.
                    let kept = Agent {
                        capacity: old.capacity.clone(),
                        default_capacity: old.default_capacity,
                        max_total: old.max_total,
                        ..new
                    };
                    self.redefine(ix, kept);
                }
                None => {
                    let ix = self.st.agents.len() as AgentIx;
                    self.st.agents.push(new);
                    self.agent_ix.insert(a.id.as_str().into(), ix);
                    self.index_agent(ix, true);
                }
            }
        }
        Ok(())
    }
}
