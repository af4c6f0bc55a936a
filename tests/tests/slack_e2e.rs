//! Slack agents end to end through the daemon, against a fake Slack that speaks Slack's wire
//! formats (Web API answers, signed Events API and interaction payloads, slash commands, Socket
//! Mode envelopes and acks): a webhook customer is offered to an agent by DM with Accept/Decline
//! buttons; Accept (a signed `block_actions`) turns the buttons into "✓ Accepted"; the agent's
//! message in the offer's thread reaches the customer's receiver, once even when Slack delivers
//! the event twice; `/sb note` and `!note` never leave; the customer's next message lands in the
//! thread; a `ratelimited` answer is waited out and the offer still arrives once; the team
//! channel's board is one message, posted once and then edited. The same flow runs over Socket
//! Mode with acks and a reconnect. The agent's DM and the team channel are written to
//! `target/test-output/slack-transcript.txt`.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_e2e::{Receiver, TestDaemon};
use switchboard_testkit::{FakeSlack, SlackMessage, SlackSigner};

const WAIT: Duration = Duration::from_secs(20);
const BOT: &str = "xoxb-e2e-bot-token-for-the-fake-slack";
const APP: &str = "xapp-1-e2e-app-token-for-the-fake-slack";
const SIGNING: &str = "e2e-signing-secret-0123456789abcdef";
const ALICE: &str = "U0ALICE";
const TEAM_CHANNEL: &str = "C0SUPPORT";

/// A daemon with one agent (`alice`, on Slack as [`ALICE`]), the team `support` whose board is
/// in [`TEAM_CHANNEL`], and the webhook customer channel answering to `shop`.
async fn daemon(slack: &FakeSlack, shop: &Receiver, socket: bool) -> (TestDaemon, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (bot, secret, app) = (dir.path().join("bot"), dir.path().join("signing"), dir.path().join("app"));
    std::fs::write(&bot, BOT).unwrap();
    std::fs::write(&secret, SIGNING).unwrap();
    std::fs::write(&app, APP).unwrap();
    let api_base = slack.api_base();
    let daemon = TestDaemon::start(Some(shop.url.clone()), move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 300 } },
            "agents": [ { "id": "alice", "name": "Alice", "teams": ["support"], "tiers": ["L1"], "status": "online",
                          "max_total": 1 } ]
        }))
        .unwrap();
        let s = &mut c.channels.slack;
        s.enabled = true;
        s.api_base = api_base;
        s.bot_token_file = Some(bot);
        if socket {
            s.mode = switchboard_channel_slack::SlackMode::Socket;
            s.app_token_file = Some(app);
        } else {
            s.signing_secret_file = Some(secret);
        }
        s.agents.insert("alice".into(), ALICE.into());
        s.max_file_bytes = 64 * 1024;
        s.team_channels.insert("support".into(), TEAM_CHANNEL.into());
    })
    .await;
    (daemon, dir)
}

/// The customer's webhook message `n` in thread `order-17`.
fn customer(n: u32, text: &str) -> String {
    json!({ "message_id": format!("order-17-q{n}"), "customer": { "id": "u-17", "name": "Ada" },
            "thread_id": "order-17", "text": text })
    .to_string()
}

/// The offer in the agent's DM: the root message with Accept/Decline.
fn offer_in(slack: &FakeSlack) -> Option<SlackMessage> {
    let dm = slack.dm_of(ALICE)?;
    slack.messages_in(&dm).into_iter().find(|m| m.thread_ts.is_none() && m.rendered().contains("New conversation"))
}

/// The conversation id (the Accept button's value) and short code (`K4F2`) of an offer.
fn ids(offer: &SlackMessage) -> (String, String) {
    let blocks = offer.blocks.as_ref().unwrap().as_array().unwrap();
    let actions = blocks.iter().find(|b| b["type"] == "actions").expect("buttons");
    let conversation = actions["elements"][0]["value"].as_str().unwrap().to_string();
    let text = offer.rendered();
    let at = text.find('#').expect("a short code");
    let code: String = text[at + 1..].chars().take_while(char::is_ascii_alphanumeric).collect();
    (conversation, code)
}

