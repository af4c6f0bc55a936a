//! Queue notices: telling a waiting customer their place in line and the expected wait
//! (`docs/queue.md`), on arrival and again when it changes materially.
//!
//! Everything here runs inside [`Router::apply`] from the journal entry's time and the engine's
//! state, so every router replaying the journal sends the same notices with the same ids. The
//! router recomputes every waiting conversation's place at most every `check_secs` (asking the
//! service for a tick then, see [`Router::next_due`]), in one pass over the queue.
//!
//! When a notice goes out: once on arrival (the conversation is still waiting once the entry
//! that queued it is applied); then, on the web chat, whenever what the widget shows changes
//! (the place, the rounded estimate, or whether anyone is online); on other channels at most
//! every `interval_secs`, and only on a material change: the place halved, the estimate moved
//! by at least half and at least two minutes, or agents came online or all went offline.
//! Never once an agent has it.

use std::collections::BTreeMap;

use switchboard_core::contract::metadata;
use switchboard_core::record::QueueInfo;
use switchboard_routing::{Ms, QueueStatus};
use uuid::Uuid;

use crate::config::Notified;
use crate::decisions::system_message;
use crate::router::{Fx, Router, WEBCHAT, time};

/// A material change for a channel that is not live: see the module docs.
fn material(old: &Notified, new: &QueueInfo) -> bool {
    let halved = new.position * 2 <= old.position;
    let online_flipped = (old.agents_online == 0) != (new.agents_online == 0);
    let estimate_moved = match (old.estimate_secs, new.estimate_secs) {
        (Some(a), Some(b)) => a.abs_diff(b) >= 120 && a.abs_diff(b) * 2 >= a,
        (a, b) => a.is_some() != b.is_some(),
    };
    halved || online_flipped || estimate_moved
}

/// A change the web chat's widget would show.
fn visible(old: &Notified, new: &QueueInfo) -> bool {
    old.position != new.position
        || old.estimate_secs.map(Wait::of) != new.estimate_secs.map(Wait::of)
        || (old.agents_online == 0) != (new.agents_online == 0)
}

/// Whether the record's figures are worth storing again: when one conversation at the head is
/// taken, every place behind it moves, and storing each of a long queue's records at every check
/// would cost a write per waiting conversation. So the record is stored again when the place
/// changed within the first ten or by at least a tenth, the rounded estimate changed, whether
/// anyone is online changed, or the opening time did (the `at` says when they were computed).
fn worth_storing(stored: &QueueInfo, new: &QueueInfo) -> bool {
    let moved = stored.position != new.position
        && (new.position <= 10 || stored.position.abs_diff(new.position) * 10 >= stored.position);
    moved
        || stored.estimate_secs.map(Wait::of) != new.estimate_secs.map(Wait::of)
        || (stored.agents_online == 0) != (new.agents_online == 0)
        || stored.opens_at != new.opens_at
}

fn info(s: &QueueStatus, at: Ms) -> QueueInfo {
    QueueInfo {
        position: s.position,
        estimate_secs: s.estimate_ms.map(|ms| (ms.max(0) as u64).div_ceil(1000)),
        agents_online: s.agents_online,
        opens_at: s.opens_at,
        at,
    }
}

impl Router {
    /// When the router next recomputes the waiting conversations' places, if any wait.
    pub(crate) fn next_queue_check(&self) -> Option<Ms> {
        self.st.next_queue_check
    }

    /// Notices and queue figures after an entry: arrivals now, the rest on the periodic check.
    pub(crate) fn queue_notices(&mut self, fx: &mut Fx) {
        let touched: Vec<Uuid> = fx.touched.iter().copied().collect();
        for id in touched {
            match self.engine.queue_status(id) {
                Some(status) if !self.st.queue_notices.contains_key(&id) => {
                    let info = info(&status, fx.at);
                    self.tell(id, &info, status.opens_at_local.as_deref(), true, fx);
                }
                Some(_) => {}
                None => {
                    if let Some(r) = self.st.records.get_mut(&id) {
                        r.queue = None;
                    }
                    // An offer can lapse and put it back in line: that is not a new arrival.
                    if self.engine.where_is(id).is_none_or(|(state, _)| state != "offered") {
                        self.st.queue_notices.remove(&id);
                    }
                }
            }
        }
        let check_ms = self.cfg.routing.queue_notice.check_secs as Ms * 1000;
        if self.st.next_queue_check.is_some_and(|due| due <= fx.at) {
            self.queue_check(fx);
        }
        self.st.next_queue_check = match self.engine.queued() {
            0 => None,
            _ => Some(self.st.next_queue_check.unwrap_or(fx.at + check_ms)),
        };
    }

