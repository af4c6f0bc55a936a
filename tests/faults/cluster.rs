//! The daemon as child processes (so it can be killed with SIGKILL) against a real NATS server:
//! the built `switchboard` binary, one generated TOML file per process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_bus::async_nats;
use switchboard_testkit::{NatsCluster, NatsServer, free_port};

use crate::SECRET;

/// The admin token every process accepts (defines agents).
pub const ADMIN_TOKEN: &str = "faults-admin-token";
/// The integration token every process accepts (acts for any agent).
pub const DESK_TOKEN: &str = "faults-desk-token";
/// The routing group.
pub const GROUP: &str = "default";

/// The built `switchboard` binary: next to the test executable's `deps/` directory, else under
/// `$CARGO_TARGET_DIR/debug`; panics when neither exists (`cargo build -p switchboard` makes it).
pub fn binary() -> PathBuf {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(profile_dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(profile_dir.join("switchboard"));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("debug/switchboard"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/switchboard"));
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "the switchboard binary is missing (looked at {candidates:?}): run `cargo build -p switchboard` \
             (`make test` builds it first)"
        )
    })
}

/// What one daemon process runs.
#[derive(Debug, Clone)]
pub struct Role {
    /// A name for logs and kill reports, e.g. `all`, `router-b`, `adapter`.
    pub name: String,
    /// Runs a router (several contend for the lease).
    pub router: bool,
    /// Runs the webhook channel (inbound, customer replies, agent endpoints).
    pub webhook: bool,
    /// Runs the web chat.
    pub webchat: bool,
    /// The routing groups its router runs (`router.groups`); empty: every group.
    pub groups: Vec<String>,
}

impl Role {
    /// A role by name with the given components.
    pub fn new(name: &str, router: bool, webhook: bool, webchat: bool) -> Role {
        Role { name: name.into(), router, webhook, webchat, groups: Vec::new() }
    }

    /// A router-only process for the routing groups `groups`.
    pub fn router_of(name: &str, groups: &[&str]) -> Role {
        Role { groups: groups.iter().map(|g| g.to_string()).collect(), ..Role::new(name, true, false, false) }
    }
}

/// Settings shared by every process of a cluster.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Webhook sources: name → where their customers' replies are POSTed.
    pub sources: BTreeMap<String, String>,
    /// Outbound attempts before a dead letter (with no retry window: `retry_for_secs = 0`).
    pub max_attempts: u64,
    /// Offer timeout of the support team, seconds.
    pub offer_timeout_secs: u64,
    /// First-response target for P3 (the default priority), seconds.
    pub first_response_secs: u64,
    /// Extra environment for the child (e.g. libfaketime).
    pub env: Vec<(String, String)>,
    /// Extra routing configuration (TOML under `[routing]`: teams, groups) after team `support`.
    pub routing_extra: String,
    /// The team the web chat reports availability for.
    pub webchat_team: String,
    /// `nats.replicas`: 3 on a three-node cluster.
    pub replicas: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            sources: BTreeMap::new(),
            max_attempts: 50,
            offer_timeout_secs: 3600,
            first_response_secs: 86_400,
            env: Vec::new(),
            routing_extra: String::new(),
            webchat_team: "support".into(),
            replicas: 1,
        }
    }
}

/// One daemon process; its port and configuration stay the same across restarts.
pub struct Daemon {
    /// What it runs.
    pub role: Role,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    config: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Times it was killed.
    pub kills: u32,
}

