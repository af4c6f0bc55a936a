//! The configuration files of one mail server instance, all under its temporary directory.

use std::fmt::Write as _;
use std::path::Path;

use super::{MAIL_GID, MAIL_UID};

/// The ports one instance listens on, all on 127.0.0.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ports {
    pub imap: u16,
    pub imaps: Option<u16>,
    pub lmtp: u16,
    pub smtp: u16,
    pub submission: u16,
    pub smtps: Option<u16>,
}

/// Where an instance keeps its certificate and key, when it has TLS.
pub(crate) struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// dovecot.conf: IMAP, LMTP and submission on loopback, users from a passwd-file, maildirs under
/// `dir/mail`; submission relays to OpenSMTPD's plain listener.
pub(crate) fn dovecot(dir: &Path, tag: &str, ports: &Ports, tls: Option<&TlsFiles<'_>>) -> String {
    let d = dir.display();
    let mut conf = format!(
        "base_dir = {d}/run\n\
         state_dir = {d}/state\n\
         log_path = {d}/dovecot.log\n\
         instance_name = {tag}\n\
         # Greetings name the instance, so a readiness probe cannot mistake another server for it.\n\
         login_greeting = {tag} ready\n\
         hostname = {tag}.localhost\n\
         protocols = imap lmtp submission\n\
         listen = 127.0.0.1\n\
         disable_plaintext_auth = no\n\
         auth_mechanisms = plain login\n\
         # Tests try wrong passwords on purpose: answer them at once, and delay no later login\n\
         # (mode 0 on anvil's penalty socket is dovecot's way to turn the auth penalty off).\n\
         auth_failure_delay = 0\n\
         service anvil {{\n  unix_listener anvil-auth-penalty {{\n    mode = 0\n  }}\n}}\n\
         # Lower-case local part only: LMTP gets `Support+tag@any.domain` and IMAP logins may carry a domain.\n\
         auth_username_format = %Ln\n\
         recipient_delimiter = +\n\
         lmtp_save_to_detail_mailbox = no\n\
         mail_location = maildir:{d}/mail/%u\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
         userdb {{\n  driver = passwd-file\n  args = username_format=%u {d}/passwd\n}}\n\
         # dovecot refuses to run its login and internal processes as root.\n\
         default_internal_user = dovecot\n\
         default_internal_group = dovecot\n\
         default_login_user = dovenull\n\
         first_valid_uid = {MAIL_UID}\n\
         submission_relay_host = 127.0.0.1\n\
         submission_relay_port = {smtp}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp}\n  }}\n}}\n",
        lmtp = ports.lmtp,
        smtp = ports.smtp,
    );
    match tls {
        Some(tls) => {
            let _ = write!(conf, "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n", tls.cert.display(), tls.key.display());
        }
        None => conf.push_str("ssl = no\n"),
    }
    // Port 0 turns off the implicit-TLS listeners dovecot has by default.
    let service = |login: &str, plain: &str, plain_port: u16, tls_name: &str, tls_port: Option<u16>| {
        let tls_listener = match tls_port {
            Some(port) => format!("address = 127.0.0.1\n    port = {port}\n    ssl = yes"),
            None => "port = 0".to_owned(),
        };
        format!(
            "service {login} {{\n  inet_listener {plain} {{\n    address = 127.0.0.1\n    port = {plain_port}\n  }}\n  \
             inet_listener {tls_name} {{\n    {tls_listener}\n  }}\n}}\n"
        )
    };
    conf.push_str(&service("imap-login", "imap", ports.imap, "imaps", ports.imaps));
    conf.push_str(&service("submission-login", "submission", ports.submission, "submissions", ports.smtps));
    conf
}

/// The passwd-file: plain-text passwords, every user mapped to the `mail` uid with a home under `dir/mail`.
pub(crate) fn passwd(dir: &Path, users: &[(String, String)]) -> String {
    users
        .iter()
        .map(|(user, password)| {
            format!("{user}:{{PLAIN}}{password}:{MAIL_UID}:{MAIL_GID}::{}/mail/{user}\n", dir.display())
        })
        .collect()
}

/// smtpd.conf: every recipient whose local part (before any `+tag`) is a user goes to dovecot over LMTP.
///
/// Plain text only: Debian 12's OpenSMTPD 6.8 fails every TLS handshake with OpenSSL 3 ("EVP lib",
/// OpenSMTPD issues #1171 and #1239), so TLS submission is dovecot's, relaying here.
pub(crate) fn smtpd(tag: &str, ports: &Ports, users: &[(String, String)]) -> String {
    // OpenSMTPD only delivers for existing system users, never root: all map to `mail`. Its virtual
    // lookup drops the `+tag` and tries the bare local part for any domain, so unknown users fail at RCPT.
    let table: Vec<String> = users.iter().map(|(user, _)| format!("\"{user}\" = \"mail\"")).collect();
    format!(
        "table users {{ {} }}\n\
         listen on 127.0.0.1 port {} hostname {tag}.localhost\n\
         action \"deliver\" lmtp \"127.0.0.1:{}\" rcpt-to virtual <users>\n\
         match from any for any action \"deliver\"\n",
        table.join(", "),
        ports.smtp,
        ports.lmtp
    )
}
