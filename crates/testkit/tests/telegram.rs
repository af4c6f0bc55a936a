//! The fake Bot API against the real client, teloxide-core, and raw HTTP where teloxide cannot show
//! the wire (malformed updates, forms, unknown methods, server errors).

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_testkit::{FAKE_BOT_USERNAME, FakeBotApi, FakeError, SentFile};
use teloxide_core::net::Download;
use teloxide_core::payloads::{AnswerCallbackQuerySetters, GetUpdatesSetters, SendMessageSetters, SetWebhookSetters};
use teloxide_core::requests::Requester;
use teloxide_core::types::{
    AllowedUpdate, ChatId, FileId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode,
    ReplyParameters, UpdateKind,
};
use teloxide_core::{ApiError, Bot, RequestError};

const TOKEN: &str = "123456:TEST-token_abc";
const WAIT: Duration = Duration::from_secs(3);
const CUSTOMER: i64 = 4242;

async fn fake_and_bot() -> (FakeBotApi, Bot) {
    let fake = FakeBotApi::start(TOKEN).await;
    let bot = Bot::new(TOKEN).set_api_url(fake.url().parse().unwrap());
    (fake, bot)
}

/// What an adapter must do before sending MarkdownV2: escape every reserved character.
fn escape_markdown_v2(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "_*[]()~`>#+-=|{}.!\\".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn api_error(result: Result<impl std::fmt::Debug, RequestError>) -> ApiError {
    match result {
        Err(RequestError::Api(error)) => error,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn get_me_describes_the_bot() {
    let (_fake, bot) = fake_and_bot().await;
    let me = bot.get_me().await.unwrap();
    assert_eq!(me.user.id.0, 123456);
    assert!(me.user.is_bot);
    assert_eq!(me.username(), FAKE_BOT_USERNAME);
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_a_malformed_one_not_found() {
    let fake = FakeBotApi::start(TOKEN).await;
    let stranger = Bot::new("999:other").set_api_url(fake.url().parse().unwrap());
    assert_eq!(api_error(stranger.get_me().await), ApiError::InvalidToken);

    let http = reqwest::Client::new();
    let wrong = http.post(format!("{}/bot999:other/getMe", fake.url())).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let malformed = http.post(format!("{}/botnotatoken/getMe", fake.url())).send().await.unwrap();
    assert_eq!(malformed.status(), 404);
    assert_eq!(
        malformed.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
}

#[tokio::test]
async fn unknown_methods_and_injected_server_errors_answer_as_telegram() {
    let fake = FakeBotApi::start(TOKEN).await;
    let http = reqwest::Client::new();
    let unknown = http.post(format!("{}/bot{TOKEN}/sendTelepathy", fake.url())).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"})
    );
    // teloxide waits 10 s after a 5xx, so the 500 is shown over plain HTTP.
    fake.fail_next("getMe", 1, FakeError::ServerError);
    let failed = http.get(format!("{}/bot{TOKEN}/getme", fake.url())).send().await.unwrap();
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.json::<Value>().await.unwrap()["description"], "Internal Server Error");
    let again = http.get(format!("{}/bot{TOKEN}/GETME", fake.url())).send().await.unwrap();
    assert_eq!(again.status(), 200, "method names are case-insensitive and the failure was used up");
    let statuses: Vec<_> = fake.requests().iter().map(|r| (r.method.clone(), r.status)).collect();
    assert_eq!(statuses, [("sendTelepathy".into(), 404), ("getMe".into(), 500), ("getMe".into(), 200)]);
}

#[tokio::test]
async fn long_polling_returns_a_pushed_update_early_and_the_offset_confirms_it() {
    let (fake, bot) = fake_and_bot().await;
    let poll = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(30).await }
    });
    // The poll is waiting before the customer writes, so the push must wake it.
    fake.wait_for_get_updates_calls(1, WAIT).await;
    let id = fake.push_update(fake.text_message(CUSTOMER, CUSTOMER, "/start hello"));
    let updates = tokio::time::timeout(WAIT, poll).await.expect("the push ends the long poll").unwrap().unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].id.0 as i64, id);
    let UpdateKind::Message(message) = &updates[0].kind else { panic!("a message: {:?}", updates[0]) };
    assert_eq!(message.text(), Some("/start hello"));
    assert_eq!(message.chat.id, ChatId(CUSTOMER));
    assert_eq!(message.from.as_ref().unwrap().id.0, CUSTOMER as u64);
    assert_eq!(message.entities().unwrap()[0].length, 6, "the /start command entity");

    // Unconfirmed, it comes again; confirmed by the offset, it is gone.
    assert_eq!(bot.get_updates().await.unwrap().len(), 1);
    assert_eq!(fake.pending_updates(), 1);
    assert!(bot.get_updates().offset(id as i32 + 1).await.unwrap().is_empty());
    assert_eq!(fake.pending_updates(), 0);
    let offsets: Vec<_> = fake.get_updates_calls().iter().map(|c| c.offset).collect();
    assert_eq!(offsets, [None, None, Some(id + 1)]);
    assert_eq!(fake.get_updates_calls()[0].timeout, Some(30));
}

