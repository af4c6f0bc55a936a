//! Reading the MIME tree with `mail-parser`: headers, bodies, attachments and report parts.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use sha2::{Digest, Sha256};

use super::part::{clean_id, part_bytes};
use super::report::{self, DeliveryReport};
use super::{Attachment, Mailbox, ParseError, ParseLimits, SenderSource, hex};

/// The readable body, and where it came from: quote detection differs for plain text and HTML.
pub(super) enum Body {
    Plain(String),
    Html(String),
}

/// Everything `parse` needs from the MIME tree, before quote splitting and text limits.
pub(super) struct MimeParts {
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Mailbox,
    pub from_source: Option<SenderSource>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub delivered_to: Vec<String>,
    pub reply_to: Vec<Mailbox>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub body: Body,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    pub attachments_omitted: usize,
    pub report: Option<DeliveryReport>,
    pub headers: Vec<(String, String)>,
    /// Readable renderings of forwarded `message/rfc822` parts, in message order.
    pub forwarded: Vec<String>,
}

/// How deep forwarded messages inside forwarded messages are rendered.
const MAX_FORWARD_DEPTH: usize = 3;

/// The separator line a forwarded message's rendering starts with, as mail clients write it.
pub(super) const FORWARD_SEPARATOR: &str = "---------- Forwarded message ----------";

/// Header fields that make a header block a message rather than trace lines an MTA prepended
/// (`Return-Path`, `Received`, `Delivered-To`) to something that is not mail.
const MESSAGE_HEADERS: [&str; 12] = [
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
];

/// Longest address taken as a sender (RFC 5321's path limit); a longer one is not an address.
const MAX_ADDRESS_BYTES: usize = 254;

/// Longest file name kept, in bytes; file systems and mail clients choke on longer ones.
const MAX_FILENAME_BYTES: usize = 200;

pub(super) fn read(raw: &[u8], limits: &ParseLimits) -> Result<MimeParts, ParseError> {
    // mail-parser promises never to panic; this keeps a broken promise from taking the IMAP task
    // down with it.
    let message = match catch_unwind(|| MessageParser::default().parse(raw)) {
        Ok(Some(m)) if !m.parts.is_empty() => m,
        Ok(_) => return Err(ParseError::NoHeaders),
        Err(_) => return Err(ParseError::Malformed),
    };
    // Reading the parsed tree goes through mail-parser accessors too.
    catch_unwind(AssertUnwindSafe(|| from_message(&message, raw, limits))).unwrap_or(Err(ParseError::Malformed))
}

fn from_message(message: &Message<'_>, raw: &[u8], limits: &ParseLimits) -> Result<MimeParts, ParseError> {
    let headers = headers(message, raw);
    if !headers.iter().any(|(name, _)| MESSAGE_HEADERS.iter().any(|m| name.eq_ignore_ascii_case(m))) {
        return Err(ParseError::NoHeaders);
    }
    let charset = eight_bit_charset(message);
    let (from, from_source) = author(message, &headers, raw, charset.as_deref());
    let (body, html, taken_as_body) = bodies(message);
    let report_type = message
        .root_part()
        .content_type()
        .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        .filter(|ct| ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report")))
        .map(|ct| ct.attribute("report-type").unwrap_or_default().to_ascii_lowercase());
    let mut report = report::Builder::new(report_type);
    let mut attachments = Vec::new();
    let mut attachments_omitted = 0;
    let mut forwarded = Vec::new();
    for &id in message.attachments.iter().filter(|&&id| Some(id) != taken_as_body) {
        let Some(part) = message.parts.get(id as usize) else { continue };
        let content_type = content_type(part);
        if report.take(&content_type, part, raw) {
            continue;
        }
        if let Some(nested) = part.message()
            && forwarded.len() < limits.max_attachments
        {
            forwarded.push(forwarded_text(nested, 1));
        }
        if attachments.len() >= limits.max_attachments {
            attachments_omitted += 1;
            continue;
        }
        attachments.push(attachment(part, content_type, raw, attachments.len() + 1, limits));
    }
    Ok(MimeParts {
        message_id: message.message_id().and_then(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        from,
        from_source,
        to: mailboxes(message, HeaderName::To),
        cc: mailboxes(message, HeaderName::Cc),
        delivered_to: delivered_to(message),
        reply_to: mailboxes(message, HeaderName::ReplyTo),
        subject: header_text(message, raw, HeaderName::Subject, charset.as_deref())
            .or_else(|| message.subject().map(str::to_string))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        date: message.date().filter(|d| d.is_valid()).and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single()),
        body,
        html,
        attachments,
        attachments_omitted,
        report: report.finish(),
        headers,
        forwarded,
    })
}

/// The first value of a header field written in raw 8-bit bytes that are not UTF-8, decoded with
/// the message's own charset: mail-parser cannot know it and would make them replacement
/// characters. `None` when the field is missing or ASCII/UTF-8 (mail-parser's decoding stands).
fn header_text(message: &Message<'_>, raw: &[u8], name: HeaderName<'_>, charset: Option<&str>) -> Option<String> {
    let charset = charset?;
    let header = message.headers().iter().find(|h| h.name == name)?;
    let value = raw.get(header.offset_start as usize..header.offset_end as usize)?;
    if value.is_ascii() || std::str::from_utf8(value).is_ok() {
        return None;
    }
    let decode = mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes())?;
    let text = decode(value);
    Some(text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" "))
}

