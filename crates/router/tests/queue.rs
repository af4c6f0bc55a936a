//! Queue notices (`docs/queue.md`): a waiting customer is told their place and the expected wait
//! on arrival, then again on a material change at most every `interval_secs` (the web chat on
//! every change it would show), never once an agent has the conversation; the figures are on the
//! record; and every router replaying the journal sends the same notices.

use std::collections::BTreeMap;

use switchboard_core::contract::metadata;
use switchboard_core::{AgentCommand, CommandAction, OutboundKind, OutboundMessage};
use switchboard_router::{Effect, Entry, Router, RouterConfig};
use uuid::Uuid;

const ROUTING: &str = r#"
default_team = "support"
[queue_notice]
interval_secs = 300
check_secs = 15
default_handle_secs = 600
[teams.support]
offer_timeout_secs = 0
[[agents]]
id = "alice"
teams = ["support"]
tiers = ["L1"]
max_total = 1
status = "online"
"#;

fn router() -> Router {
    let cfg = RouterConfig {
        routing: toml::from_str(ROUTING).expect("routing toml"),
        endpoints: BTreeMap::new(),
        offer_history: 10,
        group: None,
        kb: None,
    };
    Router::new(cfg).expect("valid config")
}

/// Applies entries in order, with the ticks the router asks for (`next_due`) before each; keeps
/// every effect with the time it came at.
struct Run {
    router: Router,
    seq: u64,
    effects: Vec<(i64, Effect)>,
    journal: Vec<(u64, Entry)>,
    per_entry: Vec<Vec<Effect>>,
}

impl Run {
    fn new() -> Run {
        Run { router: router(), seq: 0, effects: Vec::new(), journal: Vec::new(), per_entry: Vec::new() }
    }

    fn apply(&mut self, entry: Entry) -> Vec<Effect> {
        self.seq += 1;
        let fx = self.router.apply(self.seq, &entry);
        self.journal.push((self.seq, entry.clone()));
        self.per_entry.push(fx.clone());
        self.effects.extend(fx.iter().cloned().map(|e| (entry.at(), e)));
        fx
    }

    /// Ticks as the service would, up to `secs`.
    fn until(&mut self, secs: i64) {
        while let Some(due) = self.router.next_due().filter(|d| *d <= secs * 1000) {
            self.apply(Entry::Tick { at: due });
        }
    }

    fn msg(&mut self, secs: i64, channel: &str, customer: &str, language: Option<&str>) -> Uuid {
        self.until(secs);
        let mut envelope = switchboard_adapter::testkit::envelope(channel, &format!("p-{}", self.seq), customer, "hi");
        envelope.received_at = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        envelope.thread_key = format!("t-{customer}");
        envelope.customer.language = language.map(str::to_string);
        let new_conversation = Uuid::from_u128(500 + u128::from(self.seq));
        let fx = self.apply(Entry::Inbound {
            at: secs * 1000,
            envelope: Box::new(envelope),
            new_conversation,
            kb: Vec::new(),
            replies: Vec::new(),
        });
        fx.iter().find_map(|e| if let Effect::Store(r) = e { Some(r.id) } else { None }).expect("a conversation")
    }

    fn resolve(&mut self, secs: i64, conversation: Uuid) {
        self.until(secs);
        let command = AgentCommand {
            id: Uuid::from_u128(9_000 + u128::from(self.seq)),
            agent_id: "alice".into(),
            conversation_id: Some(conversation),
            issued_at: chrono::DateTime::from_timestamp(secs, 0).unwrap(),
            action: CommandAction::Resolve,
        };
        self.apply(Entry::Command { at: secs * 1000, command: Box::new(command), stream_sequence: None });
    }

    /// The queue notices sent to a conversation: (seconds, place, estimate).
    fn notices(&self, conversation: Uuid) -> Vec<(i64, u32, Option<u64>)> {
        self.effects
            .iter()
            .filter_map(|(at, e)| match e {
                Effect::Outbound(m) if m.conversation_id == conversation && is_notice(m) => Some((
                    at / 1000,
                    m.metadata[metadata::QUEUE_POSITION].parse().unwrap(),
                    m.metadata.get(metadata::QUEUE_ESTIMATE_SECS).map(|s| s.parse().unwrap()),
                )),
                _ => None,
            })
            .collect()
    }

    fn notice_texts(&self, conversation: Uuid) -> Vec<String> {
        self.effects
            .iter()
            .filter_map(|(_, e)| match e {
                Effect::Outbound(m) if m.conversation_id == conversation && is_notice(m) => Some(m.text.clone()),
                _ => None,
            })
            .collect()
    }
}

fn is_notice(m: &OutboundMessage) -> bool {
    m.kind == OutboundKind::System && m.metadata.contains_key(metadata::QUEUE_POSITION)
}

