//! The channel's HTTP routes: the widget script, the WebSocket, uploads and files.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::AttachmentRef;
use switchboard_core::contract::ATTACHMENTS_STORE;
use tracing::{info, warn};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::Shared;
use crate::{quota, upload};

/// Read and write buffer of each socket. Chat frames are small, and tungstenite's defaults
/// (128 KiB each) would make an idle socket cost well over 100 KiB.
pub const SOCKET_BUFFER_BYTES: usize = 4 * 1024;

/// The widget, served at `/chat/widget.js`.
pub const WIDGET_JS: &str = include_str!("../assets/widget.js");

/// The channel's routes, for both serving and documenting them; the demo page only with `demo`.
fn documented(demo: bool) -> OpenApiRouter<Arc<Shared>> {
    let router = OpenApiRouter::new()
        .routes(routes!(widget))
        .routes(routes!(socket))
        .routes(routes!(admission))
        .routes(routes!(upload, preflight))
        .routes(routes!(file));
    if demo { router.routes(routes!(demo_page)) } else { router }
}

pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    documented(shared.cfg.demo_page).split_for_parts().0.with_state(shared)
}

/// The OpenAPI paths of the channel's routes (`demo_page` as configured).
pub fn openapi(demo_page: bool) -> utoipa::openapi::OpenApi {
    documented(demo_page).into_openapi()
}

/// A page that embeds the widget, for trying the chat on a fresh install.
#[utoipa::path(
    get,
    path = "/chat/demo",
    tag = "webchat",
    responses((status = 200, description = "An HTML page with the widget (only with `demo_page = true`).", content_type = "text/html", body = String))
)]
async fn demo_page() -> Response {
    axum::response::Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Switchboard web chat demo</title></head><body>\
         <h1>Switchboard web chat demo</h1><p>The chat button is in the bottom corner.</p>\
         <script src=\"/chat/widget.js\" async></script></body></html>",
    )
    .into_response()
}

/// The widget script, for any page to embed.
#[utoipa::path(
    get,
    path = "/chat/widget.js",
    tag = "webchat",
    responses((status = 200, description = "The widget (cached 5 min).", content_type = "text/javascript", body = String))
)]
async fn widget() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        WIDGET_JS,
    )
        .into_response()
}

fn refuse(code: StatusCode, message: &str) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}

/// The answer to a refused upload: a status, a message the widget can show and a `code` it can
/// tell apart (`rate_limited`, `send_first`, `upload_limit`, `storage_full`, `unavailable`).
fn refused_upload(refusal: &quota::Refusal) -> Response {
    use quota::Refusal;
    let (status, code, message) = match refusal {
        Refusal::RateLimited { retry_after_secs } => {
            info!(retry_after_secs, "web-chat upload refused: over the upload rate");
            let message = format!("too many uploads; try again in {retry_after_secs} s");
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "error": message, "code": "rate_limited" })))
                    .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
        Refusal::SendFirst => {
            (StatusCode::FORBIDDEN, "send_first", "upload limit reached: send a message first".to_string())
        }
        Refusal::SessionBudget => {
            (StatusCode::FORBIDDEN, "upload_limit", "upload limit reached for this chat".to_string())
        }
        Refusal::StorageFull => {
            warn!("web-chat upload refused: the attachments store is at its budget");
            (StatusCode::INSUFFICIENT_STORAGE, "storage_full", "upload limit reached: try again later".to_string())
        }
        Refusal::Unavailable(e) => {
            warn!(error = %e, "web-chat upload not stored");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "not stored, try again".to_string())
        }
    };
    if matches!(refusal, Refusal::SendFirst | Refusal::SessionBudget) {
        info!(code, "web-chat upload refused: the session's upload limit");
    }
    (status, Json(json!({ "error": message, "code": code }))).into_response()
}

/// The page's origin when it may use the chat.
fn allowed_origin<'a>(shared: &Shared, headers: &'a HeaderMap) -> Option<&'a str> {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("");
    if origin.is_empty() || !shared.cfg.origin_allowed(origin) {
        info!(origin, "web chat refused to a page from an origin not allowed");
        return None;
    }
    Some(origin)
}