/// The charset raw 8-bit header bytes are most likely in: the one the message declares for its
/// text (its own `Content-Type`, else its first text part's). Clients that put unencoded 8-bit
/// text into headers write it in the charset they write the body in.
fn eight_bit_charset(message: &Message<'_>) -> Option<String> {
    let of = |part: &MessagePart<'_>| part.content_type().and_then(|ct| ct.attribute("charset")).map(str::to_string);
    let root = message.root_part();
    of(root).or_else(|| message.text_body.iter().filter_map(|&id| message.parts.get(id as usize)).find_map(of))
}

/// The author: the `From` address; when `From` is missing, empty (`<>`) or not an address, the
/// `Sender`, then `Reply-To`, then the envelope sender (`Return-Path`), so that mail with a broken
/// `From` still reaches someone who can answer it. The display name is `From`'s where it has one.
/// An empty address (with `None`) when none of them holds one.
fn author(
    message: &Message<'_>,
    headers: &[(String, String)],
    raw: &[u8],
    charset: Option<&str>,
) -> (Mailbox, Option<SenderSource>) {
    let from_name =
        header_text(message, raw, HeaderName::From, charset).and_then(|decoded| display_name(&decoded)).or_else(|| {
            message
                .header_values(HeaderName::From)
                .filter_map(HeaderValue::as_address)
                .flat_map(Address::iter)
                .find_map(|a| a.name().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()))
        });
    let raw_from = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("from"))
        .find_map(|(_, v)| address_in_text(v))
        .map(|address| Mailbox { address, name: None });
    let return_path = headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("return-path")).find_map(|(_, v)| {
        let v = v.trim().trim_start_matches('<').trim_end_matches('>').trim();
        valid_address(v).then(|| Mailbox { address: v.to_string(), name: None })
    });
    let candidates = [
        (mailboxes(message, HeaderName::From).into_iter().next().or(raw_from), SenderSource::From),
        (mailboxes(message, HeaderName::Sender).into_iter().next(), SenderSource::Sender),
        (mailboxes(message, HeaderName::ReplyTo).into_iter().next(), SenderSource::ReplyTo),
        (return_path, SenderSource::ReturnPath),
    ];
    match candidates.into_iter().find_map(|(m, source)| m.map(|m| (m, source))) {
        Some((mut mailbox, source)) => {
            if from_name.is_some() && from_name.as_deref() != Some(mailbox.address.as_str()) {
                mailbox.name = from_name;
            }
            (mailbox, Some(source))
        }
        None => (Mailbox { address: String::new(), name: from_name }, None),
    }
}

