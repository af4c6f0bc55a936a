//! Nothing a customer sends on Telegram is dropped without a trace, and no reply is lost or sent
//! twice: every message kind becomes an envelope (files in the object store) or is answered
//! "cannot be read" and counted, every other update is counted, a long flood wait delays a
//! reply without dead-lettering it, and a split reply resumes at the part that failed. Against
//! the fake Bot API (the real wire format, the real `teloxide-core` client) and a real NATS.
//!
//! The outcome counters are process-wide: nextest runs each test in a process of its own, and
//! under `cargo test` the tests of this file take turns ([`COUNTS`]).

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_adapter::testkit::{TestBus, outbound, wait_for};
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_channel_telegram::CANNOT_READ;
use switchboard_core::Envelope;
use switchboard_core::contract::{ATTACHMENTS_STORE, buckets, streams, subjects};
use switchboard_testkit::{FakeBotApi, FakeError};

mod common;
use common::{TOKEN, config, start};

const WAIT: Duration = Duration::from_secs(30);

/// Serializes the tests that read the process-wide outcome counters.
static COUNTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A kind, its update, the text expected, and the file expected (its id and name).
type Case = (&'static str, Value, &'static str, Option<(&'static str, &'static str)>);

fn count(outcome: InboundOutcome) -> u64 {
    outcomes::count("telegram", outcome)
}

async fn object(t: &TestBus, name: &str) -> Vec<u8> {
    let store = t.bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.unwrap();
    let mut object = store.get(name).await.unwrap_or_else(|e| panic!("object {name}: {e}"));
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes).await.unwrap();
    bytes
}

/// The answers "cannot be read" the fake received, by chat.
fn cannot_read_answers(api: &FakeBotApi) -> Vec<i64> {
    api.sent().iter().filter(|s| s.text.as_deref() == Some(CANNOT_READ)).map(|s| s.chat_id).collect()
}

