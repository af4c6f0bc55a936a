//! What a customer's message is. Every kind the channel carries gets a textual rendering an agent
//! understands (`[voice message, 0:07]`, `[location 55.7558, 37.6173]`) and, when it has one, its
//! file; a kind it cannot carry (a game, paid media, a story, a kind newer than the client) is
//! named so the customer can be told, and a service message (someone joined, a pin) is not a
//! customer writing at all.

use teloxide_core::types::{FileMeta, MediaKind, MediaText, Message, MessageCommon, MessageKind, PhotoSize, Seconds};

/// The metadata key naming the kind of a customer's message (`text`, `voice`, `location`, ...).
pub const KIND_KEY: &str = "telegram.kind";

/// What the customer is told when they send a kind of message the channel cannot carry.
pub const CANNOT_READ: &str = "This kind of message cannot be read here; please write text.";

/// A file a message carries, as the envelope lists it.
#[derive(Debug, Clone)]
pub(crate) struct FileSpec {
    pub(crate) meta: FileMeta,
    pub(crate) name: String,
    pub(crate) mime: String,
}

/// What one message is for Switchboard.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// Something a customer wrote or sent that becomes an envelope.
    Carried {
        /// `telegram.kind`.
        kind: &'static str,
        /// The text, or the rendering of what was sent followed by its caption.
        text: String,
        /// Its file, to fetch into the object store.
        file: Option<FileSpec>,
    },
    /// Something a customer sent that the channel cannot carry: the kind, for the log.
    Unsupported(&'static str),
    /// Not a customer writing (a member joined, a pinned message, a chat migrated).
    Service,
}

fn file(meta: &FileMeta, name: Option<&str>, default_name: &str, mime: Option<String>, default_mime: &str) -> FileSpec {
    // A blank name would make the contract refuse the envelope, and the message would be lost.
    let name = name.filter(|n| !n.trim().is_empty()).unwrap_or(default_name).to_string();
    FileSpec { meta: meta.clone(), name, mime: mime.unwrap_or_else(|| default_mime.into()) }
}

/// `0:07`, `3:25`, `1:02:03`.
pub(crate) fn duration(d: Seconds) -> String {
    let s = d.seconds();
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}

/// The largest size of a photo; in u64, because width times height of two u32 need not fit a u32.
pub(crate) fn largest(sizes: &[PhotoSize]) -> Option<&PhotoSize> {
    sizes.iter().max_by_key(|p| u64::from(p.width) * u64::from(p.height))
}

