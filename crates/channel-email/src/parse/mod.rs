//! Turning raw RFC 5322 messages into what the channel needs: bytes in, typed values out.
//!
//! [`parse`] reads one message into a [`ParsedMail`] (addresses, threading ids, decoded subject
//! and bodies, the new text apart from quoted replies and signatures, attachments within
//! [`ParseLimits`]); [`classify`] tells a customer's message from bounces, auto-replies and noise;
//! the threading helpers find reply tokens and thread roots; [`parse_agent_command`] reads the
//! `#command` an agent puts on the first line of a reply. Nothing here does I/O, and no input,
//! however malformed, makes it panic.

mod classify;
mod command;
mod html;
mod mime;
mod part;
mod quote;
mod report;
mod survey;
mod thread;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use classify::{AutoReplyReason, BounceInfo, Classification, NoiseReason, classify};
pub use command::{AgentEmailCommand, CommandError, parse_agent_command};
pub use quote::split_quoted;
pub use report::{DeliveryReport, ReportRecipient};
pub use survey::number as survey_number;
pub use thread::{
    MAX_TOKEN_LEN, ReplyToken, TokenSource, base_subject, reply_address, reply_subject, reply_token, subject_tag,
    thread_root, token_from_address, token_from_subject,
};

/// Appended to text cut at [`ParseLimits::max_text_bytes`], so a reader knows something is missing.
pub const TRUNCATION_MARKER: &str = "\n[… message truncated]";

/// Bounds on what one message may cost; see each field for what happens past it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParseLimits {
    /// Largest raw message, in bytes; a bigger one is refused with [`ParseError::TooLarge`].
    pub max_message_bytes: usize,
    /// Largest attachment, in bytes; a bigger one is listed without its bytes, marked `skipped`.
    pub max_attachment_bytes: usize,
    /// Most attachments kept; further ones are only counted in [`ParsedMail::attachments_omitted`].
    pub max_attachments: usize,
    /// Largest text (`text`, `new_text`, `quoted`), in bytes; longer text is cut with
    /// [`TRUNCATION_MARKER`], and HTML over it is not kept at all.
    pub max_text_bytes: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: 25 * 1024 * 1024,
            max_attachment_bytes: 10 * 1024 * 1024,
            max_attachments: 32,
            max_text_bytes: switchboard_core::envelope::MAX_TEXT_BYTES,
        }
    }
}

/// Why a message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No bytes, or only whitespace.
    #[error("the message is empty")]
    Empty,
    /// The raw message is over [`ParseLimits::max_message_bytes`].
    #[error("the message is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size of the raw message.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Nothing that looks like a header block was found, or only the trace lines a mail server
    /// puts on top of whatever it was given (`Return-Path`, `Received`).
    #[error("not an email: no From, To, Subject, Date or Message-ID header")]
    NoHeaders,
    /// No sender address anywhere (`From`, `Sender`, `Reply-To`, `Return-Path` missing, empty or
    /// not an address), so there is nobody to answer. [`parse`] itself reads such mail (a bounce
    /// from `<>` is one); [`ParsedMail::author`] refuses it where an answer is needed.
    #[error("no sender address: From, Sender, Reply-To and Return-Path are missing, empty or not addresses")]
    NoFrom,
    /// The MIME parser failed in a way it should not have; the message is refused, not the process.
    #[error("the MIME structure could not be read")]
    Malformed,
}

/// An email address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// The address (`ivan@example.com`), as written.
    pub address: String,
    /// The display name, decoded, where one was given.
    pub name: Option<String>,
}

/// One attachment or inline part (images shown in the body count too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name, decoded and stripped of any path; made up from the type when the part has none.
    pub filename: String,
    /// MIME type, lower case (`image/png`).
    pub content_type: String,
    /// Decoded size in bytes, also when the bytes were not kept.
    pub size: u64,
    /// `Content-ID` without angle brackets, for images the HTML refers to as `cid:`.
    pub content_id: Option<String>,
    /// Whether the part is shown in the body rather than offered as a file.
    pub inline: bool,
    /// The decoded content; empty when `skipped`.
    pub bytes: Vec<u8>,
    /// Why the bytes were not kept (e.g. over the size limit); the message still flows.
    pub skipped: Option<String>,
    /// SHA-256 of the decoded content (also when the bytes were not kept), lower-case hex.
    pub sha256: String,
}

/// Which header field the author's address was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SenderSource {
    /// `From`, as it should be.
    From,
    /// `Sender`: `From` held no address.
    Sender,
    /// `Reply-To`: neither `From` nor `Sender` held an address.
    ReplyTo,
    /// `Return-Path`, the envelope sender: the last resort.
    ReturnPath,
}

