//! The email channel against real servers: dovecot (IMAP, LMTP) and OpenSMTPD started by the test
//! harness, and a real NATS server. Mail in a mailbox becomes envelopes once each, threaded;
//! replies leave over SMTP threaded into the customer's mail client; noise is never routed,
//! bounces are recorded, unreadable mail is dead-lettered, and a restart loses and repeats nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use switchboard_adapter::testkit::{RunningChannel, TestBus, wait_for};
use switchboard_channel_email::{EmailChannel, EmailConfig, MailboxConfig, Security};
use switchboard_core::contract::{ATTACHMENTS_STORE, streams, subjects};
use switchboard_core::{Envelope, Event, OutboundKind};
use switchboard_testkit::MailServer;

const WAIT: Duration = Duration::from_secs(20);

fn config(mail: &MailServer, dir: &std::path::Path) -> EmailConfig {
    std::fs::write(dir.join("imap.pass"), mail.password("support")).unwrap();
    std::fs::write(dir.join("token.key"), "a-test-key-for-reply-tokens").unwrap();
    let mut cfg = EmailConfig {
        enabled: true,
        address: mail.address("support"),
        display_name: Some("Example Support".into()),
        token_secret_file: Some(dir.join("token.key")),
        ..EmailConfig::default()
    };
    cfg.mailboxes.insert(
        "support".into(),
        MailboxConfig {
            host: mail.host().into(),
            port: mail.imap_port(),
            security: Security::None,
            username: "support".into(),
            password_file: Some(dir.join("imap.pass")),
            poll_secs: 30,
            ..MailboxConfig::default()
        },
    );
    cfg.smtp.host = mail.host().into();
    cfg.smtp.port = mail.smtp_port();
    cfg.smtp.security = Security::None;
    cfg
}

fn start(t: &TestBus, cfg: &EmailConfig) -> RunningChannel {
    t.run_channel(EmailChannel::new(cfg, t.slot()).expect("valid email config"), cfg.runtime.clone())
}

