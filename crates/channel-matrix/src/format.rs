//! Matrix message content: each text twice, as HTML (`formatted_body`, format
//! `org.matrix.custom.html`) and as plain text (`body`, what notifications and simple clients
//! show), both composed by `agent_chat::compose` with a markup of this platform.

use serde_json::{Value, json};
use switchboard_adapter::agent_chat::Markup;

/// Matrix's command prefix: `!resolve`, `!note ...`.
pub const PREFIX: &str = "!";

/// The reaction that accepts an offer.
pub const ACCEPT: &str = "✅";
/// The reaction that declines an offer.
pub const DECLINE: &str = "❌";

/// The most bytes of HTML in one event (events are limited to 64 KiB, both texts together).
pub const MAX_HTML_BYTES: usize = 30_000;
/// The most bytes of plain text in one event.
pub const MAX_TEXT_BYTES: usize = 20_000;

/// What the bot writes under an offer: how to answer it here.
fn hint(prefix: &str) -> String {
    format!(
        "React {ACCEPT} to accept or {DECLINE} to decline (or answer {prefix}accept / {prefix}decline in its thread). \
         Once accepted, write in this message's thread to answer the customer; {prefix}note {prefix}resolve \
         {prefix}escalate {prefix}transfer <team> {prefix}t <saved reply> there."
    )
}

/// Matrix's HTML subset: text escaped, `<b>`/`<i>`, newlines as `<br>`; length in bytes, counting
/// the `<br>` each newline becomes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

/// How a conversation that became the agent's is announced in its thread.
const ASSIGNED: &str = "You have this conversation now: write in this thread to answer the customer.";

impl Markup for Html {
    fn escape(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }
    fn bold(&self, text: &str) -> String {
        format!("<b>{}</b>", self.escape(text))
    }
    fn italic(&self, text: &str) -> String {
        format!("<i>{}</i>", self.escape(text))
    }
    fn len(&self, text: &str) -> usize {
        text.len() + 4 * text.matches('\n').count()
    }
    fn offer_hint(&self, prefix: &str) -> String {
        hint(prefix)
    }
    fn assigned_hint(&self) -> String {
        ASSIGNED.into()
    }
}

/// Plain text, length in bytes (Matrix limits an event's bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Text;

impl Markup for Text {
    fn escape(&self, text: &str) -> String {
        text.to_string()
    }
    fn bold(&self, text: &str) -> String {
        text.to_string()
    }
    fn italic(&self, text: &str) -> String {
        text.to_string()
    }
    fn len(&self, text: &str) -> usize {
        text.len()
    }
    fn offer_hint(&self, prefix: &str) -> String {
        hint(prefix)
    }
    fn assigned_hint(&self) -> String {
        ASSIGNED.into()
    }
}

/// HTML with its newlines as line breaks (HTML itself ignores them).
pub fn html_lines(html: &str) -> String {
    html.replace('\n', "<br>\n")
}

/// An `m.room.message` with both texts; `msgtype` `m.text` or `m.notice`.
pub fn message(msgtype: &str, plain: &str, html: &str) -> Value {
    json!({
        "msgtype": msgtype,
        "body": plain,
        "format": "org.matrix.custom.html",
        "formatted_body": html_lines(html),
    })
}

/// `content` as a message in the thread rooted at `root` (with the reply fallback older clients
/// show, per the spec's threading module).
pub fn in_thread(mut content: Value, root: &str) -> Value {
    content["m.relates_to"] = json!({
        "rel_type": "m.thread",
        "event_id": root,
        "is_falling_back": true,
        "m.in_reply_to": { "event_id": root },
    });
    content
}

/// An edit (`m.replace`) of `event` to `content`.
pub fn replacement(event: &str, content: Value) -> Value {
    let mut outer = content.clone();
    for key in ["body", "formatted_body"] {
        if let Some(text) = content[key].as_str() {
            outer[key] = Value::String(format!("* {text}"));
        }
    }
    outer["m.new_content"] = content;
    outer["m.relates_to"] = json!({ "rel_type": "m.replace", "event_id": event });
    outer
}

/// A reaction (`m.annotation`) with `key` on `event`.
pub fn reaction(event: &str, key: &str) -> Value {
    json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": event, "key": key } })
}

/// The `msgtype` for a file of `content_type`.
pub fn file_msgtype(content_type: &str) -> &'static str {
    match content_type.split('/').next().unwrap_or_default() {
        "image" => "m.image",
        "video" => "m.video",
        "audio" => "m.audio",
        _ => "m.file",
    }
}

/// The text of an agent's message: a rich reply's quoted fallback (lines starting `> ` up to the
/// first empty line, which older clients put before the answer) taken off.
pub fn strip_reply_fallback(body: &str, is_reply: bool) -> &str {
    if !is_reply || !body.starts_with("> ") {
        return body;
    }
    match body.find("\n\n") {
        Some(end) if body[..end].lines().all(|l| l.starts_with('>')) => &body[end + 2..],
        _ => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_whatever_anyone_typed() {
        assert_eq!(Html.escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
        assert_eq!(Html.bold("a<b"), "<b>a&lt;b</b>");
        assert_eq!(html_lines("a\nb"), "a<br>\nb");
        assert_eq!(Html.len("a\nb"), 7);
    }

    #[test]
    fn reply_fallbacks_are_taken_off() {
        let body = "> <@bot:localhost> New conversation\n> more\n\nthe answer";
        assert_eq!(strip_reply_fallback(body, true), "the answer");
        assert_eq!(strip_reply_fallback(body, false), body);
        assert_eq!(strip_reply_fallback("> quoting a customer", true), "> quoting a customer");
    }

    #[test]
    fn edits_carry_the_new_content() {
        let edit = replacement("$offer", message("m.text", "new", "<b>new</b>"));
        assert_eq!(edit["body"], "* new");
        assert_eq!(edit["m.new_content"]["body"], "new");
        assert_eq!(edit["m.relates_to"]["rel_type"], "m.replace");
    }
}
