//! End-to-end tests and benchmarks across Switchboard's crates, against real servers.
//!
//! The helpers here run the real daemon in-process on `127.0.0.1:0` against a real NATS server
//! and sign requests the way a webhook source does.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchboard::Config;
use switchboard_channel_webhook::{SourceConfig, decode_secret, signature};
use switchboard_testkit::NatsServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A fixed development secret for test sources.
pub const SECRET: &str = "whsec_ZTJlLXRlc3Qtc2VjcmV0LWZvci1zd2l0Y2hib2FyZA==";

/// A daemon running in this process, with its own NATS server.
pub struct TestDaemon {
    /// The NATS server it talks to.
    pub nats: NatsServer,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl TestDaemon {
    /// Starts NATS and the daemon with one webhook source `shop` (secret [`SECRET`]) whose replies
    /// go to `outbound_url`; returns once `/readyz` says ready.
    pub async fn start(outbound_url: Option<String>, edit: impl FnOnce(&mut Config)) -> TestDaemon {
        let nats = NatsServer::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let secret_file: PathBuf = dir.path().join("shop.secret");
        std::fs::write(&secret_file, SECRET).expect("write secret");
        let mut config = Config::default();
        config.nats.url = nats.url();
        config
            .channels
            .webhook
            .sources
            .insert("shop".into(), SourceConfig { secret_env: None, secret_file: Some(secret_file), outbound_url });
        edit(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(switchboard::daemon::run(config, listener, shutdown.clone()));
        let daemon = TestDaemon { nats, base, http: reqwest::Client::new(), shutdown, task, _dir: dir };
        daemon.wait_ready(Duration::from_secs(15)).await;
        daemon
    }

    async fn wait_ready(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.http.get(format!("{}/readyz", self.base)).send().await.map(|r| r.status().as_u16());
            if matches!(status, Ok(200)) {
                return;
            }
            assert!(Instant::now() < deadline, "daemon not ready within {timeout:?}: {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs `body` to `/v1/webhooks/shop`, signed with [`SECRET`]; returns status and JSON body.
    pub async fn post_signed(&self, id: &str, body: &str) -> (u16, serde_json::Value) {
        let key = decode_secret(SECRET).expect("valid secret");
        let ts = chrono::Utc::now().timestamp();
        let resp = self
            .http
            .post(format!("{}/v1/webhooks/shop", self.base))
            .header("content-type", "application/json")
            .header(signature::ID, id)
            .header(signature::TIMESTAMP, ts.to_string())
            .header(signature::SIGNATURE, signature::sign(&key, id, ts, body.as_bytes()))
            .body(body.to_string())
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Stops the daemon and waits for it to finish cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("daemon stops within 30 s")
            .expect("daemon task")
            .expect("daemon exits cleanly");
    }
}
