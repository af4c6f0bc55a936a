//! `deploy/container/Containerfile`: no container engine runs here, so its rules are checked on
//! the parsed file (two stages, pinned base images, the workspace's Rust, a numeric non-root
//! user, only the binary and the default config in the runtime, no remote ADD), and its
//! HEALTHCHECK command is run against the real daemon.

use std::process::Command;
use std::time::Duration;

use switchboard_testkit::{free_port, wait_until};

use super::{Running, read, repo, run};

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

fn parse(text: &str) -> Vec<Instruction> {
    let mut joined = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if joined.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            joined.push_str(head);
            joined.push(' ');
            continue;
        }
        joined.push_str(trimmed);
        let (keyword, args) = joined.split_once(char::is_whitespace).unwrap_or((&joined, ""));
        out.push(Instruction { keyword: keyword.to_uppercase(), args: args.trim().to_string() });
        joined.clear();
    }
    out
}

/// The stages: (base image, stage name, instructions after FROM).
fn stages(instructions: &[Instruction]) -> Vec<(String, Option<String>, Vec<Instruction>)> {
    let mut stages: Vec<(String, Option<String>, Vec<Instruction>)> = Vec::new();
    for i in instructions {
        if i.keyword == "FROM" {
            let words: Vec<&str> = i.args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push((words[0].to_string(), name, Vec::new()));
        } else {
            stages.last_mut().expect("an instruction before the first FROM").2.push(i.clone());
        }
    }
    stages
}

fn workspace_rust_version() -> String {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    manifest["workspace"]["package"]["rust-version"].as_str().unwrap().to_string()
}

#[test]
fn the_containerfile_is_multi_stage_pinned_small_and_non_root() {
    let instructions = parse(&read("deploy/container/Containerfile"));
    let stages = stages(&instructions);
    assert!(stages.len() >= 2, "multi-stage: a build stage and a runtime stage");
    for (image, _, _) in &stages {
        let (_, tag) = image.rsplit_once(':').unwrap_or_else(|| panic!("{image}: untagged base image"));
        assert!(tag != "latest" && !tag.is_empty(), "{image}: pin a version, not latest");
        assert!(tag.chars().any(|c| c.is_ascii_digit()), "{image}: the tag names no version");
    }
    let (builder, builder_name, build) = &stages[0];
    let rust = workspace_rust_version();
    assert!(
        builder.contains("/rust:") && builder.split(':').nth(1).unwrap().starts_with(&format!("{rust}.")),
        "{builder}: the builder must be the official Rust image of the workspace's rust-version {rust}"
    );
    assert!(
        build.iter().any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked")),
        "the release binary is built from the lock file"
    );

    let (runtime, _, last) = stages.last().unwrap();
    assert!(
        runtime.contains("debian:12") && runtime.contains("slim") || runtime.contains("distroless"),
        "{runtime}: a small runtime (Debian 12 slim or distroless)"
    );
    let copies: Vec<&Instruction> = last.iter().filter(|i| i.keyword == "COPY").collect();
    let from_builder = format!("--from={}", builder_name.as_deref().expect("the build stage is named"));
    assert_eq!(copies.len(), 2, "only the binary and the default config: {copies:?}");
    assert!(copies[0].args.starts_with(&from_builder) && copies[0].args.ends_with("/usr/local/bin/switchboard"));
    assert_eq!(copies[1].args, "config/default.toml /etc/switchboard/switchboard.toml");
    assert!(!last.iter().any(|i| i.keyword == "RUN"), "nothing installed into the runtime image");
    for i in &instructions {
        assert!(
            !(i.keyword == "ADD" && (i.args.contains("://") || i.args.contains("git@"))),
            "ADD of a URL: {}",
            i.args
        );
    }

    let user = last.iter().rfind(|i| i.keyword == "USER").expect("a USER in the runtime stage");
    let (uid, gid) = user.args.split_once(':').unwrap_or((&user.args, "0"));
    let uid: u32 =
        uid.parse().unwrap_or_else(|_| panic!("USER {}: use a numeric id (runAsNonRoot checks it)", user.args));
    assert!(uid != 0 && gid != "0", "USER {} runs as root", user.args);
    // The image's user is the one the Kubernetes manifests declare.
    let manifests = read("deploy/k8s/router.yaml");
    assert!(manifests.contains(&format!("runAsUser: {uid}")), "deploy/k8s runs as uid {uid} too");

    let entry = last.iter().find(|i| i.keyword == "ENTRYPOINT").expect("ENTRYPOINT");
    assert_eq!(entry.args, r#"["/usr/local/bin/switchboard"]"#);
    let listen = last
        .iter()
        .filter(|i| i.keyword == "ENV")
        .find_map(|i| i.args.split_whitespace().find_map(|kv| kv.strip_prefix("SWITCHBOARD__HTTP__LISTEN=")))
        .expect("the image sets SWITCHBOARD__HTTP__LISTEN for the pod network");
    assert!(listen.starts_with("0.0.0.0:"), "{listen}");
    let port = listen.rsplit(':').next().unwrap();
    assert!(last.iter().any(|i| i.keyword == "EXPOSE" && i.args == port), "EXPOSE {port}");
    let health = last.iter().find(|i| i.keyword == "HEALTHCHECK").expect("a HEALTHCHECK");
    assert!(health.args.contains("/healthz") && health.args.contains(&format!("/{port} ")), "{}", health.args);

    let ignore = read(".dockerignore");
    for excluded in [".git", "target", "tools", ".run"] {
        assert!(ignore.lines().any(|l| l.trim() == excluded), ".dockerignore must exclude {excluded}");
    }
}

#[test]
fn the_healthcheck_command_passes_against_a_live_daemon_and_fails_without_one() {
    let instructions = parse(&read("deploy/container/Containerfile"));
    let health = instructions.iter().find(|i| i.keyword == "HEALTHCHECK").expect("a HEALTHCHECK");
    let exec = health.args.split_once("CMD").expect("HEALTHCHECK ... CMD [...]").1.trim();
    let argv: Vec<String> = serde_json::from_str(exec).expect("CMD in exec (JSON) form");
    let port = free_port();
    let argv: Vec<String> = argv.iter().map(|a| a.replace("/8080 ", &format!("/{port} "))).collect();
    assert!(argv.iter().any(|a| a.contains(&format!("/{port} "))), "the command probes port 8080: {argv:?}");
    let probe = || run(Command::new(&argv[0]).args(&argv[1..])).status.success();

    assert!(!probe(), "the check must fail while nothing listens");
    // The image's default configuration; NATS is not needed for /healthz (the listener comes first).
    let config = repo().join("config/default.toml");
    let env = [
        ("SWITCHBOARD__HTTP__LISTEN".to_string(), format!("127.0.0.1:{port}")),
        ("SWITCHBOARD__NATS__URL".to_string(), format!("nats://127.0.0.1:{}", free_port())),
        ("SWITCHBOARD_WEBCHAT_SECRET".to_string(), "healthcheck-test-session-secret-0123456789".to_string()),
    ];
    let mut daemon = Running::daemon(&config, &env);
    wait_until("the HEALTHCHECK command to pass", Duration::from_secs(30), || {
        daemon.assert_running("the daemon");
        probe()
    });
    drop(daemon);
    assert!(!probe(), "the check fails once the daemon is gone");
}
