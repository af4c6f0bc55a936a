//! Which messages are customers writing, and which are machines talking.
//!
//! Three outcomes besides [`Classification::Customer`], and what the channel does with each:
//!
//! - [`Classification::Bounce`]: a delivery failure of a message we sent; record it on the
//!   conversation of the original message (by `original_message_id`), never answer.
//! - [`Classification::AutoReply`]: an automatic answer from a real person's mailbox
//!   (out-of-office, vacation, "we got your mail"); record it on the customer's conversation so
//!   an agent sees the customer is away, never answer it and never count it as a new message.
//! - [`Classification::Noise`]: mail no person wrote to us and nobody needs to see (mailing
//!   lists, newsletters, `noreply` senders, read receipts, our own mail looping back); drop it.
//!
//! The checks run in that order: a bounce from `MAILER-DAEMON` is a bounce, not noise, and an
//! out-of-office from a customer on a mailing list is still list traffic.

use super::report::message_id_in_headers;
use super::{ParsedMail, SenderSource};

/// What kind of mail a message is, and so what the channel does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classification {
    /// A person writing: route it.
    Customer,
    /// A delivery failure report: record it on the original message's conversation.
    Bounce(BounceInfo),
    /// An automatic answer from a customer's mailbox: record it, never answer it.
    AutoReply(AutoReplyReason),
    /// Mail nobody needs to see: drop it.
    Noise(NoiseReason),
}

/// What a bounce says about the failed delivery; fields the bounce does not carry are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BounceInfo {
    /// The address that could not be reached.
    pub recipient: Option<String>,
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// `failed` or `delayed` (DSN `Action`), when the report says.
    pub action: Option<String>,
    /// The remote server's explanation, e.g. `550 5.1.1 User unknown`.
    pub diagnostic: Option<String>,
    /// `Message-ID` of the message that bounced, to find its conversation.
    pub original_message_id: Option<String>,
}

impl BounceInfo {
    /// Whether retrying is pointless: a `5.x.x` status or a `failed` action without a status.
    pub fn is_permanent(&self) -> bool {
        match (&self.status, &self.action) {
            (Some(status), _) => status.starts_with('5'),
            (None, Some(action)) => action == "failed",
            (None, None) => true,
        }
    }
}

/// Why a message counts as an automatic reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoReplyReason {
    /// `Auto-Submitted` with a value other than `no` (RFC 3834), the value given.
    AutoSubmitted(String),
    /// `X-Autoreply` or `X-Autorespond` is present.
    Autoresponder,
    /// `X-Auto-Response-Suppress` asks for no automatic replies (Exchange marks its own so).
    AutoResponseSuppress(String),
    /// The envelope sender is empty (`Return-Path: <>`), as RFC 3834 asks of automatic replies.
    NullReturnPath,
    /// The subject starts like an out-of-office reply (`Automatic reply:`, `Автоответ:`).
    Subject,
}

/// Why a message is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoiseReason {
    /// `From` is one of our own addresses: our mail came back, and answering it would loop.
    Loop,
    /// The sender is a system mailbox (`MAILER-DAEMON`, `postmaster`, `noreply`), the address given.
    SystemSender(String),
    /// `List-Id` or `List-Unsubscribe` is present: list or newsletter traffic.
    MailingList,
    /// `Precedence: bulk`, `list` or `junk`, the value given.
    Bulk(String),
    /// A read receipt (`report-type=disposition-notification`).
    ReadReceipt,
}

/// Classifies `mail`; `our_addresses` are the channel's own mailbox addresses (plus-addressed
/// forms of them count too).
pub fn classify(mail: &ParsedMail, our_addresses: &[String]) -> Classification {
    if let Some(bounce) = bounce(mail) {
        return Classification::Bounce(bounce);
    }
    if is_ours(&mail.from.address, our_addresses) {
        return Classification::Noise(NoiseReason::Loop);
    }
    if mail.report.as_ref().is_some_and(|r| r.report_type == "disposition-notification") {
        return Classification::Noise(NoiseReason::ReadReceipt);
    }
    if is_system_sender(&mail.from.address) {
        return Classification::Noise(NoiseReason::SystemSender(mail.from.address.clone()));
    }
    if mail.header("List-Id").is_some() || mail.header("List-Unsubscribe").is_some() {
        return Classification::Noise(NoiseReason::MailingList);
    }
    let auto = auto_reply(mail);
    let precedence = mail.header("Precedence").map(|p| p.trim().to_ascii_lowercase());
    match (auto, precedence) {
        // Some vacation responders mark their answers `Precedence: bulk`; the explicit
        // auto-reply header says more about what the message is.
        (Some(reason @ AutoReplyReason::AutoSubmitted(_)), _) => Classification::AutoReply(reason),
        (_, Some(p)) if matches!(p.as_str(), "bulk" | "list" | "junk") => Classification::Noise(NoiseReason::Bulk(p)),
        (Some(reason), _) => Classification::AutoReply(reason),
        (None, _) => Classification::Customer,
    }
}

