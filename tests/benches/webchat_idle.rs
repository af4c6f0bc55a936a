//! Memory of idle web-chat sessions: how much resident memory the server process gains per open
//! session, against a bare axum WebSocket server holding as many idle sockets in the same run.
//!
//! The servers run as child processes of this benchmark (this binary started again with
//! `WEBCHAT_IDLE_ROLE=webchat|bare`), so their resident set size (`VmRSS`) holds only the server:
//! - `webchat`: the web-chat channel under its runtime on a real NATS server (contract set up),
//!   each socket a full session: `hello`, `welcome`, the (empty) transcript read from JetStream,
//!   `synced`, then registered for live entries and pinged;
//! - `bare`: an axum WebSocket route with the same socket buffers that sends one frame and then
//!   holds the socket: what the socket itself costs, so the difference is the session's own.
//!
//! The client opens `BENCH_SESSIONS` sockets (default 5000), 64 at a time, waits until each got
//! its first frame(s), lets the server settle, and reads the server's `VmRSS` before and after.
//! Run: `make bench` (= `cargo bench -p switchboard-e2e --bench webchat_idle`). Writes
//! `bench-results/webchat_idle.json`. To see where a session's memory goes, run the web-chat server
//! under a profiler: `BENCH_WEBCHAT_WRAPPER="heaptrack -o /tmp/webchat"` (a command prefix; the
//! server names its own pid, so the figures stay the server's, with the profiler's overhead).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use switchboard_testkit::NatsServer;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

mod common;
use common::*;

const ROLE: &str = "WEBCHAT_IDLE_ROLE";
const ORIGIN: &str = "http://shop.bench";

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match std::env::var(ROLE).ok().as_deref() {
        Some("webchat") => rt.block_on(serve_webchat()),
        Some("bare") => rt.block_on(serve_bare()),
        _ => rt.block_on(measure()),
    }
}

/// Child: the web-chat channel on the NATS server in `NATS_URL`; prints `PORT <n>`.
async fn serve_webchat() -> anyhow::Result<()> {
    use switchboard_adapter::ChannelRuntime;
    use switchboard_bus::{Bus, BusConfig, BusSlot};
    use switchboard_channel_webchat::{WebchatChannel, WebchatConfig};
    let url = std::env::var("NATS_URL").context("NATS_URL")?;
    let stop = tokio_util::sync::CancellationToken::new();
    let bus = Bus::connect(&BusConfig::for_url(url), &stop).await?;
    bus.ensure_contract().await?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("session.key");
    std::fs::write(&key, "bench-session-key-0123456789abcdef0123")?;
    let cfg = WebchatConfig {
        enabled: true,
        session_secret_file: Some(key),
        allowed_origins: vec![ORIGIN.into()],
        max_connections_per_ip: 1_000_000,
        ..Default::default()
    };
    let channel = WebchatChannel::new(&cfg, "main", BusSlot::ready(bus.clone()))?;
    let runtime = ChannelRuntime::new(std::sync::Arc::new(channel), cfg.runtime.clone(), BusSlot::ready(bus), stop);
    let app = runtime.routes().context("routes")?;
    let _running = runtime.spawn();
    serve(app).await
}

/// Child: a bare WebSocket server that greets and holds each socket; prints `PORT <n>`.
async fn serve_bare() -> anyhow::Result<()> {
    use axum::extract::ws::{Message as AxMessage, WebSocketUpgrade};
    let app = axum::Router::new().route(
        "/chat/ws",
        axum::routing::get(|upgrade: WebSocketUpgrade| async move {
            let buffers = switchboard_channel_webchat::SOCKET_BUFFER_BYTES;
            upgrade.read_buffer_size(buffers).write_buffer_size(buffers).on_upgrade(|mut ws| async move {
                if ws.send(AxMessage::Text("{\"type\":\"synced\"}".into())).await.is_err() {
                    return;
                }
                while let Some(Ok(_)) = ws.recv().await {}
            })
        }),
    );
    serve(app).await
}

