//! Odd real-world mail from `fixtures/corpus/`: reused Message-IDs, empty bodies, bounces from
//! the null sender, malformed headers and forwarded messages.

use super::*;

fn corpus(name: &str) -> ParsedMail {
    parsed(&format!("corpus/{name}"))
}

#[test]
fn a_reused_message_id_with_other_content_is_a_new_message_and_a_copy_is_not() {
    let first = corpus("01_plain.eml");
    let other_sender = corpus("02_reused_id_other_sender.eml");
    let same_sender = corpus("03_reused_id_same_sender.eml");
    let copy = corpus("04_copy_from_other_mailbox.eml");
    for mail in [&other_sender, &same_sender, &copy] {
        assert_eq!(mail.message_id, first.message_id, "one Message-ID for all");
    }
    assert_ne!(other_sender.dedupe_id(), first.dedupe_id());
    assert_ne!(same_sender.dedupe_id(), first.dedupe_id());
    assert_ne!(same_sender.dedupe_id(), other_sender.dedupe_id());
    // Another mailbox's copy: other trace headers and line ends, the same mail.
    assert_ne!(copy.raw_sha256, first.raw_sha256);
    assert_eq!(copy.dedupe_id(), first.dedupe_id());
    // Refolded headers and CRLF vs LF do not make a copy new; any other change does.
    let raw = fixture("corpus/01_plain.eml");
    let refolded = String::from_utf8(raw.clone()).unwrap().replace("Subject: Invoice", "Subject:\r\n  Invoice");
    let refolded = parse(refolded.as_bytes(), &ParseLimits::default()).unwrap();
    assert_eq!(refolded.dedupe_id(), first.dedupe_id());
    let edited = String::from_utf8(raw).unwrap().replace("refund one", "refund both");
    assert_ne!(parse(edited.as_bytes(), &ParseLimits::default()).unwrap().dedupe_id(), first.dedupe_id());
    // Without a Message-ID the content alone names the mail, whatever the trace headers say.
    let anonymous = fixture("corpus/42_no_message_id.eml");
    let mut traced = b"Received: from mx.example.test by x; Thu, 26 Nov 2026 15:21:00 +0100\r\n".to_vec();
    traced.extend(&anonymous);
    let (a, b) =
        (parse(&anonymous, &ParseLimits::default()).unwrap(), parse(&traced, &ParseLimits::default()).unwrap());
    assert!(a.dedupe_id().starts_with("sha256:"));
    assert_eq!(a.dedupe_id(), b.dedupe_id());
    // The id stays within the envelope's limit even for a huge Message-ID.
    let long = format!("From: a@b.c\r\nMessage-ID: <{}@x.test>\r\n\r\nhi", "x".repeat(2000));
    let long = parse(long.as_bytes(), &ParseLimits::default()).unwrap().dedupe_id();
    assert!(long.len() < 128 && long.starts_with("sha256:"), "{long}");
    assert_eq!(message_id_of(&long), None, "a hashed id is not a Message-ID to answer");
    assert_eq!(message_id_of("legacy@x.test"), Some("legacy@x.test"));
    assert_eq!(message_id_of("a#sha256:notadigest@x.test"), Some("a#sha256:notadigest@x.test"));
}

#[test]
fn an_empty_body_is_routed_with_the_subject_or_a_placeholder() {
    let subject = corpus("05_empty_body_with_subject.eml");
    assert_eq!(subject.new_text, "");
    assert_eq!(subject.routable_text(), ("Please call me back: +49 30 1234567".to_string(), Some(TextSource::Subject)));
    let scan = corpus("06_no_text_no_subject_attachment.eml");
    assert_eq!(scan.routable_text(), ("(no text; attached: scan0001.pdf)".to_string(), Some(TextSource::Placeholder)));
    let files = corpus("34_attachments_only_with_subject.eml");
    assert_eq!(files.routable_text(), ("Contract scans".to_string(), Some(TextSource::Subject)));
    let empty = corpus("07_empty_mail.eml");
    assert_eq!(empty.routable_text(), (EMPTY_MAIL_TEXT.to_string(), Some(TextSource::Placeholder)));
    let plain = corpus("01_plain.eml");
    assert_eq!(plain.routable_text(), (plain.new_text.clone(), None));
}

#[test]
fn bounces_from_the_null_sender_are_bounces() {
    let dsn = corpus("08_dsn_mailer_daemon_null.eml");
    assert_eq!((dsn.from.address.as_str(), dsn.from.name.as_deref()), ("", Some("MAILER-DAEMON")));
    assert_eq!(
        classify(&dsn, &ours()),
        bounce(
            "gone@customer.test",
            "5.1.1",
            "550 5.1.1 <gone@customer.test>: user unknown",
            "0194f1a2b3c47d5e8f9a0b1c2d3e4f50.0194f1a2b3c47d5e8f9a0b1c2d3e4f51.t0000000000000000000a@example.test"
        )
    );
    let exim = corpus("11_exim_bounce_null_from.eml");
    assert_eq!(exim.from_source, None);
    let Classification::Bounce(info) = classify(&exim, &ours()) else { panic!("{:?}", classify(&exim, &ours())) };
    assert_eq!((info.recipient.as_deref(), info.status.as_deref()), (Some("nobody@faraway.test"), Some("5.1.1")));
    // What dovecot adds on delivery (the envelope sender) does not hide a null From.
    let mut delivered = b"Return-Path: <relay@mx.test>\r\n".to_vec();
    delivered.extend(fixture("corpus/11_exim_bounce_null_from.eml"));
    let delivered = parse(&delivered, &ParseLimits::default()).unwrap();
    assert_eq!(delivered.from_source, Some(SenderSource::ReturnPath));
    assert!(matches!(classify(&delivered, &ours()), Classification::Bounce(_)));
    for fixture in ["09_postfix_text_bounce.eml", "10_qmail_bounce.eml"] {
        let Classification::Bounce(info) = classify(&corpus(fixture), &ours()) else { panic!("{fixture}") };
        assert!(info.original_message_id.is_some() && info.is_permanent(), "{fixture}: {info:?}");
    }
    // A person's mail from `<>` without any sign of a bounce is not one.
    let person = corpus("43_from_null_with_return_path_text.eml");
    assert_eq!(classify(&person, &ours()), Classification::Customer);
    assert_eq!(person.author(), Err(ParseError::NoFrom));
}

