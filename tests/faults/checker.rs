//! A queue checker in the spirit of Jepsen's: every message a test sends has a unique id, the
//! sender records how its send ended, the receivers record every delivery, and at the end each
//! message is classified.
//!
//! **What counts as one customer-visible delivery.** Switchboard's HTTP deliveries are
//! at-least-once with a stable idempotency key: every POST to an agent endpoint or a customer
//! webhook carries the Standard Webhooks `webhook-id` header, which is the id of the offer,
//! message or outbound message on the bus and stays the same on every retry; a web chat
//! transcript entry carries its entry `id`, the same on every replay. So a delivery is the pair
//! (message id, delivery id):
//!
//! - the same delivery id received again is a **redelivery**. The receiver de-duplicates it by
//!   that key, exactly as Standard Webhooks asks receivers to; it is counted and reported apart
//!   (a crash between a `2xx` and the bus ack makes some), and it is not a failure;
//! - the same message under two **different** delivery ids (two offers or two `message/1`
//!   deliveries for one customer message, two outbound messages or two transcript entries for
//!   one reply) is a **duplicate**: the receiver cannot tell it apart, the person sees it twice.
//!   It fails the test.
//!
//! Per message: `ok` (acknowledged, delivered once), `duplicated` (two or more delivery ids),
//! `lost` (acknowledged, never delivered), `recovered` (the send's outcome was indeterminate,
//! e.g. the daemon died mid-request, and it was delivered once), `unknown` (indeterminate and not
//! delivered), `failed` (refused definitely, e.g. a 4xx, and not delivered). A delivery of a
//! message that was refused definitely, or of an id nobody sent, is `unexpected`. Senders retry an
//! indeterminate send with the same id until it is acknowledged or a deadline passes, so `unknown`
//! stays 0 when the system recovers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

/// How one send attempt ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The system acknowledged it (`202`, a `2xx` verdict, the web chat `ack` frame).
    Acked,
    /// The system refused it for good (a `4xx` other than 408/429, an `error` frame that is not
    /// `unavailable` or rate limiting).
    Failed,
    /// No answer we can trust: connection reset, timeout, `5xx` while a component was down.
    Indeterminate,
}

#[derive(Debug, Default)]
struct Message {
    acked: bool,
    failed: bool,
    attempts: u32,
    /// Delivery id → times received.
    deliveries: BTreeMap<String, u32>,
}

/// The history of one stream of messages (e.g. customer messages to agents) in one run.
#[derive(Debug)]
pub struct Checker {
    name: String,
    messages: Mutex<BTreeMap<String, Message>>,
    strays: Mutex<Vec<(String, String)>>,
}

/// The classification of a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// What the stream is, e.g. `customer->agent`.
    pub name: String,
    /// Messages sent (at least one attempt).
    pub sent: usize,
    /// Acknowledged and delivered under exactly one delivery id.
    pub ok: usize,
    /// Deliveries repeated under the same delivery id (de-duplicated by the receiver's key).
    pub redelivered: usize,
    /// Messages delivered under two or more delivery ids.
    pub duplicated: usize,
    /// Acknowledged but never delivered.
    pub lost: usize,
    /// Indeterminate and delivered once.
    pub recovered: usize,
    /// Indeterminate and never delivered.
    pub unknown: usize,
    /// Refused definitely and not delivered.
    pub failed: usize,
    /// Deliveries of messages refused definitely or never sent.
    pub unexpected: usize,
    /// Send attempts beyond the first (retries after indeterminate outcomes).
    pub retries: usize,
    /// Ids of the first few messages in a bad class, for the failure message.
    pub examples: Vec<String>,
}

impl Checker {
    /// An empty history named `name`.
    pub fn new(name: &str) -> Checker {
        Checker { name: name.into(), messages: Mutex::new(BTreeMap::new()), strays: Mutex::new(Vec::new()) }
    }

    /// Records that a send attempt of `id` starts: before the request, because the delivery may
    /// arrive before the sender hears back.
    pub fn invoke(&self, id: &str) {
        self.messages.lock().expect("checker lock").entry(id.to_string()).or_default().attempts += 1;
    }

    /// Records how the last attempt of `id` ended; an acknowledgement is final.
    pub fn record(&self, id: &str, outcome: Outcome) {
        let mut messages = self.messages.lock().expect("checker lock");
        let m = messages.entry(id.to_string()).or_default();
        match outcome {
            Outcome::Acked => m.acked = true,
            Outcome::Failed => m.failed = true,
            Outcome::Indeterminate => {}
        }
    }

    /// Records that `id` arrived at a receiver under `delivery_id`; returns whether this delivery
    /// id is new for it (the receiver acts only on new ones, as a de-duplicating receiver does).
    pub fn delivered(&self, id: &str, delivery_id: &str) -> bool {
        let mut messages = self.messages.lock().expect("checker lock");
        let Some(m) = messages.get_mut(id) else {
            self.strays.lock().expect("checker lock").push((id.into(), delivery_id.into()));
            return true;
        };
        let count = m.deliveries.entry(delivery_id.to_string()).or_default();
        *count += 1;
        *count == 1
    }

