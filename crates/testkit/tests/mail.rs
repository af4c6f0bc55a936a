//! The mail harness against the real dovecot and OpenSMTPD: SMTP in, maildir and IMAP out, restarts, TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::prelude::{BASE64_STANDARD, Engine as _};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use switchboard_testkit::{MailConfig, MailServer};

const WAIT: Duration = Duration::from_secs(8);

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
}

fn message(to: &str, subject: &str) -> String {
    format!(
        "From: Customer <customer@elsewhere.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@elsewhere.test>\r\n\r\nHello,\r\n.a line starting with a dot\r\n"
    )
}

/// A raw SMTP dialogue, enough to submit mail.
struct Smtp<S: Read + Write> {
    io: BufReader<S>,
}

impl<S: Read + Write> Smtp<S> {
    fn greeted(stream: S) -> Self {
        let mut smtp = Smtp { io: BufReader::new(stream) };
        let (code, text) = smtp.reply();
        assert_eq!(code, 220, "SMTP greeting: {text}");
        smtp
    }

    fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            assert!(self.io.read_line(&mut line).expect("read an SMTP reply") > 0, "SMTP closed after {text}");
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return (line[..3].parse().expect("an SMTP reply code"), text);
            }
        }
    }

    fn command(&mut self, line: &str) -> (u16, String) {
        self.io.get_mut().write_all(format!("{line}\r\n").as_bytes()).expect("send an SMTP command");
        self.reply()
    }

    fn ok(&mut self, line: &str, code: u16) -> String {
        let (got, text) = self.command(line);
        assert_eq!(got, code, "SMTP answered {line:?} with {text}");
        text
    }

    /// `AUTH PLAIN` as `user` with its password.
    fn auth(&mut self, server: &MailServer, user: &str) {
        let credentials = BASE64_STANDARD.encode(format!("\0{user}\0{}", server.password(user)));
        self.ok(&format!("AUTH PLAIN {credentials}"), 235);
    }

    /// Sends `data` (CRLF lines, no leading dots) from `from` to `to`.
    fn send(&mut self, from: &str, to: &str, data: &str) {
        self.ok(&format!("MAIL FROM:<{from}>"), 250);
        self.ok(&format!("RCPT TO:<{to}>"), 250);
        self.ok("DATA", 354);
        let stuffed = data.replace("\r\n.", "\r\n..");
        self.ok(&format!("{stuffed}."), 250);
    }
}

/// One untagged IMAP response: its text, and the literals it carried (message bodies).
struct Untagged {
    text: String,
    literals: Vec<Vec<u8>>,
}

/// A raw IMAP dialogue, enough to log in, select and fetch.
struct Imap<S: Read + Write> {
    io: BufReader<S>,
    tag: u32,
}

impl<S: Read + Write> Imap<S> {
    fn greeted(stream: S) -> Self {
        let mut imap = Imap { io: BufReader::new(stream), tag: 0 };
        let greeting = imap.line();
        assert!(greeting.starts_with("* OK"), "IMAP greeting: {greeting}");
        imap
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        assert!(self.io.read_line(&mut line).expect("read an IMAP line") > 0, "IMAP server closed the connection");
        line
    }

    /// Runs `command`; the tagged reply must be OK.
    fn run(&mut self, command: &str) -> Vec<Untagged> {
        self.tag += 1;
        let tag = format!("a{}", self.tag);
        self.io.get_mut().write_all(format!("{tag} {command}\r\n").as_bytes()).expect("send an IMAP command");
        let mut responses = Vec::new();
        loop {
            let mut current = Untagged { text: self.line(), literals: Vec::new() };
            // A line ending in {n} is followed by n raw bytes, then the rest of the response.
            while let Some(size) = literal_size(&current.text) {
                let mut literal = vec![0; size];
                self.io.read_exact(&mut literal).expect("read an IMAP literal");
                current.literals.push(literal);
                current.text.push_str(&self.line());
            }
            if let Some(status) = current.text.strip_prefix(&format!("{tag} ")) {
                assert!(status.starts_with("OK"), "IMAP answered {command:?} with {status}");
                return responses;
            }
            responses.push(current);
        }
    }

