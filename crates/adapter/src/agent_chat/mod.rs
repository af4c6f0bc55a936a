//! What every agent chat client (Telegram, Matrix, Slack) shares: the text an agent reads for
//! each delivery, in the platform's markup ([`compose`]); what an agent's text asks for
//! ([`action_for`]); verdicts awaited apart from the platform's event loop ([`Verdicts`]); and a
//! team's live queue as one message kept up to date ([`QueueBoard`]). The platform crates only
//! speak their wire format: where a message goes, how buttons look, how an edit is made.

mod board;
mod command;
mod compose;
mod endpoint;
mod verdicts;

pub use board::{QueueBoard, QueueSnapshot, Waiting, render_board};
pub use command::{COMMANDS, action_for, status_for};
pub use compose::{Buttons, caption, compose, files_of, fit, settled_label, size};
pub use endpoint::{publish_action, run_deliveries};
pub use verdicts::Verdicts;

/// A chat platform's text markup (Telegram MarkdownV2, Matrix HTML, Slack mrkdwn): how text
/// anyone typed is shown as written, how emphasis is made, and how the platform counts length.
pub trait Markup {
    /// `text` shown as written: nothing in it can format, link or break the message.
    fn escape(&self, text: &str) -> String;
    /// `text` (escaped) in bold.
    fn bold(&self, text: &str) -> String;
    /// `text` (escaped) in italics.
    fn italic(&self, text: &str) -> String;
    /// The length the platform's limit is counted in (characters by default).
    fn len(&self, text: &str) -> usize {
        text.chars().count()
    }
    /// The line under an offer telling the agent how to answer, in plain text (escaped by the
    /// caller); `prefix` starts commands (`/`, `!`).
    fn offer_hint(&self, prefix: &str) -> String {
        format!(
            "Reply to this message to answer; {prefix}resolve {prefix}note {prefix}escalate {prefix}transfer <team> \
             {prefix}t <saved reply> as replies."
        )
    }
    /// The sentence telling an agent a conversation is theirs now and how to answer it.
    fn assigned_hint(&self) -> String {
        "You have this conversation now: reply to its messages to answer.".into()
    }
}

/// Plain text: nothing escaped, no emphasis (the `body` beside Matrix's HTML, notifications).
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Markup for Plain {
    fn escape(&self, text: &str) -> String {
        text.to_string()
    }
    fn bold(&self, text: &str) -> String {
        text.to_string()
    }
    fn italic(&self, text: &str) -> String {
        text.to_string()
    }
}