#[tokio::test]
async fn long_polling_honours_limit_timeout_and_allowed_updates() {
    let (fake, bot) = fake_and_bot().await;
    let first = fake.push_update(fake.text_message(CUSTOMER, CUSTOMER, "one"));
    fake.push_update(fake.callback_query(CUSTOMER, CUSTOMER, 99, "yes"));
    fake.push_update(fake.text_message(CUSTOMER, CUSTOMER, "two"));
    fake.push_update(json!({"update_id": 50, "message_reaction": {"chat": {"id": 1, "type": "private"}}}));

    let limited = bot.get_updates().limit(2).await.unwrap();
    assert_eq!(limited.iter().map(|u| u.id.0 as i64).collect::<Vec<_>>(), [first, first + 1]);
    // message_reaction is not delivered by default; only messages when asked for messages only.
    let messages = bot.get_updates().allowed_updates([AllowedUpdate::Message]).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|u| matches!(u.kind, UpdateKind::Message(_))));
    assert_eq!(fake.get_updates_calls()[1].allowed_updates.as_deref(), Some(&["message".to_owned()][..]));

    // With nothing new, a 1 s long poll waits its second out and returns nothing.
    let started = tokio::time::Instant::now();
    let last = messages.last().unwrap().id.0 as i32;
    assert!(bot.get_updates().offset(last + 1).timeout(1).await.unwrap().is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900), "waited {:?}", started.elapsed());
}

#[tokio::test]
async fn a_second_poller_terminates_the_first_with_a_conflict() {
    let (fake, bot) = fake_and_bot().await;
    let first = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(30).await }
    });
    fake.wait_for_get_updates_calls(1, WAIT).await;
    assert!(bot.get_updates().await.unwrap().is_empty());
    let first = tokio::time::timeout(WAIT, first).await.unwrap().unwrap();
    assert_eq!(api_error(first), ApiError::TerminatedByOtherGetUpdates);
}