impl SenderSource {
    /// The header field's name in lower case, e.g. `reply-to`.
    pub fn as_str(self) -> &'static str {
        match self {
            SenderSource::From => "from",
            SenderSource::Sender => "sender",
            SenderSource::ReplyTo => "reply-to",
            SenderSource::ReturnPath => "return-path",
        }
    }
}

/// Where the text of an envelope came from when the mail has no text of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSource {
    /// The body was empty: the subject is the text.
    Subject,
    /// No body and no subject: a placeholder naming the attachments, or saying the mail is empty.
    Placeholder,
}

impl TextSource {
    /// The value of the envelope's `email.text_source` metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            TextSource::Subject => "subject",
            TextSource::Placeholder => "placeholder",
        }
    }
}

/// The text of a mail with no body, no subject and no attachments.
pub const EMPTY_MAIL_TEXT: &str = "(empty message: no subject, no text)";

/// One message, read and decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedMail {
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To` ids.
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest first.
    pub references: Vec<String>,
    /// The author: `From`, else `Sender`, `Reply-To` or `Return-Path` (see `from_source`). The
    /// address is empty when none of them holds one (a null sender `<>`, as bounces have); the
    /// name is `From`'s display name where it has one.
    pub from: Mailbox,
    /// Which header field `from.address` came from; `None` when it is empty.
    pub from_source: Option<SenderSource>,
    /// `To` recipients (groups flattened).
    pub to: Vec<Mailbox>,
    /// `Cc` recipients.
    pub cc: Vec<Mailbox>,
    /// Addresses from `Delivered-To` and `X-Original-To`: the mailbox the message really reached,
    /// which is the only trace of a Bcc or a forwarded plus-address.
    pub delivered_to: Vec<String>,
    /// `Reply-To`, where the author wants answers to go.
    pub reply_to: Vec<Mailbox>,
    /// Subject, encoded-words decoded.
    pub subject: Option<String>,
    /// `Date`, when present and valid.
    pub date: Option<DateTime<Utc>>,
    /// The whole plain-text body: the `text/plain` part, or the HTML made readable when the
    /// message has only HTML; then the forwarded messages it carries as `message/rfc822` parts,
    /// each as a `---------- Forwarded message ----------` block with its From, Date, Subject
    /// and text.
    pub text: String,
    /// The original HTML body, when there is one within the text limit.
    pub html: Option<String>,
    /// What the author wrote this time: `text` without quoted replies and signature (the whole
    /// `text` when nothing else would be left), then the forwarded messages, which are what the
    /// author sends rather than a quote.
    pub new_text: String,
    /// What was taken out of `text` to get `new_text` (quoted replies, signature).
    pub quoted: Option<String>,
    /// Whether `text`, `new_text` or `quoted` was cut at the text limit.
    pub text_truncated: bool,
    /// Whether an HTML body was left out for being over the text limit.
    pub html_omitted: bool,
    /// Attachments and inline parts, at most [`ParseLimits::max_attachments`].
    pub attachments: Vec<Attachment>,
    /// Attachments beyond [`ParseLimits::max_attachments`], counted but not listed.
    pub attachments_omitted: usize,
    /// The machine-readable part of a delivery or read report (`multipart/report`).
    pub report: Option<DeliveryReport>,
    /// Top-level header fields as `(name, raw value)` in message order, values unfolded but not
    /// decoded; kept for classification and audit.
    pub headers: Vec<(String, String)>,
    /// How many forwarded messages (`message/rfc822` parts) were rendered into the text.
    pub forwarded: usize,
    /// SHA-256 of the raw bytes, lower-case hex.
    pub raw_sha256: String,
    /// SHA-256 of what identifies the content (see [`ParsedMail::dedupe_id`]), lower-case hex.
    pub content_sha256: String,
}

/// Header fields that identify a mail's content: the same in every copy of one mail, whichever
/// mailbox or folder it was fetched from. Trace fields (`Received`, `Return-Path`,
/// `Delivered-To`, `DKIM-Signature`, `Authentication-Results`, spam scores) differ per copy and
/// are left out.
const CONTENT_HEADERS: [&str; 9] =
    ["from", "sender", "reply-to", "to", "cc", "subject", "date", "in-reply-to", "references"];

/// Between the Message-ID and the content digest in a dedupe id.
const DIGEST_TAG: &str = "#sha256:";

/// Hex digits of the content digest in a dedupe id that has a Message-ID (128 bits).
const DIGEST_HEX: usize = 32;

impl ParsedMail {
    /// The id that makes a re-delivered copy a duplicate and nothing else:
    /// `<Message-ID>#sha256:<128-bit content digest>`, or `sha256:<content digest>` without a
    /// `Message-ID`. The content digest covers the header fields that identify the mail (From,
    /// Sender, Reply-To, To, Cc, Subject, Date, In-Reply-To, References) and the decoded text,
    /// HTML, attachments and report, not the trace fields every copy gets on its way. So the same
    /// mail fetched twice, or from a second mailbox, is a duplicate; two different mails under
    /// one reused `Message-ID` (list software, broken clients) are two messages.
    pub fn dedupe_id(&self) -> String {
        match &self.message_id {
            Some(id) => format!("{}{DIGEST_TAG}{}", stable_id(id), &self.content_sha256[..DIGEST_HEX]),
            None => format!("sha256:{}", self.content_sha256),
        }
    }

    /// The author, or [`ParseError::NoFrom`] when the mail names no sender address at all.
    pub fn author(&self) -> Result<&Mailbox, ParseError> {
        if self.from.address.is_empty() { Err(ParseError::NoFrom) } else { Ok(&self.from) }
    }

    /// The text to route and, when it is not the mail's own, where it came from: the new text;
    /// for an empty body the subject; with neither, a placeholder naming the attachments, or
    /// [`EMPTY_MAIL_TEXT`].
    pub fn routable_text(&self) -> (String, Option<TextSource>) {
        if !self.new_text.trim().is_empty() {
            return (self.new_text.clone(), None);
        }
        if let Some(subject) = self.subject.as_deref().filter(|s| !s.trim().is_empty()) {
            return (subject.trim().to_string(), Some(TextSource::Subject));
        }
        if self.attachments.is_empty() {
            return (EMPTY_MAIL_TEXT.to_string(), Some(TextSource::Placeholder));
        }
        let names: Vec<&str> = self.attachments.iter().map(|a| a.filename.as_str()).collect();
        (format!("(no text; attached: {})", names.join(", ")), Some(TextSource::Placeholder))
    }

    /// The first value of a top-level header field, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of a top-level header field, matched case-insensitively.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every recipient address: `To`, `Cc` and `Delivered-To`/`X-Original-To`, in that order.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.to.iter().chain(&self.cc).map(|m| m.address.as_str()).chain(self.delivered_to.iter().map(String::as_str))
    }
}

