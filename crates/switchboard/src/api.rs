//! The agent API on the daemon's listener: commands, conversations, the queue.
//!
//! Every request carries `Authorization: Bearer <token>`. An agent token acts as its agent; an
//! integration token (no agent) names the agent in each command. A command is published on
//! `sb.agent.in` like any integration's, and the answer waits (up to `api.command_wait_ms`) for
//! the router's verdict, so a command that cannot apply gets a clear 4xx. A supervisor token
//! (`supervisor = true`, or `admin`) sends `supervise` actions under its own name and sets any
//! agent's status and capacity; the console's own routes are in `console`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_bus::BusSlot;
use switchboard_core::contract::{buckets, subjects};
use tracing::{info, warn};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

mod agents;
mod commands;
mod events;

use crate::config::ApiConfig;

/// A token as the API keeps it: only its digest.
pub(crate) struct Token {
    /// Its name in `[api.tokens.<name>]`, for logs.
    pub(crate) name: String,
    digest: [u8; 32],
    agent: Option<String>,
    /// Whether it may define agents and handle customer data.
    pub(crate) admin: bool,
    /// Whether it is a supervisor's (read everything, act on routing), or an admin's.
    supervisor: bool,
}

impl Token {
    /// Whether it may read everything and act on routing: a supervisor or admin token.
    pub(crate) fn supervises(&self) -> bool {
        self.supervisor || self.admin
    }
}

/// Why a request's bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRefused {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is not configured.
    Unknown,
}

impl std::fmt::Display for TokenRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenRefused::Missing => "missing bearer token",
            TokenRefused::Unknown => "unknown token",
        })
    }
}

impl From<TokenRefused> for String {
    fn from(why: TokenRefused) -> String {
        why.to_string()
    }
}

/// The configured bearer tokens, kept as digests; shared by the agent API, the console and the
/// customer-data routes, and replaced as a whole by a configuration reload (each request checks
/// against one consistent set).
#[derive(Clone)]
pub struct Tokens(Arc<RwLock<Arc<Vec<Arc<Token>>>>>);

impl Tokens {
    /// Resolves the configured tokens (a token whose variable or file is missing is disabled,
    /// with a warning naming it); a token shorter than [`MIN_TOKEN_BYTES`] is refused.
    pub fn load(config: &ApiConfig) -> Result<Tokens, String> {
        Ok(Tokens(Arc::new(RwLock::new(Arc::new(resolve(config)?)))))
    }

    /// The token presented, compared in constant time against every configured one.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Token>, TokenRefused> {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(TokenRefused::Missing)?;
        let d = digest(presented.trim());
        let mut found = None;
        for t in self.current().iter() {
            if bool::from(t.digest.ct_eq(&d)) {
                found = Some(t.clone());
            }
        }
        found.ok_or(TokenRefused::Unknown)
    }

    fn current(&self) -> Arc<Vec<Arc<Token>>> {
        self.0.read().expect("tokens lock").clone()
    }

    /// Reads `config`'s tokens again (their files too) for a reload: the step that puts them
    /// in place and returns the names of the tokens it added, removed or changed (`<name>` of
    /// `[api.tokens.<name>]`); or why they
    /// cannot apply (nothing changes then).
    pub fn prepare(&self, config: &ApiConfig) -> Result<impl FnOnce() -> Vec<String> + Send + use<>, String> {
        let next = resolve(config)?;
        let tokens = self.clone();
        Ok(move || {
            let mut slot = tokens.0.write().expect("tokens lock");
            let key = |t: &Token| (t.digest, t.agent.clone(), t.admin, t.supervisor);
            let before: std::collections::BTreeMap<&str, _> = slot.iter().map(|t| (t.name.as_str(), key(t))).collect();
            let after: std::collections::BTreeMap<&str, _> = next.iter().map(|t| (t.name.as_str(), key(t))).collect();
            let mut names: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
            names.sort();
            names.dedup();
            let changed = names.into_iter().filter(|n| before.get(n) != after.get(n)).map(str::to_string).collect();
            *slot = Arc::new(next);
            changed
        })
    }
}

