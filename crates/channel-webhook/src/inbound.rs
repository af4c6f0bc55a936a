//! `POST /v1/webhooks/{source}`: verify, parse, store, then answer.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_adapter::{Inbound, InboundError, SurveyRefusal, conversation_ref, publish_survey, survey_event};
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_core::SurveyKind;
use switchboard_core::{Contract, Customer, Envelope, ValidationError, json_error};
use tracing::{debug, info, warn};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::signature::{self, SignatureError};
use crate::{CHANNEL, SOURCE_KEY, WebhookChannel};

/// The JSON body a source POSTs.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookMessage {
    /// The sender's own id of the message (not blank; at most 447 bytes); the same id twice
    /// stores one message.
    #[schema(pattern = r"\S", max_length = 447)]
    pub message_id: String,
    /// Who wrote.
    pub customer: WebhookCustomer,
    /// The text (not blank; at most 262,144 bytes).
    #[schema(pattern = r"\S", max_length = 262144)]
    pub text: String,
    /// Subject, if any.
    #[serde(default)]
    pub subject: Option<String>,
    /// Thread within the source (at most 447 bytes); the customer id when absent.
    #[serde(default)]
    #[schema(max_length = 447)]
    pub thread_id: Option<String>,
    /// Routing metadata (string values; at most 63 entries, as `source` is added).
    #[serde(default)]
    #[schema(schema_with = metadata_schema)]
    pub metadata: BTreeMap<String, String>,
}

/// String values by key, at most 63 (`envelope/1` takes 64 and the channel adds `source`).
fn metadata_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, schema::Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
        .max_properties(Some(63))
        .description(Some("Routing metadata (string values; at most 63 entries, as `source` is added)."))
        .build()
}

/// The customer of a webhook message.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCustomer {
    /// The source's id of the customer (not blank; at most 256 bytes).
    #[schema(pattern = r"\S", max_length = 256)]
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Email address (with an `@`).
    #[serde(default)]
    #[schema(pattern = "@")]
    pub email: Option<String>,
}

/// The JSON body a source POSTs with a customer's answer to the satisfaction survey (sent to it
/// as a `system` message with `metadata.csat = "request"`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCsat {
    /// The answer.
    pub csat: WebhookCsatAnswer,
}

/// A survey answer: which conversation (`conversation_id` of the survey) and the score.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookCsatAnswer {
    /// The conversation the survey asked about.
    pub conversation_id: uuid::Uuid,
    /// 1 (poor) to 5 (great); any other number is refused with `422`.
    #[schema(minimum = 1, maximum = 5)]
    pub score: i64,
}

/// The JSON body a source POSTs with a customer's answer to the survey it was sent (a `system`
/// message with `metadata.survey` = the kind): CSAT, NPS or CES.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSurvey {
    /// The answer.
    pub survey: WebhookSurveyAnswer,
}

/// Which survey an answer is for: the `metadata.survey` of the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookSurveyKind {
    /// Customer satisfaction, 1-5.
    Csat,
    /// Net Promoter Score, 0-10.
    Nps,
    /// Customer Effort Score, 1-7.
    Ces,
}

impl From<WebhookSurveyKind> for SurveyKind {
    fn from(k: WebhookSurveyKind) -> SurveyKind {
        match k {
            WebhookSurveyKind::Csat => SurveyKind::Csat,
            WebhookSurveyKind::Nps => SurveyKind::Nps,
            WebhookSurveyKind::Ces => SurveyKind::Ces,
        }
    }
}

/// An answer to any survey: the conversation (`survey.conversation` of the question), the
/// survey and the score.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSurveyAnswer {
    /// The conversation the survey asked about.
    pub conversation_id: uuid::Uuid,
    /// The survey answered; one the conversation was not asked is refused with `422`.
    pub kind: WebhookSurveyKind,
    /// On the survey's scale: CSAT 1-5, NPS 0-10, CES 1-7; any other number is refused with `422`.
    #[schema(minimum = 0, maximum = 10)]
    pub score: i64,
}

/// What a source may POST: a message, an answer to the survey (a body with a `survey` key), or,
/// as before NPS and CES, a CSAT answer (a body with a `csat` key).
// Only for the OpenAPI document: `receive` tells them apart by the `survey` or `csat` key and then
// parses the one it is strictly, for errors that name the field.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum WebhookBody {
    /// A customer message.
    Message(WebhookMessage),
    /// A survey answer.
    Survey(WebhookSurvey),
    /// A CSAT answer in the form before NPS and CES.
    Csat(WebhookCsat),
}

