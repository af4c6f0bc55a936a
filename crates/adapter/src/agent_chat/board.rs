//! A team's live queue as one message that is edited in place (a Matrix team room, a Slack
//! channel): the waiting conversations of the team in the order they will be offered, with how
//! long each has waited and its SLA time left. The leading routers are asked for the queue when
//! an event says something changed (at most every [`MIN_GAP`]) and every [`EVERY`] (SLA time
//! runs on without events); the platform is asked to show a team's board only when its text
//! changed, so a quiet queue costs no edits.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use switchboard_bus::Bus;
use switchboard_core::contract::{buckets, subjects};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use uuid::Uuid;

use super::{Markup, Plain};

/// The shortest time between two looks at the queue.
const MIN_GAP: Duration = Duration::from_secs(2);
/// The longest time between two looks at the queue.
const EVERY: Duration = Duration::from_secs(30);
/// How long a leading router has to answer.
const ASK_WAIT: Duration = Duration::from_secs(3);
/// The most conversations a board lists; the rest are counted.
pub const MAX_LISTED: usize = 10;
/// The most customer names remembered between looks.
const NAMES_KEPT: usize = 1000;

/// One waiting conversation, as a leading router lists it (`GET /v1/queue`'s items).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Waiting {
    /// The conversation.
    pub conversation_id: Uuid,
    /// Its short code (`K4F2`).
    #[serde(default)]
    pub code: String,
    /// The customer's name (or id), from the conversation's record.
    #[serde(default)]
    pub customer: Option<String>,
    /// The customer's channel.
    #[serde(default)]
    pub channel: String,
    /// The team it waits for.
    pub team: String,
    /// Its tier (`L1`).
    pub tier: String,
    /// Its priority (higher first).
    pub priority: i64,
    /// Waiting since, ms since the epoch.
    pub waiting_since: i64,
    /// First-response deadline, ms since the epoch.
    pub sla_deadline: i64,
}

/// One team's queue at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSnapshot {
    /// The team.
    pub team: String,
    /// What waits for it, in the order it will be offered.
    pub waiting: Vec<Waiting>,
    /// When the queue was asked for.
    pub at: DateTime<Utc>,
}

/// Keeps the boards of some teams up to date.
pub struct QueueBoard {
    groups: Vec<String>,
    teams: Vec<String>,
}

impl QueueBoard {
    /// Boards for `teams`, whose conversations the leading routers of `groups` hold.
    pub fn new(groups: Vec<String>, teams: Vec<String>) -> QueueBoard {
        QueueBoard { groups, teams }
    }