    fn login(&mut self, user: &str, password: &str) {
        self.run(&format!("LOGIN {user} {password}"));
    }

    /// SELECTs INBOX: its UIDVALIDITY and message count.
    fn select_inbox(&mut self) -> (u32, u32) {
        let responses = self.run("SELECT INBOX");
        let validity = responses.iter().find_map(|r| number_after(&r.text, "[UIDVALIDITY ")).expect("UIDVALIDITY");
        let exists =
            responses.iter().find_map(|r| r.text.strip_suffix(" EXISTS\r\n")?.strip_prefix("* ")?.parse().ok());
        (validity, exists.expect("EXISTS"))
    }

    /// Every message of the selected mailbox: (UID, raw message).
    fn fetch_all(&mut self) -> Vec<(u32, Vec<u8>)> {
        let responses = self.run("UID FETCH 1:* (UID BODY.PEEK[])");
        responses
            .into_iter()
            .filter(|r| r.text.contains(" FETCH "))
            .map(|mut r| (number_after(&r.text, "UID ").expect("UID in FETCH"), r.literals.remove(0)))
            .collect()
    }
}

fn literal_size(line: &str) -> Option<usize> {
    line.strip_suffix("}\r\n")?.rsplit_once('{')?.1.parse().ok()
}

fn number_after(text: &str, marker: &str) -> Option<u32> {
    let rest = &text[text.find(marker)? + marker.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn imap_inbox(server: &MailServer, user: &str) -> (u32, Vec<(u32, Vec<u8>)>) {
    let mut imap = Imap::greeted(connect(server.imap_port()));
    imap.login(user, server.password(user));
    let (validity, exists) = imap.select_inbox();
    let messages = if exists == 0 { Vec::new() } else { imap.fetch_all() };
    assert_eq!(messages.len(), exists as usize);
    (validity, messages)
}

#[test]
fn smtp_to_a_plus_address_reaches_the_maildir_and_imap() {
    let server = MailServer::start();
    let to = server.address("support+abc");
    assert_eq!(to, "support+abc@example.test");

    let mut smtp = Smtp::greeted(connect(server.smtp_port()));
    smtp.ok("EHLO client.test", 250);
    smtp.send("customer@elsewhere.test", &to, &message(&to, "plus-addressed"));

    let stored = server.wait_for_messages("support", 1, WAIT);
    assert!(contains(&stored[0], "Subject: plus-addressed"), "{}", String::from_utf8_lossy(&stored[0]));
    assert!(contains(&stored[0], "\n.a line starting with a dot"), "the dot-stuffing is undone");
    let (_, inbox) = imap_inbox(&server, "support");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].0, 1, "the first message has UID 1");
    assert!(contains(&inbox[0].1, "Subject: plus-addressed"));
    assert!(server.messages("agent1").is_empty());
}

#[test]
fn recipients_map_by_local_part_in_any_domain_and_unknown_ones_are_refused() {
    let server = MailServer::start_with(MailConfig::empty().user("agent1", "pw-1").user("customer", "pw-2"));
    let mut smtp = Smtp::greeted(connect(server.smtp_port()));
    smtp.ok("EHLO client.test", 250);

    smtp.ok("MAIL FROM:<someone@elsewhere.test>", 250);
    let (code, text) = smtp.command("RCPT TO:<nobody@example.test>");
    assert!((500..600).contains(&code), "an unknown local part is refused: {text}");
    smtp.ok("RSET", 250);

    smtp.send("someone@elsewhere.test", "Agent1+x@Other.Test", &message("Agent1+x@Other.Test", "any-domain"));
    let stored = server.wait_for_messages("agent1", 1, WAIT);
    assert!(contains(&stored[0], "Subject: any-domain"));
    assert!(server.messages("customer").is_empty());
    assert_eq!(server.password("customer"), "pw-2");
}

