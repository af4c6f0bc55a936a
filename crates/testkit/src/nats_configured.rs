//! A NATS server with JetStream started from a configuration block (authentication, TLS), for
//! tests of what [`crate::NatsServer`]'s command-line flags cannot express.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_until};

/// A nats-server with JetStream whose configuration ends with an authentication or TLS block;
/// killed on drop.
pub struct ConfiguredNatsServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl ConfiguredNatsServer {
    /// Starts a server whose configuration ends with the block `prepare` returns; `prepare` gets
    /// the server's directory, to write the files (keys, certificates) the block names. Panics
    /// loudly when the configuration fails `nats-server -t` or the server does not come up.
    pub fn start(prepare: impl FnOnce(&Path) -> String) -> ConfiguredNatsServer {
        let dir = tempfile::Builder::new().prefix("sb-nats-auth-").tempdir().expect("a temporary directory");
        let block = prepare(dir.path());
        let port = free_port();
        let conf = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n{block}\n",
            dir.path().join("js").display()
        );
        let conf_path = dir.path().join("nats.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let check = Command::new(crate::NatsServer::binary()).arg("-t").arg("-c").arg(&conf_path).output().unwrap();
        assert!(
            check.status.success(),
            "nats-server refuses the test's configuration: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let log = std::fs::File::create(dir.path().join("nats.log")).unwrap();
        let child = Command::new(crate::NatsServer::binary())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", crate::NatsServer::binary().display()));
        let mut server = ConfiguredNatsServer { child, port, dir };
        // Up means our own child still runs and something greets on the port with INFO (sent
        // before any TLS handshake), so that another process on the port cannot pass for it.
        wait_until(&format!("nats-server on port {port}"), Duration::from_secs(15), || {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("nats-server exited ({status}): {}", server.log());
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut greeting = [0u8; 4];
                std::io::Read::read_exact(&mut s, &mut greeting).is_ok() && &greeting == b"INFO"
            })
        });
        server
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `nats://<userinfo>@127.0.0.1:<port>`.
    pub fn url_with(&self, userinfo: &str) -> String {
        format!("nats://{userinfo}@127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's directory, for secrets and certificates the test writes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the server logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("nats.log")).unwrap_or_default()
    }
}

impl Drop for ConfiguredNatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