    /// Runs until `stop`: calls `show` with a team's snapshot whenever its board's text changed
    /// (and again after `show` failed). A queue nobody answers for is not shown as empty: the
    /// last board stays until the routers answer again.
    pub async fn run<F, Fut>(self, bus: Bus, stop: CancellationToken, mut show: F) -> Result<(), String>
    where
        F: FnMut(QueueSnapshot) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        if self.teams.is_empty() {
            return Ok(());
        }
        // Only a wake-up: any message on `sb.events.>` (a single event or the router's batch of
        // a step's events) is never read, just a reason to ask the routers again.
        let mut events = bus
            .client()
            .subscribe(subjects::event(">"))
            .await
            .map_err(|e| format!("subscribe to events for the queue board: {e}"))?;
        let mut shown: BTreeMap<String, String> = BTreeMap::new();
        let mut names: HashMap<Uuid, Option<String>> = HashMap::new();
        let mut due = Some(Instant::now());
        let mut last = Instant::now() - EVERY;
        loop {
            let wake = due.unwrap_or(last + EVERY).max(last + MIN_GAP);
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                event = events.next() => match event {
                    Some(_) => { due.get_or_insert(Instant::now()); }
                    None => return Err("the event subscription ended".into()),
                },
                _ = tokio::time::sleep_until(wake) => {
                    last = Instant::now();
                    due = None;
                    // Unanswered: looked at again on the next event, or after `EVERY`.
                    let Some(waiting) = self.ask(&bus).await else { continue };
                    let at = Utc::now();
                    for team in &self.teams {
                        let mut mine: Vec<Waiting> = waiting.iter().filter(|w| &w.team == team).cloned().collect();
                        name_customers(&bus, &mut mine, &mut names).await;
                        let snapshot = QueueSnapshot { team: team.clone(), waiting: mine, at };
                        // The stamp is left out: a board whose content holds is not edited
                        // every minute just to move its time.
                        let text = board_content(&Plain, &snapshot);
                        if shown.get(team) == Some(&text) {
                            continue;
                        }
                        match show(snapshot).await {
                            Ok(()) => { shown.insert(team.clone(), text); }
                            Err(e) => {
                                warn!(team = %team, error = %e, "cannot show the queue board");
                                due = Some(last + MIN_GAP);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Every group's queue, group by group; `None` when a group's leader did not answer.
    async fn ask(&self, bus: &Bus) -> Option<Vec<Waiting>> {
        let asks = self.groups.iter().map(|group| {
            let request = bus.client().request(subjects::router_queue(group), Default::default());
            async move { (group, tokio::time::timeout(ASK_WAIT, request).await) }
        });
        let mut all = Vec::new();
        for (group, answer) in futures::future::join_all(asks).await {
            let Ok(Ok(m)) = answer else {
                debug!(group = %group, "no leading router answered for the queue board");
                return None;
            };
            match serde_json::from_slice::<Vec<Waiting>>(&m.payload) {
                Ok(items) => all.extend(items),
                Err(e) => {
                    warn!(group = %group, error = %e, "the router's queue is unreadable");
                    return None;
                }
            }
        }
        Some(all)
    }
}

/// Fills in the customers' names of the listed conversations from their records (remembered,
/// so a name is read once).
async fn name_customers(bus: &Bus, waiting: &mut [Waiting], names: &mut HashMap<Uuid, Option<String>>) {
    if names.len() > NAMES_KEPT {
        names.clear();
    }
    let Ok(kv) = bus.jetstream().get_key_value(buckets::CONVERSATIONS).await else { return };
    for w in waiting.iter_mut().take(MAX_LISTED) {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(w.conversation_id) {
            let record = kv.get(w.conversation_id.to_string()).await.ok().flatten();
            let name = record.and_then(|r| serde_json::from_slice::<serde_json::Value>(&r).ok()).and_then(|r| {
                let customer = &r["customer"];
                customer["name"].as_str().or(customer["id"].as_str()).map(str::to_string)
            });
            slot.insert(name);
        }
        w.customer = names.get(&w.conversation_id).cloned().flatten();
    }
}

/// Minutes for people: `4 min`, `2 h 05 min`.
fn minutes(ms: i64) -> String {
    let m = ms.max(0) / 60_000;
    match m {
        0..60 => format!("{m} min"),
        _ => format!("{} h {:02} min", m / 60, m % 60),
    }
}

/// A team's board: its content and the time it was last changed (to the minute). The board is
/// edited only when its content changes, so an unchanged empty queue keeps its time.
pub fn render_board<M: Markup>(m: &M, snapshot: &QueueSnapshot) -> String {
    let mut out = board_content(m, snapshot);
    let stamp = snapshot.at.format("%H:%M UTC");
    let _ = write!(out, "\n{}", m.italic(&format!("Updated {stamp}")));
    out
}

/// A board without its time: a heading with the count, the oldest wait and how many are past
/// their SLA, and one line per listed conversation.
fn board_content<M: Markup>(m: &M, snapshot: &QueueSnapshot) -> String {
    let now = snapshot.at.timestamp_millis();
    let waiting = &snapshot.waiting;
    let mut out = m.bold(&format!("Queue: {}", snapshot.team));
    let late = waiting.iter().filter(|w| w.sla_deadline < now).count();
    let summary = match waiting.iter().map(|w| w.waiting_since).min() {
        None => "Nobody is waiting.".to_string(),
        Some(oldest) => {
            let mut s = format!("{} waiting, the longest for {}", waiting.len(), minutes(now - oldest));
            if late > 0 {
                let _ = write!(s, ", {late} past the first-reply target");
            }
            s
        }
    };
    let _ = write!(out, "\n{}", m.escape(&summary));
    for w in waiting.iter().take(MAX_LISTED) {
        let tag = match w.code.as_str() {
            "" => format!("#{}", &w.conversation_id.simple().to_string()[..8]),
            code => format!("#{code}"),
        };
        let who = w.customer.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
        let sla = match w.sla_deadline - now {
            left if left >= 0 => format!("reply due in {}", minutes(left)),
            over => format!("⚠ reply {} late", minutes(-over)),
        };
        let line = format!(
            "{who} ({}), priority {}, {}, waiting {}, {sla}",
            w.channel,
            w.priority,
            w.tier,
            minutes(now - w.waiting_since)
        );
        let _ = write!(out, "\n{}{}", m.bold(&tag), m.escape(&line));
    }
    if waiting.len() > MAX_LISTED {
        let _ = write!(out, "\n{}", m.escape(&format!("… and {} more", waiting.len() - MAX_LISTED)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn waiting(code: &str, waited_min: i64, sla_left_min: i64, now: i64) -> Waiting {
        Waiting {
            conversation_id: Uuid::now_v7(),
            code: code.into(),
            customer: Some("Ada Lovelace".into()),
            channel: "webhook".into(),
            team: "billing".into(),
            tier: "L1".into(),
            priority: 50,
            waiting_since: now - waited_min * 60_000,
            sla_deadline: now + sla_left_min * 60_000,
        }
    }

    #[test]
    fn a_board_lists_what_waits_with_its_wait_and_sla_and_counts_the_rest() {
        let at = Utc.with_ymd_and_hms(2026, 12, 7, 10, 32, 0).unwrap();
        let now = at.timestamp_millis();
        let mut items: Vec<Waiting> = (0..12).map(|i| waiting(&format!("K{i:03}"), 12 - i, 20, now)).collect();
        items[0].sla_deadline = now - 3 * 60_000;
        let text = render_board(&Plain, &QueueSnapshot { team: "billing".into(), waiting: items, at });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Queue: billing");
        assert_eq!(lines[1], "12 waiting, the longest for 12 min, 1 past the first-reply target");
        assert_eq!(lines[2], "#K000 Ada Lovelace (webhook), priority 50, L1, waiting 12 min, ⚠ reply 3 min late");
        assert_eq!(lines[3], "#K001 Ada Lovelace (webhook), priority 50, L1, waiting 11 min, reply due in 20 min");
        assert_eq!(lines[12], "… and 2 more");
        assert_eq!(lines[13], "Updated 10:32 UTC");
    }

    #[test]
    fn an_empty_queue_says_nobody_waits() {
        let at = Utc::now();
        let text = render_board(&Plain, &QueueSnapshot { team: "support".into(), waiting: vec![], at });
        assert!(text.starts_with("Queue: support\nNobody is waiting.\nUpdated "), "{text}");
    }
}
