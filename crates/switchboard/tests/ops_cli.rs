//! The operators' commands against a real NATS and a real daemon (in this process): `status`
//! shows the leader, a consumer's lag and the dead letters the test produced; `dlq` replays one
//! (delivered afterwards), replays one whose earlier replay was interrupted (stored once), and
//! drops one (gone); `agents` lists what the router holds and changes a status through it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard::Config;
use switchboard::cli::dlq::{self, Selection};
use switchboard_bus::Bus;
use switchboard_channel_webhook::signature;
use switchboard_core::contract::{headers, streams};
use switchboard_testkit::{NatsServer, free_port};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_c3dpdGNoYm9hcmQtdGVzdC1zZWNyZXQtMTIz";

fn config(dir: &Path, nats: &str, group: &str, helpdesk: &str) -> PathBuf {
    let secret = dir.join("shared.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let path = dir.join(format!("switchboard-{group}.toml"));
    let port = free_port();
    let toml = format!(
        r#"
[nats]
url = "{nats}"
[http]
listen = "127.0.0.1:{port}"
[router]
lease_ttl_secs = 5
[routing]
default_team = "support"
[routing.teams.support]
offer_timeout_secs = 600
[[routing.agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
default_capacity = 10
max_total = 10
status = "online"
[[routing.agents]]
id = "bob"
teams = ["support"]
tiers = ["L1"]
default_capacity = 10
max_total = 10
status = "online"
[channels.webhook.sources.shop]
secret_file = "{secret}"
[channels.webhook.agents.alice]
url = "{helpdesk}"
secret_file = "{secret}"
[channels.webhook.agents.bob]
url = "{helpdesk}"
secret_file = "{secret}"
{groups}"#,
        secret = secret.display(),
        groups = if group == "default" {
            String::new()
        } else {
            format!("[[routing.groups]]\nname = \"{group}\"\nteams = [\"support\"]\n")
        }
    );
    std::fs::write(&path, toml).unwrap();
    path
}

async fn wait_until(what: &str, timeout: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A helpdesk answering every delivery with the status in `answer`; it records the conversation
/// of each offer it accepted (2xx).
struct Helpdesk {
    url: String,
    answer: Arc<AtomicU16>,
    accepted: Arc<Mutex<Vec<String>>>,
}

async fn helpdesk() -> Helpdesk {
    let answer = Arc::new(AtomicU16::new(400));
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let (code, sink) = (answer.clone(), accepted.clone());
    let app = axum::Router::new().route(
        "/agent",
        axum::routing::post(move |body: String| {
            let (code, sink) = (code.clone(), sink.clone());
            async move {
                let status = code.load(Ordering::SeqCst);
                let v: Value = serde_json::from_str(&body).unwrap_or_default();
                if status < 300 && v["type"] == "offer" {
                    sink.lock().unwrap().push(v["conversation_id"].as_str().unwrap_or_default().to_string());
                }
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/agent", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Helpdesk { url, answer, accepted }
}

async fn post_customer_message(http: &reqwest::Client, base: &str, id: &str) {
    let key = switchboard_channel_webhook::decode_secret(SECRET).unwrap();
    let body = format!(r#"{{"message_id":"{id}","customer":{{"id":"cust-{id}"}},"text":"hello"}}"#);
    let ts = chrono::Utc::now().timestamp();
    let r = http
        .post(format!("{base}/v1/webhooks/shop"))
        .header(signature::ID, id)
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign(&key, id, ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{:?}", r.text().await);
}

/// Runs the binary; returns its exit code and stdout (stderr goes into the failure message).
async fn switchboard(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard")).args(args).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code().is_none() {
        panic!("killed by a signal: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.code().unwrap(), stdout)
}

async fn json(args: &[&str]) -> (i32, Value) {
    let (code, out) = switchboard(args).await;
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"));
    (code, v)
}

fn find<'a>(list: &'a Value, key: &str, value: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|x| x[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list:#}"))
}

/// The conversation an offer (dead letter) is about.
async fn conversation_of(bus: &Bus, seq: u64) -> String {
    let m = bus.jetstream().get_stream(streams::DLQ).await.unwrap().get_raw_message(seq).await.unwrap();
    let v: Value = serde_json::from_slice(&m.payload).unwrap();
    v["conversation_id"].as_str().unwrap().to_string()
}

async fn stream_last(bus: &Bus, stream: &str) -> u64 {
    bus.jetstream().get_stream(stream).await.unwrap().get_info().await.unwrap().state.last_sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_dlq_and_agents_against_a_running_daemon() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let desk = helpdesk().await;
    let config_path = config(dir.path(), &nats.url(), "default", &desk.url);
    let cfg = config_path.to_str().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let daemon =
        tokio::spawn(switchboard::daemon::run(Config::load(&config_path).unwrap(), listener, shutdown.clone()));
    let http = reqwest::Client::new();
    wait_until(
        "the daemon to be ready",
        Duration::from_secs(20),
        async || matches!(http.get(format!("{base}/readyz")).send().await, Ok(r) if r.status().as_u16() == 200),
    )
    .await;
    let bus = Bus::connect_once(&Config::load(&config_path).unwrap().nats).await.unwrap();

    // Three customers; their offers are refused by the helpdesk (400) and dead-lettered at once.
    for id in ["m-1", "m-2", "m-3"] {
        post_customer_message(&http, &base, id).await;
    }
    wait_until("three dead letters", Duration::from_secs(20), async || {
        dlq::list(&bus, Some("agent-webhook"), None, false).await.map(|l| l.total).unwrap_or(0) == 3
    })
    .await;
    // A consumer that never reads: its lag is every event the router published.
    let events = bus.jetstream().get_stream(streams::EVENTS).await.unwrap();
    let probe = events
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("ops-probe".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut probe_info = probe.clone();
    let lag = probe_info.info().await.unwrap().num_pending;
    assert!(lag > 0, "the router published events");

    // status: the leader, the lag, the dead letters, this daemon.
    let (code, status) = json(&["status", "--config", cfg, "--format", "json"]).await;
    assert_eq!(code, 0, "{status:#}");
    assert_eq!(status["ok"], true);
    assert_eq!(status["nats"]["reachable"], true);
    assert_eq!(status["nats"]["jetstream"], true);
    assert_eq!(status["nats"]["version"], "2.15.1");
    let group = find(&status["groups"], "group", "default");
    assert_eq!(group["state"], "leading", "{status:#}");
    assert!(group["renewed_secs_ago"].as_f64().unwrap() < 5.0, "{group}");
    let daemon_entry = &status["daemons"][0];
    assert_eq!(status["daemons"].as_array().unwrap().len(), 1, "{status:#}");
    assert_eq!(group["leader"], daemon_entry["holder"], "the leader is the daemon that announced itself");
    assert_eq!(daemon_entry["pid"], std::process::id());
    assert_eq!(daemon_entry["router_groups"], serde_json::json!(["default"]));
    let host = daemon_entry["host"].as_str().unwrap();
    assert!(group["leader"].as_str().unwrap().starts_with(&format!("{host}:{}:", std::process::id())), "{group}");
    assert_eq!(daemon_entry["ready"], true);
    assert_eq!(daemon_entry["stale"], false);
    for component in ["webhook", "agent-webhook", "router"] {
        assert!(daemon_entry["components"].as_array().unwrap().iter().any(|c| c == component), "{daemon_entry}");
    }
    let probe_row = find(&status["consumers"], "name", "ops-probe");
    assert_eq!(probe_row["stream"], streams::EVENTS);
    assert_eq!(probe_row["num_pending"], lag);
    assert_eq!(find(&status["consumers"], "name", "router-default")["num_pending"], 0);
    assert_eq!(find(&status["dead_letters"], "component", "agent-webhook")["messages"], 3);
    assert_eq!(find(&status["streams"], "name", streams::DLQ)["messages"], 3);
    let (code, text) = switchboard(&["status", "--config", cfg]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("agent-webhook  3"), "{text}");
    assert!(text.contains("ops-probe") && text.trim_end().ends_with("OK"), "{text}");

    // dlq list: what each dead letter is, bodies only when asked.
    let (code, listing) = json(&["dlq", "list", "--config", cfg, "--format", "json"]).await;
    assert_eq!(code, 0);
    assert_eq!(listing["total"], 3);
    let letters = listing["dead_letters"].as_array().unwrap().clone();
    for d in &letters {
        assert_eq!(d["component"], "agent-webhook");
        assert!(
            matches!(d["subject"].as_str(), Some("sb.agent.out.webhook.alice" | "sb.agent.out.webhook.bob")),
            "{d}"
        );
        assert_eq!(d["attempts"], 1);
        assert!(d["reason"].as_str().unwrap().contains("400"), "{d}");
        assert!(d["size"].as_u64().unwrap() > 0);
        assert!(d.get("body").is_none(), "no body without --show-body");
    }
    let seqs: Vec<u64> = letters.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    let (_, limited) = json(&["dlq", "list", "--config", cfg, "--format", "json", "--limit", "1", "--show-body"]).await;
    assert_eq!(limited["dead_letters"].as_array().unwrap().len(), 1);
    assert_eq!(limited["total"], 3);
    assert!(limited["dead_letters"][0]["body"].as_str().unwrap().contains("\"offer\""), "{limited}");
    let (_, text) = switchboard(&["dlq", "list", "--config", cfg, "--limit", "2"]).await;
    assert!(text.contains("sb.agent.out.webhook.") && text.contains("(2 of 3"), "{text}");

    // The helpdesk works again: the first dead letter is replayed and delivered.
    desk.answer.store(204, Ordering::SeqCst);
    let first = conversation_of(&bus, seqs[0]).await;
    let (code, replayed) = json(&["dlq", "replay", "--config", cfg, "--format", "json", &seqs[0].to_string()]).await;
    assert_eq!(code, 0, "{replayed:#}");
    let r = &replayed["results"][0];
    assert_eq!(r["outcome"], "replayed");
    assert_eq!(r["subject"], letters[0]["subject"], "back to where it was written");
    assert_eq!(r["replayed_to"]["stream"], streams::AGENT);
    assert_eq!(r["duplicate"], false);
    wait_until("the replayed offer to be delivered", Duration::from_secs(10), async || {
        desk.accepted.lock().unwrap().contains(&first)
    })
    .await;
    let (code, again) = json(&["dlq", "replay", "--config", cfg, "--format", "json", &seqs[0].to_string()]).await;
    assert_eq!(code, 1, "a dead letter already replayed is not found: {again}");
    assert_eq!(again["results"][0]["outcome"], "not_found");

    // A replay interrupted after its publish (before the delete): running it again stores nothing
    // twice and removes the dead letter.
    let second = conversation_of(&bus, seqs[1]).await;
    let stored = bus.jetstream().get_stream(streams::DLQ).await.unwrap().get_raw_message(seqs[1]).await.unwrap();
    let mut h = async_nats::HeaderMap::new();
    h.insert(headers::SCHEMA, stored.headers.get(headers::SCHEMA).unwrap().as_str());
    let subject = stored.headers.get(headers::DLQ_SUBJECT).unwrap().as_str().to_string();
    bus.publish_raw(&subject, h, stored.payload.clone(), &dlq::replay_msg_id(&stored)).await.unwrap();
    let before = stream_last(&bus, streams::AGENT).await;
    let outcomes = dlq::replay(&bus, &Selection::Seqs(vec![seqs[1]]), None).await.unwrap();
    assert_eq!(outcomes[0].outcome, "replayed", "{outcomes:?}");
    assert!(outcomes[0].duplicate, "the earlier, interrupted replay was recognised");
    assert_eq!(stream_last(&bus, streams::AGENT).await, before, "nothing stored twice");
    wait_until("the second offer to be delivered", Duration::from_secs(10), async || {
        desk.accepted.lock().unwrap().contains(&second)
    })
    .await;

    // The third is dropped: gone, and never delivered.
    let third = conversation_of(&bus, seqs[2]).await;
    let (code, text) = switchboard(&["dlq", "drop", "--config", cfg, &seqs[2].to_string()]).await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("{} [agent-webhook] dropped", seqs[2])), "{text}");
    let (code, _) = switchboard(&["dlq", "drop", "--config", cfg, &seqs[2].to_string()]).await;
    assert_eq!(code, 1, "dropping it again finds nothing");
    assert_eq!(dlq::list(&bus, None, None, false).await.unwrap().total, 0);
    assert!(!desk.accepted.lock().unwrap().contains(&third));
    let (_, status) = json(&["status", "--config", cfg, "--format", "json"]).await;
    assert_eq!(status["dead_letters"], serde_json::json!([]), "{status:#}");

    // agents: what the router holds, and a status change through it.
    let (code, agents) = json(&["agents", "list", "--config", cfg, "--format", "json"]).await;
    assert_eq!(code, 0, "{agents:#}");
    let list = &agents["groups"][0]["agents"];
    assert_eq!(agents["groups"][0]["group"], "default");
    let (alice, bob) = (find(list, "id", "alice"), find(list, "id", "bob"));
    assert_eq!(alice["status"], "online");
    assert_eq!(alice["teams"], serde_json::json!(["support"]));
    assert_eq!(alice["tiers"], serde_json::json!(["L1"]));
    assert_eq!(alice["load"].as_u64().unwrap() + bob["load"].as_u64().unwrap(), 3, "three conversations offered");
    let (code, done) = json(&["agents", "set-status", "--config", cfg, "--format", "json", "bob", "away"]).await;
    assert_eq!(code, 0, "{done}");
    assert_eq!(done["outcome"], "done");
    let (_, agents) = json(&["agents", "list", "--config", cfg, "--format", "json"]).await;
    assert_eq!(find(&agents["groups"][0]["agents"], "id", "bob")["status"], "away");
    let (_, text) = switchboard(&["agents", "list", "--config", cfg]).await;
    assert!(text.lines().any(|l| l.contains("bob") && l.contains("away")), "{text}");
    let (code, text) = switchboard(&["agents", "set-status", "--config", cfg, "zed", "offline"]).await;
    assert_eq!(code, 1, "an unknown agent is rejected: {text}");
    assert!(text.contains("unknown agent"), "{text}");
    let (code, _) = switchboard(&["agents", "set-status", "--config", cfg, "bob", "available"]).await;
    assert_eq!(code, 2, "not a status: a usage error");

    // A configured group nobody leads is a problem.
    let other = config(dir.path(), &nats.url(), "nobody", &desk.url);
    let (code, status) = json(&["status", "--config", other.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(code, 1, "{status:#}");
    assert_eq!(find(&status["groups"], "group", "nobody")["state"], "none");
    assert_eq!(find(&status["groups"], "group", "default")["state"], "leading", "other leases are listed too");
    assert!(status["problems"][0].as_str().unwrap().contains("`nobody` has no leader"), "{status:#}");
    let (code, agents) = json(&["agents", "list", "--config", other.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(code, 1);
    assert!(agents["groups"][0]["error"].as_str().unwrap().contains("nobody"), "{agents}");

    // A graceful stop removes the daemon's presence and releases the lease.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), daemon).await.unwrap().unwrap().unwrap();
    let (code, status) = json(&["status", "--config", cfg, "--format", "json"]).await;
    assert_eq!(code, 1, "{status:#}");
    assert_eq!(status["daemons"], serde_json::json!([]));
    assert_eq!(find(&status["groups"], "group", "default")["state"], "released");
}

#[tokio::test]
async fn status_exits_non_zero_when_nats_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let path = config(dir.path(), &url, "default", "http://127.0.0.1:9/agent");
    let (code, status) = json(&["status", "--config", path.to_str().unwrap(), "--format", "json"]).await;
    assert_eq!(code, 1, "{status:#}");
    assert_eq!(status["ok"], false);
    assert_eq!(status["nats"]["reachable"], false);
    assert_eq!(status["nats"]["url"], url);
    assert!(status["problems"][0].as_str().unwrap().starts_with("NATS unreachable"), "{status:#}");
    let (code, text) = switchboard(&["status", "--config", path.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(text.contains("UNREACHABLE") && text.contains("PROBLEMS"), "{text}");
    let (code, _) = switchboard(&["dlq", "list", "--config", path.to_str().unwrap()]).await;
    assert_eq!(code, 1);
}

/// A daemon process, killed (SIGKILL) and reaped when dropped, so a failing test leaves none behind.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_daemon_that_died_is_marked_stale_and_its_group_leaderless() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &nats.url(), "default", "http://127.0.0.1:9/agent");
    let cfg = path.to_str().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--config", cfg])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).unwrap())
        .spawn()
        .unwrap();
    let mut daemon = Proc(child);
    let pid = daemon.0.id();
    wait_until("the daemon to announce itself, ready and leading", Duration::from_secs(30), async || {
        let (code, s) = json(&["status", "--config", cfg, "--format", "json"]).await;
        code == 0 && s["daemons"][0]["pid"] == pid && s["groups"][0]["state"] == "leading"
    })
    .await;

    daemon.0.kill().unwrap();
    daemon.0.wait().unwrap();
    let mut last = Value::Null;
    wait_until("the dead daemon to be marked stale", Duration::from_secs(30), async || {
        let (code, s) = json(&["status", "--config", cfg, "--format", "json"]).await;
        last = s.clone();
        code == 1 && s["daemons"][0]["stale"] == true
    })
    .await;
    assert_eq!(last["daemons"][0]["pid"], pid);
    assert_eq!(last["groups"][0]["state"], "expired", "{last:#}");
    let problems = last["problems"].to_string();
    assert!(problems.contains("has no leader (expired)") && problems.contains("not seen for"), "{last:#}");
    let (code, text) = switchboard(&["status", "--config", cfg]).await;
    assert_eq!(code, 1);
    assert!(text.contains("STALE"), "{text}");
}