#[tokio::test]
async fn malformed_updates_are_delivered_as_they_are() {
    let (fake, bot) = fake_and_bot().await;
    // Valid JSON of the wrong shape: teloxide keeps the batch and marks that one update.
    let odd = fake.push_raw_update(r#"{"update_id":7,"message":{"chat":"not a chat"}}"#);
    assert_eq!(odd, 7);
    fake.push_update(fake.text_message(CUSTOMER, CUSTOMER, "after"));
    let updates = bot.get_updates().await.unwrap();
    assert_eq!(updates.len(), 2);
    assert!(matches!(updates[0].kind, UpdateKind::Error(_)), "{:?}", updates[0]);
    assert_eq!(updates[1].id.0, 8);
    assert!(bot.get_updates().offset(9).await.unwrap().is_empty());

    // Not JSON at all: the element goes out verbatim, so the body itself is broken.
    let broken = fake.push_raw_update("{\"update_id\": 9, \"message\": {oops");
    assert_eq!(broken, 9);
    let http = reqwest::Client::new();
    let body = http.post(format!("{}/bot{TOKEN}/getUpdates", fake.url())).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, r#"{"ok":true,"result":[{"update_id": 9, "message": {oops]}"#);
    assert!(matches!(bot.get_updates().await, Err(RequestError::InvalidJson { .. })));
    // It is confirmed like any other update.
    assert!(bot.get_updates().offset(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn markdown_v2_must_be_escaped() {
    let (fake, bot) = fake_and_bot().await;
    let text = "Order #42 (3 items) costs 3.50 - thanks!";
    let sent =
        bot.send_message(ChatId(CUSTOMER), escape_markdown_v2(text)).parse_mode(ParseMode::MarkdownV2).await.unwrap();
    assert_eq!(sent.text(), Some(text), "Telegram returns the text without markup");
    assert_eq!(sent.from.as_ref().unwrap().id.0, 123456);

    let unescaped = bot.send_message(ChatId(CUSTOMER), text).parse_mode(ParseMode::MarkdownV2).await;
    assert_eq!(
        api_error(unescaped),
        ApiError::CantParseEntities(
            "Bad Request: can't parse entities: Character '#' is reserved and must be escaped with the preceding '\\'"
                .to_owned()
        )
    );
    let bold = bot.send_message(ChatId(CUSTOMER), "*agent joined").parse_mode(ParseMode::MarkdownV2).await;
    assert!(
        matches!(api_error(bold), ApiError::CantParseEntities(e) if e.ends_with("Can't find end of Bold entity at byte offset 0"))
    );
    let html = bot.send_message(ChatId(CUSTOMER), "<b>1 < 2</b>").parse_mode(ParseMode::Html).await;
    assert!(matches!(api_error(html), ApiError::CantParseEntities(_)));

    assert_eq!(fake.sent().len(), 1, "rejected messages are not sent");
    let recorded = &fake.sent()[0];
    assert_eq!((recorded.chat_id, recorded.parse_mode.as_deref()), (CUSTOMER, Some("MarkdownV2")));
    assert_eq!(recorded.text.as_deref(), Some(escape_markdown_v2(text).as_str()));
}

#[tokio::test]
async fn text_length_is_checked_after_entity_parsing() {
    let (_fake, bot) = fake_and_bot().await;
    let longest = "é".repeat(4096);
    bot.send_message(ChatId(CUSTOMER), &longest).await.unwrap();
    let bold_longest = format!("*{longest}*");
    bot.send_message(ChatId(CUSTOMER), bold_longest).parse_mode(ParseMode::MarkdownV2).await.unwrap();
    let too_long = bot.send_message(ChatId(CUSTOMER), "é".repeat(4097)).await;
    assert_eq!(api_error(too_long), ApiError::MessageIsTooLong);
    assert_eq!(api_error(bot.send_message(ChatId(CUSTOMER), " \n ").await), ApiError::MessageTextIsEmpty);
}

#[tokio::test]
async fn rate_limits_and_blocks_surface_as_teloxide_errors() {
    let (fake, bot) = fake_and_bot().await;
    fake.fail_next("sendMessage", 1, FakeError::RetryAfter(2));
    match bot.send_message(ChatId(CUSTOMER), "hi").await {
        Err(RequestError::RetryAfter(after)) => assert_eq!(after.seconds(), 2),
        other => panic!("expected RetryAfter, got {other:?}"),
    }
    bot.send_message(ChatId(CUSTOMER), "hi").await.unwrap();
    fake.fail_next("sendMessage", 1, FakeError::ChatNotFound);
    assert_eq!(api_error(bot.send_message(ChatId(CUSTOMER), "hi").await), ApiError::ChatNotFound);
    fake.fail_next("sendMessage", 1, FakeError::MigrateToChatId(-1001234));
    assert!(matches!(bot.send_message(ChatId(-5), "hi").await, Err(RequestError::MigrateToChatId(ChatId(-1001234)))));

    // A block pushed as Telegram reports it makes later sends to that chat fail.
    fake.push_update(fake.my_chat_member_blocked(CUSTOMER, CUSTOMER));
    assert_eq!(api_error(bot.send_message(ChatId(CUSTOMER), "still there?").await), ApiError::BotBlocked);
    let updates = bot.get_updates().await.unwrap();
    assert!(matches!(updates[0].kind, UpdateKind::MyChatMember(ref m) if m.new_chat_member.is_banned()));
    fake.push_update(fake.my_chat_member_unblocked(CUSTOMER, CUSTOMER));
    bot.send_message(ChatId(CUSTOMER), "welcome back").await.unwrap();
    let texts: Vec<_> = fake.sent().iter().map(|s| s.text.clone().unwrap()).collect();
    assert_eq!(texts, ["hi", "welcome back"]);
    assert!(fake.sent().windows(2).all(|w| w[0].at <= w[1].at));
}

#[tokio::test]
async fn inline_keyboards_callbacks_and_edits() {
    let (fake, bot) = fake_and_bot().await;
    let keyboard = InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("Yes", "csat:5"),
        InlineKeyboardButton::callback("No", "csat:1"),
    ]]);
    fake.push_update(fake.text_message(CUSTOMER, CUSTOMER, "help"));
    let nowhere = bot.send_message(ChatId(CUSTOMER), "?").reply_parameters(ReplyParameters::new(MessageId(777))).await;
    assert_eq!(api_error(nowhere), ApiError::MessageToReplyNotFound);
    let updates = bot.get_updates().await.unwrap();
    let customer_message = updates[0].id.0;
    let UpdateKind::Message(customer) = &updates[0].kind else { panic!() };
    let asked = bot
        .send_message(ChatId(CUSTOMER), "Was this helpful?")
        .reply_parameters(ReplyParameters::new(customer.id))
        .reply_markup(keyboard)
        .await
        .unwrap();
    assert_eq!(asked.reply_to_message().unwrap().id, customer.id);
    assert!(asked.id.0 > customer.id.0, "message ids increase across users' and the bot's messages");
    let sent = fake.wait_for_sent(1, WAIT).await;
    assert_eq!(sent[0].reply_to_message_id, Some(customer.id.0 as i64));
    assert_eq!(sent[0].reply_markup.as_ref().unwrap()["inline_keyboard"][0][0]["callback_data"], "csat:5");

    fake.push_update(fake.callback_query(CUSTOMER, CUSTOMER, asked.id.0 as i64, "csat:5"));
    let updates = bot.get_updates().offset(customer_message as i32 + 1).await.unwrap();
    let UpdateKind::CallbackQuery(query) = &updates[0].kind else { panic!("{:?}", updates[0]) };
    assert_eq!(query.data.as_deref(), Some("csat:5"));
    assert_eq!(query.regular_message().unwrap().text(), Some("Was this helpful?"));
    bot.answer_callback_query(query.id.clone()).text("Thanks!").await.unwrap();
    assert_eq!(api_error(bot.answer_callback_query(query.id.clone()).await), ApiError::InvalidQueryId);
    let answered = fake.wait_for_answered_callbacks(1, WAIT).await;
    assert_eq!(
        (answered[0].callback_query_id.as_str(), answered[0].text.as_deref()),
        (query.id.0.as_str(), Some("Thanks!"))
    );

    let edited = bot.edit_message_text(ChatId(CUSTOMER), asked.id, "Thanks for your rating").await.unwrap();
    assert_eq!(edited.text(), Some("Thanks for your rating"));
    assert!(edited.reply_markup().is_none(), "an edit without reply_markup removes the keyboard");
    let same = bot.edit_message_text(ChatId(CUSTOMER), asked.id, "Thanks for your rating").await;
    assert_eq!(api_error(same), ApiError::MessageNotModified);
    let theirs = bot.edit_message_text(ChatId(CUSTOMER), customer.id, "hijack").await;
    assert_eq!(api_error(theirs), ApiError::MessageCantBeEdited);
    let nowhere = bot.edit_message_reply_markup(ChatId(CUSTOMER), MessageId(9999)).await;
    assert_eq!(api_error(nowhere), ApiError::MessageToEditNotFound);
    assert_eq!(fake.wait_for_edits(1, WAIT).await[0].text.as_deref(), Some("Thanks for your rating"));

    let too_much_data = InlineKeyboardMarkup::new([[InlineKeyboardButton::callback("x", "d".repeat(65))]]);
    let rejected = bot.send_message(ChatId(CUSTOMER), "pick").reply_markup(too_much_data).await;
    assert_eq!(api_error(rejected), ApiError::ButtonDataInvalid);
}

#[tokio::test]
async fn documents_and_photos_are_uploaded_recorded_and_downloadable() {
    let (fake, bot) = fake_and_bot().await;
    let pdf = b"%PDF-1.7 fake transcript".to_vec();
    let sent =
        bot.send_document(ChatId(CUSTOMER), InputFile::memory(pdf.clone()).file_name("transcript.pdf")).await.unwrap();
    let document = sent.document().unwrap();
    assert_eq!(document.file_name.as_deref(), Some("transcript.pdf"));
    assert_eq!(document.file.size as usize, pdf.len());
    let recorded = fake.wait_for_sent(1, WAIT).await;
    assert_eq!(recorded[0].method, "sendDocument");
    assert_eq!(
        recorded[0].file,
        Some(SentFile::Upload { file_name: Some("transcript.pdf".into()), bytes: pdf.clone() })
    );

    // The uploaded file can be sent again by id, and fetched back.
    bot.send_photo(ChatId(CUSTOMER), InputFile::file_id(document.file.id.clone())).await.unwrap();
    assert_eq!(fake.sent()[1].file, Some(SentFile::FileId(document.file.id.0.clone())));
    let unknown = bot.send_photo(ChatId(CUSTOMER), InputFile::file_id(FileId("nope".into()))).await;
    assert_eq!(api_error(unknown), ApiError::WrongFileIdOrUrl);
    let file = bot.get_file(document.file.id.clone()).await.unwrap();
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded).await.unwrap();
    assert_eq!(downloaded, pdf);
}

