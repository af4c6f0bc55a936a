//! Files visitors upload: where they are stored, and the signed links that serve them back.

use switchboard_core::AttachmentRef;

use crate::server::Shared;
use crate::session::Sessions;
use crate::transcript::Attachment;

/// Object-store prefix of a session's uploads; a message may only attach objects under it.
pub fn object_prefix(session: &str) -> String {
    format!("webchat/{session}/")
}

/// The file name from `X-Filename` (URL-encoded), without any path and at most 200 characters.
pub fn decode_filename(raw: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let name = decoded.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let name: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    if name.is_empty() { "file".into() } else { name }
}

/// Whether `sig` is the link signature of `object`.
pub fn verify_link(sessions: &Sessions, object: &str, sig: &str) -> bool {
    sessions.verify_sig("file", object, sig)
}

/// How a stored attachment appears in the transcript: its name, size and a signed link.
pub(crate) fn entry_attachment(shared: &Shared, a: &AttachmentRef) -> Attachment {
    let url = match a.object.strip_prefix("webchat/") {
        Some(path) if a.skipped.is_none() => {
            format!("/chat/files/{path}?sig={}", shared.sessions.sign("file", &a.object))
        }
        _ => String::new(),
    };
    Attachment { name: a.filename.clone(), size: a.size, content_type: a.content_type.clone(), url }
}
