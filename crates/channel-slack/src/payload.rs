//! What Slack sends, read into the few facts the handler acts on: `message` events of the Events
//! API (<https://api.slack.com/events/message>), `block_actions` interactions
//! (<https://api.slack.com/reference/interaction-payloads/block-actions-payload>) and slash
//! commands (<https://api.slack.com/interactivity/slash-commands>). The same shapes come by HTTP
//! and inside Socket Mode envelopes.

use std::collections::BTreeMap;

use serde_json::Value;

/// A file shared in a message (`files[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// Slack's file id (`F0123`).
    pub id: String,
    /// The file's name.
    pub name: String,
    /// Its MIME type.
    pub mimetype: String,
    /// Its size in bytes, as Slack states it.
    pub size: u64,
    /// Where the bot fetches it with its token.
    pub url: Option<String>,
}

/// One thing Slack told the app, as the handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A message posted by a person (`message` event, no subtype or `file_share`).
    Message {
        /// The event's id (`Ev0123`): the same on every redelivery.
        event_id: String,
        /// Who wrote it.
        user: String,
        /// Where (`D...` for a DM).
        channel: String,
        /// The message's `ts`.
        ts: String,
        /// The thread's root `ts`, when it was posted in a thread.
        thread_ts: Option<String>,
        /// Its text.
        text: String,
        /// Files shared with it.
        files: Vec<SharedFile>,
    },
    /// A button pressed (`block_actions`).
    Action {
        /// Who pressed it.
        user: String,
        /// The channel of the message with the button.
        channel: String,
        /// That message's `ts`.
        message_ts: String,
        /// The button's `action_id` (`accept`, `decline`, `resolve`).
        action_id: String,
        /// The button's `value` (the conversation id).
        value: String,
        /// When it was pressed (`action_ts`): with the message, the same press on a redelivery.
        action_ts: String,
    },
    /// A slash command (`/sb ...`).
    Command {
        /// `/sb`.
        command: String,
        /// What follows the command.
        text: String,
        /// Who ran it.
        user: String,
        /// Where it was run.
        channel: String,
        /// The invocation's id: the same on a redelivery.
        trigger_id: String,
    },
    /// Something the app does not act on (a bot's own message, an edit, another event type).
    Ignored(String),
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// An Events API body of type `event_callback`.
pub fn event(body: &Value) -> Result<Incoming, String> {
    let event = &body["event"];
    let event_id = body["event_id"].as_str().filter(|e| !e.is_empty()).ok_or("event_callback without event_id")?;
    let kind = event["type"].as_str().ok_or("event without type")?;
    if kind != "message" {
        return Ok(Incoming::Ignored(format!("event {kind}")));
    }
    // Only DMs with the app are agents' working space; a channel the app sits in (a team board's)
    // is not, whoever writes there.
    if let Some(kind) = event["channel_type"].as_str().filter(|k| *k != "im") {
        return Ok(Incoming::Ignored(format!("message in a {kind} channel")));
    }
    let subtype = event["subtype"].as_str();
    if event.get("bot_id").is_some_and(|b| !b.is_null()) || !matches!(subtype, None | Some("file_share")) {
        return Ok(Incoming::Ignored(format!("message subtype {}", subtype.unwrap_or("bot_message"))));
    }
    let (user, channel, ts) = (s(&event["user"]), s(&event["channel"]), s(&event["ts"]));
    if user.is_empty() || channel.is_empty() || ts.is_empty() {
        return Err("message event without user, channel or ts".into());
    }
    let files = event["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .map(|f| SharedFile {
                    id: s(&f["id"]),
                    name: f["name"].as_str().or(f["title"].as_str()).unwrap_or("file").to_string(),
                    mimetype: f["mimetype"].as_str().unwrap_or("application/octet-stream").to_string(),
                    size: f["size"].as_u64().unwrap_or(0),
                    url: f["url_private_download"].as_str().or(f["url_private"].as_str()).map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Incoming::Message {
        event_id: event_id.to_string(),
        user,
        channel,
        ts: ts.clone(),
        thread_ts: event["thread_ts"].as_str().filter(|t| *t != ts).map(str::to_string),
        text: plain_text(&s(&event["text"])),
        files,
    })
}

/// What a person typed, from Slack's message text: Slack sends `&`, `<`, `>` escaped and links,
/// mentions and channels as `<...>` sequences; the customer gets the words (`label (url)` for a
/// labelled link, the address of a mail link, `@name`/`#channel` for mentions).
pub fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &rest[open + 1..open + close];
        let (target, label) = inner.split_once('|').unwrap_or((inner, ""));
        let shown = match target.chars().next() {
            Some('@') | Some('#') => format!("{}{}", &target[..1], if label.is_empty() { &target[1..] } else { label }),
            Some('!') => format!("@{}", target[1..].split('^').next().unwrap_or_default()),
            _ => {
                let bare = target.strip_prefix("mailto:").unwrap_or(target);
                let plain = |u: &str| u.trim_start_matches("https://").trim_start_matches("http://").to_string();
                match label {
                    "" => bare.to_string(),
                    l if l == bare || l == plain(bare) => l.to_string(),
                    l => format!("{l} ({bare})"),
                }
            }
        };
        out.push_str(&shown);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// An interaction payload (the JSON inside the form field `payload=`).
