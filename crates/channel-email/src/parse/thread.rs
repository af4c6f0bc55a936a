//! Threading: reply tokens, thread roots and reply subjects.
//!
//! A reply token ties a customer's answer to its conversation even when the customer's client
//! drops `References`. It travels two ways, and both are read here:
//!
//! - in the reply address: `<local>+<token>@<domain>`, where `<local>` is one of our mailboxes'
//!   local parts (`support+Ab3_x-9@example.com`);
//! - in the subject, as a fallback for clients that answer the `From` rather than `Reply-To`:
//!   `[#<token>]` anywhere in the subject (`Re: Refund [#Ab3_x-9]`).
//!
//! A token is 1 to [`MAX_TOKEN_LEN`] characters of `A-Z a-z 0-9 _ -`, compared as written (case
//! matters). Tokens are opaque here: whoever makes them signs them, and checks them when read.

use super::{ParsedMail, stable_id};

/// Longest token: with `+` and a short local part it still fits the 64-byte limit on an
/// address's local part (RFC 5321).
pub const MAX_TOKEN_LEN: usize = 48;

/// Where a reply token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// A recipient address (`To`, `Cc`, `Delivered-To`, `X-Original-To`).
    Address,
    /// The subject's `[#token]` tag.
    Subject,
}

/// A reply token and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyToken {
    /// The token, as written.
    pub token: String,
    /// Where it was found.
    pub source: TokenSource,
}

/// The reply token of `mail`: from the first recipient address of ours that carries one, else
/// from the subject. `ours` holds our local parts (`support`) or whole addresses
/// (`support@example.com`, which also pins the domain).
pub fn reply_token(mail: &ParsedMail, ours: &[String]) -> Option<ReplyToken> {
    if let Some(token) = mail.recipients().find_map(|a| token_from_address(a, ours)) {
        return Some(ReplyToken { token: token.to_string(), source: TokenSource::Address });
    }
    let token = token_from_subject(mail.subject.as_deref()?)?;
    Some(ReplyToken { token: token.to_string(), source: TokenSource::Subject })
}

/// The token in `local+token@domain` when `local` (and `domain`, where given) is one of `ours`.
pub fn token_from_address<'a>(address: &'a str, ours: &[String]) -> Option<&'a str> {
    let (local, domain) = address.trim().trim_start_matches('<').trim_end_matches('>').rsplit_once('@')?;
    let (base, token) = local.split_once('+')?;
    let matches = ours.iter().any(|o| match o.trim().rsplit_once('@') {
        Some((our_local, our_domain)) => {
            our_local.eq_ignore_ascii_case(base) && our_domain.eq_ignore_ascii_case(domain)
        }
        None => o.trim().eq_ignore_ascii_case(base),
    });
    (matches && is_token(token)).then_some(token)
}

/// The first valid `[#token]` in a subject.
pub fn token_from_subject(subject: &str) -> Option<&str> {
    subject.match_indices("[#").find_map(|(at, _)| {
        let rest = &subject[at + 2..];
        let end = rest.find(']')?;
        let token = &rest[..end];
        is_token(token).then_some(token)
    })
}

/// Our address with a token: `support@example.com` + `abc` → `support+abc@example.com`; `None`
/// for an address without `@` or a token that is not valid.
pub fn reply_address(our_address: &str, token: &str) -> Option<String> {
    let (local, domain) = our_address.trim().rsplit_once('@')?;
    (is_token(token) && !local.is_empty() && !domain.is_empty()).then(|| format!("{local}+{token}@{domain}"))
}

/// The subject tag for a token, `[#abc]`; `None` for a token that is not valid.
pub fn subject_tag(token: &str) -> Option<String> {
    is_token(token).then(|| format!("[#{token}]"))
}

