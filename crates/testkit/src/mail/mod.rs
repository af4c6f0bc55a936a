//! Real mail servers on free loopback ports: dovecot (IMAP, LMTP, submission) and OpenSMTPD (SMTP).
//!
//! Mail flows as in production: SMTP client → OpenSMTPD → LMTP → dovecot → maildir ← IMAP client,
//! and an authenticated client may submit through dovecot's submission service, which relays to
//! OpenSMTPD. Both daemons run as this process's children with their configs, queue, maildirs and
//! logs in one temporary directory, so several servers run side by side. They need root (as in CI),
//! leave to create mount namespaces (`unshare`, for OpenSMTPD's fixed queue path), and Debian's
//! `dovecot-imapd dovecot-lmtpd dovecot-submissiond opensmtpd`, which `make tools` installs.

mod conf;
mod process;
mod store;

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use self::conf::{Ports, TlsFiles};
use self::process::{INSTALL_HINT, binary, require_root, tail, terminate_tree};
use crate::{free_port, wait_until};

/// The domain of [`MailServer::address`]; recipients at any other domain are delivered alike.
pub const MAIL_DOMAIN: &str = "example.test";

/// Debian's `mail` user and group, owner of every maildir: dovecot will not deliver as root.
const MAIL_UID: u32 = 8;
const MAIL_GID: u32 = 8;

const START_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Which mailbox users a [`MailServer`] has, and whether it speaks TLS.
#[derive(Clone, Debug)]
pub struct MailConfig {
    users: Vec<(String, String)>,
    tls: bool,
}

impl Default for MailConfig {
    /// Users `support`, `agent1` and `customer`, each with the password `<user>-secret`; no TLS.
    fn default() -> Self {
        MailConfig::empty()
            .user("support", "support-secret")
            .user("agent1", "agent1-secret")
            .user("customer", "customer-secret")
    }
}

impl MailConfig {
    /// No users yet (add them with [`MailConfig::user`]) and no TLS.
    pub fn empty() -> Self {
        MailConfig { users: Vec::new(), tls: false }
    }

    /// Adds the mailbox user `user` (lower-case letters, digits, `.`, `_`, `-`) or changes its password.
    pub fn user(mut self, user: &str, password: &str) -> Self {
        assert!(
            !user.is_empty()
                && user.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
            "mail user name {user:?}: use lower-case letters, digits, '.', '_' and '-'"
        );
        assert!(
            !password.is_empty() && password.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
            "password for {user}: use printable ASCII without spaces or ':'"
        );
        self.users.retain(|(u, _)| u != user);
        self.users.push((user.to_owned(), password.to_owned()));
        self
    }

    /// With TLS: a self-signed certificate for `localhost` and 127.0.0.1 ([`MailServer::cert_pem`]),
    /// IMAP and submission offer STARTTLS, and IMAPS and SMTPS listeners speak TLS from the first byte.
    /// OpenSMTPD's own SMTP port stays plain text (its TLS is broken with Debian 12's OpenSSL 3).
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }
}

/// Running dovecot and OpenSMTPD servers, stopped on drop; the maildirs survive [`MailServer::restart`].
///
/// Recipients map to mailbox users by local part, in any domain and in any case, with a `+tag`
/// dropped: `Support+abc@other.test` lands in user `support`'s INBOX. SMTP rejects a recipient
/// whose local part is no user at `RCPT TO` (5xx); there is no catch-all. IMAP `LOGIN` and SMTP
/// `AUTH PLAIN`/`LOGIN` work even without TLS. The SMTP port takes mail without authentication
/// (like an MX); the submission ports demand it (like a provider's port 587/465).
pub struct MailServer {
    dir: TempDir,
    users: Vec<(String, String)>,
    ports: Ports,
    cert_pem: Option<String>,
    dovecot_bin: PathBuf,
    smtpd_bin: PathBuf,
    unshare_bin: PathBuf,
    dovecot: Option<Child>,
    smtpd: Option<Child>,
}

