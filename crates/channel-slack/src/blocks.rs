//! Block Kit (<https://api.slack.com/reference/block-kit/blocks>): a section with the text and,
//! under an offer, an actions block with Accept and Decline (or Resolve) buttons whose `value` is
//! the conversation id; after use, the buttons give way to a context line saying what became of
//! the conversation.

use serde_json::{Value, json};
use switchboard_adapter::agent_chat::Buttons;
use uuid::Uuid;

/// The `action_id`s of the buttons.
pub const ACCEPT: &str = "accept";
/// See [`ACCEPT`].
pub const DECLINE: &str = "decline";
/// See [`ACCEPT`].
pub const RESOLVE: &str = "resolve";

fn button(label: &str, action_id: &str, conversation: Uuid, style: Option<&str>) -> Value {
    let mut b = json!({ "type": "button", "action_id": action_id, "value": conversation.to_string(),
                        "text": { "type": "plain_text", "text": label, "emoji": true } });
    if let Some(style) = style {
        b["style"] = json!(style);
    }
    b
}

/// The section with `text` (mrkdwn; `verbatim` so URLs and names a customer typed stay text).
pub fn section(text: &str) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text, "verbatim": true } })
}

/// A message's blocks: the section, then the buttons it needs.
pub fn message(text: &str, buttons: Buttons, conversation: Uuid) -> Vec<Value> {
    let mut blocks = vec![section(text)];
    let elements = match buttons {
        Buttons::None => return blocks,
        Buttons::AcceptDecline => vec![
            button("Accept", ACCEPT, conversation, Some("primary")),
            button("Decline", DECLINE, conversation, Some("danger")),
        ],
        Buttons::Resolve => vec![button("Resolve", RESOLVE, conversation, None)],
    };
    blocks.push(json!({ "type": "actions", "block_id": "conversation", "elements": elements }));
    blocks
}

/// The blocks of a used message: its section, and what became of it instead of buttons.
pub fn settled(text: &str, label: &str) -> Vec<Value> {
    vec![section(text), json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": format!("*{label}*") }] })]
}

/// The label a pressed button leaves once the router agreed.
pub fn label_for_action(action_id: &str) -> Option<&'static str> {
    switchboard_adapter::agent_chat::settled_label(match action_id {
        ACCEPT => "assigned",
        DECLINE => "declined",
        RESOLVE => "resolved",
        _ => return None,
    })
}

/// A notification's plain text (Slack shows it in notifications and where blocks cannot be shown):
/// the first line of the mrkdwn without its emphasis (still escaped: `text` is mrkdwn too).
pub fn fallback(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    first.chars().filter(|c| !matches!(c, '*' | '_')).collect()
}
