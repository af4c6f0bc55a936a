//! Agents' commands: checked against the conversation and the agent, handed to the engine, and
//! what they do beyond it (replies out to the customer, notes, status changes, runtime agents).

use switchboard_core::agent::{Author, HistoryEntry};
use switchboard_core::outbound::ChannelAddress;
use switchboard_core::{AgentCommand, CommandAction, EventKind, OutboundKind, OutboundMessage};
use switchboard_routing::config::AgentConfig;
use switchboard_routing::{ConversationId, Input, Ms};

use crate::decisions::{agent_name_metadata, reply_subject};
use crate::effect::{AGENT_STREAM, Effect};
use crate::router::{Fx, Router, time};

impl Router {
    pub(crate) fn command(&mut self, at: Ms, command: &AgentCommand, fx: &mut Fx) {
        let agent = command.agent_id.clone();
        if let CommandAction::DefineAgent { teams, .. } = &command.action {
            // Another group's agent: that group answers; this one only remembers where it lives.
            if let Some(owner) = self.defined_elsewhere(&agent, teams) {
                self.st.elsewhere.insert(agent, owner);
                return;
            }
            self.st.elsewhere.remove(&agent);
        }
        // A saved reply the leader could not render changes nothing: no message, no event.
        if let Some(reason) = self.template_refusal(command) {
            fx.out.push(Effect::CommandResult { command: command.id, rejected: Some(reason) });
            return;
        }
        let conversation = command.conversation_id.unwrap_or_default();
        let input = match &command.action {
            CommandAction::Accept => Some(Input::Accept { at, agent: agent.clone(), conversation }),
            CommandAction::Decline { .. } => Some(Input::Decline { at, agent: agent.clone(), conversation }),
            CommandAction::Reply { .. } => Some(Input::AgentReplied { at, agent: agent.clone(), conversation }),
            CommandAction::Transfer { to_agent, to_team, note } => Some(Input::Transfer {
                at,
                agent: agent.clone(),
                conversation,
                to_agent: to_agent.clone(),
                to_team: to_team.clone(),
                note: note.clone(),
            }),
            CommandAction::Escalate { tier, note } => {
                Some(Input::Escalate { at, agent: agent.clone(), conversation, tier: *tier, note: note.clone() })
            }
            CommandAction::Resolve => Some(Input::Resolve { at, agent: agent.clone(), conversation }),
            CommandAction::SetStatus { status } => {
                Some(Input::AgentStatus { at, agent: agent.clone(), status: *status })
            }
            CommandAction::SetCapacity { capacity, max_total } => Some(Input::AgentCapacity {
                at,
                agent: agent.clone(),
                capacity: capacity.clone(),
                max_total: *max_total,
            }),
            CommandAction::DefineAgent { .. } => self.define_agent(at, command, fx),
            CommandAction::Supervise { .. } => self.supervise(at, command, fx),
            CommandAction::Note { .. } => {
                let decisions = self.engine.handle(Input::Tick { at });
                self.decisions(decisions, fx);
                if !self.engine.knows_agent(&agent) {
                    fx.rejected = Some(format!("unknown agent `{agent}`"));
                } else {
                    match self.st.records.get(&conversation) {
                        None => fx.rejected = Some("unknown conversation".into()),
                        // A note lands in the conversation's history, which its agent and the
                        // next ones read: only the agent holding it (or last holding it) writes one.
                        Some(r) if r.agent.as_deref() != Some(agent.as_str()) => {
                            fx.rejected = Some("the conversation is not assigned to this agent".into())
                        }
                        Some(_) => {}
                    }
                }
                None
            }
        };
        if let Some(input) = input {
            let decisions = self.engine.handle(input);
            self.decisions(decisions, fx);
        }
        if fx.rejected.is_none() {
            self.carried_out(at, command, fx);
        } else if let Some(previous) = fx.previous_endpoints.take() {
            match previous {
                Some(kinds) => self.st.agent_endpoints.insert(agent.clone(), kinds),
                None => self.st.agent_endpoints.remove(&agent),
            };
        }
        fx.out.push(Effect::CommandResult { command: command.id, rejected: fx.rejected.clone() });
    }

