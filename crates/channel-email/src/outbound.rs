//! Replies to customers: threaded into the customer's mail client (`In-Reply-To`, `References`,
//! `Re:` subject), answerable (`Reply-To: support+<token>@...`), marked when automatic.

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use switchboard_adapter::SendError;
use switchboard_core::{AttachmentRef, OutboundKind, OutboundMessage, SurveyKind};

use crate::parse::{message_id_of, reply_address, reply_subject, subject_tag};
use crate::token::{TokenKey, message_id};

/// Who we are on outgoing mail.
#[derive(Clone)]
pub struct Sender {
    /// The support address, e.g. `support@example.com`.
    pub address: String,
    /// Its domain, for our Message-IDs.
    pub domain: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Signs reply tokens.
    pub key: TokenKey,
}

/// What the survey mail adds to the router's question (mail has no buttons): "Reply with a
/// number from 1 to 5." for CSAT, 0 to 10 for NPS, 1 to 7 for CES.
pub fn how_to_answer(kind: SurveyKind) -> String {
    let scale = kind.scale();
    format!("Reply with a number from {} to {}.", scale.start(), scale.end())
}

/// The survey an outbound message asks, if it is a survey question: `metadata.survey`, or, from
/// a router before NPS and CES, `metadata.csat = "request"`.
pub fn survey_of(msg: &OutboundMessage) -> Option<SurveyKind> {
    use switchboard_core::contract::metadata;
    match msg.metadata.get(metadata::SURVEY) {
        Some(kind) => SurveyKind::parse(kind),
        None => {
            msg.metadata.get(metadata::CSAT).is_some_and(|v| v == metadata::CSAT_REQUEST).then_some(SurveyKind::Csat)
        }
    }
}

/// `Auto-Submitted`, RFC 3834: what mail robots (and our own loop protection) look at.
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// An id as it goes into `In-Reply-To` and `References`: in angle brackets, or nothing when it is
/// not a Message-ID (a message without one is known by a hash of its content). The envelope's
/// id of a mail carries a content digest after the Message-ID, which is taken off here.
pub fn angle(id: &str) -> Option<String> {
    let id = message_id_of(id.trim())?.trim_start_matches('<').trim_end_matches('>');
    (id.contains('@') && !id.contains(char::is_whitespace) && !id.is_empty()).then(|| format!("<{id}>"))
}

impl Sender {
    /// Our mailbox, with the display name.
    pub fn from(&self) -> Result<Mailbox, SendError> {
        let address = self.address.parse().map_err(|e| SendError::permanent(format!("our address: {e}")))?;
        Ok(Mailbox::new(self.display_name.clone(), address))
    }

    /// The mail for one outbound message without files, and the thread token it carries.
    pub fn reply(&self, msg: &OutboundMessage) -> Result<(Message, String), SendError> {
        self.reply_with(msg, Vec::new())
    }

    /// The mail for one outbound message with its files (read from the store), and the thread
    /// token it carries.
    pub fn reply_with(
        &self,
        msg: &OutboundMessage,
        files: Vec<(&AttachmentRef, Vec<u8>)>,
    ) -> Result<(Message, String), SendError> {
        let to: Mailbox = msg
            .to
            .customer_id
            .parse()
            .map_err(|e| SendError::permanent(format!("customer address `{}`: {e}", msg.to.customer_id)))?;
        let token = self.key.thread_token(&msg.to.thread_key);
        let reply_to = reply_address(&self.address, &token)
            .ok_or_else(|| SendError::permanent("cannot build the reply address"))?
            .parse()
            .map_err(|e| SendError::permanent(format!("reply address: {e}")))?;
        let base = msg.subject.as_deref().map(reply_subject).unwrap_or_else(|| "Re: your message".into());
        let tag = subject_tag(&token).unwrap_or_default();
        let subject = if base.contains(&tag) { base } else { format!("{base} {tag}") };
        let mut builder = Message::builder()
            .from(self.from()?)
            .reply_to(Mailbox::new(self.display_name.clone(), reply_to))
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{}>", message_id(msg.id, msg.conversation_id, &token, &self.domain))));
        let parent = msg.reply_to.as_deref().and_then(angle);
        if let Some(parent) = &parent {
            builder = builder.in_reply_to(parent.clone());
        }
        // The root first, so the customer's next reply names it as its thread's first message.
        let mut references: Vec<String> = angle(&msg.to.thread_key).into_iter().collect();
        if let Some(parent) = parent.filter(|p| !references.contains(p)) {
            references.push(parent);
        }
        if !references.is_empty() {
            builder = builder.references(references.join(" "));
        }
        let auto = match msg.kind {
            OutboundKind::AgentReply => None,
            OutboundKind::AutoReply => Some("auto-replied"),
            OutboundKind::System => Some("auto-generated"),
        };
        if let Some(value) = auto {
            builder = builder.raw_header(HeaderValue::new(AUTO_SUBMITTED, value.into()));
        }
        let text = match survey_of(msg) {
            Some(kind) => format!("{}\n\n{}", msg.text, how_to_answer(kind)),
            None => msg.text.clone(),
        };
        let body = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text);
        let built = match files.is_empty() {
            true => builder.singlepart(body),
            false => {
                let mut mixed = MultiPart::mixed().singlepart(body);
                for (a, bytes) in files {
                    // A type the store recorded wrongly must not stop the mail: sent as bytes.
                    let kind = ContentType::parse(&a.content_type)
                        .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("a valid type"));
                    mixed = mixed.singlepart(Attachment::new(a.filename.clone()).body(bytes, kind));
                }
                builder.multipart(mixed)
            }
        };
        let message = built.map_err(|e| SendError::permanent(format!("cannot build the mail: {e}")))?;
        Ok((message, token))
    }
}
