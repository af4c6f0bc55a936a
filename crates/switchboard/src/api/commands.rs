//! `POST /v1/agent/commands`: an agent's (or integration's, or supervisor's) command, published
//! on `sb.agent.in` and answered with the router's verdict.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchboard_adapter::{Verdict, send_command};
use switchboard_core::{AgentCommand, CommandAction, Contract};
use tracing::info;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Api, ApiError, Token, acting_agent, action_schema, error, parse_body, read_body};

/// The body of `POST /v1/agent/commands`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandRequest {
    /// Idempotency key: the same id twice acts once, and a retry is answered at once with the
    /// first attempt's verdict (kept for `nats.duplicate_window_secs`). Generated when absent.
    #[serde(default)]
    id: Option<Uuid>,
    /// Required with an integration token; must match with an agent token. With a supervisor
    /// token: the agent whose status or capacity is set; ignored for `supervise`, which goes
    /// under the token's name.
    #[serde(default)]
    #[schema(pattern = r"\S")]
    agent_id: Option<String>,
    /// The conversation the action applies to: required unless the action is `set_status`,
    /// `set_capacity` or `define_agent` (as in `command/1`).
    #[serde(default)]
    conversation_id: Option<Uuid>,
    /// What to do, tagged by `type` (as in `command/1`).
    #[schema(schema_with = action_schema)]
    action: CommandAction,
}

/// The router's verdict on a command.
#[derive(Serialize, ToSchema)]
pub(super) struct CommandOutcome {
    /// The command's id (given or generated).
    command_id: Uuid,
    /// `done` (applied) or `queued` (stored; applies when a router leads again).
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    /// Why the router refused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Sends an agent command and waits (up to `api.command_wait_ms`) for the router's verdict.
#[utoipa::path(
    post,
    path = "/v1/agent/commands",
    tag = "agent",
    security(("bearer" = [])),
    request_body = CommandRequest,
    responses(
        (status = 200, description = "Applied.", body = CommandOutcome),
        (status = 202, description = "Stored; no verdict in time (applies when a router leads again).", body = CommandOutcome),
        (status = 400, description = "Not JSON, or no `agent_id` with an integration token.", body = ApiError),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 413, description = "Body over 256 KiB (read only once the token was checked).", body = ApiError),
        (status = 403, description = "An agent token acting as another agent; a `supervise` action without a supervisor or admin token; a supervisor-only token sending an agent's action.", body = ApiError),
        (status = 404, description = "The router refused it: unknown conversation or agent.", body = CommandOutcome),
        (status = 409, description = "The router refused it: it does not apply now.", body = CommandOutcome),
        (status = 422, description = "JSON that is not a valid command (an unknown or missing field, a wrong type, a value out of range, as `command/1`); names the field.", body = ApiError),
        (status = 503, description = "Not connected to NATS.", body = ApiError),
    )
)]
pub(super) async fn command(State(api): State<Api>, headers: HeaderMap, body: Body) -> Response {
    let (token, req, agent_id) = match command_request(&api, &headers, body).await {
        Ok(parts) => parts,
        Err((code, why)) => return error(code, why),
    };
    let command = AgentCommand {
        id: req.id.unwrap_or_else(Uuid::now_v7),
        agent_id,
        conversation_id: req.conversation_id,
        issued_at: chrono::Utc::now(),
        action: req.action,
    };
    // An agent's helpdesk that sent the `traceparent` of our delivery back continues its trace;
    // without one, the router joins the command to its conversation's trace.
    let traceparent = headers.get(switchboard_bus::trace::TRACEPARENT).and_then(|v| v.to_str().ok());
    if switchboard_bus::trace::enabled()
        && let Some(traceparent) = traceparent
    {
        let span = tracing::info_span!("agent command", otel.name = "agent reply", otel.kind = "server");
        let tracestate = headers.get(switchboard_bus::trace::TRACESTATE).and_then(|v| v.to_str().ok());
        switchboard_bus::trace::set_parent(&span, Some(traceparent), tracestate);
        return tracing::Instrument::instrument(send(&api, &token, command), span).await;
    }
    send(&api, &token, command).await
}

/// A command's token, body and the id it goes under, or the status and reason to refuse it.
async fn command_request(
    api: &Api,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<Token>, CommandRequest, String), (StatusCode, String)> {
    let token = api.authenticate(headers).map_err(|why| (StatusCode::UNAUTHORIZED, why.to_string()))?;
    let body = read_body(body, COMMAND_BODY_LIMIT).await?;
    let req: CommandRequest = parse_body(&body)?;
    let agent = command_agent(&token, &req.action, req.agent_id.clone())?;
    Ok((token, req, agent))
}

/// The id a command goes under, by the token's role: a supervisor's action under the token's
/// name (the supervisor need not be an agent); a supervisor's `set_status`/`set_capacity` for
/// any agent; a supervisor-only token sends nothing else; agents and integrations as before.
fn command_agent(token: &Token, action: &CommandAction, named: Option<String>) -> Result<String, (StatusCode, String)> {
    match action {
        CommandAction::Supervise { .. } if token.supervises() => Ok(token.name.clone()),
        CommandAction::Supervise { .. } => Err((
            StatusCode::FORBIDDEN,
            "supervisor actions need a supervisor or admin token (`supervisor = true`)".into(),
        )),
        CommandAction::SetStatus { .. } | CommandAction::SetCapacity { .. } if token.supervises() => {
            match (named, &token.agent) {
                (Some(named), _) => Ok(named),
                (None, Some(own)) => Ok(own.clone()),
                (None, None) => Err((StatusCode::BAD_REQUEST, "agent_id: required with a supervisor token".into())),
            }
        }
        _ if token.supervisor && !token.admin && token.agent.is_none() => Err((
            StatusCode::FORBIDDEN,
            "a supervisor token sends `supervise`, `set_status` and `set_capacity` only".into(),
        )),
        _ => acting_agent(token, named),
    }
}

/// Largest body of `POST /v1/agent/commands` (a reply's text with room to spare).
const COMMAND_BODY_LIMIT: usize = 256 * 1024;
/// Largest body of `POST /v1/agent/typing`.
/// Publishes a command on `sb.agent.in` and answers with the router's verdict, or `202` when
/// none came in time (the command is stored and applies when a router leads again).
async fn send(api: &Api, token: &Token, command: AgentCommand) -> Response {
    if let Err(e) = command.validate() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string());
    }
    let Ok(bus) = api.bus.get() else { return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet") };
    let id = command.id;
    let verdict = match send_command(bus, &command, api.wait).await {
        Ok(v) => v,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    info!(token = %token.name, command = %id, "agent command accepted");
    respond(id, verdict)
}

/// The answer to a command: the router's verdict as a status code.
pub(super) fn respond(id: Uuid, verdict: Verdict) -> Response {
    match verdict {
        Verdict::Done => {
            (StatusCode::OK, Json(CommandOutcome { command_id: id, status: Some("done"), error: None })).into_response()
        }
        Verdict::Rejected(reason) => {
            let code = if reason.starts_with("unknown") { StatusCode::NOT_FOUND } else { StatusCode::CONFLICT };
            (code, Json(CommandOutcome { command_id: id, status: None, error: Some(reason) })).into_response()
        }
        // Stored on the bus: the router applies it when it can.
        Verdict::Pending => {
            (StatusCode::ACCEPTED, Json(CommandOutcome { command_id: id, status: Some("queued"), error: None }))
                .into_response()
        }
    }
}
