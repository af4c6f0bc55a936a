//! VK's wire format, pure: events as both the Bots Long Poll API and the Callback API deliver
//! them (`{"type", "object", "group_id", "event_id", "v"}`), customers' messages as envelopes,
//! survey buttons, `random_id`, splitting, and what an API error code means. No I/O here.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_core::envelope::AttachmentRef;
use switchboard_core::{Customer, Envelope, SurveyKind};
use uuid::Uuid;

use crate::CHANNEL;

/// VK's limit on one message's text, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;

/// The envelope metadata key naming what the customer sent (`text`, `photo`, `doc`,
/// `audio_message`, `sticker`, `geo`, joined with `,`).
pub const KIND_KEY: &str = "vk.kind";

/// What the customer is told when nothing of their message can be carried.
pub const CANNOT_READ: &str =
    "Sorry, we cannot read this kind of message here. Please write your question as text, a photo or a document.";

/// One event, read.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// `message_new`: a customer wrote (or pressed a keyboard button).
    Message(Incoming),
    /// `message_edit`: the customer edited a message.
    Edit {
        /// The dialog.
        peer_id: i64,
        /// The message's number in the dialog.
        cmid: i64,
        /// The new text.
        text: String,
        /// The event's de-duplication id.
        msg_id: String,
    },
    /// `message_deny` (`blocked`) or `message_allow`: the customer forbade or allowed the
    /// community to message them.
    Permission {
        /// The customer.
        user_id: i64,
        /// True for `message_deny`.
        blocked: bool,
        /// The event's de-duplication id.
        msg_id: String,
    },
    /// An event of a type not handled here (or a community's own message): its type.
    Ignored(String),
    /// Not an event VK sends: why.
    Unreadable(String),
}

/// A customer's message.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The dialog (the customer's user id for a private dialog).
    pub peer_id: i64,
    /// The author.
    pub from_id: i64,
    /// The message's number in the dialog (`conversation_message_id`).
    pub cmid: i64,
    /// The text as written.
    pub text: String,
    /// A keyboard button's payload, when a button was pressed.
    pub payload: Option<String>,
    /// Files to fetch (photos, documents, voice messages).
    pub files: Vec<FileIn>,
    /// Lines describing what is not a file (a sticker, a place, a voice message's length, what
    /// cannot be carried).
    pub rendered: Vec<String>,
    /// The kinds the message held, for [`KIND_KEY`].
    pub kinds: Vec<String>,
    /// The attachment types that cannot be carried (`video`, `wall`, ...).
    pub uncarried: Vec<String>,
    /// A place the customer sent: latitude, longitude.
    pub geo: Option<(f64, f64)>,
}

/// A file a customer sent, to fetch into the object store.
#[derive(Debug, Clone, PartialEq)]
pub struct FileIn {
    /// Where VK serves it.
    pub url: String,
    /// The name shown.
    pub name: String,
    /// Its MIME type.
    pub content_type: String,
    /// Its size, when VK says it.
    pub size: Option<u64>,
    /// The object's name in `sb_attachments`: stable, so a redelivery overwrites.
    pub object: String,
}

fn text_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The de-duplication id of an event: VK's `event_id`, or what identifies it otherwise.
fn event_key(event: &Value, fallback: String) -> String {
    match event["event_id"].as_str().filter(|e| !e.is_empty() && e.len() <= 128) {
        Some(id) => id.to_string(),
        None => fallback,
    }
}

