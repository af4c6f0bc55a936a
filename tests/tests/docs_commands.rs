//! Every shell command in `README.md` and `docs/*.md` (fenced `sh` blocks) is checked against
//! what it names, so none goes stale: `switchboard …` (also through `cargo run -p switchboard
//! -- …`) parses with the binary's own command line (`switchboard::cli::args::Cli`), and
//! `check-config` runs; `make <target>` names a target of the Makefile and only variables it
//! uses; `cargo … -p <package>` names a workspace package; `curl` hits a path and method
//! documented in `docs/openapi.json` (or the demo inbox's); the few other programs are listed
//! below with what is checked of them. A command none of these covers fails the test, so a new
//! command in the docs comes with its check. The README's walk-through also runs end to end
//! (`readme_walkthrough_e2e.rs`); with a live daemon, the `switchboard customers` commands run
//! here against the daemon's NATS.

use std::collections::BTreeSet;
use std::path::Path;

use clap::Parser;
use switchboard::cli::args::{Cli, Command};
use switchboard_e2e::docs::{self, Block, repo};

/// A check of another program's arguments.
type ArgsCheck = fn(&[String]) -> Result<(), String>;

/// Programs other than `switchboard`, `make`, `cargo` and `curl` that the docs may show, and
/// what is checked of each (`None`: only that it is this program, for an operator's host).
const OTHER_PROGRAMS: &[(&str, Option<ArgsCheck>, &str)] = &[
    ("systemctl", None, "the host's service manager (runbook: offline backup); not run here"),
    ("cp", None, "the runbook's offline backup copy; crates/bus/tests/backup.rs rehearses the copy and restore"),
    ("python3", Some(script_exists), "a script of the repository; its test runs it"),
    (
        "tools/bin/cargo-fuzz",
        Some(fuzz_target_exists),
        "cargo-fuzz as `make fuzz` installs it; the target must be one `make fuzz` runs",
    ),
];

/// A shell word split of `line`'s top-level simple commands (split on `&&`, `||`, `;`, `|`),
/// respecting quotes and `$(…)`; words keep their quotes stripped.
fn simple_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word = String::new();
    let (mut single, mut double, mut depth) = (false, false, 0usize);
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let flush = |word: &mut String, commands: &mut Vec<Vec<String>>| {
        if !word.is_empty() {
            commands.last_mut().unwrap().push(std::mem::take(word));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let top = !single && !double && depth == 0;
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '$' if !single && chars.get(i + 1) == Some(&'(') => {
                depth += 1;
                word.push_str("$(");
                i += 2;
                continue;
            }
            ')' if !single && depth > 0 => {
                depth -= 1;
                word.push(')');
            }
            c if top && c.is_whitespace() => flush(&mut word, &mut commands),
            ';' | '|' | '&' if top => {
                flush(&mut word, &mut commands);
                while chars.get(i + 1).is_some_and(|n| matches!(n, '|' | '&')) {
                    i += 1;
                }
                commands.push(Vec::new());
            }
            c => word.push(c),
        }
        i += 1;
    }
    flush(&mut word, &mut commands);
    commands.retain(|c| !c.is_empty());
    commands
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// The words without leading `NAME=value` assignments and without redirections.
fn program_and_args(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in words.iter().skip_while(|w| is_assignment(w)) {
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if w == ">" || w == ">>" || w == "<" || w == "2>" {
            skip_next = true;
            continue;
        }
        if w.starts_with('>') || w.starts_with("2>") {
            continue;
        }
        out.push(w.clone());
    }
    out
}

/// Checks one simple command; `Ok` names how it was checked.
fn check(words: &[String], env: &Env) -> Result<&'static str, String> {
    let words = program_and_args(words);
    let Some(program) = words.first() else { return Ok("variable assignment") };
    let args = &words[1..];
    match program.as_str() {
        "export" if args.iter().all(|a| is_assignment(a)) => Ok("variable assignment"),
        "switchboard" => check_switchboard(args),
        "cargo" => check_cargo(args, env),
        "make" => check_make(args, env),
        "curl" => check_curl(args, env),
        other => match OTHER_PROGRAMS.iter().find(|(name, _, _)| *name == other) {
            Some((_, Some(check), _)) => check(args).map(|()| "other program, checked"),
            Some((_, None, _)) => Ok("other program, listed"),
            None => Err(format!("`{other}` is no command this test knows how to check: add a check for it")),
        },
    }
}

