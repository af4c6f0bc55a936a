//! The HTTP side of the fake Graph API.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{GraphCall, GraphFault, SentWhatsApp, Shared, WhatsAppUpload, now};

/// The customer service window: 24 hours.
const WINDOW_SECS: i64 = 24 * 3600;

#[derive(Clone)]
struct Fake {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

pub(super) fn app(shared: Arc<Shared>, addr: SocketAddr) -> Router {
    Router::new()
        .route("/{version}/{id}/messages", post(messages))
        .route("/{version}/{id}/media", post(upload))
        .route("/{version}/{id}", get(media_url))
        .route("/download/{id}", get(download))
        .layer(DefaultBodyLimit::max(128 * 1024 * 1024))
        .with_state(Fake { shared, addr })
}

fn authorized(fake: &Fake, headers: &HeaderMap) -> bool {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    bearer == Some(fake.shared.token.as_str())
}

/// Records the call and answers `result` (a JSON body, or a fault in the documented shape).
fn answer(fake: &Fake, method: &str, path: String, result: Result<Value, GraphFault>) -> Response {
    let mut state = fake.shared.lock();
    let trace = state.next_id();
    let (status, code, body) = match result {
        Ok(v) => (200, None, v),
        Err(f) => (f.status, Some(f.code), f.body(trace)),
    };
    state.calls.push(GraphCall { method: method.into(), path, status, code });
    drop(state);
    fake.shared.updated();
    (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), axum::Json(body)).into_response()
}

fn check_version(version: &str) -> Result<(), GraphFault> {
    let ok = version
        .strip_prefix('v')
        .is_some_and(|v| v.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())));
    if ok { Ok(()) } else { Err(GraphFault::new(400, 2500, "Unknown path components")) }
}

fn invalid(details: &str) -> GraphFault {
    GraphFault { details: details.into(), ..GraphFault::new(400, 100, "Invalid parameter") }
}

async fn messages(
    AxumState(fake): AxumState<Fake>,
    Path((version, phone)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/{version}/{phone}/messages");
    let result = send(&fake, &version, &phone, &headers, &body);
    answer(&fake, "POST", path, result)
}

fn send(fake: &Fake, version: &str, phone: &str, headers: &HeaderMap, body: &[u8]) -> Result<Value, GraphFault> {
    check_version(version)?;
    if !authorized(fake, headers) {
        return Err(GraphFault::new(401, 190, "Invalid OAuth access token - Cannot parse access token"));
    }
    if phone != fake.shared.phone_number_id {
        return Err(invalid("Unsupported post request: unknown phone number id"));
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| invalid("the body is not JSON"))?;
    if v["messaging_product"] != "whatsapp" {
        return Err(invalid("The parameter messaging_product is required."));
    }
    let to = v["to"].as_str().filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'+'));
    let to = to.ok_or_else(|| invalid("Param to must be a phone number"))?.trim_start_matches('+').to_string();
    let kind = v["type"].as_str().unwrap_or("text").to_string();
    let mut state = fake.shared.lock();
    match kind.as_str() {
        "text" => {
            let text = v["text"]["body"].as_str().unwrap_or_default();
            if text.is_empty() || text.chars().count() > 4096 {
                return Err(invalid("Param text['body'] must be between 1 and 4096 characters long"));
            }
        }
        "image" | "video" | "audio" | "document" | "sticker" => {
            let media = &v[kind.as_str()];
            match (media["id"].as_str(), media["link"].as_str()) {
                (Some(id), None) if state.uploads.iter().any(|u| u.id == id) => {}
                (Some(_), None) => return Err(GraphFault::new(400, 131053, "Media upload error: unknown media id")),
                (None, Some(link)) if link.starts_with("https://") || link.starts_with("http://") => {}
                _ => return Err(invalid(&format!("Param {kind} must have exactly one of id and link"))),
            }
        }
        "template" => {
            let name = v["template"]["name"].as_str().unwrap_or_default();
            if v["template"]["language"]["code"].as_str().is_none_or(str::is_empty) {
                return Err(invalid("Param template['language']['code'] is required"));
            }
            if !state.templates.iter().any(|t| t == name) {
                return Err(GraphFault::new(404, 132001, "Template name does not exist in the translation"));
            }
        }
        "location" | "contacts" | "interactive" | "reaction" => {}
        other => return Err(invalid(&format!("Unknown message type {other}"))),
    }
    if let Some(i) = state.faults.iter().position(|(_, left, _)| *left > 0) {
        let (skip, _, fault) = &mut state.faults[i];
        if *skip > 0 {
            *skip -= 1;
        } else {
            let fault = fault.clone();
            state.faults[i].1 -= 1;
            return Err(fault);
        }
    }
    let window_open = state.last_inbound.get(&to).is_some_and(|at| now() - at < WINDOW_SECS);
    if kind != "template" && !window_open {
        return Err(GraphFault {
            details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number.".into(),
            subcode: Some(2494010),
            ..GraphFault::new(400, 131047, "Re-engagement message")
        });
    }
    let n = state.next_id();
    let wamid = format!("wamid.HBgLRkFLRS1TRU5U{n:012}AA==");
    state.sent.push(SentWhatsApp {
        to: to.clone(),
        kind: kind.clone(),
        wamid: wamid.clone(),
        text: v["text"]["body"].as_str().map(str::to_string),
        reply_to: v["context"]["message_id"].as_str().map(str::to_string),
        callback: v["biz_opaque_callback_data"].as_str().map(str::to_string),
        body: v.clone(),
    });
    Ok(json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": v["to"], "wa_id": to }],
        "messages": [{ "id": wamid, "message_status": "accepted" }],
    }))
}