#[tokio::test]
async fn every_message_kind_becomes_an_envelope_or_is_answered_and_counted() {
    let _turn = COUNTS.lock().await;
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&t, &config(&api, dir.path()));
    let not_routed = count(InboundOutcome::NotRouted);

    // (file id, bytes) of every kind that carries a file.
    let files: [(&str, &[u8]); 8] = [
        ("voice-1", b"OggS voice of the customer"),
        ("audio-1", b"ID3 a song"),
        ("video-1", b"\x00\x00\x00\x18ftypmp42 video"),
        ("note-1", b"\x00\x00\x00\x18ftypmp42 round video"),
        ("sticker-1", b"RIFF....WEBPVP8 sticker"),
        ("anim-1", b"\x00\x00\x00\x18ftypisom gif"),
        ("photo-1", b"\x89PNG picture"),
        ("doc-1", b"%PDF-1.4 invoice"),
    ];
    for (id, bytes) in files {
        api.add_file(id, bytes.to_vec());
    }
    let with = |fields: Value| api.message_with(501, 501, fields);
    let file = |id: &str, extra: Value| {
        let mut f = api.file_fields(id);
        f.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        f
    };
    let cases: Vec<Case> = vec![
        (
            "voice",
            with(json!({ "voice": file("voice-1", json!({ "duration": 7, "mime_type": "audio/ogg" })) })),
            "[voice message, 0:07]",
            Some(("voice-1", "voice.ogg")),
        ),
        (
            "audio",
            with(json!({
                "audio": file("audio-1", json!({ "duration": 205, "performer": "Ada", "title": "Engines", "file_name": "engines.mp3", "mime_type": "audio/mpeg" })),
                "caption": "this one",
            })),
            "[audio Ada — Engines, 3:25] this one",
            Some(("audio-1", "engines.mp3")),
        ),
        (
            "video",
            with(
                json!({ "video": file("video-1", json!({ "width": 640, "height": 480, "duration": 12, "mime_type": "video/mp4" })) }),
            ),
            "[video, 0:12]",
            Some(("video-1", "video.mp4")),
        ),
        (
            "video_note",
            with(json!({ "video_note": file("note-1", json!({ "length": 240, "duration": 5 })) })),
            "[video note, 0:05]",
            Some(("note-1", "video-note.mp4")),
        ),
        (
            "sticker",
            with(
                json!({ "sticker": file("sticker-1", json!({ "width": 512, "height": 512, "type": "regular", "is_animated": false, "is_video": false, "emoji": "😀" })) }),
            ),
            "[sticker 😀]",
            Some(("sticker-1", "sticker.webp")),
        ),
        (
            "animation",
            // Telegram repeats an animation as a document, for old clients.
            with(json!({
                "animation": file("anim-1", json!({ "width": 320, "height": 240, "duration": 3, "file_name": "cat.mp4", "mime_type": "video/mp4" })),
                "document": file("anim-1", json!({ "file_name": "cat.mp4", "mime_type": "video/mp4" })),
            })),
            "[animation, 0:03]",
            Some(("anim-1", "cat.mp4")),
        ),
        (
            "photo",
            with(json!({ "photo": [file("photo-1", json!({ "width": 800, "height": 600 }))] })),
            "[photo]",
            Some(("photo-1", "photo.jpg")),
        ),
        (
            "document",
            with(
                json!({ "document": file("doc-1", json!({ "file_name": "invoice.pdf", "mime_type": "application/pdf" })), "caption": "my invoice" }),
            ),
            "my invoice",
            Some(("doc-1", "invoice.pdf")),
        ),
        (
            "location",
            with(json!({ "location": { "latitude": 55.7558, "longitude": 37.6173 } })),
            "[location 55.7558, 37.6173]",
            None,
        ),
        (
            "venue",
            with(json!({
                "location": { "latitude": 51.5007, "longitude": -0.1246 },
                "venue": { "location": { "latitude": 51.5007, "longitude": -0.1246 }, "title": "Big Ben", "address": "London SW1A 0AA" },
            })),
            "[venue Big Ben, London SW1A 0AA (51.5007, -0.1246)]",
            None,
        ),
        (
            "contact",
            with(
                json!({ "contact": { "phone_number": "+44 20 7946 0000", "first_name": "Ada", "last_name": "Lovelace" } }),
            ),
            "[contact Ada Lovelace +44 20 7946 0000]",
            None,
        ),
        (
            "poll",
            with(json!({ "poll": {
                "id": "5001", "question": "Which day suits you?",
                "options": [{ "text": "Monday", "voter_count": 0 }, { "text": "Friday", "voter_count": 0 }],
                "total_voter_count": 0, "is_closed": false, "is_anonymous": true, "type": "regular",
                "allows_multiple_answers": false,
            } })),
            "[poll: Which day suits you? — Monday / Friday]",
            None,
        ),
        ("dice", with(json!({ "dice": { "emoji": "🎲", "value": 4 } })), "[dice 🎲 4]", None),
    ];
    for (_, update, _, _) in &cases {
        api.push_update(update.clone());
    }
    // What cannot be carried, each from a chat of its own: a game, a story, and a kind newer
    // than any client (teloxide cannot read the message at all).
    api.push_update(api.message_with(
        601,
        601,
        json!({ "game": {
        "title": "Lumberjack", "description": "Chop wood",
        "photo": [{ "file_id": "g", "file_unique_id": "g", "width": 1, "height": 1 }],
    } }),
    ));
    api.push_update(api.message_with(
        602,
        602,
        json!({ "story": { "chat": { "id": 9, "type": "private", "first_name": "S" }, "id": 5 } }),
    ));
    api.push_update(api.message_with(603, 603, json!({ "hologram": { "id": "h-1", "depth": 3 } })));

    wait_for("an envelope per kind", WAIT, || async { t.envelopes("telegram").await.len() == cases.len() }).await;
    let got: Vec<Envelope> = t.envelopes("telegram").await;
    for ((kind, _, text, file), e) in cases.iter().zip(&got) {
        assert_eq!(e.metadata.get("telegram.kind").map(String::as_str), Some(*kind), "{e:?}");
        assert_eq!(e.text, *text, "the text of a {kind}");
        match file {
            Some((id, name)) => {
                let a = &e.attachments[..];
                assert_eq!(a.len(), 1, "one file for a {kind}: {a:?}");
                assert!(a[0].skipped.is_none() && !a[0].object.is_empty(), "{kind}: {:?}", a[0]);
                assert_eq!(a[0].filename, *name, "{kind}");
                let expected = files.iter().find(|(f, _)| f == id).unwrap().1;
                assert_eq!(object(&t, &a[0].object).await, expected, "the bytes of the {kind}");
                assert_eq!(a[0].size, expected.len() as u64);
            }
            None => assert!(e.attachments.is_empty(), "{kind}: {:?}", e.attachments),
        }
    }

    wait_for("three answers", WAIT, || async { cannot_read_answers(&api).len() == 3 }).await;
    let mut answered = cannot_read_answers(&api);
    answered.sort();
    assert_eq!(answered, [601, 602, 603], "each customer told once");
    wait_for("three counted", WAIT, || async { count(InboundOutcome::NotRouted) == not_routed + 3 }).await;
    assert_eq!(t.envelopes("telegram").await.len(), cases.len(), "nothing stored for what cannot be read");
    running.stop().await;
}