impl Daemon {
    /// Writes the configuration for `role` into `dir`; does not start it.
    pub fn new(dir: &Path, nats_url: &str, role: Role, settings: &Settings) -> Daemon {
        let port = free_port();
        let secret = |name: &str, value: &str| {
            let path = dir.join(name);
            std::fs::write(&path, value).expect("write a secret file");
            path.display().to_string()
        };
        let (shop_secret, session, admin, desk) = (
            secret("source.secret", SECRET),
            secret("webchat.secret", "faults-webchat-session-secret-0123456789"),
            secret("admin.token", ADMIN_TOKEN),
            secret("desk.token", DESK_TOKEN),
        );
        let mut sources = String::new();
        for (name, url) in &settings.sources {
            sources.push_str(&format!(
                "[channels.webhook.sources.{name}]\nsecret_file = \"{shop_secret}\"\noutbound_url = \"{url}\"\n"
            ));
        }
        let first = settings.first_response_secs;
        let config = format!(
            r#"[nats]
url = "{nats_url}"
client_name = "sb-{name}"
replicas = {replicas}
[nats.connect_backoff]
initial_ms = 100
max_ms = 1000

[http]
listen = "127.0.0.1:{port}"
request_timeout_ms = 15000

[log]
level = "info,switchboard_bus=debug"

[shutdown]
grace_secs = 5

[router]
enabled = {router}
groups = {groups:?}
lease_ttl_secs = 2

[metrics]
enabled = false

[api]
command_wait_ms = 2000
[api.tokens.ops]
token_file = "{admin}"
admin = true
[api.tokens.desk]
token_file = "{desk}"

[channels.webhook]
enabled = {webhook}
request_timeout_ms = 5000
# The agents' helpdesks are the harness's receivers, on loopback.
allowed_networks = ["127.0.0.1/32"]
[channels.webhook.runtime]
max_attempts = {attempts}
retry_for_secs = 0
concurrency = 8
ack_wait_secs = 3
[channels.webhook.runtime.backoff]
initial_ms = 100
max_ms = 1000
[channels.webhook.runtime.rate_limit]
per_minute = 6000
burst = 1000
{sources}
[channels.webchat]
enabled = {webchat}
session_secret_file = "{session}"
allowed_origins = ["*"]
team = "{webchat_team}"
prechat = false
max_connections_per_ip = 100000
ip_messages_per_minute = 100000
availability_cache_secs = 1
[channels.webchat.runtime]
max_attempts = {attempts}
retry_for_secs = 0
ack_wait_secs = 3
[channels.webchat.runtime.backoff]
initial_ms = 100
max_ms = 1000

[routing]
default_team = "support"
timezone = "UTC"
csat_survey = false
[routing.teams.support]
strategy = "longest_idle"
offer_timeout_secs = {offer}
first_response_secs = {{ P1 = {first}, P2 = {first}, P3 = {first}, P4 = {first} }}
{routing_extra}
"#,
            groups = role.groups,
            replicas = settings.replicas,
            webchat_team = settings.webchat_team,
            routing_extra = settings.routing_extra,
            name = role.name,
            router = role.router,
            webhook = role.webhook,
            webchat = role.webchat,
            attempts = settings.max_attempts,
            offer = settings.offer_timeout_secs,
        );
        let path = dir.join(format!("{}.toml", role.name));
        std::fs::write(&path, config).expect("write a daemon configuration");
        Daemon {
            base: format!("http://127.0.0.1:{port}"),
            log: dir.join(format!("{}.log", role.name)),
            config: path,
            env: settings.env.clone(),
            role,
            child: None,
            kills: 0,
        }
    }

    /// Starts the process (appending to its log); does not wait for it to be ready.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.role.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open the daemon log");
        let err = log.try_clone().expect("clone the log handle");
        let mut cmd = Command::new(binary());
        cmd.args(["run", "--config"]).arg(&self.config).stdin(Stdio::null()).stdout(log).stderr(err);
        cmd.env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display())));
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, then reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.kills += 1;
        }
    }

    /// Panics (with the log's tail) if the process exited by itself.
    pub fn assert_running(&mut self) {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
            panic!("{} exited by itself ({status}); log:\n{}", self.role.name, self.log_tail());
        }
    }

    /// The last lines of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `GET path`'s status, or `None` when nothing answers.
    pub async fn status(&self, http: &reqwest::Client, path: &str) -> Option<u16> {
        let resp = http.get(format!("{}{path}", self.base)).timeout(Duration::from_secs(2)).send().await;
        resp.ok().map(|r| r.status().as_u16())
    }

    /// Waits until `/readyz` answers `200`.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            if self.status(http, "/readyz").await == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready within {timeout:?}; log:\n{}",
                self.role.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A client of a server or cluster: `url` may list several servers with commas.
pub async fn connect(url: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    async_nats::connect(switchboard_bus::server_list(url).expect("a valid NATS URL")).await
}

/// What the processes of a run talk to: one NATS server, or a cluster of nodes.
pub enum Nats {
    /// One server.
    Single(NatsServer),
    /// A JetStream cluster.
    Cluster(NatsCluster),
}

impl From<NatsServer> for Nats {
    fn from(server: NatsServer) -> Nats {
        Nats::Single(server)
    }
}

impl From<NatsCluster> for Nats {
    fn from(cluster: NatsCluster) -> Nats {
        Nats::Cluster(cluster)
    }
}

impl Nats {
    /// The URL(s) clients connect to.
    pub fn url(&self) -> String {
        match self {
            Nats::Single(s) => s.url(),
            Nats::Cluster(c) => c.url(),
        }
    }

    /// The single server; panics for a cluster (whose nodes are stopped one by one).
    pub fn server(&mut self) -> &mut NatsServer {
        match self {
            Nats::Single(s) => s,
            Nats::Cluster(_) => panic!("this run has a NATS cluster: stop its nodes through `nodes()`"),
        }
    }

    /// The cluster's nodes; panics for a single server.
    pub fn nodes(&mut self) -> &mut NatsCluster {
        match self {
            Nats::Cluster(c) => c,
            Nats::Single(_) => panic!("this run has a single NATS server"),
        }
    }