fn mail(from: &str, subject: &str, id: Option<&str>, extra_headers: &str, body: &str) -> Vec<u8> {
    let id = id.map(|i| format!("Message-ID: <{i}>\r\n")).unwrap_or_default();
    format!(
        "From: {from}\r\nTo: support@example.test\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n{id}{extra_headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Waits (without blocking the runtime the channel runs on) for `n` mails in `user`'s mailbox.
async fn mails(server: &MailServer, user: &str, n: usize) -> Vec<Vec<u8>> {
    wait_for(&format!("{n} mail(s) for {user}"), WAIT, || async { server.messages(user).len() >= n }).await;
    server.messages(user)
}

async fn envelopes(t: &TestBus) -> Vec<Envelope> {
    t.envelopes("email").await
}

#[tokio::test]
async fn mail_becomes_envelopes_once_threaded_and_noise_is_not_routed() {
    let t = TestBus::start().await;
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server, dir.path());
    let support = server.address("support");

    server.deliver_raw(
        &support,
        &mail("Ada <ada@customer.test>", "Order 17", Some("q1@customer.test"), "", "Where is order 17?"),
    );
    let koi8 = b"From: =?koi8-r?B?6dfBzg==?= <ivan@customer.test>\r\nTo: support@example.test\r\nSubject: =?koi8-r?B?89fF1ME=?=\r\nMessage-ID: <koi@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xf0\xd2\xc9\xd7\xc5\xd4\r\n";
    server.deliver_raw(&support, koi8);
    let ooo = mail(
        "Bob <bob@customer.test>",
        "Out of office",
        Some("ooo@customer.test"),
        "Auto-Submitted: auto-replied\r\n",
        "I am away.",
    );
    server.deliver_raw(&support, &ooo);
    server.deliver_raw(
        &support,
        &mail(
            "Ada <ada@customer.test>",
            "Re: Order 17",
            Some("q2@customer.test"),
            "In-Reply-To: <q1@customer.test>\r\nReferences: <q1@customer.test>\r\n",
            "Any news?\r\n\r\nOn Mon, Ada wrote:\r\n> Where is order 17?",
        ),
    );
    server.deliver_raw(&support, &mail("Cy <cy@customer.test>", "No id", None, "", "A message without an id"));
    server.deliver_raw(&support, b"\x00\x01 this is not a mail at all");

    let running = start(&t, &cfg);
    wait_for("four envelopes", WAIT, || async { envelopes(&t).await.len() == 4 }).await;
    wait_for("the dead letter", WAIT, || async { t.dead_letters("email-in").await.len() == 1 }).await;
    let got = envelopes(&t).await;
    let texts: Vec<&str> = got.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        texts,
        ["Where is order 17?", "Привет", "Any news?", "A message without an id"],
        "in mailbox order, quotes stripped, auto-reply left out"
    );
    assert_eq!(got[0].customer.email.as_deref(), Some("ada@customer.test"));
    assert_eq!(got[0].subject.as_deref(), Some("Order 17"));
    assert_eq!(
        (got[1].customer.name.as_deref(), got[1].subject.as_deref()),
        (Some("Иван"), Some("Света")),
        "KOI8-R headers decoded"
    );
    assert_eq!(got[0].thread_key, got[2].thread_key, "the reply is in its thread");
    assert!(got[3].provider_message_id.starts_with("sha256:"), "no Message-ID: a hash of the bytes");
    assert!(got.iter().all(|e| e.raw_ref.as_deref().is_some_and(|r| r.starts_with("imap:support:"))));
    let (headers, _) = t.dead_letters("email-in").await.remove(0);
    assert!(headers.get("Sb-Dlq-Reason").is_some_and(|r| r.as_str().contains("From")), "{headers:?}");

    // New mail while running arrives through IDLE.
    server.deliver_raw(&support, &mail("Dee <dee@customer.test>", "Hi", Some("d1@customer.test"), "", "Live mail"));
    wait_for("the live envelope", WAIT, || async { envelopes(&t).await.len() == 5 }).await;
    running.stop().await;

    // A restart after more mail: nothing lost, nothing twice.
    for i in 0..3 {
        server.deliver_raw(
            &support,
            &mail("Eve <eve@customer.test>", "Batch", Some(&format!("b{i}@customer.test")), "", &format!("batch {i}")),
        );
    }
    let running = start(&t, &cfg);
    wait_for("eight envelopes", WAIT, || async { envelopes(&t).await.len() == 8 }).await;
    // A second restart with nothing new publishes nothing.
    running.stop().await;
    let running = start(&t, &cfg);
    server.deliver_raw(&support, &mail("Eve <eve@customer.test>", "Last", Some("last@customer.test"), "", "last"));
    wait_for("nine envelopes", WAIT, || async { envelopes(&t).await.len() == 9 }).await;
    let ids: BTreeSet<String> = envelopes(&t).await.into_iter().map(|e| e.provider_message_id).collect();
    assert_eq!(ids.len(), 9, "no duplicates");
    running.stop().await;
}

