//! A plain Matrix client for tests (reqwest against the client-server API): it plays the agent
//! or an admin next to the code under test, and reads rooms back for assertions and transcripts.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::MatrixUser;

/// One user's client on the test homeserver.
#[derive(Clone)]
pub struct MatrixTestClient {
    url: String,
    /// Whose client it is.
    pub user: MatrixUser,
    http: reqwest::Client,
    since: Arc<Mutex<Option<String>>>,
    invited: Arc<Mutex<BTreeSet<String>>>,
}

fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl MatrixTestClient {
    /// A client for `user` on the homeserver at `url`.
    pub fn new(url: &str, user: &MatrixUser) -> MatrixTestClient {
        MatrixTestClient {
            url: url.into(),
            user: user.clone(),
            http: reqwest::Client::new(),
            since: Arc::default(),
            invited: Arc::default(),
        }
    }

    /// One call; panics on a transport error, returns the JSON (errors included) otherwise.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.user.access_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        answer.json().await.unwrap_or(Value::Null)
    }

    /// Rooms the user is invited to and has not joined. Synced on from the last position:
    /// Synapse caches a sync's answer for its request, so a repeated initial sync is stale.
    pub async fn invites(&self) -> Vec<String> {
        let since = self.since.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let path = match &since {
            Some(since) => format!("/_matrix/client/v3/sync?timeout=0&since={}", seg(since)),
            None => "/_matrix/client/v3/sync?timeout=0".to_string(),
        };
        let sync = self.call(reqwest::Method::GET, &path, None).await;
        let mut invited = self.invited.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rooms) = sync["rooms"]["invite"].as_object() {
            invited.extend(rooms.keys().cloned());
        }
        for section in ["join", "leave"] {
            if let Some(rooms) = sync["rooms"][section].as_object() {
                invited.retain(|r| !rooms.contains_key(r));
            }
        }
        if let Some(next) = sync["next_batch"].as_str() {
            *self.since.lock().unwrap_or_else(|p| p.into_inner()) = Some(next.to_string());
        }
        invited.iter().cloned().collect()
    }

    /// Joins `room`.
    pub async fn join(&self, room: &str) -> Value {
        self.call(reqwest::Method::POST, &format!("/_matrix/client/v3/join/{}", seg(room)), Some(json!({}))).await
    }

    /// Creates a room; its id.
    pub async fn create_room(&self, body: Value) -> String {
        let v = self.call(reqwest::Method::POST, "/_matrix/client/v3/createRoom", Some(body)).await;
        v["room_id"].as_str().unwrap_or_else(|| panic!("createRoom: {v}")).to_string()
    }

    /// Sends an event; its id.
    pub async fn send(&self, room: &str, kind: &str, content: Value) -> String {
        let txn = uuid_like();
        let path = format!("/_matrix/client/v3/rooms/{}/send/{}/{txn}", seg(room), seg(kind));
        let v = self.call(reqwest::Method::PUT, &path, Some(content)).await;
        v["event_id"].as_str().unwrap_or_else(|| panic!("send {kind}: {v}")).to_string()
    }

    /// A text message in the thread rooted at `root` (as Element sends one), or at the top.
    pub async fn say(&self, room: &str, text: &str, root: Option<&str>) -> String {
        let mut content = json!({ "msgtype": "m.text", "body": text });
        if let Some(root) = root {
            content["m.relates_to"] = json!({ "rel_type": "m.thread", "event_id": root, "is_falling_back": true, "m.in_reply_to": { "event_id": root } });
        }
        self.send(room, "m.room.message", content).await
    }

    /// A reaction `key` on `event`.
    pub async fn react(&self, room: &str, event: &str, key: &str) -> String {
        let content = json!({ "m.relates_to": { "rel_type": "m.annotation", "event_id": event, "key": key } });
        self.send(room, "m.reaction", content).await
    }

    /// Sets a state event.
    pub async fn set_state(&self, room: &str, kind: &str, key: &str, content: Value) -> Value {
        let path = format!("/_matrix/client/v3/rooms/{}/state/{}/{}", seg(room), seg(kind), seg(key));
        self.call(reqwest::Method::PUT, &path, Some(content)).await
    }

    /// Uploads bytes; the content URI.
    pub async fn upload(&self, bytes: Vec<u8>, content_type: &str, name: &str) -> String {
        let answer = self
            .http
            .post(format!("{}/_matrix/media/v3/upload?filename={}", self.url, seg(name)))
            .bearer_auth(&self.user.access_token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .expect("upload");
        let v: Value = answer.json().await.expect("upload answer");
        v["content_uri"].as_str().unwrap_or_else(|| panic!("upload: {v}")).to_string()
    }

    /// Downloads `mxc://server/id` (authenticated media).
    pub async fn download(&self, mxc: &str) -> Vec<u8> {
        let rest = mxc.strip_prefix("mxc://").expect("a content URI");
        let answer = self
            .http
            .get(format!("{}/_matrix/client/v1/media/download/{rest}", self.url))
            .bearer_auth(&self.user.access_token)
            .send()
            .await
            .expect("download");
        answer.bytes().await.expect("download body").to_vec()
    }

    /// The room's events (messages, reactions, redactions, state), oldest first; up to 1,000.
    pub async fn events(&self, room: &str) -> Vec<Value> {
        let path = format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=1000", seg(room));
        let v = self.call(reqwest::Method::GET, &path, None).await;
        let mut events = v["chunk"].as_array().cloned().unwrap_or_default();
        events.reverse();
        events
    }

    /// Waits (up to `timeout`) for an event of the room that `matches`, and returns it.
    pub async fn wait_event(&self, room: &str, timeout: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.events(room).await.into_iter().find(|e| matches(e)) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for an event in {room}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an invite and joins it; the room id.
    pub async fn accept_invite(&self, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(room) = self.invites().await.into_iter().next() {
                self.join(&room).await;
                self.invited.lock().unwrap_or_else(|p| p.into_inner()).remove(&room);
                return room;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for an invite");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A transaction id unique enough for a test.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("t{now}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A room's messages as a reader sees them: each message once, with its latest edit applied,
/// reactions that were not taken back listed under it, thread messages indented under their
/// root; `names` shortens user ids.
pub fn transcript(events: &[Value], names: &[(&str, &str)]) -> String {
    let name = |id: &str| names.iter().find(|(u, _)| *u == id).map_or(id.to_string(), |(_, n)| n.to_string());
    let redacted: Vec<&str> =
        events.iter().filter(|e| e["type"] == "m.room.redaction").filter_map(|e| e["redacts"].as_str()).collect();
    let mut out = String::new();
    let messages: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "m.room.message" && e["content"]["m.relates_to"]["rel_type"] != "m.replace")
        .collect();
    let latest = |id: &str| -> Value {
        events
            .iter()
            .rev()
            .find(|e| {
                e["content"]["m.relates_to"]["rel_type"] == "m.replace"
                    && e["content"]["m.relates_to"]["event_id"] == id
            })
            .map(|e| e["content"]["m.new_content"].clone())
            .unwrap_or(Value::Null)
    };
    let render = |m: &Value, indent: &str, out: &mut String| {
        let id = m["event_id"].as_str().unwrap_or_default();
        let edited = latest(id);
        let content = if edited.is_null() { &m["content"] } else { &edited };
        let body = content["body"].as_str().unwrap_or_default();
        let kind = content["msgtype"].as_str().unwrap_or_default();
        let mark = match (kind, edited.is_null()) {
            ("m.notice", true) => " (notice)",
            ("m.notice", false) => " (notice, edited in place)",
            (_, false) => " (edited)",
            _ => "",
        };
        out.push_str(&format!("{indent}[{}]{mark}\n", name(m["sender"].as_str().unwrap_or_default())));
        let shown = match kind {
            "m.file" | "m.image" | "m.video" | "m.audio" => format!("📎 {body} ({kind})"),
            _ => body.to_string(),
        };
        for line in shown.lines() {
            out.push_str(&format!("{indent}  {line}\n"));
        }
        let reactions: Vec<String> = events
            .iter()
            .filter(|e| e["type"] == "m.reaction" && e["content"]["m.relates_to"]["event_id"] == id)
            .filter(|e| !redacted.contains(&e["event_id"].as_str().unwrap_or_default()))
            .map(|e| {
                format!(
                    "{} by {}",
                    e["content"]["m.relates_to"]["key"].as_str().unwrap_or_default(),
                    name(e["sender"].as_str().unwrap_or_default())
                )
            })
            .collect();
        if !reactions.is_empty() {
            out.push_str(&format!("{indent}  reactions: {}\n", reactions.join(", ")));
        }
    };
    for m in messages.iter().filter(|m| m["content"]["m.relates_to"]["rel_type"] != "m.thread") {
        render(m, "", &mut out);
        let id = m["event_id"].as_str().unwrap_or_default();
        let replies: Vec<&&Value> = messages
            .iter()
            .filter(|r| {
                r["content"]["m.relates_to"]["rel_type"] == "m.thread" && r["content"]["m.relates_to"]["event_id"] == id
            })
            .collect();
        if !replies.is_empty() {
            out.push_str("  └ thread:\n");
            for r in replies {
                render(r, "    ", &mut out);
            }
        }
        out.push('\n');
    }
    out
}