#[tokio::test]
async fn files_from_customers_are_fetched_with_get_file_and_downloaded() {
    let (fake, bot) = fake_and_bot().await;
    let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    let path = fake.add_file("AgACphoto1", photo.clone());
    fake.push_update(fake.photo_message(CUSTOMER, CUSTOMER, "AgACphoto1", Some("my receipt")));
    fake.add_file("BQACdoc1", b"a,b\n1,2\n".to_vec());
    fake.push_update(fake.document_message(CUSTOMER, CUSTOMER, "BQACdoc1", "export.csv", None));
    let updates = bot.get_updates().await.unwrap();
    let UpdateKind::Message(message) = &updates[0].kind else { panic!() };
    assert_eq!(message.caption(), Some("my receipt"));
    let largest = message.photo().unwrap().last().unwrap();
    let file = bot.get_file(largest.file.id.clone()).await.unwrap();
    assert_eq!((file.path.as_str(), file.size as usize), (path.as_str(), photo.len()));
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded).await.unwrap();
    assert_eq!(downloaded, photo);
    let UpdateKind::Message(message) = &updates[1].kind else { panic!() };
    assert_eq!(message.document().unwrap().mime_type.as_ref().map(|m| m.essence_str()), Some("text/csv"));

    assert!(
        matches!(api_error(bot.get_file(FileId("missing".into())).await), ApiError::Unknown(e) if e == "Bad Request: invalid file_id")
    );
    let mut nothing = Vec::new();
    assert!(bot.download_file("documents/missing", &mut nothing).await.is_err());
}

