//! A three-node (or n-node) NATS JetStream cluster on loopback ports, each node with its own
//! temporary store, configured like `deploy/nats/cluster.conf` (routes between all nodes,
//! `sync_interval: always`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::{NatsServer, free_port, wait_until};

/// One node: its ports stay the same across restarts, so the others' routes find it again.
struct Node {
    name: String,
    port: u16,
    monitor: u16,
    config: PathBuf,
    child: Option<Child>,
}

/// A running cluster, killed on drop. Nodes can be killed and restarted on their stores.
pub struct NatsCluster {
    binary: PathBuf,
    nodes: Vec<Node>,
    dir: Option<TempDir>,
}

impl NatsCluster {
    /// Starts `n` nodes and waits until JetStream has a meta leader and every node is healthy;
    /// panics loudly when it cannot.
    pub fn start(n: usize) -> NatsCluster {
        let binary = NatsServer::binary();
        let dir = tempfile::Builder::new().prefix("sb-nats-cluster-").tempdir().expect("create a temporary directory");
        let ports: Vec<(u16, u16, u16)> = (0..n).map(|_| (free_port(), free_port(), free_port())).collect();
        let routes: Vec<String> = ports.iter().map(|(_, route, _)| format!("nats-route://127.0.0.1:{route}")).collect();
        let mut nodes = Vec::with_capacity(n);
        for (i, (port, route, monitor)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.path().join(&name);
            std::fs::create_dir_all(&store).expect("create a node store");
            let config = dir.path().join(format!("{name}.conf"));
            let text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\nlog_file: \"{log}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n  max_file_store: {max}\n}}\n\
                 cluster {{\n  name: sb-test\n  listen: 127.0.0.1:{route}\n  routes: [\n    {routes}\n  ]\n}}\n",
                store = store.display(),
                max = crate::nats::TEST_MAX_FILE_STORE,
                log = dir.path().join(format!("{name}.log")).display(),
                routes = routes.join("\n    "),
            );
            std::fs::write(&config, text).expect("write a node configuration");
            nodes.push(Node { name, port: *port, monitor: *monitor, config, child: None });
        }
        let mut cluster = NatsCluster { binary, nodes, dir: Some(dir) };
        for i in 0..n {
            cluster.spawn(i);
        }
        cluster.wait_healthy();
        cluster
    }

    /// Every node's client URL, comma-separated (what a client's `nats.url` lists).
    pub fn url(&self) -> String {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.port)).collect::<Vec<_>>().join(",")
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A node's name (`n1`, `n2`, ...).
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The index of the running node that leads JetStream's meta group, if one is known.
    pub fn meta_leader(&self) -> Option<usize> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.child.is_some()).find_map(|(_, n)| {
            let body = http_get(n.monitor, "/jsz")?;
            let meta = &body[body.find("\"meta_cluster\"")?..];
            let leader = &meta[meta.find("\"leader\"")? + "\"leader\"".len()..];
            let name = leader.split('"').nth(1)?;
            self.nodes.iter().position(|n| n.name == name)
        })
    }

    /// Kills node `i` (SIGKILL), keeping its store.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again on its store and waits until the cluster is healthy.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_healthy();
    }

    /// Waits until every running node reports healthy (`/healthz`: JetStream current with its
    /// meta leader) and a meta leader is known.
    pub fn wait_healthy(&mut self) {
        wait_until("a healthy NATS cluster with a JetStream meta leader", Duration::from_secs(60), || {
            for node in &mut self.nodes {
                if let Some(Ok(Some(status))) = node.child.as_mut().map(|c| c.try_wait()) {
                    panic!("nats-server {} exited ({status})", node.name);
                }
            }
            self.nodes
                .iter()
                .filter(|n| n.child.is_some())
                .all(|n| http_get(n.monitor, "/healthz").is_some_and(|b| b.contains("\"ok\"")))
                && self.meta_leader().is_some()
        });
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        node.child = Some(child);
    }
}

/// The body of `GET path` on the monitoring port when it answers 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.split_whitespace().nth(1).is_some_and(|code| code == "200").then(|| body.to_string())
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("NATS cluster configurations, stores and logs kept in {}", dir.keep().display());
        }
    }
}