#[test]
fn told_on_arrival_then_on_material_change_at_most_every_interval_and_never_after_assignment() {
    let mut run = Run::new();
    let c1 = run.msg(0, "telegram", "u1", None); // alice takes it
    let c2 = run.msg(1, "telegram", "u2", Some("ru"));
    let c3 = run.msg(2, "telegram", "u3", None);
    let c4 = run.msg(3, "telegram", "u4", None);
    assert!(run.notices(c1).is_empty(), "a conversation an agent took at once is not told a place");
    // One slot, no handle time measured yet: 600 s a place.
    assert_eq!(run.notices(c2), [(1, 1, Some(600))]);
    assert_eq!(run.notice_texts(c2), ["Вы 1-й в очереди; оператор обычно отвечает в течение примерно 10 минут."]);
    assert_eq!(run.notices(c3), [(2, 2, Some(1200))]);
    assert_eq!(run.notice_texts(c3), ["You are 2nd in line; an agent usually answers within about 20 minutes."]);
    assert_eq!(run.notices(c4), [(3, 3, Some(1800))]);
    // The record carries the figures for the API.
    let q = run.router.record(c4).and_then(|r| r.queue.clone()).expect("queue figures on the record");
    assert_eq!((q.position, q.estimate_secs, q.agents_online), (3, Some(1800), 1));

    // Alice resolves c1 after a minute and takes c2: c3 is next, c4 second, 60 s a place. A
    // material change, but within five minutes of the last notices: nothing yet.
    run.resolve(60, c1);
    run.until(299);
    assert_eq!(run.notices(c3).len(), 1);
    assert_eq!(run.router.record(c3).and_then(|r| r.queue.clone()).map(|q| q.position), Some(1), "figures stay fresh");
    // Past the interval, at the next check (every 15 s from 1 s): told again, once.
    run.until(330);
    assert_eq!(run.notices(c3), [(2, 2, Some(1200)), (316, 1, Some(60))]);
    assert_eq!(run.notices(c4), [(3, 3, Some(1800)), (316, 2, Some(120))]);
    run.until(1000);
    assert_eq!(run.notices(c4).len(), 2, "no change since: no further notice");
    // c2 has an agent since 60 s: never told anything after its arrival notice.
    assert_eq!(run.notices(c2).len(), 1);
    assert_eq!(run.router.record(c2).and_then(|r| r.queue.clone()), None, "no figures once assigned");
}

#[test]
fn the_web_chat_is_told_every_change_it_would_show_and_email_nothing_by_default() {
    let mut run = Run::new();
    let c1 = run.msg(0, "webchat", "v1", None);
    let c2 = run.msg(1, "webchat", "v2", None);
    let c3 = run.msg(2, "webchat", "v3", None);
    let mail = run.msg(3, "email", "m@example.com", None);
    assert!(run.notices(mail).is_empty(), "email notices are off unless turned on");
    assert_eq!(run.router.record(mail).and_then(|r| r.queue.clone()).map(|q| q.position), Some(3));
    run.resolve(30, c1);
    run.until(60);
    // c3 moved from 2nd to 1st: the widget shows it at the next check, no interval to wait.
    assert_eq!(run.notices(c3), [(2, 2, Some(1200)), (31, 1, Some(30))]);
    assert_eq!(run.notices(c2), [(1, 1, Some(600))], "assigned at 30 s: nothing after");
}

#[test]
fn every_router_replaying_the_journal_sends_the_same_notices() {
    let mut run = Run::new();
    let c1 = run.msg(0, "telegram", "u1", None);
    for i in 2..8 {
        run.msg(i, if i % 2 == 0 { "webchat" } else { "telegram" }, &format!("u{i}"), Some("en"));
    }
    run.resolve(100, c1);
    run.until(700);
    let notices = run.effects.iter().filter(|(_, e)| matches!(e, Effect::Outbound(m) if is_notice(m))).count();
    assert!(notices >= 8, "{notices} notices");

    // A second router, from scratch; a third from a snapshot taken halfway.
    let mut replica = router();
    let mut replayed = Vec::new();
    let half = run.journal.len() / 2;
    let mut resumed = None;
    for (i, (seq, entry)) in run.journal.iter().enumerate() {
        if i == half {
            resumed = Some(
                Router::restore(
                    RouterConfig {
                        routing: toml::from_str(ROUTING).unwrap(),
                        endpoints: BTreeMap::new(),
                        offer_history: 10,
                        group: None,
                        kb: None,
                    },
                    serde_json::from_value(serde_json::to_value(replica.state()).unwrap()).unwrap(),
                )
                .unwrap(),
            );
        }
        replayed.extend(replica.apply(*seq, entry));
    }
    let original: Vec<Effect> = run.effects.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(replayed, original);
    let mut resumed = resumed.expect("snapshot taken");
    let tail: Vec<Effect> = run.journal[half..].iter().flat_map(|(seq, entry)| resumed.apply(*seq, entry)).collect();
    let original_tail: Vec<Effect> = run.per_entry[half..].concat();
    assert_eq!(tail, original_tail);
}