/// The answer to a stored message or survey answer.
#[derive(Serialize, ToSchema)]
pub struct WebhookAccepted {
    /// The stored envelope's (or event's) id; the original's for a duplicate, null when it can
    /// no longer be read back.
    pub id: Option<uuid::Uuid>,
    /// The same message (or answer) was stored before; nothing was stored twice.
    pub duplicate: bool,
    /// Its stream sequence.
    pub sequence: u64,
}

/// A refused request, as `error` writes it: what was wrong, with details by case.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `error`'s JSON only
struct WebhookError {
    /// What was wrong.
    error: String,
    /// 400, 422: the field that is wrong.
    field: Option<String>,
    /// 400, 401, 422: why.
    reason: Option<String>,
    /// 413: the body limit.
    limit_bytes: Option<usize>,
    /// 429: seconds to wait (also in `Retry-After`).
    retry_after_secs: Option<u64>,
    /// 404: the unknown source.
    source: Option<String>,
    /// 404: the unknown conversation of a survey answer.
    conversation_id: Option<uuid::Uuid>,
}

/// Only to tell a survey answer from a message before parsing either strictly.
#[derive(Deserialize)]
struct SurveyProbe {
    #[serde(default)]
    csat: Option<serde_json::Value>,
    #[serde(default)]
    survey: Option<serde_json::Value>,
}

#[derive(Clone)]
struct AppState {
    channel: WebhookChannel,
    inbound: Inbound,
}

/// The channel's routes, for both serving and documenting them.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

pub(crate) fn router(channel: WebhookChannel, inbound: Inbound) -> axum::Router {
    outcomes::register(CHANNEL);
    documented().split_for_parts().0.with_state(AppState { channel, inbound })
}

/// The OpenAPI paths of the channel's routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

fn error(status: StatusCode, error: &str, detail: serde_json::Value) -> Response {
    let mut body = json!({ "error": error });
    if let (Some(body), Some(detail)) = (body.as_object_mut(), detail.as_object()) {
        body.extend(detail.clone());
    }
    (status, Json(body)).into_response()
}

fn invalid(e: ValidationError) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid request", json!({ "field": e.field, "reason": e.reason }))
}

/// Stores a source's message (or survey answer) once its signature checks out.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{source}",
    operation_id = "receive_webhook",
    tag = "webhook",
    security(("standardWebhooks" = [])),
    params(
        ("source" = String, Path, description = "A configured source (`[channels.webhook.sources.<name>]`)."),
        ("webhook-id" = String, Header, description = "The message's unique id (Standard Webhooks)."),
        ("webhook-timestamp" = i64, Header, description = "Unix seconds; within `timestamp_tolerance_secs` of the receiver's clock."),
        ("webhook-signature" = String, Header, description = "`v1,<base64 signature>`; several space-separated are allowed."),
    ),
    request_body(content = inline(WebhookBody), description = "A message, or an answer to the satisfaction survey."),
    responses(
        (status = 202, description = "Stored (or a duplicate of a stored one).", body = WebhookAccepted),
        (status = 400, description = "Not a valid message; names the field.", body = inline(WebhookError)),
        (status = 401, description = "Missing, stale or mismatched signature.", body = inline(WebhookError)),
        (status = 404, description = "Unknown source, or (survey answer) unknown conversation.", body = inline(WebhookError)),
        (status = 413, description = "Body over `max_body_bytes`.", body = inline(WebhookError)),
        (status = 422, description = "Survey answer refused: a score off the survey's scale (CSAT 1-5, NPS 0-10, CES 1-7), or a survey the conversation was not asked.", body = inline(WebhookError)),
        (status = 429, description = "The customer is over the rate limit.", body = inline(WebhookError),
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = 503, description = "Not stored; retry later.", body = inline(WebhookError)),
    )
)]
async fn receive(State(app): State<AppState>, Path(source): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let (response, outcome) = decide(&app, &source, &headers, body).await;
    if let Some(outcome) = outcome {
        outcomes::record(CHANNEL, outcome);
    }
    response
}