/// Reads one event (either transport's shape).
pub fn parse(event: &Value) -> Parsed {
    let Some(kind) = event["type"].as_str() else { return Parsed::Unreadable("no `type`".into()) };
    let object = &event["object"];
    match kind {
        "message_new" => {
            // Since API 5.103 the message is under `object.message`; older payloads had it bare.
            let m = if object["message"].is_object() { &object["message"] } else { object };
            match message(m) {
                Ok(Some(incoming)) => Parsed::Message(incoming),
                Ok(None) => Parsed::Ignored("message_new from a community".into()),
                Err(why) => Parsed::Unreadable(why),
            }
        }
        "message_edit" => {
            let (Some(peer_id), Some(cmid)) = (object["peer_id"].as_i64(), object["conversation_message_id"].as_i64())
            else {
                return Parsed::Unreadable("message_edit without peer_id or conversation_message_id".into());
            };
            if object["from_id"].as_i64().is_some_and(|f| f < 0) || object["out"] == 1 {
                return Parsed::Ignored("message_edit by the community".into());
            }
            let stamp = object["update_time"].as_i64().unwrap_or_default();
            let msg_id = format!("vk-edit:{}", event_key(event, format!("{peer_id}:{cmid}:{stamp}")));
            Parsed::Edit { peer_id, cmid, text: text_of(&object["text"]), msg_id }
        }
        "message_deny" | "message_allow" => {
            let Some(user_id) = object["user_id"].as_i64() else {
                return Parsed::Unreadable(format!("{kind} without user_id"));
            };
            let blocked = kind == "message_deny";
            let fallback = format!("{kind}:{user_id}:{}", event["object"]["key"].as_str().unwrap_or_default());
            Parsed::Permission { user_id, blocked, msg_id: format!("vk-permission:{}", event_key(event, fallback)) }
        }
        other => Parsed::Ignored(other.chars().take(64).collect()),
    }
}

fn message(m: &Value) -> Result<Option<Incoming>, String> {
    let (Some(peer_id), Some(from_id)) = (m["peer_id"].as_i64(), m["from_id"].as_i64()) else {
        return Err("message without peer_id or from_id".into());
    };
    // A community's own messages (and other communities) are not customers writing.
    if from_id <= 0 || m["out"] == 1 {
        return Ok(None);
    }
    let cmid = m["conversation_message_id"].as_i64().or_else(|| m["id"].as_i64()).ok_or("message without an id")?;
    let mut incoming = Incoming {
        peer_id,
        from_id,
        cmid,
        text: text_of(&m["text"]),
        payload: m["payload"].as_str().map(str::to_string),
        files: Vec::new(),
        rendered: Vec::new(),
        kinds: Vec::new(),
        uncarried: Vec::new(),
        geo: None,
    };
    if !incoming.text.trim().is_empty() {
        incoming.kinds.push("text".into());
    }
    for a in m["attachments"].as_array().into_iter().flatten().take(10) {
        attachment(a, &mut incoming);
    }
    if let Some(coordinates) = m["geo"]["coordinates"].as_object() {
        let (lat, lon) = (coordinates.get("latitude"), coordinates.get("longitude"));
        if let (Some(lat), Some(lon)) = (lat.and_then(Value::as_f64), lon.and_then(Value::as_f64)) {
            let place = m["geo"]["place"]["title"].as_str().map(|t| format!(" ({t})")).unwrap_or_default();
            incoming.rendered.push(format!("[location: {lat:.5}, {lon:.5}{place}]"));
            incoming.kinds.push("geo".into());
            incoming.geo = Some((lat, lon));
        }
    }
    Ok(Some(incoming))
}

fn attachment(a: &Value, m: &mut Incoming) {
    let kind = a["type"].as_str().unwrap_or("unknown");
    let body = &a[kind];
    let owned = |prefix: &str| {
        format!("vk/{prefix}/{}_{}", body["owner_id"].as_i64().unwrap_or(0), body["id"].as_i64().unwrap_or(0))
    };
    match kind {
        "photo" => match largest_photo(body) {
            Some(url) => {
                m.files.push(FileIn {
                    url,
                    name: "photo.jpg".into(),
                    content_type: "image/jpeg".into(),
                    size: None,
                    object: owned("photo"),
                });
                m.kinds.push("photo".into());
            }
            None => m.uncarried.push("photo".into()),
        },
        "doc" => match body["url"].as_str() {
            Some(url) => {
                let ext = body["ext"].as_str().unwrap_or_default().to_ascii_lowercase();
                let mut name = body["title"].as_str().unwrap_or_default().trim().to_string();
                if name.is_empty() {
                    name = if ext.is_empty() { "document".into() } else { format!("document.{ext}") };
                }
                m.files.push(FileIn {
                    url: url.into(),
                    name,
                    content_type: content_type(&ext).into(),
                    size: body["size"].as_u64(),
                    object: owned("doc"),
                });
                m.kinds.push("doc".into());
            }
            None => m.uncarried.push("doc".into()),
        },
        "audio_message" => match body["link_ogg"].as_str().or(body["link_mp3"].as_str()) {
            Some(url) => {
                let ogg = body["link_ogg"].is_string();
                let secs = body["duration"].as_u64().unwrap_or(0);
                m.files.push(FileIn {
                    url: url.into(),
                    name: if ogg { "voice.ogg".into() } else { "voice.mp3".into() },
                    content_type: if ogg { "audio/ogg".into() } else { "audio/mpeg".into() },
                    size: None,
                    object: owned("voice"),
                });
                m.rendered.push(format!("[voice message, {}:{:02}]", secs / 60, secs % 60));
                m.kinds.push("audio_message".into());
            }
            None => m.uncarried.push("audio_message".into()),
        },
        "sticker" => {
            m.rendered.push("[sticker]".into());
            m.kinds.push("sticker".into());
        }
        other => m.uncarried.push(other.chars().take(32).collect()),
    }
}

