//! The channel's errors.

/// Why a web-chat operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WebchatError {
    /// The bus is not connected yet.
    #[error("not connected to NATS yet")]
    NotReady,
    /// A NATS request failed.
    #[error("NATS: {0}")]
    Nats(String),
    /// A bus operation failed.
    #[error(transparent)]
    Bus(#[from] switchboard_bus::BusError),
    /// The router has not stored the conversation (yet).
    #[error("conversation {0} is not in the conversation bucket")]
    UnknownConversation(String),
}