/// The tokens `config` names whose values can be read.
fn resolve(config: &ApiConfig) -> Result<Vec<Arc<Token>>, String> {
    let mut tokens = Vec::new();
    for (name, t) in &config.tokens {
        let value = switchboard_adapter::read_secret(t.token_env.as_deref(), t.token_file.as_deref());
        match value.ok().flatten().filter(|v| !v.is_empty()) {
            Some(v) if v.trim().len() < MIN_TOKEN_BYTES => {
                return Err(format!(
                    "api.tokens.{name}: the token has {} bytes; at least {MIN_TOKEN_BYTES} are required \
                     (e.g. `head -c 24 /dev/urandom | base64`)",
                    v.trim().len()
                ));
            }
            Some(v) => tokens.push(Arc::new(Token {
                name: name.clone(),
                digest: digest(&v),
                agent: t.agent.clone(),
                admin: t.admin,
                supervisor: t.supervisor,
            })),
            None => warn!(token = %name, "API token disabled: its variable or file is empty or missing"),
        }
    }
    Ok(tokens)
}

/// The fewest bytes a bearer token may have (API and metrics tokens): shorter ones can be
/// guessed, so the daemon refuses to start with one.
pub const MIN_TOKEN_BYTES: usize = 16;

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    bus: BusSlot,
    tokens: Tokens,
    /// Where endpoints registered through `PUT /v1/agents/{id}` may point.
    #[cfg(feature = "channel-webhook")]
    guard: switchboard_channel_webhook::guard::AddressGuard,
    /// Every routing group, in configuration order: the queue is theirs together.
    groups: Arc<Vec<String>>,
    wait: Duration,
    /// The open event streams (`GET /v1/agent/events`) and what ends them.
    streams: events::Streams,
}

/// A `$ref` to a definition of the checked-in `command/1` JSON Schema (`docs/schema/`), for the
/// request fields that are contract types.
fn command_def(name: &str) -> Ref {
    Ref::new(format!("./schema/command.v1.json#/$defs/{name}"))
}

fn action_schema() -> Ref {
    command_def("CommandAction")
}

fn tiers_schema() -> RefOr<Schema> {
    ArrayBuilder::new().items(command_def("Tier")).min_items(Some(1)).build().into()
}

/// Concurrent conversations per channel kind, as `command/1` has them (`uint32`).
fn capacity_schema() -> RefOr<Schema> {
    let count = utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::Custom("uint32".into())))
        .minimum(Some(0))
        .maximum(Some(u32::MAX));
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .property_names(Some(kind_schema()))
        .additional_properties(Some(count))
        .into()
}

/// A channel or endpoint kind, as a map key.
fn kind_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(switchboard_core::agent::TOKEN_PATTERN))
        .build()
}

/// Endpoint kind → its address and secret: `webhook` is the one kind registered through the API.
fn endpoints_schema() -> RefOr<Schema> {
    use utoipa::openapi::ObjectBuilder;
    use utoipa::openapi::schema::Type;
    let text = |pattern: &str, what: &str| {
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).description(Some(what))
    };
    let webhook = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "url",
            text(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$", "Where deliveries are POSTed (http or https); an address inside the network is refused unless `channels.webhook.allowed_networks` allows it.")
                .format(Some(utoipa::openapi::SchemaFormat::Custom("uri".into()))),
        )
        .property(
            "secret",
            text(
                r"^whsec_([A-Za-z0-9+/]{4}){5,}([A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/]{4})$",
                "The signing secret: `whsec_` and at least 16 bytes in base64.",
            ),
        )
        .required("url")
        .required("secret")
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("webhook", webhook)
        .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
        .into()
}

fn status_schema() -> Ref {
    command_def("AgentStatus")
}

/// Any refused request: what was wrong (every JSON error body of the daemon has `error`).
#[derive(Serialize, ToSchema)]
pub(crate) struct ApiError {
    /// Why, in words.
    error: String,
}

