//! The SMS gateway's wire format and the pure translations to and from the contract. Only this
//! crate knows it; the bus and the daemon never see a gateway payload.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_adapter::{OutboundMessage, SendError};
use switchboard_core::{Customer, Envelope, ValidationError};

use crate::CHANNEL;

/// The longest reply we hand to the gateway: ten concatenated SMS segments.
pub const MAX_TEXT_CHARS: usize = 1600;

/// `metadata` key of an envelope holding the number the customer wrote to (for routing rules:
/// a support line per country or product).
pub const TO_NUMBER_KEY: &str = "sms.to";

/// What the gateway POSTs for each SMS it receives.
// No `deny_unknown_fields`: gateways add fields over time, and refusing them would make the
// gateway retry a message forever.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct InboundSms {
    /// The gateway's id of the SMS; the same id again is the same SMS.
    pub id: String,
    /// The sender's number, E.164 (`+4915112345678`).
    pub from: String,
    /// Our number it was sent to, if the gateway says.
    #[serde(default)]
    pub to: Option<String>,
    /// The text.
    pub text: String,
}

impl InboundSms {
    /// The envelope for this SMS; the error names the bad field for the gateway's `400`.
    pub fn into_envelope(self, received_at: DateTime<Utc>) -> Result<Envelope, ValidationError> {
        if !is_e164(&self.from) {
            return Err(ValidationError::new("from", "must be an E.164 number (+ and 8-15 digits)"));
        }
        let mut metadata = BTreeMap::new();
        if let Some(to) = self.to {
            metadata.insert(TO_NUMBER_KEY.to_string(), to);
        }
        Ok(Envelope {
            id: uuid::Uuid::now_v7(),
            channel: CHANNEL.into(),
            // De-duplication rests on this: `Inbound::publish` stores it with
            // `Nats-Msg-Id: sms:<gateway id>`, so a gateway retry is stored once.
            provider_message_id: self.id,
            received_at,
            customer: Customer {
                id: self.from.clone(),
                name: None,
                email: None,
                phone: Some(self.from.clone()),
                language: None,
            },
            // SMS has no threads: one conversation per phone number, reopened by the router.
            thread_key: self.from,
            text: self.text,
            subject: None,
            html: None,
            attachments: vec![],
            metadata,
            raw_ref: None,
        })
    }
}

/// What we POST to `<gateway_url>/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundSms {
    /// Our outbound message id (also the `Idempotency-Key` header).
    pub reference: String,
    /// The customer's number.
    pub to: String,
    /// The text.
    pub text: String,
}

impl OutboundSms {
    /// The gateway request for `message`; a message no gateway could send is a permanent error.
    pub fn from_message(message: &OutboundMessage) -> Result<Self, SendError> {
        let to = &message.to.customer_id;
        if !is_e164(to) {
            return Err(SendError::permanent(format!("customer id {to:?} is not a phone number")));
        }
        let chars = message.text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(SendError::permanent(format!("text of {chars} characters is over {MAX_TEXT_CHARS}")));
        }
        Ok(Self { reference: message.id.to_string(), to: to.clone(), text: message.text.clone() })
    }
}

/// The gateway's answer when it took a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The gateway's id of the SMS it will send.
    pub id: String,
}

/// What a non-2xx answer of the gateway means for the runtime: try again, or give up.
pub fn classify_status(status: u16) -> SendError {
    let reason = format!("HTTP {status} from the SMS gateway");
    // 408 and 429 say "later"; other 4xx say this request is wrong and will stay wrong.
    if status >= 500 || status == 408 || status == 429 {
        SendError::retryable(reason)
    } else {
        SendError::permanent(reason)
    }
}

/// `+` and 8 to 15 digits.
pub fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|digits| (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::Contract;

    fn sms(from: &str) -> InboundSms {
        InboundSms { id: "gw-1".into(), from: from.into(), to: Some("+4930123456".into()), text: "hello".into() }
    }

    #[test]
    fn an_sms_becomes_a_valid_envelope_keyed_by_the_gateway_id() {
        let envelope = sms("+4915112345678").into_envelope(Utc::now()).unwrap();
        envelope.validate().unwrap();
        assert_eq!(envelope.channel, "sms");
        assert_eq!(envelope.provider_message_id, "gw-1");
        assert_eq!(envelope.customer.id, "+4915112345678");
        assert_eq!(envelope.customer.phone.as_deref(), Some("+4915112345678"));
        assert_eq!(envelope.thread_key, "+4915112345678");
        assert_eq!(envelope.metadata.get(TO_NUMBER_KEY).map(String::as_str), Some("+4930123456"));
    }

    #[test]
    fn a_sender_that_is_no_number_is_refused_naming_the_field() {
        for bad in ["4915112345678", "+49 151", "+1234567", "+1234567890123456", "alice"] {
            assert_eq!(sms(bad).into_envelope(Utc::now()).unwrap_err().field, "from", "{bad}");
        }
    }

    #[test]
    fn unknown_gateway_fields_are_ignored() {
        let parsed: InboundSms =
            serde_json::from_str(r#"{"id":"1","from":"+4915112345678","text":"hi","carrier":"x"}"#).unwrap();
        assert_eq!(parsed.to, None);
    }

    #[test]
    fn statuses_split_into_retry_and_give_up() {
        for status in [500, 502, 503, 408, 429] {
            assert!(classify_status(status).retryable, "{status}");
        }
        for status in [400, 401, 403, 404, 410, 422] {
            assert!(!classify_status(status).retryable, "{status}");
        }
        assert_eq!(classify_status(503).reason, "HTTP 503 from the SMS gateway");
    }

    #[test]
    fn replies_the_gateway_cannot_send_are_permanent() {
        let mut message = switchboard_adapter_message("+4915112345678", "fine");
        let ok = OutboundSms::from_message(&message).unwrap();
        assert_eq!((ok.to.as_str(), ok.text.as_str()), ("+4915112345678", "fine"));
        assert_eq!(ok.reference, message.id.to_string());

        message.text = "x".repeat(MAX_TEXT_CHARS + 1);
        assert!(!OutboundSms::from_message(&message).unwrap_err().retryable);
        // Characters, not bytes: 1,600 Cyrillic letters still fit.
        message.text = "ж".repeat(MAX_TEXT_CHARS);
        assert!(OutboundSms::from_message(&message).is_ok());

        let wrong = switchboard_adapter_message("bob", "hi");
        assert!(!OutboundSms::from_message(&wrong).unwrap_err().retryable);
    }

    fn switchboard_adapter_message(to: &str, text: &str) -> OutboundMessage {
        use switchboard_core::OutboundKind;
        use switchboard_core::outbound::ChannelAddress;
        OutboundMessage {
            id: uuid::Uuid::now_v7(),
            conversation_id: uuid::Uuid::now_v7(),
            channel: CHANNEL.into(),
            to: ChannelAddress { customer_id: to.into(), thread_key: to.into() },
            text: text.into(),
            subject: None,
            attachments: vec![],
            reply_to: None,
            kind: OutboundKind::AgentReply,
            agent_id: Some("alice".into()),
            created_at: Utc::now(),
            metadata: Default::default(),
        }
    }
}
