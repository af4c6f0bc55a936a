//! The Telegram channel against a fake Bot API that speaks the real wire format, with the real
//! `teloxide-core` client and a real NATS server: updates become envelopes (edits and blocks
//! become events), unreadable updates are skipped, a restart neither loses nor repeats an update,
//! and replies go out escaped, split, within the per-chat limit and after `retry_after`.

use std::collections::BTreeSet;
use std::time::Duration;

use switchboard_adapter::testkit::{TestBus, outbound, wait_for};
use switchboard_core::contract::{streams, subjects};
use switchboard_core::{Envelope, Event};
use switchboard_testkit::{FakeBotApi, FakeError};

mod common;
use common::{TOKEN, config, start};

const WAIT: Duration = Duration::from_secs(20);

async fn envelopes(t: &TestBus) -> Vec<Envelope> {
    t.envelopes("telegram").await
}

async fn events(t: &TestBus, kind: &str) -> Vec<Event> {
    let stored = t.stored(streams::EVENTS, &subjects::event(kind)).await;
    stored.iter().map(|(_, p)| serde_json::from_slice(p).unwrap()).collect()
}

#[tokio::test]
async fn updates_become_envelopes_or_events_and_unreadable_ones_are_skipped() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&t, &config(&api, dir.path()));

    api.push_update(api.text_message(501, 501, "/start promo-42"));
    api.push_update(api.text_message(501, 501, "Where is my order? (#17)"));
    // Valid JSON of a shape no client knows, then something that is not JSON at all.
    api.push_raw_update(r#"{"update_id": 1000, "message": "not a message"}"#);
    api.push_update(api.edited_message(501, 501, 2, "Where is my order 17?"));
    api.push_update(api.my_chat_member_blocked(777, 777));
    api.push_update(api.text_message(-100, 502, "a group message"));
    wait_for("three envelopes", WAIT, || async { envelopes(&t).await.len() == 3 }).await;
    wait_for("the edit and the block", WAIT, || async {
        events(&t, "message_edited").await.len() == 1 && events(&t, "customer_blocked").await.len() == 1
    })
    .await;
    let got = envelopes(&t).await;
    assert_eq!(got[0].text, "/start");
    assert_eq!(got[0].metadata.get("telegram.start").map(String::as_str), Some("promo-42"));
    assert_eq!(got[1].text, "Where is my order? (#17)");
    assert_eq!((got[1].thread_key.as_str(), got[1].customer.id.as_str()), ("501", "501"));
    assert!(got[1].provider_message_id.starts_with("501:"));
    assert_eq!(got[2].thread_key, "-100", "a group is its own thread");
    let edit = &events(&t, "message_edited").await[0];
    assert_eq!(edit.data["text"], "Where is my order 17?");
    assert_eq!(edit.data["thread_key"], "501", "the chat's thread key, by which the conversation is found");
    assert_eq!(events(&t, "customer_blocked").await[0].data["blocked"], true);

    // Not even JSON: skipped, and what comes after still flows.
    let before = api.push_update(api.text_message(501, 501, "just before"));
    // Its id is the next one, as Telegram's would be; the body names it, and only it is skipped.
    let broken = api.push_raw_update(format!(r#"{{"update_id": {}, "message": {{broken"#, before + 1));
    assert_eq!(broken, before + 1);
    api.push_update(api.text_message(501, 501, "still here"));
    wait_for("the messages around the broken one", WAIT, || async { envelopes(&t).await.len() == 5 }).await;
    let texts: Vec<String> = envelopes(&t).await.into_iter().skip(3).map(|e| e.text).collect();
    assert_eq!(texts, ["just before", "still here"]);
    running.stop().await;
}

#[tokio::test]
async fn a_restart_neither_loses_nor_repeats_an_update() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&api, dir.path());
    let running = start(&t, &cfg);
    for i in 0..3 {
        api.push_update(api.text_message(600 + i, 600 + i, &format!("before {i}")));
    }
    wait_for("three envelopes", WAIT, || async { envelopes(&t).await.len() == 3 }).await;
    running.stop().await;
    for i in 0..3 {
        api.push_update(api.text_message(700 + i, 700 + i, &format!("while down {i}")));
    }
    let calls_before = api.get_updates_calls().len();
    let running = start(&t, &cfg);
    wait_for("six envelopes", WAIT, || async { envelopes(&t).await.len() == 6 }).await;
    let resumed = &api.get_updates_calls()[calls_before];
    let last_before = api.get_updates_calls()[..calls_before].iter().filter_map(|c| c.offset).max();
    assert!(resumed.offset >= last_before && resumed.offset.is_some(), "resumed from the stored offset: {resumed:?}");
    let ids: BTreeSet<String> = envelopes(&t).await.into_iter().map(|e| e.provider_message_id).collect();
    assert_eq!(ids.len(), 6, "nothing twice");
    running.stop().await;
}

