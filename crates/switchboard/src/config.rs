//! The daemon's configuration: one TOML file plus `SWITCHBOARD__SECTION__KEY` overrides.
//!
//! Errors name the file, the key and the reason, so that `check-config` is a useful CI step.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::Deserialize;
use switchboard_bus::BusConfig;
use switchboard_routing::RoutingConfig;

// Channels register their sections in `channels.rs`, the one place a channel is added.
pub use crate::channels::ChannelsConfig;

/// Prefix of environment overrides: `SWITCHBOARD__NATS__URL` sets `nats.url`.
pub const ENV_PREFIX: &str = "SWITCHBOARD";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How to reach NATS and shape the streams.
    pub nats: BusConfig,
    /// The one HTTP listener.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Shutdown behaviour.
    pub shutdown: ShutdownConfig,
    /// Channel adapters, each enabled or not.
    pub channels: ChannelsConfig,
    /// Teams, agents and rules: what the router routes by.
    pub routing: RoutingConfig,
    /// The router service.
    pub router: RouterSection,
    /// The agent API on the HTTP listener.
    pub api: ApiConfig,
    /// The supervisor's console (`/console`).
    pub console: crate::console::config::ConsoleConfig,
    /// Support KPIs from the event stream, served at `/metrics`.
    pub metrics: MetricsConfig,
    /// How long customer data is kept (`docs/data-lifecycle.md`).
    pub privacy: crate::privacy::PrivacyConfig,
    /// The knowledge base folder (`docs/kb.md`).
    pub kb: crate::kb_config::KbConfig,
    /// OpenTelemetry trace export (off by default).
    pub telemetry: crate::telemetry::TelemetryConfig,
    /// Where it was read from and what each section said, for a reload to compare with; absent
    /// for a configuration built in code.
    #[serde(skip)]
    pub source: Option<ConfigSource>,
}

/// The file a configuration came from, and its sections as read (file plus overrides).
#[derive(Debug, Clone)]
pub struct ConfigSource {
    /// The file.
    pub path: PathBuf,
    /// Its top-level sections by name, as JSON.
    pub sections: serde_json::Map<String, serde_json::Value>,
}

/// The router service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSection {
    /// Whether this process runs a router (several may: one leads, the others stand by).
    pub enabled: bool,
    /// The routing groups (`routing.groups`) this process runs a router for; empty runs every
    /// group. Processes of one group share its lease, journal and snapshots: one leads.
    pub groups: Vec<String>,
    /// Seconds after the leader's last lease renewal before a standby takes over.
    pub lease_ttl_secs: u64,
    /// Journal entries between snapshots.
    pub snapshot_every: u64,
    /// History entries an offer carries.
    pub offer_history: usize,
}

impl Default for RouterSection {
    fn default() -> Self {
        Self { enabled: true, groups: Vec::new(), lease_ttl_secs: 10, snapshot_every: 1000, offer_history: 20 }
    }
}

/// The agent API: bearer tokens, each for one agent or for an integration acting for any agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Tokens by name (the name appears in logs, never the token).
    pub tokens: BTreeMap<String, ApiTokenConfig>,
    /// How long `POST /v1/agent/commands` waits for the router's verdict before answering `202`.
    pub command_wait_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { tokens: BTreeMap::new(), command_wait_ms: 5000 }
    }
}

/// One API token.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiTokenConfig {
    /// Environment variable holding the token.
    pub token_env: Option<String>,
    /// File holding the token.
    pub token_file: Option<PathBuf>,
    /// The agent this token acts as; none makes it an integration token that names the agent
    /// in each command.
    pub agent: Option<String>,
    /// Whether the token may define agents (`PUT /v1/agents/{id}`); an admin token is a
    /// supervisor's too.
    pub admin: bool,
    /// Whether the token is a supervisor's: reads every conversation, the queue, agents and KPIs
    /// (the console, `/console`), sends `supervise` actions and sets any agent's status and
    /// capacity, but does not define agents.
    pub supervisor: bool,
}

