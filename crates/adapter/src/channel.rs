//! The trait a channel implements, and its error types.

use std::future::Future;

use switchboard_core::OutboundMessage;

use crate::Inbound;

/// A channel adapter: translates between one provider and the bus contract.
pub trait Channel: Send + Sync + 'static {
    /// The channel's name: the subject token (`sb.in.<name>`, `sb.out.<name>`), e.g. `webhook`.
    fn name(&self) -> &str;

    /// Pull-style inbound (IMAP, long polling): runs until `inbound.shutdown()` fires, publishing
    /// envelopes with [`Inbound::publish`]. Push-style channels leave the default and use
    /// [`Channel::routes`].
    fn run_inbound(&self, inbound: Inbound) -> impl Future<Output = Result<(), AdapterError>> + Send {
        async move {
            inbound.shutdown().cancelled().await;
            Ok(())
        }
    }

    /// Whether the inbound side must run in one process at a time: a poller of one provider
    /// account (an IMAP mailbox, a bot's `getUpdates`) that two processes would fight over. The
    /// runtime then runs it only while holding the lease `channel.<name>`; another process of
    /// the same channel stands by and takes over when the holder stops renewing it. Push-style
    /// inbound and outbound sending scale out in any number of processes regardless.
    fn exclusive_inbound(&self) -> bool {
        false
    }

    /// Push-style inbound: HTTP routes served on the daemon's one listener.
    fn routes(&self, inbound: Inbound) -> Option<axum::Router> {
        let _ = inbound;
        None
    }

    /// Sends one message to a customer. Return only once the provider accepted it; the runtime
    /// acks the bus message on `Ok` and retries or dead-letters on `Err`.
    fn send(&self, message: &OutboundMessage) -> impl Future<Output = Result<SendReceipt, SendError>> + Send;
}

/// What the provider said when it accepted a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReceipt {
    /// The provider's id for the sent message, when it gives one.
    pub provider_message_id: Option<String>,
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SendError {
    /// True for timeouts, 5xx, rate limits; false for rejections that will not change.
    pub retryable: bool,
    /// What happened, e.g. `HTTP 503 from https://...`; recorded in the dead letter.
    pub reason: String,
    /// The provider asked to wait this long before trying again (HTTP 429 `Retry-After`,
    /// Telegram's `retry_after`): the runtime waits it out and never dead-letters a message
    /// only because the provider keeps asking to wait.
    pub retry_after: Option<std::time::Duration>,
}

impl SendError {
    /// A failure worth retrying.
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self { retryable: true, reason: reason.into(), retry_after: None }
    }

    /// The provider asked to wait `after` before the next try (flood control, `Retry-After`).
    pub fn wait(reason: impl Into<String>, after: std::time::Duration) -> Self {
        Self { retryable: true, reason: reason.into(), retry_after: Some(after) }
    }

    /// A failure that will not go away.
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self { retryable: false, reason: reason.into(), retry_after: None }
    }
}

impl From<SendError> for switchboard_bus::HandlerError {
    /// A wait the provider asked for stays a wait (never a dead letter), a retryable failure is
    /// retried, the rest is dead-lettered.
    fn from(e: SendError) -> Self {
        match (e.retry_after, e.retryable) {
            (Some(after), _) => switchboard_bus::HandlerError::Wait { after, reason: e.reason },
            (None, true) => switchboard_bus::HandlerError::Retry(e.reason),
            (None, false) => switchboard_bus::HandlerError::Reject(e.reason),
        }
    }
}

/// Why a channel's inbound side stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// An I/O error talking to the provider.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A bus error.
    #[error(transparent)]
    Bus(#[from] switchboard_bus::BusError),
    /// Anything else the channel reports.
    #[error("{0}")]
    Other(String),
}