#[tokio::test]
async fn webhooks_are_recorded_and_exclude_polling() {
    let (fake, bot) = fake_and_bot().await;
    let plain_http = bot.set_webhook("http://bot.example.test/hook".parse().unwrap()).await;
    assert!(matches!(api_error(plain_http), ApiError::Unknown(e) if e.contains("HTTPS URL must be provided")));
    bot.set_webhook("https://bot.example.test/telegram".parse().unwrap()).secret_token("s3cret_-token").await.unwrap();
    let webhook = fake.webhook().unwrap();
    assert_eq!(
        (webhook.url.as_str(), webhook.secret_token.as_deref()),
        ("https://bot.example.test/telegram", Some("s3cret_-token"))
    );
    let info = bot.get_webhook_info().await.unwrap();
    assert_eq!(info.url.unwrap().as_str(), "https://bot.example.test/telegram");
    assert!(
        matches!(api_error(bot.get_updates().await), ApiError::Unknown(e) if e.starts_with("Conflict: can't use getUpdates"))
    );

    fake.push_update(fake.text_message(CUSTOMER, CUSTOMER, "hello"));
    bot.delete_webhook().await.unwrap();
    assert_eq!(fake.webhook(), None);
    assert!(bot.get_webhook_info().await.unwrap().url.is_none());
    assert_eq!(
        bot.get_updates().await.unwrap().len(),
        1,
        "pending updates survive deleteWebhook without drop_pending_updates"
    );
}

