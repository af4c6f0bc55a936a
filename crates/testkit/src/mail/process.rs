//! Finding the mail server binaries, and stopping a server together with every process it forked.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a panic says when a mail server binary is missing.
pub(crate) const INSTALL_HINT: &str = "run `make tools` (installs Debian's dovecot-imapd dovecot-lmtpd dovecot-submissiond opensmtpd), \
     or `apt-get update && apt-get install -y dovecot-imapd dovecot-lmtpd dovecot-submissiond opensmtpd`";

/// `name` on the `PATH`, or in the sbin directories a non-root `PATH` often lacks; panics with
/// `install` when absent.
pub(crate) fn binary(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let sbin = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(sbin)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("`{name}` not found for the mail test servers: {install}"))
}

/// Panics unless this process is root: dovecot and smtpd start as root and drop to their own users.
pub(crate) fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    assert!(
        uid == Some("0"),
        "the mail test servers need root (dovecot and OpenSMTPD start as root and drop to their users); \
         this process has uid {}",
        uid.unwrap_or("unknown")
    );
}

/// Stops `child`, its descendants and every process titled `title_prefix…`: `SIG<first>` to each
/// as it is found (the root first, so that it respawns none), SIGKILL after `grace`, and returns
/// when all are gone. The title catches children orphaned before the root died.
pub(crate) fn terminate_tree(mut child: Child, first: &str, grace: Duration, title_prefix: Option<&str>) {
    let root = child.id();
    let mut signalled: Vec<u32> = Vec::new();
    let mut sig = first;
    let deadline = Instant::now() + grace;
    loop {
        let mut alive = Vec::new();
        if matches!(child.try_wait(), Ok(None)) {
            alive.push(root);
        }
        let others = descendants(root).into_iter().chain(title_prefix.map(titled).unwrap_or_default());
        for pid in others.chain(signalled.iter().copied()) {
            // Orphans are reparented to a pid 1 that may never reap them: a zombie counts as gone.
            if pid != root && !alive.contains(&pid) && is_running(pid) {
                alive.push(pid);
            }
        }
        if alive.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            assert!(sig != "KILL", "mail server processes {alive:?} survive SIGKILL");
            sig = "KILL";
            signal(&alive, sig);
        } else {
            signal(&alive.iter().copied().filter(|p| !signalled.contains(p)).collect::<Vec<_>>(), sig);
        }
        for pid in alive {
            if !signalled.contains(&pid) {
                signalled.push(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends `SIG<sig>` to `pids` with the shell's `kill` builtin (std has no kill(2) but SIGKILL).
fn signal(pids: &[u32], sig: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{sig} \"$@\" 2>/dev/null"))
        .arg("sh")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Every process below `root` in the process tree, read from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some((ppid, _)) = stat(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

/// The processes whose command line starts with `prefix` (dovecot titles its children `dovecot-<instance>/…`).
fn titled(prefix: &str) -> Vec<u32> {
    let pids = fs::read_dir("/proc").into_iter().flatten().flatten();
    pids.filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| cmd.starts_with(prefix.as_bytes())))
        .collect()
}

/// Whether `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, state)| state != 'Z' && state != 'X')
}

/// The parent pid and state letter of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(u32, char)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may itself hold spaces and parentheses.
    let mut fields = text[text.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// The last `lines` lines of the file at `path`, or a note that it cannot be read.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