impl MailServer {
    /// Starts both servers, plain text, with [`MailConfig::default`]'s users; panics loudly when it cannot.
    pub fn start() -> MailServer {
        Self::start_with(MailConfig::default())
    }

    /// Starts both servers with `config`'s users and TLS choice; panics loudly when it cannot.
    pub fn start_with(config: MailConfig) -> MailServer {
        require_root();
        assert!(!config.users.is_empty(), "MailConfig has no users: add one with MailConfig::user");
        let dovecot_bin = binary("dovecot", INSTALL_HINT);
        let smtpd_bin = binary("smtpd", INSTALL_HINT);
        let unshare_bin = binary("unshare", "install Debian's util-linux");
        let dir = tempfile::Builder::new().prefix("sb-mail-").tempdir().expect("create a temporary mail directory");
        let mut server = MailServer {
            dir,
            users: config.users,
            ports: Ports { imap: 0, imaps: None, lmtp: 0, smtp: 0, submission: 0, smtps: None },
            cert_pem: None,
            dovecot_bin,
            smtpd_bin,
            unshare_bin,
            dovecot: None,
            smtpd: None,
        };
        server.prepare_dir(config.tls);
        // Ports are picked free and bound a moment later: another process may take one in between.
        for attempt in 1.. {
            server.ports = pick_ports(config.tls);
            server.write_configs();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) if attempt < 3 && e.contains("Address already in use") => {
                    server.stop();
                    for log in server.log_files() {
                        let _ = fs::remove_file(log);
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!("the start loop returns or panics")
    }

    /// `127.0.0.1`, where every listener is.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The IMAP port (plain text; offers STARTTLS when TLS is on).
    pub fn imap_port(&self) -> u16 {
        self.ports.imap
    }

    /// The IMAPS port (TLS from the first byte), when TLS is on.
    pub fn imaps_port(&self) -> Option<u16> {
        self.ports.imaps
    }

    /// OpenSMTPD's SMTP port: plain text, no authentication, delivers to the users' INBOXes.
    pub fn smtp_port(&self) -> u16 {
        self.ports.smtp
    }

    /// dovecot's submission port: `AUTH` required, STARTTLS offered when TLS is on; relays via SMTP.
    pub fn submission_port(&self) -> u16 {
        self.ports.submission
    }

    /// The SMTPS port (submission with TLS from the first byte, `AUTH` required), when TLS is on.
    pub fn smtps_port(&self) -> Option<u16> {
        self.ports.smtps
    }

    /// dovecot's LMTP port, where OpenSMTPD and [`MailServer::deliver_raw`] hand over mail.
    pub fn lmtp_port(&self) -> u16 {
        self.ports.lmtp
    }

    /// The self-signed certificate (PEM) both servers present, when TLS is on: the one a client trusts.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// The mailbox users' names, in the order they were configured.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|(user, _)| user.as_str())
    }

    /// The IMAP and submission password of `user`; panics for an unknown user.
    pub fn password(&self, user: &str) -> &str {
        match self.users.iter().find(|(u, _)| u == user) {
            Some((_, password)) => password,
            None => panic!("no mail user {user:?}; users are {:?}", self.users().collect::<Vec<_>>()),
        }
    }

    /// `<local>@example.test`; `local` is a user, optionally with a `+tag` (`support+t1`).
    pub fn address(&self, local: &str) -> String {
        let _ = self.password(local.split('+').next().unwrap_or(local));
        format!("{local}@{MAIL_DOMAIN}")
    }

    /// The temporary directory holding configs, maildirs, the SMTP queue and the logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The maildir of `user`'s INBOX (it appears with the first delivery).
    pub fn maildir(&self, user: &str) -> PathBuf {
        let _ = self.password(user);
        self.dir.path().join("mail").join(user)
    }

    /// Puts the raw RFC 5322 message `raw` into a user's INBOX through dovecot's LMTP, so IMAP sees it
    /// with a UID when this returns; `recipient` is a user, `user+tag` or a full address.
    pub fn deliver_raw(&self, recipient: &str, raw: &[u8]) {
        let address = if recipient.contains('@') { recipient.to_owned() } else { self.address(recipient) };
        if let Err(e) = store::lmtp_deliver(self.ports.lmtp, &address, raw) {
            panic!("deliver a message to {address} over LMTP: {e}\n{}", self.logs());
        }
    }

    /// The raw messages in `user`'s INBOX in delivery (UID) order, as dovecot stored them (LF line ends).
    pub fn messages(&self, user: &str) -> Vec<Vec<u8>> {
        store::read_maildir(&self.maildir(user))
    }

    /// Waits until `user`'s INBOX holds at least `count` messages and returns them all; panics on timeout.
    pub fn wait_for_messages(&self, user: &str, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        wait_until(&format!("{count} message(s) in {user}'s INBOX"), timeout, || {
            messages = self.messages(user);
            messages.len() >= count
        });
        messages
    }

    /// The last lines of dovecot's and OpenSMTPD's logs, for a failing test's message.
    pub fn logs(&self) -> String {
        self.log_files().iter().map(|log| format!("--- {} ---\n{}\n", log.display(), tail(log, 40))).collect()
    }

    /// Stops both servers and waits until every process they started is gone; maildirs and queue stay.
    ///
    /// OpenSMTPD gets SIGTERM and dovecot SIGKILL, as in a crash: a terminated dovecot master lingers
    /// for seconds, and an LMTP delivery is on disk before dovecot acknowledges it.
    pub fn stop(&mut self) {
        if let Some(smtpd) = self.smtpd.take() {
            terminate_tree(smtpd, "TERM", STOP_GRACE, None);
        }
        if let Some(dovecot) = self.dovecot.take() {
            let titles = format!("dovecot-{}/", instance_tag(self.dir.path()));
            terminate_tree(dovecot, "KILL", STOP_GRACE, Some(&titles));
        }
    }

    /// Stops and starts both servers again on the same ports, maildirs and queue.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn() {
            panic!("restart: {e}");
        }
    }

    /// Creates the directory layout; dovecot's unprivileged processes must be able to traverse it.
    fn prepare_dir(&mut self, tls: bool) {
        let dir = self.dir.path().to_owned();
        set_mode(&dir, 0o711);
        for (sub, mode) in [("mail", 0o700), ("smtpd-spool", 0o711), ("smtpd-run", 0o755)] {
            fs::create_dir(dir.join(sub)).unwrap_or_else(|e| panic!("create {}/{sub}: {e}", dir.display()));
            set_mode(&dir.join(sub), mode);
        }
        std::os::unix::fs::chown(dir.join("mail"), Some(MAIL_UID), Some(MAIL_GID))
            .unwrap_or_else(|e| panic!("chown {}/mail to the mail user: {e}", dir.display()));
        if tls {
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            let generated = rcgen::generate_simple_self_signed(names).expect("generate a self-signed certificate");
            let cert_pem = generated.cert.pem();
            write_file(&dir.join("cert.pem"), cert_pem.as_bytes(), 0o644);
            write_file(&dir.join("key.pem"), generated.signing_key.serialize_pem().as_bytes(), 0o600);
            self.cert_pem = Some(cert_pem);
        }
    }

    fn write_configs(&self) {
        let dir = self.dir.path();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let tls = self.cert_pem.as_ref().map(|_| TlsFiles { cert: &cert, key: &key });
        let tag = instance_tag(dir);
        write_file(&dir.join("passwd"), conf::passwd(dir, &self.users).as_bytes(), 0o644);
        write_file(&dir.join("dovecot.conf"), conf::dovecot(dir, &tag, &self.ports, tls.as_ref()).as_bytes(), 0o644);
        // OpenSMTPD refuses a config file that others can read.
        write_file(&dir.join("smtpd.conf"), conf::smtpd(&tag, &self.ports, &self.users).as_bytes(), 0o600);
    }

    fn log_files(&self) -> [PathBuf; 3] {
        let dir = self.dir.path();
        [dir.join("dovecot.log"), dir.join("dovecot.out"), dir.join("smtpd.log")]
    }

    /// Starts dovecot, then OpenSMTPD, each awaited until it greets as this instance on its ports.
    fn spawn(&mut self) -> Result<(), String> {
        let dir = self.dir.path().to_owned();
        let tag = instance_tag(&dir);
        let ports = self.ports;
        // A master.pid left by a killed master makes dovecot think it already runs.
        let _ = fs::remove_file(dir.join("run/master.pid"));
        let mut dovecot = Command::new(&self.dovecot_bin);
        dovecot.arg("-F").arg("-c").arg(dir.join("dovecot.conf"));
        let child = spawn_logged(dovecot, &dir.join("dovecot.out"))?;
        let child = self.dovecot.insert(child);
        let logs = [dir.join("dovecot.log"), dir.join("dovecot.out")];
        await_ready(child, "dovecot", &logs, || {
            greets(ports.imap, "* OK", &tag)
                && greets(ports.lmtp, "220", &tag)
                && greets(ports.submission, "220", &tag)
                && [ports.imaps, ports.smtps]
                    .into_iter()
                    .flatten()
                    .all(|p| TcpStream::connect(("127.0.0.1", p)).is_ok())
        })?;

        // OpenSMTPD's queue and control socket are fixed paths: give each instance its own, in a
        // private mount namespace, so parallel servers neither collide nor deliver each other's mail.
        let mut smtpd = Command::new(&self.unshare_bin);
        smtpd
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$1" /var/spool && mount --bind "$2" /var/run && exec "$3" -d -f "$4""#)
            .arg("sh")
            .args([dir.join("smtpd-spool"), dir.join("smtpd-run"), self.smtpd_bin.clone(), dir.join("smtpd.conf")]);
        let child = spawn_logged(smtpd, &dir.join("smtpd.log"))?;
        let child = self.smtpd.insert(child);
        await_ready(child, "OpenSMTPD", &[dir.join("smtpd.log")], || greets(ports.smtp, "220", &tag))
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Distinct free ports for every listener.
fn pick_ports(tls: bool) -> Ports {
    let mut taken = Vec::new();
    let mut next = || loop {
        let port = free_port();
        if !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    };
    let (imap, lmtp, smtp, submission) = (next(), next(), next(), next());
    let (imaps, smtps) = if tls { (Some(next()), Some(next())) } else { (None, None) };
    Ports { imap, imaps, lmtp, smtp, submission, smtps }
}

/// The name both servers greet with, so a readiness probe never mistakes another server on a reused port.
fn instance_tag(dir: &Path) -> String {
    dir.file_name().and_then(|n| n.to_str()).unwrap_or("sb-mail").to_ascii_lowercase()
}

/// Whether a server on `port` sends a greeting starting with `code` that names `tag`.
fn greets(port: u16, code: &str, tag: &str) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with(code) && line.contains(tag)
}

fn spawn_logged(mut command: Command, log: &Path) -> Result<Child, String> {
    let open = || fs::OpenOptions::new().create(true).append(true).open(log);
    let (out, err) = match (open(), open()) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => return Err(format!("open {}: {e}", log.display())),
    };
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}; {INSTALL_HINT}", command.get_program()))
}

/// Polls `ready` until it holds; an exit or a timeout becomes an error carrying the logs' tails.
fn await_ready(child: &mut Child, what: &str, logs: &[PathBuf], mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let failure = match child.try_wait() {
            Ok(Some(status)) => format!("{what} exited at start ({status})"),
            Err(e) => format!("{what}: {e}"),
            Ok(None) if ready() => return Ok(()),
            Ok(None) if Instant::now() >= deadline => format!("{what} not ready after {START_TIMEOUT:?}"),
            Ok(None) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let tails: String = logs.iter().map(|log| format!("\n--- {} ---\n{}", log.display(), tail(log, 30))).collect();
        return Err(format!("{failure}; if a package is missing, {INSTALL_HINT}{tails}"));
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}
