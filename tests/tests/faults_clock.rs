//! Wall-clock jumps under the router's timers. The router takes time from the wall clock
//! (`chrono::Utc::now`) for offer timeouts and SLA deadlines, so the daemon runs as a child
//! process under Debian's libfaketime (`LD_PRELOAD`, an offset in a file this test rewrites,
//! `FAKETIME_DONT_FAKE_MONOTONIC=1` so only the wall clock jumps, not tokio's timers):
//!
//! - a jump forward by an hour fires the lapsed offer's timeout once (the offer moves to the next
//!   agent once) and the SLA breach once;
//! - a jump back by two hours fires nothing twice and breaks nothing: a new conversation is still
//!   routed, and the router's time stays monotonic (events' times never go back).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_channel_webhook::{decode_secret, signature};
use switchboard_core::contract::streams;
use switchboard_e2e::SECRET;
use switchboard_e2e::faults::checker::Outcome;
use switchboard_e2e::faults::cluster::{Cluster, Role};
use switchboard_e2e::faults::desk::{Desk, DeskBehaviour, Received};
use switchboard_e2e::faults::workload::{Workload, read_stream};
use switchboard_e2e::faults::{env_or, seed};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
const WAIT: Duration = Duration::from_secs(30);

/// Sets the daemon's clock to real time plus `secs` (libfaketime re-reads the file every second).
fn jump(file: &Path, secs: i64) {
    std::fs::write(file, format!("{secs:+}\n")).expect("write the faketime offset");
}

/// Waits until the daemon's clock reads real time plus `secs`: until it takes a webhook signed
/// at that time (a survey answer for an unknown conversation: `404` once the signature's
/// timestamp is within its tolerance, `401` before; nothing is stored either way).
async fn wait_clock(cluster: &Cluster, secs: i64) {
    let key = decode_secret(SECRET).unwrap();
    let url = format!("{}/v1/webhooks/shop", cluster.daemons[0].base);
    let body = json!({"csat": {"conversation_id": uuid::Uuid::now_v7(), "score": 5}}).to_string();
    wait_for("the daemon's clock to jump", async || {
        let ts = chrono::Utc::now().timestamp() + secs;
        let resp = cluster
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header(signature::ID, "clock-probe")
            .header(signature::TIMESTAMP, ts.to_string())
            .header(signature::SIGNATURE, signature::sign(&key, "clock-probe", ts, body.as_bytes()))
            .body(body.clone())
            .send()
            .await
            .ok()?;
        (resp.status() == 404).then_some(())
    })
    .await;
}

async fn events(cluster: &Cluster) -> Vec<Value> {
    read_stream(&cluster.nats.url(), streams::EVENTS)
        .await
        .iter()
        .flat_map(switchboard_e2e::events_in)
        .map(|e| serde_json::to_value(e).expect("an event"))
        .collect()
}

fn count(events: &[Value], kind: &str, conversation: &str) -> usize {
    events.iter().filter(|e| e["kind"] == kind && e["conversation_id"] == conversation).count()
}

