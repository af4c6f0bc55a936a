//! Which inputs a router claims when the teams are divided into routing groups (see
//! `switchboard_routing::groups`): every group's router reads every input, journals and acts on
//! its own, and acks the rest untouched.

use switchboard_core::{AgentCommand, CommandAction, Envelope};
use uuid::Uuid;

use crate::inbound::message_info;
use crate::router::Router;

impl Router {
    /// Whether a customer message is this router's group's to route.
    pub fn claims_envelope(&self, envelope: &Envelope) -> bool {
        let Some(g) = self.cfg.group.as_ref().filter(|g| g.layout.divided()) else { return true };
        g.layout.owner_of_message(&message_info(envelope), &envelope.customer.id) == g.name
    }

    /// Whether an agent command is this router's group's to journal: commands on a
    /// conversation go to the group in the conversation's id; an agent's own commands to the
    /// agent's group. Every group journals `define_agent` (the agent's group acts on it, the
    /// others note where the agent lives), and the last group answers for agents nobody knows.
    pub fn claims_command(&self, command: &AgentCommand) -> bool {
        let Some(g) = self.cfg.group.as_ref().filter(|g| g.layout.divided()) else { return true };
        let layout = &g.layout;
        let agent = command.agent_id.as_str();
        match &command.action {
            CommandAction::DefineAgent { .. } => true,
            CommandAction::SetStatus { .. } | CommandAction::SetCapacity { .. } => {
                if let Some(owner) = layout.owner_of_agent(agent) {
                    owner == g.name
                } else if self.engine.knows_agent(agent) {
                    true
                } else if self.st.elsewhere.contains_key(agent) {
                    false
                } else {
                    layout.catch_all() == g.name
                }
            }
            _ => match command.conversation_id {
                Some(conversation) => layout.owner_of_conversation(conversation) == g.name,
                None => layout.catch_all() == g.name,
            },
        }
    }

    /// A new conversation's id, carrying this router's group when the teams are divided.
    pub fn new_conversation_id(&self) -> Uuid {
        let id = Uuid::now_v7();
        self.cfg.group.as_ref().map_or(id, |g| g.layout.tag_conversation(&g.name, id))
    }

    /// The group a runtime agent defined with `teams` belongs to, if it is not this one.
    pub(crate) fn defined_elsewhere(&self, agent: &str, teams: &[String]) -> Option<String> {
        let g = self.cfg.group.as_ref().filter(|g| g.layout.divided())?;
        let layout = &g.layout;
        let owner = layout
            .owner_of_agent(agent)
            .or_else(|| teams.first().and_then(|t| layout.owner_of_team(t)))
            .unwrap_or(layout.catch_all());
        (owner != g.name).then(|| owner.to_string())
    }
}
