//! The HTTP side of the fake Slack: `/api/<method>`, the upload URL, private file downloads and
//! the Socket Mode upgrade.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State as AxumState, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::{ApiCall, FAKE_BOT_ID, FAKE_BOT_USER_ID, FAKE_TEAM_ID, Message, Shared, State, Upload, socket};

/// Slack's limits a message's blocks are checked against.
const MAX_BLOCKS: usize = 50;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_BUTTON_TEXT: usize = 75;
const MAX_BUTTON_VALUE: usize = 2000;
const MAX_MESSAGE_TEXT: usize = 40_000;

#[derive(Clone)]
struct Fake {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

/// A message `ts` for the fake's counter `n`: seconds, a dot, six digits, as Slack's.
pub(super) fn ts(n: u64) -> String {
    format!("{}.{:06}", 1_760_000_000 + n / 1000, n % 1_000_000)
}

pub(super) fn app(shared: Arc<Shared>, addr: SocketAddr) -> Router {
    let fake = Fake { shared, addr };
    Router::new()
        .route("/api/{method}", post(method))
        .route("/upload/{id}", post(upload))
        .route("/files/{id}/{name}", get(download))
        .route("/socket", get(socket_upgrade))
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(fake)
}

/// The bearer token of a request, or its `token` argument.
fn token(headers: &HeaderMap, args: &Value) -> Option<String> {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    bearer.map(str::to_string).or_else(|| args["token"].as_str().map(str::to_string))
}

/// The arguments: a JSON body, or a form's fields as strings (Slack takes both).
fn args(headers: &HeaderMap, body: &[u8]) -> Result<Value, &'static str> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if ct.starts_with("application/json") {
        return serde_json::from_slice(body).map_err(|_| "invalid_json");
    }
    let mut map = Map::new();
    for (k, v) in form_urlencoded(body) {
        map.insert(k, Value::String(v));
    }
    Ok(Value::Object(map))
}

fn form_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex =
                        std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
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
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A JSON-or-string argument (`blocks` may come as a JSON string in a form).
fn json_arg(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) => serde_json::from_str(s).ok(),
        Value::Null => None,
        other => Some(other.clone()),
    }
}

async fn method(
    AxumState(fake): AxumState<Fake>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let args = match args(&headers, &body) {
        Ok(a) => a,
        Err(e) => return answer(&fake, &method, Value::Null, Err(e.into())),
    };
    let wanted = if method == "apps.connections.open" { &fake.shared.app_token } else { &fake.shared.bot_token };
    match token(&headers, &args) {
        None => return answer(&fake, &method, args, Err("not_authed".into())),
        Some(t) if &t != wanted => return answer(&fake, &method, args, Err("invalid_auth".into())),
        Some(_) => {}
    }
    let limited = {
        let mut state = fake.shared.lock();
        match state.limits.get_mut(&method) {
            Some((left, after, only)) if *left > 0 && only.as_ref().is_none_or(|c| args["channel"] == c.as_str()) => {
                *left -= 1;
                Some(*after)
            }
            _ => None,
        }
    };
    if let Some(after) = limited {
        record(&fake, &method, args, false, Some("ratelimited".into()));
        let body = json!({ "ok": false, "error": "ratelimited" }).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, after.to_string()), (header::CONTENT_TYPE, "application/json".into())],
            body,
        )
            .into_response();
    }
    let result = {
        let mut state = fake.shared.lock();
        match state.failures.get_mut(&method) {
            Some((left, error)) if *left > 0 => {
                *left -= 1;
                Err(error.clone())
            }
            _ => call(&mut state, fake.addr, &method, &args),
        }
    };
    answer(&fake, &method, args, result)
}

fn record(fake: &Fake, method: &str, args: Value, ok: bool, error: Option<String>) {
    fake.shared.lock().calls.push(ApiCall { method: method.into(), args, ok, error });
    fake.shared.updated();
}