/// The HTTP listener shared by health checks, webhooks and (later) the agent API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Longest time one request may take, in milliseconds.
    pub request_timeout_ms: u64,
    /// Time a client has to send a request's headers, in milliseconds; then the connection closes.
    pub header_read_timeout_ms: u64,
    /// Time a connection may stay silent between requests, in milliseconds; then it closes.
    pub idle_timeout_ms: u64,
    /// Open connections in total (WebSockets included); more get `503` at once. Lowered at start
    /// to fit the process's open-file limit.
    pub max_connections: usize,
    /// Open connections from one IP address; more get `503` at once.
    pub max_connections_per_ip: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_ms: 30_000,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 4096,
            max_connections_per_ip: 256,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `human` or `json`; `--log-format` overrides it.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,switchboard_bus=debug`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Human, level: "info".into() }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How the daemon stops.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Seconds in-flight work may take after SIGTERM before it is abandoned (and redelivered).
    pub grace_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { grace_secs: 20 }
    }
}

/// A configuration error: which file, which key, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: key `{key}`: {reason}", file.display())]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// The dotted key, e.g. `http.listen` (`(file)` for a problem with the file as a whole).
    pub key: String,
    /// Why it is wrong; mentions the environment variable when an override set the key.
    pub reason: String,
}

impl Config {
    /// Reads `path`, applies `SWITCHBOARD__...` overrides from the environment, and validates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, reason: String| ConfigError { file: path.to_path_buf(), key: key.into(), reason };
        if !path.is_file() {
            return Err(err("(file)", "no such file".into()));
        }
        let merged = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml).required(true))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    // `SWITCHBOARD__ROUTER__GROUPS=eu,us`: one router Deployment per group.
                    .list_separator(",")
                    .with_list_parse_key("router.groups"),
            )
            .build()
            .map_err(|e| err("(file)", e.to_string()))?;
        let value: serde_json::Value = merged.try_deserialize().map_err(|e| err("(file)", e.to_string()))?;
        let sections = value.as_object().cloned().unwrap_or_default();
        let mut config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            err(&key, with_env_hint(&key, e.into_inner().to_string()))
        })?;
        config.validate().map_err(|(key, reason)| err(&key, with_env_hint(&key, reason)))?;
        config.source = Some(ConfigSource { path: path.to_path_buf(), sections });
        Ok(config)
    }

    /// Checks what the types cannot: non-empty URLs, positive timeouts, coherent sources.
    fn validate(&self) -> Result<(), (String, String)> {
        if self.nats.url.trim().is_empty() {
            return Err(("nats.url".into(), "must not be empty".into()));
        }
        // Credentials and TLS files are read now: a mistake is named here, not retried forever.
        self.nats.validate().map_err(|e| (format!("nats.{}", e.key), e.reason))?;
        if !(1..=5).contains(&self.nats.replicas) {
            return Err(("nats.replicas".into(), "must be between 1 and 5".into()));
        }
        self.nats.validate_limits().map_err(|(key, reason)| (format!("nats.{key}"), reason))?;
        let http = &self.http;
        for (key, value) in [
            ("request_timeout_ms", http.request_timeout_ms),
            ("header_read_timeout_ms", http.header_read_timeout_ms),
            ("idle_timeout_ms", http.idle_timeout_ms),
            ("max_connections", http.max_connections as u64),
            ("max_connections_per_ip", http.max_connections_per_ip as u64),
        ] {
            if value == 0 {
                return Err((format!("http.{key}"), "must be greater than 0".into()));
            }
        }
        if self.shutdown.grace_secs == 0 {
            return Err(("shutdown.grace_secs".into(), "must be greater than 0".into()));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(("log.level".into(), format!("`{}` is not a valid log filter", self.log.level)));
        }
        for (name, token) in &self.api.tokens {
            if token.token_env.is_some() == token.token_file.is_some() {
                return Err((
                    format!("api.tokens.{name}.token_env"),
                    "set exactly one of token_env and token_file".into(),
                ));
            }
            if let Some(agent) = &token.agent
                && !self.routing.agents.iter().any(|a| &a.id == agent)
            {
                return Err((format!("api.tokens.{name}.agent"), format!("unknown agent `{agent}`")));
            }
        }
        self.metrics.validate().map_err(|(key, reason)| (format!("metrics.{key}"), reason))?;
        self.console.validate().map_err(|(key, reason)| (format!("console.{key}"), reason))?;
        self.privacy.validate().map_err(|(key, reason)| (format!("privacy.{key}"), reason))?;
        self.kb.validate().map_err(|(key, reason)| (format!("kb.{key}"), reason))?;
        crate::channels::validate(&self.channels, &self.nats, &self.routing)?;
        // Last, so that a simpler mistake elsewhere is reported first. Every process checks the
        // groups, since every process decides which group owns what.
        let layout = self.layout().map_err(|e| (format!("routing.{}", e.key), e.reason.clone()))?;
        if self.router.enabled {
            for group in layout.names() {
                let routing = layout.config_for(&self.routing, group).unwrap_or_default();
                switchboard_routing::Engine::new(&routing)
                    .map_err(|e| (format!("routing.{}", e.key), e.reason.clone()))?;
            }
            if let Some((i, unknown)) = self.router.groups.iter().enumerate().find(|(_, g)| !layout.contains(g)) {
                return Err((
                    format!("router.groups[{i}]"),
                    format!(
                        "`{unknown}` is not one of routing.groups ({})",
                        layout.names().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            if self.router.lease_ttl_secs == 0 || self.router.snapshot_every == 0 {
                let key =
                    if self.router.lease_ttl_secs == 0 { "router.lease_ttl_secs" } else { "router.snapshot_every" };
                return Err((key.into(), "must be greater than 0".into()));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Which routing group owns what; every process computes the same from the same file.
    pub fn layout(&self) -> Result<switchboard_routing::Layout, switchboard_routing::RoutingConfigError> {
        switchboard_routing::Layout::new(&self.routing)
    }

    /// The configuration of the router of routing group `group`: the routing section plus each
    /// agent's endpoint kinds, and the layout that tells it which inputs are its group's.
    pub fn router_config(
        &self,
        layout: &std::sync::Arc<switchboard_routing::Layout>,
        group: &str,
    ) -> switchboard_router::RouterConfig {
        switchboard_router::RouterConfig {
            routing: self.routing.clone(),
            endpoints: crate::channels::endpoint_kinds(&self.channels),
            offer_history: self.router.offer_history,
            group: Some(switchboard_router::RoutingGroup {
                name: group.to_string(),
                layout: std::sync::Arc::clone(layout),
            }),
            kb: None,
        }
    }

    /// The routing groups this process runs a router for, in configuration order.
    pub fn router_groups(&self, layout: &switchboard_routing::Layout) -> Vec<String> {
        layout
            .names()
            .filter(|g| self.router.groups.is_empty() || self.router.groups.iter().any(|r| r == g))
            .map(str::to_string)
            .collect()
    }
}

/// Adds "(set by SWITCHBOARD__X__Y)" when an environment override is the likely culprit.
fn with_env_hint(key: &str, reason: String) -> String {
    let var = format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase());
    if std::env::var_os(&var).is_some() { format!("{reason} (set by environment variable {var})") } else { reason }
}

/// The `[metrics]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Whether this process folds events and serves `/metrics`.
    pub enabled: bool,
    /// Seconds between snapshots of the fold.
    pub snapshot_secs: u64,
    /// Days of per-conversation detail kept (older resolved conversations leave the fold;
    /// counters keep them).
    pub retention_days: u64,
    /// Environment variable holding a bearer token `/metrics` then requires (none: open).
    pub token_env: Option<String>,
    /// File holding that token (e.g. the same file Prometheus reads as `bearer_token_file`).
    pub token_file: Option<PathBuf>,
    /// The first-response target (seconds) the staffing gauge plans 90% of replies within.
    pub staffing_target_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            snapshot_secs: 30,
            retention_days: 35,
            token_env: None,
            token_file: None,
            staffing_target_secs: 7200,
        }
    }
}

impl MetricsConfig {
    /// Checks what can be checked without reading the token: a key relative to `metrics` and
    /// the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.token_env.is_some() && self.token_file.is_some() {
            return Err(("token_file".into(), "set only one of token_env and token_file".into()));
        }
        if self.token_env.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(("token_env".into(), "must name an environment variable".into()));
        }
        Ok(())
    }
}
