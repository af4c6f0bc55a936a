//! Connecting to NATS: retry with back-off, version check, the shared handle.

use std::sync::{Arc, OnceLock};

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{BusConfig, BusError, check_server_version, version::MIN_SERVER_VERSION};

/// A connected bus: the NATS client and its JetStream context. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Bus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: Arc<BusConfig>,
}

impl Bus {
    /// Connects, retrying with back-off until the server answers or `shutdown` is cancelled, then
    /// checks that the server is new enough and has JetStream. A setting that cannot work, refused
    /// credentials and a failed TLS handshake end it at once: retrying them cannot help.
    pub async fn connect(config: &BusConfig, shutdown: &CancellationToken) -> Result<Bus, BusError> {
        if server_list(&config.url).is_ok_and(|servers| servers.iter().any(|s| s.password().is_some())) {
            warn!(url = %redacted_url(&config.url), "nats.url carries a password: prefer nats.user with nats.password_env or password_file");
        }
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            match Self::connect_once(config).await {
                Ok(bus) => return Ok(bus),
                Err(
                    err @ (BusError::ServerTooOld { .. }
                    | BusError::NoJetStream { .. }
                    | BusError::Config(_)
                    | BusError::Refused { .. }
                    | BusError::Tls { .. }),
                ) => return Err(err),
                Err(err) => {
                    let delay = config.connect_backoff.delay(attempt);
                    warn!(url = %redacted_url(&config.url), attempt, retry_in_ms = delay.as_millis() as u64, error = %err, "NATS not reachable yet");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(err),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One connection attempt, with the version and JetStream checks.
    pub async fn connect_once(config: &BusConfig) -> Result<Bus, BusError> {
        let url = redacted_url(&config.url);
        let credentials = config.credentials()?;
        let tls = config.tls()?;
        let options = async_nats::ConnectOptions::new()
            .name(&config.client_name)
            .connection_timeout(std::time::Duration::from_secs(5))
            // Reconnects after the first connection are async-nats' job; log them so ops see flaps.
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Connected => info!("NATS connection (re)established"),
                    async_nats::Event::Disconnected => warn!("NATS connection lost, reconnecting"),
                    other => tracing::debug!(event = %other, "NATS client event"),
                }
            });
        // async-nats ignores the user information of a URL: `credentials` carries it (without it,
        // `nats://user:pass@host` connected without credentials and was refused).
        let options = tls.apply(credentials.apply(options)?);
        let servers = server_list(&config.url).map_err(|e| BusError::Connect { url: url.clone(), source: e.into() })?;
        let client = options.connect(servers).await.map_err(|e| {
            use async_nats::ConnectErrorKind as Kind;
            match e.kind() {
                Kind::AuthorizationViolation | Kind::Authentication => {
                    BusError::Refused { url: url.clone(), hint: credentials.keys(), reason: e.to_string() }
                }
                Kind::Tls => BusError::Tls { url: url.clone(), reason: e.to_string() },
                _ if tls_failure(&e) => BusError::Tls { url: url.clone(), reason: e.to_string() },
                _ => BusError::Connect { url: url.clone(), source: e.into() },
            }
        })?;
        let server = client.server_info();
        if let Err(found) = check_server_version(&server.version) {
            return Err(BusError::ServerTooOld { url, found, required: MIN_SERVER_VERSION });
        }
        if !server.jetstream {
            return Err(BusError::NoJetStream { url });
        }
        info!(url = %url, server_version = %server.version, tls = tls.required, "connected to NATS");
        Ok(Bus { jetstream: jetstream::new(client.clone()), client, config: Arc::new(config.clone()) })
    }

    /// The NATS client, for core NATS work (requests, plain subscriptions).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The settings this bus was connected with.
    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// True while the client holds a live connection.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

/// A bus that may not be connected yet: components get one at construction so that the HTTP
/// listener can answer (`503`, not-ready) while NATS is still unreachable.
#[derive(Clone, Debug, Default)]
pub struct BusSlot(Arc<OnceLock<Bus>>);

impl BusSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// A slot already holding `bus`.
    pub fn ready(bus: Bus) -> Self {
        let slot = Self::new();
        slot.fill(bus);
        slot
    }

    /// Puts the connected bus in; later calls are ignored.
    pub fn fill(&self, bus: Bus) {
        let _ = self.0.set(bus);
    }

    /// The bus, once connected.
    pub fn get(&self) -> Result<&Bus, BusError> {
        self.0.get().ok_or(BusError::NotReady)
    }
}

/// The servers of `nats.url` (one or several comma-separated URLs), for a client to connect to.
pub fn server_list(url: &str) -> Result<Vec<async_nats::ServerAddr>, std::io::Error> {
    // async-nats parses a `&str` as one address; a cluster's servers are listed with commas.
    url.split(',').map(|u| u.trim().parse()).collect()
}

/// Whether a connection failed in TLS itself (an untrusted server certificate, the server
/// refusing ours, a server without TLS): async-nats reports handshake failures as I/O errors,
/// but they repeat on every attempt, unlike a refused or reset connection.
fn tls_failure(error: &async_nats::ConnectError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        // An `io::Error`'s `source` skips the error it wraps, so look inside explicitly.
        let inner = current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        if current.is::<async_nats::rustls::Error>() || inner.is_some_and(|i| i.is::<async_nats::rustls::Error>()) {
            return true;
        }
        cause = current.source();
    }
    false
}

/// `url` (one or several comma-separated server URLs) with any user name, password or token
/// replaced by `***`, for logs and errors: `nats://user:pass@host` carries credentials.
pub fn redacted_url(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let (scheme, rest) = server.split_once("://").map_or(("", server), |(s, r)| (s, r));
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let redacted = match rest[..authority_end].rfind('@') {
                Some(at) => format!("***{}", &rest[at..]),
                None => rest.to_string(),
            };
            if scheme.is_empty() { redacted } else { format!("{scheme}://{redacted}") }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod redaction_tests {
    use super::redacted_url;

    #[test]
    fn credentials_never_reach_the_logs() {
        assert_eq!(redacted_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(redacted_url("nats://alice:s3cret@nats.internal:4222"), "nats://***@nats.internal:4222");
        assert_eq!(redacted_url("tls://t0k3n@a:4222, nats://b:4222"), "tls://***@a:4222, nats://b:4222");
        assert_eq!(redacted_url("u:p@host"), "***@host");
    }
}