/// The texts of the agent's replies the customer's receiver got, in order (not the queue
/// notices and surveys Switchboard itself sends).
fn received_texts(shop: &Receiver) -> Vec<String> {
    shop.received()
        .iter()
        .filter_map(|(_, b)| serde_json::from_str::<Value>(b).ok())
        .filter(|v| v["agent_id"] == "alice")
        .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The agent's DM and the team channel as people see them, threads indented under their roots,
/// the board's every version, and the `/sb` commands with their (ephemeral) answers.
fn transcript(slack: &FakeSlack, title: &str, commands: &[String]) -> String {
    let who = |m: &SlackMessage| match &m.user {
        Some(u) if u == ALICE => "alice".to_string(),
        Some(u) => u.clone(),
        None => "Switchboard (bot)".into(),
    };
    let files =
        |m: &SlackMessage| if m.files.is_empty() { String::new() } else { format!(" 📎 {}", m.files.join(", ")) };
    let mut out = format!("== {title} ==\n");
    let dm = slack.dm_of(ALICE).unwrap_or_default();
    out.push_str(&format!("-- DM of agent alice with the bot ({dm}) --\n"));
    let messages = slack.messages_in(&dm);
    for root in messages.iter().filter(|m| m.thread_ts.is_none()) {
        out.push_str(&format!(
            "[{}] {}: {}{}\n",
            root.ts,
            who(root),
            root.rendered().replace('\n', "\n    "),
            files(root)
        ));
        if !root.earlier.is_empty() {
            out.push_str(&format!("    (edited {} time(s))\n", root.earlier.len()));
        }
        for reply in messages.iter().filter(|m| m.thread_ts.as_deref() == Some(root.ts.as_str())) {
            let text = reply.rendered().replace('\n', "\n      ");
            out.push_str(&format!("    ↳ [{}] {}: {text}{}\n", reply.ts, who(reply), files(reply)));
        }
    }
    out.push_str("-- /sb commands (answers only alice sees) --\n");
    for c in commands {
        out.push_str(&format!("{c}\n"));
    }
    out.push_str(&format!("-- team channel {TEAM_CHANNEL}: one message, every version --\n"));
    for m in slack.messages_in(TEAM_CHANNEL) {
        for (i, version) in m.earlier.iter().chain(std::iter::once(&m.rendered())).enumerate() {
            let how = if i == 0 { "posted" } else { "edited" };
            out.push_str(&format!("[{}] {how}:\n    {}\n", m.ts, version.replace('\n', "\n    ")));
        }
    }
    out
}

fn write_transcript(name: &str, text: &str) {
    let output = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-output");
    std::fs::create_dir_all(&output).unwrap();
    std::fs::write(output.join(name), text).unwrap();
}

/// Whether a message's buttons were replaced by `label`.
fn settled(m: &SlackMessage, label: &str) -> bool {
    let blocks = m.blocks.as_ref().and_then(Value::as_array).cloned().unwrap_or_default();
    !blocks.iter().any(|b| b["type"] == "actions") && m.rendered().contains(label)
}

#[tokio::test]
async fn an_agent_on_slack_accepts_answers_and_keeps_notes_inside() {
    let slack = FakeSlack::start(BOT, APP).await;
    slack.add_channel(TEAM_CHANNEL);
    let shop = Receiver::start("/replies").await;
    let (daemon, _dir) = daemon(&slack, &shop, false).await;
    let signer = SlackSigner::new(&daemon.base, SIGNING);
    assert!(slack.calls_of("auth.test").iter().any(|c| c.ok), "the bot token was checked at start");

    // Slack's rate limiter refuses the next two posts to the agent's DM; the offer waits and
    // still arrives once.
    slack.rate_limit_in("chat.postMessage", &FakeSlack::dm_id_for(ALICE), 2, 1);
    let (code, body) =
        daemon.post_signed("evt_1", &customer(1, "Hi! Where is order 17? <it's late> & I'm upset")).await;
    assert_eq!(code, 202, "{body}");
    let offer = slack.wait_for("the offer in the DM", WAIT, offer_in).await;
    let limited =
        slack.calls_of("chat.postMessage").iter().filter(|c| c.error.as_deref() == Some("ratelimited")).count();
    assert_eq!(limited, 2, "the offer met the rate limit twice");
    let dm = slack.dm_of(ALICE).unwrap();
    assert_eq!(slack.messages_in(&dm).len(), 1, "one offer, not one per try");
    // mrkdwn: what the customer typed is escaped, the buttons carry the conversation.
    assert!(offer.section_text().unwrap().contains("&lt;it's late&gt; &amp; I'm upset"), "{:?}", offer.blocks);
    assert!(offer.rendered().contains("[Accept] [Decline]"), "{}", offer.rendered());
    let (conversation, short) = ids(&offer);

    // Accept, a signed block_actions; delivered twice by Slack, it acts once (no "Not done").
    let press = slack.block_actions(ALICE, &dm, &offer.ts, "accept", &conversation);
    assert_eq!(signer.interaction(&press).await.status, 200);
    assert_eq!(signer.interaction(&press).await.status, 200);
    let accepted =
        slack.wait_for("the offer marked accepted", WAIT, |s| offer_in(s).filter(|m| settled(m, "✓ Accepted"))).await;
    assert!(accepted.rendered().contains("New conversation"), "the offer's text stays: {}", accepted.rendered());

    // The agent answers in the offer's thread; Slack redelivers the event (X-Slack-Retry-Num).
    let reply = slack.message_event(ALICE, &dm, "Sorry, Ada: it ships today.", Some(&offer.ts));
    assert_eq!(signer.event(&reply, None).await.status, 200);
    assert_eq!(signer.event(&reply, Some(1)).await.status, 200);
    shop.wait_for("the agent's reply at the shop", WAIT, |v| v["text"] == "Sorry, Ada: it ships today.").await;

    // Notes: /sb note by short code, and !note in the thread. Neither reaches the customer.
    let mut commands = Vec::new();
    let mut log = |text: &str, answer: &str| {
        let answer: Value = serde_json::from_str(answer).unwrap_or_default();
        commands.push(format!("/sb {text}  →  {}", answer["text"].as_str().unwrap_or_default()));
    };
    let line = format!("note {short} VIP customer, be kind");
    let note = signer.command(&slack.slash_command(ALICE, &dm, &line)).await;
    log(&line, &note.body);
    assert_eq!(note.status, 200, "{}", note.body);
    let note: Value = serde_json::from_str(&note.body).unwrap();
    assert_eq!(note["response_type"], "ephemeral");
    assert!(note["text"].as_str().unwrap().starts_with("Done: note added"), "{note}");
    let thread_note = slack.message_event(ALICE, &dm, "!note called the courier", Some(&offer.ts));
    assert_eq!(signer.event(&thread_note, None).await.status, 200);
    // Slack sends what the agent typed escaped, links as `<url|label>`: the customer gets the words.
    let later =
        slack.message_event(ALICE, &dm, "Anything else I can do? &lt;3 <https://shop.test/help|Help>", Some(&offer.ts));
    assert_eq!(signer.event(&later, None).await.status, 200);
    let second = "Anything else I can do? <3 Help (https://shop.test/help)";
    shop.wait_for("the agent's second reply", WAIT, |v| v["text"] == second).await;
    assert_eq!(
        received_texts(&shop),
        ["Sorry, Ada: it ships today.", second],
        "each reply once, in order, and no note"
    );

    // A file in the thread goes to the customer with the message (by reference in the webhook
    // body, stored in sb_attachments); one over max_file_bytes is refused and nothing leaves.
    let label = slack.add_file("F0LABEL", "label.pdf", "application/pdf", b"%PDF-1.4 shipping label".to_vec());
    let with_file = slack.message_event_with(ALICE, &dm, "Your shipping label:", Some(&offer.ts), vec![label]);
    assert_eq!(signer.event(&with_file, None).await.status, 200);
    let got = shop.wait_for("the agent's file", WAIT, |v| v["text"] == "Your shipping label:").await;
    assert_eq!(got["attachments"][0]["filename"], "label.pdf");
    assert_eq!(got["attachments"][0]["size"], 23);
    assert_eq!(got["attachments"][0]["object"], "slack/F0LABEL");
    let big = slack.add_file("F0BIG", "scan.tiff", "image/tiff", vec![7u8; 70 * 1024]);
    let too_big = slack.message_event_with(ALICE, &dm, "The scan", Some(&offer.ts), vec![big]);
    assert_eq!(signer.event(&too_big, None).await.status, 200);
    slack
        .wait_for("the refusal of the big file", WAIT, |s| {
            s.messages_in(&dm).into_iter().find(|m| m.user.is_none() && m.rendered().contains("over the 64 KB limit"))
        })
        .await;

    // Someone who is not a mapped agent is refused, and nothing happens.
    let stranger = signer.command(&slack.slash_command("U0MALLORY", "D0MALLORY", &format!("resolve {short}"))).await;
    assert!(stranger.body.contains("not a Switchboard agent"), "{}", stranger.body);
    // Wrongly signed and stale requests are refused before anything is read, each counted once.
    use switchboard_bus::outcomes::{InboundOutcome, count};
    let rejected = count("slack", InboundOutcome::Rejected);
    let forged = SlackSigner::new(&daemon.base, "not-the-signing-secret-at-all");
    assert_eq!(forged.event(&later, None).await.status, 401);
    let stale = chrono::Utc::now().timestamp() - 301;
    let body = later.to_string().into_bytes();
    assert_eq!(signer.post_raw("/v1/slack/events", "application/json", body, Some(stale), None).await.status, 401);
    assert_eq!(count("slack", InboundOutcome::Rejected), rejected + 2);

    // The customer writes again: it lands in the conversation's thread.
    assert_eq!(daemon.post_signed("evt_2", &customer(2, "Thanks! Tracking number?")).await.0, 202);
    slack
        .wait_for("the customer's message in the thread", WAIT, |s| {
            s.messages_in(&dm)
                .into_iter()
                .find(|m| m.thread_ts.as_deref() == Some(offer.ts.as_str()) && m.rendered().contains("Tracking number"))
        })
        .await;

    // Alice holds one conversation at most: Bob's waits, and the team channel's board (one
    // message) shows him waiting.
    let bob = json!({ "message_id": "order-18-q1", "customer": { "id": "u-18", "name": "Bob" },
                      "thread_id": "order-18", "text": "Is anyone there?" });
    assert_eq!(daemon.post_signed("evt_3", &bob.to_string()).await.0, 202);
    slack
        .wait_for("the board showing Bob waiting", WAIT, |s| {
            let m = s.messages_in(TEAM_CHANNEL);
            (m.len() == 1 && m[0].rendered().contains("Bob") && m[0].rendered().contains("1 waiting")).then_some(())
        })
        .await;
    let status = signer.command(&slack.slash_command(ALICE, &dm, "status online")).await;
    log("status online", &status.body);
    assert!(status.body.contains("Done: status set to online"), "{}", status.body);

    // The url_verification challenge is answered.
    let challenge = json!({ "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification" });
    let answer = signer.event(&challenge, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(serde_json::from_str::<Value>(&answer.body).unwrap()["challenge"], challenge["challenge"]);

    // Resolved with /sb: the offer's buttons say so; Bob is offered to Alice and the board is
    // empty again.
    let resolve = signer.command(&slack.slash_command(ALICE, &dm, &format!("resolve {short}"))).await;
    log(&format!("resolve {short}"), &resolve.body);
    assert!(resolve.body.contains("Done: resolved"), "{}", resolve.body);
    slack
        .wait_for("the offer marked resolved", WAIT, |s| {
            s.messages_in(&dm).into_iter().find(|m| m.ts == offer.ts).filter(|m| settled(m, "✓ Resolved"))
        })
        .await;
    slack
        .wait_for("Bob's offer", WAIT, |s| {
            s.messages_in(&dm).into_iter().find(|m| m.thread_ts.is_none() && m.rendered().contains("Is anyone there?"))
        })
        .await;
    slack
        .wait_for("the board empty again", WAIT, |s| {
            let m = s.messages_in(TEAM_CHANNEL);
            (m.len() == 1 && m[0].rendered().contains("Nobody is waiting") && !m[0].earlier.is_empty()).then_some(())
        })
        .await;
    assert_eq!(
        slack.calls_of("chat.postMessage").iter().filter(|c| c.args["channel"] == TEAM_CHANNEL && c.ok).count(),
        1
    );
    let texts = received_texts(&shop);
    assert_eq!(texts, ["Sorry, Ada: it ships today.", second, "Your shipping label:"], "{texts:?}");
    assert!(!shop.received().iter().any(|(_, b)| b.contains("VIP") || b.contains("courier")), "a note leaked");
    assert!(
        !slack.messages_in(&dm).iter().any(|m| m.rendered().contains("Not done")),
        "nothing was refused: {}",
        transcript(&slack, "events", &commands)
    );
    write_transcript("slack-transcript.txt", &transcript(&slack, "Events API", &commands));
    daemon.stop().await;
}

#[tokio::test]
async fn the_same_flow_over_socket_mode_with_acks_and_a_reconnect() {
    let slack = FakeSlack::start(BOT, APP).await;
    slack.add_channel(TEAM_CHANNEL);
    let shop = Receiver::start("/replies").await;
    let (daemon, _dir) = daemon(&slack, &shop, true).await;
    slack.wait_for("a Socket Mode connection", WAIT, |s| s.socket_connected().then_some(())).await;
    // No Events API routes in Socket Mode.
    let signer = SlackSigner::new(&daemon.base, SIGNING);
    assert_eq!(signer.event(&json!({ "type": "url_verification" }), None).await.status, 404);

    assert_eq!(daemon.post_signed("evt_1", &customer(1, "Hello from the socket test")).await.0, 202);
    let offer = slack.wait_for("the offer in the DM", WAIT, offer_in).await;
    let dm = slack.dm_of(ALICE).unwrap();
    let (conversation, short) = ids(&offer);
    let acked = |id: String| move |s: &FakeSlack| s.socket_acks().into_iter().find(|a| a.envelope_id == id);

    let press = slack.block_actions(ALICE, &dm, &offer.ts, "accept", &conversation);
    let id = slack.socket_send("interactive", press);
    slack.wait_for("the press acked", WAIT, acked(id)).await;
    slack.wait_for("the offer marked accepted", WAIT, |s| offer_in(s).filter(|m| settled(m, "✓ Accepted"))).await;

    // A reply; Slack sends the envelope again (its ack "came late"): acked twice, sent once.
    let reply = slack.message_event(ALICE, &dm, "Answered over the socket.", Some(&offer.ts));
    let id = slack.socket_send("events_api", reply.clone());
    slack.wait_for("the reply acked", WAIT, acked(id.clone())).await;
    slack.socket_resend(&id, "events_api", reply);
    slack
        .wait_for("the second ack", WAIT, |s| {
            (s.socket_acks().iter().filter(|a| a.envelope_id == id).count() == 2).then_some(())
        })
        .await;
    shop.wait_for("the reply at the shop", WAIT, |v| v["text"] == "Answered over the socket.").await;

    // A slash command: its answer is the ack's payload.
    let fields = slack.slash_command(ALICE, &dm, &format!("note {short} said over the socket"));
    let id = slack.socket_send("slash_commands", json!(fields));
    let ack = slack.wait_for("the command acked", WAIT, acked(id)).await;
    let text = ack.payload.as_ref().and_then(|p| p["text"].as_str()).unwrap_or_default().to_string();
    assert!(text.starts_with("Done: note added"), "{ack:?}");

    // Slack asks the app to reconnect; the next reply comes over the new connection.
    slack.socket_disconnect();
    slack
        .wait_for("a second connection", WAIT, |s| (s.socket_connections() == 2 && s.socket_connected()).then_some(()))
        .await;
    let again = slack.message_event(ALICE, &dm, "Still here after a reconnect.", Some(&offer.ts));
    let id = slack.socket_send("events_api", again);
    slack.wait_for("acked on the new connection", WAIT, acked(id)).await;
    shop.wait_for("the reply after the reconnect", WAIT, |v| v["text"] == "Still here after a reconnect.").await;
    assert_eq!(received_texts(&shop), ["Answered over the socket.", "Still here after a reconnect."]);
    write_transcript("slack-socket-transcript.txt", &transcript(&slack, "Socket Mode", &[]));
    daemon.stop().await;
}