fn is_token(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The email thread key: the first id of `References` (the thread's first message), else
/// `In-Reply-To`, else the message's own id (or its dedupe id). Clients that send only
/// `In-Reply-To` give the parent, not the root; reply tokens cover that case.
pub fn thread_root(mail: &ParsedMail) -> String {
    match mail.references.first().or(mail.in_reply_to.first()).or(mail.message_id.as_ref()) {
        Some(id) => stable_id(id),
        None => mail.dedupe_id(),
    }
}

/// The subject of a reply: one `Re: ` in front of the subject without its reply prefixes, in any
/// language or case (`RE:`, `AW:`, `Re[2]:`, `Ответ:`). A forward prefix is kept: `Fwd: X` is
/// answered as `Re: Fwd: X`, as mail clients do.
pub fn reply_subject(subject: &str) -> String {
    let base = strip_prefixes(subject, REPLY_PREFIXES);
    if base.is_empty() { "Re:".to_string() } else { format!("Re: {base}") }
}

/// The subject without any reply or forward prefixes, for comparing subjects.
pub fn base_subject(subject: &str) -> &str {
    strip_prefixes(subject, ALL_PREFIXES)
}

const REPLY_PREFIXES: &[&str] = &["re", "aw", "antw", "antwort", "sv", "vs", "ref", "réf", "ответ", "отв", "odp"];
const ALL_PREFIXES: &[&str] = &[
    "re",
    "aw",
    "antw",
    "antwort",
    "sv",
    "vs",
    "ref",
    "réf",
    "ответ",
    "отв",
    "odp",
    "fwd",
    "fw",
    "wg",
    "tr",
    "pd",
    "пересл",
    "переслать",
];

fn strip_prefixes<'a>(subject: &'a str, prefixes: &[&str]) -> &'a str {
    let mut rest = subject.trim();
    while let Some(next) = strip_one(rest, prefixes) {
        rest = next.trim_start();
    }
    rest
}

/// `Re: x`, `RE : x`, `Re[2]: x`, `Re(2): x` → `x`.
fn strip_one<'a>(subject: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    let word_end = subject.find(|c: char| !c.is_alphabetic()).unwrap_or(subject.len());
    let word = &subject[..word_end];
    if !prefixes.iter().any(|p| word.to_lowercase() == *p) {
        return None;
    }
    let mut rest = subject[word_end..].trim_start();
    for (open, close) in [('[', ']'), ('(', ')')] {
        if let Some(inner) = rest.strip_prefix(open)
            && let Some(end) = inner.find(close)
            && inner[..end].bytes().all(|b| b.is_ascii_digit())
        {
            rest = &inner[end + close.len_utf8()..];
        }
    }
    rest.trim_start().strip_prefix(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_subjects_do_not_stack() {
        for (subject, expected) in [
            ("Help", "Re: Help"),
            ("Re: Help", "Re: Help"),
            ("RE: RE: Help", "Re: Help"),
            ("Re:Help", "Re: Help"),
            ("AW: Re: Help", "Re: Help"),
            ("Re[2]: Help", "Re: Help"),
            ("Re (3): Help", "Re: Help"),
            ("Re : Aide", "Re: Aide"),
            ("Ответ: Помощь", "Re: Помощь"),
            ("Fwd: Invoice", "Re: Fwd: Invoice"),
            ("RE: FW: Invoice", "Re: FW: Invoice"),
            ("Resolution needed", "Re: Resolution needed"),
            ("Re: [#abc] Refund", "Re: [#abc] Refund"),
            ("  ", "Re:"),
        ] {
            assert_eq!(reply_subject(subject), expected, "{subject:?}");
        }
        assert_eq!(base_subject("Re: Fwd: RE: Invoice"), "Invoice");
    }

    #[test]
    fn tokens_from_addresses_and_subjects() {
        let ours = vec!["support".to_string(), "help@example.com".to_string()];
        for (address, expected) in [
            ("support+Ab3_x-9@example.com", Some("Ab3_x-9")),
            ("<Support+abc@example.org>", Some("abc")),
            ("help+abc@example.com", Some("abc")),
            ("help+abc@example.org", None),
            ("sales+abc@example.com", None),
            ("support@example.com", None),
            ("support+@example.com", None),
            ("support+a.b@example.com", None),
            ("support+a+b@example.com", None),
        ] {
            assert_eq!(token_from_address(address, &ours), expected, "{address}");
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(token_from_address(&format!("support+{long}@x.com"), &ours), None);
        for (subject, expected) in [
            ("Re: Refund [#Ab3_x-9]", Some("Ab3_x-9")),
            ("[#bad token] [#good]", Some("good")),
            ("[#] [#", None),
            ("no tag", None),
        ] {
            assert_eq!(token_from_subject(subject), expected, "{subject}");
        }
        assert_eq!(reply_address("support@example.com", "abc").as_deref(), Some("support+abc@example.com"));
        assert_eq!(reply_address("support@example.com", "a b"), None);
        assert_eq!(subject_tag("abc").as_deref(), Some("[#abc]"));
    }
}
