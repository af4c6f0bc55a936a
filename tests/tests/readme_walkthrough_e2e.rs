//! The README's five-minute walk-through, run as written: the daemon on the repository's
//! `config/default.toml` (as `make run` starts it, with the development secrets in `.run/`) on a
//! real NATS, the demo inbox beside it, and each of the walk-through's shell blocks typed into
//! one bash session in order. After each block the test waits for what the README says happens
//! next, and checks the lines the demo inbox prints: the offer reaching the agent and the reply
//! reaching the customer.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_e2e::{SECRET, TestDaemon, docs};
use switchboard_testkit::NatsServer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);
const DONE: &str = "__walkthrough_block_done__";

/// What the README says each block leads to, checked in order; a block added to the walk-through
/// needs its own entry here.
const EXPECTED_BLOCKS: usize = 4;

/// Waits until `condition` holds, polling; panics naming `what` after [`WAIT`].
async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One bash session, fed block by block like a person typing into a second shell.
struct Shell {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Shell {
    fn start(dir: &std::path::Path) -> Shell {
        let mut child = tokio::process::Command::new("bash")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("bash");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Shell { child, stdin, stdout }
    }

    /// Runs `text` (stopping at the first failing command) and returns what it printed.
    async fn run(&mut self, text: &str) -> String {
        let script = format!("set -eo pipefail\n{text}\necho; echo {DONE}\n");
        self.stdin.write_all(script.as_bytes()).await.expect("write to bash");
        let mut out = String::new();
        let read = async {
            while let Some(line) = self.stdout.next_line().await.expect("read from bash") {
                if line == DONE {
                    return true;
                }
                out.push_str(&line);
                out.push('\n');
            }
            false
        };
        let finished = tokio::time::timeout(WAIT, read).await.unwrap_or(false);
        if !finished {
            let mut err = String::new();
            if let Some(mut stderr) = self.child.stderr.take() {
                let _ = tokio::time::timeout(Duration::from_secs(2), stderr.read_to_string(&mut err)).await;
            }
            panic!("the block failed or hung:\n{text}\n--- output ---\n{out}\n--- stderr ---\n{err}");
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_runs_as_written() {
    let blocks = docs::walkthrough();
    assert_eq!(blocks.len(), EXPECTED_BLOCKS, "the walk-through's blocks changed: give each new one its check here");

    // `make run`'s development secrets, where the README reads them (`.run/`).
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join(".run");
    std::fs::create_dir(&run).unwrap();
    let file = |name: &str, value: &str| {
        let path = run.join(name);
        std::fs::write(&path, value).unwrap();
        Some(path)
    };
    let token = "walkthrough-agent-token";

    // The demo inbox, as `make run` starts it; what it prints is what the newcomer reads.
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let inbox_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inbox = format!("http://{}", inbox_listener.local_addr().unwrap());
    let stop_inbox = CancellationToken::new();
    let lines = printed.clone();
    tokio::spawn(switchboard::demo_inbox::serve(inbox_listener, stop_inbox.clone(), move |line| {
        lines.lock().unwrap().push(line)
    }));

    // The daemon on the repository's default configuration; only what `make run` supplies from
    // outside (NATS, the secrets, the inbox's address) differs.
    let nats = NatsServer::start();
    let mut config = switchboard::Config::load(&docs::repo().join("config/default.toml")).expect("default config");
    config.nats.url = nats.url();
    let demo = config.channels.webhook.sources.get_mut("demo").expect("the demo source");
    demo.secret_env = None;
    demo.secret_file = file("demo-webhook-secret", SECRET);
    assert_eq!(demo.outbound_url.as_deref(), Some("http://127.0.0.1:9000/switchboard/replies"));
    demo.outbound_url = Some(format!("{inbox}{}", switchboard::demo_inbox::REPLIES_PATH));
    let agent = config.channels.webhook.agents.get_mut("demo-agent").expect("the demo agent's helpdesk");
    assert_eq!(agent.url, "http://127.0.0.1:9000/switchboard/agent");
    agent.url = format!("{inbox}{}", switchboard::demo_inbox::AGENT_PATH);
    agent.secret_env = None;
    agent.secret_file = file("demo-agent-secret", "whsec_ZGVtby1hZ2VudC1oZWxwZGVzay1zZWNyZXQtMzI=");
    let api_token = config.api.tokens.get_mut("demo-agent").expect("the demo agent's token");
    api_token.token_env = None;
    api_token.token_file = file("demo-agent-token", token);
    config.channels.webchat.session_secret_env = None;
    config.channels.webchat.session_secret_file =
        file("webchat-secret", "a-web-chat-session-key-of-32-characters-at-least");
    let daemon = TestDaemon::start_with(nats, config, tempfile::tempdir().unwrap()).await;

    let mut shell = Shell::start(dir.path());
    let localize = |b: &docs::Block| {
        b.text.replace("http://127.0.0.1:8080", &daemon.base).replace("http://127.0.0.1:9000", &inbox)
    };
    let get = |url: String| {
        let http = daemon.http.clone();
        async move { http.get(url).send().await.expect("GET").json::<serde_json::Value>().await.expect("JSON") }
    };
    let agent_inbox = || get(format!("{inbox}{}", switchboard::demo_inbox::AGENT_PATH));
    let replies = || get(format!("{inbox}{}", switchboard::demo_inbox::REPLIES_PATH));
    let printed_line = |needle: &str| printed.lock().unwrap().iter().any(|l| l.contains(needle));

    // 2. A customer writes.
    let out = shell.run(&localize(&blocks[0])).await;
    assert!(out.contains(" 202 "), "the signed webhook is accepted:\n{out}");
    assert!(out.contains(r#""duplicate":false"#), "{out}");

    // 3. The agent comes online and is offered the conversation.
    let out = shell.run(&localize(&blocks[1])).await;
    assert!(
        out.contains("My invoice is wrong") || out.contains("conversation_id"),
        "the queue shows it waiting:\n{out}"
    );
    assert!(out.contains(r#""status":"done""#), "set_status applied:\n{out}");
    wait_for("the offer at the agent's helpdesk", || async {
        agent_inbox().await.as_array().is_some_and(|a| a.iter().any(|d| d["type"] == "offer"))
    })
    .await;
    assert!(printed_line(r#"demo-agent is offered conversation "#), "{:?}", printed.lock().unwrap());
    assert!(printed_line(r#": "My invoice is wrong""#), "{:?}", printed.lock().unwrap());

    // 4. The agent accepts and answers.
    let out = shell.run(&localize(&blocks[2])).await;
    assert_eq!(out.matches(r#""status":"done""#).count(), 2, "accept and reply applied:\n{out}");
    wait_for("the reply at the customer's backend", || async {
        replies().await.as_array().is_some_and(|a| a.iter().any(|m| m["text"] == "Fixed, sorry!"))
    })
    .await;
    assert!(printed_line("customer c-42 receives (agent_reply, conversation "), "{:?}", printed.lock().unwrap());
    assert!(printed_line("): Fixed, sorry!"), "{:?}", printed.lock().unwrap());

    // 5. Look, and resolve: the customer is asked for a rating.
    let out = shell.run(&localize(&blocks[3])).await;
    assert!(out.contains(r#""state":"assigned""#) && out.contains("Fixed, sorry!"), "the conversation:\n{out}");
    assert!(out.contains(r#""status":"done""#), "resolve applied:\n{out}");
    wait_for("the satisfaction survey at the customer's backend", || async {
        replies()
            .await
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m["kind"] == "system" && m["metadata"]["csat"] == "request"))
    })
    .await;

    drop(shell);
    stop_inbox.cancel();
    daemon.stop().await;
}
