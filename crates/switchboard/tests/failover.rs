//! Router failover between two real `switchboard` processes: the leader is killed with SIGKILL
//! under a stream of customer messages, the standby takes over from the journal, and every
//! message is offered to the agent exactly once (one offer id per conversation).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_channel_webhook::signature;
use switchboard_testkit::{NatsServer, free_port};

const SECRET: &str = "whsec_c3dpdGNoYm9hcmQtdGVzdC1zZWNyZXQtMTIz";
const MESSAGES: usize = 60;

fn config(dir: &Path, nats: &str, port: u16, helpdesk: &str) -> std::path::PathBuf {
    let secret = dir.join("shared.secret");
    std::fs::write(&secret, SECRET).unwrap();
    let path = dir.join(format!("switchboard-{port}.toml"));
    let toml = format!(
        r#"
[nats]
url = "{nats}"
[http]
listen = "127.0.0.1:{port}"
[router]
lease_ttl_secs = 2
snapshot_every = 7
[routing]
default_team = "support"
[routing.teams.support]
offer_timeout_secs = 600
[[routing.agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
default_capacity = 1000
max_total = 1000
status = "online"
[channels.webhook.runtime.rate_limit]
per_minute = 100000
burst = 100000
[channels.webhook.sources.shop]
secret_file = "{secret}"
[channels.webhook.agents.alice]
url = "{helpdesk}"
secret_file = "{secret}"
"#,
        secret = secret.display()
    );
    std::fs::write(&path, toml).unwrap();
    path
}

/// A daemon process, killed (SIGKILL) and reaped when dropped, so a failing test leaves none behind.
struct Proc(Child);

impl Proc {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(config: &Path, log: &Path) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--log-format", "json", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Proc(child)
}

async fn wait_until(what: &str, timeout: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Offers received by the helpdesk: (webhook-id, conversation id).
type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn helpdesk() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/agent",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if v["type"] == "offer" {
                    let id = headers.get(signature::ID).and_then(|h| h.to_str().ok()).unwrap_or_default().to_string();
                    sink.lock().unwrap().push((id, v["conversation_id"].as_str().unwrap_or_default().to_string()));
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/agent", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

async fn send(http: &reqwest::Client, base: &str, i: usize) -> u16 {
    let key = switchboard_channel_webhook::decode_secret(SECRET).unwrap();
    let id = format!("m-{i}");
    let body = format!(r#"{{"message_id":"{id}","customer":{{"id":"c-{i}"}},"text":"help {i}"}}"#);
    let ts = chrono::Utc::now().timestamp();
    http.post(format!("{base}/v1/webhooks/shop"))
        .header(signature::ID, &id)
        .header(signature::TIMESTAMP, ts.to_string())
        .header(signature::SIGNATURE, signature::sign(&key, &id, ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_mid_stream_loses_no_message_and_offers_none_twice() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (helpdesk_url, seen) = helpdesk().await;
    let (port_a, port_b) = (free_port(), free_port());
    let mut leader = spawn(&config(dir.path(), &nats.url(), port_a, &helpdesk_url), &dir.path().join("a.log"));
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let ready = |port: u16| {
        let http = http.clone();
        async move {
            http.get(format!("http://127.0.0.1:{port}/readyz")).send().await.is_ok_and(|r| r.status().as_u16() == 200)
        }
    };
    wait_until("process A ready", Duration::from_secs(20), async || ready(port_a).await).await;
    // A leads before B exists, so the kill below is the leader's.
    let log_a = dir.path().join("a.log");
    wait_until("A leading", Duration::from_secs(20), async || {
        std::fs::read_to_string(&log_a).unwrap_or_default().contains("router state restored")
    })
    .await;
    let mut standby = spawn(&config(dir.path(), &nats.url(), port_b, &helpdesk_url), &dir.path().join("b.log"));
    wait_until("process B ready", Duration::from_secs(20), async || ready(port_b).await).await;

    // Messages go in through B's listener (B's webhook channel stays up), A routes until killed.
    let base_b = format!("http://127.0.0.1:{port_b}");
    let mut killed_after = None;
    for i in 0..MESSAGES {
        assert_eq!(send(&http, &base_b, i).await, 202, "message {i} accepted");
        if i == MESSAGES / 3 {
            wait_until("some offers from the leader", Duration::from_secs(20), async || {
                !seen.lock().unwrap().is_empty()
            })
            .await;
            leader.kill(); // SIGKILL: no lease release, no snapshot, no flush
            killed_after = Some(seen.lock().unwrap().len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_until("an offer for every message", Duration::from_secs(60), async || {
        seen.lock().unwrap().iter().map(|(_, c)| c.clone()).collect::<BTreeSet<_>>().len() >= MESSAGES
    })
    .await;

    let seen = seen.lock().unwrap().clone();
    let mut offer_ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, conversation) in &seen {
        offer_ids.entry(conversation.clone()).or_default().insert(id.clone());
    }
    assert_eq!(offer_ids.len(), MESSAGES, "every message became one conversation");
    let twice: Vec<_> = offer_ids.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(twice.is_empty(), "conversations offered under two different ids: {twice:?}");
    let log_b = std::fs::read_to_string(dir.path().join("b.log")).unwrap();
    assert!(log_b.contains("lease not renewed for its TTL; taking it over"), "B took over after the TTL");
    eprintln!(
        "failover: {MESSAGES} messages, {} offers seen before the kill, {} POSTs in all ({} repeated deliveries of the same id)",
        killed_after.unwrap_or(0),
        seen.len(),
        seen.len() - offer_ids.len()
    );
    standby.kill();
}