    /// What a command does beyond the engine's decisions, once the engine accepted it.
    pub(crate) fn carried_out(&mut self, at: Ms, command: &AgentCommand, fx: &mut Fx) {
        let agent = command.agent_id.as_str();
        // The engine reports only the status changes it makes itself; an agent's own ones are
        // needed too, for occupancy (time logged in).
        if let CommandAction::SetStatus { status } | CommandAction::DefineAgent { status: Some(status), .. } =
            &command.action
        {
            let data = serde_json::json!({ "status": status, "reason": "set by the agent" });
            fx.event(EventKind::AgentStatusChanged, None, Some(agent), data);
        }
        let Some(conversation) = command.conversation_id else { return };
        // Whatever the command did, the stored record follows the engine (a decline that
        // leaves the conversation waiting makes no decision of its own).
        fx.touched.insert(conversation);
        match &command.action {
            CommandAction::Reply { text, attachments, template } => {
                let Some(r) = self.st.records.get_mut(&conversation) else { return };
                let id = fx.id();
                r.push(HistoryEntry {
                    outbound_id: Some(id),
                    attachments: attachments.clone(),
                    ..HistoryEntry::new(time(at), Author::Agent, Some(agent.into()), text.clone())
                });
                let outbound = OutboundMessage {
                    id,
                    conversation_id: conversation,
                    channel: r.channel.clone(),
                    to: ChannelAddress { customer_id: r.customer.id.clone(), thread_key: r.thread_key.clone() },
                    text: text.clone(),
                    subject: r.subject.as_ref().map(|s| reply_subject(s)),
                    attachments: attachments.clone(),
                    reply_to: r.last_provider_message_id.clone(),
                    kind: OutboundKind::AgentReply,
                    agent_id: Some(agent.into()),
                    created_at: time(at),
                    metadata: agent_name_metadata(self.engine.agent_name(agent)),
                };
                fx.out.push(Effect::Outbound(outbound));
                let mut data = match fx.first_response {
                    Some(within_sla) => serde_json::json!({ "first_response": true, "within_sla": within_sla }),
                    None => serde_json::json!({ "first_response": false }),
                };
                if let (Some(name), Some(map)) = (template, data.as_object_mut()) {
                    map.insert("template".into(), name.clone().into());
                }
                self.conversation_event(fx, EventKind::AgentReplied, conversation, Some(agent), data);
                fx.touched.insert(conversation);
            }
            CommandAction::Note { text } => {
                if let Some(r) = self.st.records.get_mut(&conversation) {
                    r.push(HistoryEntry::new(time(at), Author::Note, Some(agent.into()), text.clone()));
                    fx.touched.insert(conversation);
                }
            }
            CommandAction::Decline { reason } => {
                self.conversation_event(
                    fx,
                    EventKind::OfferDeclined,
                    conversation,
                    Some(agent),
                    serde_json::json!({ "reason": reason }),
                );
            }
            _ => {}
        }
    }

    pub(crate) fn note(&mut self, conversation: ConversationId, note: Option<String>, fx: &mut Fx) {
        if let (Some(text), Some(r)) = (note, self.st.records.get_mut(&conversation)) {
            r.push(HistoryEntry::new(time(fx.at), Author::Note, None, text));
            fx.touched.insert(conversation);
        }
    }

    /// Where an agent's deliveries go: its endpoint kinds (the agent's own stream, read by
    /// `GET /v1/agent/events`, reads the first kind's), or [`AGENT_STREAM`] alone for an agent
    /// without endpoints.
    pub(crate) fn endpoint_kinds(&self, agent: &str) -> Vec<String> {
        let runtime = self.st.agent_endpoints.get(agent);
        let mut kinds = runtime.or_else(|| self.cfg.endpoints.get(agent)).cloned().unwrap_or_default();
        kinds.retain(|k| k != AGENT_STREAM);
        if kinds.is_empty() && switchboard_core::agent::has_own_stream(agent) {
            kinds.push(AGENT_STREAM.into());
        }
        kinds
    }

    /// The engine input for a `define_agent` command, or a rejection: agents of the configuration
    /// file are changed in the file, since every start applies the file to them again.
    pub(crate) fn define_agent(&mut self, at: Ms, command: &AgentCommand, fx: &mut Fx) -> Option<Input> {
        let CommandAction::DefineAgent {
            name,
            teams,
            tiers,
            skills,
            capacity,
            default_capacity,
            max_total,
            status,
            endpoints,
        } = &command.action
        else {
            return None;
        };
        let id = &command.agent_id;
        if self.cfg.routing.agents.iter().any(|a| a.id == *id) {
            fx.rejected = Some(format!("agent `{id}` is defined in the configuration file; change it there"));
            return None;
        }
        let defaults = AgentConfig::new(id);
        let agent = AgentConfig {
            id: id.clone(),
            name: name.clone(),
            teams: teams.clone(),
            tiers: tiers.clone(),
            skills: skills.clone(),
            capacity: capacity.clone(),
            default_capacity: default_capacity.unwrap_or(defaults.default_capacity),
            max_total: max_total.unwrap_or(defaults.max_total),
            status: status.unwrap_or(defaults.status),
        };
        // Recorded before the engine decides, so an offer made at once goes to the new endpoints;
        // a rejected definition is undone in `command`.
        fx.previous_endpoints = Some(self.st.agent_endpoints.insert(id.clone(), endpoints.clone()));
        Some(Input::DefineAgent { at, agent: Box::new(agent), keep_status: status.is_none() })
    }
}
