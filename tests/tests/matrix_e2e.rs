//! Matrix end to end through the daemon, against a real Synapse: a supervisor's team room shows
//! the waiting conversation on one board message edited in place; a webhook customer's question
//! is offered in the agent's direct room (a second Matrix client, plain reqwest, plays the agent),
//! accepted by reaction, answered in the conversation's thread, and the customer's receiver gets
//! the answer while a `!note` never leaves. Synapse restarted under the running daemon, and the
//! daemon stopped while the agent writes, lose and repeat nothing (each agent event is counted
//! once). The rooms are written as a transcript to `target/test-output/matrix-transcript.txt`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::Config;
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_channel_matrix::MatrixConfig;
use switchboard_e2e::{Receiver, TestDaemon};
use switchboard_testkit::{MatrixTestClient, Synapse, transcript};

const WAIT: Duration = Duration::from_secs(30);

fn configure(c: &mut Config, homeserver: &str, bot: &str, token: PathBuf, alice: &str, team_room: &str) {
    c.router.enabled = true;
    c.routing = serde_json::from_value(json!({
        "default_team": "support",
        "teams": { "support": { "offer_timeout_secs": 300 } },
        "agents": [ { "id": "alice", "name": "Alice", "teams": ["support"], "tiers": ["L1"], "status": "away" } ]
    }))
    .unwrap();
    c.channels.matrix = MatrixConfig {
        enabled: true,
        homeserver: homeserver.into(),
        user_id: bot.into(),
        access_token_file: Some(token),
        agents: [("alice".to_string(), alice.to_string())].into(),
        team_rooms: [("support".to_string(), team_room.to_string())].into(),
        sync_timeout_secs: 2,
        ..MatrixConfig::default()
    };
}

fn body(e: &Value) -> &str {
    e["content"]["body"].as_str().unwrap_or_default()
}

/// The board's text now: the bot's notice in the team room, with its latest edit applied.
async fn board(sam: &MatrixTestClient, room: &str, bot: &str) -> Option<(String, String)> {
    let events = sam.events(room).await;
    let post = events.iter().find(|e| {
        e["sender"] == bot && e["type"] == "m.room.message" && e["content"]["m.relates_to"]["rel_type"].is_null()
    })?;
    let id = post["event_id"].as_str()?.to_string();
    let latest = events
        .iter()
        .rev()
        .find(|e| {
            e["content"]["m.relates_to"]["rel_type"] == "m.replace"
                && e["content"]["m.relates_to"]["event_id"] == id.as_str()
        })
        .map(|e| e["content"]["m.new_content"]["body"].as_str().unwrap_or_default().to_string());
    Some((id, latest.unwrap_or_else(|| body(post).to_string())))
}