#[tokio::test]
async fn replies_are_escaped_split_paced_per_chat_and_wait_when_telegram_says_so() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&t, &config(&api, dir.path()));

    let question = api.text_message(501, 501, "Is it fixed?");
    let asked_id = question["message"]["message_id"].as_i64().unwrap();
    api.push_update(question);
    wait_for("the question", WAIT, || async { envelopes(&t).await.len() == 1 }).await;
    // Reserved characters everywhere: the fake parses MarkdownV2 as Telegram does.
    let mut reply =
        outbound("telegram", "501", "Fixed! See https://example.com/a_b (ticket #17) - 1.5 * 2 = 3 <b>ok</b>");
    reply.to.thread_key = "501".into();
    reply.reply_to = Some(envelopes(&t).await[0].provider_message_id.clone());
    t.send_outbound(&reply).await;
    let sent = api.wait_for_sent(1, WAIT).await;
    assert_eq!(sent[0].chat_id, 501);
    assert_eq!(sent[0].reply_to_message_id, Some(asked_id), "answers the customer's message");
    assert_eq!(sent[0].parse_mode.as_deref(), Some("MarkdownV2"));

    // 9,000 characters: three parts, in order.
    let mut long = outbound("telegram", "502", &"0123456789 ".repeat(818));
    long.to.thread_key = "502".into();
    t.send_outbound(&long).await;
    let sent = api.wait_for_sent(4, WAIT).await;
    let parts: Vec<_> = sent.iter().filter(|s| s.chat_id == 502).collect();
    assert_eq!(parts.len(), 3);
    assert!(parts.windows(2).all(|w| w[1].at - w[0].at >= Duration::from_millis(900)), "about one a second per chat");

    // Flood control: Telegram says wait 1 s; the channel waits, then sends.
    api.fail_next("sendMessage", 1, FakeError::RetryAfter(1));
    let mut paced = outbound("telegram", "503", "after the wait");
    paced.to.thread_key = "503".into();
    let asked = tokio::time::Instant::now();
    t.send_outbound(&paced).await;
    let sent = api.wait_for_sent(5, WAIT).await;
    assert!(sent[4].at - asked >= Duration::from_secs(1), "retry_after respected");
    assert_eq!(sent[4].chat_id, 503);

    // The customer blocked the bot: permanent, dead-lettered with the reason.
    api.fail_next("sendMessage", 1, FakeError::BotBlocked);
    let mut blocked = outbound("telegram", "504", "hello?");
    blocked.to.thread_key = "504".into();
    t.send_outbound(&blocked).await;
    wait_for("the dead letter", WAIT, || async { t.dead_letters("telegram").await.len() == 1 }).await;
    let (headers, _) = t.dead_letters("telegram").await.remove(0);
    assert!(headers.get("Sb-Dlq-Reason").is_some_and(|r| r.as_str().contains("blocked")), "{headers:?}");
    running.stop().await;
}

#[tokio::test]
async fn by_webhook_only_telegrams_secret_is_accepted_and_a_redelivered_update_counts_once() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&api, dir.path());
    std::fs::write(dir.path().join("hook.secret"), "webhook-secret-for-tests_0123").unwrap();
    cfg.webhook_url = Some("https://bot.example.test/v1/telegram/updates".into());
    cfg.webhook_secret_file = Some(dir.path().join("hook.secret"));
    let mut running = start(&t, &cfg);
    let routes = running.routes.take().expect("webhook mode serves a route");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes).await });

    wait_for("the webhook registered", WAIT, || async { api.webhook().is_some() }).await;
    let hook = api.webhook().unwrap();
    assert_eq!(hook.url, "https://bot.example.test/v1/telegram/updates");
    assert_eq!(hook.secret_token.as_deref(), Some("webhook-secret-for-tests_0123"));

    let mut update = api.text_message(801, 801, "by webhook");
    update["update_id"] = serde_json::json!(77);
    let http = reqwest::Client::new();
    let post = |secret: &'static str| {
        http.post(format!("{base}/v1/telegram/updates"))
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .json(&update)
            .send()
    };
    use switchboard_bus::outcomes::{InboundOutcome, count};
    let (rejected, duplicate) =
        (count("telegram", InboundOutcome::Rejected), count("telegram", InboundOutcome::Duplicate));
    assert_eq!(post("wrong-secret").await.unwrap().status(), 401);
    assert_eq!(post("webhook-secret-for-tests_0123").await.unwrap().status(), 200);
    assert_eq!(post("webhook-secret-for-tests_0123").await.unwrap().status(), 200, "a redelivery is fine");
    let got = envelopes(&t).await;
    assert_eq!(got.len(), 1, "stored once");
    assert_eq!(count("telegram", InboundOutcome::Rejected), rejected + 1, "the wrong secret counted as refused");
    assert_eq!(count("telegram", InboundOutcome::Duplicate), duplicate + 1, "the redelivery counted as a duplicate");
    assert_eq!(got[0].text, "by webhook");
    running.stop().await;
}