/// A Telegram link code for the token's agent.
#[derive(Serialize, ToSchema)]
struct LinkCode {
    /// The one-time code.
    code: String,
    /// How long it stays valid.
    expires_in_secs: u64,
    /// What to send the bot: `/link <code>`.
    send: String,
}

/// The queue of every routing group, as their leading routers see it.
#[derive(Serialize, ToSchema)]
struct QueueView {
    /// Waiting conversations, group by group in configuration order, each in the order it will
    /// be offered and with its `group`.
    queue: Vec<serde_json::Value>,
}

/// A refusal in the API's one error shape (`docs/api-errors.md`).
pub(crate) fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (code, Json(ApiError { error: message.into() })).into_response()
}

/// The API's routes, for both serving and documenting them.
fn documented() -> OpenApiRouter<Api> {
    OpenApiRouter::new()
        .routes(routes!(commands::command))
        .routes(routes!(conversation))
        .routes(routes!(queue))
        .routes(routes!(agents::define_agent))
        .routes(routes!(telegram_link))
        .routes(routes!(typing))
        .routes(routes!(events::agent_events))
        .routes(routes!(events::agent_offers))
}

/// The OpenAPI paths of [`Api::routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Api {
    /// The API over `tokens` (see [`Tokens::load`]).
    pub fn new(config: &ApiConfig, tokens: Tokens, bus: BusSlot, groups: Vec<String>) -> Api {
        info!(tokens = tokens.current().len(), "agent API enabled");
        Api {
            bus,
            tokens,
            #[cfg(feature = "channel-webhook")]
            guard: Default::default(),
            groups: Arc::new(groups),
            wait: Duration::from_millis(config.command_wait_ms),
            streams: Default::default(),
        }
    }

    /// Checks endpoints registered through the API against `guard` (the webhook channel's
    /// `allowed_networks`).
    #[cfg(feature = "channel-webhook")]
    pub fn with_endpoint_guard(mut self, guard: switchboard_channel_webhook::guard::AddressGuard) -> Api {
        self.guard = guard;
        self
    }

    /// The API's routes.
    pub fn routes(self) -> axum::Router {
        documented().split_for_parts().0.with_state(self)
    }

    /// The token presented, if it is a configured one.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Token>, TokenRefused> {
        self.tokens.authenticate(headers)
    }
}

/// Largest body of `POST /v1/agent/typing`.
const TYPING_BODY_LIMIT: usize = 4 * 1024;

/// A request body, read only after its credentials were checked (so an anonymous client cannot
/// make the daemon buffer anything) and only up to `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, (StatusCode, String)> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {limit} bytes (or was cut off)")))
}

/// An agent request's token, body and the agent it acts as, or the status and reason to refuse it.
async fn agent_request<T: serde::de::DeserializeOwned>(
    api: &Api,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    named: impl FnOnce(&T) -> Option<String>,
) -> Result<(Arc<Token>, T, String), (StatusCode, String)> {
    let token = api.authenticate(headers).map_err(|why| (StatusCode::UNAUTHORIZED, why.to_string()))?;
    let body = read_body(body, limit).await?;
    let req: T = parse_body(&body)?;
    let agent = acting_agent(&token, named(&req))?;
    Ok((token, req, agent))
}

/// A JSON request body: `400` when it is not JSON, `422` when it is JSON of the wrong shape
/// (an unknown or missing field, a wrong type), as the bus refuses the same command.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, (StatusCode, String)> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            (StatusCode::UNPROCESSABLE_ENTITY, switchboard_core::json_error(e).to_string())
        }
        _ => (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    })
}

/// The agent a request acts as: an agent token's own, or the one an integration token names.
fn acting_agent(token: &Token, named: Option<String>) -> Result<String, (StatusCode, String)> {
    match (&token.agent, named) {
        (Some(own), Some(named)) if *own != named => {
            Err((StatusCode::FORBIDDEN, format!("this token acts as `{own}`, not `{named}`")))
        }
        (Some(own), _) => Ok(own.clone()),
        (None, Some(named)) => Ok(named),
        (None, None) => Err((StatusCode::BAD_REQUEST, "agent_id: required with an integration token".into())),
    }
}

