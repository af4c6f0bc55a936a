//! Progress of a long run (`simulate`, `stats`) on stderr: one line rewritten in place a few
//! times a second, only when stderr is a terminal, so piped or redirected output stays clean.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Nothing is shown for runs shorter than this, so quick runs do not flicker.
const FIRST_AFTER: Duration = Duration::from_millis(300);
/// At most one update per this long.
const EVERY: Duration = Duration::from_millis(200);

/// A progress line on stderr.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// Shown when stderr is a terminal, silent otherwise.
    pub fn stderr() -> Progress {
        Progress::new(std::io::stderr().is_terminal())
    }

    /// A progress line that is shown only when `enabled`.
    pub fn new(enabled: bool) -> Progress {
        Progress { enabled, started: Instant::now(), last: None }
    }

    /// Rewrites the line with `line()`, unless the last update was too recent (then `line` is
    /// not called at all).
    pub fn update(&mut self, line: impl FnOnce() -> String) {
        if !self.enabled || self.started.elapsed() < FIRST_AFTER || self.last.is_some_and(|l| l.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{}\x1b[K", line());
        let _ = err.flush();
    }

    /// Clears the line, if one was shown, so that what follows starts on a clean line.
    pub fn finish(&mut self) {
        if self.last.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `120000` as `120,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(40_000), "40,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn a_disabled_line_never_asks_for_its_text() {
        let mut p = Progress::new(false);
        std::thread::sleep(FIRST_AFTER);
        p.update(|| panic!("not shown, not computed"));
    }
}
