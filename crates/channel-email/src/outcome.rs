//! What became of one fetched mail: the verdict the handler and the agent-mail path share.

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored as an envelope.
    Published,
    /// Stored before (a re-delivery); nothing new.
    Duplicate,
    /// A bounce, recorded on its conversation.
    Bounce,
    /// An agent's reply, turned into commands.
    AgentCommands,
    /// A customer's answer to a survey, stored as `csat_received`, `nps_received` or `ces_received`.
    SurveyAnswer,
    /// Not for routing (auto-reply, list mail, our own mail); the reason says which.
    Ignored(String),
    /// Unreadable or refused; stored in the dead-letter stream with the reason.
    DeadLettered(String),
    /// Nothing could be stored (the bus failed): leave the mail as it is and try again.
    Retry(String),
}

impl Outcome {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Published => "published",
            Outcome::Duplicate => "duplicate",
            Outcome::Bounce => "bounce",
            Outcome::AgentCommands => "agent_commands",
            Outcome::SurveyAnswer => "survey_answer",
            Outcome::Ignored(_) => "ignored",
            Outcome::DeadLettered(_) => "dead_lettered",
            Outcome::Retry(_) => "retry",
        }
    }
}