/// The body of `POST /v1/agent/typing`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TypingRequest {
    /// The conversation the agent is typing in.
    conversation_id: Uuid,
    /// Required with an integration token; must match with an agent token.
    #[serde(default)]
    agent_id: Option<String>,
}

/// "The agent is typing": a signal on core NATS that chat channels show; not stored.
#[utoipa::path(
    post,
    path = "/v1/agent/typing",
    tag = "agent",
    security(("bearer" = [])),
    request_body = TypingRequest,
    responses(
        (status = 204, description = "Signalled (on `sb.agent.typing`)."),
        (status = 400, description = "Not JSON, or no `agent_id` with an integration token.", body = ApiError),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 422, description = "JSON with an unknown or missing field or a wrong type; names the field.", body = ApiError),
        (status = 413, description = "Body over 4 KiB (read only once the token was checked).", body = ApiError),
        (status = 403, description = "An agent token acting as another agent, or on a conversation not assigned to it.", body = ApiError),
        (status = 404, description = "Unknown conversation (checked for agent tokens).", body = ApiError),
        (status = 503, description = "Not connected to NATS.", body = ApiError),
    )
)]
async fn typing(State(api): State<Api>, headers: HeaderMap, body: Body) -> Response {
    let (token, req, agent_id) =
        match agent_request::<TypingRequest>(&api, &headers, body, TYPING_BODY_LIMIT, |r| r.agent_id.clone()).await {
            Ok(parts) => parts,
            Err((code, why)) => return error(code, why),
        };
    let Ok(bus) = api.bus.get() else { return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet") };
    if let Some(own) = &token.agent {
        match conversation_record(bus, req.conversation_id).await {
            Ok(record) if held_by(&record, own) => {}
            Ok(_) => return error(StatusCode::FORBIDDEN, "the conversation is not assigned to this agent"),
            Err(refusal) => return refusal,
        }
    }
    let signal = json!({ "conversation_id": req.conversation_id, "agent_id": agent_id });
    match bus.client().publish(switchboard_core::contract::subjects::AGENT_TYPING, signal.to_string().into()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// A one-time code the token's agent sends to the bot (`/link <code>`) to link their chat.
#[utoipa::path(
    post,
    path = "/v1/agent/telegram-link",
    tag = "agent",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A code for the token's agent.", body = LinkCode),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 403, description = "Not an agent token (an integration or admin token has no agent).", body = ApiError),
        (status = 404, description = "This build has no Telegram channel.", body = ApiError),
        (status = 503, description = "Not connected to NATS, or the code could not be stored.", body = ApiError),
    )
)]
async fn telegram_link(State(api): State<Api>, headers: HeaderMap) -> Response {
    let token = match api.authenticate(&headers) {
        Ok(t) => t,
        Err(why) => return error(StatusCode::UNAUTHORIZED, why),
    };
    let Some(agent) = token.agent.clone() else {
        return error(StatusCode::FORBIDDEN, "link codes are for agent tokens (a token with `agent`)");
    };
    let Ok(bus) = api.bus.get() else { return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet") };
    #[cfg(feature = "channel-telegram")]
    {
        match switchboard_channel_telegram::issue_link_code(bus, &agent).await {
            Ok(code) => {
                let ttl = switchboard_channel_telegram::LINK_CODE_TTL.as_secs();
                let body = LinkCode { send: format!("/link {code}"), code, expires_in_secs: ttl };
                (StatusCode::OK, Json(body)).into_response()
            }
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
        }
    }
    #[cfg(not(feature = "channel-telegram"))]
    {
        let _ = (bus, agent);
        error(StatusCode::NOT_FOUND, "this build has no Telegram channel")
    }
}

/// A conversation's record as the router keeps it in `sb_conversations`.
#[utoipa::path(
    get,
    path = "/v1/conversations/{id}",
    tag = "agent",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation id.")),
    responses(
        (status = 200, description = "The conversation's record.", body = Object),
        (status = 400, description = "Not a UUID.", body = ApiError),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 403, description = "An agent token, and the conversation is not assigned to its agent.", body = ApiError),
        (status = 404, description = "Unknown conversation.", body = ApiError),
        (status = 500, description = "The stored record is unreadable.", body = ApiError),
        (status = 503, description = "Not connected to NATS.", body = ApiError),
    )
)]
async fn conversation(State(api): State<Api>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let token = match api.authenticate(&headers) {
        Ok(t) => t,
        Err(why) => return error(StatusCode::UNAUTHORIZED, why),
    };
    let Ok(id) = id.parse::<Uuid>() else { return error(StatusCode::BAD_REQUEST, "conversation id: not a UUID") };
    let Ok(bus) = api.bus.get() else { return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet") };
    match conversation_record(bus, id).await {
        Ok(record) => match &token.agent {
            Some(own) if !held_by(&record, own) => {
                error(StatusCode::FORBIDDEN, "the conversation is not assigned to this agent")
            }
            _ => (StatusCode::OK, Json(record)).into_response(),
        },
        Err(refusal) => refusal,
    }
}

/// A conversation's stored record, or the response refusing the request.
async fn conversation_record(bus: &switchboard_bus::Bus, id: Uuid) -> Result<serde_json::Value, Response> {
    let kv = match bus.jetstream().get_key_value(buckets::CONVERSATIONS).await {
        Ok(kv) => kv,
        Err(e) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    };
    match kv.get(id.to_string()).await {
        Ok(Some(value)) => serde_json::from_slice::<serde_json::Value>(&value)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("stored record unreadable: {e}"))),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, "unknown conversation")),
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// Whether `agent` holds (or last held, or is offered) the conversation of `record`: an agent
/// token reads and signals only on its own conversations; integration and admin tokens on any.
fn held_by(record: &serde_json::Value, agent: &str) -> bool {
    record.get("agent").and_then(|a| a.as_str()) == Some(agent)
}

