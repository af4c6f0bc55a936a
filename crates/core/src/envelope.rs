//! `envelope/1`: one inbound customer message, normalised from any channel.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validate::{max_len, non_empty, token};
use crate::{Contract, ValidationError};

/// Largest text body an envelope may carry (bytes); bigger bodies are an adapter's error to report.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// Largest number of metadata entries.
pub const MAX_METADATA_ENTRIES: usize = 64;

/// One inbound customer message, as every adapter publishes it on `sb.in.<channel>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "envelope/1")]
pub struct Envelope {
    /// Switchboard's id for this message (UUIDv7, time-ordered).
    pub id: Uuid,
    /// Channel name, also the subject token: `email`, `telegram`, `webchat`, `webhook`, ...
    #[schemars(regex(pattern = "^[a-z0-9_-]{1,64}$"))]
    pub channel: String,
    /// The provider's own id of the message (not blank, at most 512 bytes); with the channel it
    /// is the de-duplication id.
    #[schemars(regex(pattern = r"\S"), length(max = 512))]
    pub provider_message_id: String,
    /// When the adapter received the message.
    pub received_at: DateTime<Utc>,
    /// Who wrote, as the channel knows them.
    pub customer: Customer,
    /// Channel-scoped thread key: an email thread, a Telegram chat, a web-chat session (not
    /// blank, at most 512 bytes).
    #[schemars(regex(pattern = r"\S"), length(max = 512))]
    pub thread_key: String,
    /// The new text of the message, as plain text (at most 262,144 bytes; not blank unless
    /// there are attachments).
    #[schemars(length(max = 262144))]
    pub text: String,
    /// Subject line, where the channel has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Original HTML body, where the channel has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// Attachments, stored in the object store; the envelope carries references only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentRef>,
    /// Free-form routing metadata from the channel or the customer's system (at most 64 entries).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub metadata: BTreeMap<String, String>,
    /// The provider's raw reference for audit (e.g. IMAP mailbox and UID, Telegram update id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_ref: Option<String>,
}

/// A customer as one channel knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    /// Channel-scoped customer id (an email address, a Telegram user id, a webhook source's id;
    /// not blank, at most 256 bytes).
    #[schemars(regex(pattern = r"\S"), length(max = 256))]
    pub id: String,
    /// Display name, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address, where known (with an `@`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "@"))]
    pub email: Option<String>,
    /// Phone number, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Preferred language (BCP 47, e.g. `ru`, `en-GB`), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// A reference to an attachment in the `sb_attachments` object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRef {
    /// Object name in the store; empty when the attachment was not stored (see `skipped`).
    pub object: String,
    /// Original file name.
    pub filename: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes.
    #[serde(deserialize_with = "crate::validate::whole::u64")]
    pub size: u64,
    /// Why the bytes were not stored (e.g. over the size limit); the message still flows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl Customer {
    /// The name to show people, when the channel gave one that is not blank.
    pub fn display_name(&self) -> Option<String> {
        self.name.clone().filter(|n| !n.trim().is_empty())
    }

    fn validate(&self) -> Result<(), ValidationError> {
        non_empty("id", &self.id)?;
        max_len("id", &self.id, 256)?;
        if let Some(email) = &self.email
            && !email.contains('@')
        {
            return Err(ValidationError::new("email", "must be an email address"));
        }
        Ok(())
    }
}

impl Contract for Envelope {
    const SCHEMA: &'static str = "envelope/1";

    fn validate(&self) -> Result<(), ValidationError> {
        if self.id.get_version_num() != 7 {
            return Err(ValidationError::new("id", "must be a UUIDv7"));
        }
        token("channel", &self.channel)?;
        non_empty("provider_message_id", &self.provider_message_id)?;
        max_len("provider_message_id", &self.provider_message_id, 512)?;
        self.customer.validate().map_err(|e| e.within("customer"))?;
        non_empty("thread_key", &self.thread_key)?;
        max_len("thread_key", &self.thread_key, 512)?;
        max_len("text", &self.text, MAX_TEXT_BYTES)?;
        if self.text.trim().is_empty() && self.attachments.is_empty() {
            return Err(ValidationError::new("text", "must not be empty when there are no attachments"));
        }
        if self.metadata.len() > MAX_METADATA_ENTRIES {
            return Err(ValidationError::new("metadata", format!("must have at most {MAX_METADATA_ENTRIES} entries")));
        }
        for (i, a) in self.attachments.iter().enumerate() {
            non_empty("filename", &a.filename).map_err(|e| e.within(&format!("attachments[{i}]")))?;
        }
        Ok(())
    }
}
