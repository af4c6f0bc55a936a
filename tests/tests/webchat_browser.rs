//! The web chat in a real browser: Debian's Chromium, driven by playwright-core from npm, opens a
//! shop page that embeds the widget from the daemon; the visitor's message is routed to an agent's
//! helpdesk, the agent answers through the agent API, the answer shows up, survives a reload and
//! a dropped socket without loss or duplicates; markup stays text; two tabs of one visitor share
//! one conversation, and what the visitor wrote offline in a tab that was then closed is sent once
//! by the other; a message that cannot be sent is marked failed, with a retry; another site is
//! refused, while a busy address ("busy, retrying", back by itself once sockets free), a proxy
//! without WebSocket upgrades and an offline visitor are each told apart; a frame over the limit is
//! marked failed and never sent again; keys alone do everything (launcher, pre-chat form, message,
//! rating); short panels (844x390, 640x400 = 200 % zoom) keep the composer in view; axe-core finds
//! no serious or critical violation in any state reached; screenshots at 390x844, 844x390 and
//! 1280x800 go to `target/test-output/webchat-<w>x<h>.png`.
//!
//! The browser steps are in `tests/browser/webchat.mjs`; this test starts NATS, the daemon, the
//! agent's helpdesk and two host pages, then runs the script. `make tools` installs Chromium and
//! the npm package; without them this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use switchboard::config::ApiTokenConfig;
use switchboard_channel_webchat::{WebchatConfig, sign_identity};
use switchboard_channel_webhook::AgentEndpointConfig;
use switchboard_core::contract::{streams, subjects};
use switchboard_core::{Contract, Envelope};
use switchboard_e2e::{Receiver, SECRET, TestDaemon};

const ANNA_TOKEN: &str = "anna-token-for-browser-tests";
/// Texts the two-tab step of `webchat.mjs` writes: one online, one in each tab while offline.
const TAB_TEXTS: [&str; 3] =
    ["Tab A here: is my parcel insured?", "Written in tab B while offline", "Written in tab A while offline"];

/// What the signed-in visitor of `webchat.mjs` writes.
const SIGNED_TEXT: &str = "Signed in: where is my order?";

/// The text of every envelope stored on `sb.in.webchat`.
async fn stored_texts(nats_url: &str) -> Vec<String> {
    stored_envelopes(nats_url).await.into_iter().map(|e| e.text).collect()
}

/// Every envelope stored on `sb.in.webchat`.
async fn stored_envelopes(nats_url: &str) -> Vec<Envelope> {
    let js = async_nats::jetstream::new(async_nats::connect(nats_url).await.expect("connect to NATS"));
    let mut stream = js.get_stream(streams::INBOUND).await.expect("inbound stream");
    let info = stream.info().await.expect("stream info");
    let mut texts = Vec::new();
    for seq in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await
            && m.subject.as_str() == subjects::inbound("webchat")
        {
            texts.push(Envelope::from_json(&m.payload).expect("a valid envelope"));
        }
    }
    texts
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The identity key the shop signs its signed-in users' ids with.
const IDENTITY_KEY: &str = "browser-test-identity-key-0123";

/// A shop page that embeds the widget from `daemon`, with `attrs` on its script tag.
fn shop_html(daemon: &str, attrs: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1, viewport-fit=cover\"><title>Shop</title></head>\
         <body><main><h1>Shop</h1><p>Orders ship within two days.</p></main>\
         <script src=\"{daemon}/chat/widget.js\" data-lang=\"en\" data-title=\"Shop support\" {attrs} async></script>\
         </body></html>"
    )
}

/// Serves, on `listener`, a shop page that embeds the widget from `daemon` at `/`, at `/signed`
/// the same page for a signed-in user (name and email supplied, id signed), and at `/proxied` one
/// that loads the widget through `proxy`; returns the URL of `/`.
fn host_page(daemon: &str, proxy: &str, listener: tokio::net::TcpListener) -> String {
    let html = shop_html(daemon, "");
    let proxied = shop_html(proxy, "");
    let hash = sign_identity(IDENTITY_KEY.as_bytes(), "u-77");
    let signed = shop_html(
        daemon,
        &format!(
            "data-user-id=\"u-77\" data-user-hash=\"{hash}\" data-user-name=\"Olga\" data-user-email=\"olga@example.com\""
        ),
    );
    let app = axum::Router::new()
        .route("/", axum::routing::get(move || async move { axum::response::Html(html) }))
        .route("/signed", axum::routing::get(move || async move { axum::response::Html(signed) }))
        .route("/proxied", axum::routing::get(move || async move { axum::response::Html(proxied) }));
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("page serves") });
    url
}