#[tokio::test]
async fn updates_without_a_chat_or_of_unknown_kinds_are_counted() {
    let _turn = COUNTS.lock().await;
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&t, &config(&api, dir.path()));
    let (not_routed, dead) = (count(InboundOutcome::NotRouted), count(InboundOutcome::DeadLetter));

    let user = json!({ "id": 701, "is_bot": false, "first_name": "U" });
    // Raw elements come whatever `allowed_updates` says, as from a webhook set up elsewhere.
    api.push_raw_update(
        json!({ "update_id": 50, "inline_query": { "id": "iq1", "from": user, "query": "shoes", "offset": "" } })
            .to_string(),
    );
    api.push_raw_update(json!({ "update_id": 51, "chat_join_request": { "chat": { "id": -5, "type": "group", "title": "G" }, "from": user, "user_chat_id": 701, "date": 1 } }).to_string());
    api.push_raw_update(
        json!({ "update_id": 52, "message": { "message_id": 3, "date": 1, "text": "a message without a chat" } })
            .to_string(),
    );
    api.push_raw_update(json!({ "update_id": 53, "message": "not a message" }).to_string());
    // A button of an inline message (no chat) that is not ours, and someone joining a group.
    api.push_update(json!({ "callback_query": { "id": "cq1", "from": user, "inline_message_id": "im1", "chat_instance": "1", "data": "whatever" } }));
    let mut joined = api.message_with(-300, 701, json!({ "new_chat_members": [user] }));
    joined["update_id"] = json!(60);
    api.push_update(joined);
    // A customer's message after them: it flows, so everything before it was taken.
    let mut after = api.text_message(702, 702, "still here");
    after["update_id"] = json!(61);
    api.push_update(after);

    wait_for("the message after them", WAIT, || async { t.envelopes("telegram").await.len() == 1 }).await;
    wait_for("six counted", WAIT, || async { count(InboundOutcome::NotRouted) == not_routed + 6 }).await;
    assert_eq!(count(InboundOutcome::DeadLetter), dead, "none of them is a dead letter");
    assert!(cannot_read_answers(&api).is_empty(), "no customer to answer");
    running.stop().await;
}

#[tokio::test]
async fn a_flood_wait_longer_than_the_maximum_delays_the_reply_and_never_dead_letters_it() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&api, dir.path());
    cfg.max_retry_after_secs = 1;
    // Two tries, a second apart (one message a second to a chat): within the flood both would be
    // told to wait longer than the maximum.
    cfg.runtime.max_attempts = 2;
    cfg.runtime.backoff = switchboard_bus::Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(1) };
    let running = start(&t, &cfg);

    // Telegram answers 429 "retry after <seconds left>" to every send for 4 s.
    api.flood("sendMessage", Duration::from_secs(4));
    let asked = tokio::time::Instant::now();
    t.send_outbound(&outbound("telegram", "503", "after the flood")).await;
    let sent = api.wait_for_sent(1, WAIT).await;
    assert!(sent[0].at - asked >= Duration::from_secs(4), "sent {:?} after asking", sent[0].at - asked);
    assert_eq!((sent[0].chat_id, sent[0].text.as_deref()), (503, Some("after the flood")));
    let refused = api.requests().iter().filter(|r| r.method == "sendMessage" && r.status == 429).count();
    assert!(refused >= 1, "Telegram asked to wait");
    t.wait_outbound_drained("telegram", WAIT).await;
    assert!(t.dead_letters("telegram").await.is_empty(), "no dead letter while Telegram only asks to wait");
    let failed = t.stored(streams::EVENTS, &subjects::event("delivery_failed")).await;
    assert!(failed.is_empty(), "no delivery failure recorded");
    assert_eq!(api.sent().len(), 1, "sent once");
    running.stop().await;
}