#[tokio::test]
async fn replies_leave_threaded_and_the_customers_answer_comes_back_to_its_thread() {
    let t = TestBus::start().await;
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server, dir.path());
    let support = server.address("support");
    let customer = server.address("customer");
    server.deliver_raw(&support, &mail(&customer, "Refund", Some("r1@customer.test"), "", "I want a refund"));
    let running = start(&t, &cfg);
    wait_for("the envelope", WAIT, || async { envelopes(&t).await.len() == 1 }).await;
    let first = envelopes(&t).await.remove(0);

    let mut reply = switchboard_adapter::testkit::outbound("email", &customer, "Refund is on its way.");
    reply.to.thread_key = first.thread_key.clone();
    reply.reply_to = Some(first.provider_message_id.clone());
    reply.subject = Some("Refund".into());
    t.send_outbound(&reply).await;
    let got = mails(&server, "customer", 1).await;
    let text = String::from_utf8_lossy(&got[0]).to_string();
    let header = |name: &str| {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{}:", name.to_ascii_lowercase())))
            .unwrap_or_default()
            .to_string()
    };
    assert!(header("Subject").starts_with("Subject: Re: Refund [#t"), "{text}");
    assert_eq!(header("In-Reply-To"), "In-Reply-To: <r1@customer.test>");
    assert!(header("References").contains("<r1@customer.test>"), "{text}");
    assert!(header("Reply-To").contains("support+t"), "{text}");
    assert!(header("Auto-Submitted").is_empty(), "an agent's reply is not automatic");
    assert!(text.contains("Refund is on its way."));

    // The customer's client keeps only In-Reply-To (our Message-ID): still the same thread.
    let our_id = header("Message-ID").trim_start_matches("Message-ID:").trim().to_string();
    let answer =
        mail(&customer, "Re: Refund", Some("r2@customer.test"), &format!("In-Reply-To: {our_id}\r\n"), "Thanks!");
    server.deliver_raw(&support, &answer);
    // Another drops every header but answers to the reply address with the token.
    let reply_to = header("Reply-To");
    let token_address = reply_to.split(['<', '>']).nth(1).unwrap_or_default().to_string();
    let bare = format!(
        "From: {customer}\r\nTo: {token_address}\r\nSubject: again\r\nMessage-ID: <r3@customer.test>\r\n\r\nStill there?\r\n"
    );
    server.deliver_raw(&support, bare.as_bytes());
    wait_for("both answers", WAIT, || async { envelopes(&t).await.len() == 3 }).await;
    let all = envelopes(&t).await;
    assert!(
        all.iter().all(|e| e.thread_key == first.thread_key),
        "{:?}",
        all.iter().map(|e| &e.thread_key).collect::<Vec<_>>()
    );

    // An automatic reply says so, for the customer's mail robots.
    let mut auto = switchboard_adapter::testkit::outbound("email", &customer, "We got your message.");
    auto.kind = OutboundKind::AutoReply;
    auto.to.thread_key = first.thread_key.clone();
    t.send_outbound(&auto).await;
    let got = mails(&server, "customer", 2).await;
    assert!(String::from_utf8_lossy(&got[1]).contains("Auto-Submitted: auto-replied"));
    running.stop().await;
}

#[tokio::test]
async fn a_bounce_is_recorded_on_its_conversation_and_attachments_are_stored() {
    let t = TestBus::start().await;
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, dir.path());
    cfg.max_attachment_bytes = 1000;
    let support = server.address("support");
    let conversation = uuid::Uuid::now_v7();
    let ours =
        format!("{}.{}.t0123456789abcdef0123@example.test", uuid::Uuid::now_v7().simple(), conversation.simple());
    let bounce = format!(
        "From: MAILER-DAEMON@mx.customer.test\r\nTo: support@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce1@mx.customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\nFinal-Recipient: rfc822; gone@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 No such user\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{ours}>\r\nSubject: Re: Help\r\n\r\n--B--\r\n"
    );
    server.deliver_raw(&support, bounce.as_bytes());
    let small = "aGVsbG8gd29ybGQ="; // "hello world"
    let big = "QUFB".repeat(500); // 1,500 bytes decoded
    let with_files = format!(
        "From: Ann <ann@customer.test>\r\nTo: support@example.test\r\nSubject: Files\r\nMessage-ID: <files@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"M\"\r\n\r\n--M\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attached.\r\n--M\r\nContent-Type: text/plain; name=\"note.txt\"\r\nContent-Disposition: attachment; filename=\"note.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{small}\r\n--M\r\nContent-Type: application/octet-stream; name=\"big.bin\"\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{big}\r\n--M--\r\n"
    );
    server.deliver_raw(&support, with_files.as_bytes());
    let running = start(&t, &cfg);
    wait_for("the envelope with files", WAIT, || async { envelopes(&t).await.len() == 1 }).await;
    let events = t.stored(streams::EVENTS, &subjects::event("delivery_failed")).await;
    assert_eq!(events.len(), 1, "the bounce is an event, not a customer message");
    let event: Event = serde_json::from_slice(&events[0].1).unwrap();
    assert_eq!(event.conversation_id, Some(conversation));
    assert_eq!(event.data["recipient"], "gone@customer.test");
    assert_eq!(event.data["permanent"], true);

    let e = envelopes(&t).await.remove(0);
    assert_eq!(e.text, "See attached.");
    assert_eq!(e.attachments.len(), 2);
    let (note, big) = (&e.attachments[0], &e.attachments[1]);
    assert_eq!((note.filename.as_str(), note.size, note.skipped.is_none()), ("note.txt", 11, true));
    assert_eq!((big.filename.as_str(), big.size, big.object.as_str()), ("big.bin", 1500, ""));
    assert!(big.skipped.as_deref().is_some_and(|s| s.contains("limit")), "{big:?}");
    let store = t.bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.unwrap();
    let mut object = store.get(note.object.as_str()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut object, &mut bytes).await.unwrap();
    assert_eq!(bytes, b"hello world");

    // A reply carrying a stored file (an agent's) goes out with it attached.
    let customer = server.address("customer");
    let mut reply = switchboard_adapter::testkit::outbound("email", &customer, "Here is the file back.");
    reply.attachments = vec![note.clone()];
    t.send_outbound(&reply).await;
    let got = mails(&server, "customer", 1).await;
    let text = String::from_utf8_lossy(&got[0]).to_string();
    assert!(text.contains("multipart/mixed"), "{text}");
    assert!(text.contains("Content-Disposition: attachment; filename=\"note.txt\""), "{text}");
    assert!(text.contains("aGVsbG8gd29ybGQ=") || text.contains("hello world"), "the file's bytes: {text}");
    assert!(text.contains("Here is the file back."), "{text}");
    running.stop().await;
}