async fn upload(
    AxumState(fake): AxumState<Fake>,
    Path((version, phone)): Path<(String, String)>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let path = format!("/{version}/{phone}/media");
    let result = take_upload(&fake, &version, &phone, &headers, multipart).await;
    answer(&fake, "POST", path, result)
}

async fn take_upload(
    fake: &Fake,
    version: &str,
    phone: &str,
    headers: &HeaderMap,
    mut multipart: Multipart,
) -> Result<Value, GraphFault> {
    check_version(version)?;
    if !authorized(fake, headers) {
        return Err(GraphFault::new(401, 190, "Invalid OAuth access token - Cannot parse access token"));
    }
    if phone != fake.shared.phone_number_id {
        return Err(invalid("Unsupported post request: unknown phone number id"));
    }
    let (mut product, mut mime, mut file) = (None, None, None);
    while let Ok(Some(field)) = multipart.next_field().await {
        match field.name().unwrap_or_default() {
            "messaging_product" => product = field.text().await.ok(),
            "type" => mime = field.text().await.ok(),
            "file" => {
                let name = field.file_name().map(str::to_string);
                file = field.bytes().await.ok().map(|b| (name, b.to_vec()));
            }
            _ => {}
        }
    }
    if product.as_deref() != Some("whatsapp") {
        return Err(invalid("The parameter messaging_product is required."));
    }
    let (Some(mime), Some((filename, bytes))) = (mime, file) else {
        return Err(invalid("The parameters file and type are required."));
    };
    let mut state = fake.shared.lock();
    let id = format!("{}", 9_000_000_000_000u64 + state.next_id());
    state.uploads.push(WhatsAppUpload { id: id.clone(), mime_type: mime, filename, bytes });
    Ok(json!({ "id": id }))
}

async fn media_url(
    AxumState(fake): AxumState<Fake>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{version}/{id}");
    let result = (|| {
        check_version(&version)?;
        if !authorized(&fake, &headers) {
            return Err(GraphFault::new(401, 190, "Invalid OAuth access token - Cannot parse access token"));
        }
        if id == fake.shared.phone_number_id {
            return Ok(json!({
                "verified_name": "Switchboard Test", "display_phone_number": "+1 555-078-3881",
                "id": id, "quality_rating": "GREEN",
            }));
        }
        let state = fake.shared.lock();
        let Some((mime, bytes)) = state.media.get(&id) else {
            return Err(GraphFault::new(
                400,
                100,
                "Unsupported get request. Object with ID does not exist, cannot be loaded due to missing permissions, or does not support this operation",
            ));
        };
        Ok(json!({
            "messaging_product": "whatsapp",
            "url": format!("http://{}/download/{id}", fake.addr),
            "mime_type": mime,
            "sha256": "bm90IGNoZWNrZWQ=",
            "file_size": bytes.len(),
            "id": id,
        }))
    })();
    answer(&fake, "GET", path, result)
}

async fn download(AxumState(fake): AxumState<Fake>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let found = fake.shared.lock().media.get(&id).cloned();
    let status = match (&found, authorized(&fake, &headers)) {
        (_, false) => StatusCode::UNAUTHORIZED,
        (None, true) => StatusCode::NOT_FOUND,
        (Some(_), true) => StatusCode::OK,
    };
    fake.shared.lock().calls.push(GraphCall {
        method: "GET".into(),
        path: format!("/download/{id}"),
        status: status.as_u16(),
        code: None,
    });
    fake.shared.updated();
    match (status, found) {
        (StatusCode::OK, Some((mime, bytes))) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, mime)], bytes).into_response()
        }
        (status, _) => status.into_response(),
    }
}