#[tokio::test]
async fn a_flood_from_one_chat_is_held_back_as_dead_letters_while_others_flow() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&api, dir.path());
    (cfg.runtime.rate_limit.per_minute, cfg.runtime.rate_limit.burst) = (1, 3);
    let running = start(&t, &cfg);
    for i in 0..10 {
        api.push_update(api.text_message(901, 901, &format!("spam {i}")));
    }
    api.push_update(api.text_message(902, 902, "a normal customer"));
    wait_for("the burst and the other customer", WAIT, || async { envelopes(&t).await.len() == 4 }).await;
    wait_for("the flood held back", WAIT, || async { t.dead_letters("telegram-in").await.len() == 7 }).await;
    let got = envelopes(&t).await;
    assert_eq!(got.iter().filter(|e| e.customer.id == "901").count(), 3, "the burst");
    assert!(got.iter().any(|e| e.customer.id == "902"), "another customer is not held back by the flood");
    running.stop().await;
}

#[tokio::test]
async fn files_are_fetched_into_the_object_store_within_the_limit() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&api, dir.path());
    cfg.max_file_bytes = 1000;
    api.add_file("photo-1", b"\x89PNG small picture".to_vec());
    api.add_file("big-doc", vec![b'x'; 5000]);
    let running = start(&t, &cfg);
    api.push_update(api.photo_message(601, 601, "photo-1", Some("my broken parcel")));
    api.push_update(api.document_message(601, 601, "big-doc", "invoice.pdf", None));
    wait_for("two envelopes", WAIT, || async { envelopes(&t).await.len() == 2 }).await;
    let got = envelopes(&t).await;
    assert_eq!(got[0].text, "my broken parcel");
    let photo = &got[0].attachments[0];
    assert!(photo.skipped.is_none() && !photo.object.is_empty(), "{photo:?}");
    let store = t.bus.jetstream().get_object_store(switchboard_core::contract::ATTACHMENTS_STORE).await.unwrap();
    let mut object = store.get(photo.object.as_str()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes).await.unwrap();
    assert_eq!(bytes, b"\x89PNG small picture");
    let doc = &got[1].attachments[0];
    assert_eq!((doc.filename.as_str(), doc.size, doc.object.as_str()), ("invoice.pdf", 5000, ""));
    assert!(doc.skipped.as_deref().is_some_and(|s| s.contains("limit")), "{doc:?}");
    running.stop().await;
}

#[tokio::test]
async fn an_attachment_in_a_reply_is_sent_as_a_document() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&t, &config(&api, dir.path()));
    let store = t.bus.jetstream().get_object_store(switchboard_core::contract::ATTACHMENTS_STORE).await.unwrap();
    store.put("replies/label.pdf", &mut b"%PDF-1.4 label".as_slice()).await.unwrap();
    let mut reply = outbound("telegram", "505", "Here is your return label.");
    reply.to.thread_key = "505".into();
    reply.attachments.push(switchboard_core::envelope::AttachmentRef {
        object: "replies/label.pdf".into(),
        filename: "label.pdf".into(),
        content_type: "application/pdf".into(),
        size: 14,
        skipped: None,
    });
    t.send_outbound(&reply).await;
    let sent = api.wait_for_sent(2, WAIT).await;
    assert_eq!((sent[0].method.as_str(), sent[1].method.as_str()), ("sendMessage", "sendDocument"));
    assert!(sent[1].file.is_some(), "{:?}", sent[1]);
    running.stop().await;
}