#[tokio::test]
async fn tls_both_ways_our_own_mail_is_never_answered_and_a_flood_is_held_back() {
    let t = TestBus::start().await;
    let server = MailServer::start_with(switchboard_testkit::MailConfig::default().tls(true));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.cert_pem().expect("a TLS server has a certificate")).unwrap();
    let mut cfg = config(&server, dir.path());
    let mailbox = cfg.mailboxes.get_mut("support").unwrap();
    (mailbox.port, mailbox.security, mailbox.ca_file) = (server.imaps_port().unwrap(), Security::Tls, Some(ca.clone()));
    std::fs::write(dir.path().join("smtp.pass"), server.password("support")).unwrap();
    cfg.smtp.port = server.submission_port();
    cfg.smtp.security = Security::Starttls;
    cfg.smtp.ca_file = Some(ca);
    cfg.smtp.username = "support".into();
    cfg.smtp.password_file = Some(dir.path().join("smtp.pass"));
    cfg.runtime.rate_limit.per_minute = 1;
    cfg.runtime.rate_limit.burst = 2;
    let support = server.address("support");
    // Our own address writing to us (a loop in the making) is never routed.
    server.deliver_raw(&support, &mail(&support, "Re: Order", Some("loop@example.test"), "", "An echo"));
    for i in 0..4 {
        server.deliver_raw(
            &support,
            &mail("Flood <flood@customer.test>", "spam", Some(&format!("f{i}@customer.test")), "", "again"),
        );
    }
    let running = start(&t, &cfg);
    wait_for("the burst's envelopes", WAIT, || async { envelopes(&t).await.len() == 2 }).await;
    wait_for("the rest held back", WAIT, || async { t.dead_letters("email-in").await.len() == 2 }).await;
    let (headers, _) = t.dead_letters("email-in").await.remove(0);
    assert!(headers.get("Sb-Dlq-Reason").is_some_and(|r| r.as_str().contains("rate")), "{headers:?}");
    assert!(envelopes(&t).await.iter().all(|e| e.customer.id == "flood@customer.test"), "the echo was not routed");

    // Out over STARTTLS with a login, trusting only the test certificate.
    let customer = server.address("customer");
    let mut reply = switchboard_adapter::testkit::outbound("email", &customer, "Over TLS.");
    reply.to.thread_key = "tls-thread@customer.test".into();
    t.send_outbound(&reply).await;
    let got = mails(&server, "customer", 1).await;
    assert!(String::from_utf8_lossy(&got[0]).contains("Over TLS."));
    running.stop().await;
}

#[tokio::test]
async fn without_idle_it_polls_and_after_the_server_restarts_it_reconnects_and_resumes() {
    let t = TestBus::start().await;
    let mut server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, dir.path());
    let mailbox = cfg.mailboxes.get_mut("support").unwrap();
    (mailbox.idle, mailbox.poll_secs) = (false, 1);
    let support = server.address("support");
    let running = start(&t, &cfg);
    server.deliver_raw(&support, &mail("Ann <ann@customer.test>", "One", Some("p1@customer.test"), "", "first"));
    wait_for("the polled envelope", WAIT, || async { envelopes(&t).await.len() == 1 }).await;

    // The IMAP server goes away under the watcher and comes back on the same port and maildir.
    server.stop();
    server.restart();
    server.deliver_raw(&support, &mail("Ann <ann@customer.test>", "Two", Some("p2@customer.test"), "", "second"));
    wait_for("the envelope after the reconnect", WAIT, || async { envelopes(&t).await.len() == 2 }).await;
    let texts: Vec<String> = envelopes(&t).await.into_iter().map(|e| e.text).collect();
    assert_eq!(texts, ["first", "second"], "nothing lost, nothing twice");
    running.stop().await;
}