/// The URL of a photo's largest size (by area; VK lists several).
pub fn largest_photo(photo: &Value) -> Option<String> {
    let sizes = photo["sizes"].as_array()?;
    let area = |s: &Value| s["width"].as_u64().unwrap_or(0).saturating_mul(s["height"].as_u64().unwrap_or(0));
    sizes
        .iter()
        .filter(|s| s["url"].is_string())
        .max_by_key(|s| area(s))
        .and_then(|s| s["url"].as_str())
        .map(str::to_string)
}

fn content_type(ext: &str) -> &'static str {
    match ext {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

impl Incoming {
    /// Whether anything of the message can be carried.
    pub fn carried(&self) -> bool {
        !self.text.trim().is_empty() || !self.files.is_empty() || !self.rendered.is_empty()
    }

    /// The de-duplication id: the dialog and the message's number in it.
    pub fn provider_id(&self) -> String {
        format!("{}:{}", self.peer_id, self.cmid)
    }

    /// The message as an envelope; its files listed as not fetched until [`crate::files`] fetches
    /// them. `None` when nothing can be carried.
    pub fn envelope(&self, raw_ref: Option<String>) -> Option<Envelope> {
        if !self.carried() {
            return None;
        }
        let mut lines: Vec<String> = Vec::new();
        if !self.text.trim().is_empty() {
            lines.push(self.text.clone());
        }
        lines.extend(self.rendered.iter().cloned());
        if !self.uncarried.is_empty() {
            lines.push(format!("[not shown here: {}]", self.uncarried.join(", ")));
        }
        let mut metadata = BTreeMap::new();
        metadata.insert(KIND_KEY.to_string(), self.kinds.join(","));
        metadata.insert("vk.conversation_message_id".to_string(), self.cmid.to_string());
        if let Some((lat, lon)) = self.geo {
            metadata.insert("vk.geo".to_string(), format!("{lat:.5},{lon:.5}"));
        }
        if !self.uncarried.is_empty() {
            metadata.insert("vk.uncarried".to_string(), self.uncarried.join(","));
        }
        let attachments = self
            .files
            .iter()
            .map(|f| AttachmentRef {
                object: String::new(),
                filename: f.name.clone(),
                content_type: f.content_type.clone(),
                size: f.size.unwrap_or(0),
                skipped: Some("vk file, not fetched".into()),
            })
            .collect();
        Some(Envelope {
            id: Uuid::now_v7(),
            channel: CHANNEL.into(),
            provider_message_id: self.provider_id(),
            received_at: chrono::Utc::now(),
            customer: Customer { id: self.from_id.to_string(), name: None, email: None, phone: None, language: None },
            thread_key: self.peer_id.to_string(),
            text: lines.join("\n"),
            subject: None,
            html: None,
            attachments,
            metadata,
            raw_ref,
        })
    }
}

/// The payload key of a survey button: `{"sb_survey": "<kind>:<conversation, 32 hex>:<score>"}`
/// (at most 60 bytes, within VK's 255).
const SURVEY_KEY: &str = "sb_survey";

/// The inline keyboard under a survey question: text buttons (a press sends the score as the
/// customer's message, with the payload naming survey, conversation and score), at most five
/// a row as VK allows inline.
pub fn survey_keyboard(kind: SurveyKind, conversation: Uuid) -> Value {
    let button = |n: u8| {
        let payload = json!({ SURVEY_KEY: format!("{kind}:{}:{n}", conversation.simple()) }).to_string();
        json!({ "action": { "type": "text", "label": n.to_string(), "payload": payload }, "color": "secondary" })
    };
    let buttons: Vec<Value> = kind.scale().map(button).collect();
    let rows: Vec<Value> = buttons.chunks(5).map(|r| Value::Array(r.to_vec())).collect();
    json!({ "inline": true, "buttons": rows })
}

/// Two inline text buttons (the L0 bot's yes and no): a press sends the label as the customer's
/// message, which the router reads like a typed answer.
pub fn answer_keyboard(labels: &[&str]) -> Value {
    let row: Vec<Value> = labels
        .iter()
        .map(|l| json!({ "action": { "type": "text", "label": l.chars().take(40).collect::<String>() } }))
        .collect();
    json!({ "inline": true, "buttons": [row] })
}

/// The survey, conversation and score a button's payload names, exactly as [`survey_keyboard`]
/// writes it; `None` for anything else.
pub fn survey_answer(payload: &str) -> Option<(SurveyKind, Uuid, u8)> {
    let value: Value = serde_json::from_str(payload).ok()?;
    let data = value.get(SURVEY_KEY)?.as_str()?;
    let (kind, rest) = data.split_once(':')?;
    let kind = SurveyKind::parse(kind)?;
    let (conversation, score) = rest.split_once(':')?;
    let hex =
        conversation.len() == 32 && conversation.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let score: u8 = score.parse().ok().filter(|s: &u8| s.to_string() == score)?;
    (hex && kind.scale().contains(&score)).then_some((kind, Uuid::try_parse(conversation).ok()?, score))
}

/// The `random_id` of part `part` of the message named `key` (an outbound message's id): the
/// same on every try, so VK itself drops a repeat; a positive `int32` as VK takes it.
pub fn random_id(key: &str, part: usize) -> i32 {
    let digest = Sha256::digest(format!("{key}:{part}"));
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    // 0 means "no idempotency" to VK.
    n.max(1) as i32
}

/// Splits text into parts of at most `max` characters, at a line break or space when one is in
/// the last quarter of a part; the same text always splits the same way.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut parts = Vec::new();
    let mut start = 0;
    while chars.len() - start > max {
        let window = &chars[start..start + max];
        let cut = window
            .iter()
            .rposition(|c| *c == '\n')
            .or_else(|| window.iter().rposition(|c| c.is_whitespace()))
            .filter(|at| *at >= max * 3 / 4)
            .map_or(max, |at| at + 1);
        parts.push(chars[start..start + cut].iter().collect());
        start += cut;
    }
    if start < chars.len() || parts.is_empty() {
        parts.push(chars[start..].iter().collect());
    }
    parts
}

/// What a VK API error code means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 6 (too many requests per second), 9 (flood control), 10 (internal error): wait and try again.
    Wait,
    /// 5: the token was refused; the channel is degraded until an operator fixes it.
    Auth,
    /// 901 (the customer did not allow messages), 902 (privacy settings), 7 (no permission):
    /// this customer cannot be messaged.
    Denied,
    /// Anything else: the request will not work as it is.
    Permanent,
}

/// Sorts a VK error code.
pub fn classify(code: i64) -> ErrorClass {
    match code {
        6 | 9 | 10 | 1 => ErrorClass::Wait,
        5 => ErrorClass::Auth,
        901 | 902 | 7 => ErrorClass::Denied,
        _ => ErrorClass::Permanent,
    }
}

/// A reason a person understands for a customer VK will not let the community message.
pub fn denied_reason(code: i64) -> String {
    match code {
        901 => "the customer has not allowed the community to message them on VK, or blocked it (VK error 901)".into(),
        902 => "the customer's VK privacy settings do not allow messages from the community (VK error 902)".into(),
        c => format!("VK does not allow messaging this customer (VK error {c})"),
    }
}