fn auto_reply(mail: &ParsedMail) -> Option<AutoReplyReason> {
    if let Some(value) = mail.header("Auto-Submitted") {
        let kind = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !kind.is_empty() && kind != "no" {
            return Some(AutoReplyReason::AutoSubmitted(kind));
        }
    }
    if mail.header("X-Autoreply").is_some() || mail.header("X-Autorespond").is_some() {
        return Some(AutoReplyReason::Autoresponder);
    }
    if let Some(value) = mail.header("X-Auto-Response-Suppress") {
        let suppressed = value
            .split(',')
            .map(|v| v.trim().to_ascii_lowercase())
            .find(|v| matches!(v.as_str(), "all" | "oof" | "autoreply"));
        if let Some(v) = suppressed {
            return Some(AutoReplyReason::AutoResponseSuppress(v));
        }
    }
    if mail.header("Return-Path").is_some_and(|p| p.trim() == "<>") {
        return Some(AutoReplyReason::NullReturnPath);
    }
    let subject = mail.subject.as_deref().unwrap_or_default().to_lowercase();
    const OUT_OF_OFFICE: [&str; 7] = [
        "automatic reply:",
        "auto-reply:",
        "autoreply:",
        "out of office:",
        "out of office autoreply:",
        "автоответ:",
        "автоматический ответ:",
    ];
    OUT_OF_OFFICE.iter().any(|p| subject.starts_with(p)).then_some(AutoReplyReason::Subject)
}

fn bounce(mail: &ParsedMail) -> Option<BounceInfo> {
    if let Some(report) = &mail.report
        && (report.report_type == "delivery-status" || (report.report_type.is_empty() && !report.recipients.is_empty()))
    {
        let failed = report.recipients.iter().find(|r| r.action.as_deref() == Some("failed"));
        let first = failed.or(report.recipients.first());
        return Some(BounceInfo {
            recipient: first.and_then(|r| r.recipient.clone()),
            status: first.and_then(|r| r.status.clone()),
            action: first.and_then(|r| r.action.clone()),
            diagnostic: first.and_then(|r| r.diagnostic.clone()),
            original_message_id: report.original_message_id.clone(),
        });
    }
    if !from_mail_system(mail) {
        return None;
    }
    let subject = mail.subject.as_deref().unwrap_or_default().to_lowercase();
    const BOUNCE_SUBJECTS: [&str; 14] = [
        "undelivered mail returned to sender",
        "delivery status notification (failure)",
        "delivery status notification (delay)",
        "mail delivery failed",
        "returned mail:",
        "undeliverable:",
        "undeliverable mail",
        "delivery failure",
        "failure notice",
        "mail delivery failure",
        "could not be delivered",
        "unzustellbar",
        "non remis",
        "недоставленное сообщение",
    ];
    // What the mail systems' own texts begin with, for bounces with an unusual subject.
    const BOUNCE_TEXTS: [&str; 6] = [
        "this is the mail system at host",
        "this is the qmail-send program",
        "this message was created automatically by mail delivery software",
        "i'm afraid i wasn't able to deliver",
        "delivery to the following recipient",
        "could not be delivered to one or more recipients",
    ];
    let head: String = mail.text.chars().take(2000).collect::<String>().to_lowercase();
    if !BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s)) && !BOUNCE_TEXTS.iter().any(|t| head.contains(t)) {
        return None;
    }
    Some(classic_bounce(mail))
}

/// Whether the mail comes from a mail system rather than a person: a `MAILER-DAEMON` or
/// `postmaster` address or display name (`Mail Delivery System <MAILER-DAEMON@…>`,
/// `MAILER-DAEMON <>`), or the null sender `From: <>` that RFC 5321 gives delivery reports.
fn from_mail_system(mail: &ParsedMail) -> bool {
    let daemon = |s: &str| {
        let s = s.to_ascii_lowercase();
        ["mailer-daemon", "mailer daemon", "mail delivery", "postmaster", "mail administrator"]
            .iter()
            .any(|d| s.contains(d))
    };
    let local = mail.from_source.filter(|s| *s == SenderSource::From).and_then(|_| local_part(&mail.from.address));
    if local.is_some_and(daemon) {
        return true;
    }
    // `From` is what counts here, not the fallback address taken for answering.
    let from_unusable = mail.from_source != Some(SenderSource::From);
    let null = mail.header("From").is_some_and(|f| f.trim().is_empty() || f.contains("<>"));
    let raw_from = mail.header("From").unwrap_or_default();
    (from_unusable && (null || daemon(raw_from))) || mail.from.name.as_deref().is_some_and(daemon)
}