async fn board_when(
    sam: &MatrixTestClient,
    room: &str,
    bot: &str,
    what: &str,
    ready: impl Fn(&str) -> bool,
) -> (String, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some((id, text)) = board(sam, room, bot).await
            && ready(&text)
        {
            return (id, text);
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the board to show {what}: {:?}",
            board(sam, room, bot).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The texts the customer's receiver got from the agent, in order.
fn replies(shop: &Receiver) -> Vec<String> {
    shop.received()
        .into_iter()
        .filter_map(|(_, b)| serde_json::from_str::<Value>(&b).ok())
        .filter(|v| v["agent_id"] == "alice")
        .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_customer_is_answered_by_an_agent_on_matrix() {
    let mut synapse = Synapse::start();
    eprintln!("Synapse answered {:?} after it was started", synapse.started_in());
    let bot = synapse.register("switchboard", false);
    let alice = MatrixTestClient::new(&synapse.url(), &synapse.register("alice", false));
    let sam = MatrixTestClient::new(&synapse.url(), &synapse.register("sam", false));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("matrix.token");
    std::fs::write(&token, &bot.access_token).unwrap();

    // The supervisor's team room; the bot is invited and joins on its own.
    let team_room =
        sam.create_room(json!({ "preset": "private_chat", "name": "Support queue", "invite": [bot.user_id] })).await;
    let shop = Receiver::start("/replies").await;
    let (url, bot_id, alice_id) = (synapse.url(), bot.user_id.clone(), alice.user.user_id.clone());
    let edit = {
        let (url, bot_id, alice_id, token, team_room) =
            (url.clone(), bot_id.clone(), alice_id.clone(), token.clone(), team_room.clone());
        move |c: &mut Config| configure(c, &url, &bot_id, token, &alice_id, &team_room)
    };
    let daemon = TestDaemon::start(Some(shop.url.clone()), edit.clone()).await;

    // Linked by user id: the bot invites the agent to a direct room.
    let room = alice.accept_invite(WAIT).await;

    // A customer writes while the agent is away: the board shows the conversation waiting.
    let question = r#"{"message_id":"q1","customer":{"id":"u-17","name":"Ada Lovelace"},"thread_id":"order-17","text":"Where is order 17?"}"#;
    assert_eq!(daemon.post_signed("evt_q1", question).await.0, 202);
    let (board_id, waiting_board) = board_when(&sam, &team_room, &bot_id, "the waiting customer", |t| {
        t.contains("1 waiting") && t.contains("Ada Lovelace")
    })
    .await;
    assert!(waiting_board.starts_with("Queue: support"), "{waiting_board}");

    // The agent comes online in their room; the offer arrives with the question and ✅/❌.
    alice.say(&room, "!online", None).await;
    let offered = alice.wait_event(&room, WAIT, |e| body(e).contains("Where is order 17?")).await;
    // From here on (`!online` acted, so the agent's earlier events were handled), each of the
    // agent's events is counted once. The agent's join may or may not have come before the
    // endpoint's first sync, which acts on nothing; so the count starts here.
    let counted = outcomes::count("matrix", InboundOutcome::NotRouted);
    assert!(body(&offered).contains("Ada Lovelace on webhook"), "{}", body(&offered));
    let offer = offered["event_id"].as_str().unwrap().to_string();
    alice
        .wait_event(&room, WAIT, |e| {
            e["type"] == "m.reaction" && e["sender"] == bot_id.as_str() && e["content"]["m.relates_to"]["key"] == "✅"
        })
        .await;

    // Accepted by the agent's own ✅: the offer is edited to say so; the board empties (the same
    // message, edited in place).
    alice.react(&room, &offer, "✅").await;
    alice
        .wait_event(&room, WAIT, |e| {
            e["content"]["m.relates_to"]["rel_type"] == "m.replace"
                && e["content"]["m.relates_to"]["event_id"] == offer.as_str()
                && e["content"]["m.new_content"]["body"].as_str().unwrap_or_default().ends_with("✓ Accepted")
        })
        .await;
    let (same_board, _) =
        board_when(&sam, &team_room, &bot_id, "nobody waiting", |t| t.contains("Nobody is waiting.")).await;
    assert_eq!(same_board, board_id, "the board is one message, edited in place");

    // In the thread: a reply reaches the customer; a note never does.
    alice.say(&room, "It left the warehouse this morning.", Some(&offer)).await;
    shop.wait_for("the agent's reply", WAIT, |v| v["text"] == "It left the warehouse this morning.").await;
    alice.say(&room, "!note the courier confirmed by phone", Some(&offer)).await;
    alice.say(&room, "Anything else I can help with?", Some(&offer)).await;
    shop.wait_for("the second reply", WAIT, |v| v["text"] == "Anything else I can help with?").await;

    // The customer answers: it lands in the conversation's thread.
    let more = r#"{"message_id":"q2","customer":{"id":"u-17","name":"Ada Lovelace"},"thread_id":"order-17","text":"When will it arrive?"}"#;
    assert_eq!(daemon.post_signed("evt_q2", more).await.0, 202);
    alice
        .wait_event(&room, WAIT, |e| {
            e["content"]["m.relates_to"]["rel_type"] == "m.thread"
                && e["content"]["m.relates_to"]["event_id"] == offer.as_str()
                && body(e).contains("When will it arrive?")
        })
        .await;

    // Synapse restarts under the running daemon: its sync resumes, the next answer arrives.
    synapse.restart();
    eprintln!("Synapse answered {:?} after a restart", synapse.started_in());
    alice.say(&room, "Tomorrow before noon.", Some(&offer)).await;
    shop.wait_for("the answer after Synapse's restart", WAIT, |v| v["text"] == "Tomorrow before noon.").await;

    // The daemon is down while the agent writes: that message is delivered once when it is back.
    let nats = daemon.stop_keeping_nats().await;
    alice.say(&room, "Sorry for the wait, it is on the van now.", Some(&offer)).await;
    synapse.restart();
    let daemon = TestDaemon::start_on(nats, Some(shop.url.clone()), edit).await;
    shop.wait_for("the message written while the daemon was down", WAIT, |v| {
        v["text"] == "Sorry for the wait, it is on the van now."
    })
    .await;
    // A barrier instead of a pause: a later message arrives after anything repeated would have.
    alice.say(&room, "Have a nice day!", Some(&offer)).await;
    shop.wait_for("the last reply", WAIT, |v| v["text"] == "Have a nice day!").await;
    // ✅ and six messages in the thread, each counted once across both daemons.
    assert_eq!(outcomes::count("matrix", InboundOutcome::NotRouted) - counted, 7, "one outcome per event");
    // The transcript first, so a failing run leaves it to look at.
    let events = alice.events(&room).await;
    let team_events = sam.events(&team_room).await;
    let names = [
        (bot_id.as_str(), "Switchboard bot"),
        (alice_id.as_str(), "alice (agent)"),
        (sam.user.user_id.as_str(), "sam (supervisor)"),
    ];
    let text = format!(
        "=== The agent's direct room (alice) ===\n\n{}\n=== The team room (support) ===\n\n\
         While Ada waited (before the agent came online), the board read:\n{}\n\nAfter the restarts:\n{}",
        transcript(&events, &names),
        waiting_board.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"),
        transcript(&team_events, &names)
    );
    let output = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-output");
    std::fs::create_dir_all(&output).unwrap();
    std::fs::write(output.join("matrix-transcript.txt"), &text).unwrap();
    assert_eq!(
        replies(&shop),
        [
            "It left the warehouse this morning.",
            "Anything else I can help with?",
            "Tomorrow before noon.",
            "Sorry for the wait, it is on the van now.",
            "Have a nice day!",
        ],
        "every answer exactly once, in order, and the note never"
    );
    assert!(!shop.received().iter().any(|(_, b)| b.contains("courier")), "the note never left");
    // Nothing repeated in the rooms either: one offer, one board message, no second room.
    let offers = events
        .iter()
        .filter(|e| e["sender"] == bot_id.as_str() && e["content"]["m.relates_to"]["rel_type"].is_null())
        .filter(|e| body(e).contains("New conversation"))
        .count();
    assert_eq!(offers, 1, "one offer after the restarts");
    assert!(alice.invites().await.is_empty(), "no second room after the restarts");
    let posts = team_events
        .iter()
        .filter(|e| {
            e["sender"] == bot_id.as_str()
                && e["type"] == "m.room.message"
                && e["content"]["m.relates_to"]["rel_type"].is_null()
        })
        .count();
    assert_eq!(posts, 1, "one board message in the team room");

    daemon.stop().await;
}