fn check_switchboard(args: &[String]) -> Result<&'static str, String> {
    let argv = std::iter::once("switchboard".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv).map_err(|e| format!("switchboard's command line refuses it: {e}"))?;
    if let Command::CheckConfig { file } = &cli.command {
        switchboard::Config::load(&repo().join(file)).map_err(|e| format!("check-config fails: {e}"))?;
        return Ok("switchboard, run");
    }
    Ok("switchboard, parsed")
}

fn check_cargo(args: &[String], env: &Env) -> Result<&'static str, String> {
    let package = args.iter().position(|a| a == "-p" || a == "--package").and_then(|i| args.get(i + 1));
    let Some(package) = package else { return Err("a cargo command without `-p <package>`".into()) };
    if !env.packages.contains(package) {
        return Err(format!("no workspace package `{package}`"));
    }
    if args.first().map(String::as_str) == Some("run") && package == "switchboard" {
        let rest = args.iter().position(|a| a == "--").map(|i| &args[i + 1..]).unwrap_or(&[]);
        return check_switchboard(rest);
    }
    match args.first().map(String::as_str) {
        Some("build" | "test" | "bench" | "run") => Ok("cargo, package exists"),
        Some("nextest") if args.get(1).map(String::as_str) == Some("run") => Ok("cargo, package exists"),
        other => Err(format!("cargo {other:?}: not a subcommand this test knows")),
    }
}

fn check_make(args: &[String], env: &Env) -> Result<&'static str, String> {
    let mut targets = 0;
    for a in args {
        if let Some((var, _)) = a.split_once('=').filter(|_| is_assignment(a)) {
            if !env.makefile.contains(&format!("$({var})")) && !env.makefile.contains(&format!("${{{var}")) {
                return Err(format!("the Makefile uses no variable `{var}`"));
            }
        } else if env.make_targets.contains(a) {
            targets += 1;
        } else {
            return Err(format!("no make target `{a}`"));
        }
    }
    if targets == 0 { Err("`make` without a target".into()) } else { Ok("make target exists") }
}

fn check_curl(args: &[String], env: &Env) -> Result<&'static str, String> {
    let url = args
        .iter()
        .find(|a| a.starts_with("http://") || a.starts_with("https://") || a.starts_with("localhost:"))
        .ok_or("a curl command without a URL")?;
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let path = path.split('?').next().unwrap_or_default().to_string();
    let explicit = args.iter().position(|a| a == "-X" || a == "--request").and_then(|i| args.get(i + 1));
    let data = args.iter().any(|a| a.starts_with("-d") || a.starts_with("--data"));
    let method = explicit.map_or(if data { "post" } else { "get" }, |m| m.as_str()).to_ascii_lowercase();
    if host == "127.0.0.1:9000" {
        let inbox = [switchboard::demo_inbox::REPLIES_PATH, switchboard::demo_inbox::AGENT_PATH];
        return if inbox.contains(&path.as_str()) {
            Ok("curl, demo inbox")
        } else {
            Err(format!("the demo inbox serves no `{path}`"))
        };
    }
    let paths = env.openapi["paths"].as_object().expect("openapi paths");
    let operation = paths.iter().find(|(template, _)| matches_template(template, &path));
    match operation {
        Some((_, item)) if item.get(&method).is_some() => Ok("curl, documented in openapi.json"),
        Some((template, _)) => Err(format!("openapi.json documents no {} on {template}", method.to_uppercase())),
        None => Err(format!("openapi.json documents no path `{path}`")),
    }
}

/// `/v1/conversations/{id}` matches `/v1/conversations/$c` and `/v1/conversations/<id>`.
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

fn script_exists(args: &[String]) -> Result<(), String> {
    let script = args.iter().find(|a| !a.starts_with('-')).ok_or("python3 without a script")?;
    if repo().join(script).is_file() { Ok(()) } else { Err(format!("no script {script}")) }
}