/// The queue of every routing group, from their leading routers (waits up to 3 s for them).
#[utoipa::path(
    get,
    path = "/v1/queue",
    tag = "agent",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The queue.", body = QueueView),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 502, description = "A router's answer was unreadable.", body = ApiError),
        (status = 503, description = "No router is leading one of the groups.", body = ApiError),
    )
)]
async fn queue(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Err(why) = api.authenticate(&headers) {
        return error(StatusCode::UNAUTHORIZED, why);
    }
    let Ok(bus) = api.bus.get() else { return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet") };
    let mut queue = Vec::new();
    for (_, answer) in group_queues(bus, &api.groups).await {
        match answer {
            Ok(items) => queue.extend(items),
            Err((code, why)) => return error(code, why),
        }
    }
    (StatusCode::OK, Json(QueueView { queue })).into_response()
}

/// Each group's queue from its leading router (asked at once, up to 3 s), in configuration
/// order, each item with its `group`; a group without an answer has the status and reason.
pub(crate) async fn group_queues(
    bus: &switchboard_bus::Bus,
    groups: &[String],
) -> Vec<(String, Result<Vec<serde_json::Value>, (StatusCode, String)>)> {
    let asks = groups.iter().map(|group| {
        let request = bus.client().request(subjects::router_queue(group), Bytes::new());
        async move { (group, tokio::time::timeout(Duration::from_secs(3), request).await) }
    });
    let mut out = Vec::new();
    for (group, answer) in futures::future::join_all(asks).await {
        let Ok(Ok(m)) = answer else {
            let why = format!("no router is leading group `{group}` right now");
            out.push((group.clone(), Err((StatusCode::SERVICE_UNAVAILABLE, why))));
            continue;
        };
        let items = match serde_json::from_slice::<Vec<serde_json::Value>>(&m.payload) {
            Ok(items) => Ok(items
                .into_iter()
                .map(|mut item| {
                    if let Some(fields) = item.as_object_mut() {
                        fields.insert("group".into(), json!(group));
                    }
                    item
                })
                .collect()),
            Err(e) => Err((StatusCode::BAD_GATEWAY, format!("router of group `{group}` answered garbage: {e}"))),
        };
        out.push((group.clone(), items));
    }
    out
}