async fn wait_for<T>(what: &str, mut found: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = found().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {WAIT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn offers(desk: &Desk, conversation: Option<&str>) -> Vec<Received> {
    desk.received()
        .into_iter()
        .filter(|r| r.body["type"] == "offer" && conversation.is_none_or(|c| r.body["conversation_id"] == c))
        .collect()
}

async fn run(name: &str, seed: u64) {
    let work = Workload::new(DeskBehaviour::default(), Duration::from_secs(120)).await;
    assert!(Path::new(LIBFAKETIME).is_file(), "{LIBFAKETIME} is missing: `apt-get install faketime` (make tools)");
    let dir = tempfile::tempdir().expect("temp dir");
    let offset_file = dir.path().join("faketime");
    jump(&offset_file, 0);
    let mut settings = work.settings();
    (settings.offer_timeout_secs, settings.first_response_secs) = (300, 1800);
    settings.env = vec![
        ("LD_PRELOAD".into(), LIBFAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE".into(), offset_file.display().to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ("FAKETIME_CACHE_DURATION".into(), "1".into()),
    ];
    let cluster = Cluster::start(vec![Role::new("all", true, true, false)], &settings).await;
    work.attach(&cluster);
    work.define_agents(&cluster, &["ann", "bob"]).await;
    wait_clock(&cluster, 0).await;

    let first = format!("t{seed}a");
    work.write(&first, 1).await;
    let offer = wait_for("the first offer", async || offers(&work.desk, None).into_iter().next()).await;
    let conversation = offer.body["conversation_id"].as_str().unwrap().to_string();
    let (x, y) = if offer.agent == "ann" { ("ann", "bob") } else { ("bob", "ann") };
    let before = events(&cluster).await;
    assert_eq!(count(&before, "offer_timed_out", &conversation) + count(&before, "sla_breached", &conversation), 0);

    // Forward an hour: past the 5-minute offer timeout and the 30-minute first-response target.
    println!("FAULTS {name}: wall clock +1 h with the offer at {x}");
    jump(&offset_file, 3600);
    work.set_clock_offset(3600);
    wait_clock(&cluster, 3600).await;
    let moved = wait_for("the offer to move to the other agent", async || {
        offers(&work.desk, Some(&conversation)).into_iter().find(|o| o.agent == y)
    })
    .await;
    let jumped = wait_for("the timeout and the SLA breach", async || {
        let all = events(&cluster).await;
        (count(&all, "offer_timed_out", &conversation) >= 1 && count(&all, "sla_breached", &conversation) >= 1)
            .then_some(all)
    })
    .await;
    let timed_out = jumped.iter().find(|e| e["kind"] == "offer_timed_out").unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(timed_out["at"].as_str().unwrap()).unwrap();
    assert!(at.timestamp() > chrono::Utc::now().timestamp() + 3000, "the daemon's clock jumped: {at}");
    let (code, status) = work.desk.command(y, &conversation, "accept-y", json!({"type": "accept"})).await;
    let kinds = |all: &[Value]| -> Vec<String> {
        all.iter()
            .map(|e| format!("{}:{}", e["kind"].as_str().unwrap_or("?"), e["agent_id"].as_str().unwrap_or("-")))
            .collect()
    };
    assert_eq!(code, Outcome::Acked, "{name}: {y} accepts ({status}); events: {:?}", kinds(&events(&cluster).await));
    // A second message after the accept: everything due before it was handled by then.
    work.write(&first, 2).await;
    wait_for("the second message at the new agent", async || {
        work.desk.received().into_iter().find(|r| r.body["type"] == "message" && r.agent == y)
    })
    .await;
    let all = events(&cluster).await;
    assert_eq!(count(&all, "offer_timed_out", &conversation), 1, "{name}: the offer timed out once");
    assert_eq!(count(&all, "sla_breached", &conversation), 1, "{name}: the SLA breached once");
    assert_eq!(offers(&work.desk, Some(&conversation)).len(), 2, "{name}: offered to {x}, then once to {y}");
    assert!(moved.body["offer_deadline"].as_str() > offer.body["offer_deadline"].as_str());
    let withdrawn = work.desk.received().into_iter().filter(|r| r.agent == x && r.body["change"] == "offer_withdrawn");
    assert_eq!(withdrawn.count(), 1, "{name}: {x} was told once that the offer lapsed");

    // Back two hours: an hour behind real time, an hour behind the router's time.
    println!("FAULTS {name}: wall clock -2 h");
    jump(&offset_file, -3600);
    work.set_clock_offset(-3600);
    wait_clock(&cluster, -3600).await;
    let second = format!("t{seed}b");
    work.write(&second, 1).await;
    let late = wait_for("an offer after the jump back", async || {
        offers(&work.desk, None).into_iter().find(|o| o.body["conversation_id"] != conversation.as_str())
    })
    .await;
    let later = late.body["conversation_id"].as_str().unwrap().to_string();
    let (code, _) = work.desk.command(&late.agent, &later, "accept-late", json!({"type": "accept"})).await;
    assert_eq!(code, Outcome::Acked);
    work.write(&second, 2).await;
    wait_for("the message after the jump back", async || {
        work.desk
            .received()
            .into_iter()
            .find(|r| r.body["type"] == "message" && r.body["conversation_id"] == later.as_str())
    })
    .await;
    let all = events(&cluster).await;
    for c in [&conversation, &later] {
        assert_eq!(
            count(&all, "offer_timed_out", c),
            usize::from(c == &conversation),
            "{name}: nothing timed out again"
        );
        assert_eq!(count(&all, "sla_breached", c), usize::from(c == &conversation), "{name}: no SLA breach again");
    }
    // The router's time never goes back: its events are in journal order with times that only grow.
    let times: Vec<&str> =
        all.iter().filter(|e| e["conversation_id"].is_string()).map(|e| e["at"].as_str().unwrap()).collect();
    let parsed: Vec<_> = times.iter().map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "{name}: router time went back: {times:?}");
    assert!(
        late.body["offer_deadline"].as_str() >= moved.body["offer_deadline"].as_str(),
        "{name}: an offer made after the jump back is timed from the router's (monotonic) time"
    );
    println!(
        "FAULTS {name}: forward jump: 1 offer timeout, 1 SLA breach, 2 offers; backward jump: nothing fired again, {} events in order",
        parsed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wall_clock_jumps_under_the_routers_timers() {
    run("clock", seed("clock")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: make test-faults"]
async fn wall_clock_jumps_under_the_routers_timers_long() {
    let seed = seed("clock long");
    let runs = env_or("FAULT_RUNS", 20).div_ceil(4);
    for i in 0..runs {
        run(&format!("clock long run {}/{runs}", i + 1), seed + i as u64).await;
    }
}