    /// Messages acknowledged so far.
    pub fn acked(&self) -> usize {
        self.messages.lock().expect("checker lock").values().filter(|m| m.acked).count()
    }

    /// Whether `id` has been delivered at least once.
    pub fn is_delivered(&self, id: &str) -> bool {
        self.messages.lock().expect("checker lock").get(id).is_some_and(|m| !m.deliveries.is_empty())
    }

    /// Ids sent so far that were acknowledged or are still indeterminate but not delivered.
    pub fn undelivered(&self) -> Vec<String> {
        let messages = self.messages.lock().expect("checker lock");
        messages.iter().filter(|(_, m)| !m.failed && m.deliveries.is_empty()).map(|(id, _)| id.clone()).collect()
    }

    /// Classifies every message.
    pub fn report(&self) -> Report {
        let messages = self.messages.lock().expect("checker lock");
        let mut r = Report { name: self.name.clone(), sent: messages.len(), ..Report::default() };
        for (id, m) in messages.iter() {
            let ids = m.deliveries.len();
            r.redelivered += m.deliveries.values().map(|n| (*n as usize).saturating_sub(1)).sum::<usize>();
            r.retries += (m.attempts as usize).saturating_sub(1);
            let bad = match (ids, m.acked, m.failed) {
                (2.., _, _) => {
                    r.duplicated += 1;
                    true
                }
                (1, true, _) => {
                    r.ok += 1;
                    false
                }
                (1, false, true) => {
                    r.unexpected += 1;
                    true
                }
                (1, false, false) => {
                    r.recovered += 1;
                    false
                }
                (0, true, _) => {
                    r.lost += 1;
                    true
                }
                (0, false, true) => {
                    r.failed += 1;
                    false
                }
                (0, false, false) => {
                    r.unknown += 1;
                    true
                }
            };
            if bad && r.examples.len() < 5 {
                r.examples.push(format!("{id}: {:?}", m.deliveries));
            }
        }
        let strays = self.strays.lock().expect("checker lock");
        r.unexpected += strays.len();
        r.examples.extend(strays.iter().take(3).map(|(id, d)| format!("never sent: {id} as {d}")));
        r
    }
}

impl Report {
    /// Panics naming the run unless nothing was lost, duplicated, unknown, unexpected or failed.
    pub fn assert_clean(&self, run: &str) {
        assert!(
            self.lost == 0 && self.duplicated == 0 && self.unknown == 0 && self.unexpected == 0 && self.failed == 0,
            "{run}: {self}; examples: {:?}",
            self.examples
        );
        assert!(self.sent > 0, "{run}: {} sent nothing, so it checked nothing", self.name);
    }

    /// Adds another run's figures to these (for totals over runs).
    pub fn add(&mut self, other: &Report) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.redelivered += other.redelivered;
        self.duplicated += other.duplicated;
        self.lost += other.lost;
        self.recovered += other.recovered;
        self.unknown += other.unknown;
        self.failed += other.failed;
        self.unexpected += other.unexpected;
        self.retries += other.retries;
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: sent={} ok={} redelivered={} duplicated={} lost={} recovered={} unknown={} failed={} unexpected={} retries={}",
            self.name,
            self.sent,
            self.ok,
            self.redelivered,
            self.duplicated,
            self.lost,
            self.recovered,
            self.unknown,
            self.failed,
            self.unexpected,
            self.retries
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_is_counted() {
        let c = Checker::new("t");
        for id in ["ok", "dup", "lost", "rec", "unk", "unk", "fail", "phantom"] {
            c.invoke(id);
        }
        c.record("ok", Outcome::Acked);
        c.delivered("ok", "d1");
        c.delivered("ok", "d1");
        c.record("dup", Outcome::Acked);
        c.delivered("dup", "d2");
        c.delivered("dup", "d3");
        c.record("lost", Outcome::Acked);
        c.record("rec", Outcome::Indeterminate);
        c.delivered("rec", "d4");
        c.record("unk", Outcome::Indeterminate);
        c.record("unk", Outcome::Indeterminate);
        c.record("fail", Outcome::Failed);
        c.record("phantom", Outcome::Failed);
        c.delivered("phantom", "d5");
        c.delivered("stray", "d6");
        let r = c.report();
        assert_eq!(
            (r.sent, r.ok, r.redelivered, r.duplicated, r.lost, r.recovered, r.unknown, r.failed, r.unexpected),
            (7, 1, 1, 1, 1, 1, 1, 1, 2)
        );
        assert_eq!(r.retries, 1);
        assert!(std::panic::catch_unwind(|| r.assert_clean("t")).is_err());
    }

    #[test]
    fn a_retried_send_that_was_acknowledged_and_delivered_once_is_ok() {
        let c = Checker::new("t");
        c.invoke("m");
        c.record("m", Outcome::Indeterminate);
        c.invoke("m");
        assert!(c.delivered("m", "d"), "delivered before the sender heard back");
        c.record("m", Outcome::Acked);
        assert!(!c.delivered("m", "d"), "the same delivery id again is a redelivery");
        let r = c.report();
        assert_eq!((r.ok, r.redelivered, r.retries), (1, 1, 1));
        r.assert_clean("t");
    }
}
