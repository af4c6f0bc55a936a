//! Floods against the real daemon on real NATS, with the numbers printed: one webhook sender
//! sending as fast as it can gets only its configured rate while other senders go through; one
//! address opening too many web-chat sockets is refused beyond its limit; one visitor flooding
//! messages gets only the per-visitor rate.
//!
//! Each bound is `burst + rate × elapsed` (plus one for the token that refills while the last
//! request is in flight), with `elapsed` measured from before the first request to after the
//! last answer, so it can only be generous to the limiter by the test's own overhead.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use switchboard_adapter::{RateLimitConfig, RuntimeConfig};
use switchboard_channel_webchat::WebchatConfig;
use switchboard_core::contract::{streams, subjects};
use switchboard_e2e::{ChatSocket, TestDaemon, signed_headers, stored_on};

/// Requests the flooding webhook sender sends.
const FLOOD: usize = 2000;
/// Requests in flight at once from the flooding sender.
const CONCURRENCY: usize = 32;

/// The most a token bucket of `burst` refilled at `per_minute` can let through in `elapsed`.
fn bound(burst: u32, per_minute: u32, elapsed: Duration) -> usize {
    burst as usize + (per_minute as f64 / 60.0 * elapsed.as_secs_f64()).floor() as usize + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_webhook_sender_gets_its_rate_and_others_are_unaffected() {
    let (per_minute, burst) = (600, 20);
    let daemon = TestDaemon::start(None, |c| {
        c.channels.webhook.runtime =
            RuntimeConfig { rate_limit: RateLimitConfig { per_minute, burst }, ..Default::default() };
    })
    .await;
    let url = format!("{}/v1/webhooks/shop", daemon.base);
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().unwrap();
    let send = move |customer: String, n: usize| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let body = json!({ "message_id": format!("{customer}-{n}"), "customer": { "id": customer }, "text": "hi" })
                .to_string();
            let mut req = http.post(&url).header("content-type", "application/json");
            for (name, value) in signed_headers(&format!("evt-{customer}-{n}"), chrono::Utc::now().timestamp(), &body) {
                req = req.header(name, value);
            }
            let resp = req.body(body).send().await.expect("request sent");
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            (resp.status().as_u16(), retry_after)
        }
    };

    // Five other customers write every 100 ms while the flood runs.
    let others = tokio::spawn({
        let send = send.clone();
        async move {
            let mut answers = Vec::new();
            for n in 0..10 {
                for c in 0..5 {
                    answers.push(send(format!("calm-{c}"), n).await.0);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        }
    });
    let started = Instant::now();
    let answers: Vec<(u16, Option<u64>)> = futures::stream::iter(0..FLOOD)
        .map(|n| send("flooder".into(), n))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let others = others.await.unwrap();

    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    let limit = bound(burst, per_minute, elapsed);
    let secs = elapsed.as_secs_f64();
    println!(
        "webhook flood: {FLOOD} requests from one sender in {secs:.2} s ({:.0} req/s, {CONCURRENCY} in flight); \
         accepted {accepted} (202, {:.1}/s; beyond the burst {:.1}/s), refused {} (429, {:.0}/s), \
         Retry-After {:?}..{:?} s; limit {per_minute}/min burst {burst} allows at most {limit}; \
         other senders: {}/{} accepted",
        FLOOD as f64 / secs,
        accepted as f64 / secs,
        accepted.saturating_sub(burst as usize) as f64 / secs,
        refused.len(),
        refused.len() as f64 / secs,
        refused.iter().filter_map(|(_, r)| *r).min(),
        refused.iter().filter_map(|(_, r)| *r).max(),
        others.iter().filter(|s| **s == 202).count(),
        others.len(),
    );
    assert_eq!(accepted + refused.len(), FLOOD, "every answer is 202 or 429");
    assert!(accepted >= burst as usize, "at least the burst goes through: {accepted}");
    assert!(accepted <= limit, "{accepted} accepted in {secs:.2} s, more than the limit allows ({limit})");
    assert!(refused.iter().all(|(_, r)| r.is_some_and(|s| s >= 1)), "every 429 says when to retry");
    assert!(others.iter().all(|s| *s == 202), "other senders unaffected: {others:?}");
    let stored = stored_on(&daemon.nats.url(), streams::INBOUND, &subjects::inbound("webhook")).await;
    assert_eq!(stored, accepted + others.len(), "exactly the accepted messages are stored");
    daemon.stop().await;
}

const ORIGIN: &str = "http://shop.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_chat_limits_sockets_per_address_and_messages_per_visitor() {
    let (per_minute, burst, max_sockets) = (60, 5, 5);
    let dir = tempfile::tempdir().unwrap();
    let session_key = dir.path().join("session.key");
    std::fs::write(&session_key, "flood-test-session-key-0123456789abcdef").unwrap();
    let daemon = TestDaemon::start(None, |c| {
        c.channels.webchat = WebchatConfig {
            enabled: true,
            session_secret_file: Some(session_key),
            allowed_origins: vec![ORIGIN.into()],
            prechat: false,
            max_connections_per_ip: max_sockets,
            // High, so that the per-visitor limit is the one measured here.
            ip_messages_per_minute: 100_000,
            runtime: RuntimeConfig { rate_limit: RateLimitConfig { per_minute, burst }, ..Default::default() },
            ..Default::default()
        };
    })
    .await;

    // One address opens twice its allowance of sockets, all at once.
    let started = Instant::now();
    let attempts =
        futures::future::join_all((0..2 * max_sockets).map(|_| ChatSocket::connect(&daemon.base, ORIGIN))).await;
    let connect_secs = started.elapsed().as_secs_f64();
    let refused: Vec<u16> = attempts.iter().filter_map(|a| a.as_ref().err().copied()).collect();
    let mut sockets: Vec<ChatSocket> = attempts.into_iter().filter_map(Result::ok).collect();
    println!(
        "web-chat sockets: {} attempts from one address in {connect_secs:.2} s; opened {}, refused {} ({:?}); \
         max_connections_per_ip = {max_sockets}",
        2 * max_sockets,
        sockets.len(),
        refused.len(),
        refused.first()
    );
    assert_eq!(sockets.len(), max_sockets as usize);
    assert!(refused.iter().all(|s| *s == 429), "{refused:?}");
    // Closing one frees its place.
    drop(sockets.pop());
    // The server notices the close a moment later: poll for the freed place.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ChatSocket::connect(&daemon.base, ORIGIN).await {
            Ok(socket) => break drop(socket),
            Err(status) => assert!(Instant::now() < deadline, "a closed socket's place is not given back ({status})"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // One visitor floods messages, all sent before reading any answer.
    let mut flooder = sockets.pop().unwrap();
    let mut calm = sockets.pop().unwrap();
    flooder.hello(json!({})).await;
    calm.hello(json!({})).await;
    let flood = 300;
    let started = Instant::now();
    for i in 0..flood {
        flooder.send(json!({ "type": "send", "client_id": format!("f{i}"), "text": "spam" })).await;
    }
    let mut outcomes = Vec::new();
    for _ in 0..flood {
        outcomes.push(flooder.outcome().await);
    }
    let elapsed = started.elapsed();
    // Another visitor from the same address writes right after: unaffected.
    let mut calm_outcomes = Vec::new();
    for i in 0..3 {
        calm.send(json!({ "type": "send", "client_id": format!("c{i}"), "text": "hello" })).await;
        calm_outcomes.push(calm.outcome().await);
    }
    let accepted = outcomes.iter().filter(|o| *o == "ack").count();
    let limited = outcomes.iter().filter(|o| *o == "rate_limited").count();
    let limit = bound(burst, per_minute, elapsed);
    let secs = elapsed.as_secs_f64();
    println!(
        "web-chat visitor flood: {flood} messages in {secs:.2} s ({:.0}/s); accepted {accepted} ({:.1}/s), \
         rate_limited {limited} ({:.0}/s); limit {per_minute}/min burst {burst} allows at most {limit}; \
         another visitor: {calm_outcomes:?}",
        flood as f64 / secs,
        accepted as f64 / secs,
        limited as f64 / secs,
    );
    assert_eq!(accepted + limited, flood, "{outcomes:?}");
    assert!(accepted >= burst as usize && accepted <= limit, "{accepted} accepted, limit {limit}");
    assert_eq!(calm_outcomes, ["ack", "ack", "ack"]);
    let stored = stored_on(&daemon.nats.url(), streams::INBOUND, &subjects::inbound("webchat")).await;
    assert_eq!(stored, accepted + 3, "exactly the accepted messages are stored");
    drop((flooder, calm, sockets));
    daemon.stop().await;
}
