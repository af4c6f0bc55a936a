//! The email channel's errors.

use crate::config::EmailConfigError;

/// What can go wrong in the email channel outside a single message.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    /// A setting is invalid or a secret cannot be read; names the key under `channels.email`.
    #[error("channels.email.{key}: {reason}")]
    Config {
        /// Dotted key under `channels.email`.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The IMAP server failed or refused (connection, login, a command).
    #[error("IMAP {mailbox}: {reason}")]
    Imap {
        /// The mailbox's configured name.
        mailbox: String,
        /// What happened.
        reason: String,
    },
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] switchboard_bus::BusError),
}

impl EmailError {
    /// A configuration error for `key`.
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> EmailError {
        EmailError::Config { key: key.into(), reason: reason.into() }
    }

    /// An IMAP error for `mailbox`.
    pub fn imap(mailbox: &str, reason: impl std::fmt::Display) -> EmailError {
        EmailError::Imap { mailbox: mailbox.into(), reason: reason.to_string() }
    }
}

impl From<EmailConfigError> for EmailError {
    fn from(e: EmailConfigError) -> Self {
        EmailError::Config { key: e.key, reason: e.reason }
    }
}
