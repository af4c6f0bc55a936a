//! Inbound outcome counters: every inbound item (a mail, a Telegram update, a webhook request, a
//! web chat message) ends in exactly one counted [`InboundOutcome`], exposed on `/metrics` as
//! `switchboard_inbound_total{channel, outcome}`.
//!
//! The counters belong to the process that decided the outcome: an adapter counts what it settles
//! itself (a duplicate, a mail not routed, a dead letter, a refused request), the router counts
//! what reached it (routed, or dead-lettered by the router). An item an adapter stored is counted
//! once, by the router, so over every process of an installation the counts add up to the items
//! taken in (`sum by (channel, outcome)` in Prometheus).
//!
//! They are process-wide because one process may run several channels and the router, and its
//! `/metrics` answers for all of them.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// Distinct channel labels kept; further names count under [`OTHER_CHANNEL`], so a client that
/// can publish on `sb.in.*` cannot grow the table without bound.
pub const MAX_CHANNELS: usize = 64;

/// The channel label that counts the names beyond [`MAX_CHANNELS`].
pub const OTHER_CHANNEL: &str = "other";

/// The one outcome of an inbound item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InboundOutcome {
    /// The router took it onto a conversation (new, ongoing or reopened).
    Routed,
    /// The same provider item was stored before (a re-delivery); nothing new.
    Duplicate,
    /// Deliberately not routed: an auto-reply, bulk or list mail, our own mail, a bounce, an
    /// agent's reply, a survey answer, an edit, a kind of message the channel cannot carry.
    NotRouted,
    /// Kept in the dead-letter stream with a reason an operator can read.
    DeadLetter,
    /// Refused before anything was stored (bad signature, bad JSON, over a limit): the sender
    /// was told, nothing changed.
    Rejected,
}

impl InboundOutcome {
    /// Every outcome, in the order they are exposed.
    pub const ALL: [InboundOutcome; 5] = [
        InboundOutcome::Routed,
        InboundOutcome::Duplicate,
        InboundOutcome::NotRouted,
        InboundOutcome::DeadLetter,
        InboundOutcome::Rejected,
    ];

    /// The label value, e.g. `not_routed`.
    pub fn as_str(self) -> &'static str {
        match self {
            InboundOutcome::Routed => "routed",
            InboundOutcome::Duplicate => "duplicate",
            InboundOutcome::NotRouted => "not_routed",
            InboundOutcome::DeadLetter => "dead_letter",
            InboundOutcome::Rejected => "rejected",
        }
    }
}

type Table = BTreeMap<String, [u64; InboundOutcome::ALL.len()]>;

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// Counts one inbound item of `channel` with `outcome`.
pub fn record(channel: &str, outcome: InboundOutcome) {
    let mut t = table().lock().unwrap_or_else(|p| p.into_inner());
    let key = if t.contains_key(channel) || t.len() < MAX_CHANNELS { channel } else { OTHER_CHANNEL };
    let row = t.entry(key.to_string()).or_default();
    row[InboundOutcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0)] += 1;
}

/// Makes `channel` appear on `/metrics` with zero counts before its first item, so a rate over
/// it is defined from the start.
pub fn register(channel: &str) {
    let mut t = table().lock().unwrap_or_else(|p| p.into_inner());
    if t.len() < MAX_CHANNELS {
        t.entry(channel.to_string()).or_default();
    }
}

/// The counts so far: `(channel, outcome, count)` for every channel seen and every outcome.
pub fn snapshot() -> Vec<(String, InboundOutcome, u64)> {
    let t = table().lock().unwrap_or_else(|p| p.into_inner());
    t.iter()
        .flat_map(|(channel, row)| InboundOutcome::ALL.iter().zip(row).map(|(o, n)| (channel.clone(), *o, *n)))
        .collect()
}

/// The count of one channel and outcome so far (0 when never counted).
pub fn count(channel: &str, outcome: InboundOutcome) -> u64 {
    snapshot().into_iter().find(|(c, o, _)| c == channel && *o == outcome).map(|(_, _, n)| n).unwrap_or(0)
}

/// The counters in the OpenMetrics text format: the counter family `switchboard_inbound`, whose
/// samples are `switchboard_inbound_total{channel, outcome}`.
pub fn exposition() -> String {
    let mut out = String::from(
        "# HELP switchboard_inbound Inbound items by channel and their one outcome (counted by the process that decided it).\n# TYPE switchboard_inbound counter\n",
    );
    for (channel, outcome, n) in snapshot() {
        let channel = channel.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        out.push_str(&format!(
            "switchboard_inbound_total{{channel=\"{channel}\",outcome=\"{}\"}} {n}\n",
            outcome.as_str()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_channel_and_outcome() {
        record("unit-a", InboundOutcome::Routed);
        record("unit-a", InboundOutcome::Routed);
        record("unit-a", InboundOutcome::DeadLetter);
        assert_eq!(count("unit-a", InboundOutcome::Routed), 2);
        assert_eq!(count("unit-a", InboundOutcome::DeadLetter), 1);
        assert_eq!(count("unit-a", InboundOutcome::Duplicate), 0);
        let text = exposition();
        assert!(text.contains("switchboard_inbound_total{channel=\"unit-a\",outcome=\"routed\"} 2\n"), "{text}");
    }
}