    /// Kills the single server (SIGKILL), keeping its store.
    pub fn stop(&mut self) {
        self.server().stop();
    }

    /// Stops the single server with SIGTERM, keeping its store.
    pub fn terminate(&mut self) {
        self.server().terminate();
    }

    /// Starts the single server again on its store.
    pub fn restart(&mut self) {
        self.server().restart();
    }
}

/// A NATS server (or cluster) and the daemon processes of one run.
pub struct Cluster {
    /// The NATS server or cluster (a single server can be stopped and restarted on its store).
    pub nats: Nats,
    /// The processes.
    pub daemons: Vec<Daemon>,
    /// A client for health checks.
    pub http: reqwest::Client,
    /// Where configurations, secrets and logs are (kept when the test fails).
    dir: Option<tempfile::TempDir>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("FAULTS: daemon configurations and logs kept in {}", dir.keep().display());
        }
    }
}

impl Cluster {
    /// Starts NATS and one process per role, and waits until all are ready.
    pub async fn start(roles: Vec<Role>, settings: &Settings) -> Cluster {
        let nats = NatsServer::start();
        let mut cluster = Cluster::configure(nats, roles, settings);
        for d in &mut cluster.daemons {
            d.spawn();
        }
        cluster.wait_ready().await;
        cluster
    }

    /// Writes the configurations against `nats`; starts nothing.
    pub fn configure(nats: impl Into<Nats>, roles: Vec<Role>, settings: &Settings) -> Cluster {
        let nats = nats.into();
        let dir = tempfile::Builder::new().prefix("sb-faults-").tempdir().expect("temp dir");
        let daemons = roles.into_iter().map(|r| Daemon::new(dir.path(), &nats.url(), r, settings)).collect();
        Cluster { nats, daemons, http: reqwest::Client::new(), dir: Some(dir) }
    }

    /// Waits until every process says ready.
    pub async fn wait_ready(&mut self) {
        let http = self.http.clone();
        for d in &mut self.daemons {
            d.wait_ready(&http, Duration::from_secs(60)).await;
        }
    }

    /// Base URLs of the processes that take webhooks and web chats.
    pub fn entry_points(&self) -> Vec<String> {
        self.daemons.iter().filter(|d| d.role.webhook).map(|d| d.base.clone()).collect()
    }

    /// The index of the process holding the router lease, if a running one does.
    pub async fn leader(&self) -> Option<usize> {
        self.leader_of(GROUP).await
    }

    /// The index of the process holding routing group `group`'s lease, if a running one does.
    pub async fn leader_of(&self, group: &str) -> Option<usize> {
        let client = connect(&self.nats.url()).await.ok()?;
        let kv =
            async_nats::jetstream::new(client).get_key_value(switchboard_core::contract::buckets::ROUTER).await.ok()?;
        let value = kv.get(format!("lease.router.{group}")).await.ok()??;
        let record: serde_json::Value = serde_json::from_slice(&value).ok()?;
        let pid: u32 = record["holder"].as_str()?.split(':').nth(1)?.parse().ok()?;
        self.daemons.iter().position(|d| d.pid() == Some(pid))
    }

    /// Waits until every durable consumer on every stream has nothing pending and nothing
    /// unacknowledged: all the work the bus holds was done (so no late delivery is still coming).
    pub async fn wait_quiescent(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match busy_consumers(&self.nats.url()).await {
                Ok(busy) if busy.is_empty() => return,
                Ok(busy) => busy.join(", "),
                Err(e) => e,
            };
            assert!(Instant::now() < deadline, "the bus never went quiet within {timeout:?}: {last}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Panics naming the process if any exited by itself.
    pub fn assert_running(&mut self) {
        for d in &mut self.daemons {
            d.assert_running();
        }
    }
}

/// Durable consumers with pending or unacknowledged messages, as `stream/consumer: n+m`.
async fn busy_consumers(url: &str) -> Result<Vec<String>, String> {
    let client = connect(url).await.map_err(|e| e.to_string())?;
    let js = async_nats::jetstream::new(client);
    let mut busy = Vec::new();
    let names: Vec<String> = js.stream_names().filter_map(|n| async { n.ok() }).collect().await;
    for name in names {
        let stream = js.get_stream(&name).await.map_err(|e| e.to_string())?;
        let mut consumers = stream.consumers();
        while let Some(info) = consumers.next().await {
            let info = info.map_err(|e| e.to_string())?;
            if info.config.durable_name.is_some() && (info.num_pending > 0 || info.num_ack_pending > 0) {
                busy.push(format!("{name}/{}: {}+{}", info.name, info.num_pending, info.num_ack_pending));
            }
        }
    }
    Ok(busy)
}
