//! The Matrix agent endpoint against a real Synapse and a real NATS (no router: deliveries are
//! published as the router would, and the agent's commands are read back from `sb.agent.in`).
//! A second client, plain reqwest, plays the agent.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_adapter::derived_command_id;
use switchboard_adapter::testkit::{TestBus, wait_for};
use switchboard_channel_matrix::{ENCRYPTED_NOTICE, MatrixAgents, MatrixConfig};
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets, streams, subjects};
use switchboard_core::{AgentCommand, AgentDelivery, AgentStatus, CommandAction};
use switchboard_testkit::{MatrixTestClient, Synapse};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    synapse: Synapse,
    t: TestBus,
    alice: MatrixTestClient,
    bot: MatrixTestClient,
    config: MatrixConfig,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let _ = tracing_subscriber::fmt().with_env_filter("switchboard_channel_matrix=debug").with_test_writer().try_init();
    let synapse = Synapse::start();
    let bot = synapse.register("switchboard", false);
    let alice = synapse.register("alice", false);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("matrix.token");
    std::fs::write(&token, &bot.access_token).unwrap();
    let config = MatrixConfig {
        enabled: true,
        homeserver: synapse.url(),
        user_id: bot.user_id.clone(),
        access_token_file: Some(token),
        agents: [("alice".to_string(), alice.user_id.clone())].into(),
        max_file_bytes: 64 * 1024,
        sync_timeout_secs: 2,
        ..MatrixConfig::default()
    };
    let t = TestBus::start().await;
    let (alice, bot) = (MatrixTestClient::new(&synapse.url(), &alice), MatrixTestClient::new(&synapse.url(), &bot));
    Setup { synapse, t, alice, bot, config, _dir: dir }
}

fn run(s: &Setup) -> CancellationToken {
    let agents = MatrixAgents::new(&s.config, vec!["default".into()]).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(agents.run(s.t.bus.clone(), stop.clone()));
    stop
}

async fn deliver(t: &TestBus, delivery: Value) {
    let delivery: AgentDelivery = serde_json::from_value(delivery).unwrap();
    t.bus.publish(&subjects::agent_out("matrix"), &delivery, &Uuid::now_v7().to_string()).await.unwrap();
}

fn offer(conversation: Uuid) -> Value {
    let now = chrono::Utc::now();
    json!({
        "type": "offer", "id": Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation,
        "channel": "webhook", "customer": { "id": "c-501", "name": "Ada Lovelace" }, "code": "K4F2",
        "priority": 50, "tier": "L1", "sla_deadline": now, "offer_deadline": now,
        "history": [ { "at": now, "from": "customer", "author": "Ada Lovelace", "text": "My parcel <b>is</b> lost." } ],
        "actions": ["accept", "decline"],
    })
}

fn message(conversation: Uuid, text: &str, attachments: Value) -> Value {
    json!({
        "type": "message", "id": Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation,
        "code": "K4F2", "customer": "Ada Lovelace", "channel": "webhook",
        "entry": { "at": chrono::Utc::now(), "from": "customer", "author": "Ada Lovelace", "text": text, "attachments": attachments },
    })
}

fn update(conversation: Uuid, change: &str) -> Value {
    json!({ "type": "update", "id": Uuid::now_v7(), "agent_id": "alice", "conversation_id": conversation, "code": "K4F2", "change": change })
}

/// The agent commands stored so far.
async fn commands(t: &TestBus) -> Vec<AgentCommand> {
    let stored = t.stored(streams::AGENT, subjects::AGENT_IN).await;
    stored.into_iter().map(|(_, p)| serde_json::from_slice(&p).unwrap()).collect()
}

