//! A real Matrix homeserver for the Matrix tests: Synapse (from PyPI, installed by `make tools`
//! into `tools/synapse`) on a free loopback port with SQLite, no federation, registration by
//! shared secret only and rate limits raised so a test's burst is not throttled.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use tempfile::TempDir;

use crate::free_port;

/// The server name of test homeservers: users are `@name:localhost`.
pub const SYNAPSE_SERVER_NAME: &str = "localhost";

/// The version `make tools` installs (the Makefile's `SYNAPSE_VERSION`).
pub const SYNAPSE_VERSION: &str = "1.163.2";

/// How long Synapse may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Synapse, killed on drop; its data (SQLite, media, keys) survives [`Synapse::restart`].
pub struct Synapse {
    python: PathBuf,
    port: u16,
    dir: TempDir,
    secret: String,
    child: Option<Child>,
    started_in: Duration,
}

/// A user registered on the test homeserver.
#[derive(Debug, Clone)]
pub struct MatrixUser {
    /// `@name:localhost`.
    pub user_id: String,
    /// The user's access token.
    pub access_token: String,
}

impl Synapse {
    /// Writes a configuration and signing key into a fresh directory and starts Synapse on a
    /// free port; panics loudly when it is not installed or does not answer within a minute.
    pub fn start() -> Synapse {
        let python = Self::python();
        let dir = tempfile::Builder::new().prefix("sb-synapse-").tempdir().expect("create a temporary Synapse dir");
        let secret = format!("sb-test-{}", std::process::id());
        let mut synapse = Synapse { python, port: free_port(), dir, secret, child: None, started_in: Duration::ZERO };
        synapse.write_config();
        let keys = Command::new(&synapse.python)
            .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
            .arg(synapse.config_path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", synapse.python.display()));
        assert!(
            keys.status.success(),
            "Synapse could not generate its signing key: {}",
            String::from_utf8_lossy(&keys.stderr)
        );
        synapse.spawn();
        synapse
    }

    /// `http://127.0.0.1:<port>`, the client-server API's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How long the last start took until `/_matrix/client/versions` answered.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Synapse's own log (kept in its data directory), for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("synapse.log")).unwrap_or_default()
    }

    /// Kills Synapse (SIGKILL), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data (killing it first if it runs).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Registers `localpart` with the shared secret (`/_synapse/admin/v1/register`: a nonce,
    /// then an HMAC-SHA1 over nonce, user, password and admin flag) and returns its token.
    pub fn register(&self, localpart: &str, admin: bool) -> MatrixUser {
        let nonce = self.request("GET", "/_synapse/admin/v1/register", None);
        let nonce = nonce["nonce"].as_str().unwrap_or_else(|| panic!("no nonce from Synapse: {nonce}")).to_string();
        let password = format!("pw-{localpart}-{}", self.port);
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(self.secret.as_bytes()).expect("HMAC takes any key");
        let admin_flag = if admin { "admin" } else { "notadmin" };
        for (i, part) in [nonce.as_str(), localpart, &password, admin_flag].iter().enumerate() {
            if i > 0 {
                mac.update(b"\x00");
            }
            mac.update(part.as_bytes());
        }
        let body = serde_json::json!({
            "nonce": nonce, "username": localpart, "password": password, "admin": admin,
            "mac": hex::encode(mac.finalize().into_bytes()),
        });
        let answer = self.request("POST", "/_synapse/admin/v1/register", Some(&body));
        let (Some(user_id), Some(token)) = (answer["user_id"].as_str(), answer["access_token"].as_str()) else {
            panic!("Synapse did not register {localpart}: {answer}");
        };
        MatrixUser { user_id: user_id.into(), access_token: token.into() }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("homeserver.yaml")
    }

    /// The homeserver's configuration: everything in the data directory, client API only on
    /// 127.0.0.1, no federation or key servers, no phoning home, limits that a test cannot hit.
    fn write_config(&self) {
        let dir = self.dir.path().display();
        let high = "{per_second: 1000, burst_count: 1000}";
        let text = format!(
            r#"server_name: "{SYNAPSE_SERVER_NAME}"
pid_file: "{dir}/homeserver.pid"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{dir}/homeserver.db"
media_store_path: "{dir}/media"
signing_key_path: "{dir}/signing.key"
registration_shared_secret: "{secret}"
enable_registration: false
report_stats: false
macaroon_secret_key: "{secret}-macaroon"
form_secret: "{secret}-form"
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
enable_metrics: false
presence:
  enabled: false
max_upload_size: 50M
rc_message: {high}
rc_registration: {high}
rc_login:
  address: {high}
  account: {high}
  failed_attempts: {high}
rc_joins:
  local: {high}
  remote: {high}
rc_joins_per_room: {high}
rc_invites:
  per_room: {high}
  per_user: {high}
  per_issuer: {high}
rc_media_create: {high}
rc_room_creation: {high}
"#,
            port = self.port,
            secret = self.secret,
        );
        std::fs::write(self.config_path(), text).expect("write the Synapse configuration");
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("synapse.log"))
            .expect("open the Synapse log");
        let started = Instant::now();
        let child = Command::new(&self.python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(self.config_path())
            .current_dir(self.dir.path())
            .stdout(Stdio::from(log.try_clone().expect("duplicate the log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start Synapse ({}): {e}", self.python.display()));
        self.child = Some(child);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                panic!("Synapse on port {} exited ({status}) while starting; its log:\n{}", self.port, self.log());
            }
            if self.try_request("GET", "/_matrix/client/versions", None).is_ok_and(|v| v["versions"].is_array()) {
                self.started_in = started.elapsed();
                return;
            }
            if started.elapsed() > START_TIMEOUT {
                self.stop();
                panic!(
                    "Synapse on port {} did not answer within {START_TIMEOUT:?}; its log:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One HTTP/1.0 request to the client port (blocking: the harness needs no async runtime).
    fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> serde_json::Value {
        self.try_request(method, path, body).unwrap_or_else(|e| panic!("{method} {path} on Synapse: {e}"))
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(body.as_bytes()))
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
        let answer = String::from_utf8_lossy(&answer);
        let (_, json) = answer.split_once("\r\n\r\n").ok_or("no HTTP body")?;
        serde_json::from_str(json).map_err(|e| format!("{e}: {json}"))
    }

    /// The Python of `tools/synapse` (a venv with `matrix-synapse`, installed by `make tools`), or
    /// `$SWITCHBOARD_SYNAPSE_PYTHON`; panics with the command that installs it.
    pub fn python() -> PathBuf {
        if let Some(path) = std::env::var_os("SWITCHBOARD_SYNAPSE_PYTHON") {
            return PathBuf::from(path);
        }
        let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/synapse/bin/python");
        if local.exists() {
            return local;
        }
        panic!(
            "Synapse not found at {}: run `make tools` (installs matrix-synapse {SYNAPSE_VERSION} into tools/synapse) \
             or set SWITCHBOARD_SYNAPSE_PYTHON to a Python with matrix-synapse installed",
            local.display()
        );
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.stop();
    }
}
