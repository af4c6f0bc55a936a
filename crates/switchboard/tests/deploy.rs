//! The deployment files in `deploy/` checked with the real tools that consume them: the systemd
//! unit with `systemd-analyze` and a `make install` into a temporary root, the Containerfile's
//! rules (no container engine runs here) and its HEALTHCHECK against the real daemon, the
//! Kubernetes manifests' probes, ports, images and security settings against the ConfigMap's
//! configuration (which `switchboard check-config` must accept for every role, and on which the
//! router and ingress roles must become ready against a real NATS), and the NATS cluster
//! configuration with `nats-server -t`.

#[path = "deploy/container.rs"]
mod container;
#[path = "deploy/k8s.rs"]
mod k8s;
#[path = "deploy/nats.rs"]
mod nats;
#[path = "deploy/systemd.rs"]
mod systemd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// A file of the repository, read whole.
fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The daemon binary cargo built for these tests.
fn switchboard() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

/// A program on the PATH, or a loud failure saying how to get it.
fn tool(name: &str, hint: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on the PATH: {hint}"))
}

/// Runs a command to completion, failing loudly when it cannot start.
fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `switchboard check-config FILE` with only `env` (and PATH) in the environment, so that the
/// caller's own SWITCHBOARD__ variables cannot change the verdict.
fn check_config(file: &Path, env: &[(String, String)]) -> Result<(), String> {
    let mut command = Command::new(switchboard());
    command.arg("check-config").arg(file).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let out = run(&mut command);
    if out.status.success() { Ok(()) } else { Err(format!("{}{}", text(&out.stdout), text(&out.stderr))) }
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Running {
    /// Starts `switchboard run --config FILE` with exactly `env` (plus PATH).
    fn daemon(config: &Path, env: &[(String, String)]) -> Running {
        let mut command = Command::new(switchboard());
        command
            .args(["run", "--config"])
            .arg(config)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Running(command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", switchboard())))
    }

    /// Panics when the process already exited: a daemon that died is never "not ready yet".
    fn assert_running(&mut self, what: &str) {
        if let Ok(Some(status)) = self.0.try_wait() {
            panic!("{what} exited ({status})");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `http://127.0.0.1:{port}{path}` and its status; `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// `make run`'s development secrets are owner-only, old world-readable files included, and a
/// variable already set is used instead of a file.
#[test]
fn make_runs_secrets_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = run.join("demo-agent-token");
    std::fs::write(&old, "an-older-token-written-0644").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("bash")
        .arg(repo().join("scripts/dev-secrets.sh"))
        .arg(&run)
        .env("SWITCHBOARD_WEBCHAT_SECRET", "set-by-the-operator")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exports = String::from_utf8(out.stdout).unwrap();
    assert!(exports.contains("export SWITCHBOARD_DEMO_AGENT_TOKEN=an-older-token-written-0644"), "{exports}");
    assert!(exports.contains("export SWITCHBOARD_WEBCHAT_SECRET=set-by-the-operator"), "{exports}");
    assert!(exports.contains("export SWITCHBOARD_DEMO_WEBHOOK_SECRET=whsec_"), "{exports}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&run), 0o700);
    let mut files: Vec<_> = std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "no file for the variable that was set: {files:?}");
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}