fn foreign_origin() -> Response {
    refuse(StatusCode::FORBIDDEN, "this site may not open the chat")
}

/// Seconds a widget refused for a busy address (429) waits before it asks again.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

/// Seconds a widget waits while the daemon starts (503).
const STARTING_RETRY_AFTER_SECS: u64 = 2;

/// Why `/chat/ws` would refuse an upgrade now, as `(status, code, message, Retry-After)`; `None`
/// when it would take it. One decision for the upgrade and for `/chat/admission`, so that the
/// widget, which cannot read the status of a failed WebSocket handshake, learns it there.
fn admission_refusal(
    shared: &Shared,
    headers: &HeaderMap,
    ip: std::net::IpAddr,
) -> Option<(StatusCode, &'static str, &'static str, Option<u64>)> {
    if allowed_origin(shared, headers).is_none() {
        return Some((StatusCode::FORBIDDEN, "origin_not_allowed", "this site may not open the chat", None));
    }
    if shared.inbound.bus().is_err() {
        return Some((
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "starting, try again",
            Some(STARTING_RETRY_AFTER_SECS),
        ));
    }
    if shared.sockets_full(ip) {
        return Some((
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "too many chats open from this address",
            Some(BUSY_RETRY_AFTER_SECS),
        ));
    }
    None
}