/// What a plain-text bounce (qmail, Exim, old Postfix) gives away: the first address it names,
/// an enhanced status code, the SMTP reply line, and the returned message's `Message-ID`.
fn classic_bounce(mail: &ParsedMail) -> BounceInfo {
    let text = &mail.text;
    let diagnostic = text
        .lines()
        .map(str::trim)
        .find_map(|l| match l.split_once(" said: ") {
            Some((_, reply)) => Some(reply),
            None => is_smtp_reply(l).then_some(l),
        })
        .map(str::to_string);
    let status = text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '#')).find(|w| is_status_code(w));
    let address_in = |line: &str| {
        line.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | ',' | ';'))
            .map(|w| w.trim_end_matches([':', '.']))
            .find(|w| {
                w.contains('@')
                    && (mail.from.address.is_empty() || !w.eq_ignore_ascii_case(&mail.from.address))
                    && w.len() > 2
            })
            .map(str::to_string)
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let recipient_line = lines.iter().position(|l| address_in(l).is_some());
    let recipient = recipient_line.and_then(|i| address_in(lines[i]));
    // qmail and Exim put the reason on the line after `<address>:`.
    let diagnostic = diagnostic.or_else(|| {
        let i = recipient_line.filter(|&i| lines[i].ends_with(':'))?;
        lines[i + 1..].iter().find(|l| !l.is_empty()).map(|l| l.to_string())
    });
    let original_message_id = mail
        .attachments
        .iter()
        .filter(|a| a.content_type == "message/rfc822" || a.content_type == "text/rfc822-headers")
        .find_map(|a| message_id_in_headers(&a.bytes))
        .or_else(|| {
            text.lines().find_map(|l| {
                let (name, value) = l.trim().split_once(':')?;
                name.eq_ignore_ascii_case("message-id").then(|| super::part::clean_id(value)).flatten()
            })
        });
    BounceInfo {
        recipient,
        status: status.map(str::to_string),
        action: Some("failed".into()),
        diagnostic,
        original_message_id,
    }
}

/// A line that is an SMTP error reply: `550 5.1.1 ...`, `554-...`.
fn is_smtp_reply(line: &str) -> bool {
    matches!(line.as_bytes(), [b'4' | b'5', b, c, b' ' | b'-', ..] if b.is_ascii_digit() && c.is_ascii_digit())
}

/// `5.1.1`, `4.2.2`: class 2, 4 or 5, then two numbers of up to three digits.
fn is_status_code(word: &str) -> bool {
    let mut parts = word.split('.');
    let class_ok = parts.next().is_some_and(|c| matches!(c, "2" | "4" | "5"));
    let rest: Vec<&str> = parts.collect();
    class_ok
        && rest.len() == 2
        && rest.iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

fn local_part(address: &str) -> Option<&str> {
    address.rsplit_once('@').map(|(l, _)| l).or(Some(address)).filter(|l| !l.is_empty())
}

/// `support@example.com` is ours, and so is `support+abc@example.com`.
fn is_ours(address: &str, ours: &[String]) -> bool {
    let without_tag = |a: &str| -> String {
        match a.rsplit_once('@') {
            Some((local, domain)) => format!("{}@{domain}", local.split('+').next().unwrap_or(local)),
            None => a.to_string(),
        }
    };
    if address.trim().is_empty() {
        return false;
    }
    let address = without_tag(address.trim());
    ours.iter().any(|o| without_tag(o.trim()).eq_ignore_ascii_case(&address))
}

fn is_system_sender(address: &str) -> bool {
    let Some(local) = local_part(address) else { return false };
    let local = local.to_ascii_lowercase();
    let local = local.split('+').next().unwrap_or_default();
    matches!(local, "mailer-daemon" | "mailerdaemon" | "postmaster" | "bounce" | "bounces")
        || ["noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply", "bounce-", "bounces-"]
            .iter()
            .any(|p| local.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_status_codes() {
        for (word, ok) in
            [("5.1.1", true), ("4.4.7", true), ("5.7.26", true), ("1.2.3", false), ("5.1", false), ("5.1.x", false)]
        {
            assert_eq!(is_status_code(word), ok, "{word}");
        }
    }

    #[test]
    fn knows_our_addresses_and_system_senders() {
        let ours = vec!["support@example.com".to_string()];
        assert!(is_ours("Support@Example.com", &ours));
        assert!(is_ours("support+t0k@example.com", &ours));
        assert!(!is_ours("support@example.org", &ours));
        for (address, system) in [
            ("MAILER-DAEMON@mx.example.com", true),
            ("postmaster@example.com", true),
            ("no-reply@shop.example", true),
            ("noreply+abc@x.com", true),
            ("bounces-123@list.example", true),
            ("nora@example.com", false),
            ("ivan@example.com", false),
        ] {
            assert_eq!(is_system_sender(address), system, "{address}");
        }
    }
}
