//! Explanations and read-only views: why a conversation is where it is, what waits in the queue,
//! and snapshots.

use serde::{Deserialize, Serialize};
use switchboard_core::{AgentStatus, Priority, Tier};

use crate::Decision;
use crate::assign::Verdict;
use crate::engine::Engine;
use crate::model::{ConversationId, Ms};
use crate::state::{AgentIx, ConvState, State};
use crate::{RoutingConfig, RoutingConfigError};

/// Why a conversation is routed the way it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The conversation.
    pub conversation: ConversationId,
    /// Names of the rules that matched, in order.
    pub matched_rules: Vec<String>,
    /// Team, tier, priority it is routed with.
    pub team: String,
    /// Tier.
    pub tier: Tier,
    /// Priority.
    pub priority: Priority,
    /// Required skills as `name:level`.
    pub skills: Vec<String>,
    /// `queued`, `offered`, `assigned`, `resolved` or `bot`.
    pub state: String,
    /// The agent holding or being offered it.
    pub agent: Option<String>,
    /// Every agent and whether it could take the conversation now, and if not why.
    pub candidates: Vec<(String, Verdict)>,
}

/// Whether a team can answer now: what a chat widget shows before the visitor writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamAvailability {
    /// Team name.
    pub team: String,
    /// Agents of the team who are online now.
    pub online_agents: u32,
    /// Within the team's business hours (always true for a team without hours).
    pub open: bool,
}

/// One agent as the router sees it now: what `switchboard agents list` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Availability.
    pub status: AgentStatus,
    /// Team names.
    pub teams: Vec<String>,
    /// Tiers the agent works at.
    pub tiers: Vec<Tier>,
    /// Open conversations (offered or assigned).
    pub load: u32,
    /// The agent's total cap.
    pub max_total: u32,
    /// Offers timed out in a row.
    pub missed_offers: u32,
}

/// One waiting conversation in the unified queue view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// The conversation.
    pub conversation: ConversationId,
    /// Team.
    pub team: String,
    /// Tier.
    pub tier: Tier,
    /// Priority.
    pub priority: Priority,
    /// Waiting since.
    pub waiting_since: Ms,
    /// First-response deadline.
    pub sla_deadline: Ms,
}

impl Engine {
    /// Explains a conversation's routing: rules matched, requirements, and a verdict per agent.
    /// The rule part is recorded at routing time; the verdicts are computed now.
    pub fn explain(&self, conversation: ConversationId) -> Option<Explanation> {
        let ix = *self.st.conv_ix.get(&conversation)?;
        let c = self.conv(ix)?;
        Some(Explanation {
            conversation,
            matched_rules: c.matched_rules.iter().map(|r| self.cfg.rules.name(*r).to_string()).collect(),
            team: self.cfg.teams[c.team as usize].name.clone(),
            tier: c.tier,
            priority: c.priority,
            skills: c.skills.iter().map(|(s, l)| format!("{}:{l}", self.cfg.skills[*s as usize])).collect(),
            state: c.state.name().into(),
            agent: c.holder().map(|a| self.st.agents[a as usize].id.as_str().to_owned()),
            candidates: (0..self.st.agents.len() as u32)
                .map(|a| (self.st.agents[a as usize].id.as_str().to_owned(), self.verdict(a, ix)))
                .collect(),
        })
    }

    /// The unified queue across teams: priority with aging first, then age; oldest first.
    pub fn queue(&self) -> Vec<QueueEntry> {
        let mut all: Vec<(i64, u64, u32)> = self.waiting().collect();
        all.sort_unstable();
        all.into_iter()
            .filter_map(|(_, _, ix)| self.conv(ix))
            .map(|c| QueueEntry {
                conversation: c.id,
                team: self.cfg.teams[c.team as usize].name.clone(),
                tier: c.tier,
                priority: c.priority,
                waiting_since: c.waiting_since,
                sla_deadline: c.sla_deadline,
            })
            .collect()
    }

    /// Number of conversations waiting.
    pub fn queued(&self) -> usize {
        self.st.classes.iter().map(|c| c.queue.len()).sum::<usize>() + self.st.reserved.len()
    }

    /// The whole state, to persist; [`Engine::restore`] brings it back exactly.
    pub fn snapshot(&self) -> State {
        self.st.clone()
    }

    /// Rebuilds an engine from the configuration it ran with and a snapshot of its state.
    pub fn restore(config: &RoutingConfig, snapshot: State) -> Result<Engine, RoutingConfigError> {
        let mut engine = Engine::new(config)?;
        if snapshot.available.len() != engine.st.available.len()
            || snapshot.classes.iter().any(|c| c.team as usize >= engine.cfg.teams.len())
        {
            return Err(RoutingConfigError {
                key: "teams".into(),
                reason: "the snapshot was taken with different teams; restore needs the same teams".into(),
            });
        }
        engine.kind_ix = snapshot.kinds.iter().enumerate().map(|(i, k)| (k.clone(), i as u16)).collect();
        engine.st = snapshot;
        engine.reconcile_agents(&config.agents)?;
        engine.index_classes();
        Ok(engine)
    }