fn refusal_response(status: StatusCode, code: &str, message: &str, retry_after: Option<u64>) -> Response {
    let mut response = (status, Json(json!({ "error": message, "code": code }))).into_response();
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// Whether `/chat/ws` would take a socket from this page now: the same decision as the upgrade's,
/// readable by the widget (browsers hide a failed handshake's status from scripts).
#[utoipa::path(
    get,
    path = "/chat/admission",
    tag = "webchat",
    params(("Origin" = String, Header, description = "The page's origin.")),
    responses(
        (status = 200, description = "`{\"ok\": true}`: an upgrade now would be taken; if the WebSocket still fails, something between (a proxy without WebSocket upgrades, the network) is in the way.", body = Object),
        (status = 403, description = "`code: origin_not_allowed`: this site may not open the chat (stop trying).", body = Object),
        (status = 429, description = "`code: busy`: as many sockets open from this address as `max_connections_per_ip` allows; `Retry-After` says when to ask again.", body = Object),
        (status = 503, description = "`code: starting`: no bus yet; `Retry-After` says when to ask again.", body = Object),
    )
)]
async fn admission(
    State(shared): State<Arc<Shared>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let ip = shared.client_ip(peer.map(|Extension(ConnectInfo(p))| p), &headers);
    let mut response = match admission_refusal(&shared, &headers, ip) {
        Some((status, code, message, retry_after)) => refusal_response(status, code, message, retry_after),
        None => Json(json!({ "ok": true })).into_response(),
    };
    // Readable by any page, refused ones included: the answer tells nothing but whether this
    // page may chat, and a widget that cannot read it would take a refusal for an outage.
    if let Some(origin) = headers.get(header::ORIGIN).cloned() {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
        response.headers_mut().insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("retry-after"));
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The chat's WebSocket: frames as in `webchat-protocol.md`, starting with the visitor's `hello`.
#[utoipa::path(
    get,
    path = "/chat/ws",
    tag = "webchat",
    params(
        ("Origin" = String, Header, description = "The page's origin; must be in `allowed_origins`."),
        ("Upgrade" = String, Header, description = "`websocket`.", pattern = "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"),
        ("Connection" = String, Header, description = "`Upgrade`.", pattern = "^[Uu][Pp][Gg][Rr][Aa][Dd][Ee]$"),
        ("Sec-WebSocket-Key" = String, Header, description = "The client's handshake key: 16 random bytes in base64.", pattern = "^[A-Za-z0-9+/]{22}==$"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`.", pattern = "^13$"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the WebSocket is open; the visitor says `hello` within 10 s."),
        (status = 400, description = "Not a WebSocket upgrade request (plain text, from the WebSocket handshake)."),
        (status = 403, description = "`code: origin_not_allowed`: an origin not allowed.", body = Object),
        (status = 429, description = "`code: busy`: too many sockets open from this address (`Retry-After`). Browsers hide this status from the page: the widget asks `GET /chat/admission`.", body = Object),
        (status = 503, description = "`code: starting`: no bus yet (`Retry-After`).", body = Object),
    )
)]
async fn socket(
    State(shared): State<Arc<Shared>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ip = shared.client_ip(peer.map(|Extension(ConnectInfo(p))| p), &headers);
    if let Some((status, code, message, retry_after)) = admission_refusal(&shared, &headers, ip) {
        if status == StatusCode::TOO_MANY_REQUESTS {
            warn!(%ip, "web-chat socket refused: too many from one address");
        }
        return refusal_response(status, code, message, retry_after);
    }
    let Some(slot) = shared.claim_socket(ip) else {
        warn!(%ip, "web-chat socket refused: too many from one address");
        return refusal_response(
            StatusCode::TOO_MANY_REQUESTS,
            "busy",
            "too many chats open from this address",
            Some(BUSY_RETRY_AFTER_SECS),
        );
    };
    upgrade
        .read_buffer_size(SOCKET_BUFFER_BYTES)
        .write_buffer_size(SOCKET_BUFFER_BYTES)
        // Frames over max_frame_bytes are refused by the socket; up to this cap they are still
        // read, so that the refusal can name the message.
        .max_message_size(shared.cfg.max_frame_bytes.saturating_mul(crate::frames::READ_CAP_FACTOR))
        .max_frame_size(shared.cfg.max_frame_bytes.saturating_mul(crate::frames::READ_CAP_FACTOR))
        .on_upgrade(move |ws| crate::socket::run(shared, ws, ip, slot))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TokenQuery {
    /// The visitor's session token, signed by this server.
    // Absent is answered like a wrong token (401, JSON), not with axum's plain-text 400.
    #[serde(default)]
    #[param(required = true)]
    token: String,
}

fn cors(origin: &str, mut response: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(origin) {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        response.headers_mut().insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// CORS preflight of an upload.
#[utoipa::path(
    options,
    path = "/chat/upload",
    tag = "webchat",
    params(("Origin" = String, Header, description = "The page's origin; must be in `allowed_origins`.")),
    responses(
        (status = 204, description = "Allowed: `POST` with `content-type` and `x-filename`, for the origin."),
        (status = 403, description = "An origin not allowed.", body = Object),
    )
)]
async fn preflight(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(origin) = allowed_origin(&shared, &headers) else { return foreign_origin() };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, x-filename"));
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    cors(origin, response)
}

/// A visitor's file, stored in `sb_attachments`; its reference goes into the next message.
#[utoipa::path(
    post,
    path = "/chat/upload",
    tag = "webchat",
    security(("webchatSession" = [])),
    params(
        TokenQuery,
        ("Origin" = String, Header, description = "The page's origin; must be in `allowed_origins`."),
        ("x-filename" = Option<String>, Header, description = "The file's name (percent-encoded)."),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes (any `Content-Type`)."),
    responses(
        (status = 200, description = "Stored: `{\"ref\": AttachmentRef}` (`envelope/1`'s attachment reference).", body = Object),
        (status = 400, description = "An empty file.", body = Object),
        (status = 401, description = "Not a session token of this chat.", body = Object),
        (status = 403, description = "An origin not allowed; `code: send_first`: the session used its uploads before a first message (`uploads_before_message`); `code: upload_limit`: it used its byte budget (`session_upload_bytes`).", body = Object),
        (status = 413, description = "Over `max_upload_bytes`.", body = Object),
        (status = 429, description = "`code: rate_limited`: over `ip_uploads_per_minute` or `uploads_per_minute`; `Retry-After` says when to try again.", body = Object),
        (status = 503, description = "`code: unavailable`: not stored; try again.", body = Object),
        (status = 507, description = "`code: storage_full`: the attachments store is at its budget (`nats.store_max_bytes.sb_attachments`).", body = Object),
    )
)]
async fn upload(
    State(shared): State<Arc<Shared>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(origin) = allowed_origin(&shared, &headers).map(str::to_string) else { return foreign_origin() };
    let Some(session) = shared.sessions.verify(&q.token) else {
        return cors(&origin, refuse(StatusCode::UNAUTHORIZED, "not a session token of this chat"));
    };
    let ip = shared.client_ip(peer.map(|Extension(ConnectInfo(p))| p), &headers);
    if let Err(retry_after_secs) = shared.check_ip_upload_rate(ip) {
        return cors(&origin, refused_upload(&quota::Refusal::RateLimited { retry_after_secs }));
    }
    // Read only now, so that a request without a session or over its address's rate is refused
    // before up to max_upload_bytes of it are buffered.
    let Ok(body) = axum::body::to_bytes(body, shared.cfg.max_upload_bytes).await else {
        return cors(&origin, refuse(StatusCode::PAYLOAD_TOO_LARGE, "the file is too large"));
    };
    if body.is_empty() {
        return cors(&origin, refuse(StatusCode::BAD_REQUEST, "the file is empty"));
    }
    let size = body.len() as u64;
    // The store's room first, then the session's count: a refusal at either changes nothing.
    if let Err(refusal) = quota::check_store_room(&shared, size).await {
        return cors(&origin, refused_upload(&refusal));
    }
    if let Err(refusal) = quota::reserve(&shared, &session, size).await {
        return cors(&origin, refused_upload(&refusal));
    }
    let filename = headers
        .get("x-filename")
        .and_then(|v| v.to_str().ok())
        .map(upload::decode_filename)
        .unwrap_or_else(|| "file".into());
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() < 128)
        .unwrap_or("application/octet-stream")
        .to_string();
    let object = format!("{}{}", upload::object_prefix(&session), uuid::Uuid::new_v4().simple());
    let stored = async {
        let bus = shared.bus().map_err(|e| e.to_string())?;
        let store = bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.map_err(|e| e.to_string())?;
        store.put(object.as_str(), &mut body.as_ref()).await.map_err(|e| e.to_string())
    };
    if let Err(e) = stored.await {
        quota::release(&shared, &session, size).await;
        let refusal = if quota::is_full(&e) { quota::Refusal::StorageFull } else { quota::Refusal::Unavailable(e) };
        return cors(&origin, refused_upload(&refusal));
    }
    let reference = AttachmentRef { object, filename, content_type, size: body.len() as u64, skipped: None };
    cors(&origin, Json(json!({ "ref": reference })).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SigQuery {
    /// The link's signature, from the transcript.
    // Absent is answered like a wrong signature (404, JSON), not with axum's plain-text 400.
    #[serde(default)]
    #[param(required = true)]
    sig: String,
}

/// A file of a session, by a signed link from its transcript.
#[utoipa::path(
    get,
    path = "/chat/files/{session}/{file}",
    tag = "webchat",
    security(("webchatFileLink" = [])),
    params(
        ("session" = String, Path, description = "The web-chat session."),
        ("file" = String, Path, description = "The file's object name within the session."),
        SigQuery,
    ),
    responses(
        (status = 200, description = "The file, as an attachment (`nosniff`).", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, description = "No such file, or a wrong signature (the same answer).", body = Object),
    )
)]
async fn file(
    State(shared): State<Arc<Shared>>,
    Path((session, file)): Path<(String, String)>,
    Query(q): Query<SigQuery>,
) -> Response {
    let object = format!("{}{file}", upload::object_prefix(&session));
    if !upload::verify_link(&shared.sessions, &object, &q.sig) {
        return refuse(StatusCode::NOT_FOUND, "no such file");
    }
    let read = async {
        let bus = shared.bus().map_err(|e| e.to_string())?;
        let store = bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.map_err(|e| e.to_string())?;
        let mut reader = store.get(object.as_str()).await.map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(bytes)
    };
    match read.await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CONTENT_DISPOSITION, "attachment"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            warn!(error = %e, "web-chat file not read");
            refuse(StatusCode::NOT_FOUND, "no such file")
        }
    }
}
