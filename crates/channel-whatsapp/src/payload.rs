//! The webhook's wire format, pure: a notification (`object`, `entry[].changes[].value`) becomes
//! items, one per message and per status, each with what Switchboard does with it. Messages are
//! read from raw JSON element by element, so one of a type newer than this code (or broken) is
//! named and counted rather than failing the whole notification.
//!
//! Shapes: <https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples>.

use std::collections::BTreeMap;

use serde_json::Value;
use switchboard_core::envelope::AttachmentRef;
use switchboard_core::{Customer, Envelope};

use crate::CHANNEL;

/// The metadata key naming the kind of a customer's message (`text`, `image`, `voice`, ...).
pub const KIND_KEY: &str = "whatsapp.kind";

/// What the customer is told when they send a kind of message the channel cannot carry.
pub const CANNOT_READ: &str = "This kind of message cannot be read here; please write text.";

/// A media file a message carries, fetched later by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// The media id (`GET /{media-id}` gives its URL).
    pub id: String,
    /// Its MIME type as the webhook states it.
    pub mime_type: String,
}

/// A customer's message as an envelope, with its media to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    /// The envelope to store (its attachment, if any, listed but not fetched yet).
    pub envelope: Envelope,
    /// The media to fetch into the object store, if any.
    pub media: Option<Media>,
    /// When the customer sent it (Unix seconds): it opens the 24-hour window.
    pub sent_at: i64,
}

/// One error WhatsApp reports on a status or an unsupported message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaError {
    /// The error code (`131026`).
    pub code: i64,
    /// Its title (`Message undeliverable`).
    pub title: String,
    /// `error_data.details`, when given.
    pub details: Option<String>,
}

impl std::fmt::Display for WaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.title)?;
        if let Some(d) = &self.details {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// A status of a message the business sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The `wamid` of the message sent.
    pub wamid: String,
    /// `sent`, `delivered`, `read` or `failed` (others are passed on as they come).
    pub status: String,
    /// The customer's WhatsApp id.
    pub recipient: String,
    /// When (Unix seconds).
    pub timestamp: i64,
    /// What the send attached as `biz_opaque_callback_data`: `<conversation>:<outbound id>`.
    pub callback: Option<String>,
    /// Why it failed, for `failed`.
    pub errors: Vec<WaError>,
}

/// One item of a notification and what it becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A customer's message to store.
    Message(Box<Carried>),
    /// A message kind the channel cannot carry (the kind, and the customer to tell).
    Unsupported {
        /// The `wamid`.
        wamid: String,
        /// The customer's WhatsApp id.
        from: String,
        /// The `type`, or what made it unreadable.
        kind: String,
    },
    /// Not a customer writing to route (a reaction taken back, a system notice): why.
    NotRouted {
        /// The `wamid`, when it has one.
        wamid: String,
        /// Why, in words.
        reason: String,
    },
    /// A status of a message the business sent.
    Status(Status),
    /// An element that is not a message or status at all (no id or sender): why.
    Unreadable(String),
}

/// Reads a notification's items; `Err` when the body is not a WhatsApp notification at all.
pub fn parse(body: &[u8]) -> Result<Vec<Item>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if v["object"] != "whatsapp_business_account" {
        return Err("`object` is not `whatsapp_business_account`".into());
    }
    let entries = v["entry"].as_array().ok_or("no `entry` array")?;
    let mut items = Vec::new();
    for entry in entries {
        for change in entry["changes"].as_array().into_iter().flatten() {
            if change["field"] != "messages" {
                continue;
            }
            let value = &change["value"];
            let number = Number {
                phone_number_id: value["metadata"]["phone_number_id"].as_str().unwrap_or_default(),
                display: value["metadata"]["display_phone_number"].as_str().unwrap_or_default(),
            };
            let contacts = value["contacts"].as_array().map(Vec::as_slice).unwrap_or_default();
            for m in value["messages"].as_array().into_iter().flatten() {
                items.push(message(m, contacts, &number));
            }
            for s in value["statuses"].as_array().into_iter().flatten() {
                items.push(status(s));
            }
        }
    }
    Ok(items)
}

/// The business number a change is for.
struct Number<'a> {
    phone_number_id: &'a str,
    display: &'a str,
}

fn errors(v: &Value) -> Vec<WaError> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|e| WaError {
            code: e["code"].as_i64().unwrap_or_default(),
            title: str_of(&e["title"]).or_else(|| str_of(&e["message"])).unwrap_or_else(|| "no title".into()),
            details: str_of(&e["error_data"]["details"]),
        })
        .collect()
}

fn str_of(v: &Value) -> Option<String> {
    v.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn seconds(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64())
}

