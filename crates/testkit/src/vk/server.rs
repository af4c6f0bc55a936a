//! The HTTP side of the fake VK: `/method/<name>` (form POSTs), the Long Poll server `/lp`,
//! upload servers `/upload/<kind>/<n>` and files `/files/<name>`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

use super::{Shared, State, VkCall, VkSent, VkUpload};

/// `ts` values start here, so a client cannot get away with assuming they start at 0.
const TS_BASE: usize = 100;

#[derive(Clone)]
struct Fake {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

pub(super) fn app(shared: Arc<Shared>, addr: SocketAddr) -> Router {
    Router::new()
        .route("/method/{method}", any(method))
        .route("/lp", get(a_check))
        .route("/upload/{kind}/{n}", post(upload))
        .route("/files/{name}", get(file))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(Fake { shared, addr })
}

fn form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    std::str::from_utf8(body)
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// VK's documented error body.
fn error(method: &str, params: &HashMap<String, String>, code: i64) -> Value {
    let msg = match code {
        5 => "User authorization failed: invalid access_token (4).",
        6 => "Too many requests per second",
        9 => "Flood control",
        10 => "Internal server error",
        100 => "One of the parameters specified was missing or invalid",
        901 => "Can't send messages for users without permission",
        911 => "Keyboard format is invalid",
        914 => "Message is too long",
        _ => "Unknown error occurred",
    };
    let mut request_params = vec![json!({ "key": "method", "value": method }), json!({ "key": "oauth", "value": "1" })];
    for (k, v) in params {
        if k != "access_token" && k != "message" {
            request_params.push(json!({ "key": k, "value": v }));
        }
    }
    json!({ "error": { "error_code": code, "error_msg": msg, "request_params": request_params } })
}

async fn method(
    AxumState(fake): AxumState<Fake>,
    Path(method): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut params = query;
    params.extend(form(&body));
    let answer = {
        let mut s = fake.shared.lock();
        let answer = call(&fake, &mut s, &method, &params);
        let code = answer.get("error").and_then(|e| e["error_code"].as_i64());
        let mut logged = params.clone();
        logged.remove("access_token");
        s.calls.push(VkCall { method: method.clone(), params: logged, error: code });
        answer
    };
    fake.shared.updated();
    // VK answers errors with HTTP 200 too.
    axum::Json(answer).into_response()
}

fn call(fake: &Fake, s: &mut State, method: &str, p: &HashMap<String, String>) -> Value {
    let shared = &fake.shared;
    if p.get("access_token") != Some(&shared.token) || s.token_revoked {
        return error(method, p, 5);
    }
    if p.get("v").is_none_or(String::is_empty) {
        return error(method, p, 100);
    }
    if let Some(code) = s.failures.get_mut(method).and_then(|q| q.pop_front()) {
        return error(method, p, code);
    }
    let peer = p.get("peer_id").and_then(|v| v.parse::<i64>().ok());
    let ok = |v: Value| json!({ "response": v });
    match method {
        "groups.getLongPollServer" => {
            if p.get("group_id").and_then(|g| g.parse::<u64>().ok()) != Some(shared.group_id) {
                return error(method, p, 100);
            }
            ok(json!({ "key": format!("key{}", s.key), "server": format!("http://{}/lp", fake.addr),
                        "ts": (s.events.len() + TS_BASE).to_string() }))
        }
        "messages.send" => {
            let Some(peer) = peer else { return error(method, p, 100) };
            let Some(random_id) = p.get("random_id").and_then(|r| r.parse::<i64>().ok()) else {
                return error(method, p, 100);
            };
            if let Some(id) = s.random_ids.get(&(peer, random_id)) {
                // VK's idempotency: the first message's id, nothing new.
                return ok(json!(id));
            }
            if s.denied.contains(&peer) {
                return error(method, p, 901);
            }
            let text = p.get("message").cloned().unwrap_or_default();
            let attachments: Vec<String> = p
                .get("attachment")
                .map(|a| a.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            if text.trim().is_empty() && attachments.is_empty() {
                return error(method, p, 100);
            }
            if text.chars().count() > 4096 {
                return error(method, p, 914);
            }
            let keyboard = match p.get("keyboard").map(|k| serde_json::from_str::<Value>(k)) {
                Some(Ok(k)) if keyboard_ok(&k) => Some(k),
                Some(_) => return error(method, p, 911),
                None => None,
            };
            let forward = p.get("forward").and_then(|f| serde_json::from_str(f).ok());
            let id = s.next_id();
            s.random_ids.insert((peer, random_id), id);
            s.sent.push(VkSent { id, peer_id: peer, random_id, text, attachments, keyboard, forward });
            ok(json!(id))
        }
        "photos.getMessagesUploadServer" | "docs.getMessagesUploadServer" => {
            let kind = if method.starts_with("photos") { "photo" } else { "doc" };
            let n = s.next_id();
            ok(
                json!({ "upload_url": format!("http://{}/upload/{kind}/{n}", fake.addr), "album_id": -3, "group_id": shared.group_id }),
            )
        }
        "photos.saveMessagesPhoto" => {
            let Some(n) = p
                .get("photo")
                .and_then(|ph| serde_json::from_str::<Value>(ph).ok())
                .and_then(|v| v[0]["upload"].as_u64())
            else {
                return error(method, p, 100);
            };
            saved(s, method, p, n as usize, "photo")
        }
        "docs.save" => {
            let Some(n) = p.get("file").and_then(|f| f.strip_prefix("file")).and_then(|n| n.parse::<usize>().ok())
            else {
                return error(method, p, 100);
            };
            saved(s, method, p, n, "doc")
        }
        _ => error(method, p, 3),
    }
}

/// Saves upload `n` (an index into the uploads) once; the save method's answer.
fn saved(s: &mut State, method: &str, p: &HashMap<String, String>, n: usize, kind: &str) -> Value {
    let id = s.next_id();
    let Some(upload) = s.uploads.get_mut(n).filter(|u| u.kind == kind && u.attachment.is_none()) else {
        return error(method, p, 100);
    };
    let owner = -1;
    if kind == "photo" {
        upload.attachment = Some(format!("photo{owner}_{id}_pk{id}"));
        json!({ "response": [ { "id": id, "owner_id": owner, "access_key": format!("pk{id}"), "album_id": -3,
                                 "sizes": [ { "type": "x", "width": 604, "height": 453, "url": "https://sun.userapi.com/x.jpg" } ] } ] })
    } else {
        upload.attachment = Some(format!("doc{owner}_{id}"));
        let title = p.get("title").cloned().unwrap_or_else(|| upload.filename.clone());
        json!({ "response": { "type": "doc", "doc": { "id": id, "owner_id": owner, "title": title, "size": upload.bytes.len(),
                                                     "ext": "bin", "url": "https://vk.com/doc-1" } } })
    }
}

/// VK's rules for an inline keyboard: at most 6 rows of at most 5 buttons, payloads within 255 bytes.
fn keyboard_ok(k: &Value) -> bool {
    let Some(rows) = k["buttons"].as_array() else { return false };
    let inline = k["inline"] == true;
    let (max_rows, max_cols) = if inline { (6, 5) } else { (10, 5) };
    rows.len() <= max_rows
        && rows.iter().all(|r| {
            r.as_array().is_some_and(|b| {
                !b.is_empty()
                    && b.len() <= max_cols
                    && b.iter().all(|b| {
                        b["action"]["type"].is_string()
                            && b["action"]["payload"].as_str().is_none_or(|p| p.len() <= 255)
                            && b["action"]["label"].as_str().is_none_or(|l| l.chars().count() <= 40)
                    })
            })
        })
}

async fn a_check(AxumState(fake): AxumState<Fake>, Query(q): Query<HashMap<String, String>>) -> Response {
    let wait = q.get("wait").and_then(|w| w.parse::<u64>().ok()).unwrap_or(25).min(90);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut changed = fake.shared.changed.subscribe();
    loop {
        let answer = {
            let mut s = fake.shared.lock();
            let end = s.events.len() + TS_BASE;
            if q.get("act").map(String::as_str) != Some("a_check") {
                Some(json!({ "failed": 2 }))
            } else if let Some(code) = s.inject.pop_front() {
                s.a_checks += 1;
                match code {
                    1 => Some(json!({ "failed": 1, "ts": end.to_string() })),
                    c => {
                        s.key += 1;
                        Some(json!({ "failed": c }))
                    }
                }
            } else if q.get("key") != Some(&format!("key{}", s.key)) {
                s.a_checks += 1;
                Some(json!({ "failed": 2 }))
            } else {
                match q.get("ts").and_then(|t| t.parse::<usize>().ok()) {
                    Some(ts) if (TS_BASE..=end).contains(&ts) => {
                        let updates: Vec<Value> = s.events[ts - TS_BASE..].to_vec();
                        if updates.is_empty() && tokio::time::Instant::now() < deadline {
                            None
                        } else {
                            s.a_checks += 1;
                            Some(json!({ "ts": end.to_string(), "updates": updates }))
                        }
                    }
                    _ => {
                        s.a_checks += 1;
                        Some(json!({ "failed": 1, "ts": end.to_string() }))
                    }
                }
            }
        };
        if let Some(answer) = answer {
            fake.shared.updated();
            return axum::Json(answer).into_response();
        }
        let _ = tokio::time::timeout_at(deadline, changed.changed()).await;
    }
}

async fn upload(
    AxumState(fake): AxumState<Fake>,
    Path((kind, _n)): Path<(String, u64)>,
    mut multipart: Multipart,
) -> Response {
    let field_name = if kind == "photo" { "photo" } else { "file" };
    let mut got = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(field_name) {
            let filename = field.file_name().unwrap_or_default().to_string();
            let bytes = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            got = Some((filename, bytes));
        }
    }
    let Some((filename, bytes)) = got.filter(|(_, b)| !b.is_empty()) else {
        return axum::Json(json!({ "error": "no file" })).into_response();
    };
    let answer = {
        let mut s = fake.shared.lock();
        let n = s.uploads.len();
        s.uploads.push(VkUpload { kind: kind.clone(), filename, bytes, attachment: None });
        if kind == "photo" {
            json!({ "server": 840_123, "photo": json!([{ "upload": n, "photo": "abc" }]).to_string(), "hash": format!("h{n}") })
        } else {
            json!({ "file": format!("file{n}") })
        }
    };
    fake.shared.updated();
    axum::Json(answer).into_response()
}

async fn file(AxumState(fake): AxumState<Fake>, Path(name): Path<String>) -> Response {
    match fake.shared.lock().files.get(&name) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