/// The display name of a decoded address field: `Иван <i@x>` → `Иван`.
fn display_name(value: &str) -> Option<String> {
    let name = value.split('<').next().unwrap_or_default().trim().trim_matches('"').trim();
    (!name.is_empty() && !name.contains('@')).then(|| name.to_string())
}

/// The first word of a raw header value that is an address, for `From` values mail-parser could
/// not read (`Ivan <ivan@example.com`, `ivan@example.com, (Ivan)`).
fn address_in_text(value: &str) -> Option<String> {
    value
        .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')' | ',' | ';' | '[' | ']'))
        .map(|w| w.trim_end_matches([':', '.']))
        .find(|w| valid_address(w))
        .map(str::to_string)
}

/// Something mail can be sent to: `local@domain`, no whitespace or control characters, bounded.
fn valid_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    !local.is_empty()
        && !domain.is_empty()
        && address.len() <= MAX_ADDRESS_BYTES
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A forwarded message made readable: the separator, its `From`, `Date`, `Subject` and `To`,
/// its text (HTML made readable), then the messages it forwards in turn, up to
/// [`MAX_FORWARD_DEPTH`].
fn forwarded_text(message: &Message<'_>, depth: usize) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{FORWARD_SEPARATOR}\n");
    let addresses = |name: HeaderName<'_>| {
        let list: Vec<String> = message
            .header_values(name)
            .filter_map(HeaderValue::as_address)
            .flat_map(Address::iter)
            .filter_map(|a| match (a.name(), a.address()) {
                (Some(n), Some(a)) if !n.trim().is_empty() => Some(format!("{} <{a}>", n.trim())),
                (_, Some(a)) => Some(a.to_string()),
                (Some(n), None) => Some(n.trim().to_string()),
                (None, None) => None,
            })
            .collect();
        (!list.is_empty()).then(|| list.join(", "))
    };
    let date = message.date().filter(|d| d.is_valid()).map(|d| d.to_rfc822());
    for (label, value) in [
        ("From", addresses(HeaderName::From)),
        ("Date", date),
        ("Subject", message.subject().map(|s| s.trim().to_string())),
        ("To", addresses(HeaderName::To)),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            let _ = writeln!(out, "{label}: {value}");
        }
    }
    let text = match bodies(message).0 {
        Body::Plain(text) => text,
        Body::Html(html) => super::html::split(&html).text,
    };
    let text = text.trim();
    if !text.is_empty() {
        let _ = write!(out, "\n{text}\n");
    }
    if depth < MAX_FORWARD_DEPTH {
        for &id in &message.attachments {
            if let Some(nested) = message.parts.get(id as usize).and_then(|p| p.message()) {
                let _ = write!(out, "\n{}", forwarded_text(nested, depth + 1));
            }
        }
    }
    out.trim_end().to_string()
}

/// Every address in every instance of an address header, groups flattened; entries without an
/// address (a bare display name, an empty group) are skipped.
fn mailboxes(message: &Message<'_>, name: HeaderName<'_>) -> Vec<Mailbox> {
    message
        .header_values(name)
        .filter_map(HeaderValue::as_address)
        .flat_map(Address::iter)
        .filter_map(mailbox)
        .collect()
}

fn mailbox(addr: &mail_parser::Addr<'_>) -> Option<Mailbox> {
    let address = addr.address()?.trim();
    if !valid_address(address) {
        return None;
    }
    let name = addr.name().map(|n| n.trim().to_string()).filter(|n| !n.is_empty() && n != address);
    Some(Mailbox { address: address.to_string(), name })
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let mut out: Vec<String> = match value {
        HeaderValue::Text(id) => clean_id(id).into_iter().collect(),
        HeaderValue::TextList(ids) => ids.iter().filter_map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    };
    // A client that repeats an id would otherwise make it look like two ancestors.
    let mut seen = std::collections::HashSet::new();
    out.retain(|id| seen.insert(id.clone()));
    out
}

