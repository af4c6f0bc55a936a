//! Exponential back-off, used for reconnects and for redelivery delays.

use std::time::Duration;

use serde::Deserialize;

/// Exponential back-off: `initial`, doubled per attempt, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// Delay before the first retry (`initial_ms` in configuration).
    #[serde(rename = "initial_ms", with = "millis")]
    pub initial: Duration,
    /// Largest delay (`max_ms` in configuration).
    #[serde(rename = "max_ms", with = "millis")]
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { initial: Duration::from_millis(200), max: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// Delay after the `attempt`-th failure (1-based).
    pub fn delay(&self, attempt: u64) -> Duration {
        let shift = attempt.saturating_sub(1).min(20) as u32;
        self.initial.saturating_mul(1u32 << shift).min(self.max)
    }
}

/// Durations in configuration are integers of milliseconds (`initial_ms = 200`).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_caps() {
        let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        let delays: Vec<_> = (1..=6).map(|a| b.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u64::MAX), Duration::from_secs(1));
    }
}
