//! Saved replies (`kind: reply` in the knowledge base): the leader renders an agent's templated
//! reply before journaling it, so replay sends the same text after the folder changed; applying
//! it, a template that rendered to nothing is refused; and a customer's question that opens a
//! conversation is matched against the replies, to suggest some to the agent in the offer.

use switchboard_core::{AgentCommand, CommandAction, Envelope};
use switchboard_kb::{Filter, Kb, RenderError};
use switchboard_routing::ConversationId;

use crate::router::Router;

/// Most saved replies an offer suggests.
pub const MAX_SUGGESTED: usize = 3;

/// The score a saved reply needs to be suggested (or `[kb] min_score` when lower). Replies are a
/// handful of short documents, so their BM25 scores run lower than articles': on the example
/// folder "Where is my refund?" scores 2.2 for `refund-confirmed-en` and a plain greeting 1.1 for
/// `greeting-ru`, while the articles' bar is 4.7. An agent chooses what to send, so a looser bar
/// than the customer-facing one is safe.
pub const REPLY_MIN_SCORE: f32 = 2.0;

/// Why a saved reply could not be rendered for a conversation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The daemon loads no knowledge base (`[kb]`).
    #[error("no saved replies: no knowledge base is loaded ([kb] path)")]
    NoKb,
    /// The knowledge base has no reply of that name.
    #[error("no saved reply named `{0}`")]
    Unknown(String),
    /// The conversation is not one the router knows.
    #[error("unknown conversation")]
    Conversation,
    /// A variable has no value here (e.g. the customer gave no name).
    #[error("saved reply `{0}`: {1}")]
    Render(String, RenderError),
}

impl Router {
    /// `command` as the leader journals it: a reply with a `template` gets the saved reply's
    /// text with the conversation's values in `text` (`template` stays, for the event); one
    /// that cannot be rendered gets an empty `text`, which applying refuses. Other commands
    /// are returned as they are.
    pub fn render_template(&self, mut command: AgentCommand) -> AgentCommand {
        let conversation = command.conversation_id;
        let agent = command.agent_id.clone();
        if let CommandAction::Reply { text, template: Some(name), .. } = &mut command.action {
            *text = match self.rendered(name, &agent, conversation) {
                Ok(rendered) => rendered,
                Err(e) => {
                    tracing::debug!(template = %name, reason = %e, "saved reply not rendered");
                    String::new()
                }
            };
        }
        command
    }

    /// The saved reply `name` rendered for `agent` in `conversation` with the knowledge base as
    /// loaded now.
    fn rendered(&self, name: &str, agent: &str, conversation: Option<ConversationId>) -> Result<String, TemplateError> {
        let kb = self.cfg.kb.as_ref().ok_or(TemplateError::NoKb)?.current();
        let reply = kb.reply(name).ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
        let conversation = conversation.ok_or(TemplateError::Conversation)?;
        let record = self.st.records.get(&conversation).ok_or(TemplateError::Conversation)?;
        let customer = record.customer.display_name();
        let agent_name = self.engine.agent_name(agent).unwrap_or(agent).to_string();
        let code = self.engine.code(conversation);
        let mut vars: Vec<(&str, &str)> = vec![("agent.name", agent_name.as_str())];
        if let Some(customer) = customer.as_deref() {
            vars.push(("customer.name", customer));
        }
        if let Some(code) = code.as_deref() {
            vars.push(("conversation.code", code));
        }
        reply.render(&vars).map_err(|e| TemplateError::Render(name.to_string(), e))
    }

    /// Why an agent's reply naming a saved reply is refused: the leader left its text empty
    /// because it could not be rendered. The reason is worded from the knowledge base as loaded
    /// now; the refusal itself depends only on the journaled command.
    pub(crate) fn template_refusal(&self, command: &AgentCommand) -> Option<String> {
        let CommandAction::Reply { text, template: Some(name), .. } = &command.action else { return None };
        if !text.is_empty() {
            return None;
        }
        let reason = match self.rendered(name, &command.agent_id, command.conversation_id) {
            Err(e) => e.to_string(),
            // Rendered now but not when journaled: the folder changed in between.
            Ok(_) => format!("saved reply `{name}` could not be rendered when it was sent; send it again"),
        };
        Some(reason)
    }

    /// The saved replies matching a customer's message that opens or reopens a conversation,
    /// best first (at most [`MAX_SUGGESTED`], each scoring at least [`REPLY_MIN_SCORE`] or the
    /// knowledge base's `min_score` when lower), for the leader to journal with the message; nothing without a knowledge
    /// base or for a message continuing an open conversation.
    pub fn reply_lookup(&self, envelope: &Envelope) -> Vec<String> {
        let Some(kb) = &self.cfg.kb else { return Vec::new() };
        let thread = crate::inbound::thread_of(envelope);
        let open = self.engine.current_conversation(&thread).and_then(|c| self.engine.where_is(c));
        if open.is_some_and(|(state, _)| state != "resolved") {
            return Vec::new();
        }
        suggest(&kb.current(), envelope, kb.min_score.min(REPLY_MIN_SCORE))
    }
}

/// The names of the saved replies answering `envelope` at or above `min_score`.
fn suggest(kb: &Kb, envelope: &Envelope, min_score: f32) -> Vec<String> {
    let question = match &envelope.subject {
        Some(subject) if !subject.trim().is_empty() => format!("{subject}\n{}", envelope.text),
        _ => envelope.text.clone(),
    };
    if question.trim().is_empty() {
        return Vec::new();
    }
    let lang = envelope.customer.language.as_deref().and_then(|l| l.get(..2)).and_then(|l| l.parse().ok());
    let filter = Filter { team: None, channel: Some(envelope.channel.clone()) };
    kb.suggest_replies(&question, lang, MAX_SUGGESTED, &filter)
        .into_iter()
        .filter(|(_, score)| *score >= min_score)
        .map(|(reply, _)| reply.id.clone())
        .collect()
}