/// What `m` is.
pub(crate) fn content(m: &Message) -> Content {
    let media = match &m.kind {
        MessageKind::Common(MessageCommon { media_kind, .. }) => media_kind,
        MessageKind::Dice(d) => {
            let emoji = serde_json::to_value(d.dice.emoji).ok();
            let emoji = emoji.as_ref().and_then(|e| e.as_str()).unwrap_or("🎲");
            return carried("dice", format!("[dice {emoji} {}]", d.dice.value), None, None);
        }
        MessageKind::Giveaway(_) => return Content::Unsupported("giveaway"),
        MessageKind::Invoice(_) => return Content::Unsupported("invoice"),
        MessageKind::PassportData(_) => return Content::Unsupported("passport_data"),
        MessageKind::WebAppData(_) => return Content::Unsupported("web_app_data"),
        MessageKind::UsersShared(_) => return Content::Unsupported("users_shared"),
        MessageKind::ChatShared(_) => return Content::Unsupported("chat_shared"),
        // teloxide reads a message whose content it does not know (a kind newer than the client)
        // as empty: a customer sent something that cannot be read.
        MessageKind::Empty {} => return Content::Unsupported("unknown"),
        _ => return Content::Service,
    };
    let caption = m.caption();
    match media {
        MediaKind::Text(MediaText { text, .. }) => carried("text", text.clone(), None, None),
        MediaKind::Photo(p) => match largest(&p.photo) {
            Some(photo) => {
                let f = file(&photo.file, None, "photo.jpg", None, "image/jpeg");
                carried("photo", String::new(), caption.or(Some("[photo]")), Some(f))
            }
            None => carried("photo", "[photo]".into(), caption, None),
        },
        MediaKind::Document(d) => {
            let doc = &d.document;
            let mime = doc.mime_type.as_ref().map(|m| m.to_string());
            let f = file(&doc.file, doc.file_name.as_deref(), "document", mime, "application/octet-stream");
            let rendering = format!("[document {}]", f.name);
            carried("document", String::new(), caption.or(Some(&rendering)), Some(f))
        }
        MediaKind::Voice(v) => {
            let mime = v.voice.mime_type.as_ref().map(|m| m.to_string());
            let f = file(&v.voice.file, None, "voice.ogg", mime, "audio/ogg");
            carried("voice", format!("[voice message, {}]", duration(v.voice.duration)), caption, Some(f))
        }
        MediaKind::Audio(a) => {
            let audio = &a.audio;
            let mime = audio.mime_type.as_ref().map(|m| m.to_string());
            let f = file(&audio.file, audio.file_name.as_deref(), "audio.mp3", mime, "audio/mpeg");
            let title = match (&audio.performer, &audio.title) {
                (Some(p), Some(t)) => format!("{p} — {t}"),
                (Some(x), None) | (None, Some(x)) => x.clone(),
                (None, None) => f.name.clone(),
            };
            carried("audio", format!("[audio {title}, {}]", duration(audio.duration)), caption, Some(f))
        }
        MediaKind::Video(v) => {
            let video = &v.video;
            let mime = video.mime_type.as_ref().map(|m| m.to_string());
            let f = file(&video.file, video.file_name.as_deref(), "video.mp4", mime, "video/mp4");
            carried("video", format!("[video, {}]", duration(video.duration)), caption, Some(f))
        }
        MediaKind::VideoNote(v) => {
            let note = &v.video_note;
            let f = file(&note.file, None, "video-note.mp4", None, "video/mp4");
            carried("video_note", format!("[video note, {}]", duration(note.duration)), caption, Some(f))
        }
        MediaKind::Animation(a) => {
            let anim = &a.animation;
            let mime = anim.mime_type.as_ref().map(|m| m.to_string());
            let f = file(&anim.file, anim.file_name.as_deref(), "animation.mp4", mime, "video/mp4");
            carried("animation", format!("[animation, {}]", duration(anim.duration)), caption, Some(f))
        }
        MediaKind::Sticker(s) => {
            let sticker = &s.sticker;
            // From the flags, not `Sticker::format`, which panics when a sticker claims both.
            let (name, mime) = match (sticker.flags.is_video, sticker.flags.is_animated) {
                (true, _) => ("sticker.webm", "video/webm"),
                (false, true) => ("sticker.tgs", "application/x-tgsticker"),
                (false, false) => ("sticker.webp", "image/webp"),
            };
            let f = file(&sticker.file, None, name, None, mime);
            let text = match sticker.emoji.as_deref() {
                Some(e) if !e.trim().is_empty() => format!("[sticker {e}]"),
                _ => "[sticker]".into(),
            };
            carried("sticker", text, None, Some(f))
        }
        MediaKind::Location(l) => {
            let loc = &l.location;
            let what = if loc.live_period.is_some() { "live location" } else { "location" };
            carried("location", format!("[{what} {}, {}]", loc.latitude, loc.longitude), None, None)
        }
        MediaKind::Venue(v) => {
            let venue = &v.venue;
            let (lat, lon) = (venue.location.latitude, venue.location.longitude);
            carried("venue", format!("[venue {}, {} ({lat}, {lon})]", venue.title, venue.address), None, None)
        }
        MediaKind::Contact(c) => {
            let contact = &c.contact;
            let name = [contact.first_name.as_str(), contact.last_name.as_deref().unwrap_or_default()].join(" ");
            let text = format!("[contact {} {}]", name.trim(), contact.phone_number);
            carried("contact", text, None, None)
        }
        MediaKind::Poll(p) => {
            let poll = &p.poll;
            let options: Vec<&str> = poll.options.iter().map(|o| o.text.as_str()).collect();
            carried("poll", format!("[poll: {} — {}]", poll.question, options.join(" / ")), None, None)
        }
        MediaKind::Game(_) => Content::Unsupported("game"),
        MediaKind::PaidMedia(_) => Content::Unsupported("paid_media"),
        MediaKind::Story(_) => Content::Unsupported("story"),
        MediaKind::Checklist(_) => Content::Unsupported("checklist"),
        MediaKind::Migration(_) => Content::Service,
    }
}

/// A carried message: `text`, or the rendering then the caption when there is one.
fn carried(kind: &'static str, rendering: String, caption: Option<&str>, file: Option<FileSpec>) -> Content {
    let caption = caption.map(str::trim).filter(|c| !c.is_empty());
    let text = match (rendering.is_empty(), caption) {
        (true, c) => c.unwrap_or_default().to_string(),
        (false, Some(c)) => format!("{rendering} {c}"),
        (false, None) => rendering,
    };
    Content::Carried { kind, text, file }
}

/// The kind of a raw update, for the log: the update's field (`message`, `inline_query`, ...), and
/// for a message its content's field (`message:voice`).
pub(crate) fn raw_kind(raw: &serde_json::Value) -> String {
    let Some(fields) = raw.as_object() else { return "unreadable".into() };
    let Some((kind, value)) = fields.iter().find(|(k, _)| *k != "update_id") else { return "empty".into() };
    const COMMON: &[&str] = &[
        "message_id",
        "message_thread_id",
        "from",
        "sender_chat",
        "date",
        "chat",
        "is_topic_message",
        "via_bot",
        "sender_business_bot",
        "entities",
        "caption",
        "caption_entities",
        "edit_date",
        "reply_to_message",
        "forward_origin",
        "author_signature",
        "has_protected_content",
        "media_group_id",
        "link_preview_options",
        "reply_markup",
        "show_caption_above_media",
        "has_media_spoiler",
    ];
    let content = value.as_object().and_then(|m| m.keys().find(|k| !COMMON.contains(&k.as_str())));
    match content {
        Some(c) if kind.ends_with("message") || kind.ends_with("post") => format!("{kind}:{c}"),
        _ => kind.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_clocks() {
        assert_eq!(duration(Seconds::from_seconds(7)), "0:07");
        assert_eq!(duration(Seconds::from_seconds(205)), "3:25");
        assert_eq!(duration(Seconds::from_seconds(3723)), "1:02:03");
    }

    #[test]
    fn the_kind_of_a_raw_update_names_its_content() {
        let raw = serde_json::json!({ "update_id": 1, "message": { "message_id": 1, "date": 0, "game": {} } });
        assert_eq!(raw_kind(&raw), "message:game");
        assert_eq!(raw_kind(&serde_json::json!({ "update_id": 1, "inline_query": { "id": "1" } })), "inline_query");
        assert_eq!(raw_kind(&serde_json::json!("x")), "unreadable");
    }
}
