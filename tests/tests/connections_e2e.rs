//! Slow and idle clients cannot exhaust the daemon: 500 idle connections from one address are
//! capped per address (the rest answered `503` at once) while a request from elsewhere is served
//! within a second; a client that never finishes its headers and one that stays silent are
//! closed; credentials are checked before a body is read, so a stalled anonymous upload gets its
//! `401` without sending a byte of it; an over-limit body gets `413`.

use std::time::{Duration, Instant};

use switchboard::config::ApiTokenConfig;
use switchboard_e2e::TestDaemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "ops-token-for-connection-tests";
const IDLE: usize = 500;
const PER_IP: usize = 200;

/// What the server sends on `stream` before closing it, waiting at most `within`; `None` when it
/// neither sent nor closed in time.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// A connection to `addr` from the loopback address `ip` (the caps count per address).
async fn from(ip: &str, addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
    socket.connect(addr.parse().unwrap()).await.unwrap()
}

/// The status line and headers of the response on `stream`, waited for at most `within`.
async fn response_head(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn idle_and_slow_clients_are_capped_and_closed_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("ops.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let daemon = TestDaemon::start(None, |c| {
        c.http.max_connections_per_ip = PER_IP;
        c.http.header_read_timeout_ms = 5_000;
        c.http.idle_timeout_ms = 3_000;
        c.api.tokens.insert("ops".into(), ApiTokenConfig { token_file: Some(token_file), ..Default::default() });
    })
    .await;
    let addr = daemon.base.trim_start_matches("http://").to_string();

    // 500 connections from 127.0.0.1 that send nothing.
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(&addr).await.unwrap());
    }
    // Those over the cap are answered at once; the others wait for their headers.
    let classified = futures::future::join_all(idle.into_iter().map(|mut s| async move {
        let answer = until_closed(&mut s, Duration::from_millis(500)).await;
        (s, answer)
    }))
    .await;
    let (mut held, mut refused) = (Vec::new(), 0);
    for (s, answer) in classified {
        match answer {
            Some(answer) => {
                assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
                refused += 1;
            }
            None => held.push(s),
        }
    }
    println!("idle connections from one address: {} held, {refused} answered 503 at once", held.len());
    // The test's own HTTP client may keep one pooled connection from this address open too.
    assert!(held.len() <= PER_IP && held.len() + 2 >= PER_IP, "the per-address cap holds: {} held", held.len());
    assert_eq!(held.len() + refused, IDLE);

    // Meanwhile a client from another address is served, quickly.
    let elsewhere =
        reqwest::Client::builder().local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let started = Instant::now();
    let health = elsewhere.get(format!("{}/healthz", daemon.base)).send().await.unwrap();
    let took = started.elapsed();
    println!("GET /healthz from another address under the flood: {} in {took:?}", health.status());
    assert_eq!(health.status(), 200);
    assert!(took < Duration::from_secs(1), "served within a second, took {took:?}");
    // The refusals are counted where an operator looks.
    let metrics = elsewhere.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    let counted = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert!(counted("switchboard_http_connections_refused_total ") >= refused as u64, "{metrics}");
    assert!(counted("switchboard_http_connections_open ") >= held.len() as u64);

    // Credentials before the body: an anonymous client announcing 1 MB and sending none of it
    // gets 401 at once; an authenticated body over the route's limit gets 413.
    let mut stalled = from("127.0.0.3", &addr).await;
    let head = "POST /v1/agent/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guessed-token-0000\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n";
    stalled.write_all(head.as_bytes()).await.unwrap();
    let answer = response_head(&mut stalled, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "refused from the headers alone: {answer}");
    let big = format!("{{\"type\":\"reply\",\"text\":\"{}\"}}", "x".repeat(300 * 1024));
    let too_big = elsewhere
        .post(format!("{}/v1/agent/commands", daemon.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413, "over the command route's 256 KiB");

    // A client that never finishes its headers is closed after the header-read timeout.
    let mut slow = from("127.0.0.4", &addr).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    assert!(until_closed(&mut slow, Duration::from_secs(10)).await.is_some(), "the slow client was never closed");
    println!("a client stuck in its headers was closed after {:?}", started.elapsed());

    // A kept-alive connection that goes silent after a request is closed after the idle timeout.
    let mut kept = from("127.0.0.5", &addr).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(response_head(&mut kept, Duration::from_secs(2)).await.starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    assert!(until_closed(&mut kept, Duration::from_secs(10)).await.is_some(), "the silent connection stayed open");
    println!("a kept-alive connection silent after its request was closed after {:?}", started.elapsed());

    // The connections that never sent a request are closed too, and the address is served again.
    let started = Instant::now();
    for s in &mut held {
        assert!(until_closed(s, Duration::from_secs(15)).await.is_some(), "an idle connection stayed open");
    }
    println!("all {} idle connections closed within {:?}", held.len(), started.elapsed());
    let again = reqwest::get(format!("{}/healthz", daemon.base)).await.unwrap();
    assert_eq!(again.status(), 200, "the address is served again once its idle connections are gone");
    daemon.stop().await;
}
