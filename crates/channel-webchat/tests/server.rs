//! The web-chat server against a real NATS server, spoken to over real WebSockets.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard_adapter::testkit::outbound;
use switchboard_adapter::{RateLimitConfig, RuntimeConfig};
use switchboard_channel_webchat::{CHANNEL, sign_identity};
use switchboard_core::contract::{buckets, streams, subjects};
use switchboard_core::{Event, EventBatch, EventKind};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

#[tokio::test]
async fn pages_from_other_origins_are_refused() {
    let chat = Chat::start(|_| {}).await;
    for origin in [Some("http://evil.test"), None, Some("http://shop.test.evil.test")] {
        match chat.connect_from(origin).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 403, "{origin:?}"),
            other => panic!("{origin:?} should be refused with 403, got {:?}", other.map(|_| "a socket")),
        }
    }
    let widget = reqwest::get(format!("http://{}/chat/widget.js", chat.base)).await.unwrap();
    assert_eq!(widget.status(), 200);
    assert!(widget.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(chat.envelopes().await.is_empty());
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn a_message_is_stored_once_and_replayed_in_order_after_reconnects() {
    let chat = Chat::start(|_| {}).await;
    let (mut ws, welcome) = chat.open(json!({ "after": 0, "lang": "en", "page": "http://shop.test/cart" })).await;
    let token = welcome["token"].as_str().unwrap().to_string();
    let session = welcome["session"].as_str().unwrap().to_string();
    assert!(ws.history().await.is_empty());

    ws.send(json!({ "type": "send", "client_id": "tab1-1", "text": "Hello, my order is late",
        "prechat": { "name": "Olga", "email": "olga@example.com", "topic": "billing" } }))
        .await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack["client_id"], "tab1-1");
    let first_seq = ack["seq"].as_u64().unwrap();
    let entry = ws.next_of("entry").await;
    assert_eq!(entry["seq"].as_u64().unwrap(), first_seq);
    assert_eq!(entry["entry"]["client_id"], "tab1-1");

    let envelopes = chat.envelopes().await;
    assert_eq!(envelopes.len(), 1);
    let e = &envelopes[0];
    assert_eq!(e.thread_key, session);
    assert_eq!(e.customer.id, format!("visitor:{session}"));
    assert_eq!(e.customer.name.as_deref(), Some("Olga"));
    assert_eq!(e.customer.email, None, "an unverified address never becomes the identity");
    assert_eq!(e.metadata["contact_email"], "olga@example.com");
    assert_eq!(e.metadata["topic"], "billing");
    assert_eq!(e.metadata["page_url"], "http://shop.test/cart");
    assert_eq!(e.metadata["verified"], "false");
    assert_eq!(e.provider_message_id, format!("{session}:tab1-1"));

    // The socket drops; meanwhile an agent answers; the widget resumes and resends its outbox.
    drop(ws);
    let mut reply = outbound(CHANNEL, &format!("visitor:{session}"), "Hi, this is Anna");
    reply.to.thread_key = session.clone();
    reply.metadata.insert("agent_name".into(), "Anna".into());
    chat.bus.send_outbound(&reply).await;
    chat.bus.wait_outbound_drained(CHANNEL, WAIT).await;

    let (mut ws, welcome) = chat.open(json!({ "token": token, "after": first_seq })).await;
    assert_eq!(welcome["session"], session.as_str(), "the signed token resumes the session");
    let missed = ws.history().await;
    assert_eq!(texts(&missed), ["agent:Hi, this is Anna"]);
    assert_eq!(missed[0]["entry"]["agent_name"], "Anna");
    ws.send(json!({ "type": "send", "client_id": "tab1-1", "text": "Hello, my order is late" })).await;
    assert_eq!(ws.next_of("ack").await["seq"].as_u64().unwrap(), first_seq, "a resend is acked, not stored");
    ws.send(json!({ "type": "send", "client_id": "tab1-2", "text": "one" })).await;
    ws.next_of("ack").await;
    ws.send(json!({ "type": "send", "client_id": "tab1-3", "text": "two" })).await;
    ws.next_of("ack").await;
    drop(ws);

    // A reload replays everything, once, in order.
    let (mut ws, _) = chat.open(json!({ "token": token, "after": 0 })).await;
    let all = ws.history().await;
    assert_eq!(
        texts(&all),
        ["customer:Hello, my order is late", "agent:Hi, this is Anna", "customer:one", "customer:two"]
    );
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let stored: Vec<String> = chat.envelopes().await.iter().map(|e| e.text.clone()).collect();
    assert_eq!(stored, ["Hello, my order is late", "one", "two"]);
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn bad_frames_get_clear_errors_and_store_nothing() {
    let chat = Chat::start(|cfg| cfg.max_text_bytes = 100).await;
    // Anything before hello closes the socket with 4400.
    let mut ws = chat.connect_from(Some(ORIGIN)).await.unwrap();
    ws.send(json!({ "type": "send", "client_id": "a", "text": "hi" })).await;
    assert_eq!(ws.next().await.err(), Some(Some(4400)));

    let (mut ws, _) = chat.open(json!({})).await;
    ws.history().await;
    ws.ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(ws.next_of("error").await["code"], "invalid");
    for (frame, code) in [
        (json!({ "type": "send", "client_id": "x", "text": "a".repeat(101) }), "too_large"),
        (json!({ "type": "send", "client_id": "bad id!", "text": "hi" }), "invalid"),
        (json!({ "type": "send", "client_id": "x", "text": "   " }), "invalid"),
        (
            json!({ "type": "send", "client_id": "x", "text": "hi", "prechat": { "email": "not-an-address" } }),
            "invalid",
        ),
        (json!({ "type": "send", "client_id": "x", "text": "hi", "prechat": { "topic": "nope" } }), "invalid"),
        (
            json!({ "type": "send", "client_id": "x", "text": "hi",
            "attachments": [{ "object": "webchat/other/x", "filename": "a", "content_type": "text/plain", "size": 1 }] }),
            "invalid",
        ),
        (json!({ "type": "csat", "conversation_id": "0199", "score": 5 }), "invalid"),
        (json!({ "type": "csat", "conversation_id": "0199", "score": 9 }), "invalid"),
    ] {
        ws.send(frame.clone()).await;
        let error = ws.next_of("error").await;
        assert_eq!(error["code"], code, "{frame}: {error}");
    }
    // The socket still works after all that.
    ws.send(json!({ "type": "send", "client_id": "ok", "text": "fine" })).await;
    ws.next_of("ack").await;
    assert_eq!(chat.envelopes().await.len(), 1);
    // A frame over the limit closes the socket.
    ws.ws
        .send(Message::text(format!("{{\"type\":\"send\",\"client_id\":\"big\",\"text\":\"{}\"}}", "b".repeat(70_000))))
        .await
        .ok();
    ws.closed().await;
    assert_eq!(chat.envelopes().await.len(), 1);
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn floods_are_limited_per_visitor_and_per_address() {
    let chat = Chat::start(|cfg| {
        cfg.runtime = RuntimeConfig { rate_limit: RateLimitConfig { per_minute: 1, burst: 3 }, ..Default::default() };
        cfg.max_connections_per_ip = 2;
    })
    .await;
    let (mut ws, _) = chat.open(json!({})).await;
    ws.history().await;
    let mut codes = Vec::new();
    for i in 0..6 {
        ws.send(json!({ "type": "send", "client_id": format!("m{i}"), "text": "spam" })).await;
        loop {
            let f = ws.next().await.unwrap();
            if f["type"] == "ack" || f["type"] == "error" {
                codes.push(f["code"].as_str().unwrap_or("ack").to_string());
                break;
            }
        }
    }
    assert_eq!(codes, ["ack", "ack", "ack", "rate_limited", "rate_limited", "rate_limited"]);
    assert_eq!(chat.envelopes().await.len(), 3);

    let (_second, _) = chat.open(json!({})).await;
    match chat.connect_from(Some(ORIGIN)).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 429),
        Ok(_) => panic!("a third socket from one address is refused"),
        Err(e) => panic!("unexpected: {e}"),
    }
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn an_address_over_its_message_limit_is_told_so_and_closed_with_4429() {
    let chat = Chat::start(|cfg| cfg.ip_messages_per_minute = 2).await;
    let (mut ws, _) = chat.open(json!({})).await;
    ws.history().await;
    for i in 0..2 {
        ws.send(json!({ "type": "send", "client_id": format!("m{i}"), "text": "hello" })).await;
        assert_eq!(ws.next_of("ack").await["client_id"], format!("m{i}"));
    }
    ws.send(json!({ "type": "send", "client_id": "m2", "text": "one more" })).await;
    let refused = ws.next_of("error").await;
    assert_eq!((refused["code"].clone(), refused["scope"].clone()), (json!("rate_limited"), json!("ip")), "{refused}");
    assert_eq!(ws.closed().await, Some(4429), "closed with the documented code");
    assert_eq!(chat.envelopes().await.len(), 2, "the refused message changed nothing");
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn a_signed_identity_links_the_visitor_and_a_forged_one_does_not() {
    let chat = Chat::start(|_| {}).await;
    let hash = sign_identity(b"identity-key-for-tests", "42");
    let (mut ws, signed) = chat
        .open(json!({ "identity": { "user_id": "42", "hash": hash, "name": "Olga", "email": "olga@example.com" } }))
        .await;
    // A signed-in visitor is not asked again for what the site supplied: only the topic is left;
    // a signed-in one the site gave no email is asked for that.
    assert_eq!(signed["prechat"]["fields"], json!(["topic"]), "the signed-in visitor is asked again: {signed}");
    let (_named, welcome) = chat.open(json!({ "identity": { "user_id": "42", "hash": hash, "name": "Olga" } })).await;
    assert_eq!(welcome["prechat"]["fields"], json!(["email", "topic"]), "{welcome}");
    ws.history().await;
    ws.send(json!({ "type": "send", "client_id": "a", "text": "signed in" })).await;
    ws.next_of("ack").await;
    let forged = sign_identity(b"identity-key-for-tests", "43");
    let (mut ws2, welcome) = chat
        .open(json!({ "identity": { "user_id": "42", "hash": forged, "name": "Mallory", "email": "mallory@example.com" } }))
        .await;
    assert_eq!(
        welcome["prechat"]["fields"],
        json!(["name", "email", "topic"]),
        "a forged identity is taken at its word"
    );
    ws2.history().await;
    ws2.send(json!({ "type": "send", "client_id": "a", "text": "forged" })).await;
    ws2.next_of("ack").await;
    let envelopes = chat.envelopes().await;
    assert_eq!(envelopes[0].customer.id, "user:42");
    assert_eq!(envelopes[0].customer.email.as_deref(), Some("olga@example.com"));
    assert_eq!(envelopes[0].metadata["verified"], "true");
    assert_eq!(envelopes[1].customer.id, format!("visitor:{}", welcome["session"].as_str().unwrap()));
    assert_eq!(envelopes[1].customer.email, None);
    assert_eq!(envelopes[1].customer.name, None);
    assert_eq!(envelopes[1].metadata["verified"], "false");

    // A token this server did not sign starts a new session.
    let (_ws3, fresh) = chat.open(json!({ "token": "v1.0123456789abcdef0123456789abcdef.AAAA" })).await;
    assert_ne!(fresh["session"], "0123456789abcdef0123456789abcdef");
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn offline_mode_asks_for_an_email_and_marks_the_message() {
    let chat = Chat::start(|_| {}).await;
    // Stand in for the router: nobody of `support` is online; `billing` is staffed.
    let mut requests = chat.bus.bus.client().subscribe(subjects::router_availability("main")).await.unwrap();
    let client = chat.bus.bus.client().clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let body = json!([{ "team": "support", "online_agents": 0, "open": true },
                              { "team": "billing", "online_agents": 2, "open": true }]);
            client.publish(request.reply.unwrap(), body.to_string().into()).await.unwrap();
        }
    });
    let (mut ws, welcome) = chat.open(json!({ "lang": "ru" })).await;
    assert_eq!(welcome["online"], false);
    assert_eq!(welcome["prechat"]["fields"], json!(["name", "email", "topic"]));
    assert_eq!(welcome["prechat"]["topics"], json!([{ "id": "billing", "label": "Billing" }]));
    ws.history().await;
    ws.send(json!({ "type": "send", "client_id": "a", "text": "anyone?" })).await;
    assert!(ws.next_of("error").await["message"].as_str().unwrap().contains("email"));
    ws.send(json!({ "type": "send", "client_id": "b", "text": "anyone?", "prechat": { "email": "olga@example.com" } }))
        .await;
    ws.next_of("ack").await;
    let e = &chat.envelopes().await[0];
    assert_eq!(e.metadata["offline"], "true");
    assert_eq!(e.metadata["contact_email"], "olga@example.com");
    assert_eq!(e.customer.language.as_deref(), Some("ru"));
    // A topic whose team is staffed is online.
    ws.send(json!({ "type": "send", "client_id": "c", "text": "billing question", "prechat": { "topic": "billing" } }))
        .await;
    ws.next_of("ack").await;
    let e = &chat.envelopes().await[1];
    assert!(!e.metadata.contains_key("offline"), "{:?}", e.metadata);
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn assignment_resolution_typing_and_one_rating_per_conversation() {
    let chat = Chat::start(|_| {}).await;
    let (mut ws, welcome) = chat.open(json!({})).await;
    let session = welcome["session"].as_str().unwrap().to_string();
    ws.history().await;
    ws.send(json!({ "type": "send", "client_id": "a", "text": "help" })).await;
    ws.next_of("ack").await;

    // What the router would store and publish for this conversation.
    let conversation = uuid::Uuid::now_v7();
    let kv = chat.bus.bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.unwrap();
    let record = json!({ "id": conversation, "channel": "webchat", "thread_key": session, "agent": "anna" });
    kv.put(conversation.to_string(), record.to_string().into()).await.unwrap();
    let event = |kind: EventKind, data: Value| Event {
        id: uuid::Uuid::now_v7(),
        at: chrono::Utc::now(),
        kind,
        conversation_id: Some(conversation),
        agent_id: Some("anna".into()),
        channel: None,
        data: data.as_object().unwrap().clone(),
    };
    let assigned = event(EventKind::Assigned, json!({ "agent_name": "Anna" }));
    chat.bus.bus.publish(&subjects::event("assigned"), &assigned, &assigned.id.to_string()).await.unwrap();
    let entry = ws.entry_of("assigned").await;
    assert_eq!(entry["entry"]["agent_name"], "Anna");

    // The agent API's signal does not name the agent: the socket names the one assigned.
    let typing = json!({ "conversation_id": conversation, "agent_id": "anna" });
    chat.bus.bus.client().publish(subjects::AGENT_TYPING, typing.to_string().into()).await.unwrap();
    assert_eq!(ws.next_of("typing").await["agent_name"], "Anna", "typing does not name the assigned agent");
    // A signal with a field the `typing` message does not have is not one; the next one shows.
    let odd = json!({ "conversation_id": conversation, "agent_id": "anna", "agent_name": "Odd", "x-unknown": 1 });
    chat.bus.bus.client().publish(subjects::AGENT_TYPING, odd.to_string().into()).await.unwrap();
    let named = json!({ "conversation_id": conversation, "agent_id": "anna", "agent_name": "Anna" });
    chat.bus.bus.client().publish(subjects::AGENT_TYPING, named.to_string().into()).await.unwrap();
    assert_eq!(ws.next_of("typing").await["agent_name"], "Anna", "the signal with an unknown field was shown");

    // The router publishes its events as batches (`events/1`): the resolution among others.
    let resolved = event(EventKind::Resolved, json!({ "survey": "csat" }));
    let batch = EventBatch { events: vec![event(EventKind::AgentReplied, json!({})), resolved] };
    chat.bus.bus.publish(subjects::EVENT_BATCH, &batch, &batch.msg_id()).await.unwrap();
    let entry = ws.entry_of("resolved").await;
    assert_eq!(entry["entry"]["conversation_id"], conversation.to_string());
    assert_eq!(entry["entry"]["survey"], "csat");

    for score in [5, 1] {
        ws.send(json!({ "type": "csat", "conversation_id": conversation, "score": score })).await;
    }
    let answer = ws.entry_of("csat_answer").await;
    assert_eq!((&answer["entry"]["score"], &answer["entry"]["survey"]), (&json!(5), &json!("csat")));
    let stored = chat.bus.stored(streams::EVENTS, "sb.events.csat_received").await;
    assert_eq!(stored.len(), 1, "one rating per conversation");
    let csat: Event = serde_json::from_slice(&stored[0].1).unwrap();
    assert_eq!(csat.data["score"], 5);
    assert_eq!(csat.agent_id.as_deref(), Some("anna"));
    assert_eq!(csat.channel.as_deref(), Some("webchat"));
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn the_resolution_names_the_survey_and_only_an_answer_to_it_on_its_scale_counts_once() {
    let chat = Chat::start(|_| {}).await;
    let (mut ws, welcome) = chat.open(json!({})).await;
    let session = welcome["session"].as_str().unwrap().to_string();
    ws.history().await;
    ws.send(json!({ "type": "send", "client_id": "a", "text": "help" })).await;
    ws.next_of("ack").await;
    let conversation = uuid::Uuid::now_v7();
    let kv = chat.bus.bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.unwrap();
    let record =
        json!({ "id": conversation, "channel": "webchat", "thread_key": session, "agent": "anna", "survey": "nps" });
    kv.put(conversation.to_string(), record.to_string().into()).await.unwrap();
    let resolved = Event {
        id: uuid::Uuid::now_v7(),
        at: chrono::Utc::now(),
        kind: EventKind::Resolved,
        conversation_id: Some(conversation),
        agent_id: Some("anna".into()),
        channel: None,
        data: json!({ "survey": "nps" }).as_object().unwrap().clone(),
    };
    chat.bus.bus.publish(&subjects::event("resolved"), &resolved, &resolved.id.to_string()).await.unwrap();
    let entry = ws.entry_of("resolved").await;
    assert_eq!(entry["entry"]["survey"], "nps", "the widget shows the NPS buttons");

    // Refused, changing nothing: another survey, a score off the scale, an unknown survey.
    for (frame, reason) in [
        (
            json!({ "type": "csat", "conversation_id": conversation, "score": 5 }),
            "this conversation was asked nps, not csat",
        ),
        (
            json!({ "type": "survey", "conversation_id": conversation, "survey": "nps", "score": 11 }),
            "11 is not on the nps scale (0 to 10)",
        ),
        (
            json!({ "type": "survey", "conversation_id": conversation, "survey": "ces", "score": 5 }),
            "this conversation was asked nps, not ces",
        ),
        (
            json!({ "type": "survey", "conversation_id": conversation, "survey": "stars", "score": 5 }),
            "survey must be csat, nps or ces",
        ),
    ] {
        ws.send(frame.clone()).await;
        let error = ws.next_of("error").await;
        assert_eq!((error["code"].as_str(), error["message"].as_str()), (Some("invalid"), Some(reason)), "{frame}");
    }
    for score in [9, 3] {
        ws.send(json!({ "type": "survey", "conversation_id": conversation, "survey": "nps", "score": score })).await;
    }
    let answer = ws.entry_of("survey_answer").await;
    assert_eq!((&answer["entry"]["score"], &answer["entry"]["survey"]), (&json!(9), &json!("nps")));
    let stored = chat.bus.stored(streams::EVENTS, "sb.events.nps_received").await;
    assert_eq!(stored.len(), 1, "one answer per conversation");
    let nps: Event = serde_json::from_slice(&stored[0].1).unwrap();
    assert_eq!((nps.data["score"].as_u64(), nps.agent_id.as_deref()), (Some(9), Some("anna")));
    assert!(chat.bus.stored(streams::EVENTS, "sb.events.csat_received").await.is_empty());
    assert!(chat.bus.stored(streams::EVENTS, "sb.events.ces_received").await.is_empty());
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn uploads_are_limited_attached_and_served_only_by_their_signed_link() {
    let chat = Chat::start(|cfg| cfg.max_upload_bytes = 1024).await;
    let (mut ws, welcome) = chat.open(json!({})).await;
    let token = welcome["token"].as_str().unwrap().to_string();
    ws.history().await;
    let http = reqwest::Client::new();
    let upload = |token: &str, origin: &str, body: Vec<u8>| {
        http.post(format!("http://{}/chat/upload?token={token}", chat.base))
            .header("origin", origin)
            .header("content-type", "text/plain")
            .header("x-filename", "..%2Fnotes%20%C3%A9.txt")
            .body(body)
            .send()
    };
    assert_eq!(upload(&token, ORIGIN, vec![b'x'; 2048]).await.unwrap().status(), 413, "over max_upload_bytes");
    assert_eq!(upload("v1.forged.token", ORIGIN, b"hi".to_vec()).await.unwrap().status(), 401);
    assert_eq!(upload(&token, "http://evil.test", b"hi".to_vec()).await.unwrap().status(), 403);
    let response = upload(&token, ORIGIN, b"order 17, twice".to_vec()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    let reference = response.json::<Value>().await.unwrap()["ref"].clone();
    assert_eq!(reference["filename"], "notes é.txt", "no path from the client's name");

    ws.send(json!({ "type": "send", "client_id": "f1", "text": "", "attachments": [reference] })).await;
    ws.next_of("ack").await;
    let entry = ws.entry_of("customer").await;
    let url = entry["entry"]["attachments"][0]["url"].as_str().unwrap().to_string();
    let envelope = &chat.envelopes().await[0];
    assert_eq!(envelope.attachments[0].size, 15);
    let got = http.get(format!("http://{}{url}", chat.base)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-disposition"], "attachment", "never rendered by the browser");
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"order 17, twice");
    let tampered = url.replace("sig=", "sig=A");
    assert_eq!(http.get(format!("http://{}{tampered}", chat.base)).send().await.unwrap().status(), 404);
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn entries_stored_while_the_live_feed_restarts_reach_open_sockets() {
    let mut chat = Chat::start(|_| {}).await;
    let (mut ws, welcome) = chat.open(json!({})).await;
    let session = welcome["session"].as_str().unwrap().to_string();
    assert!(ws.history().await.is_empty());
    // NATS restarts before the live feed saw any entry (its ephemeral consumer is gone), and an
    // agent answers before the feed notices and starts over.
    chat.bus.server.restart();
    let mut reply = outbound(CHANNEL, &format!("visitor:{session}"), "Still there?");
    reply.to.thread_key = session.clone();
    let subject = subjects::outbound(CHANNEL);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while chat.bus.bus.publish(&subject, &reply, &reply.id.to_string()).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the bus never reconnected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    chat.bus.wait_outbound_drained(CHANNEL, Duration::from_secs(30)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let entry = loop {
        assert!(std::time::Instant::now() < deadline, "the answer never reached the open socket");
        match tokio::time::timeout(Duration::from_secs(1), ws.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "entry" {
                    break v;
                }
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(other) => panic!("the socket closed: {other:?}"),
        }
    };
    assert_eq!(entry["entry"]["text"], "Still there?");
    chat.running.take().unwrap().stop().await;
}

#[tokio::test]
async fn one_message_sent_from_two_tabs_is_stored_once_and_every_message_is_counted() {
    use switchboard_bus::{InboundOutcome, outcomes};
    let count = |o| outcomes::count(CHANNEL, o);
    let (dup0, rej0) = (count(InboundOutcome::Duplicate), count(InboundOutcome::Rejected));
    let chat = Chat::start(|cfg| cfg.max_text_bytes = 100).await;
    // Two tabs of one visitor: two sockets of one session (the token is shared).
    let (mut a, welcome) = chat.open(json!({})).await;
    let token = welcome["token"].as_str().unwrap().to_string();
    a.history().await;
    let (mut b, _) = chat.open(json!({ "token": token })).await;
    b.history().await;

    // Both tabs send the same outbox item at once: stored once, both acked with its sequence.
    let frame = json!({ "type": "send", "client_id": "tabB-1", "text": "written in tab B" });
    a.send(frame.clone()).await;
    b.send(frame.clone()).await;
    let (ack_a, ack_b) = (a.next_of("ack").await, b.next_of("ack").await);
    assert_eq!(ack_a["seq"], ack_b["seq"], "one message, one transcript entry");
    // And again later, from a tab that knows it is stored.
    a.send(frame).await;
    assert_eq!(a.next_of("ack").await["seq"], ack_a["seq"]);
    let stored: Vec<String> = chat.envelopes().await.iter().map(|e| e.text.clone()).collect();
    assert_eq!(stored, ["written in tab B"], "the message is stored once");
    let (mut c, _) = chat.open(json!({ "token": token })).await;
    assert_eq!(texts(&c.history().await), ["customer:written in tab B"]);

    // Refused messages: the visitor is told, nothing is stored, each is counted.
    for bad in [
        json!({ "type": "send", "client_id": "x1", "text": "a".repeat(101) }),
        json!({ "type": "send", "client_id": "bad id!", "text": "hi" }),
        json!({ "type": "send", "text": "no client id" }),
    ] {
        c.send(bad).await;
        c.next_of("error").await;
    }
    assert_eq!(chat.envelopes().await.len(), 1);
    // The stored envelope is the router's to count; the two copies and the refusals are ours.
    assert_eq!(count(InboundOutcome::Duplicate) - dup0, 2, "two copies counted as duplicates");
    assert_eq!(count(InboundOutcome::Rejected) - rej0, 3, "three refused messages counted");
    assert!(
        outcomes::snapshot().iter().any(|(ch, _, _)| ch == CHANNEL),
        "the channel is listed on /metrics from its start"
    );
    chat.running.unwrap().stop().await;
}

/// Posts `body` as an upload of `token`'s session; the status and the JSON answer.
async fn post_upload(chat: &Chat, token: &str, body: Vec<u8>) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/chat/upload?token={token}", chat.base))
        .header("origin", ORIGIN)
        .header("x-filename", "f.bin")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, response.json().await.unwrap_or(Value::Null), retry_after)
}

/// The names of the attachments store's objects.
async fn stored_objects(chat: &Chat) -> Vec<String> {
    let store = chat.bus.bus.jetstream().get_object_store("sb_attachments").await.unwrap();
    let mut list = store.list().await.unwrap();
    let mut names = Vec::new();
    while let Some(info) = list.next().await {
        names.push(info.unwrap().name);
    }
    names
}

#[tokio::test]
async fn a_session_uploads_within_its_quota_and_budget_and_unattached_files_are_swept() {
    let chat = Chat::start(|cfg| {
        cfg.max_upload_bytes = 1000;
        cfg.uploads_before_message = 2;
        cfg.session_upload_bytes = 4000;
        cfg.upload_grace_secs = 1;
        cfg.upload_sweep_secs = 1;
    })
    .await;
    let (mut ws, welcome) = chat.open(json!({})).await;
    let token = welcome["token"].as_str().unwrap().to_string();
    ws.history().await;

    // Before its first message a session may store two files; the third is refused, stores nothing.
    let (status, first, _) = post_upload(&chat, &token, vec![b'a'; 1000]).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(post_upload(&chat, &token, vec![b'b'; 1000]).await.0, 200);
    let (status, refused, _) = post_upload(&chat, &token, vec![b'c'; 1000]).await;
    assert_eq!((status, refused["code"].as_str()), (403, Some("send_first")), "{refused}");
    assert_eq!(refused["error"], "upload limit reached: send a message first");
    assert_eq!(stored_objects(&chat).await.len(), 2, "the refused upload stored nothing");

    // A message attaching the first file opens the session's byte budget: 4000 bytes in all.
    ws.send(json!({ "type": "send", "client_id": "m1", "text": "see file", "attachments": [first["ref"]] })).await;
    ws.next_of("ack").await;
    assert_eq!(post_upload(&chat, &token, vec![b'd'; 1000]).await.0, 200);
    assert_eq!(post_upload(&chat, &token, vec![b'e'; 1000]).await.0, 200);
    let (status, over, _) = post_upload(&chat, &token, vec![b'f'; 10]).await;
    assert_eq!((status, over["error"].as_str()), (403, Some("upload limit reached for this chat")), "{over}");
    assert_eq!(over["code"], "upload_limit");

    // The four files no message attached are deleted after the grace period; the attached one stays.
    let attached = first["ref"]["object"].as_str().unwrap().to_string();
    let js = chat.bus.bus.jetstream().clone();
    switchboard_adapter::testkit::wait_for("unattached uploads deleted", Duration::from_secs(20), || {
        let (js, attached) = (js.clone(), attached.clone());
        async move {
            let store = js.get_object_store("sb_attachments").await.unwrap();
            let mut list = store.list().await.unwrap();
            let mut names = Vec::new();
            while let Some(info) = list.next().await {
                names.push(info.unwrap().name);
            }
            names == vec![attached]
        }
    })
    .await;
    let entry = ws.entry_of("customer").await;
    let url = entry["entry"]["attachments"][0]["url"].as_str().unwrap().to_string();
    let got = reqwest::get(format!("http://{}{url}", chat.base)).await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), &[b'a'; 1000][..], "the attached file is still served");
    // Deleting files gives no budget back: the session stays at its limit.
    assert_eq!(post_upload(&chat, &token, vec![b'g'; 10]).await.0, 403);
    chat.running.unwrap().stop().await;
}

#[tokio::test]
async fn uploads_have_their_own_rate_per_session_and_per_address_and_leave_messages_alone() {
    let chat = Chat::start(|cfg| {
        cfg.uploads_per_minute = 2;
        cfg.ip_uploads_per_minute = 4;
        cfg.uploads_before_message = 10;
        cfg.ip_messages_per_minute = 5;
    })
    .await;
    let (_a, welcome_a) = chat.open(json!({})).await;
    let token_a = welcome_a["token"].as_str().unwrap().to_string();
    assert_eq!(post_upload(&chat, &token_a, b"1".to_vec()).await.0, 200);
    assert_eq!(post_upload(&chat, &token_a, b"2".to_vec()).await.0, 200);
    let (status, body, retry_after) = post_upload(&chat, &token_a, b"3".to_vec()).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")), "the session's own rate: {body}");
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);

    let (mut b, welcome_b) = chat.open(json!({})).await;
    let token_b = welcome_b["token"].as_str().unwrap().to_string();
    b.history().await;
    assert_eq!(
        post_upload(&chat, &token_b, b"4".to_vec()).await.0,
        200,
        "another session, the address's fourth attempt"
    );
    let (status, body, _) = post_upload(&chat, &token_b, b"5".to_vec()).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")), "the address's rate: {body}");
    assert_eq!(stored_objects(&chat).await.len(), 3);

    // Uploads spent none of the address's message allowance.
    for i in 0..5 {
        b.send(json!({ "type": "send", "client_id": format!("m{i}"), "text": "hello" })).await;
        let reply = b.next_of_any(&["ack", "error"]).await;
        assert_eq!(reply["type"], "ack", "message {i}: {reply}");
    }
    chat.running.unwrap().stop().await;
}