    /// Recomputes every waiting conversation's place; tells those whose figures changed enough.
    fn queue_check(&mut self, fx: &mut Fx) {
        let check_ms = self.cfg.routing.queue_notice.check_secs as Ms * 1000;
        self.st.next_queue_check = Some(fx.at + check_ms);
        let engine = &self.engine;
        self.st
            .queue_notices
            .retain(|id, _| engine.where_is(*id).is_some_and(|(s, _)| s == "queued" || s == "offered"));
        for status in self.engine.queue_statuses() {
            let info = info(&status, fx.at);
            self.tell(status.conversation, &info, status.opens_at_local.as_deref(), false, fx);
        }
    }

    /// Stores changed figures on the record and sends a notice when one is due.
    fn tell(&mut self, id: Uuid, info: &QueueInfo, opens_local: Option<&str>, arrival: bool, fx: &mut Fx) {
        let Some(r) = self.st.records.get_mut(&id) else { return };
        if r.queue.as_ref().is_none_or(|q| worth_storing(q, info)) {
            r.queue = Some(info.clone());
            fx.touched.insert(id);
        }
        let qn = &self.cfg.routing.queue_notice;
        let on = qn.on_for(&r.channel) && info.position >= qn.min_position;
        let interval = qn.interval_secs as Ms * 1000;
        let live = r.channel == WEBCHAT;
        let last = self.st.queue_notices.get(&id);
        let due = on
            && match last.filter(|_| !arrival) {
                None => true,
                Some(n) if n.sent_at.is_none() => true,
                Some(n) if live => visible(n, info),
                Some(n) => n.sent_at.is_some_and(|t| fx.at - t >= interval) && material(n, info),
            };
        if !due {
            self.st.queue_notices.entry(id).or_insert(Notified {
                sent_at: None,
                position: info.position,
                estimate_secs: info.estimate_secs,
                agents_online: info.agents_online,
            });
            return;
        }
        let language = r.customer.language.as_deref().unwrap_or("");
        let text = notice_text(language, info, opens_local);
        let mut meta = BTreeMap::from([
            (metadata::QUEUE_POSITION.to_string(), info.position.to_string()),
            (metadata::QUEUE_AGENTS_ONLINE.to_string(), info.agents_online.to_string()),
        ]);
        if let Some(secs) = info.estimate_secs {
            meta.insert(metadata::QUEUE_ESTIMATE_SECS.to_string(), secs.to_string());
        }
        if let Some(opens) = info.opens_at {
            meta.insert(metadata::QUEUE_OPENS_AT.to_string(), time(opens).to_rfc3339());
        }
        system_message(r, id, text, meta, fx);
        self.st.queue_notices.insert(
            id,
            Notified {
                sent_at: Some(fx.at),
                position: info.position,
                estimate_secs: info.estimate_secs,
                agents_online: info.agents_online,
            },
        );
    }
}

/// An estimate as people say it: what a notice says and what the widget shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Under a minute.
    UnderAMinute,
    /// About this many minutes (1-59; rounded to 5 above 10).
    Minutes(u64),
    /// An hour or more.
    OverAnHour,
}

impl Wait {
    /// Rounds an estimate in seconds for people.
    pub fn of(secs: u64) -> Wait {
        match secs {
            0..60 => Wait::UnderAMinute,
            60..3600 => {
                let m = (secs + 30) / 60;
                Wait::Minutes(if m > 10 { ((m + 2) / 5 * 5).min(55) } else { m.max(1) })
            }
            _ => Wait::OverAnHour,
        }
    }
}