#[test]
fn submission_demands_auth_and_relays_through_smtp() {
    let server = MailServer::start();
    let mut smtp = Smtp::greeted(connect(server.submission_port()));
    smtp.ok("EHLO client.test", 250);
    let (code, text) = smtp.command("MAIL FROM:<support@example.test>");
    assert!((500..600).contains(&code), "submission without AUTH is refused: {text}");
    let (code, text) = smtp.command(&format!("AUTH PLAIN {}", BASE64_STANDARD.encode("\0support\0wrong")));
    assert_eq!(code, 535, "a wrong password is refused: {text}");
    smtp.auth(&server, "support");
    smtp.send("support+t1@example.test", "customer@example.test", &message("customer@example.test", "submitted"));
    let stored = server.wait_for_messages("customer", 1, WAIT);
    assert!(contains(&stored[0], "Subject: submitted"));
}

#[test]
fn deliver_raw_is_visible_over_imap_in_order() {
    let server = MailServer::start();
    server.deliver_raw("customer", message("customer@example.test", "first").replace("\r\n", "\n").as_bytes());
    server.deliver_raw("customer+tagged", message("customer+tagged@example.test", "second").as_bytes());

    // deliver_raw returns once dovecot saved the message: no waiting needed.
    let stored = server.messages("customer");
    assert_eq!(stored.len(), 2);
    assert!(contains(&stored[0], "Subject: first") && contains(&stored[1], "Subject: second"));
    let (_, inbox) = imap_inbox(&server, "customer");
    let uids: Vec<u32> = inbox.iter().map(|(uid, _)| *uid).collect();
    assert_eq!(uids, [1, 2]);
    assert!(contains(&inbox[1].1, "\r\n.a line starting with a dot\r\n"));
}

#[test]
fn restart_keeps_the_mailbox_its_uids_and_the_ports() {
    let mut server = MailServer::start();
    server.deliver_raw("support", message("support@example.test", "before-1").as_bytes());
    server.deliver_raw("support", message("support@example.test", "before-2").as_bytes());
    let (validity, before) = imap_inbox(&server, "support");
    let (imap_port, smtp_port) = (server.imap_port(), server.smtp_port());

    let mut open = Imap::greeted(connect(server.imap_port()));
    open.login("support", server.password("support"));
    open.select_inbox();
    server.stop();
    assert!(TcpStream::connect(("127.0.0.1", imap_port)).is_err(), "IMAP still listens after stop");
    assert!(TcpStream::connect(("127.0.0.1", smtp_port)).is_err(), "SMTP still listens after stop");
    match open.io.read_to_end(&mut Vec::new()) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("an open IMAP session ends when the server stops: {e}"),
    }

    server.restart();
    assert_eq!((server.imap_port(), server.smtp_port()), (imap_port, smtp_port));
    let (validity_after, after) = imap_inbox(&server, "support");
    assert_eq!(validity_after, validity);
    assert_eq!(after, before, "same UIDs and contents after the restart");

    let mut smtp = Smtp::greeted(connect(server.smtp_port()));
    smtp.ok("EHLO client.test", 250);
    smtp.send("customer@elsewhere.test", "support+after@example.test", &message("support+after@example.test", "after"));
    server.wait_for_messages("support", 3, WAIT);
    let (_, inbox) = imap_inbox(&server, "support");
    assert_eq!(inbox.last().map(|(uid, _)| *uid), Some(3));
    assert!(contains(&inbox[2].1, "Subject: after"));
}