/// The answer to one request, and its outcome if this process decides it.
type Decided = (Response, Option<InboundOutcome>);

/// Refused before anything was stored: the sender is told why (a 4xx), counted as rejected.
fn rejected(response: Response) -> Decided {
    (response, Some(InboundOutcome::Rejected))
}

/// Every request ends in exactly one outcome: a stored message is counted by the router, which
/// decides whether it is routed (so not here); a duplicate, a survey answer and a refusal (4xx,
/// also an unknown source) are counted here; a `503` decides nothing (nothing was stored and the
/// sender retries, which is then counted).
async fn decide(app: &AppState, source: &str, headers: &HeaderMap, body: Body) -> Decided {
    let live = app.channel.live();
    let Some(src) = live.sources.get(source) else {
        return rejected(error(StatusCode::NOT_FOUND, "unknown webhook source", json!({ "source": source })));
    };
    let limit = live.max_body_bytes;
    let too_large = || error(StatusCode::PAYLOAD_TOO_LARGE, "body too large", json!({ "limit_bytes": limit }));
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return rejected(too_large());
    }
    let Ok(body) = axum::body::to_bytes(body, limit).await else {
        return rejected(too_large());
    };

    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = signature::verify_any(
        &src.keys(),
        text(signature::ID),
        text(signature::TIMESTAMP),
        text(signature::SIGNATURE),
        &body,
        chrono::Utc::now().timestamp(),
        live.timestamp_tolerance_secs,
    ) {
        warn!(source = %source, reason = %e, "webhook signature refused");
        let reason = match e {
            SignatureError::Mismatch => "signature does not match".to_string(),
            other => other.to_string(),
        };
        return rejected(error(StatusCode::UNAUTHORIZED, "invalid signature", json!({ "reason": reason })));
    }

    if let Ok(probe) = serde_json::from_slice::<SurveyProbe>(&body) {
        if probe.survey.is_some() {
            return match serde_json::from_slice::<WebhookSurvey>(&body) {
                Ok(a) => {
                    let a = a.survey;
                    survey(app, source, a.kind.into(), a.conversation_id, a.score, "survey").await
                }
                Err(e) => rejected(invalid(json_error(e))),
            };
        }
        if probe.csat.is_some() {
            return match serde_json::from_slice::<WebhookCsat>(&body) {
                Ok(a) => survey(app, source, SurveyKind::Csat, a.csat.conversation_id, a.csat.score, "csat").await,
                Err(e) => rejected(invalid(json_error(e))),
            };
        }
    }
    let message: WebhookMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => return rejected(invalid(json_error(e))),
    };
    let envelope = match to_envelope(source, message) {
        Ok(e) => e,
        Err(e) => return rejected(invalid(e)),
    };
    let customer = envelope.customer.id.clone();
    match app.inbound.publish(envelope.clone()).await {
        Ok(published) => {
            let id = if published.duplicate {
                debug!(source = %source, "webhook message already stored");
                // The id this attempt made up was never stored: answer with the original's.
                stored_id(&app.inbound, &published).await
            } else {
                info!(source = %source, envelope = %envelope.id, sequence = published.sequence, "webhook message stored");
                Some(envelope.id)
            };
            let body = WebhookAccepted { id, duplicate: published.duplicate, sequence: published.sequence };
            // Stored: the router counts it. A duplicate is settled here.
            let outcome = published.duplicate.then_some(InboundOutcome::Duplicate);
            ((StatusCode::ACCEPTED, Json(body)).into_response(), outcome)
        }
        Err(InboundError::Invalid(e)) => rejected(invalid(e)),
        Err(InboundError::RateLimited { retry_after }) => {
            // Debug, not warn: a flood would otherwise write a line per refused request.
            debug!(source = %source, customer = %customer, "sender over the rate limit");
            let secs = retry_after.as_secs().max(1);
            let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate limited", json!({ "retry_after_secs": secs }));
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
            rejected(resp)
        }
        Err(e @ (InboundError::NotReady(_) | InboundError::Bus(_))) => {
            warn!(source = %source, error = %e, "cannot store webhook message");
            (error(StatusCode::SERVICE_UNAVAILABLE, "not stored, retry later", json!({})), None)
        }
    }
}