#[tokio::test]
async fn a_reply_to_the_survey_that_is_just_a_number_is_the_rating_not_a_new_message() {
    let t = TestBus::start().await;
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server, dir.path());
    let support = server.address("support");
    let customer = server.address("customer");
    server.deliver_raw(&support, &mail(&customer, "Refund", Some("c1@customer.test"), "", "I want a refund"));
    let running = start(&t, &cfg);
    wait_for("the envelope", WAIT, || async { envelopes(&t).await.len() == 1 }).await;
    let first = envelopes(&t).await.remove(0);
    let conversation = uuid::Uuid::now_v7();
    t.store_conversation(conversation, "email", &first.thread_key, Some("anna")).await;

    let mut survey = switchboard_adapter::testkit::csat_request("email", &customer, conversation, "anna");
    survey.to.thread_key = first.thread_key.clone();
    survey.reply_to = Some(first.provider_message_id.clone());
    survey.subject = Some("Refund".into());
    t.send_outbound(&survey).await;
    let got = mails(&server, "customer", 1).await;
    let text = String::from_utf8_lossy(&got[0]).to_string();
    assert!(text.contains("Reply with a number from 1 to 5."), "{text}");
    assert!(text.contains("Auto-Submitted: auto-generated"), "{text}");
    let our_id = text
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID:").or_else(|| l.strip_prefix("Message-Id:")))
        .expect("our Message-ID")
        .trim()
        .to_string();

    let answer = |id: &str, body: &str| {
        mail(&customer, "Re: Refund", Some(id), &format!("In-Reply-To: {our_id}\r\nReferences: {our_id}\r\n"), body)
    };
    server.deliver_raw(
        &support,
        &answer("a1@customer.test", "5 - great\r\n\r\nOn Mon, Support wrote:\r\n> How did we do?"),
    );
    server.deliver_raw(&support, &answer("a2@customer.test", "Оценка: 2"));
    server.deliver_raw(&support, &answer("a3@customer.test", "2 items are still missing"));
    // Mail is read in mailbox order: once the last one is an envelope, the others were handled.
    wait_for("the message after the ratings", WAIT, || async { envelopes(&t).await.len() == 2 }).await;
    assert_eq!(envelopes(&t).await[1].text, "2 items are still missing");
    let csat = t.csat_events().await;
    assert_eq!(csat.len(), 1, "only the first rating of a conversation counts");
    assert_eq!(csat[0].data["score"], 5);
    assert_eq!(
        (csat[0].conversation_id, csat[0].agent_id.as_deref(), csat[0].channel.as_deref()),
        (Some(conversation), Some("anna"), Some("email"))
    );
    running.stop().await;
}