/// The notice in the customer's language (Russian for `ru*`, else English).
pub fn notice_text(language: &str, q: &QueueInfo, opens_local: Option<&str>) -> String {
    let n = q.position;
    if language.to_ascii_lowercase().starts_with("ru") {
        let place = format!("Вы {n}-й в очереди");
        return match q.estimate_secs.map(Wait::of) {
            None => match opens_local {
                Some(at) => format!("{place}. Сейчас нет операторов в сети; мы откроемся {at}."),
                None => format!("{place}. Сейчас нет операторов в сети."),
            },
            Some(Wait::UnderAMinute) => format!("{place}; оператор обычно отвечает меньше чем за минуту."),
            Some(Wait::Minutes(m)) => {
                let word = if m % 10 == 1 && m % 100 != 11 { "минуты" } else { "минут" };
                format!("{place}; оператор обычно отвечает в течение примерно {m} {word}.")
            }
            Some(Wait::OverAnHour) => format!("{place}; ответа оператора, скорее всего, придётся ждать больше часа."),
        };
    }
    let place = format!("You are {} in line", ordinal(n));
    match q.estimate_secs.map(Wait::of) {
        None => match opens_local {
            Some(at) => format!("{place}. No agent is online right now; we open at {at}."),
            None => format!("{place}. No agent is online right now."),
        },
        Some(Wait::UnderAMinute) => format!("{place}; an agent usually answers in less than a minute."),
        Some(Wait::Minutes(1)) => format!("{place}; an agent usually answers within about a minute."),
        Some(Wait::Minutes(m)) => format!("{place}; an agent usually answers within about {m} minutes."),
        Some(Wait::OverAnHour) => format!("{place}; it will probably take over an hour for an agent to answer."),
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(position: u32, estimate_secs: Option<u64>, agents_online: u32) -> QueueInfo {
        QueueInfo { position, estimate_secs, agents_online, opens_at: None, at: 0 }
    }

    #[test]
    fn notices_read_naturally_in_english_and_russian() {
        assert_eq!(
            notice_text("en", &q(3, Some(240), 2), None),
            "You are 3rd in line; an agent usually answers within about 4 minutes."
        );
        assert_eq!(
            notice_text("", &q(1, Some(20), 1), None),
            "You are 1st in line; an agent usually answers in less than a minute."
        );
        assert_eq!(
            notice_text("en-GB", &q(12, Some(7200), 1), None),
            "You are 12th in line; it will probably take over an hour for an agent to answer."
        );
        assert_eq!(
            notice_text("en", &q(2, None, 0), Some("2026-11-23 09:00 MSK")),
            "You are 2nd in line. No agent is online right now; we open at 2026-11-23 09:00 MSK."
        );
        assert_eq!(notice_text("en", &q(2, None, 0), None), "You are 2nd in line. No agent is online right now.");
        assert_eq!(
            notice_text("ru", &q(3, Some(240), 2), None),
            "Вы 3-й в очереди; оператор обычно отвечает в течение примерно 4 минут."
        );
        assert_eq!(
            notice_text("ru-RU", &q(1, Some(21 * 60), 2), None),
            "Вы 1-й в очереди; оператор обычно отвечает в течение примерно 20 минут."
        );
        assert_eq!(
            notice_text("ru", &q(1, Some(60), 2), None),
            "Вы 1-й в очереди; оператор обычно отвечает в течение примерно 1 минуты."
        );
        assert_eq!(notice_text("ru", &q(4, None, 0), None), "Вы 4-й в очереди. Сейчас нет операторов в сети.");
    }

    #[test]
    fn estimates_round_for_people() {
        assert_eq!(Wait::of(59), Wait::UnderAMinute);
        assert_eq!(Wait::of(60), Wait::Minutes(1));
        assert_eq!(Wait::of(269), Wait::Minutes(4));
        assert_eq!(Wait::of(13 * 60), Wait::Minutes(15));
        assert_eq!(Wait::of(3599), Wait::Minutes(55));
        assert_eq!(Wait::of(3600), Wait::OverAnHour);
    }

    #[test]
    fn a_long_queues_records_are_stored_again_only_when_the_place_moved_enough() {
        assert!(worth_storing(&q(3, Some(300), 1), &q(2, Some(300), 1)), "within the first ten");
        assert!(!worth_storing(&q(500, None, 0), &q(499, None, 0)), "one place of 500");
        assert!(worth_storing(&q(500, None, 0), &q(450, None, 0)), "a tenth of 500");
        assert!(worth_storing(&q(500, None, 0), &q(499, Some(9000), 3)), "agents came online");
        assert!(!worth_storing(&q(3, Some(300), 1), &q(3, Some(310), 2)), "the same figures for people");
    }

    #[test]
    fn material_changes_are_halving_a_big_estimate_move_or_someone_coming_online() {
        let told = Notified { sent_at: Some(0), position: 8, estimate_secs: Some(600), agents_online: 2 };
        assert!(!material(&told, &q(5, Some(400), 2)), "a third less is not material");
        assert!(material(&told, &q(4, Some(400), 2)), "the place halved");
        assert!(material(&told, &q(7, Some(900), 2)), "the estimate grew by half, 5 minutes");
        assert!(material(&told, &q(7, None, 0)), "everyone went offline");
        let short = Notified { sent_at: Some(0), position: 8, estimate_secs: Some(100), agents_online: 2 };
        assert!(!material(&short, &q(7, Some(200), 2)), "doubled, but by less than two minutes");
    }
}