fn answer(fake: &Fake, method: &str, args: Value, result: Result<Value, String>) -> Response {
    let body = match result {
        Ok(mut v) => {
            record(fake, method, args, true, None);
            v["ok"] = json!(true);
            v
        }
        Err(e) => {
            record(fake, method, args, false, Some(e.clone()));
            json!({ "ok": false, "error": e })
        }
    };
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn str_arg<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args[key].as_str().filter(|s| !s.is_empty())
}

fn call(state: &mut State, addr: SocketAddr, method: &str, args: &Value) -> Result<Value, String> {
    match method {
        "auth.test" => Ok(json!({ "url": "https://fake.slack.com/", "team": "Fake", "user": "switchboard",
                                   "team_id": FAKE_TEAM_ID, "user_id": FAKE_BOT_USER_ID, "bot_id": FAKE_BOT_ID })),
        "conversations.open" => {
            let users = str_arg(args, "users").ok_or("users_list_not_supplied")?;
            if users.contains(',') {
                return Err("method_not_supported_for_channel_type".into());
            }
            if !users.starts_with('U') && !users.starts_with('W') {
                return Err("user_not_found".into());
            }
            let id = state.dms.entry(users.into()).or_insert_with(|| super::FakeSlack::dm_id_for(users)).clone();
            Ok(json!({ "channel": { "id": id } }))
        }
        "chat.postMessage" => {
            let channel = str_arg(args, "channel").ok_or("channel_not_found")?.to_string();
            if !state.dms.values().any(|d| *d == channel) && !state.channels.contains(&channel) {
                return Err("channel_not_found".into());
            }
            let (text, blocks) = content(args)?;
            let thread_ts = str_arg(args, "thread_ts").map(str::to_string);
            if let Some(t) = &thread_ts
                && !state.messages.iter().any(|m| m.channel == channel && &m.ts == t)
            {
                return Err("thread_not_found".into());
            }
            let ts = ts(state.next_id());
            state.messages.push(Message {
                channel: channel.clone(),
                ts: ts.clone(),
                thread_ts,
                text: text.clone(),
                blocks: blocks.clone(),
                earlier: Vec::new(),
                user: None,
                files: Vec::new(),
            });
            Ok(json!({ "channel": channel, "ts": ts,
                       "message": { "type": "message", "text": text, "blocks": blocks, "ts": ts,
                                    "user": FAKE_BOT_USER_ID, "bot_id": FAKE_BOT_ID } }))
        }
        "chat.update" => {
            let channel = str_arg(args, "channel").ok_or("channel_not_found")?.to_string();
            let ts = str_arg(args, "ts").ok_or("message_not_found")?.to_string();
            let (text, blocks) = content(args)?;
            let message = state
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts && m.user.is_none())
                .ok_or("message_not_found")?;
            let old = message.rendered();
            message.earlier.push(old);
            message.text = text.clone();
            if blocks.is_some() || args.get("blocks").is_some() {
                message.blocks = blocks;
            }
            Ok(json!({ "channel": channel, "ts": ts, "text": text }))
        }
        "files.getUploadURLExternal" => {
            let filename = str_arg(args, "filename").ok_or("invalid_arguments")?.to_string();
            let length: u64 = args["length"]
                .as_str()
                .and_then(|l| l.parse().ok())
                .or(args["length"].as_u64())
                .filter(|&l| l > 0)
                .ok_or("invalid_arguments")?;
            let id = format!("F{:08}", state.next_id());
            state.uploads.push(Upload { id: id.clone(), filename, bytes: Vec::new(), channel: None, thread_ts: None });
            let _ = length;
            Ok(json!({ "upload_url": format!("http://{addr}/upload/{id}"), "file_id": id }))
        }
        "files.completeUploadExternal" => {
            let files = json_arg(&args["files"]).and_then(|f| f.as_array().cloned()).ok_or("invalid_arguments")?;
            let channel = str_arg(args, "channel_id").map(str::to_string);
            let thread_ts = str_arg(args, "thread_ts").map(str::to_string);
            let mut names = Vec::new();
            for f in &files {
                let id = f["id"].as_str().unwrap_or_default();
                let upload = state.uploads.iter_mut().find(|u| u.id == id).ok_or("file_not_found")?;
                if upload.bytes.is_empty() {
                    return Err("file_not_found".into());
                }
                (upload.channel, upload.thread_ts) = (channel.clone(), thread_ts.clone());
                names.push(upload.filename.clone());
            }
            if let Some(channel) = &channel {
                let ts = ts(state.next_id());
                let text = args["initial_comment"].as_str().unwrap_or_default().to_string();
                state.messages.push(Message {
                    channel: channel.clone(),
                    ts,
                    thread_ts,
                    text,
                    blocks: None,
                    earlier: Vec::new(),
                    user: None,
                    files: names,
                });
            }
            Ok(json!({ "files": files }))
        }
        "apps.connections.open" => {
            let n = state.next_id();
            Ok(json!({ "url": format!("ws://{addr}/socket?ticket={n}") }))
        }
        _ => Err("unknown_method".into()),
    }
}

