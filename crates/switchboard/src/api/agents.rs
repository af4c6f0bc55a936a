//! `PUT /v1/agents/{id}`: administrators define agents at runtime. The endpoints' addresses are
//! checked (inward addresses refused) and stored only once the router accepted the definition.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use switchboard_adapter::{Verdict, publish_command};
use switchboard_core::contract::buckets;
use switchboard_core::{AgentCommand, AgentStatus, CommandAction, Contract, Tier};
use tracing::{info, warn};
use utoipa::ToSchema;
use uuid::Uuid;

use super::commands::{CommandOutcome, respond};
use super::{Api, ApiError, capacity_schema, endpoints_schema, error, read_body, status_schema, tiers_schema};

/// Largest body of `PUT /v1/agents/{id}`.
const AGENT_BODY_LIMIT: usize = 64 * 1024;

/// The body of `PUT /v1/agents/{id}`: the agent's definition and its endpoints' addresses.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AgentRequest {
    /// Display name.
    #[serde(default)]
    name: Option<String>,
    /// Teams the agent works in (configured teams; at least one).
    #[schema(min_items = 1)]
    teams: Vec<String>,
    /// Tiers the agent handles (at least one).
    #[schema(schema_with = tiers_schema)]
    tiers: Vec<Tier>,
    /// Skills the agent has.
    #[serde(default)]
    skills: Vec<String>,
    /// Concurrent conversations per channel.
    #[serde(default, deserialize_with = "switchboard_core::whole::map_u32")]
    #[schema(schema_with = capacity_schema)]
    capacity: BTreeMap<String, u32>,
    /// Concurrent conversations on channels not in `capacity`.
    #[serde(default, deserialize_with = "switchboard_core::whole::option_u32")]
    #[schema(value_type = Option<u32>, format = "uint32", maximum = 4294967295_u64)]
    default_capacity: Option<u32>,
    /// Concurrent conversations in all (at least 1).
    #[serde(default, deserialize_with = "switchboard_core::whole::option_u32")]
    #[schema(value_type = Option<u32>, format = "uint32", minimum = 1, maximum = 4294967295_u64)]
    max_total: Option<u32>,
    /// The status to start in.
    #[serde(default)]
    #[schema(schema_with = status_schema)]
    status: Option<AgentStatus>,
    /// Endpoint kind → its address and secret, as that kind's channel takes them.
    #[serde(default)]
    #[schema(schema_with = endpoints_schema)]
    endpoints: BTreeMap<String, serde_json::Value>,
}