#[tokio::test]
async fn the_survey_has_five_buttons_and_the_first_press_in_the_customers_chat_counts() {
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&t, &config(&api, dir.path()));
    let conversation = uuid::Uuid::now_v7();
    t.store_conversation(conversation, "telegram", "501", Some("anna")).await;

    t.send_outbound(&switchboard_adapter::testkit::csat_request("telegram", "501", conversation, "anna")).await;
    let sent = api.wait_for_sent(1, WAIT).await;
    let buttons = sent[0].reply_markup.as_ref().expect("a keyboard")["inline_keyboard"][0].clone();
    let data: Vec<String> = (0..5).map(|i| buttons[i]["callback_data"].as_str().unwrap().to_string()).collect();
    assert_eq!(buttons[4]["text"], "5");
    assert_eq!(data[3], format!("csat:{}:4", conversation.simple()));

    let message = sent[0].message_id;
    api.push_update(api.callback_query(501, 501, message, &data[3]));
    let answered = api.wait_for_answered_callbacks(1, WAIT).await;
    assert_eq!(answered[0].text.as_deref(), Some("Thank you!"));
    let edits = api.wait_for_edits(1, WAIT).await;
    assert_eq!((edits[0].method.as_str(), edits[0].message_id), ("editMessageReplyMarkup", message));
    wait_for("the answer", WAIT, || async { t.csat_events().await.len() == 1 }).await;
    let csat = &t.csat_events().await[0];
    assert_eq!(csat.data["score"], 4);
    assert_eq!(
        (csat.conversation_id, csat.agent_id.as_deref(), csat.channel.as_deref()),
        (Some(conversation), Some("anna"), Some("telegram"))
    );

    // A second press counts no more; a press from another chat (forged data) is refused.
    api.push_update(api.callback_query(501, 501, message, &data[0]));
    api.push_update(api.callback_query(777, 777, message, &data[0]));
    let answered = api.wait_for_answered_callbacks(3, WAIT).await;
    assert_eq!(answered[2].text.as_deref(), Some("This survey is closed."));
    assert_eq!(t.csat_events().await.len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn an_nps_survey_has_eleven_buttons_in_two_rows_and_only_an_nps_press_on_its_scale_counts_once() {
    use switchboard_core::SurveyKind;
    let t = TestBus::start().await;
    let api = FakeBotApi::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let running = start(&t, &config(&api, dir.path()));
    let conversation = uuid::Uuid::now_v7();
    t.store_surveyed(conversation, "telegram", "502", Some("anna"), SurveyKind::Nps).await;
    let survey = switchboard_adapter::testkit::survey_request(SurveyKind::Nps, "telegram", "502", conversation, "anna");
    t.send_outbound(&survey).await;
    let sent = api.wait_for_sent(1, WAIT).await;
    let rows = sent[0].reply_markup.as_ref().expect("a keyboard")["inline_keyboard"].as_array().unwrap().clone();
    let texts: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|b| b["text"].as_str().unwrap().to_string()).collect())
        .collect();
    assert_eq!(texts, [vec!["0", "1", "2", "3", "4", "5"], vec!["6", "7", "8", "9", "10"]]);
    let hex = conversation.simple();
    assert_eq!(rows[1][3]["callback_data"], format!("nps:{hex}:9"));

    let message = sent[0].message_id;
    // Refused, changing nothing: off the scale, the wrong survey (crafted callback data).
    api.push_update(api.callback_query(502, 502, message, &format!("nps:{hex}:11")));
    api.push_update(api.callback_query(502, 502, message, &format!("csat:{hex}:5")));
    let answered = api.wait_for_answered_callbacks(2, WAIT).await;
    assert_eq!(answered[0].text.as_deref(), Some("Unknown button."), "off the scale");
    assert_eq!(answered[1].text.as_deref(), Some("This survey is closed."), "not the survey asked");
    assert!(api.edits().is_empty(), "the buttons stay for a real answer");

    api.push_update(api.callback_query(502, 502, message, &format!("nps:{hex}:9")));
    api.push_update(api.callback_query(502, 502, message, &format!("nps:{hex}:3")));
    let answered = api.wait_for_answered_callbacks(4, WAIT).await;
    assert_eq!((answered[2].text.as_deref(), answered[3].text.as_deref()), (Some("Thank you!"), Some("Thank you!")));
    wait_for("the answer", WAIT, || async { t.survey_events(SurveyKind::Nps).await.len() == 1 }).await;
    let nps = t.survey_events(SurveyKind::Nps).await;
    assert_eq!(nps.len(), 1, "the second press is a duplicate");
    assert_eq!((nps[0].data["score"].as_u64(), nps[0].agent_id.as_deref()), (Some(9), Some("anna")));
    assert!(t.csat_events().await.is_empty(), "the CSAT press changed nothing");
    running.stop().await;
}