#[tokio::test]
async fn a_split_reply_resumes_at_the_part_that_failed() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&api, dir.path());
    cfg.runtime.backoff = switchboard_bus::Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(1) };
    let running = start(&t, &cfg);

    // 9,000 characters: three parts; the second fails once with a 500 (teloxide waits 10 s on it).
    let long = outbound("telegram", "502", &"0123456789 ".repeat(818));
    api.fail_after("sendMessage", 1, 1, FakeError::ServerError);
    t.send_outbound(&long).await;
    // The three parts first, then nothing left: on a loaded machine the consumer's counters
    // have been seen to read "drained" before the channel took the message (CI, once).
    let to_502 = || api.sent().iter().filter(|s| s.chat_id == 502).count();
    wait_for("the three parts", WAIT, || async { to_502() >= 3 }).await;
    t.wait_outbound_drained("telegram", WAIT).await;
    let texts: Vec<String> = api.sent().iter().filter(|s| s.chat_id == 502).filter_map(|s| s.text.clone()).collect();
    assert_eq!(texts.len(), 3, "every part exactly once: {:?}", texts.iter().map(String::len).collect::<Vec<_>>());
    assert_eq!(texts.concat().replace(' ', ""), "0123456789".repeat(818), "in order, nothing twice");
    let failed = api.requests().iter().filter(|r| r.method == "sendMessage" && r.status == 500).count();
    assert_eq!(failed, 1, "the second part failed once");

    // A process that died after the first part left its progress behind: the next one sends the
    // rest only.
    let resumed = outbound("telegram", "504", &"abcdefghij ".repeat(818));
    let kv = t.bus.jetstream().get_key_value(buckets::CHANNELS).await.unwrap();
    let key = format!("telegram.sent.{}", resumed.id.simple());
    kv.put(key.as_str(), json!({ "sent": [4242] }).to_string().into()).await.unwrap();
    t.send_outbound(&resumed).await;
    wait_for("the two parts", WAIT, || async { api.sent().iter().filter(|s| s.chat_id == 504).count() >= 2 }).await;
    t.wait_outbound_drained("telegram", WAIT).await;
    let parts: Vec<String> = api.sent().iter().filter(|s| s.chat_id == 504).filter_map(|s| s.text.clone()).collect();
    assert_eq!(parts.len(), 2, "parts two and three only");
    assert!("abcdefghij ".repeat(818).replace(' ', "").ends_with(&parts.concat().replace(' ', "")));
    assert!(kv.get(key.as_str()).await.unwrap().is_none(), "progress dropped once the message is out");
    let kept = t.stored(&format!("KV_{}", buckets::CHANNELS), &format!("$KV.{}.{key}", buckets::CHANNELS)).await;
    assert!(kept.is_empty(), "not even a delete marker left in the bucket: {}", kept.len());
    running.stop().await;
}