#[tokio::test]
async fn a_number_reply_answers_the_survey_the_conversation_was_asked_and_one_off_its_scale_changes_nothing() {
    use switchboard_core::SurveyKind;
    let t = TestBus::start().await;
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server, dir.path());
    let support = server.address("support");
    let customer = server.address("customer");
    server.deliver_raw(&support, &mail(&customer, "Refund", Some("n1@customer.test"), "", "I want a refund"));
    let running = start(&t, &cfg);
    wait_for("the envelope", WAIT, || async { envelopes(&t).await.len() == 1 }).await;
    let first = envelopes(&t).await.remove(0);
    let conversation = uuid::Uuid::now_v7();
    t.store_surveyed(conversation, "email", &first.thread_key, Some("anna"), SurveyKind::Nps).await;

    let mut survey =
        switchboard_adapter::testkit::survey_request(SurveyKind::Nps, "email", &customer, conversation, "anna");
    survey.to.thread_key = first.thread_key.clone();
    survey.reply_to = Some(first.provider_message_id.clone());
    survey.subject = Some("Refund".into());
    t.send_outbound(&survey).await;
    let got = mails(&server, "customer", 1).await;
    let text = String::from_utf8_lossy(&got[0]).to_string();
    assert!(text.contains("Reply with a number from 0 to 10."), "{text}");
    let our_id = text
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID:").or_else(|| l.strip_prefix("Message-Id:")))
        .expect("our Message-ID")
        .trim()
        .to_string();
    let answer = |id: &str, body: &str| {
        mail(&customer, "Re: Refund", Some(id), &format!("In-Reply-To: {our_id}\r\nReferences: {our_id}\r\n"), body)
    };
    // Off the 0-10 scale: refused, not a message, recorded on the conversation as not routed.
    server.deliver_raw(&support, &answer("b1@customer.test", "12"));
    server.deliver_raw(&support, &answer("b2@customer.test", "9 out of 10\r\n\r\nOn Mon, Support wrote:\r\n> 0 = not"));
    server.deliver_raw(&support, &answer("b3@customer.test", "10"));
    server.deliver_raw(&support, &answer("b4@customer.test", "Thanks, all good now"));
    wait_for("the message after the answers", WAIT, || async { envelopes(&t).await.len() == 2 }).await;
    assert_eq!(envelopes(&t).await[1].text, "Thanks, all good now", "12, 9 and 10 were not messages");
    let nps = t.survey_events(SurveyKind::Nps).await;
    assert_eq!(nps.len(), 1, "one answer per conversation: {nps:?}");
    assert_eq!(nps[0].data["score"], 9, "12 changed nothing, 9 came first");
    assert_eq!((nps[0].conversation_id, nps[0].agent_id.as_deref()), (Some(conversation), Some("anna")));
    assert!(t.csat_events().await.is_empty(), "an NPS answer is not a CSAT answer");
    let not_routed = t.stored(switchboard_core::contract::streams::EVENTS, "sb.events.message_not_routed").await;
    let reasons: Vec<String> = not_routed
        .iter()
        .map(|(_, p)| serde_json::from_slice::<switchboard_core::Event>(p).unwrap().data["reason"].to_string())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("survey answer refused: 12 is not on the nps scale (0 to 10)")),
        "{reasons:?}"
    );
    running.stop().await;
}

/// A TCP relay to `target` that drops the first connection at once (a mail server restarting,
/// a network blip) and relays every later one; `dropped` is notified once it dropped one.
async fn flaky_relay(target: u16) -> (u16, std::sync::Arc<tokio::sync::Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dropped = std::sync::Arc::new(tokio::sync::Notify::new());
    let signal = dropped.clone();
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut inbound, _)) = listener.accept().await {
            if std::mem::take(&mut first) {
                drop(inbound);
                signal.notify_one();
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (port, dropped)
}

#[tokio::test]
async fn the_survey_never_overtakes_the_last_answer_even_when_that_answer_must_be_sent_again() {
    let t = TestBus::start().await;
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&server, dir.path());
    let (relay, dropped) = flaky_relay(server.smtp_port()).await;
    cfg.smtp.host = "127.0.0.1".into();
    cfg.smtp.port = relay;
    let customer = server.address("customer");
    let running = start(&t, &cfg);
    let conversation = uuid::Uuid::now_v7();

    // The agent's last answer meets a dropped connection and is retried; the survey the router
    // sends right after the resolve must still reach the customer second.
    let mut answer = switchboard_adapter::testkit::outbound("email", &customer, "Your refund was sent today.");
    answer.conversation_id = conversation;
    answer.subject = Some("Refund".into());
    t.send_outbound(&answer).await;
    tokio::time::timeout(WAIT, dropped.notified()).await.expect("the first connection was dropped");
    let mut survey = switchboard_adapter::testkit::csat_request("email", &customer, conversation, "anna");
    survey.subject = Some("Refund".into());
    t.send_outbound(&survey).await;

    let got = mails(&server, "customer", 2).await;
    let bodies: Vec<String> = got.iter().map(|m| String::from_utf8_lossy(m).to_string()).collect();
    assert!(bodies[0].contains("Your refund was sent today."), "the answer first: {bodies:?}");
    assert!(bodies[1].contains("Reply with a number from 1 to 5."), "the survey second: {bodies:?}");
    running.stop().await;
}
