//! Slack's `mrkdwn` (<https://api.slack.com/reference/surfaces/formatting>): `&`, `<` and `>`
//! escaped so nothing a customer typed becomes a link or a mention, `*bold*`, `_italic_`, and
//! the 3,000-character limit of a section block's text.

use switchboard_adapter::agent_chat::Markup;

/// The longest text of a section block (Slack refuses longer ones with `invalid_blocks`).
pub const MAX_SECTION_CHARS: usize = 3000;

/// Slack's `mrkdwn`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mrkdwn;

/// `text` with the three characters Slack's control sequences use escaped.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

impl Markup for Mrkdwn {
    fn escape(&self, text: &str) -> String {
        escape(text)
    }
    fn bold(&self, text: &str) -> String {
        // `*` inside would end the bold early; Slack has no escape for it, so it is dropped.
        format!("*{}*", escape(text.trim()).replace('*', ""))
    }
    fn italic(&self, text: &str) -> String {
        format!("_{}_", escape(text.trim()).replace('_', " "))
    }
    fn offer_hint(&self, prefix: &str) -> String {
        format!(
            "Accept, then answer in this message's thread. In the thread: {prefix}note <text>, {prefix}resolve, \
             {prefix}escalate, {prefix}transfer <team> [note], {prefix}t <saved reply>; or /sb note <code> <text>."
        )
    }
    fn assigned_hint(&self) -> String {
        "You have this conversation now: write in this thread to answer the customer.".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("<@U123> & <!channel> > 1"), "&lt;@U123&gt; &amp; &lt;!channel&gt; &gt; 1");
        assert_eq!(Mrkdwn.bold("#K4F2"), "*#K4F2*");
        assert_eq!(Mrkdwn.italic("Note: a<b"), "_Note: a&lt;b_");
    }
}