#[tokio::test]
async fn an_agent_delivery_waits_as_asked_and_resumes_at_the_part_that_was_refused() {
    use switchboard_core::agent::{AgentMessage, Author, HistoryEntry};
    use switchboard_core::{AgentDelivery, contract::subjects as s};
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&api, dir.path());
    cfg.max_retry_after_secs = 1;
    let agents = switchboard_channel_telegram::agent_chats(&cfg).unwrap();
    let kv = t.bus.jetstream().get_key_value(buckets::CHANNELS).await.unwrap();
    kv.put("telegram.agent.anna", "801".into()).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(agents.run(t.bus.clone(), stop.clone()));

    // A customer message of 6,000 characters: two parts; Telegram takes the first and asks to
    // wait 3 s (more than the 1 s waited inside a send) before the second.
    api.fail_after("sendMessage", 1, 1, FakeError::RetryAfter(3));
    let entry = HistoryEntry::new(chrono::Utc::now(), Author::Customer, None, "word ".repeat(1200));
    let delivery = AgentDelivery::Message(AgentMessage {
        id: uuid::Uuid::now_v7(),
        agent_id: "anna".into(),
        conversation_id: uuid::Uuid::now_v7(),
        code: "K4F2".into(),
        customer: Some("Ann".into()),
        channel: "telegram".into(),
        entry,
    });
    let asked = tokio::time::Instant::now();
    t.bus.publish(&s::agent_out("telegram"), &delivery, "delivery-1").await.unwrap();
    let sent = api.wait_for_sent(2, WAIT).await;
    assert!(sent[1].at - asked >= Duration::from_secs(3), "the second part after the wait: {:?}", sent[1].at - asked);
    let words: usize = sent.iter().filter_map(|s| s.text.as_deref()).map(|t| t.matches("word").count()).sum();
    assert_eq!(words, 1200, "every part exactly once");
    // Nothing more comes, and nothing is dead-lettered.
    wait_for("the delivery acked", WAIT, || async {
        let stream = t.bus.jetstream().get_stream(streams::AGENT).await.unwrap();
        let info = stream.consumer_info("agent-telegram").await;
        info.is_ok_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
    })
    .await;
    assert_eq!(api.sent().len(), 2, "no part twice");
    assert!(t.dead_letters("agent-telegram").await.is_empty());
    stop.cancel();
    let _ = task.await;
}

#[tokio::test]
async fn an_update_that_must_be_tried_again_does_not_make_those_before_it_count_twice() {
    let _turn = COUNTS.lock().await;
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let (not_routed, duplicate) = (count(InboundOutcome::NotRouted), count(InboundOutcome::Duplicate));
    // One batch: an edit (not routed), then a photo whose download fails once (tried again).
    api.add_file("photo-2", b"\x89PNG again".to_vec());
    api.push_update(api.edited_message(801, 801, 1, "fixed typo"));
    api.push_update(api.photo_message(801, 801, "photo-2", Some("look")));
    api.fail_next("getFile", 1, FakeError::Other { code: 400, description: "Bad Request: try again".into() });
    let running = start(&t, &config(&api, dir.path()));

    wait_for("the photo", WAIT, || async { t.envelopes("telegram").await.len() == 1 }).await;
    let polls = api.get_updates_calls().len();
    api.wait_for_get_updates_calls(polls + 1, WAIT).await;
    assert_eq!(count(InboundOutcome::NotRouted), not_routed + 1, "the edit counted once");
    assert_eq!(count(InboundOutcome::Duplicate), duplicate, "nothing handled twice");
    running.stop().await;
}

#[tokio::test]
async fn a_bare_start_is_greeted_and_counted_not_offered() {
    let _turn = COUNTS.lock().await;
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&api, dir.path());
    cfg.start_greeting = Some("Hi! Ask us anything (we answer within 1 hour).".into());
    let running = start(&t, &cfg);
    let not_routed = count(InboundOutcome::NotRouted);

    // Opening the chat with the bot sends a bare /start: greeted, not a conversation.
    api.push_update(api.text_message(611, 611, "/start"));
    // A deep link's /start carries a payload: kept as a message, the payload in telegram.start.
    api.push_update(api.text_message(612, 612, "/start order-17"));
    api.push_update(api.text_message(611, 611, "My question, then."));
    wait_for("the greeting", WAIT, || async { api.sent().iter().any(|s| s.chat_id == 611) }).await;
    wait_for("two envelopes", WAIT, || async { t.envelopes("telegram").await.len() == 2 }).await;
    let greeting = api.sent().into_iter().find(|s| s.chat_id == 611).unwrap();
    assert_eq!(
        greeting.text.as_deref(),
        Some(switchboard_channel_telegram::format::escape("Hi! Ask us anything (we answer within 1 hour).").as_str())
    );
    let got = t.envelopes("telegram").await;
    assert_eq!(got[0].metadata.get("telegram.start").map(String::as_str), Some("order-17"));
    assert_eq!(got[1].text, "My question, then.");
    assert!(got.iter().all(|e| e.text != "/start" || e.metadata.contains_key("telegram.start")));
    assert_eq!(count(InboundOutcome::NotRouted), not_routed + 1, "the bare /start counted once, as not routed");
    running.stop().await;
}
