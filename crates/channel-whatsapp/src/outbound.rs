//! Replies to customers: inside the 24-hour customer service window the text goes out split at
//! WhatsApp's 4,096 characters (a retry resumes at the first part not sent, see
//! [`state::Progress`]) and each file is uploaded and sent after it, the first part answering the
//! customer's message (`context.message_id`). Outside the window (by the time kept from their
//! last message, or WhatsApp's 131047) no free-form message is sent: the configured
//! re-engagement template goes instead (once per closed window) and the agent is told, or, with
//! no template, the reply fails with a reason a person understands.

use serde_json::{Value, json};
use switchboard_adapter::{SendError, SendReceipt};
use switchboard_core::contract::subjects;
use switchboard_core::{Event, EventKind, OutboundMessage};
use tracing::info;

use crate::graph::Class;
use crate::{WhatsAppChannel, state};

/// WhatsApp's limit on a text message's body, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// WhatsApp's largest media file (documents: 100 MB).
const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

/// Splits `text` into parts of at most `max` characters, at a line break or a space in the
/// second half of a part when there is one; the same text always splits the same way.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > max {
        let window = &rest[..max];
        let cut = window
            .iter()
            .rposition(|c| *c == '\n')
            .filter(|&i| i >= max / 2)
            .or_else(|| window.iter().rposition(|c| c.is_whitespace()).filter(|&i| i >= max / 2))
            .map(|i| i + 1)
            .unwrap_or(max);
        parts.push(rest[..cut].iter().collect::<String>());
        rest.drain(..cut);
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.into_iter().collect());
    }
    parts
}

/// The `biz_opaque_callback_data` of a message: its statuses name the conversation and the
/// outbound message they are about.
pub fn callback(message: &OutboundMessage) -> String {
    format!("{}:{}", message.conversation_id, message.id)
}

/// A text message's body (without `to`, added by the sender).
pub fn text_body(text: &str, reply_to: Option<&str>, callback: &str) -> Value {
    let mut body =
        json!({ "type": "text", "text": { "preview_url": false, "body": text }, "biz_opaque_callback_data": callback });
    if let Some(id) = reply_to {
        body["context"] = json!({ "message_id": id });
    }
    body
}

/// The message type a file goes as: images, videos and audio WhatsApp plays inline, the rest as
/// documents.
pub fn media_type(content_type: &str) -> &'static str {
    let base = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match base.as_str() {
        "image/jpeg" | "image/png" => "image",
        "video/mp4" | "video/3gpp" => "video",
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => "audio",
        _ => "document",
    }
}

/// A media message's body for an uploaded file.
pub fn media_body(kind: &str, media_id: &str, filename: &str, callback: &str) -> Value {
    let mut media = json!({ "id": media_id });
    if kind == "document" {
        media["filename"] = filename.into();
    }
    json!({ "type": kind, kind: media, "biz_opaque_callback_data": callback })
}

/// A template message's body.
pub fn template_body(name: &str, language: &str, callback: &str) -> Value {
    json!({
        "type": "template",
        "template": { "name": name, "language": { "code": language } },
        "biz_opaque_callback_data": callback,
    })
}

/// How long ago `at` was, for people: `3 h`, `2 days`.
fn ago(now: i64, at: i64) -> String {
    let hours = (now - at).max(0) / 3600;
    match hours {
        0..=47 => format!("{hours} h"),
        _ => format!("{} days", hours / 24),
    }
}