pub fn interaction(payload: &Value) -> Result<Incoming, String> {
    let kind = payload["type"].as_str().ok_or("interaction without type")?;
    if kind != "block_actions" {
        return Ok(Incoming::Ignored(format!("interaction {kind}")));
    }
    let action = payload["actions"].as_array().and_then(|a| a.first()).ok_or("block_actions without actions")?;
    let user = s(&payload["user"]["id"]);
    let channel = payload["channel"]["id"].as_str().or(payload["container"]["channel_id"].as_str()).unwrap_or_default();
    let message_ts =
        payload["message"]["ts"].as_str().or(payload["container"]["message_ts"].as_str()).unwrap_or_default();
    if user.is_empty() || channel.is_empty() || message_ts.is_empty() {
        return Err("block_actions without user, channel or message".into());
    }
    Ok(Incoming::Action {
        user,
        channel: channel.to_string(),
        message_ts: message_ts.to_string(),
        action_id: s(&action["action_id"]),
        value: s(&action["value"]),
        action_ts: s(&action["action_ts"]),
    })
}

/// A slash command's form fields.
pub fn command(form: &BTreeMap<String, String>) -> Result<Incoming, String> {
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (user, trigger_id) = (field("user_id"), field("trigger_id"));
    if user.is_empty() || trigger_id.is_empty() {
        return Err("slash command without user_id or trigger_id".into());
    }
    Ok(Incoming::Command {
        command: field("command"),
        text: plain_text(&field("text")),
        user,
        channel: field("channel_id"),
        trigger_id,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_thread_reply_with_a_file() {
        let body = json!({
            "type": "event_callback", "event_id": "Ev1",
            "event": { "type": "message", "subtype": "file_share", "user": "U1", "channel": "D1", "channel_type": "im",
                       "ts": "2.0", "thread_ts": "1.0", "text": "see attached",
                       "files": [{ "id": "F1", "name": "a.pdf", "mimetype": "application/pdf", "size": 3,
                                   "url_private_download": "https://files.slack.com/a.pdf" }] }
        });
        let Incoming::Message { thread_ts, files, text, .. } = event(&body).unwrap() else { panic!() };
        assert_eq!(thread_ts.as_deref(), Some("1.0"));
        assert_eq!(text, "see attached");
        assert_eq!(files[0].url.as_deref(), Some("https://files.slack.com/a.pdf"));
        assert_eq!(files[0].size, 3);
    }

    #[test]
    fn bots_edits_and_other_events_are_ignored_and_broken_ones_refused() {
        let msg = |extra: Value| {
            let mut e = json!({ "type": "message", "user": "U1", "channel": "D1", "ts": "1.0", "text": "x" });
            e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            json!({ "type": "event_callback", "event_id": "Ev1", "event": e })
        };
        assert!(matches!(event(&msg(json!({ "bot_id": "B1" }))), Ok(Incoming::Ignored(_))));
        assert!(matches!(event(&msg(json!({ "subtype": "message_changed" }))), Ok(Incoming::Ignored(_))));
        assert!(matches!(event(&msg(json!({ "type": "app_mention" }))), Ok(Incoming::Ignored(_))));
        assert!(matches!(event(&msg(json!({ "channel_type": "channel" }))), Ok(Incoming::Ignored(_))));
        assert!(matches!(event(&msg(json!({ "channel_type": "im" }))), Ok(Incoming::Message { .. })));
        // A thread root's own ts is not a thread.
        let Ok(Incoming::Message { thread_ts, .. }) = event(&msg(json!({ "thread_ts": "1.0" }))) else { panic!() };
        assert_eq!(thread_ts, None);
        assert!(event(&msg(json!({ "user": null }))).is_err());
        assert!(event(&json!({ "type": "event_callback", "event": {} })).is_err());
    }

    #[test]
    fn slack_markup_becomes_what_the_agent_typed() {
        assert_eq!(plain_text("a &lt; b &amp;&amp; c &gt; d"), "a < b && c > d");
        assert_eq!(
            plain_text("see <https://x.test/a|the label> or <https://x.test/b>"),
            "see the label (https://x.test/a) or https://x.test/b"
        );
        assert_eq!(plain_text("<mailto:ann@x.test|ann@x.test> <https://x.test|x.test>"), "ann@x.test x.test");
        assert_eq!(plain_text("ask <@U123> in <#C9|billing> <!here>"), "ask @U123 in #billing @here");
        assert_eq!(plain_text("broken < here"), "broken < here");
        assert_eq!(plain_text("&amp;lt; stays as typed"), "&lt; stays as typed");
    }

    #[test]
    fn a_button_press_and_a_slash_command() {
        let payload = json!({
            "type": "block_actions", "user": { "id": "U1" }, "channel": { "id": "D1" },
            "container": { "type": "message", "message_ts": "5.0", "channel_id": "D1" },
            "message": { "ts": "5.0" },
            "actions": [{ "action_id": "accept", "value": "c1", "action_ts": "6.1" }]
        });
        assert_eq!(
            interaction(&payload).unwrap(),
            Incoming::Action {
                user: "U1".into(),
                channel: "D1".into(),
                message_ts: "5.0".into(),
                action_id: "accept".into(),
                value: "c1".into(),
                action_ts: "6.1".into()
            }
        );
        assert!(matches!(interaction(&json!({ "type": "view_submission" })), Ok(Incoming::Ignored(_))));
        assert!(interaction(&json!({ "type": "block_actions", "actions": [] })).is_err());
        let form: BTreeMap<String, String> = [
            ("command", "/sb"),
            ("text", "note K4F2 hi"),
            ("user_id", "U1"),
            ("channel_id", "D1"),
            ("trigger_id", "t1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(matches!(command(&form), Ok(Incoming::Command { text, .. }) if text == "note K4F2 hi"));
        assert!(command(&BTreeMap::new()).is_err());
    }
}
