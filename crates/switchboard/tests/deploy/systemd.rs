//! `deploy/systemd/`: the hardened unit passes `systemd-analyze verify`, scores well in
//! `systemd-analyze security`, and `make install`/`make uninstall` lay out and remove the tree,
//! keeping an existing configuration.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::{check_config, read, repo, run, switchboard, text, tool};

const HINT: &str = "install Debian's systemd (`make tools` as root does)";

/// Every sandboxing setting the unit must keep; each line exactly as written in the unit.
const REQUIRED: &[&str] = &[
    "Type=notify",
    "NotifyAccess=main",
    "WatchdogSec=30",
    "ExecReload=/bin/kill -HUP $MAINPID",
    "User=switchboard",
    "Group=switchboard",
    "StateDirectory=switchboard",
    "ConfigurationDirectory=switchboard",
    "UMask=0077",
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "ProtectKernelLogs=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectControlGroups=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
];

fn make(args: &[&str]) -> String {
    let out = run(Command::new("make").arg("-C").arg(repo()).args(args).env_remove("MAKEFLAGS"));
    assert!(out.status.success(), "make {args:?} failed:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o7777
}

#[test]
fn the_unit_keeps_its_hardening_and_verifies_once_installed() {
    let unit = read("deploy/systemd/switchboard.service");
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for setting in REQUIRED {
        assert!(lines.contains(setting), "the unit lost `{setting}`");
    }
    assert!(!lines.iter().any(|l| l.starts_with("DynamicUser=")), "a dedicated user, not DynamicUser");
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().to_str().unwrap();
    make(&["install", &format!("DESTDIR={dest}"), &format!("SWITCHBOARD_BIN={}", switchboard())]);

    // systemd-analyze checks that ExecStart exists, so point it at the installed copy.
    let installed =
        std::fs::read_to_string(root.path().join("usr/local/lib/systemd/system/switchboard.service")).unwrap();
    let bin = root.path().join("usr/local/bin/switchboard");
    let probe_dir = root.path().join("verify");
    std::fs::create_dir(&probe_dir).unwrap();
    let probe = probe_dir.join("switchboard.service");
    std::fs::write(&probe, installed.replace("/usr/local/bin/switchboard", bin.to_str().unwrap())).unwrap();
    let analyze = tool("systemd-analyze", HINT);
    let out = run(Command::new(&analyze).arg("verify").arg(&probe));
    // verify exits 0 on unknown keys and only complains on stderr: both must be clean.
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let out = run(Command::new(&analyze).args(["security", "--offline=true"]).arg(&probe));
    let report = text(&out.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for switchboard.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}{}", text(&out.stderr)));
    println!("systemd-analyze security: exposure {score} (0 = fully sandboxed, 10 = not at all)");
    assert!(score <= 2.0, "exposure {score} is above 2.0:\n{report}");
}

#[test]
fn make_install_lays_out_the_tree_keeps_the_config_and_uninstall_removes_the_rest() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().to_str().unwrap();
    let at = |p: &str| root.path().join(p);
    make(&["install", &format!("DESTDIR={dest}"), &format!("SWITCHBOARD_BIN={}", switchboard())]);

    assert_eq!(std::fs::read(at("usr/local/bin/switchboard")).unwrap(), std::fs::read(switchboard()).unwrap());
    assert_eq!(mode(&at("usr/local/bin/switchboard")), 0o755);
    assert_eq!(mode(&at("usr/local/lib/systemd/system/switchboard.service")), 0o644);
    let default = read("config/default.toml");
    assert_eq!(std::fs::read_to_string(at("etc/switchboard/switchboard.toml")).unwrap(), default);
    assert_eq!(std::fs::read_to_string(at("usr/local/share/switchboard/switchboard.example.toml")).unwrap(), default);
    assert_eq!(
        std::fs::read_to_string(at("usr/local/lib/sysusers.d/switchboard.conf")).unwrap(),
        read("deploy/systemd/switchboard.sysusers")
    );
    // The installed binary accepts the installed configuration.
    check_config(&at("etc/switchboard/switchboard.toml"), &[]).expect("the installed config is valid");
    // systemd-sysusers finds the file where it was installed and would create the user.
    let sysusers = tool("systemd-sysusers", HINT);
    let out = run(Command::new(sysusers).arg(format!("--root={dest}")).arg("--dry-run"));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success() && said.contains("Creating user 'switchboard'"), "systemd-sysusers: {said}");

    // A second install never overwrites the operator's configuration.
    let edited = format!("{default}\n# edited by the operator\n");
    std::fs::write(at("etc/switchboard/switchboard.toml"), &edited).unwrap();
    let said = make(&["install", &format!("DESTDIR={dest}"), &format!("SWITCHBOARD_BIN={}", switchboard())]);
    assert!(said.contains("kept"), "{said}");
    assert_eq!(std::fs::read_to_string(at("etc/switchboard/switchboard.toml")).unwrap(), edited);

    make(&["uninstall", &format!("DESTDIR={dest}")]);
    for gone in [
        "usr/local/bin/switchboard",
        "usr/local/lib/systemd/system/switchboard.service",
        "usr/local/lib/sysusers.d/switchboard.conf",
        "usr/local/share/switchboard",
    ] {
        assert!(!at(gone).exists(), "{gone} left behind by make uninstall");
    }
    assert_eq!(std::fs::read_to_string(at("etc/switchboard/switchboard.toml")).unwrap(), edited, "config kept");
}

