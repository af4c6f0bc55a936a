//! Agents on Slack (endpoint kind `slack`). Offers arrive in the agent's DM with the bot as Block
//! Kit messages with Accept/Decline buttons; each conversation is a thread rooted at its offer, in
//! which the agent's plain message is the reply to the customer and `!note`, `!resolve`,
//! `!transfer <team>` are commands; `/sb note <code> <text>` (and `resolve`, `transfer`, `status`)
//! work anywhere. A team channel shows the team's live queue as one message kept up to date.
//! Slack reaches the daemon by the Events API (signed HTTP requests to `/v1/slack/*`) or Socket
//! Mode (a WebSocket the daemon opens); both feed one handler. Setup: `docs/slack.md`.

pub mod api;
pub mod blocks;
mod board;
pub mod config;
mod deliver;
mod handler;
pub mod http;
pub mod markup;
pub mod payload;
pub mod signature;
mod socket;
pub mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv::Store;
use switchboard_adapter::RuntimeConfig;
use switchboard_adapter::agent_chat::Verdicts;
use switchboard_bus::Bus;
use tokio::sync::OnceCell;

pub use config::{SlackConfig, SlackConfigError, SlackMode};
pub use deliver::THREAD_PREFIX;
pub use handler::Answer;
pub use http::openapi;

/// The endpoint kind this crate serves: subject `sb.agent.out.slack`.
pub const ENDPOINT_KIND: &str = "slack";

/// The name inbound outcomes are counted under (`switchboard_inbound_total{channel="slack"}`).
pub const CHANNEL: &str = "slack";

/// How many commands' verdicts are awaited at once.
const VERDICTS_AT_ONCE: usize = 64;

/// The Slack app: its Web API client, who is who, and the state shared by deliveries, the
/// Events API routes, Socket Mode and the team boards. Cheap to clone.
#[derive(Clone)]
pub struct Slack {
    inner: Arc<Inner>,
}

struct Inner {
    api: api::SlackApi,
    app_token: Option<String>,
    signing_secret: Option<Vec<u8>>,
    /// Slack user id → agent id.
    users: BTreeMap<String, String>,
    /// Agent id → Slack user id.
    agents: BTreeMap<String, String>,
    /// Team → channel id.
    teams: BTreeMap<String, String>,
    max_file_bytes: u64,
    max_body_bytes: usize,
    tolerance_secs: u64,
    mode: SlackMode,
    runtime: RuntimeConfig,
    verdicts: Verdicts,
    /// The `sb_channels` bucket, looked up once.
    kv: OnceCell<Store>,
}

impl Slack {
    /// The app of a validated `[channels.slack]`: reads its secrets (the error names the key).
    pub fn new(config: &SlackConfig) -> Result<Slack, SlackConfigError> {
        let bot_token = config.bot_token()?;
        let signing_secret = config.signing_secret()?.map(String::into_bytes);
        let app_token = config.app_token()?;
        let api = api::SlackApi::new(
            &config.api_base,
            &bot_token,
            Duration::from_millis(config.request_timeout_ms.max(1)),
            Duration::from_secs(config.max_retry_after_secs),
        )
        .map_err(|reason| SlackConfigError { key: "api_base".into(), reason })?;
        switchboard_bus::outcomes::register(CHANNEL);
        Ok(Slack {
            inner: Arc::new(Inner {
                api,
                app_token,
                signing_secret,
                users: config.agents.iter().map(|(a, u)| (u.clone(), a.clone())).collect(),
                agents: config.agents.clone(),
                teams: config.team_channels.clone(),
                max_file_bytes: config.max_file_bytes,
                max_body_bytes: config.max_body_bytes,
                tolerance_secs: config.timestamp_tolerance_secs,
                mode: config.mode,
                runtime: config.runtime.clone(),
                verdicts: Verdicts::new(VERDICTS_AT_ONCE),
                kv: OnceCell::new(),
            }),
        })
    }

    /// How Slack reaches this app.
    pub fn mode(&self) -> SlackMode {
        self.inner.mode
    }

    /// The Events API routes (`/v1/slack/*`), served when the mode is `events`.
    pub fn routes(&self, bus: switchboard_bus::BusSlot) -> Option<axum::Router> {
        (self.inner.mode == SlackMode::Events).then(|| http::router(self.clone(), bus))
    }

    /// Checks the bot token with `auth.test`: the bot's user id, or why not (permanent when
    /// Slack refused the token, retryable when Slack could not be asked).
    pub async fn check_token(&self) -> Result<String, switchboard_adapter::SendError> {
        let me = self.inner.api.call("auth.test", &serde_json::json!({})).await?;
        Ok(me["user_id"].as_str().unwrap_or_default().to_string())
    }

    async fn kv(&self, bus: &Bus) -> Result<&Store, String> {
        self.inner.kv.get_or_try_init(|| state::kv(bus)).await
    }
}
