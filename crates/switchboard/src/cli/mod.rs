//! The operators' commands: `switchboard status`, `switchboard dlq`, `switchboard agents`.
//!
//! Each command collects what it reports into a serialisable value first, so that `--format
//! json` prints exactly what the text table shows (with stable field names), and the tests call
//! the same functions as the binary.

pub mod agents;
pub mod args;
pub mod dlq;
pub mod progress;
pub mod status;
mod table;

use std::time::Duration;

use anyhow::Context;
use switchboard_bus::Bus;

use crate::config::Config;

pub use table::Table;

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Tables for a person.
    #[default]
    Text,
    /// One JSON document with stable field names.
    Json,
}

/// What a command prints and the exit code it ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Printed on stdout.
    pub stdout: String,
    /// 0 when all is well; see each command for the others.
    pub code: u8,
}

/// Exit code: something is wrong (status found a problem, a command was rejected or failed).
pub const EXIT_PROBLEM: u8 = 1;
/// Exit code: the configuration file is invalid (as for the other commands).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code: the command was stored but no router confirmed it in time.
pub const EXIT_PENDING: u8 = 3;

/// The routing groups whose leading routers the commands ask.
pub fn routing_groups(config: &Config) -> Vec<String> {
    config.layout().map(|l| l.names().map(str::to_string).collect()).unwrap_or_default()
}

/// Connects once (no retry: an operator wants to hear at once that NATS is unreachable).
pub async fn connect(config: &Config) -> anyhow::Result<Bus> {
    // The bus error already names the URL and the cause; anyhow's chain would repeat the cause.
    Bus::connect_once(&config.nats).await.map_err(|e| anyhow::anyhow!("{e}"))
}

/// Sends a request to a group's leading router and parses its JSON answer.
pub async fn ask_router<T: serde::de::DeserializeOwned>(
    bus: &Bus,
    subject: String,
    group: &str,
    wait: Duration,
) -> anyhow::Result<T> {
    let request = bus.client().request(subject, bytes::Bytes::new());
    let answer = tokio::time::timeout(wait, request)
        .await
        .map_err(|_| anyhow::anyhow!("no router of group `{group}` answered within {} s", wait.as_secs_f64()))?
        .with_context(|| format!("no router of group `{group}` is leading"))?;
    serde_json::from_slice(&answer.payload).with_context(|| format!("the router of group `{group}` answered garbage"))
}

/// A duration for a person: `42s`, `5m10s`, `3h02m`, `2d04h`.
pub fn human_age(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    let s = secs as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Seconds from a NATS timestamp (the server's clock) to now (ours).
pub(crate) fn secs_since(at: async_nats::datetime::DateTime) -> f64 {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX) as i128;
    (now - at.unix_timestamp_nanos()) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_like_a_person_writes_them() {
        assert_eq!(super::human_age(0.4), "0s");
        assert_eq!(super::human_age(59.9), "59s");
        assert_eq!(super::human_age(310.0), "5m10s");
        assert_eq!(super::human_age(3.0 * 3600.0 + 120.0), "3h02m");
        assert_eq!(super::human_age(2.0 * 86_400.0 + 4.0 * 3600.0), "2d04h");
        assert_eq!(super::human_age(-1.0), "-");
    }
}