#[test]
fn another_prefix_and_sysconfdir_are_written_into_the_unit() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().to_str().unwrap();
    make(&[
        "install",
        &format!("DESTDIR={dest}"),
        "PREFIX=/opt/switchboard",
        "SYSCONFDIR=/etc/opt",
        &format!("SWITCHBOARD_BIN={}", switchboard()),
    ]);
    let unit =
        std::fs::read_to_string(root.path().join("opt/switchboard/lib/systemd/system/switchboard.service")).unwrap();
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).expect("ExecStart");
    assert_eq!(
        exec,
        "ExecStart=/opt/switchboard/bin/switchboard run --config /etc/opt/switchboard/switchboard.toml --log-format json"
    );
    assert!(unit.contains("EnvironmentFile=-/etc/opt/switchboard/env"));
    assert!(root.path().join("opt/switchboard/bin/switchboard").is_file());
    assert!(root.path().join("etc/opt/switchboard/switchboard.toml").is_file());
}

/// Datagrams the daemon sent to a notify socket the test listens on, one `KEY=value` line each.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    path: std::path::PathBuf,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
        NotifySocket { socket, path, seen: Vec::new() }
    }

    /// Every line received within the next `window`, also kept in `seen`.
    fn read_for(&mut self, window: std::time::Duration) -> Vec<String> {
        let until = std::time::Instant::now() + window;
        let mut lines = Vec::new();
        let mut buf = [0u8; 4096];
        while std::time::Instant::now() < until {
            if let Ok(n) = self.socket.recv(&mut buf) {
                lines.extend(text(&buf[..n]).lines().map(str::to_string));
            }
        }
        self.seen.extend(lines.iter().cloned());
        lines
    }

    /// Reads until a line satisfies `want` (failing after `timeout`); the lines read before it.
    fn read_until(&mut self, what: &str, timeout: std::time::Duration, want: impl Fn(&str) -> bool) -> Vec<String> {
        let until = std::time::Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            assert!(std::time::Instant::now() < until, "no {what} within {timeout:?}; received {:?}", self.seen);
            for line in self.read_for(std::time::Duration::from_millis(100)) {
                if want(&line) {
                    return before;
                }
                before.push(line);
            }
        }
    }
}

/// `Type=notify` against a socket the test listens on: no `READY=1` while NATS is down, then
/// `READY=1` once `/readyz` would say ready, `WATCHDOG=1` at half of `WATCHDOG_USEC` only while
/// NATS is reachable, `STATUS=` lines saying why, and `STOPPING=1` on SIGTERM.
#[test]
fn the_daemon_tells_systemd_when_it_is_ready_alive_and_stopping() {
    use std::time::Duration;
    use switchboard_testkit::{NatsServer, free_port};
    let dir = tempfile::tempdir().unwrap();
    let mut notify = NotifySocket::bind(dir.path());
    let (port, nats_port) = (free_port(), free_port());
    let env = [
        ("NOTIFY_SOCKET".to_string(), notify.path.to_str().unwrap().to_string()),
        ("WATCHDOG_USEC".to_string(), "600000".to_string()),
        ("SWITCHBOARD__HTTP__LISTEN".to_string(), format!("127.0.0.1:{port}")),
        ("SWITCHBOARD__NATS__URL".to_string(), format!("nats://127.0.0.1:{nats_port}")),
        ("SWITCHBOARD_WEBCHAT_SECRET".to_string(), "notify-test-session-secret-0123456789".to_string()),
    ];
    let mut daemon = super::Running::daemon(&repo().join("config/default.toml"), &env);

    // NATS is not there yet: the daemon says why, and neither ready nor alive.
    let early = notify.read_until("a not-ready STATUS", Duration::from_secs(30), |l| {
        l.starts_with("STATUS=not ready") && l.contains("bus")
    });
    daemon.assert_running("the daemon");
    let more = notify.read_for(Duration::from_millis(1500));
    for line in early.iter().chain(&more) {
        assert!(line != "READY=1" && line != "WATCHDOG=1", "{line} while NATS is down: {:?}", notify.seen);
    }

    let mut nats = NatsServer::start_on(nats_port);
    notify.read_until("READY=1", Duration::from_secs(60), |l| l == "READY=1");
    assert_eq!(super::http_status(port, "/readyz"), Some(200), "READY=1 only once /readyz says ready");
    let pings = notify.read_for(Duration::from_millis(1500)).iter().filter(|l| *l == "WATCHDOG=1").count();
    assert!(pings >= 3, "about one WATCHDOG=1 every 300 ms, got {pings} in 1.5 s: {:?}", notify.seen);

    // NATS goes away: the watchdog is no longer fed (systemd would restart the daemon), the status says why.
    nats.stop();
    notify.read_until("a STATUS about the bus", Duration::from_secs(30), |l| {
        l.starts_with("STATUS=not ready") && l.contains("bus")
    });
    let quiet = notify.read_for(Duration::from_millis(1500));
    assert!(!quiet.iter().any(|l| l == "WATCHDOG=1"), "fed while NATS is down: {quiet:?}");

    // Back: fed again.
    nats.restart();
    notify.read_until("WATCHDOG=1 after NATS is back", Duration::from_secs(60), |l| l == "WATCHDOG=1");

    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    notify.read_until("STOPPING=1", Duration::from_secs(20), |l| l == "STOPPING=1");
    println!("notifications: {:?}", notify.seen.iter().filter(|l| *l != "WATCHDOG=1").collect::<Vec<_>>());
}