fn fuzz_target_exists(args: &[String]) -> Result<(), String> {
    let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    let targets = makefile.lines().find_map(|l| l.strip_prefix("FUZZ_TARGETS")).unwrap_or_default().to_string();
    let known: Vec<&str> = targets.trim_start_matches([' ', ':', '=']).split_whitespace().collect();
    if args.iter().any(|a| known.contains(&a.as_str())) {
        Ok(())
    } else {
        Err(format!("names none of make fuzz's targets {known:?}"))
    }
}

/// What the checks compare with.
struct Env {
    makefile: String,
    make_targets: BTreeSet<String>,
    packages: BTreeSet<String>,
    openapi: serde_json::Value,
}

impl Env {
    fn load() -> Env {
        let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
        let make_targets = makefile
            .lines()
            .filter(|l| !l.starts_with(['\t', '#', '.', ' ']))
            .filter_map(|l| l.split_once(':').filter(|(_, rest)| !rest.starts_with('=')).map(|(t, _)| t))
            .filter(|t| t.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            .map(str::to_string)
            .collect();
        let root = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
        let members = root.split("members = [").nth(1).and_then(|s| s.split(']').next()).unwrap_or_default();
        let packages = members
            .split(',')
            .map(|m| m.trim().trim_matches('"'))
            .filter(|m| !m.is_empty())
            .filter_map(|m| std::fs::read_to_string(repo().join(m).join("Cargo.toml")).ok())
            .filter_map(|t| t.lines().find_map(|l| l.strip_prefix("name = ").map(|n| n.trim_matches('"').to_string())))
            .collect();
        let openapi =
            serde_json::from_str(&std::fs::read_to_string(repo().join("docs/openapi.json")).unwrap()).unwrap();
        Env { makefile, make_targets, packages, openapi }
    }
}

fn every_command() -> Vec<(Block, usize, Vec<String>)> {
    let mut out = Vec::new();
    for block in docs::all_blocks() {
        for (line, command) in docs::commands(&block) {
            for words in simple_commands(&command) {
                out.push((block.clone(), line, words));
            }
        }
    }
    out
}

#[test]
fn every_command_in_the_docs_is_checked_against_what_it_names() {
    let env = Env::load();
    let commands = every_command();
    let mut failures = Vec::new();
    let mut classes = std::collections::BTreeMap::<&str, usize>::new();
    for (block, line, words) in &commands {
        match check(words, &env) {
            Ok(class) => *classes.entry(class).or_default() += 1,
            Err(why) => failures.push(format!("{}:{line}: `{}`: {why}", block.file, words.join(" "))),
        }
    }
    assert!(failures.is_empty(), "stale or unchecked commands in the docs:\n{}", failures.join("\n"));
    // The docs do hold commands of each kind; a parser that found none would pass vacuously.
    for class in [
        "switchboard, parsed",
        "switchboard, run",
        "make target exists",
        "curl, documented in openapi.json",
        "curl, demo inbox",
    ] {
        assert!(classes.contains_key(class), "no `{class}` command found: {classes:?}");
    }
}

#[test]
fn the_checks_refuse_what_is_stale() {
    let env = Env::load();
    let refused = |line: &str| simple_commands(line).iter().any(|w| check(w, &env).is_err());
    // Each of these was, or could easily become, a stale line in the docs.
    assert!(refused("switchboard run --config config/default.toml [--log-format json]"), "optional-argument brackets");
    assert!(refused("switchboard dlq replay"), "a missing required argument");
    assert!(refused("switchboard frobnicate"), "an unknown subcommand");
    assert!(refused("switchboard check-config config/missing.toml"), "check-config of a file that is not there");
    assert!(refused("make runn"), "an unknown make target");
    assert!(refused("make fuzz FUZZ_SECONDS=3"), "a variable the Makefile does not use");
    assert!(refused("cargo nextest run -p switchboard-nothing"), "an unknown package");
    assert!(refused("curl -s localhost:8080/v1/agent/command -H \"$T\""), "an undocumented path");
    assert!(refused("curl -s -X DELETE http://127.0.0.1:8080/v1/queue"), "an undocumented method");
    assert!(refused("curl -s http://127.0.0.1:9000/inbox"), "a path the demo inbox does not serve");
    assert!(refused("kubectl get pods"), "a program the test does not know");
    assert!(!refused("curl -s http://127.0.0.1:8080/v1/conversations/$c -H \"$T\""));
    assert!(!refused("T=\"authorization: Bearer $(cat .run/demo-agent-token)\"; make test"));
}

/// The `switchboard customers` commands of `docs/data-lifecycle.md`, run with the built binary
/// against a live daemon's NATS (their `--config` swapped for one naming it).
#[tokio::test]
async fn the_documented_customer_commands_run_against_a_live_daemon() {
    // The repository's configuration, its router leading (`forget` asks it), on a test NATS.
    let default = repo().join("config/default.toml");
    let mut config = switchboard::Config::load(&default).expect("default config");
    let nats = switchboard_testkit::NatsServer::start();
    config.nats.url = nats.url();
    config.channels.webchat.enabled = false;
    let daemon = switchboard_e2e::TestDaemon::start_with(nats, config, tempfile::tempdir().unwrap()).await;
    let binary = switchboard_e2e::faults::cluster::binary();
    let mut ran = 0;
    for (block, line, words) in every_command() {
        let args = program_and_args(&words);
        if args.first().map(String::as_str) != Some("switchboard")
            || args.get(1).map(String::as_str) != Some("customers")
        {
            continue;
        }
        let mut args: Vec<String> = args[1..].to_vec();
        if let Some(i) = args.iter().position(|a| a == "--config" || a == "-c") {
            args[i + 1] = default.display().to_string();
        }
        let out = tokio::process::Command::new(&binary)
            .args(&args)
            .env("SWITCHBOARD__NATS__URL", daemon.nats.url())
            .output()
            .await
            .expect("run switchboard");
        assert!(
            out.status.success(),
            "{}:{line}: `switchboard {}` failed: {}",
            block.file,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 2, "the docs show `switchboard customers export` and `forget`; ran {ran}");
    daemon.stop().await;
}

#[test]
fn commands_split_like_a_shell_splits_them() {
    let split = simple_commands(r#"id=msg_$(date +%s%N); ts=$(date +%s) && make tools | cat"#);
    assert_eq!(split, [vec!["id=msg_$(date +%s%N)"], vec!["ts=$(date +%s)"], vec!["make", "tools"], vec!["cat"]]);
    let split = simple_commands(r#"curl -H 'a: b' -d '{"x":"'$c'"}' "$u""#);
    assert_eq!(split, [vec!["curl", "-H", "a: b", "-d", r#"{"x":"$c"}"#, "$u"]]);
    assert!(Path::new(&repo()).join("README.md").is_file());
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors a Markdown file offers: its headings' and explicit `<a id="…">`s.
fn anchors(text: &str) -> BTreeSet<String> {
    let headings =
        text.lines().filter_map(|l| l.trim_start_matches('#').strip_prefix(' ').filter(|_| l.starts_with('#')));
    let explicit = text.split("<a id=\"").skip(1).filter_map(|s| s.split('"').next());
    headings.map(anchor).chain(explicit.map(str::to_string)).collect()
}

/// Pages moved between files keep their links working: every relative link of the README,
/// `docs/*.md` and ARCHITECTURE.md names a file that exists and, for a page, a heading it has.
#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut files = vec![repo().join("README.md"), repo().join("ARCHITECTURE.md")];
    files.extend(
        std::fs::read_dir(repo().join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut broken = Vec::new();
    let mut links = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in text.split("](").skip(1).filter_map(|s| s.split(')').next()) {
            if link.contains("://") || link.starts_with("mailto:") || link.contains(' ') {
                continue;
            }
            links += 1;
            let (path, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if path.is_empty() { file.clone() } else { file.parent().unwrap().join(path) };
            if !target.exists() {
                broken.push(format!("{}: `{link}`: no such file", file.display()));
            } else if !fragment.is_empty()
                && target.extension().is_some_and(|e| e == "md")
                && !anchors(&std::fs::read_to_string(&target).unwrap()).contains(fragment)
            {
                broken.push(format!("{}: `{link}`: no such heading", file.display()));
            }
        }
    }
    assert!(links > 20, "found too few links: {links}");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