fn delivered_to(message: &Message<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for header in message.headers() {
        let name = header.name.as_str();
        if !(name.eq_ignore_ascii_case("delivered-to") || name.eq_ignore_ascii_case("x-original-to")) {
            continue;
        }
        let Some(value) = header.value.as_text() else { continue };
        let address = value.trim().trim_start_matches('<').trim_end_matches('>').trim();
        if !address.is_empty()
            && !address.contains(char::is_whitespace)
            && !out.iter().any(|a| a.eq_ignore_ascii_case(address))
        {
            out.push(address.to_string());
        }
    }
    out
}

fn headers(message: &Message<'_>, raw: &[u8]) -> Vec<(String, String)> {
    message
        .headers()
        .iter()
        .map(|h| {
            let value = raw.get(h.offset_start as usize..h.offset_end as usize).unwrap_or_default();
            let value = String::from_utf8_lossy(value);
            let unfolded = value.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            (h.name.as_str().to_string(), unfolded)
        })
        .collect()
}

/// The readable body, the original HTML, and the id of an attachment part that was taken as the
/// body. Plain text wins when the message has both, because it is what the author's client meant
/// as the text version.
fn bodies(message: &Message<'_>) -> (Body, Option<String>, Option<u32>) {
    let parts = |ids: &[u32]| ids.iter().filter_map(|&id| message.parts.get(id as usize)).collect::<Vec<_>>();
    let mut texts: Vec<String> = parts(&message.text_body)
        .into_iter()
        .filter_map(|p| match &p.body {
            PartType::Text(t) => Some(recovered_text(p).unwrap_or_else(|| t.to_string())),
            _ => None,
        })
        .collect();
    let mut htmls: Vec<&str> = Vec::new();
    for part in parts(&message.html_body).into_iter().chain(parts(&message.text_body)) {
        if let PartType::Html(h) = &part.body
            && !htmls.contains(&h.as_ref())
        {
            htmls.push(h);
        }
    }
    let html = (!htmls.is_empty()).then(|| htmls.join("\n"));
    // A text part whose encoding broke is filed as an attachment; with no other body it is the
    // body, and its readable beginning is better than nothing.
    let mut taken = None;
    if texts.is_empty()
        && html.is_none()
        && let Some((id, text)) = message.attachments.iter().find_map(|&id| {
            let part = message.parts.get(id as usize)?;
            let unnamed =
                part.attachment_name().is_none() && !part.content_disposition().is_some_and(|d| d.is_attachment());
            unnamed.then(|| recovered_text(part)).flatten().map(|t| (id, t))
        })
    {
        texts.push(text);
        taken = Some(id);
    }
    let body = match &html {
        Some(html) if texts.is_empty() => Body::Html(html.clone()),
        _ => Body::Plain(normalise_newlines(&texts.join("\n"))),
    };
    (body, html, taken)
}

/// The text of a `text/plain` part mail-parser flagged as badly encoded: base64 decoded up to the
/// first character that is not base64, in the part's charset.
fn recovered_text(part: &MessagePart<'_>) -> Option<String> {
    let PartType::Text(text) = &part.body else { return None };
    let plain = part.content_type().is_none_or(|ct| {
        ct.ctype().eq_ignore_ascii_case("text") && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
    });
    if !part.is_encoding_problem || !plain {
        return None;
    }
    if !part.content_transfer_encoding().is_some_and(|e| e.trim().eq_ignore_ascii_case("base64")) {
        return Some(text.to_string());
    }
    let mut valid: Vec<u8> = text
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=') || b.is_ascii_whitespace())
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if let Some(pad) = valid.iter().position(|&b| b == b'=') {
        valid.truncate(pad.div_ceil(4) * 4);
    }
    valid.truncate(valid.len() / 4 * 4);
    let bytes = mail_parser::decoders::base64::base64_decode(&valid)?;
    let charset = part.content_type().and_then(|ct| ct.attribute("charset")).unwrap_or("utf-8");
    Some(match mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes()) {
        Some(decode) => decode(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    })
}

fn normalise_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