/// Reads one raw message. Lenient with broken MIME (a best-effort result is better than losing a
/// customer's message); refuses only what cannot become a message: see [`ParseError`].
pub fn parse(raw: &[u8], limits: &ParseLimits) -> Result<ParsedMail, ParseError> {
    if raw.len() > limits.max_message_bytes {
        return Err(ParseError::TooLarge { size: raw.len(), limit: limits.max_message_bytes });
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let raw_sha256 = hex(&Sha256::digest(raw));
    let parts = mime::read(raw, limits)?;
    let content_sha256 = content_digest(&parts);
    let mut body = match parts.body {
        mime::Body::Plain(text) => quote::Split::from_text(text),
        mime::Body::Html(html) => html::split(&html),
    };
    if !parts.forwarded.is_empty() {
        let forwarded = parts.forwarded.join("\n\n");
        let append = |s: &str| if s.trim().is_empty() { forwarded.clone() } else { format!("{s}\n\n{forwarded}") };
        body.text = append(&body.text);
        body.new_text = append(&body.new_text);
    }
    let mut text_truncated = false;
    let mut cut = |s: String| {
        let (s, was_cut) = truncate(s, limits.max_text_bytes);
        text_truncated |= was_cut;
        s
    };
    let text = cut(body.text);
    let new_text = cut(body.new_text);
    let quoted = body.quoted.map(&mut cut);
    let (html, html_omitted) = match parts.html {
        Some(h) if h.len() > limits.max_text_bytes => (None, true),
        other => (other, false),
    };
    Ok(ParsedMail {
        message_id: parts.message_id,
        in_reply_to: parts.in_reply_to,
        references: parts.references,
        from: parts.from,
        from_source: parts.from_source,
        to: parts.to,
        cc: parts.cc,
        delivered_to: parts.delivered_to,
        reply_to: parts.reply_to,
        subject: parts.subject,
        date: parts.date,
        text,
        html,
        new_text,
        quoted,
        text_truncated,
        html_omitted,
        attachments: parts.attachments,
        attachments_omitted: parts.attachments_omitted,
        report: parts.report,
        headers: parts.headers,
        forwarded: parts.forwarded.len(),
        raw_sha256,
        content_sha256,
    })
}

/// SHA-256 over what identifies a mail's content, each piece length-prefixed so that no two
/// different contents hash alike: the [`CONTENT_HEADERS`] (whitespace normalised, so refolding
/// does not matter), the decoded body, the HTML, every attachment's type, name and content
/// digest, and the report. Decoded rather than raw, so a relay that re-encodes a part (8bit to
/// quoted-printable) or changes line ends does not make a copy look new.
fn content_digest(parts: &mime::MimeParts) -> String {
    let mut hash = Sha256::new();
    let mut put = |label: &str, value: &[u8]| {
        for piece in [label.as_bytes(), value] {
            hash.update((piece.len() as u64).to_be_bytes());
            hash.update(piece);
        }
    };
    for name in CONTENT_HEADERS {
        for (_, value) in parts.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            put(name, value.split_whitespace().collect::<Vec<_>>().join(" ").as_bytes());
        }
    }
    let (kind, body) = match &parts.body {
        mime::Body::Plain(text) => ("text", text),
        mime::Body::Html(html) => ("html-text", html),
    };
    put(kind, body.trim().replace("\r\n", "\n").as_bytes());
    if let Some(html) = &parts.html {
        put("html", html.trim().replace("\r\n", "\n").as_bytes());
    }
    for a in &parts.attachments {
        put("attachment", format!("{}\n{}\n{}", a.content_type, a.filename, a.sha256).as_bytes());
    }
    put("omitted", parts.attachments_omitted.to_string().as_bytes());
    if let Some(report) = &parts.report {
        put("report", format!("{report:?}").as_bytes());
    }
    hex(&hash.finalize())
}

