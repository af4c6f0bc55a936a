//! Supervisors' commands (`supervise`): the engine input, and what they leave beyond what the
//! same change by an agent leaves: `by_supervisor` in the events, and a note by the supervisor
//! in the conversation's history saying what they did, which the next agent reads (history goes
//! to agents only, never out to the customer).

use switchboard_core::agent::{Author, HistoryEntry};
use switchboard_core::{AgentCommand, CommandAction};
use switchboard_routing::{ConversationId, Input, Ms};

use crate::router::{Fx, Router, Supervising, time};

impl Router {
    /// The engine input for a supervisor's command. Timers that are due fire first, on their
    /// own, so that what they decide is not put down to the supervisor.
    pub(crate) fn supervise(&mut self, at: Ms, command: &AgentCommand, fx: &mut Fx) -> Option<Input> {
        let CommandAction::Supervise { op, note } = &command.action else { return None };
        let conversation = command.conversation_id.unwrap_or_default();
        let decisions = self.engine.handle(Input::Tick { at });
        self.decisions(decisions, fx);
        let holder = match self.engine.where_is(conversation) {
            Some(("assigned", Some(agent))) => Some(agent.to_string()),
            _ => None,
        };
        fx.supervisor = Some(Supervising { name: command.agent_id.clone(), conversation, holder, note: note.clone() });
        Some(Input::Supervise {
            at,
            supervisor: command.agent_id.clone(),
            conversation,
            op: op.clone(),
            note: note.clone(),
        })
    }

    /// Puts what the supervisor `name` did (`did`, e.g. "moved this to team billing") and their
    /// note into the conversation's history, as a note by them.
    pub(crate) fn supervisor_note(&mut self, conversation: ConversationId, name: &str, did: &str, fx: &mut Fx) {
        let note = fx.supervisor.as_ref().and_then(|s| s.note.as_deref()).map(str::trim).filter(|n| !n.is_empty());
        let text = match note {
            Some(note) => format!("Supervisor {name} {did}: {note}"),
            None => format!("Supervisor {name} {did}."),
        };
        if let Some(r) = self.st.records.get_mut(&conversation) {
            r.push(HistoryEntry::new(time(fx.at), Author::Note, Some(name.into()), text));
            fx.touched.insert(conversation);
        }
    }
}

/// Adds `by_supervisor` to an event's data when a supervisor made the change.
pub(crate) fn mark(data: &mut serde_json::Value, supervisor: Option<&str>) {
    if let (Some(name), Some(map)) = (supervisor, data.as_object_mut()) {
        map.insert("by_supervisor".into(), name.into());
    }
}
