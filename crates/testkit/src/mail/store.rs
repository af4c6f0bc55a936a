//! Putting messages into dovecot over LMTP and reading them back from its maildirs.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Delivers `raw` to `recipient` through dovecot's LMTP listener; the error names the failing step.
pub(crate) fn lmtp_deliver(port: u16, recipient: &str, raw: &[u8]) -> Result<(), String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect to LMTP port {port}: {e}"))?;
    let timeout = Some(Duration::from_secs(10));
    stream.set_read_timeout(timeout).and_then(|()| stream.set_write_timeout(timeout)).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    expect(&mut reader, "greeting", "220")?;
    let steps = [
        ("LHLO testkit.localhost\r\n".to_owned(), "250"),
        ("MAIL FROM:<testkit@localhost>\r\n".to_owned(), "250"),
        (format!("RCPT TO:<{recipient}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
    ];
    for (command, code) in steps {
        writer.write_all(command.as_bytes()).map_err(|e| format!("send {}: {e}", command.trim_end()))?;
        expect(&mut reader, command.trim_end(), code)?;
    }
    writer.write_all(&dot_stuffed(raw)).map_err(|e| format!("send message: {e}"))?;
    // LMTP answers DATA once per accepted recipient: the one reply says whether dovecot saved it.
    expect(&mut reader, "end of DATA", "250")?;
    let _ = writer.write_all(b"QUIT\r\n");
    Ok(())
}

/// Reads one possibly multi-line reply and checks its code.
fn expect(reader: &mut impl BufRead, after: &str, code: &str) -> Result<(), String> {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err(format!("LMTP closed the connection after {after}: {reply}")),
            Ok(_) => reply.push_str(&line),
            Err(e) => return Err(format!("LMTP reply to {after}: {e}")),
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    if reply.starts_with(code) { Ok(()) } else { Err(format!("LMTP answered {after} with {}", reply.trim_end())) }
}

/// `raw` as DATA: CRLF line ends, leading dots doubled, and the terminating `.` line.
fn dot_stuffed(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// The messages of the maildir at `maildir`, in UID order (delivery order); each as dovecot stored it.
pub(crate) fn read_maildir(maildir: &Path) -> Vec<Vec<u8>> {
    // IMAP clients move files from new/ to cur/ at any moment: rescan when a listed file vanished.
    for _ in 0..100 {
        match try_read_maildir(maildir) {
            Ok(messages) => return messages,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot read maildir {}: {e}", maildir.display()),
        }
    }
    panic!("maildir {} keeps changing under the reader", maildir.display());
}

/// A message file found in a maildir, with what orders it.
struct Entry {
    uid: Option<u32>,
    delivered: (u64, u64),
    base: String,
    path: PathBuf,
}

fn try_read_maildir(maildir: &Path) -> io::Result<Vec<Vec<u8>>> {
    let uids = uidlist(maildir);
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        let entries = match fs::read_dir(maildir.join(sub)) {
            Ok(entries) => entries,
            // Before the first delivery the maildir does not exist.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let base = name.split(':').next().unwrap_or(&name).to_owned();
            found.push(Entry { uid: uids.get(&base).copied(), delivered: timestamp(&base), base, path: entry.path() });
        }
    }
    // A message without a UID yet sorts after those with one, by its delivery timestamp.
    found.sort_by(|a, b| {
        (a.uid.is_none(), a.uid, a.delivered, &a.base).cmp(&(b.uid.is_none(), b.uid, b.delivered, &b.base))
    });
    found.dedup_by(|a, b| a.base == b.base);
    found.into_iter().map(|entry| fs::read(entry.path)).collect()
}

/// File base name to UID, from dovecot's `dovecot-uidlist` (`<uid> [<ext>...] :<base name>` lines).
fn uidlist(maildir: &Path) -> HashMap<String, u32> {
    let text = fs::read_to_string(maildir.join("dovecot-uidlist")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (head, name) = line.split_once(" :")?;
            Some((name.to_owned(), head.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// Seconds and microseconds from a maildir base name such as `1795447326.M778842P16627.host,S=632`.
fn timestamp(base: &str) -> (u64, u64) {
    let mut parts = base.split('.');
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
    let micros = parts
        .next()
        .and_then(|s| s.strip_prefix('M'))
        .map(|s| s.chars().take_while(char::is_ascii_digit).collect::<String>())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (secs, micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_gets_crlf_line_ends_and_doubled_leading_dots() {
        assert_eq!(dot_stuffed(b"A: b\n\n.hidden\r\nend"), b"A: b\r\n\r\n..hidden\r\nend\r\n.\r\n");
    }

    #[test]
    fn maildir_names_sort_by_their_delivery_time() {
        assert_eq!(timestamp("1795447326.M778842P16627.vm,S=632,W=652"), (1795447326, 778842));
        assert!(timestamp("1795447326.M9P1.vm") < timestamp("1795447326.M10P1.vm"));
    }
}