fn status(s: &Value) -> Item {
    let Some(wamid) = str_of(&s["id"]) else { return Item::Unreadable("a status without an id".into()) };
    Item::Status(Status {
        wamid,
        status: str_of(&s["status"]).unwrap_or_else(|| "unknown".into()),
        recipient: str_of(&s["recipient_id"]).unwrap_or_default(),
        timestamp: seconds(&s["timestamp"]).unwrap_or_default(),
        callback: str_of(&s["biz_opaque_callback_data"]),
        errors: errors(&s["errors"]),
    })
}

/// A media object's facts: `(id, mime type, caption, file name)`.
fn media_of(m: &Value) -> Option<(String, String, Option<String>, Option<String>)> {
    let id = str_of(&m["id"])?;
    let mime = str_of(&m["mime_type"]).unwrap_or_else(|| "application/octet-stream".into());
    Some((id, mime, str_of(&m["caption"]), str_of(&m["filename"])))
}

/// A file name for a media file without one: `<kind>.<extension of its type>`.
fn default_name(kind: &str, mime: &str) -> String {
    let base = mime.split(';').next().unwrap_or_default().trim();
    let ext = match base {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "audio/mp4" => "m4a",
        "audio/amr" => "amr",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    format!("{kind}.{ext}")
}

/// The contacts a customer shared, one line each: name, phones, emails.
fn contacts_text(cards: &[Value]) -> String {
    let mut lines = Vec::new();
    for c in cards {
        let name = str_of(&c["name"]["formatted_name"])
            .or_else(|| {
                let parts = [str_of(&c["name"]["first_name"]), str_of(&c["name"]["last_name"])];
                let joined: Vec<String> = parts.into_iter().flatten().collect();
                (!joined.is_empty()).then(|| joined.join(" "))
            })
            .unwrap_or_else(|| "unnamed".into());
        let mut facts = vec![name];
        facts.extend(c["phones"].as_array().into_iter().flatten().filter_map(|p| str_of(&p["phone"])));
        facts.extend(c["emails"].as_array().into_iter().flatten().filter_map(|e| str_of(&e["email"])));
        lines.push(format!("[contact] {}", facts.join(", ")));
    }
    lines.join("\n")
}

/// One element of `messages`.
fn message(m: &Value, contacts: &[Value], number: &Number<'_>) -> Item {
    let (Some(wamid), Some(from)) = (str_of(&m["id"]), str_of(&m["from"])) else {
        return Item::Unreadable("a message without an id or a sender".into());
    };
    let kind = str_of(&m["type"]).unwrap_or_else(|| "unknown".into());
    let mut metadata = BTreeMap::new();
    let mut media = None;
    let mut attachment = |media_kind: &str, body: &Value| -> Option<(String, Option<String>)> {
        let (id, mime, caption, filename) = media_of(body)?;
        let name = filename.unwrap_or_else(|| default_name(media_kind, &mime));
        media = Some(Media { id, mime_type: mime });
        Some((name, caption))
    };
    let body = &m[kind.as_str()];
    let (label, text, file): (&str, String, Option<String>) = match kind.as_str() {
        "text" => match str_of(&body["body"]) {
            Some(t) => ("text", t, None),
            None => return unsupported(wamid, from, "text without a body"),
        },
        "image" | "video" | "sticker" => {
            let Some((name, caption)) = attachment(kind.as_str(), body) else {
                return unsupported(wamid, from, &format!("{kind} without a media id"));
            };
            let label: &'static str = match kind.as_str() {
                "image" => "image",
                "video" => "video",
                _ => "sticker",
            };
            let text = match caption {
                Some(c) => format!("[{label}] {c}"),
                None if label == "sticker" && body["animated"] == true => "[animated sticker]".to_string(),
                None => format!("[{label}]"),
            };
            (label, text, Some(name))
        }
        "audio" => {
            let voice = body["voice"] == true;
            let label = if voice { "voice" } else { "audio" };
            let Some((name, _)) = attachment(label, body) else {
                return unsupported(wamid, from, "audio without a media id");
            };
            (label, if voice { "[voice message]".into() } else { "[audio]".into() }, Some(name))
        }
        "document" => {
            let Some((name, caption)) = attachment("document", body) else {
                return unsupported(wamid, from, "document without a media id");
            };
            let text = match caption {
                Some(c) => format!("[document: {name}] {c}"),
                None => format!("[document: {name}]"),
            };
            ("document", text, Some(name))
        }
        "location" => {
            let (Some(lat), Some(lon)) = (body["latitude"].as_f64(), body["longitude"].as_f64()) else {
                return unsupported(wamid, from, "location without coordinates");
            };
            metadata.insert("whatsapp.latitude".into(), lat.to_string());
            metadata.insert("whatsapp.longitude".into(), lon.to_string());
            let place: Vec<String> = [str_of(&body["name"]), str_of(&body["address"])].into_iter().flatten().collect();
            let text = match place.is_empty() {
                true => format!("[location {lat}, {lon}]"),
                false => format!("[location {lat}, {lon}] {}", place.join(", ")),
            };
            ("location", text, None)
        }
        "contacts" => {
            let cards = m["contacts"].as_array().map(Vec::as_slice).unwrap_or_default();
            if cards.is_empty() {
                return unsupported(wamid, from, "contacts without a card");
            }
            ("contacts", contacts_text(cards), None)
        }
        "interactive" => {
            let sub = body["type"].as_str().unwrap_or_default();
            let reply = &body[sub];
            let Some(title) = str_of(&reply["title"]).filter(|_| matches!(sub, "button_reply" | "list_reply")) else {
                return unsupported(wamid, from, &format!("interactive {sub}"));
            };
            if let Some(id) = str_of(&reply["id"]) {
                metadata.insert("whatsapp.reply_id".into(), id);
            }
            let text = match str_of(&reply["description"]) {
                Some(d) => format!("{title} ({d})"),
                None => title,
            };
            (if sub == "button_reply" { "button_reply" } else { "list_reply" }, text, None)
        }
        "button" => {
            let Some(text) = str_of(&body["text"]) else { return unsupported(wamid, from, "button without text") };
            if let Some(payload) = str_of(&body["payload"]) {
                metadata.insert("whatsapp.button_payload".into(), payload);
            }
            ("button", text, None)
        }
        "reaction" => {
            let to = str_of(&body["message_id"]).unwrap_or_default();
            let Some(emoji) = str_of(&body["emoji"]) else {
                return Item::NotRouted { wamid, reason: format!("a reaction to {to} taken back") };
            };
            metadata.insert("whatsapp.reaction_to".into(), to);
            ("reaction", format!("[reaction {emoji}]"), None)
        }
        "system" | "request_welcome" | "ephemeral" => {
            return Item::NotRouted { wamid, reason: format!("a `{kind}` notice, not a customer writing") };
        }
        _ => return unsupported(wamid, from, &kind),
    };
    if let Some(context) = str_of(&m["context"]["id"]) {
        metadata.insert("whatsapp.context_id".into(), context);
    }
    if m["context"]["forwarded"] == true || m["context"]["frequently_forwarded"] == true {
        metadata.insert("whatsapp.forwarded".into(), "true".into());
    }
    if let Some(source) = str_of(&m["referral"]["source_url"]) {
        metadata.insert("whatsapp.referral".into(), source.chars().take(512).collect());
    }
    metadata.insert(KIND_KEY.into(), label.into());
    if !number.phone_number_id.is_empty() {
        metadata.insert("whatsapp.phone_number_id".into(), number.phone_number_id.into());
    }
    if !number.display.is_empty() {
        metadata.insert("whatsapp.to".into(), number.display.into());
    }
    let name = contacts
        .iter()
        .find(|c| c["wa_id"].as_str() == Some(from.as_str()))
        .or(contacts.first())
        .and_then(|c| str_of(&c["profile"]["name"]));
    let attachments = match (&media, file) {
        (Some(media), Some(filename)) => vec![AttachmentRef {
            object: String::new(),
            filename,
            content_type: media.mime_type.clone(),
            size: 0,
            skipped: Some(format!("whatsapp media {}, not fetched", media.id)),
        }],
        _ => vec![],
    };
    let sent_at = seconds(&m["timestamp"]).unwrap_or_default();
    let envelope = Envelope {
        id: uuid::Uuid::now_v7(),
        channel: CHANNEL.into(),
        provider_message_id: dedupe_id(&wamid),
        received_at: chrono::Utc::now(),
        customer: Customer {
            id: from.clone(),
            name,
            email: None,
            phone: from.bytes().all(|b| b.is_ascii_digit()).then(|| format!("+{from}")),
            language: None,
        },
        thread_key: from,
        text,
        subject: None,
        html: None,
        attachments,
        metadata,
        raw_ref: Some(format!("wamid:{}", wamid.chars().take(200).collect::<String>())),
    };
    Item::Message(Box::new(Carried { envelope, media, sent_at }))
}

fn unsupported(wamid: String, from: String, kind: &str) -> Item {
    Item::Unsupported { wamid, from, kind: kind.chars().take(64).collect() }
}

/// The de-duplication id of a message: its `wamid`, or a digest of one longer than the
/// contract's 512 bytes.
pub fn dedupe_id(wamid: &str) -> String {
    if wamid.len() <= 512 {
        return wamid.to_string();
    }
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(wamid.as_bytes())))
}

#[cfg(test)]
#[path = "payload_tests.rs"]
mod tests;
