//! Small readers of MIME parts shared by the body walk and the delivery-report reader.

use mail_parser::{MessagePart, PartType};

/// Trims an id and its angle brackets; ids with whitespace or control characters inside are
/// refused because they cannot be matched reliably against another message's headers.
pub(super) fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && !id.chars().any(|c| c.is_whitespace() || c.is_control())).then(|| id.to_string())
}

/// The decoded content of a part. A nested `message/rfc822` keeps its raw bytes: mail-parser's
/// own accessor for it returns the whole outer message.
pub(super) fn part_bytes<'a>(part: &'a MessagePart<'_>, raw: &'a [u8]) -> &'a [u8] {
    match &part.body {
        PartType::Message(_) => raw.get(part.offset_body as usize..part.offset_end as usize).unwrap_or_default(),
        _ => part.contents(),
    }
}
