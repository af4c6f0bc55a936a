//! A readable driver for scenario tests: inputs by name and seconds, decisions as short strings.

#![allow(dead_code)]

use std::collections::BTreeMap;

use switchboard_core::{AgentStatus, SupervisorOp};
use switchboard_routing::{Decision, Engine, Input, MessageInfo, RoutingConfig};
use uuid::Uuid;

/// An engine plus names for conversations (`c1`, `c2`, ... in order of opening).
pub struct Sim {
    pub engine: Engine,
    names: BTreeMap<Uuid, String>,
    next: u128,
}

pub fn config(toml: &str) -> RoutingConfig {
    toml::from_str(toml).unwrap_or_else(|e| panic!("test config does not parse: {e}"))
}

impl Sim {
    pub fn new(toml: &str) -> Sim {
        let engine = Engine::new(&config(toml)).unwrap_or_else(|e| panic!("engine refused the config: {e}"));
        Sim { engine, names: BTreeMap::new(), next: 1 }
    }

    pub fn id(&self, name: &str) -> Uuid {
        *self.names.iter().find(|(_, n)| *n == name).unwrap_or_else(|| panic!("no conversation {name}")).0
    }

    fn run(&mut self, input: Input) -> Vec<String> {
        let decisions = self.engine.handle(input);
        decisions.iter().map(|d| self.render(d)).collect()
    }

    /// A customer message on `channel` at `secs`.
    pub fn msg(&mut self, secs: i64, customer: &str, channel: &str, text: &str) -> Vec<String> {
        self.msg_with(secs, customer, MessageInfo { channel: channel.into(), text: text.into(), ..Default::default() })
    }

    pub fn msg_with(&mut self, secs: i64, customer: &str, message: MessageInfo) -> Vec<String> {
        let new_id = Uuid::from_u128(self.next);
        if !self.names.contains_key(&new_id) {
            // Named before running so that the decisions render with it; dropped if unused.
            self.names.insert(new_id, format!("c{}", self.next));
        }
        let out = self.run(Input::CustomerMessage {
            at: secs * 1000,
            customer: customer.into(),
            new_id,
            message,
            written_at: None,
        });
        if self.engine.where_is(new_id).is_some() {
            self.next += 1;
        } else {
            self.names.remove(&new_id);
        }
        out
    }

    pub fn status(&mut self, secs: i64, agent: &str, status: AgentStatus) -> Vec<String> {
        self.run(Input::AgentStatus { at: secs * 1000, agent: agent.into(), status })
    }

    pub fn online(&mut self, secs: i64, agent: &str) -> Vec<String> {
        self.status(secs, agent, AgentStatus::Online)
    }

    pub fn accept(&mut self, secs: i64, agent: &str, conv: &str) -> Vec<String> {
        let conversation = self.id(conv);
        self.run(Input::Accept { at: secs * 1000, agent: agent.into(), conversation })
    }

    pub fn decline(&mut self, secs: i64, agent: &str, conv: &str) -> Vec<String> {
        let conversation = self.id(conv);
        self.run(Input::Decline { at: secs * 1000, agent: agent.into(), conversation })
    }

    pub fn reply(&mut self, secs: i64, agent: &str, conv: &str) -> Vec<String> {
        let conversation = self.id(conv);
        self.run(Input::AgentReplied { at: secs * 1000, agent: agent.into(), conversation })
    }

    pub fn resolve(&mut self, secs: i64, agent: &str, conv: &str) -> Vec<String> {
        let conversation = self.id(conv);
        self.run(Input::Resolve { at: secs * 1000, agent: agent.into(), conversation })
    }

    pub fn transfer(
        &mut self,
        secs: i64,
        agent: &str,
        conv: &str,
        to_agent: Option<&str>,
        to_team: Option<&str>,
    ) -> Vec<String> {
        let conversation = self.id(conv);
        self.run(Input::Transfer {
            at: secs * 1000,
            agent: agent.into(),
            conversation,
            to_agent: to_agent.map(Into::into),
            to_team: to_team.map(Into::into),
            note: Some("see history".into()),
        })
    }

