//! Odd real-world mail through a real dovecot (delivered over LMTP, fetched over IMAP) into the
//! email channel with a real NATS: every mail ends in exactly one outcome, the outcomes match the
//! table written for the corpus, and envelopes stored + duplicates + not routed + dead letters
//! add up to the mails fed.
//!
//! The fixtures in `tests/fixtures/corpus/` are written for this test: reused Message-IDs with
//! different content, the same mail twice and from another mailbox, empty bodies, `<>` senders
//! and bounces of several mail systems, malformed headers, forwarded messages, charsets, automatic
//! and list mail, and mail that is not mail at all. Run with `--no-capture` to see the table.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_adapter::testkit::{RunningChannel, TestBus, wait_for};
use switchboard_bus::outcomes::{self, InboundOutcome};
use switchboard_channel_email::{EmailChannel, EmailConfig, MailboxConfig, Security};
use switchboard_core::contract::{streams, subjects};
use switchboard_core::{Envelope, Event};
use switchboard_testkit::MailServer;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

const WAIT: Duration = Duration::from_secs(90);

/// `max_message_bytes` for the run, so one generated mail is over it.
const MAX_MESSAGE_BYTES: usize = 200_000;

/// Our Message-ID's conversation in `38_auto_reply_known_conversation.eml`.
const OOO_CONVERSATION: &str = "0194f1a2-b3c4-7d5e-8f9a-0b1c2d3e4f71";
/// The conversation named by the bounced Message-ID in `08_dsn_mailer_daemon_null.eml`.
const DSN_CONVERSATION: &str = "0194f1a2-b3c4-7d5e-8f9a-0b1c2d3e4f51";

/// What the channel does with one mail: the `Outcome::name` the mailbox watcher logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Expect {
    /// An envelope on `sb.in.email` (the router counts it as routed).
    Routed,
    /// A copy of a mail handled before.
    Duplicate,
    /// A bounce, recorded as `delivery_failed`.
    Bounce,
    /// Not routed: auto-reply, list or bulk mail, our own mail, a system sender, a read receipt.
    Ignored,
    /// A dead letter on `sb.dlq.email-in`.
    DeadLetter,
}

impl Expect {
    fn logged_as(self) -> &'static str {
        match self {
            Expect::Routed => "published",
            Expect::Duplicate => "duplicate",
            Expect::Bounce => "bounce",
            Expect::Ignored => "ignored",
            Expect::DeadLetter => "dead_lettered",
        }
    }

    /// The counted outcome (`switchboard_inbound_total`).
    fn counted(self) -> InboundOutcome {
        match self {
            Expect::Routed => InboundOutcome::Routed,
            Expect::Duplicate => InboundOutcome::Duplicate,
            Expect::Bounce | Expect::Ignored => InboundOutcome::NotRouted,
            Expect::DeadLetter => InboundOutcome::DeadLetter,
        }
    }
}

