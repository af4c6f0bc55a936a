//! What one update became: the counted outcome shared by the update handler, the agents' chats
//! and the survey buttons.

use switchboard_bus::outcomes::InboundOutcome;

/// What one update became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Stored as an envelope; the router counts it.
    Published,
    /// Stored before: Telegram (or a replay) delivered it again.
    Duplicate,
    /// Recorded as an event or a command (an edit, the customer blocking the bot, an agent's
    /// command, a survey answer): not routed.
    Recorded,
    /// Nothing to route (a service message, a bot's message, an update kind not handled here).
    Ignored,
    /// A customer's message of a kind the channel cannot carry (the kind); they were told.
    Unsupported(String),
    /// Answered in the chat and not offered as a conversation (a customer's bare `/start`): why.
    NotOffered(String),
    /// Refused without storing anything (a bad link code, a forged survey button): the reason.
    Refused(String),
    /// Kept as a dead letter (`sb.dlq.telegram-in`): the reason.
    DeadLettered(String),
}

impl UpdateOutcome {
    /// The outcome this adapter counts for the update; `None` for a stored envelope, which the
    /// router counts.
    pub fn counted(&self) -> Option<InboundOutcome> {
        match self {
            UpdateOutcome::Published => None,
            UpdateOutcome::Duplicate => Some(InboundOutcome::Duplicate),
            UpdateOutcome::Recorded
            | UpdateOutcome::Ignored
            | UpdateOutcome::Unsupported(_)
            | UpdateOutcome::NotOffered(_)
            | UpdateOutcome::Refused(_) => Some(InboundOutcome::NotRouted),
            UpdateOutcome::DeadLettered(_) => Some(InboundOutcome::DeadLetter),
        }
    }
}
