//! The email channel against the test mail servers (dovecot and OpenSMTPD, `switchboard-testkit`):
//! the daemon's configuration for them, and reading what arrived in a mailbox.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use switchboard::Config;
use switchboard_channel_email::{AgentMailConfig, MailboxConfig, Security};
use switchboard_testkit::MailServer;

/// How long a mail may take to arrive.
pub const MAIL_WAIT: Duration = Duration::from_secs(30);

/// The email channel of a test daemon: the `support` mailbox read over IMAP, mail sent over SMTP,
/// and agent `alice` working from the `agent1` mailbox. Cheap to clone into the daemon's
/// configuration closure.
#[derive(Debug, Clone)]
pub struct MailSetup {
    host: String,
    imap: u16,
    smtp: u16,
    dir: PathBuf,
    agent: String,
}

impl MailSetup {
    /// Writes the IMAP password and the reply-token key into `dir` for `server`'s mailboxes.
    pub fn new(server: &MailServer, dir: &Path) -> MailSetup {
        std::fs::write(dir.join("imap.pass"), server.password("support")).unwrap();
        std::fs::write(dir.join("token.key"), "e2e-reply-token-signing-key").unwrap();
        MailSetup {
            host: server.host().to_string(),
            imap: server.imap_port(),
            smtp: server.smtp_port(),
            dir: dir.to_path_buf(),
            agent: server.address("agent1"),
        }
    }

    /// Turns the email channel on in `c`, with alice's mailbox as her endpoint.
    pub fn apply(&self, c: &mut Config) {
        let email = &mut c.channels.email;
        email.enabled = true;
        email.address = "support@example.test".into();
        email.token_secret_file = Some(self.dir.join("token.key"));
        email.mailboxes.insert(
            "support".into(),
            MailboxConfig {
                host: self.host.clone(),
                port: self.imap,
                security: Security::None,
                username: "support".into(),
                password_file: Some(self.dir.join("imap.pass")),
                ..MailboxConfig::default()
            },
        );
        email.smtp.host = self.host.clone();
        email.smtp.port = self.smtp;
        email.smtp.security = Security::None;
        email.agents.insert("alice".into(), AgentMailConfig { address: self.agent.clone() });
    }
}

/// The mails in `user`'s mailbox once there are at least `n`, as text with quoted-printable soft
/// line breaks joined (so a long line can be looked for whole).
pub async fn mails(server: &MailServer, user: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        let got = server.messages(user);
        if got.len() >= n {
            return got.into_iter().map(|m| unfold(&String::from_utf8_lossy(&m))).collect();
        }
        assert!(Instant::now() < deadline, "timed out waiting for {n} mail(s) for {user}\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn unfold(mail: &str) -> String {
    mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

/// A header's value (the first of that name, case-insensitively), or "".
pub fn header(mail: &str, name: &str) -> String {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    mail.lines()
        .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_string())
        .unwrap_or_default()
}

/// The address in a `Name <address>` value.
pub fn address_in(value: &str) -> String {
    value.split(['<', '>']).nth(1).unwrap_or(value).to_string()
}