/// The corpus in the order it is delivered (so UID n is entry n - 1), and what each must become.
const CORPUS: &[(&str, Expect)] = &[
    ("01_plain.eml", Expect::Routed),
    ("02_reused_id_other_sender.eml", Expect::Routed),
    ("03_reused_id_same_sender.eml", Expect::Routed),
    ("01_plain.eml", Expect::Duplicate),
    ("04_copy_from_other_mailbox.eml", Expect::Duplicate),
    ("05_empty_body_with_subject.eml", Expect::Routed),
    ("06_no_text_no_subject_attachment.eml", Expect::Routed),
    ("07_empty_mail.eml", Expect::Routed),
    ("08_dsn_mailer_daemon_null.eml", Expect::Bounce),
    ("08_dsn_mailer_daemon_null.eml", Expect::Duplicate),
    ("09_postfix_text_bounce.eml", Expect::Bounce),
    ("10_qmail_bounce.eml", Expect::Bounce),
    ("11_exim_bounce_null_from.eml", Expect::Bounce),
    ("12_broken_encoded_words.eml", Expect::Routed),
    ("13_bad_date.eml", Expect::Routed),
    ("14_garbage_header_lines.eml", Expect::Routed),
    ("15_no_from_reply_to.eml", Expect::Routed),
    ("16_from_name_only_sender.eml", Expect::Routed),
    ("17_bare_lf.eml", Expect::Routed),
    ("18_8bit_headers_koi8r.eml", Expect::Routed),
    ("19_forwarded_rfc822_only.eml", Expect::Routed),
    ("20_forwarded_with_note_html.eml", Expect::Routed),
    ("21_html_only.eml", Expect::Routed),
    ("22_base64_utf8.eml", Expect::Routed),
    ("23_quoted_printable_latin9.eml", Expect::Routed),
    ("24_windows1251.eml", Expect::Routed),
    ("25_koi8r_body.eml", Expect::Routed),
    ("26_iso2022jp.eml", Expect::Routed),
    ("27_utf8_8bit.eml", Expect::Routed),
    ("28_auto_submitted.eml", Expect::Ignored),
    ("29_x_autoreply.eml", Expect::Ignored),
    ("30_precedence_bulk.eml", Expect::Ignored),
    ("31_list_mail.eml", Expect::Ignored),
    ("32_from_our_address.eml", Expect::Ignored),
    ("33_nested_multiparts.eml", Expect::Routed),
    ("34_attachments_only_with_subject.eml", Expect::Routed),
    ("35_calendar_invite.eml", Expect::Routed),
    ("36_huge_header.eml", Expect::Routed),
    ("37_line_ending_mess.eml", Expect::Routed),
    ("38_auto_reply_known_conversation.eml", Expect::Ignored),
    ("39_not_a_mail.eml", Expect::DeadLetter),
    ("40_read_receipt.eml", Expect::Ignored),
    ("41_noreply_sender.eml", Expect::Ignored),
    ("42_no_message_id.eml", Expect::Routed),
    ("43_from_null_with_return_path_text.eml", Expect::Routed),
    (OVERSIZED, Expect::DeadLetter),
];

/// Not a file: a mail generated over `MAX_MESSAGE_BYTES`.
const OVERSIZED: &str = "(generated: a 300 kB mail over max_message_bytes)";