    /// A supervisor (`lead`) applies `op` to a conversation, with a note.
    pub fn supervise(&mut self, secs: i64, conv: &str, op: SupervisorOp) -> Vec<String> {
        let conversation = self.id(conv);
        self.run(Input::Supervise {
            at: secs * 1000,
            supervisor: "lead".into(),
            conversation,
            op,
            note: Some("VIP customer".into()),
        })
    }

    pub fn escalate(&mut self, secs: i64, agent: &str, conv: &str) -> Vec<String> {
        let conversation = self.id(conv);
        self.run(Input::Escalate {
            at: secs * 1000,
            agent: agent.into(),
            conversation,
            tier: None,
            note: Some("needs L2".into()),
        })
    }

    /// Adds or redefines an agent from a TOML `[[agents]]` body (without the header).
    pub fn define(&mut self, secs: i64, agent_toml: &str, keep_status: bool) -> Vec<String> {
        let agent = toml::from_str(agent_toml).unwrap_or_else(|e| panic!("test agent does not parse: {e}"));
        self.run(Input::DefineAgent { at: secs * 1000, agent: Box::new(agent), keep_status })
    }

    pub fn tick(&mut self, secs: i64) -> Vec<String> {
        self.run(Input::Tick { at: secs * 1000 })
    }

    pub fn where_is(&self, conv: &str) -> String {
        match self.engine.where_is(self.id(conv)) {
            Some((state, Some(agent))) => format!("{state} {agent}"),
            Some((state, None)) => state.to_string(),
            None => "gone".into(),
        }
    }

    /// The waiting conversations' names in unified queue order.
    pub fn queue_names(&self) -> Vec<String> {
        self.engine.queue().iter().map(|q| self.name(&q.conversation)).collect()
    }

    fn name(&self, id: &Uuid) -> String {
        self.names.get(id).cloned().unwrap_or_else(|| id.to_string())
    }

    fn render(&self, d: &Decision) -> String {
        match d {
            Decision::Opened { conversation, repeat } => {
                format!("opened {}{}", self.name(conversation), if *repeat { " repeat" } else { "" })
            }
            Decision::Reopened { conversation } => format!("reopened {}", self.name(conversation)),
            Decision::Queued { conversation, team, tier, priority, .. } => {
                format!("queued {} {team} {tier:?} p{}", self.name(conversation), priority.0)
            }
            Decision::AutoReply { conversation, text, reason } => {
                format!("auto-reply {} {reason:?}: {text}", self.name(conversation))
            }
            Decision::KbAnswer { conversation, team } => format!("kb-answer {} {team}", self.name(conversation)),
            Decision::Offer { conversation, agent, .. } => format!("offer {} {agent}", self.name(conversation)),
            Decision::OfferTimedOut { conversation, agent } => format!("timeout {} {agent}", self.name(conversation)),
            Decision::OfferWithdrawn { conversation, agent } => {
                format!("withdrawn {} {agent}", self.name(conversation))
            }
            Decision::Assigned { conversation, agent } => format!("assigned {} {agent}", self.name(conversation)),
            Decision::DeliverToAgent { conversation, agent } => format!("deliver {} {agent}", self.name(conversation)),
            Decision::FirstResponse { conversation, within_sla } => {
                format!("first-response {} {}", self.name(conversation), if *within_sla { "in-sla" } else { "late" })
            }
            Decision::Escalated { conversation, cause, tier, team, .. } => {
                format!("escalated {} {cause:?} {tier:?} {team}", self.name(conversation))
            }
            Decision::Transferred { conversation, from_agent, to_agent, team, .. } => format!(
                "transferred {} {} -> {} {team}",
                self.name(conversation),
                from_agent.as_deref().unwrap_or("-"),
                to_agent.as_deref().unwrap_or("-")
            ),
            Decision::PriorityChanged { conversation, from, to } => {
                format!("priority {} p{} -> p{}", self.name(conversation), from.0, to.0)
            }
            Decision::SlaBreached { conversation } => format!("sla-breached {}", self.name(conversation)),
            Decision::Resolved { conversation, agent } => {
                format!("resolved {} {}", self.name(conversation), agent.as_deref().unwrap_or("-"))
            }
            Decision::AgentStatusChanged { agent, status, .. } => format!("status {agent} {status:?}"),
            Decision::Rejected { reason, .. } => format!("rejected: {reason}"),
        }
    }
}