#[test]
fn malformed_headers_are_read_tolerantly() {
    let broken = corpus("12_broken_encoded_words.eml");
    assert_eq!(broken.from.address, "ivan@customer.test");
    assert!(broken.subject.as_deref().is_some_and(|s| s.starts_with("Oplata ne prohodit")), "{:?}", broken.subject);
    assert_eq!(broken.new_text, "The payment page says \"declined\" for every card I try.");
    let date = corpus("13_bad_date.eml");
    assert_eq!((date.date, date.from.address.as_str()), (None, "greta@customer.test"));
    let garbage = corpus("14_garbage_header_lines.eml");
    assert_eq!(garbage.from.address, "pavel@customer.test");
    assert_eq!(garbage.new_text, "Exporting the monthly report to CSV gives an empty file.");
    let reply_to = corpus("15_no_from_reply_to.eml");
    assert_eq!(
        (reply_to.from.address.as_str(), reply_to.from.name.as_deref(), reply_to.from_source),
        ("olga@customer.test", Some("Olga Sidorova"), Some(SenderSource::ReplyTo))
    );
    let sender = corpus("16_from_name_only_sender.eml");
    assert_eq!(
        (sender.from.address.as_str(), sender.from.name.as_deref(), sender.from_source),
        ("dmitri.volkov@customer.test", Some("Dmitri Volkov"), Some(SenderSource::Sender))
    );
    let return_path = parse(b"From: ivan\r\nReturn-Path: <ivan@customer.test>\r\n\r\nhi", &ParseLimits::default());
    assert_eq!(
        return_path.map(|m| (m.from.address, m.from_source)),
        Ok(("ivan@customer.test".into(), Some(SenderSource::ReturnPath)))
    );
    let unclosed = parse(b"From: Ivan <ivan@customer.test\r\n\r\nhi", &ParseLimits::default()).unwrap();
    assert_eq!(unclosed.from.address, "ivan@customer.test");
    let lf = corpus("17_bare_lf.eml");
    assert_eq!(lf.new_text, "The API returns 502 for /v2/orders since 10:55.");
    let koi8 = corpus("18_8bit_headers_koi8r.eml");
    assert_eq!(koi8.subject.as_deref(), Some("Не приходит письмо с паролем"));
    assert_eq!(koi8.from.name.as_deref(), Some("Сергей Иванов"));
    assert_eq!(koi8.from.address, "sergey@customer.test");
    let utf8 = corpus("27_utf8_8bit.eml");
    assert_eq!(utf8.subject.as_deref(), Some("Ünïcödé everywhere — 8-bit, no encoding"));
    assert_eq!(utf8.from.name.as_deref(), Some("Zoë Ångström"));
    let mess = corpus("37_line_ending_mess.eml");
    assert_eq!(mess.from.address, "mixed@customer.test");
    assert!(mess.text.contains("First line CRLF") && mess.text.contains("Fourth line"), "{:?}", mess.text);
    let huge = corpus("36_huge_header.eml");
    assert_eq!((huge.references.len(), thread_root(&huge).as_str()), (1500, "thread-0000.00000@mail.customer.test"));
}

#[test]
fn a_forwarded_message_is_part_of_the_text() {
    let only = corpus("19_forwarded_rfc822_only.eml");
    assert_eq!(
        only.new_text,
        "---------- Forwarded message ----------\nFrom: Billing <billing@example.test>\n\
         Date: Wed, 25 Nov 2026 18:00:00 +0000\nSubject: Your subscription was cancelled\n\
         To: marta@customer.test\n\nYour subscription 991 was cancelled because the payment failed."
    );
    assert_eq!(only.forwarded, 1);
    assert_eq!(only.attachments.len(), 1, "the forwarded mail is still attached as it came");
    assert_eq!(only.attachments[0].content_type, "message/rfc822");
    let noted = corpus("20_forwarded_with_note_html.eml");
    assert!(noted.new_text.starts_with("This says shipped, but nothing arrived. See below.\n\n---------- Forwarded"));
    assert!(noted.new_text.contains("From: Shop Notifications <orders@shop.test>"), "{}", noted.new_text);
    assert!(noted.new_text.contains("Order 55-771 left our warehouse."), "HTML made readable: {}", noted.new_text);
    // A bounce's returned message is evidence, not a forward.
    assert_eq!(corpus("08_dsn_mailer_daemon_null.eml").forwarded, 0);
}