impl WhatsAppChannel {
    /// Sends one reply; see the module's documentation.
    pub(crate) async fn send_reply(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let to = message.to.thread_key.as_str();
        if to.is_empty() || to.len() > 32 || !to.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SendError::permanent(format!("`{to}` is not a WhatsApp id (digits of a phone number)")));
        }
        let kv = self.kv().await?;
        let now = chrono::Utc::now().timestamp();
        let last = state::read_time(&kv, &state::window_key(to)).await.map_err(SendError::retryable)?;
        if last.is_none_or(|at| now - at >= self.window_secs as i64) {
            return self.window_closed(message, &kv, last, None).await;
        }
        let callback = callback(message);
        let parts = match message.text.trim().is_empty() {
            true => vec![],
            false => split(&message.text, MAX_TEXT_CHARS),
        };
        let files: Vec<_> =
            message.attachments.iter().filter(|a| a.skipped.is_none() && !a.object.is_empty()).collect();
        let steps = parts.len() + files.len();
        if steps == 0 {
            return Err(SendError::permanent("nothing to send: no text and no stored file"));
        }
        let mut progress = state::Progress::for_steps(&kv, state::progress_key(&message.id), steps).await?;
        let reply_to = message.reply_to.as_deref().filter(|r| r.starts_with("wamid."));
        for (i, part) in parts.iter().enumerate().skip(progress.done()) {
            let body = text_body(part, if i == 0 { reply_to } else { None }, &callback);
            match self.graph.send(to, body).await {
                Ok(wamid) => progress.record(wamid).await?,
                Err(e) if e.class == Class::ReEngage => {
                    return self.window_closed(message, &kv, last, Some(&e.reason)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        for (i, a) in files.into_iter().enumerate() {
            if parts.len() + i < progress.done() {
                continue;
            }
            let bus = self.bus.get().map_err(|e| SendError::retryable(e.to_string()))?;
            let bytes = switchboard_adapter::read_attachment(bus, &a.object, MAX_UPLOAD_BYTES).await?;
            let media = self.graph.upload(bytes, &a.content_type, &a.filename).await?;
            let body = media_body(media_type(&a.content_type), &media, &a.filename, &callback);
            match self.graph.send(to, body).await {
                Ok(wamid) => progress.record(wamid).await?,
                Err(e) if e.class == Class::ReEngage => {
                    return self.window_closed(message, &kv, last, Some(&e.reason)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let first = progress.first().map(str::to_string);
        progress.finish().await;
        Ok(SendReceipt { provider_message_id: first })
    }

    /// The customer's window is closed: the re-engagement template (once per closed window) and
    /// a `delivery_failed` event telling the agent; without a template, a permanent failure
    /// (dead letter and `delivery_failed` by the runtime) saying why.
    async fn window_closed(
        &self,
        message: &OutboundMessage,
        kv: &async_nats::jetstream::kv::Store,
        last: Option<i64>,
        refused: Option<&str>,
    ) -> Result<SendReceipt, SendError> {
        let to = message.to.thread_key.as_str();
        let now = chrono::Utc::now().timestamp();
        let since = match (refused, last) {
            (Some(_), _) => "WhatsApp says more than 24 hours have passed since their last message".to_string(),
            (None, Some(at)) => format!("their last message was {} ago", ago(now, at)),
            (None, None) => "they have not written to this number".to_string(),
        };
        let closed = format!("not sent: the customer's 24-hour WhatsApp window is closed ({since})");
        let Some(template) = &self.template else {
            return Err(SendError::permanent(format!(
                "{closed}; WhatsApp allows only an approved template until they write again, and no \
                 reengage_template is configured"
            )));
        };
        let template_key = state::template_key(to);
        // One template per closed window: a later one only after the customer wrote again.
        let taken = |at: i64| last.is_none_or(|l| at >= l) && now - at < self.window_secs as i64;
        let claimed = state::claim(kv, &template_key, now, taken).await.map_err(SendError::retryable)?;
        let mut receipt = SendReceipt::default();
        let reason = match claimed {
            Some(at) => format!(
                "{closed}; the re-engagement template `{}` was sent {} ago: send your reply again once they answer",
                template.name,
                ago(now, at)
            ),
            None => {
                let body = template_body(&template.name, &template.language, &callback(message));
                let wamid = match self.graph.send(to, body).await {
                    Ok(wamid) => wamid,
                    Err(e) => {
                        state::release(kv, &template_key).await;
                        return Err(e.into());
                    }
                };
                info!(outbound = %message.id, template = %template.name, "window closed: re-engagement template sent");
                receipt.provider_message_id = Some(wamid);
                format!(
                    "{closed}; the re-engagement template `{}` was sent instead: send your reply again once they answer",
                    template.name
                )
            }
        };
        self.tell_agent(message, &reason).await?;
        Ok(receipt)
    }

    /// A `delivery_failed` event for `message` (the router marks it undelivered and tells the
    /// agent); its id is the one the runtime would use, so it is recorded once.
    async fn tell_agent(&self, message: &OutboundMessage, reason: &str) -> Result<(), SendError> {
        let bus = self.bus.get().map_err(|e| SendError::retryable(e.to_string()))?;
        let mut data = serde_json::Map::new();
        data.insert("outbound_id".into(), message.id.to_string().into());
        data.insert("reason".into(), reason.into());
        data.insert("attempts".into(), 1.into());
        let event = Event {
            id: uuid::Uuid::now_v7(),
            at: chrono::Utc::now(),
            kind: EventKind::DeliveryFailed,
            conversation_id: Some(message.conversation_id),
            agent_id: message.agent_id.clone(),
            channel: Some(message.channel.clone()),
            data,
        };
        let msg_id = format!("delivery-failed:{}", message.id);
        bus.publish(&subjects::event(EventKind::DeliveryFailed.as_str()), &event, &msg_id)
            .await
            .map_err(|e| SendError::retryable(format!("record delivery failure: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_splits_within_the_limit_at_spaces_and_keeps_every_character() {
        let text = "word ".repeat(2000); // 10,000 characters
        let parts = split(&text, MAX_TEXT_CHARS);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_TEXT_CHARS));
        assert!(parts[0].ends_with(' '), "cut after a space");
        assert_eq!(parts.concat(), text);
        // No space at all: cut hard, on character boundaries.
        let cyrillic = "я".repeat(5000);
        let parts = split(&cyrillic, MAX_TEXT_CHARS);
        assert_eq!(parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(), vec![4096, 904]);
        assert_eq!(split("hi", MAX_TEXT_CHARS), vec!["hi".to_string()]);
        assert_eq!(split(&text, MAX_TEXT_CHARS), split(&text, MAX_TEXT_CHARS), "stable");
    }

    #[test]
    fn bodies_are_as_the_cloud_api_documents_them() {
        let b = text_body("Hello", Some("wamid.ABC"), "c:o");
        assert_eq!(
            b,
            json!({"type":"text","text":{"preview_url":false,"body":"Hello"},"biz_opaque_callback_data":"c:o","context":{"message_id":"wamid.ABC"}})
        );
        assert_eq!(media_type("image/jpeg"), "image");
        assert_eq!(media_type("audio/ogg; codecs=opus"), "audio");
        assert_eq!(media_type("image/webp"), "document");
        assert_eq!(media_type("application/pdf"), "document");
        assert_eq!(
            media_body("document", "42", "label.pdf", "c")["document"],
            json!({"id":"42","filename":"label.pdf"})
        );
        assert_eq!(media_body("image", "7", "x.jpg", "c")["image"], json!({"id":"7"}));
        let t = template_body("reengage", "en_US", "c");
        assert_eq!(t["template"], json!({"name":"reengage","language":{"code":"en_US"}}));
        assert_eq!(ago(100_000, 100_000 - 25 * 3600), "25 h");
        assert_eq!(ago(1_000_000, 1_000_000 - 72 * 3600), "3 days");
    }
}
