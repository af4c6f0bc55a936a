//! NATS credentials through the daemon: `check-config` names a `[nats]` setting that cannot work,
//! the daemon reads its password from `password_env` and becomes ready on a server that requires
//! it, and a wrong password stops it at once with one clear error instead of a reconnect loop.
//! (Every other way to authenticate is tested on the bus itself, in crates/bus/tests/auth.rs.)

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use switchboard_testkit::{ConfiguredNatsServer, free_port, wait_until};

const PASSWORD: &str = "daemon-password-7";
const PASSWORD_VAR: &str = "SB_TEST_NATS_PASSWORD";

fn check_config(path: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.arg("check-config").arg(path).env_remove(PASSWORD_VAR);
    command.envs(env.iter().copied()).output().unwrap()
}

/// A `[nats]` body, the environment `check-config` runs with, and what its error must say.
type Case = (&'static str, &'static [(&'static str, &'static str)], &'static [&'static str]);

#[test]
fn check_config_names_the_nats_key_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nats.toml");
    let cases: &[Case] = &[
        (
            "user = \"sb\"\npassword_env = \"SB_TEST_NATS_PASSWORD\"",
            &[],
            &["nats.password_env", "environment variable `SB_TEST_NATS_PASSWORD` is not set"],
        ),
        (
            "user = \"sb\"\npassword_env = \"SB_TEST_NATS_PASSWORD\"",
            &[(PASSWORD_VAR, "")],
            &["nats.password_env", "`SB_TEST_NATS_PASSWORD` is empty"],
        ),
        (
            "user = \"sb\"\npassword_env = \"SB_TEST_NATS_PASSWORD\"\ntoken_env = \"SB_TEST_NATS_PASSWORD\"",
            &[(PASSWORD_VAR, PASSWORD)],
            &["nats.token_env", "`user` and `token_env` are two ways to authenticate"],
        ),
        ("tls_cert_file = \"/etc/hosts\"", &[], &["nats.tls_key_file", "needs `tls_key_file`"]),
        (
            "",
            &[("SWITCHBOARD__NATS__TOKEN_FILE", "/nonexistent/nats.token")],
            &["nats.token_file", "cannot read `/nonexistent/nats.token`", "SWITCHBOARD__NATS__TOKEN_FILE"],
        ),
    ];
    for (nats, env, expected) in cases {
        std::fs::write(&path, format!("[nats]\n{nats}\n[router]\nenabled = false\n")).unwrap();
        let out = check_config(&path, env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{nats}: {stderr}");
        assert!(stderr.contains("nats.toml"), "{stderr}");
        for part in *expected {
            assert!(stderr.contains(part), "{nats}: expected `{part}` in {stderr}");
        }
        assert!(!stderr.contains(PASSWORD), "the secret is printed: {stderr}");
    }
    std::fs::write(
        &path,
        "[nats]\nuser = \"sb\"\npassword_env = \"SB_TEST_NATS_PASSWORD\"\n[router]\nenabled = false\n",
    )
    .unwrap();
    let ok = check_config(&path, &[(PASSWORD_VAR, PASSWORD)]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
}

/// Runs the daemon against `server` as user `sb` with `password` in its environment; returns the
/// child and the file its logs go to.
fn daemon(
    server: &ConfiguredNatsServer,
    dir: &Path,
    port: u16,
    password: &str,
) -> (std::process::Child, std::path::PathBuf) {
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[nats]\nurl = \"{}\"\nuser = \"sb\"\npassword_env = \"{PASSWORD_VAR}\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n[router]\nenabled = false\n",
            server.url()
        ),
    )
    .unwrap();
    let log = dir.join(format!("daemon-{port}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["run", "--config"])
        .arg(&config)
        .env(PASSWORD_VAR, password)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    (child, log)
}

#[tokio::test]
async fn the_daemon_authenticates_with_password_env_and_stops_at_once_on_a_wrong_password() {
    let server = ConfiguredNatsServer::start(|_| {
        format!("authorization {{ users = [ {{ user: sb, password: \"{PASSWORD}\" }} ] }}")
    });
    let dir = tempfile::tempdir().unwrap();

    // The right password: connected, the contract set up, ready.
    let port = free_port();
    let (mut child, log) = daemon(&server, dir.path(), port, PASSWORD);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = http.get(format!("http://127.0.0.1:{port}/readyz")).send().await.ok().map(|r| r.status());
        if status.is_some_and(|s| s.is_success()) {
            break;
        }
        if let Ok(Some(exit)) = child.try_wait() {
            panic!("the daemon exited ({exit}): {}", std::fs::read_to_string(&log).unwrap());
        }
        assert!(Instant::now() < deadline, "not ready in 30 s: {}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();

    // A wrong password: one clear error and a non-zero exit, quickly, without retrying.
    let started = Instant::now();
    let (mut child, log) = daemon(&server, dir.path(), free_port(), "wrong-password-7");
    let mut exit = None;
    wait_until("the daemon to exit on refused credentials", Duration::from_secs(15), || {
        exit = child.try_wait().unwrap();
        exit.is_some()
    });
    let exit = exit.unwrap();
    let output = std::fs::read_to_string(&log).unwrap();
    assert!(!exit.success(), "{output}");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}: {output}", started.elapsed());
    assert!(
        output.contains("connecting to NATS")
            && output.contains("refused this client")
            && output.contains("check nats.user and the password nats.password_env/password_file holds"),
        "{output}"
    );
    assert!(!output.contains("NATS not reachable yet"), "a refusal is not retried: {output}");
    assert!(!output.contains("wrong-password-7") && !output.contains(PASSWORD), "a secret is logged: {output}");
}