/// The Message-ID inside a dedupe id (see [`ParsedMail::dedupe_id`]), to answer the mail with
/// `In-Reply-To`; `None` for a mail that had none (`sha256:…`). An id without a digest (stored
/// before digests were added) is returned as it is.
pub fn message_id_of(dedupe_id: &str) -> Option<&str> {
    if dedupe_id.starts_with("sha256:") && !dedupe_id.contains('@') {
        return None;
    }
    let id = match dedupe_id.rsplit_once(DIGEST_TAG) {
        Some((id, digest))
            if digest.len() == DIGEST_HEX
                && digest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            id
        }
        _ => dedupe_id,
    };
    (!id.is_empty()).then_some(id)
}

/// Longest message id used as is in a dedupe id or thread key; longer ones are hashed so they
/// stay within the envelope's field limits and still match across messages.
pub const MAX_ID_LEN: usize = 256;

/// `id` itself, or `sha256:<hex>` of it when it is longer than [`MAX_ID_LEN`].
pub(crate) fn stable_id(id: &str) -> String {
    if id.len() <= MAX_ID_LEN { id.to_string() } else { format!("sha256:{}", hex(&Sha256::digest(id.as_bytes()))) }
}

/// Cuts `s` to at most `limit` bytes including [`TRUNCATION_MARKER`], at a char boundary.
fn truncate(mut s: String, limit: usize) -> (String, bool) {
    if s.len() <= limit {
        return (s, false);
    }
    let mut end = limit.saturating_sub(TRUNCATION_MARKER.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    // A limit smaller than the marker itself still must hold, so the marker is cut too.
    let mut marker_end = limit.saturating_sub(s.len()).min(TRUNCATION_MARKER.len());
    while !TRUNCATION_MARKER.is_char_boundary(marker_end) {
        marker_end -= 1;
    }
    s.push_str(&TRUNCATION_MARKER[..marker_end]);
    (s, true)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_at_a_char_boundary_within_the_limit() {
        let long = "я".repeat(40); // 80 bytes
        let marker = TRUNCATION_MARKER.len();
        for (text, limit, expected, cut) in [
            ("short".to_string(), 100, "short".to_string(), false),
            (long.clone(), 80, long.clone(), false),
            (long.clone(), 40 + marker, format!("{}{TRUNCATION_MARKER}", "я".repeat(20)), true),
            (long.clone(), 41 + marker, format!("{}{TRUNCATION_MARKER}", "я".repeat(20)), true),
            (long.clone(), 0, String::new(), true),
            (long.clone(), 2, "\n[".to_string(), true),
        ] {
            let (out, was_cut) = truncate(text.clone(), limit);
            assert_eq!((out.as_str(), was_cut), (expected.as_str(), cut), "{text:?} at {limit}");
            assert!(out.len() <= limit, "{out:?} within {limit}");
        }
    }

    #[test]
    fn long_ids_are_hashed() {
        assert_eq!(stable_id("a@b"), "a@b");
        let long = "x".repeat(MAX_ID_LEN + 1);
        assert!(stable_id(&long).starts_with("sha256:"));
        assert_eq!(stable_id(&long), stable_id(&long));
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
    }
}