/// A message's `text` and `blocks`, checked against Slack's limits.
fn content(args: &Value) -> Result<(String, Option<Value>), String> {
    let text = args["text"].as_str().unwrap_or_default().to_string();
    let blocks = json_arg(&args["blocks"]);
    if text.is_empty() && blocks.is_none() {
        return Err("no_text".into());
    }
    if text.chars().count() > MAX_MESSAGE_TEXT {
        return Err("msg_too_long".into());
    }
    if let Some(blocks) = &blocks {
        let list = blocks.as_array().ok_or("invalid_blocks_format")?;
        if list.len() > MAX_BLOCKS {
            return Err("invalid_blocks".into());
        }
        for b in list {
            match b["type"].as_str() {
                Some("section") => {
                    let t = b["text"]["text"].as_str().ok_or("invalid_blocks")?;
                    if t.is_empty() || t.chars().count() > MAX_SECTION_TEXT {
                        return Err("invalid_blocks".into());
                    }
                }
                Some("actions") => {
                    for e in b["elements"].as_array().ok_or("invalid_blocks")? {
                        let label = e["text"]["text"].as_str().unwrap_or_default();
                        let value = e["value"].as_str().unwrap_or_default();
                        if label.is_empty() || label.chars().count() > MAX_BUTTON_TEXT || value.len() > MAX_BUTTON_VALUE
                        {
                            return Err("invalid_blocks".into());
                        }
                        if e["action_id"].as_str().is_none_or(|a| a.is_empty() || a.len() > 255) {
                            return Err("invalid_blocks".into());
                        }
                    }
                }
                Some("context" | "divider" | "header") => {}
                _ => return Err("invalid_blocks".into()),
            }
        }
    }
    Ok((text, blocks))
}

async fn upload(AxumState(fake): AxumState<Fake>, Path(id): Path<String>, body: Bytes) -> Response {
    let mut state = fake.shared.lock();
    let Some(u) = state.uploads.iter_mut().find(|u| u.id == id) else {
        return (StatusCode::NOT_FOUND, "no such upload").into_response();
    };
    u.bytes = body.to_vec();
    drop(state);
    fake.shared.updated();
    (StatusCode::OK, format!("OK - {}", body.len())).into_response()
}

async fn download(
    AxumState(fake): AxumState<Fake>,
    Path((id, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if token(&headers, &Value::Null).as_deref() != Some(fake.shared.bot_token.as_str()) {
        // Slack answers a file request without the token with its sign-in page.
        return (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "<html>sign in</html>").into_response();
    }
    match fake.shared.lock().files.get(&id) {
        Some(bytes) => (StatusCode::OK, bytes.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn socket_upgrade(AxumState(fake): AxumState<Fake>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |ws| socket::serve(fake.shared, ws))
}