pub(super) fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => {
            let subtype = ct.subtype().unwrap_or(match ct.ctype() {
                "text" => "plain",
                _ => "octet-stream",
            });
            format!("{}/{}", ct.ctype(), subtype).to_ascii_lowercase()
        }
        None => match part.body {
            PartType::Html(_) => "text/html".into(),
            PartType::Text(_) => "text/plain".into(),
            PartType::Message(_) => "message/rfc822".into(),
            _ => "application/octet-stream".into(),
        },
    }
}

fn attachment(
    part: &MessagePart<'_>,
    content_type: String,
    raw: &[u8],
    number: usize,
    limits: &ParseLimits,
) -> Attachment {
    let bytes = part_bytes(part, raw);
    let size = bytes.len();
    let sha256 = hex(&Sha256::digest(bytes));
    let nested_subject = part.message().and_then(|m| m.subject()).map(|s| format!("{s}.eml"));
    let filename = part
        .attachment_name()
        .and_then(sanitise_filename)
        .or_else(|| nested_subject.as_deref().and_then(sanitise_filename))
        .unwrap_or_else(|| format!("attachment-{number}.{}", extension(&content_type)));
    let disposition_inline = part.content_disposition().map(|d| d.is_inline());
    let inline = matches!(part.body, PartType::InlineBinary(_))
        || disposition_inline == Some(true)
        || (disposition_inline.is_none() && part.content_id().is_some());
    let undecodable = part
        .content_transfer_encoding()
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| part.is_encoding_problem && (e == "base64" || e == "quoted-printable"));
    let (bytes, skipped) = if let Some(encoding) = undecodable {
        // The bytes would be the broken encoded text under the part's file name: misleading.
        (Vec::new(), Some(format!("the {encoding} content could not be decoded")))
    } else if size > limits.max_attachment_bytes {
        (Vec::new(), Some(format!("{size} bytes, over the attachment limit of {} bytes", limits.max_attachment_bytes)))
    } else {
        (bytes.to_vec(), None)
    };
    Attachment {
        filename,
        content_type,
        size: size as u64,
        content_id: part.content_id().and_then(clean_id),
        inline,
        bytes,
        skipped,
        sha256,
    }
}

/// A file name safe to store and show: no directories, no control or reserved characters, no
/// leading dots, bounded length with the extension kept.
pub(super) fn sanitise_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim().trim_matches('.').trim();
    if cleaned.is_empty() {
        return None;
    }
    if cleaned.len() <= MAX_FILENAME_BYTES {
        return Some(cleaned.to_string());
    }
    let (stem, ext) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if !ext.is_empty() && ext.len() <= 16 => (stem, Some(ext)),
        _ => (cleaned, None),
    };
    let room = MAX_FILENAME_BYTES - ext.map_or(0, |e| e.len() + 1);
    let mut end = room.min(stem.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    Some(match ext {
        Some(ext) => format!("{}.{ext}", &stem[..end]),
        None => stem[..end].to_string(),
    })
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "text/calendar" => "ics",
        "message/rfc822" => "eml",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_lose_paths_and_reserved_characters() {
        let check = |name: &str, expected: Option<&str>| {
            assert_eq!(sanitise_filename(name).as_deref(), expected, "{name:?}");
        };
        check("report.pdf", Some("report.pdf"));
        check("../../etc/passwd", Some("passwd"));
        check("C:\\Users\\ivan\\Desktop\\счёт.xlsx", Some("счёт.xlsx"));
        check("..", None);
        check("   ", None);
        check(".htaccess", Some("htaccess"));
        check("a\u{0}b\nc.txt", Some("abc.txt"));
        check("what?<>.txt", Some("what___.txt"));
        let long = format!("{}.pdf", "я".repeat(300));
        let cut = sanitise_filename(&long).unwrap_or_default();
        assert!(cut.len() <= MAX_FILENAME_BYTES && cut.ends_with(".pdf"), "{cut}");
    }

    #[test]
    fn ids_lose_brackets_and_refuse_whitespace() {
        assert_eq!(clean_id(" <abc@example.com> ").as_deref(), Some("abc@example.com"));
        assert_eq!(clean_id("<>"), None);
        assert_eq!(clean_id("a b@c"), None);
    }
}
