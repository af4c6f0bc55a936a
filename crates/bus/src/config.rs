//! How to reach NATS and how to shape the contract's streams.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Backoff;

/// Bus settings, the `[nats]` section of the daemon's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// Server URL(s), comma-separated, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// Client name shown in the server's connection list.
    pub client_name: String,
    /// User name, with its password in `password_env` or `password_file`.
    pub user: Option<String>,
    /// Environment variable holding `user`'s password.
    pub password_env: Option<String>,
    /// File holding `user`'s password.
    pub password_file: Option<PathBuf>,
    /// Environment variable holding a token, for servers with `authorization { token }`.
    pub token_env: Option<String>,
    /// File holding a token.
    pub token_file: Option<PathBuf>,
    /// File holding a user's NKey seed (`SU...`), for servers listing the user's public key.
    pub nkey_seed_file: Option<PathBuf>,
    /// Path of a credentials file (`.creds`: a user JWT and its seed), for servers in operator mode.
    pub credentials_file: Option<PathBuf>,
    /// Encrypt the connection even if the server does not ask for it (`tls://` URLs do too).
    pub tls_required: bool,
    /// PEM file of the CA that signed the server's certificate (default: the system's roots).
    pub tls_ca_file: Option<PathBuf>,
    /// PEM file of this client's certificate, for servers that verify clients (with `tls_key_file`).
    pub tls_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub tls_key_file: Option<PathBuf>,
    /// Back-off between connection attempts at start-up.
    pub connect_backoff: Backoff,
    /// Replicas of every stream and bucket: 1 on a single server, 3 on a cluster.
    pub replicas: usize,
    /// How long JetStream remembers a `Nats-Msg-Id` for de-duplication, in seconds.
    pub duplicate_window_secs: u64,
    /// How long messages are kept in the contract's streams, in seconds (0 = forever).
    pub max_age_secs: u64,
    /// Byte budgets of streams by name (`sb_events`, any case), over the built-in defaults of
    /// [`crate::limits::default_max_bytes`].
    pub stream_max_bytes: BTreeMap<String, u64>,
    /// Byte budgets of key-value buckets by name (`sb_conversations`).
    pub bucket_max_bytes: BTreeMap<String, u64>,
    /// Byte budgets of object stores by name (`sb_attachments`).
    pub store_max_bytes: BTreeMap<String, u64>,
    /// How long files in `sb_attachments` (and their upload records) are kept, in seconds.
    pub attachments_max_age_secs: u64,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            client_name: "switchboard".into(),
            user: None,
            password_env: None,
            password_file: None,
            token_env: None,
            token_file: None,
            nkey_seed_file: None,
            credentials_file: None,
            tls_required: false,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            connect_backoff: Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(10) },
            replicas: 1,
            duplicate_window_secs: 24 * 3600,
            max_age_secs: 30 * 24 * 3600,
            stream_max_bytes: BTreeMap::new(),
            bucket_max_bytes: BTreeMap::new(),
            store_max_bytes: BTreeMap::new(),
            attachments_max_age_secs: 30 * 24 * 3600,
        }
    }
}

impl BusConfig {
    /// Settings for `url` with every other field at its default.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self { url: url.into(), ..Self::default() }
    }
}
