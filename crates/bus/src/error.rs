//! The bus crate's one error type.

use switchboard_core::ValidationError;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The server could not be reached (and start-up was cancelled, or a single attempt failed).
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The URL tried.
        url: String,
        /// Why.
        source: Source,
    },
    /// A `[nats]` setting cannot work (a secret's variable unset, a file unreadable, ...).
    #[error(transparent)]
    Config(#[from] crate::BusConfigError),
    /// The server refused this client's credentials: retrying with the same ones cannot help.
    #[error("NATS at {url} refused this client ({reason}): {hint}")]
    Refused {
        /// The URL tried.
        url: String,
        /// What to check, naming the configuration keys in use.
        hint: &'static str,
        /// The server's or the client's reason (text, not a source: printed once in a chain).
        reason: String,
    },
    /// The TLS handshake failed: the server's certificate is not trusted, it refused ours, or it
    /// has no TLS; retrying cannot help.
    #[error(
        "TLS with NATS at {url} failed ({reason}): check that the server has TLS enabled, that \
         nats.tls_ca_file holds the CA that signed the server's certificate and that the URL's host \
         is in that certificate, and nats.tls_cert_file/tls_key_file if the server verifies clients"
    )]
    Tls {
        /// The URL tried.
        url: String,
        /// Why (text, not a source: printed once in a chain).
        reason: String,
    },
    /// The server is older than Switchboard supports.
    #[error(
        "NATS server {found} at {url} is too old: Switchboard needs {required} or newer \
         (JetStream KV and consumer features); upgrade the server (e.g. `make tools` installs a current one)"
    )]
    ServerTooOld {
        /// The URL connected to.
        url: String,
        /// The version the server reported.
        found: String,
        /// The minimum supported version.
        required: &'static str,
    },
    /// The server does not have JetStream enabled.
    #[error("NATS server at {url} has JetStream disabled; start it with `-js`")]
    NoJetStream {
        /// The URL connected to.
        url: String,
    },
    /// A stream, bucket or object store could not be created or updated.
    #[error("cannot set up {what}: {source}")]
    Setup {
        /// Which stream/bucket/store.
        what: String,
        /// Why.
        source: Source,
    },
    /// A publish was not acknowledged by JetStream.
    #[error("publish to {subject} was not acknowledged: {source}")]
    Publish {
        /// The subject.
        subject: String,
        /// Why.
        source: Source,
    },
    /// A consumer could not be created or read.
    #[error("consumer {durable} on {stream}: {source}")]
    Consumer {
        /// The stream.
        stream: String,
        /// The durable name.
        durable: String,
        /// Why.
        source: Source,
    },
    /// A value failed the contract's validation before publishing.
    #[error("refusing to publish an invalid {schema}: {source}")]
    Invalid {
        /// The schema id.
        schema: &'static str,
        /// Which field and why.
        source: ValidationError,
    },
    /// A key-value bucket could not be opened or read.
    #[error("key-value bucket {bucket}: {source}")]
    Kv {
        /// The bucket.
        bucket: String,
        /// Why.
        source: Source,
    },
    /// A stream's size or budget could not be read.
    #[error("cannot read the fill of {what}: {source}")]
    Storage {
        /// The JetStream stream.
        what: String,
        /// Why.
        source: Source,
    },
    /// The bus is not connected yet.
    #[error("the bus is not connected yet")]
    NotReady,
}

impl BusError {
    pub(crate) fn setup(what: impl Into<String>, source: impl Into<Source>) -> Self {
        BusError::Setup { what: what.into(), source: source.into() }
    }
}