#[tokio::test]
async fn urlencoded_forms_and_query_strings_are_read_like_json() {
    let fake = FakeBotApi::start(TOKEN).await;
    let http = reqwest::Client::new();
    let markup = r#"{"inline_keyboard":[[{"text":"Open","url":"https://example.test"}]]}"#;
    let form = format!(
        "chat_id={CUSTOMER}&text=Hello%2C+world%21&reply_markup={}",
        markup.replace('{', "%7B").replace('}', "%7D").replace('"', "%22").replace(':', "%3A").replace(',', "%2C")
    );
    let sent: Value = http
        .post(format!("{}/bot{TOKEN}/sendMessage", fake.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["ok"], true);
    assert_eq!(sent["result"]["text"], "Hello, world!");
    assert_eq!(sent["result"]["reply_markup"]["inline_keyboard"][0][0]["url"], "https://example.test");
    let queried: Value = http
        .get(format!("{}/bot{TOKEN}/sendMessage?chat_id={CUSTOMER}&text=via%20query", fake.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queried["result"]["text"], "via query");
    let sent = fake.sent();
    assert_eq!(sent[0].params["chat_id"], CUSTOMER.to_string(), "form values stay strings in params");
    assert_eq!(sent[1].chat_id, CUSTOMER);
}

#[tokio::test]
async fn the_update_builders_parse_as_teloxide_types() {
    let (fake, bot) = fake_and_bot().await;
    let group = -1_001_234_567_890;
    fake.push_update(fake.text_message(group, CUSTOMER, "in the group"));
    fake.push_update(fake.text_message(-77, CUSTOMER, "in a basic group"));
    fake.push_update(fake.edited_message(CUSTOMER, CUSTOMER, 1, "fixed typo"));
    fake.push_update(fake.callback_query(CUSTOMER, CUSTOMER, 31337, "old button"));
    fake.push_update(fake.my_chat_member_blocked(CUSTOMER, CUSTOMER));
    let updates = bot.get_updates().await.unwrap();
    assert!(updates.iter().all(|u| !matches!(u.kind, UpdateKind::Error(_))), "{updates:#?}");
    let UpdateKind::Message(in_group) = &updates[0].kind else { panic!() };
    assert!(in_group.chat.is_supergroup());
    let UpdateKind::Message(in_basic) = &updates[1].kind else { panic!() };
    assert!(in_basic.chat.is_group());
    let UpdateKind::EditedMessage(edited) = &updates[2].kind else { panic!() };
    assert_eq!((edited.text(), edited.edit_date().is_some()), (Some("fixed typo"), true));
    let UpdateKind::CallbackQuery(query) = &updates[3].kind else { panic!() };
    assert!(query.regular_message().is_none(), "an unknown message comes as an inaccessible one");
    assert_eq!(query.message.as_ref().unwrap().id(), MessageId(31337));
    assert!(matches!(updates[4].kind, UpdateKind::MyChatMember(_)));
}

#[tokio::test]
async fn dropping_the_fake_ends_a_waiting_long_poll() {
    let (fake, bot) = fake_and_bot().await;
    let poll = tokio::spawn(async move { bot.get_updates().timeout(30).await });
    fake.wait_for_get_updates_calls(1, WAIT).await;
    drop(fake);
    let ended = tokio::time::timeout(WAIT, poll).await.expect("the poll ends with the fake").unwrap();
    assert!(ended.map_or(true, |updates| updates.is_empty()));
}