/// Adds an agent, or changes one added this way: registers its endpoints' addresses (secrets
/// stay out of the journal), then sends the definition to the router as a `define_agent` command.
#[utoipa::path(
    put,
    path = "/v1/agents/{id}",
    tag = "agent",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The agent's id: a-z, 0-9, `-` and `_`, at most 64.", pattern = "^[a-z0-9_-]{1,64}$")),
    request_body = AgentRequest,
    responses(
        (status = 200, description = "Defined.", body = CommandOutcome),
        (status = 202, description = "Stored; applies when a router leads again.", body = CommandOutcome),
        (status = 400, description = "Not JSON.", body = ApiError),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 413, description = "Body over 64 KiB (read only once the token was checked).", body = ApiError),
        (status = 403, description = "Not an admin token.", body = ApiError),
        (status = 404, description = "The router refused it (unknown).", body = CommandOutcome),
        (status = 409, description = "The router refused it.", body = CommandOutcome),
        (status = 422, description = "JSON that is not a valid definition (an unknown or missing field, a wrong type, a value out of range) or an invalid endpoint; names the field; nothing was stored.", body = ApiError),
        (status = 503, description = "Not connected to NATS.", body = ApiError),
    )
)]
pub(super) async fn define_agent(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let token = match api.authenticate(&headers) {
        Ok(t) => t,
        Err(why) => return error(StatusCode::UNAUTHORIZED, why),
    };
    if !token.admin {
        return error(StatusCode::FORBIDDEN, "defining agents needs an admin token (`admin = true`)");
    }
    let body = match read_body(body, AGENT_BODY_LIMIT).await {
        Ok(b) => b,
        Err((code, why)) => return error(code, why),
    };
    let req: AgentRequest = match super::parse_body(&body) {
        Ok(r) => r,
        Err((code, why)) => return error(code, why),
    };
    let command = AgentCommand {
        id: Uuid::now_v7(),
        agent_id: id,
        conversation_id: None,
        issued_at: chrono::Utc::now(),
        action: CommandAction::DefineAgent {
            name: req.name,
            teams: req.teams,
            tiers: req.tiers,
            skills: req.skills,
            capacity: req.capacity,
            default_capacity: req.default_capacity,
            max_total: req.max_total,
            status: req.status,
            endpoints: req.endpoints.keys().cloned().collect(),
        },
    };
    if let Err(e) = command.validate() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
    }
    let Ok(bus) = api.bus.get() else { return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet") };
    // Checked in full before anything is stored, so a bad endpoint changes nothing.
    let mut registrations = Vec::new();
    for (kind, value) in &req.endpoints {
        match endpoint_registration(&api, &command.agent_id, kind, value).await {
            Ok(r) => registrations.push(r),
            Err(why) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("endpoints.{kind}: {why}")),
        }
    }
    // The endpoints are stored only once the router accepted the definition: a refused PUT
    // changes nothing, not even the address the agent's next offer would go to.
    let id = command.id;
    let mut published = match publish_command(bus, &command).await {
        Ok(p) => p,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    info!(token = %token.name, command = %id, "agent definition sent");
    let verdict = published.verdict(api.wait).await;
    match &verdict {
        Verdict::Done => {
            if let Err(e) = register_endpoints(bus, &registrations).await {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the agent is defined but its endpoint could not be stored ({e}); PUT it again"),
                );
            }
        }
        Verdict::Rejected(_) => {}
        Verdict::Pending if registrations.is_empty() => {}
        Verdict::Pending => {
            let bus = bus.clone();
            let agent = command.agent_id.clone();
            tokio::spawn(async move {
                match published.verdict(LATE_VERDICT_WAIT).await {
                    Verdict::Done => match register_endpoints(&bus, &registrations).await {
                        Ok(()) => info!(agent = %agent, command = %id, "late definition accepted; endpoints stored"),
                        Err(e) => {
                            warn!(agent = %agent, command = %id, error = %e, "definition accepted late but its endpoints could not be stored: PUT it again")
                        }
                    },
                    Verdict::Rejected(reason) => {
                        info!(agent = %agent, command = %id, reason = %reason, "definition refused late; endpoints unchanged")
                    }
                    Verdict::Pending => {
                        warn!(agent = %agent, command = %id, "no verdict on the definition; its endpoints were not stored: PUT it again")
                    }
                }
            });
        }
    }
    respond(id, verdict)
}

/// How long a definition answered `202` keeps waiting for the router's verdict; its endpoints are
/// stored only when the router accepts it.
const LATE_VERDICT_WAIT: Duration = Duration::from_secs(600);

/// Stores checked endpoint registrations in `sb_agents`.
async fn register_endpoints(bus: &switchboard_bus::Bus, registrations: &[(String, Vec<u8>)]) -> Result<(), String> {
    if registrations.is_empty() {
        return Ok(());
    }
    let kv = bus.jetstream().get_key_value(buckets::AGENTS).await.map_err(|e| e.to_string())?;
    for (key, value) in registrations {
        kv.put(key.as_str(), value.clone().into()).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The registry key and value of one endpoint, checked; kinds without a registry are refused.
async fn endpoint_registration(
    api: &Api,
    agent: &str,
    kind: &str,
    value: &serde_json::Value,
) -> Result<(String, Vec<u8>), String> {
    match kind {
        #[cfg(feature = "channel-webhook")]
        switchboard_channel_webhook::ENDPOINT_KIND => {
            let endpoint: switchboard_channel_webhook::RegisteredEndpoint =
                serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
            endpoint.validate().map_err(|(field, reason)| format!("{field}: {reason}"))?;
            // Refused now when it clearly points inward; checked again on every delivery, since
            // what a name resolves to can change.
            let url = switchboard_channel_webhook::guard::Url::parse(&endpoint.url).map_err(|e| format!("url: {e}"))?;
            api.guard.check_url(&url).map_err(|e| format!("url: {e}"))?;
            if let Some(host) = url.host_str().filter(|h| !h.starts_with('['))
                && let Err(e) = api.guard.resolve_host(host).await
                && switchboard_channel_webhook::guard::forbidden_in(e.as_ref()).is_some()
            {
                return Err(format!("url: {e}"));
            }
            let bytes = serde_json::to_vec(&endpoint).map_err(|e| e.to_string())?;
            Ok((switchboard_channel_webhook::registry_key(agent), bytes))
        }
        _ => {
            let _ = (api, agent, value);
            Err(format!("endpoint kind `{kind}` cannot be registered through the API"))
        }
    }
}