fn corpus_mail(name: &str) -> Vec<u8> {
    if name == OVERSIZED {
        let line = "This line repeats to make the mail too large for the configured limit.\r\n";
        let body = line.repeat(300_000 / line.len());
        return format!(
            "From: Big <big@customer.test>\r\nTo: support@example.test\r\nSubject: Huge log\r\nMessage-ID: <oversized@customer.test>\r\n\r\n{body}"
        )
        .into_bytes();
    }
    let path = format!("{}/tests/fixtures/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Collects the mailbox watcher's `message handled` lines: `(raw_ref, outcome)`.
#[derive(Clone, Default)]
struct Handled(Arc<Mutex<Vec<(String, String)>>>);

#[derive(Default)]
struct Fields {
    message: String,
    raw_ref: String,
    outcome: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "raw_ref" => self.raw_ref = value.to_string(),
            "outcome" => self.outcome = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Handled {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "message handled" {
            self.0.lock().unwrap().push((fields.raw_ref, fields.outcome));
        }
    }
}

impl Handled {
    fn install() -> Handled {
        let handled = Handled::default();
        let filter = tracing_subscriber::filter::Targets::new()
            .with_target("switchboard_channel_email::inbound", tracing::Level::DEBUG);
        let subscriber = tracing_subscriber::registry().with(handled.clone().with_filter(filter));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test process");
        handled
    }

    fn lines(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }
}

fn config(mail: &MailServer, dir: &std::path::Path) -> EmailConfig {
    std::fs::write(dir.join("imap.pass"), mail.password("support")).unwrap();
    std::fs::write(dir.join("token.key"), "a-test-key-for-reply-tokens").unwrap();
    let mut cfg = EmailConfig {
        enabled: true,
        address: mail.address("support"),
        token_secret_file: Some(dir.join("token.key")),
        max_message_bytes: MAX_MESSAGE_BYTES,
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
    cfg.runtime.rate_limit.per_minute = 600;
    cfg.runtime.rate_limit.burst = 100;
    cfg
}

fn start(t: &TestBus, cfg: &EmailConfig) -> RunningChannel {
    t.run_channel(EmailChannel::new(cfg, t.slot()).expect("valid email config"), cfg.runtime.clone())
}

fn events(stored: Vec<(async_nats::HeaderMap, bytes::Bytes)>) -> Vec<Event> {
    stored.iter().map(|(_, p)| serde_json::from_slice(p).expect("an event/1")).collect()
}

#[tokio::test]
async fn every_mail_of_the_corpus_has_exactly_one_outcome_and_the_counts_add_up() {
    let handled = Handled::install();
    let t = TestBus::start().await;
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&server, dir.path());
    let support = server.address("support");
    for (name, _) in CORPUS {
        server.deliver_raw(&support, &corpus_mail(name));
    }
    let fed = CORPUS.len();
    let started = std::time::Instant::now();
    let running = start(&t, &cfg);
    wait_for(&format!("{fed} mails handled"), WAIT, || async { handled.lines().len() >= fed }).await;
    let elapsed = started.elapsed();
    running.stop().await;

    // Exactly one outcome per mail, none of them a retry: UID n is corpus entry n - 1.
    let mut by_uid: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (raw_ref, outcome) in handled.lines() {
        let uid: usize = raw_ref.rsplit(':').next().and_then(|u| u.parse().ok()).expect("raw_ref ends in the UID");
        by_uid.entry(uid).or_default().push(outcome);
    }
    assert_eq!(by_uid.keys().copied().collect::<Vec<_>>(), (1..=fed).collect::<Vec<_>>(), "every mail handled");
    let mut table = String::from("\n| # | mail | expected | outcome |\n|---|---|---|---|\n");
    let mut wrong = Vec::new();
    for (i, (name, expect)) in CORPUS.iter().enumerate() {
        let got = &by_uid[&(i + 1)];
        table.push_str(&format!("| {} | {name} | {} | {} |\n", i + 1, expect.logged_as(), got.join(", ")));
        if got.len() != 1 || got[0] != expect.logged_as() {
            wrong.push(format!("{name}: expected {}, got {got:?}", expect.logged_as()));
        }
    }
    println!("{table}");

    // The counters, the stream and the dead-letter queue agree with the table.
    let expected = |o: InboundOutcome| CORPUS.iter().filter(|(_, e)| e.counted() == o).count();
    let envelopes: Vec<Envelope> = t.envelopes("email").await;
    let dead = t.dead_letters("email-in").await.len();
    let counted = |o: InboundOutcome| outcomes::count("email", o) as usize;
    let (duplicates, not_routed, dead_counted) =
        (counted(InboundOutcome::Duplicate), counted(InboundOutcome::NotRouted), counted(InboundOutcome::DeadLetter));
    println!(
        "| outcome | expected | counted |\n|---|---|---|\n| routed (envelopes stored) | {} | {} |\n| duplicate | {} | {duplicates} |\n| not_routed | {} | {not_routed} |\n| dead_letter | {} | {dead_counted} (dead letters stored: {dead}) |\n| **mails fed** | {fed} | {} |\n\n{fed} mails handled in {:.1} s",
        expected(InboundOutcome::Routed),
        envelopes.len(),
        expected(InboundOutcome::Duplicate),
        expected(InboundOutcome::NotRouted),
        expected(InboundOutcome::DeadLetter),
        envelopes.len() + duplicates + not_routed + dead_counted,
        elapsed.as_secs_f64(),
    );
    assert!(wrong.is_empty(), "outcomes differ from the table:\n{}", wrong.join("\n"));
    assert_eq!(envelopes.len(), expected(InboundOutcome::Routed), "envelopes stored");
    assert_eq!(duplicates, expected(InboundOutcome::Duplicate), "duplicates counted");
    assert_eq!(not_routed, expected(InboundOutcome::NotRouted), "not routed counted");
    assert_eq!((dead_counted, dead), (expected(InboundOutcome::DeadLetter), expected(InboundOutcome::DeadLetter)));
    assert_eq!(counted(InboundOutcome::Routed), 0, "the router counts what is routed, not the channel");
    assert_eq!(envelopes.len() + duplicates + not_routed + dead_counted, fed, "every mail fed is accounted for");

    // What the routed mails became.
    let by_subject = |subject: &str| {
        envelopes
            .iter()
            .find(|e| e.subject.as_deref() == Some(subject))
            .unwrap_or_else(|| panic!("an envelope with the subject {subject:?}"))
    };
    let reused: Vec<&Envelope> =
        envelopes.iter().filter(|e| e.provider_message_id.starts_with("20261124091244.77312@customer.test")).collect();
    assert_eq!(reused.len(), 3, "three different mails under one Message-ID");
    assert_eq!(
        reused.iter().map(|e| e.customer.id.as_str()).collect::<Vec<_>>(),
        ["nadia@customer.test", "tomas@other.test", "nadia@customer.test"]
    );
    let empty = by_subject("Please call me back: +49 30 1234567");
    assert_eq!(empty.text, "Please call me back: +49 30 1234567", "an empty body: the subject is the text");
    assert_eq!(empty.metadata.get("email.text_source").map(String::as_str), Some("subject"));
    let scan = envelopes.iter().find(|e| e.customer.id == "scanner-owner@customer.test").expect("the scan");
    assert_eq!(scan.text, "(no text; attached: scan0001.pdf)");
    assert!(envelopes.iter().any(|e| e.customer.id == "lee@customer.test" && e.text.starts_with("(empty message")));
    let forwarded = by_subject("Fwd: Your subscription was cancelled");
    assert!(
        forwarded.text.contains("---------- Forwarded message ----------")
            && forwarded.text.contains("Subject: Your subscription was cancelled")
            && forwarded.text.contains("Your subscription 991 was cancelled because the payment failed."),
        "{}",
        forwarded.text
    );
    let noted = by_subject("Fwd: Shipping confirmation");
    assert!(noted.text.starts_with("This says shipped, but nothing arrived."), "{}", noted.text);
    assert!(noted.text.contains("Order 55-771 left our warehouse."), "{}", noted.text);
    assert_eq!(by_subject("Where is my parcel?").customer.id, "olga@customer.test", "Reply-To when From is missing");
    assert_eq!(by_subject("Two accounts merged by mistake").customer.id, "dmitri.volkov@customer.test");
    assert_eq!(
        by_subject("Не приходит письмо с паролем").customer.name.as_deref(),
        Some("Сергей Иванов"),
        "raw KOI8-R headers decoded with the body's charset"
    );
    assert!(by_subject("注文の確認").text.contains("注文番号 7781"));

    // Bounces are recorded on their conversations; the auto-reply on its conversation too.
    let failed = events(t.stored(streams::EVENTS, &subjects::event("delivery_failed")).await);
    assert_eq!(failed.len(), 4, "four bounces, one event each (the repeated DSN is a duplicate)");
    assert!(failed.iter().any(|e| e.conversation_id.map(|c| c.to_string()).as_deref() == Some(DSN_CONVERSATION)));
    let not_routed_events = events(t.stored(streams::EVENTS, &subjects::event("message_not_routed")).await);
    assert_eq!(not_routed_events.len(), 1, "only the auto-reply names one of our conversations");
    let ooo = &not_routed_events[0];
    assert_eq!(ooo.conversation_id.map(|c| c.to_string()).as_deref(), Some(OOO_CONVERSATION));
    assert_eq!((ooo.data["outcome"].as_str(), ooo.channel.as_deref()), (Some("not_routed"), Some("email")));
    assert!(ooo.data["reason"].as_str().is_some_and(|r| r.contains("auto-reply")), "{ooo:?}");
    let reasons: Vec<String> = t
        .dead_letters("email-in")
        .await
        .iter()
        .filter_map(|(h, _)| h.get("Sb-Dlq-Reason").map(|r| r.as_str().to_string()))
        .collect();
    assert!(reasons.iter().any(|r| r.starts_with("not an email")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("over the limit")), "{reasons:?}");
}