async fn command_for(t: &TestBus, event: &str) -> AgentCommand {
    let id = derived_command_id(&format!("matrix:{event}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(found) = commands(t).await.into_iter().find(|c| c.id == id) {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "no command for event {event} within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn body(e: &Value) -> &str {
    e["content"]["body"].as_str().unwrap_or_default()
}

fn in_thread_of(e: &Value, root: &str) -> bool {
    e["content"]["m.relates_to"]["rel_type"] == "m.thread" && e["content"]["m.relates_to"]["event_id"] == root
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_gets_a_room_offers_with_reactions_and_a_thread_per_conversation() {
    let s = setup().await;
    let stop = run(&s);
    // Linked by user id: the bot opens a direct room and invites the agent.
    let room = s.alice.accept_invite(WAIT).await;
    let kv = s.t.bus.jetstream().get_key_value(buckets::CHANNELS).await.unwrap();
    assert_eq!(
        kv.get("matrix.room.alice").await.unwrap().map(|v| String::from_utf8_lossy(&v).into_owned()),
        Some(room.clone())
    );
    let create = s.alice.events(&room).await.into_iter().find(|e| e["type"] == "m.room.create").unwrap();
    assert_eq!(create["sender"], s.bot.user.user_id.as_str());
    assert!(!s.alice.events(&room).await.iter().any(|e| e["type"] == "m.room.encryption"), "the room is not encrypted");

    let conversation = Uuid::now_v7();
    deliver(&s.t, offer(conversation)).await;
    let offered = s.alice.wait_event(&room, WAIT, |e| body(e).contains("New conversation #K4F2")).await;
    let offer_id = offered["event_id"].as_str().unwrap().to_string();
    assert!(body(&offered).contains("Ada Lovelace on webhook"), "{}", body(&offered));
    assert!(body(&offered).contains("Priority 50"), "{}", body(&offered));
    assert!(body(&offered).contains("My parcel <b>is</b> lost."), "the plain body shows the text as written");
    let html = offered["content"]["formatted_body"].as_str().unwrap();
    assert!(html.contains("My parcel &lt;b&gt;is&lt;/b&gt; lost."), "the HTML escapes it: {html}");
    // The bot pre-reacts so the agent only clicks.
    for key in ["✅", "❌"] {
        s.alice
            .wait_event(&room, WAIT, |e| {
                e["type"] == "m.reaction"
                    && e["content"]["m.relates_to"]["event_id"] == offer_id.as_str()
                    && e["content"]["m.relates_to"]["key"] == key
            })
            .await;
    }

    // The agent's own ✅ accepts, with a command id derived from the reaction's event id.
    let reaction = s.alice.react(&room, &offer_id, "✅").await;
    let accept = command_for(&s.t, &reaction).await;
    assert_eq!(
        (accept.action, accept.conversation_id, accept.agent_id.as_str()),
        (CommandAction::Accept, Some(conversation), "alice")
    );

    // The router's `assigned`: the offer is edited to say so and the bot's reactions go.
    deliver(&s.t, update(conversation, "assigned")).await;
    let edit = s
        .alice
        .wait_event(&room, WAIT, |e| {
            e["content"]["m.relates_to"]["rel_type"] == "m.replace"
                && e["content"]["m.relates_to"]["event_id"] == offer_id.as_str()
        })
        .await;
    assert!(edit["content"]["m.new_content"]["body"].as_str().unwrap().ends_with("✓ Accepted"));
    wait_for("the bot's reactions taken off the used offer", WAIT, || async {
        s.alice.events(&room).await.iter().filter(|e| e["type"] == "m.room.redaction").count() == 2
    })
    .await;

    // A customer message lands in the conversation's thread.
    deliver(&s.t, message(conversation, "It was due Monday.", json!([]))).await;
    s.alice.wait_event(&room, WAIT, |e| in_thread_of(e, &offer_id) && body(e).contains("It was due Monday.")).await;
    // So do updates: the customer edited their message.
    let mut edited = update(conversation, "message_edited");
    edited["history"] = json!([{ "at": chrono::Utc::now(), "from": "customer", "author": "Ada Lovelace", "text": "It was due Tuesday." }]);
    deliver(&s.t, edited).await;
    let told = s
        .alice
        .wait_event(&room, WAIT, |e| in_thread_of(e, &offer_id) && body(e).contains("It was due Tuesday."))
        .await;
    assert!(body(&told).contains("edited"), "{}", body(&told));

    // In the thread: a plain message replies, !note is a note, !resolve resolves.
    let reply = s.alice.say(&room, "We are on it.", Some(&offer_id)).await;
    assert_eq!(command_for(&s.t, &reply).await.action, CommandAction::reply("We are on it."));
    let note = s.alice.say(&room, "!note called the courier", Some(&offer_id)).await;
    let note = command_for(&s.t, &note).await;
    assert_eq!(note.action, CommandAction::Note { text: "called the courier".into() });
    assert_eq!(note.conversation_id, Some(conversation));
    let transfer = s.alice.say(&room, "!transfer billing refund > 100", Some(&offer_id)).await;
    assert!(
        matches!(command_for(&s.t, &transfer).await.action, CommandAction::Transfer { to_team: Some(t), .. } if t == "billing")
    );
    // Status anywhere.
    let away = s.alice.say(&room, "!away", None).await;
    let away = command_for(&s.t, &away).await;
    assert_eq!((away.action, away.conversation_id), (CommandAction::SetStatus { status: AgentStatus::Away }, None));
    // Outside any thread a plain message is nobody's reply: the agent is told, nothing published.
    let before = commands(&s.t).await.len();
    let stray = s.alice.say(&room, "hello?", None).await;
    s.alice
        .wait_event(&room, WAIT, |e| {
            e["type"] == "m.room.message" && body(e).starts_with("Answer a conversation in its thread")
        })
        .await;
    assert!(!commands(&s.t).await.iter().any(|c| c.id == derived_command_id(&format!("matrix:{stray}"))));
    assert_eq!(commands(&s.t).await.len(), before);
    // A bad command is refused in the thread.
    s.alice.say(&room, "!frobnicate", Some(&offer_id)).await;
    s.alice
        .wait_event(&room, WAIT, |e| in_thread_of(e, &offer_id) && body(e).starts_with("Unknown command !frobnicate"))
        .await;

    // A restart re-uses the room and acts on nothing twice.
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acted = commands(&s.t).await.len();
    let stop = run(&s);
    let second = Uuid::now_v7();
    deliver(&s.t, offer(second)).await;
    let offered = s
        .alice
        .wait_event(&room, WAIT, |e| {
            body(e).starts_with("New conversation #K4F2")
                && e["event_id"] != offer_id.as_str()
                && e["content"]["m.relates_to"].is_null()
        })
        .await;
    assert!(s.alice.invites().await.is_empty(), "no second room after a restart");
    let later = s.alice.say(&room, "!online", None).await;
    command_for(&s.t, &later).await;
    assert_eq!(commands(&s.t).await.len(), acted + 1, "only the new event acted after the restart");
    // The second offer declined by command in its thread.
    let declined = s.alice.say(&room, "!decline on holiday tomorrow", offered["event_id"].as_str()).await;
    let declined = command_for(&s.t, &declined).await;
    assert_eq!(declined.action, CommandAction::Decline { reason: Some("on holiday tomorrow".into()) });
    assert_eq!(declined.conversation_id, Some(second));
    stop.cancel();
    drop(s.synapse);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_encrypted_room_is_refused_and_the_next_offer_opens_a_new_one() {
    let s = setup().await;
    // First, a token that is not the configured user's: nothing starts, and it says why.
    let mut wrong = s.config.clone();
    wrong.user_id = "@someone-else:localhost".into();
    let agents = MatrixAgents::new(&wrong, vec![]).unwrap();
    let refused = tokio::time::timeout(WAIT, agents.run(s.t.bus.clone(), CancellationToken::new())).await.unwrap();
    assert!(refused.unwrap_err().contains("is @switchboard:localhost's, not channels.matrix.user_id"));
    assert!(s.alice.invites().await.is_empty(), "no room was opened with the wrong identity");
    let stop = run(&s);
    let room = s.alice.accept_invite(WAIT).await;
    // The agent turns encryption on in their room.
    let set = s.alice.set_state(&room, "m.room.encryption", "", json!({ "algorithm": "m.megolm.v1.aes-sha2" })).await;
    assert!(set["event_id"].is_string(), "{set}");
    let notice = s.alice.wait_event(&room, WAIT, |e| body(e) == ENCRYPTED_NOTICE).await;
    assert_eq!(notice["content"]["msgtype"], "m.notice");
    s.alice
        .wait_event(&room, WAIT, |e| {
            e["type"] == "m.room.member"
                && e["state_key"] == s.bot.user.user_id.as_str()
                && e["content"]["membership"] == "leave"
        })
        .await;
    // The next offer goes to a new, unencrypted room.
    deliver(&s.t, offer(Uuid::now_v7())).await;
    let fresh = s.alice.accept_invite(WAIT).await;
    assert_ne!(fresh, room);
    s.alice.wait_event(&fresh, WAIT, |e| body(e).contains("New conversation #K4F2")).await;
    assert!(!s.alice.events(&fresh).await.iter().any(|e| e["type"] == "m.room.encryption"));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn files_pass_both_ways_within_the_limit() {
    let s = setup().await;
    let stop = run(&s);
    let room = s.alice.accept_invite(WAIT).await;
    let conversation = Uuid::now_v7();
    deliver(&s.t, offer(conversation)).await;
    let offered = s.alice.wait_event(&room, WAIT, |e| body(e).contains("New conversation #K4F2")).await;
    let root = offered["event_id"].as_str().unwrap().to_string();

    // The customer's file: stored by their channel, uploaded into the thread by the bot.
    let store = s.t.bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.unwrap();
    let receipt = b"%PDF-1.4 receipt".to_vec();
    store.put("webhook/receipt", &mut receipt.as_slice()).await.unwrap();
    let file = json!([{ "object": "webhook/receipt", "filename": "receipt.pdf", "content_type": "application/pdf", "size": receipt.len() }]);
    deliver(&s.t, message(conversation, "Here is the receipt.", file)).await;
    let posted =
        s.alice.wait_event(&room, WAIT, |e| in_thread_of(e, &root) && e["content"]["msgtype"] == "m.file").await;
    assert_eq!(body(&posted), "receipt.pdf");
    assert_eq!(s.alice.download(posted["content"]["url"].as_str().unwrap()).await, receipt);

    // The agent's file in the thread: into the object store, sent as a reply with the file.
    let label = b"shipping label".to_vec();
    let mxc = s.alice.upload(label.clone(), "image/png", "label.png").await;
    let content = json!({
        "msgtype": "m.image", "body": "label.png", "url": mxc, "info": { "mimetype": "image/png", "size": label.len() },
        "m.relates_to": { "rel_type": "m.thread", "event_id": root, "is_falling_back": true, "m.in_reply_to": { "event_id": root } },
    });
    let sent = s.alice.send(&room, "m.room.message", content).await;
    let CommandAction::Reply { text, attachments, .. } = command_for(&s.t, &sent).await.action else {
        panic!("not a reply")
    };
    assert_eq!((text.as_str(), attachments.len()), ("", 1));
    let a = &attachments[0];
    assert_eq!((a.filename.as_str(), a.content_type.as_str(), a.size), ("label.png", "image/png", label.len() as u64));
    let stored = switchboard_adapter::read_attachment(&s.t.bus, &a.object, 1 << 20).await.unwrap();
    assert_eq!(stored, label);

    // Over max_file_bytes: refused with a notice, nothing published.
    let big = vec![7u8; 100 * 1024];
    let mxc = s.alice.upload(big.clone(), "application/zip", "big.zip").await;
    let content = json!({
        "msgtype": "m.file", "body": "big.zip", "url": mxc, "info": { "mimetype": "application/zip", "size": big.len() },
        "m.relates_to": { "rel_type": "m.thread", "event_id": root, "is_falling_back": true, "m.in_reply_to": { "event_id": root } },
    });
    let sent = s.alice.send(&room, "m.room.message", content).await;
    s.alice
        .wait_event(&room, WAIT, |e| in_thread_of(e, &root) && body(e).starts_with("Not sent: big.zip is over"))
        .await;
    assert!(!commands(&s.t).await.iter().any(|c| c.id == derived_command_id(&format!("matrix:{sent}"))));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_homeservers_rate_limit_is_waited_and_nothing_is_lost_or_doubled() {
    let s = setup().await;
    // Synapse's own limit for the bot, tightened by an admin: one event a second, no burst.
    let admin = MatrixTestClient::new(&s.synapse.url(), &s.synapse.register("admin", true));
    let path = format!("/_synapse/admin/v1/users/{}/override_ratelimit", s.bot.user.user_id);
    let set =
        admin.call(reqwest::Method::POST, &path, Some(json!({ "messages_per_second": 1, "burst_count": 1 }))).await;
    assert_eq!(set["messages_per_second"], 1, "{set}");
    let stop = run(&s);
    let room = s.alice.accept_invite(WAIT).await;
    let conversations: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for c in &conversations {
        deliver(&s.t, offer(*c)).await;
    }
    // Three offers and their six reactions, each once, however often Synapse said to wait.
    wait_for("every offer and reaction", Duration::from_secs(60), || async {
        let events = s.alice.events(&room).await;
        events.iter().filter(|e| e["type"] == "m.reaction").count() >= 6
    })
    .await;
    let events = s.alice.events(&room).await;
    let offers = events.iter().filter(|e| body(e).contains("New conversation #K4F2")).count();
    assert_eq!(offers, 3, "each offer once");
    assert_eq!(events.iter().filter(|e| e["type"] == "m.reaction").count(), 6, "each reaction once");
    assert!(s.t.dead_letters("agent-matrix").await.is_empty(), "nothing dead-lettered for a rate limit");
    let limited = s.synapse.log().lines().filter(|l| l.contains("/send/") && l.contains(" 429 ")).count();
    assert!(limited > 0, "Synapse answered M_LIMIT_EXCEEDED at least once (else this test proves nothing)");
    eprintln!("Synapse refused {limited} sends with 429; all were sent after the wait it asked for");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn more_events_than_one_sync_carries_are_read_back_after_a_downtime() {
    let s = setup().await;
    let stop = run(&s);
    let room = s.alice.accept_invite(WAIT).await;
    let conversation = Uuid::now_v7();
    deliver(&s.t, offer(conversation)).await;
    let offered = s.alice.wait_event(&room, WAIT, |e| body(e).contains("New conversation #K4F2")).await;
    let root = offered["event_id"].as_str().unwrap().to_string();
    let first = s.alice.say(&room, "!note before the downtime", Some(&root)).await;
    command_for(&s.t, &first).await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // While the endpoint is down, more than a sync's 100 events per room.
    let mut sent = Vec::new();
    for i in 0..130 {
        sent.push(s.alice.say(&room, &format!("!note number {i}"), Some(&root)).await);
    }
    let stop = run(&s);
    let notes = || async {
        commands(&s.t).await.into_iter().filter(|c| matches!(c.action, CommandAction::Note { .. })).collect::<Vec<_>>()
    };
    wait_for("every note written during the downtime", WAIT, || async { notes().await.len() >= 131 }).await;
    let notes = notes().await;
    assert_eq!(notes.len(), 131, "every note once");
    for event in &sent {
        let id = derived_command_id(&format!("matrix:{event}"));
        let note = notes.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no note for {event}"));
        assert_eq!(note.conversation_id, Some(conversation));
    }
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_room_the_bot_was_removed_from_is_replaced_and_no_delivery_is_lost() {
    let s = setup().await;
    let stop = run(&s);
    let room = s.alice.accept_invite(WAIT).await;
    // The homeserver's admin deletes the room (everyone is made to leave it). In room version
    // 12 the bot, as the room's creator, cannot be kicked: this is how it loses a room.
    let admin = MatrixTestClient::new(&s.synapse.url(), &s.synapse.register("admin", true));
    let path = format!("/_synapse/admin/v1/rooms/{room}");
    let deleted = admin.call(reqwest::Method::DELETE, &path, Some(json!({ "purge": false }))).await;
    assert!(deleted["kicked_users"].as_array().is_some_and(|k| k.len() == 2), "{deleted}");
    // Whether the sync or the refused send notices first, the offer reaches a new room, once.
    deliver(&s.t, offer(Uuid::now_v7())).await;
    let fresh = s.alice.accept_invite(WAIT).await;
    assert_ne!(fresh, room);
    s.alice.wait_event(&fresh, WAIT, |e| body(e).contains("New conversation #K4F2")).await;
    assert!(s.t.dead_letters("agent-matrix").await.is_empty(), "nothing dead-lettered");
    let offers = s.alice.events(&fresh).await.into_iter().filter(|e| body(e).contains("New conversation")).count();
    assert_eq!(offers, 1);
    stop.cancel();
}
