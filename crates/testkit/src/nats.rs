//! A NATS server with JetStream on a free port and a temporary store.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use crate::free_port;

/// JetStream storage limit of test servers (`max_file_store`), whatever the disk's free space.
pub const TEST_MAX_FILE_STORE: &str = "1TB";

/// A running `nats-server -js`, killed on drop. Its store survives [`NatsServer::restart`].
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    store: TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free port with a fresh store; panics loudly when it cannot.
    pub fn start() -> NatsServer {
        let store = tempfile::Builder::new().prefix("sb-nats-").tempdir().expect("create a temporary NATS store");
        Self::start_on_a_free_port(store)
    }

    /// Starts a server on `store` on a free port, trying another port when the one chosen turns
    /// out to be taken (by a process that does not use [`free_port`]'s registry).
    fn start_on_a_free_port(store: TempDir) -> NatsServer {
        let mut server = NatsServer { binary: Self::binary(), port: free_port(), store, child: None };
        for _ in 0..4 {
            match server.try_spawn() {
                Ok(()) => return server,
                Err(_) => server.port = free_port(),
            }
        }
        server.spawn();
        server
    }

    /// Starts a server on `port` with a fresh store (for clients already retrying that port).
    pub fn start_on(port: u16) -> NatsServer {
        let binary = Self::binary();
        let store = tempfile::Builder::new().prefix("sb-nats-").tempdir().expect("create a temporary NATS store");
        let mut server = NatsServer { binary, port, store, child: None };
        server.spawn();
        server
    }

    /// Starts a server on a free port on an existing store, e.g. a copy of another server's
    /// (how a backup is restored); the directory is removed when the server is dropped.
    pub fn start_with_store(store: TempDir) -> NatsServer {
        Self::start_on_a_free_port(store)
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream store directory.
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// Kills the server (SIGKILL), keeping its store.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server the way an operator does (SIGTERM: it flushes its store and exits),
    /// keeping its store; waits for it to exit.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let signalled = Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success());
            if !signalled {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store (killing it first if it runs).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        if let Err(why) = self.try_spawn() {
            panic!("{why}");
        }
    }

    /// Starts the child and waits until it answers; the error says why it could not.
    fn try_spawn(&mut self) -> Result<(), String> {
        // JetStream reserves every stream's byte budget against its storage limit, which by
        // default is three quarters of the disk's free space at start: on a busy build machine the
        // contract's budgets would not fit. A fixed limit keeps tests independent of the disk.
        let config = self.store.path().join("test-nats.conf");
        let text = format!(
            "server_name: {}\nlisten: 127.0.0.1:{}\njetstream {{\n  store_dir: \"{}\"\n  max_file_store: {TEST_MAX_FILE_STORE}\n}}\n",
            self.name(),
            self.port,
            self.store.path().display()
        );
        std::fs::write(&config, text).expect("write the test server's configuration");
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        // Up means our own child is still running and answers on the port under its own name:
        // another server that holds the port must not pass for ours (a test would then share
        // another test's streams and consumers).
        let ours = format!("\"server_name\":\"{}\"", self.name());
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(format!("nats-server for {addr} exited ({status}); is the port taken?"));
            }
            let answered = TcpStream::connect(&addr).ok().and_then(|s| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line).ok()?;
                Some(line)
            });
            match answered {
                Some(info) if info.starts_with("INFO") && info.contains(&ours) => return Ok(()),
                _ if std::time::Instant::now() >= deadline => {
                    self.stop();
                    return Err(format!("nats-server on {addr} did not answer as {ours} within 15 s"));
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// The server's name (`server_name`, in its INFO greeting): its store folder's, unique.
    fn name(&self) -> String {
        self.store.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// The server binary: `$SWITCHBOARD_NATS_SERVER`, else the project's `tools/bin/nats-server`
    /// (installed by `make tools`), else `nats-server` on the `PATH`.
    pub fn binary() -> PathBuf {
        if let Some(path) = std::env::var_os("SWITCHBOARD_NATS_SERVER") {
            return PathBuf::from(path);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let local = workspace.join("tools/bin/nats-server");
        if local.exists() {
            return local;
        }
        if let Some(found) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.exists())
        {
            return found;
        }
        panic!(
            "nats-server not found: run `make tools` (installs NATS 2.15 into tools/bin) \
             or set SWITCHBOARD_NATS_SERVER to a nats-server 2.10+ binary"
        );
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::NatsServer;

    #[test]
    fn a_server_that_holds_the_port_is_never_taken_for_ours() {
        let theirs = NatsServer::start();
        let port = theirs.port();
        let ours = std::panic::catch_unwind(|| NatsServer::start_on(port));
        assert!(ours.is_err(), "a server on {port} was taken for the one just started there");
        // And one started without a port chosen simply gets another.
        let other = NatsServer::start();
        assert_ne!(other.port(), port);
    }
}