    /// Whether `config` has the teams this engine runs with (what [`Engine::reconfigure`] needs).
    pub fn same_teams(&self, config: &RoutingConfig) -> Result<(), RoutingConfigError> {
        let running: Vec<&str> = self.cfg.teams.iter().map(|t| t.name.as_str()).collect();
        let wanted: Vec<&str> = config.teams.keys().map(String::as_str).collect();
        if running == wanted {
            return Ok(());
        }
        Err(RoutingConfigError {
            key: "teams".into(),
            reason: format!(
                "the teams differ from the running ones ({} now, {} in the file); changing teams needs a restart",
                running.join(", "),
                wanted.join(", ")
            ),
        })
    }

    /// The engine under a changed configuration (`routing` reloaded), keeping everything it
    /// knows; then each online agent takes what it now may (a new rule, skill or capacity can
    /// make a waiting conversation theirs). The teams must be the ones it runs with: their
    /// queues and pools are indexed by team, so adding, removing or renaming one needs a restart.
    pub fn reconfigure(&mut self, config: &RoutingConfig, at: Ms) -> Result<Vec<Decision>, RoutingConfigError> {
        self.same_teams(config)?;
        let mut next = Engine::restore(config, self.snapshot())?;
        let mut out = Vec::new();
        next.input_at = at;
        next.advance(at, &mut out);
        for a in 0..next.st.agents.len() {
            if next.st.agents[a].status == AgentStatus::Online {
                next.pull(a as AgentIx, &mut out);
            }
        }
        *self = next;
        Ok(out)
    }

    /// The customer's latest conversation while the engine remembers it (open, or resolved within
    /// the reopen window): where their next message goes.
    pub fn current_conversation(&self, customer: &str) -> Option<ConversationId> {
        let cust = *self.st.customers.get(customer)?;
        let ix = self.st.customer_recs.get(cust as usize)?.last_conv?;
        self.conv(ix).map(|c| c.id)
    }

    /// When the next timer falls due, if any: the service ticks the engine then.
    pub fn next_due(&self) -> Option<Ms> {
        self.st.timers.next_due()
    }

    /// Whether an agent with this id is configured.
    pub fn knows_agent(&self, agent: &str) -> bool {
        self.agent_ix.contains_key(agent)
    }

    /// Every team's availability at `now` (ms since the epoch).
    pub fn availability(&self, now: Ms) -> Vec<TeamAvailability> {
        let at = crate::time::to_utc(now);
        self.cfg
            .teams
            .iter()
            .enumerate()
            .map(|(ix, team)| TeamAvailability {
                team: team.name.clone(),
                online_agents: self
                    .st
                    .agents
                    .iter()
                    .filter(|a| a.status == switchboard_core::AgentStatus::Online && a.teams.contains(&(ix as u16)))
                    .count() as u32,
                open: team.hours.as_ref().is_none_or(|h| h.is_open(at)),
            })
            .collect()
    }

    /// Every agent the engine knows (configured or defined at runtime), in id order.
    pub fn agents(&self) -> Vec<AgentView> {
        const TIERS: [Tier; 5] = [Tier::L0, Tier::L1, Tier::L2, Tier::L3, Tier::L4];
        let mut all: Vec<AgentView> = self
            .st
            .agents
            .iter()
            .map(|a| AgentView {
                id: a.id.to_string(),
                name: a.name.clone(),
                status: a.status,
                teams: a.teams.iter().map(|t| self.cfg.teams[*t as usize].name.clone()).collect(),
                tiers: TIERS.iter().enumerate().filter(|(bit, _)| a.tiers & (1 << bit) != 0).map(|(_, t)| *t).collect(),
                load: a.total,
                max_total: a.max_total,
                missed_offers: a.missed,
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// An agent's display name, when the agent is known and has one.
    pub fn agent_name(&self, agent: &str) -> Option<&str> {
        let ix = *self.agent_ix.get(agent)?;
        self.st.agents[ix as usize].name.as_deref()
    }

    /// The conversations on offer now, each with its agent and the offer's deadline, in
    /// deadline order; only `agent`'s when given.
    pub fn offers(&self, agent: Option<&str>) -> Vec<(ConversationId, &str, Ms)> {
        let mut all: Vec<(ConversationId, &str, Ms)> = self
            .st
            .convs
            .iter()
            .flatten()
            .filter_map(|c| match c.state {
                ConvState::Offered { agent: a, deadline, .. } => {
                    Some((c.id, self.st.agents[a as usize].id.as_str(), deadline))
                }
                _ => None,
            })
            .filter(|(_, a, _)| agent.is_none_or(|want| want == *a))
            .collect();
        all.sort_by_key(|(id, _, deadline)| (*deadline, *id));
        all
    }

    /// When the conversation's current contact started (the customer's first message of it, on
    /// the customer's clock), while the engine remembers it.
    pub fn contact_start(&self, conversation: ConversationId) -> Option<Ms> {
        self.conv(*self.st.conv_ix.get(&conversation)?).map(|c| c.opened_at)
    }

    /// The conversation's short code (see [`crate::code`]), while the engine remembers it.
    pub fn code(&self, conversation: ConversationId) -> Option<String> {
        self.st.conv_ix.get(&conversation).map(|ix| crate::code::short_code(*ix))
    }

    /// Where a conversation is: `queued`, `offered`, `assigned`, `resolved` or `bot`, with its agent.
    pub fn where_is(&self, conversation: ConversationId) -> Option<(&'static str, Option<&str>)> {
        let c = self.conv(*self.st.conv_ix.get(&conversation)?)?;
        let agent = c.holder().map(|a| self.st.agents[a as usize].id.as_str());
        Some((c.state.name(), agent))
    }
}
