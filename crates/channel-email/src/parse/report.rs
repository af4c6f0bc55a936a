//! `multipart/report` (RFC 6522): delivery status notifications (RFC 3464) and read reports.

use std::panic::catch_unwind;

use mail_parser::{MessageParser, MessagePart};

use super::part::{clean_id, part_bytes};

/// The machine-readable half of a report: who it is about and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryReport {
    /// `report-type` of the `multipart/report` (`delivery-status`, `disposition-notification`);
    /// empty when a status part came without one.
    pub report_type: String,
    /// The MTA that wrote the report (`Reporting-MTA`, type prefix removed).
    pub reporting_mta: Option<String>,
    /// One entry per recipient the report is about.
    pub recipients: Vec<ReportRecipient>,
    /// `Message-ID` of the message the report is about, from its returned copy or headers.
    pub original_message_id: Option<String>,
}

/// The per-recipient fields of a delivery status notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportRecipient {
    /// `Final-Recipient` (else `Original-Recipient`), type prefix removed.
    pub recipient: Option<String>,
    /// `Action`: `failed`, `delayed`, `delivered`, `relayed` or `expanded`.
    pub action: Option<String>,
    /// `Status`: the enhanced status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// `Diagnostic-Code`, type prefix removed: the remote server's own words.
    pub diagnostic: Option<String>,
}

/// Collects report parts while the attachments are read, so they do not become attachments.
pub(super) struct Builder {
    report_type: Option<String>,
    status: Option<String>,
    original_message_id: Option<String>,
}

impl Builder {
    /// `report_type` is `Some` when the message is a `multipart/report`.
    pub(super) fn new(report_type: Option<String>) -> Self {
        Self { report_type, status: None, original_message_id: None }
    }

    /// Takes `part` when it belongs to a report; `false` leaves it to be an attachment.
    pub(super) fn take(&mut self, content_type: &str, part: &MessagePart<'_>, raw: &[u8]) -> bool {
        match content_type {
            "message/delivery-status"
            | "message/global-delivery-status"
            | "message/disposition-notification"
            | "message/global-disposition-notification" => {
                if self.status.is_none() {
                    self.status = Some(String::from_utf8_lossy(part_bytes(part, raw)).into_owned());
                }
                true
            }
            "text/rfc822-headers" | "message/rfc822-headers" | "message/global-headers" => {
                self.original(message_id_in_headers(part_bytes(part, raw)));
                true
            }
            // A returned message is the report's evidence; elsewhere it is a forwarded email the
            // customer wants us to see.
            "message/rfc822" | "message/global" if self.report_type.is_some() => {
                let id = match part.message() {
                    Some(m) => m.message_id().and_then(clean_id),
                    None => message_id_in_headers(part_bytes(part, raw)),
                };
                self.original(id);
                true
            }
            _ => false,
        }
    }

    fn original(&mut self, id: Option<String>) {
        if self.original_message_id.is_none() {
            self.original_message_id = id;
        }
    }

    pub(super) fn finish(self) -> Option<DeliveryReport> {
        if self.report_type.is_none() && self.status.is_none() {
            return None;
        }
        let (reporting_mta, recipients) = self.status.as_deref().map(parse_status).unwrap_or_default();
        Some(DeliveryReport {
            report_type: self.report_type.unwrap_or_default(),
            reporting_mta,
            recipients,
            original_message_id: self.original_message_id,
        })
    }
}

/// The `Message-ID` in a block of header fields (a returned message or its headers).
pub(crate) fn message_id_in_headers(bytes: &[u8]) -> Option<String> {
    let message = catch_unwind(|| MessageParser::default().parse_headers(bytes)).ok().flatten()?;
    message.parts.first()?;
    message.message_id().and_then(clean_id)
}

/// Reads the field groups of a status part: the first describes the message, each next one a
/// recipient. Returns the reporting MTA and the recipients.
fn parse_status(text: &str) -> (Option<String>, Vec<ReportRecipient>) {
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in text.lines() {
        let Some(group) = groups.last_mut() else { break };
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(Vec::new());
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let field = |group: &[(String, String)], name: &str| {
        group.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    };
    let mut groups = groups.into_iter().filter(|g| !g.is_empty());
    let reporting_mta = groups.next().and_then(|g| field(&g, "reporting-mta")).map(|v| without_type(&v));
    let recipients = groups
        .map(|g| ReportRecipient {
            recipient: field(&g, "final-recipient")
                .or_else(|| field(&g, "original-recipient"))
                .map(|v| without_type(&v)),
            action: field(&g, "action").map(|v| v.to_ascii_lowercase()),
            status: field(&g, "status").map(|v| v.split_whitespace().next().unwrap_or_default().to_string()),
            diagnostic: field(&g, "diagnostic-code").map(|v| without_type(&v)),
        })
        .filter(|r| r.recipient.is_some() || r.status.is_some())
        .collect();
    (reporting_mta, recipients)
}

/// `rfc822; a@b` → `a@b`, `smtp; 550 ...` → `550 ...`: the address or diagnostic type is noise.
fn without_type(value: &str) -> String {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.trim().contains(' ') => rest.trim().to_string(),
        _ => value.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_groups() {
        let text = "Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Mon, 3 Mar 2025 10:00:00 +0000\r\n\r\n\
                    Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1 (bad mailbox)\r\n\
                    Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>:\r\n    Recipient address rejected\r\n";
        let (mta, recipients) = parse_status(text);
        assert_eq!(mta.as_deref(), Some("mx.example.net"));
        assert_eq!(
            recipients,
            vec![ReportRecipient {
                recipient: Some("nobody@example.org".into()),
                action: Some("failed".into()),
                status: Some("5.1.1".into()),
                diagnostic: Some("550 5.1.1 <nobody@example.org>: Recipient address rejected".into()),
            }]
        );
        assert_eq!(parse_status("garbage\n\n\n:::\n"), (None, vec![]));
    }
}
