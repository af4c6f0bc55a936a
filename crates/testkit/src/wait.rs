//! Waiting on conditions instead of sleeping.

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Polls `condition` every 10 ms until it holds or `timeout` passes; panics naming `what` on timeout.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that no other test process was handed
/// in the last two minutes.
///
/// Tests run in parallel processes, and many start servers on a port chosen first and bound a bit
/// later; the operating system may hand the same free port to two of them in that gap. The ports
/// handed out are kept in a small file shared by every test process on the machine (locked while
/// read and written), so the same port is not given twice while its server is still starting.
pub fn free_port() -> u16 {
    let registry = std::env::temp_dir().join("switchboard-testkit-ports");
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&registry);
    let Ok(mut file) = file else { return os_free_port() };
    if file.lock().is_err() {
        return os_free_port();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut file, &mut text);
    let mut taken: Vec<(u16, u64)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(p, t)| Some((p.parse().ok()?, t.parse().ok()?)))
        .filter(|(_, at)| now.saturating_sub(*at) < 120)
        .collect();
    let port =
        (0..100).map(|_| os_free_port()).find(|p| !taken.iter().any(|(t, _)| t == p)).unwrap_or_else(os_free_port);
    taken.push((port, now));
    let text: String = taken.iter().map(|(p, at)| format!("{p} {at}\n")).collect();
    let _ = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0));
    let _ = file.set_len(0);
    let _ = std::io::Write::write_all(&mut file, text.as_bytes());
    let _ = file.unlock();
    port
}

/// A port the operating system says is free now.
fn os_free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("local address of a bound socket").port()
}