#[test]
fn parallel_servers_keep_their_mail_apart() {
    let started = Instant::now();
    let servers: Vec<MailServer> = std::thread::scope(|s| {
        (0..2).map(|_| s.spawn(MailServer::start)).collect::<Vec<_>>().into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("two mail servers started in parallel in {:?}", started.elapsed());
    for (i, server) in servers.iter().enumerate() {
        let mut smtp = Smtp::greeted(connect(server.smtp_port()));
        smtp.ok("EHLO client.test", 250);
        smtp.send(
            "customer@elsewhere.test",
            "support@example.test",
            &message("support@example.test", &format!("server-{i}")),
        );
    }
    for (i, server) in servers.iter().enumerate() {
        let stored = server.wait_for_messages("support", 1, WAIT);
        assert!(contains(&stored[0], &format!("Subject: server-{i}")), "each server delivers its own queue");
    }
    assert_eq!(servers.iter().map(|s| s.messages("support").len()).collect::<Vec<_>>(), [1, 1]);
    assert_ne!(servers[0].dir(), servers[1].dir());
}

fn tls_client(cert_pem: &str) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("parse cert_pem")).expect("trust it");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS client session over `tcp`, handshake done, checking the server's certificate for `name`.
fn tls(
    config: &Arc<ClientConfig>,
    name: &str,
    tcp: TcpStream,
) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let name = ServerName::try_from(name.to_owned()).expect("a server name");
    let connection = ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let mut stream = StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

#[test]
fn tls_listeners_present_the_generated_certificate() {
    let started = Instant::now();
    let server = MailServer::start_with(MailConfig::default().tls(true));
    eprintln!("TLS mail server started in {:?}", started.elapsed());
    let trusted = tls_client(server.cert_pem().expect("TLS is on"));
    let (imaps, smtps) = (server.imaps_port().expect("IMAPS port"), server.smtps_port().expect("SMTPS port"));
    server.deliver_raw("agent1", message("agent1@example.test", "over-tls").as_bytes());

    // IMAPS, checked against the certificate's IP address name.
    let mut imap = Imap::greeted(tls(&trusted, "127.0.0.1", connect(imaps)).expect("IMAPS handshake"));
    imap.login("agent1", server.password("agent1"));
    imap.select_inbox();
    let fetched = imap.fetch_all();
    assert!(contains(&fetched[0].1, "Subject: over-tls"));

    // IMAP STARTTLS on the plain port.
    let mut plain = Imap::greeted(connect(server.imap_port()));
    let capabilities = plain.run("CAPABILITY");
    assert!(capabilities.iter().any(|r| r.text.contains("STARTTLS")), "IMAP offers STARTTLS");
    plain.run("STARTTLS");
    let upgraded = tls(&trusted, "localhost", plain.io.into_inner()).expect("IMAP STARTTLS handshake");
    let mut imap = Imap { io: BufReader::new(upgraded), tag: 10 };
    imap.login("agent1", server.password("agent1"));
    assert_eq!(imap.select_inbox().1, 1);

    // Submission with STARTTLS and AUTH, relayed through OpenSMTPD into the INBOX.
    let mut smtp = Smtp::greeted(connect(server.submission_port()));
    assert!(smtp.ok("EHLO client.test", 250).contains("STARTTLS"), "submission offers STARTTLS");
    smtp.ok("STARTTLS", 220);
    let mut smtp = Smtp { io: BufReader::new(tls(&trusted, "localhost", smtp.io.into_inner()).expect("STARTTLS")) };
    smtp.ok("EHLO client.test", 250);
    smtp.auth(&server, "support");
    smtp.send("support@example.test", "agent1+tls@example.test", &message("agent1+tls@example.test", "via-starttls"));

    // SMTPS: TLS from the first byte, then the same.
    let mut smtp = Smtp::greeted(tls(&trusted, "localhost", connect(smtps)).expect("SMTPS handshake"));
    smtp.ok("EHLO client.test", 250);
    smtp.auth(&server, "support");
    smtp.send("support@example.test", "agent1@example.test", &message("agent1@example.test", "via-smtps"));
    let stored = server.wait_for_messages("agent1", 3, WAIT);
    let subjects =
        [&stored[1], &stored[2]].map(|m| contains(m, "Subject: via-starttls") || contains(m, "Subject: via-smtps"));
    assert_eq!(subjects, [true, true]);

    // Trust means something: a client trusting another certificate refuses these servers.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("another certificate");
    let stranger = tls_client(&other.cert.pem());
    let refused = tls(&stranger, "localhost", connect(imaps)).expect_err("a stranger's trust store refuses IMAPS");
    let reason = refused.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    assert!(matches!(reason, Some(rustls::Error::InvalidCertificate(_))), "{refused:?}");
}