/// The id of the envelope stored first under a duplicate's message id (`None` when it cannot be
/// read back, e.g. it aged out of the stream).
async fn stored_id(inbound: &Inbound, published: &switchboard_bus::Published) -> Option<uuid::Uuid> {
    let bus = inbound.bus().ok()?;
    let stream = bus.jetstream().get_stream(&published.stream).await.ok()?;
    let message = stream.direct_get(published.sequence).await.ok()?;
    Envelope::from_json(&message.payload).ok().map(|e| e.id)
}

/// The envelope of a message a source POSTed (before the contract's own validation, which
/// publishing applies).
pub fn to_envelope(source: &str, m: WebhookMessage) -> Result<Envelope, ValidationError> {
    if m.message_id.trim().is_empty() {
        return Err(ValidationError::new("message_id", "must not be empty"));
    }
    if m.customer.id.trim().is_empty() {
        return Err(ValidationError::new("customer.id", "must not be empty"));
    }
    let thread = m.thread_id.unwrap_or_else(|| m.customer.id.clone());
    let mut metadata = m.metadata;
    metadata.insert(SOURCE_KEY.into(), source.into());
    Ok(Envelope {
        id: uuid::Uuid::now_v7(),
        channel: CHANNEL.into(),
        provider_message_id: format!("{source}:{}", m.message_id),
        received_at: chrono::Utc::now(),
        customer: Customer {
            id: m.customer.id,
            name: m.customer.name,
            email: m.customer.email,
            phone: None,
            language: None,
        },
        thread_key: format!("{source}:{thread}"),
        text: m.text,
        subject: m.subject,
        html: None,
        attachments: vec![],
        metadata,
        raw_ref: Some(format!("webhook:{source}:{}", m.message_id)),
    })
}

/// A survey answer: checked against the survey's scale and the conversation's record (it must
/// be this source's, asked this survey), then stored as `<kind>_received`; only the first answer
/// of a conversation counts. A stored answer is an item not routed (it goes to no conversation as
/// a message), counted here. `field` names the body's key in errors (`survey` or `csat`).
async fn survey(
    app: &AppState,
    source: &str,
    kind: SurveyKind,
    conversation: uuid::Uuid,
    score: i64,
    field: &str,
) -> Decided {
    if let Err(reason) = kind.check(score) {
        let detail = json!({ "field": format!("{field}.score"), "reason": reason });
        return rejected(error(StatusCode::UNPROCESSABLE_ENTITY, "invalid score", detail));
    }
    let unavailable = |e: &dyn std::fmt::Display| {
        warn!(source = %source, error = %e, "cannot store a survey answer");
        (error(StatusCode::SERVICE_UNAVAILABLE, "not stored, retry later", json!({})), None)
    };
    let bus = match app.inbound.bus() {
        Ok(b) => b,
        Err(e) => return unavailable(&e),
    };
    let record = match conversation_ref(bus, conversation).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    // A source rates only its own customers' conversations.
    let prefix = format!("{source}:");
    let Some(record) = record.filter(|r| r.channel == CHANNEL && r.thread_key.starts_with(&prefix)) else {
        return rejected(error(
            StatusCode::NOT_FOUND,
            "unknown conversation",
            json!({ "conversation_id": conversation }),
        ));
    };
    let score = match record.check_answer(kind, score) {
        Ok(score) => score,
        Err(refused) => {
            let key = match refused {
                SurveyRefusal::WrongSurvey { .. } if field == "survey" => "survey.kind",
                SurveyRefusal::WrongSurvey { .. } => field,
                SurveyRefusal::OffScale(_) => &format!("{field}.score"),
            };
            let detail = json!({ "field": key, "reason": refused.to_string() });
            return rejected(error(StatusCode::UNPROCESSABLE_ENTITY, "survey not asked", detail));
        }
    };
    let event = survey_event(kind, conversation, record.agent, CHANNEL, score);
    match publish_survey(bus, &event).await {
        Ok(published) => {
            info!(source = %source, %conversation, survey = %kind, duplicate = published.duplicate, "survey answer stored");
            let body =
                WebhookAccepted { id: Some(event.id), duplicate: published.duplicate, sequence: published.sequence };
            let outcome = if published.duplicate { InboundOutcome::Duplicate } else { InboundOutcome::NotRouted };
            ((StatusCode::ACCEPTED, Json(body)).into_response(), Some(outcome))
        }
        Err(e) => unavailable(&e),
    }
}
