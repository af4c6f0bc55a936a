//! `mime`: bytes as a raw RFC 5322 message through the email channel's parse path.

use switchboard_channel_email::parse::{
    ParseError, ParseLimits, base_subject, classify, parse, parse_agent_command, reply_subject, reply_token,
    split_quoted, survey_number, thread_root, token_from_address, token_from_subject,
};
use switchboard_channel_email::token::{TokenKey, our_message_id, token_kind};

/// Small limits, so that short inputs reach the truncation and omission paths too.
const LIMITS: ParseLimits = ParseLimits {
    max_message_bytes: 12 * 1024,
    max_attachment_bytes: 2 * 1024,
    max_attachments: 3,
    max_text_bytes: 2 * 1024,
};

const DOMAIN: &str = "example.com";

/// Parses `data` as a mail and runs everything the channel does with a parsed mail (classify,
/// reply tokens, threading, agent commands, surveys); the parsed mail stays within the limits.
pub fn run(data: &[u8]) {
    let ours = ["support@example.com".to_string(), "help".to_string()];
    let key = TokenKey::new(b"fuzz-token-key-0123456789").unwrap_or_else(|e| panic!("{e}"));
    match parse(data, &LIMITS) {
        Ok(mail) => {
            for (name, text) in
                [("text", Some(&mail.text)), ("new_text", Some(&mail.new_text)), ("quoted", mail.quoted.as_ref())]
            {
                let len = text.map_or(0, String::len);
                assert!(len <= LIMITS.max_text_bytes, "{name} is {len} bytes, over the limit");
            }
            assert!(mail.html.as_ref().is_none_or(|h| h.len() <= LIMITS.max_text_bytes), "html over the limit");
            assert!(mail.attachments.len() <= LIMITS.max_attachments, "too many attachments kept");
            for a in &mail.attachments {
                assert!(a.bytes.len() <= LIMITS.max_attachment_bytes, "attachment bytes over the limit");
                assert!(a.skipped.is_none() || a.bytes.is_empty(), "a skipped attachment kept its bytes");
            }
            let _ = classify(&mail, &ours);
            let _ = thread_root(&mail);
            let _ = mail.dedupe_id();
            if let Some(token) = reply_token(&mail, &ours) {
                let _ = token_kind(&token.token);
                let _ = key.verify_agent_token("agent-1", &token.token);
            }
            for id in mail.message_id.iter().chain(&mail.in_reply_to).chain(&mail.references) {
                let _ = our_message_id(id, DOMAIN);
            }
            for address in mail.recipients() {
                let _ = token_from_address(address, &ours);
            }
            texts(&mail.new_text, &key);
            if let Some(subject) = &mail.subject {
                texts(subject, &key);
            }
        }
        Err(ParseError::TooLarge { size, limit }) => {
            assert!(size == data.len() && size > limit, "TooLarge for {} bytes", data.len());
        }
        Err(_) => assert!(data.len() <= LIMITS.max_message_bytes),
    }
    // The text helpers see header and body text that any sender controls.
    texts(&String::from_utf8_lossy(data), &key);
}

fn texts(text: &str, key: &TokenKey) {
    let _ = split_quoted(text);
    let _ = parse_agent_command(text);
    let _ = survey_number(text);
    let _ = token_from_subject(text);
    let _ = base_subject(text);
    let _ = reply_subject(text);
    let _ = token_kind(text);
    let _ = key.verify_agent_token("agent-1", text);
    let _ = our_message_id(text, DOMAIN);
}