async fn serve(app: axum::Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {} {}", listener.local_addr()?.port(), std::process::id());
    // Exit when the parent closes our stdin.
    tokio::spawn(async {
        let mut buf = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut tokio::io::stdin(), &mut buf).await;
        std::process::exit(0);
    });
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

/// A server child, its port and the server's own pid (the child's, unless it runs under a wrapper).
struct Server {
    child: Child,
    port: u16,
    pid: u32,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(role: &str, nats_url: &str) -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?;
    let wrapper = std::env::var("BENCH_WEBCHAT_WRAPPER").ok().filter(|_| role == "webchat");
    let mut command = match wrapper.as_deref().map(str::split_whitespace) {
        Some(mut words) => {
            let mut command = Command::new(words.next().context("empty BENCH_WEBCHAT_WRAPPER")?);
            command.args(words).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    let mut child = command
        .env(ROLE, role)
        .env("NATS_URL", nats_url)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    // A wrapper may say things first; the server's line starts with `PORT`.
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    while !line.starts_with("PORT ") {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            bail!("{role} server ended before naming its port");
        }
    }
    let (port, pid) =
        line.trim().strip_prefix("PORT ").and_then(|l| l.split_once(' ')).context("child said no port")?;
    // Kept open and drained: a wrapper that reports at its end must not die of a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Ok(Server { child, port: port.parse()?, pid: pid.parse()? })
}

fn rss_kib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens one socket; for the web chat, says hello and waits for `synced`.
async fn open(port: u16, hello: bool) -> anyhow::Result<Socket> {
    let mut request = format!("ws://127.0.0.1:{port}/chat/ws").into_client_request()?;
    request.headers_mut().insert("origin", ORIGIN.parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await?;
    if hello {
        ws.send(Message::text(r#"{"type":"hello","after":0,"lang":"en"}"#)).await?;
    }
    loop {
        match tokio::time::timeout(STALL, ws.next()).await? {
            Some(Ok(Message::Text(t))) if t.contains("\"synced\"") => return Ok(ws),
            Some(Ok(_)) => continue,
            other => bail!("socket ended before synced: {other:?}"),
        }
    }
}

/// Opens `n` sockets against the server; returns them, the RSS gained (KiB) and the open rate.
async fn hold(server: &Server, n: usize, hello: bool) -> anyhow::Result<(Vec<Socket>, f64, f64)> {
    // One socket first, so lazily built state (consumers, buffers) is not counted per session.
    drop(open(server.port, hello).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(server.pid)?;
    let start = Instant::now();
    let sockets: Vec<Socket> = futures::stream::iter(0..n)
        .map(|_| open(server.port, hello))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(server.pid)?;
    Ok((sockets, after - before, rate))
}

async fn measure() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_SESSIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let nats = NatsServer::start();
    println!("webchat_idle: {n} idle sockets per server");

    let bare = spawn("bare", &nats.url())?;
    let (bare_sockets, bare_kib, bare_rate) = hold(&bare, n, false).await?;
    drop(bare_sockets);
    drop(bare);

    let webchat = spawn("webchat", &nats.url())?;
    let (chat_sockets, chat_kib, chat_rate) = hold(&webchat, n, true).await?;
    let rss_total = rss_kib(webchat.pid)?;
    drop(chat_sockets);
    drop(webchat);

    let per_session = chat_kib / n as f64;
    let per_bare = bare_kib / n as f64;
    let metrics = vec![
        Metric { name: "sessions", value: n as f64, unit: "count", baseline: None },
        Metric { name: "rss_gain_mib", value: chat_kib / 1024.0, unit: "MiB", baseline: Some(bare_kib / 1024.0) },
        Metric { name: "rss_per_session_kib", value: per_session, unit: "KiB", baseline: Some(per_bare) },
        Metric { name: "rss_total_mib", value: rss_total / 1024.0, unit: "MiB", baseline: None },
        Metric { name: "sessions_opened_per_sec", value: chat_rate, unit: "1/s", baseline: Some(bare_rate) },
    ];
    print_table(&metrics);
    let path = write_json("webchat_idle", &metrics)?;
    println!("\nwritten to {}", path.display());
    Ok(())
}