/// A reverse proxy in front of `daemon` that passes plain HTTP (the widget, `/chat/admission`)
/// but not WebSocket upgrades, as some do: `/chat/ws` gets 502. Returns its base URL.
async fn no_upgrade_proxy(daemon: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (daemon, http) = (daemon.to_string(), reqwest::Client::new());
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: axum::http::HeaderMap| {
        let (daemon, http) = (daemon.clone(), http.clone());
        async move {
            use axum::response::IntoResponse;
            if uri.path() == "/chat/ws" {
                return (axum::http::StatusCode::BAD_GATEWAY, "no WebSocket upgrades here").into_response();
            }
            let mut request = http.get(format!("{daemon}{uri}"));
            if let Some(origin) = headers.get("origin") {
                request = request.header("origin", origin.as_bytes());
            }
            let Ok(answer) = request.send().await else {
                return axum::http::StatusCode::BAD_GATEWAY.into_response();
            };
            let mut response = axum::http::Response::builder().status(answer.status().as_u16());
            for (name, value) in answer.headers() {
                if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
                    response = response.header(name.as_str(), value.as_bytes());
                }
            }
            response.body(axum::body::Body::from(answer.bytes().await.unwrap_or_default())).unwrap().into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.expect("proxy serves") });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_works_end_to_end_in_chromium() {
    let root = workspace();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: run `make tools` (installs Debian's chromium)");
    let script = root.join("tests/browser/webchat.mjs");
    for package in ["playwright-core", "axe-core"] {
        assert!(
            root.join("tests/browser/node_modules").join(package).exists(),
            "{package} is missing: run `make tools` (npm ci in tests/browser)"
        );
    }

    let helpdesk = Receiver::start("/anna").await;
    let dir = tempfile::tempdir().unwrap();
    let (token_file, secret_file, session_file) =
        (dir.path().join("anna.token"), dir.path().join("anna.secret"), dir.path().join("session.key"));
    let identity_file = dir.path().join("identity.key");
    std::fs::write(&identity_file, IDENTITY_KEY).unwrap();
    std::fs::write(&token_file, ANNA_TOKEN).unwrap();
    std::fs::write(&secret_file, SECRET).unwrap();
    std::fs::write(&session_file, "browser-test-session-key-0123456789abcdef").unwrap();

    // The allowed page's origin goes into the daemon's configuration: bind its port first.
    let page_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_origin = format!("http://{}", page_listener.local_addr().unwrap());
    let helpdesk_url = helpdesk.url.clone();
    let origin = page_origin.clone();
    let root_kb = root.join("config/kb");
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.kb.enabled = true;
        c.kb.path = Some(root_kb);
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            // Sales asks NPS instead of CSAT: a message about a recommendation goes there.
            "teams": { "support": { "offer_timeout_secs": 300 }, "sales": { "offer_timeout_secs": 300, "survey": "nps" } },
            "rules": [ { "name": "recommend", "when": "text.contains(\"recommend\")", "team": "sales" },
                       { "name": "returns", "when": "text.contains(\"return an item\")", "tier": "L0" } ],
            "agents": [ { "id": "anna", "name": "Anna", "teams": ["support", "sales"], "tiers": ["L1"], "status": "online",
                          "default_capacity": 20, "max_total": 20 } ]
        }))
        .unwrap();
        c.channels.webhook.agents.insert(
            "anna".into(),
            AgentEndpointConfig { url: helpdesk_url, secret_env: None, secret_file: Some(secret_file) },
        );
        c.api.tokens.insert(
            "anna".into(),
            ApiTokenConfig { token_file: Some(token_file), agent: Some("anna".into()), ..Default::default() },
        );
        let mut webchat = WebchatConfig {
            enabled: true,
            session_secret_file: Some(session_file),
            identity_secret_file: Some(identity_file),
            allowed_origins: vec![origin],
            prechat: true,
            ..Default::default()
        };
        // The smallest frame limit the configuration accepts: a message at the text limit, all
        // of it characters JSON escapes, must still fit.
        let smallest = (webchat.max_text_bytes..)
            .find(|&n| {
                webchat.max_frame_bytes = n;
                webchat.validate().is_ok()
            })
            .unwrap();
        webchat.max_frame_bytes = smallest;
        c.channels.webchat = webchat;
    })
    .await;
    let proxy = no_upgrade_proxy(&daemon.base).await;
    let page = host_page(&daemon.base, &proxy, page_listener);
    let (signed_page, proxied_page) = (format!("{page}signed"), format!("{page}proxied"));
    let bad_page = host_page(&daemon.base, &proxy, tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());

    let output = root.join("target/test-output");
    std::fs::create_dir_all(&output).unwrap();
    let daemon_url = daemon.base.clone();
    let inbox = helpdesk.url.clone();
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .current_dir(root.join("tests/browser"))
            .env("SB_DAEMON_URL", daemon_url)
            .env("SB_PAGE_URL", page)
            .env("SB_BAD_PAGE_URL", bad_page)
            .env("SB_SIGNED_PAGE_URL", signed_page)
            .env("SB_PROXIED_PAGE_URL", proxied_page)
            .env("SB_AGENT_TOKEN", ANNA_TOKEN)
            .env("SB_AGENT_INBOX_URL", inbox)
            .env("SB_OUTPUT_DIR", &output)
            .env("CHROMIUM", chromium)
            .output()
            .expect("run node (Node.js 20 is on the machine)")
    });
    let out = tokio::time::timeout(Duration::from_secs(300), run).await.expect("the browser run ends").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "the browser scenario failed ({}):\n{stdout}\n{stderr}", out.status);

    // What the helpdesk saw, checked from this side too: each visitor message exactly once.
    let texts: Vec<String> = helpdesk
        .received()
        .iter()
        .filter_map(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .filter(|v| v["type"] == "message")
        .filter_map(|v| v["entry"]["text"].as_str().map(str::to_string))
        .collect();
    // (The two-tab step's first message reached anna inside its offer, the others as messages.)
    for text in ["one", "two", "three"].into_iter().chain(TAB_TEXTS[1..].iter().copied()) {
        assert_eq!(texts.iter().filter(|t| *t == text).count(), 1, "{text} reached the agent once: {texts:?}");
    }
    // And on the bus: each stored once, the one that could not be sent not at all.
    let stored = stored_texts(&daemon.nats.url()).await;
    for text in TAB_TEXTS {
        assert_eq!(stored.iter().filter(|t| *t == text).count(), 1, "{text} stored once on sb.in.webchat: {stored:?}");
    }
    assert!(!stored.iter().any(|t| t.starts_with("Too long")), "the message over the limit was stored");
    assert!(!stored.iter().any(|t| t.starts_with("Oversized")), "the frame over the limit was stored");
    // A message of the signed-in visitor carries the name the shop supplied.
    let signed = stored_envelopes(&daemon.nats.url()).await.into_iter().find(|e| e.text == SIGNED_TEXT);
    let signed = signed.expect("the signed-in visitor's message is stored");
    assert_eq!((signed.customer.id.as_str(), signed.customer.name.as_deref()), ("user:u-77", Some("Olga")));
    // The channel's own outcomes are on /metrics; of what the widgets sent only the frame over
    // the limit was refused, once (the widget marked it failed instead of sending it again; the
    // message over the text limit never left the browser).
    let metrics = daemon.http.get(format!("{}/metrics", daemon.base)).send().await.unwrap().text().await.unwrap();
    let rejected = "switchboard_inbound_total{channel=\"webchat\",outcome=\"rejected\"} 1";
    assert!(metrics.contains(rejected), "no `{rejected}` on /metrics:\n{metrics}");
    for line in metrics.lines().filter(|l| l.starts_with("switchboard_inbound_total{channel=\"webchat\"")) {
        println!("{line}");
    }
    daemon.stop().await;
}
