//! The L0 bot's knowledge-base step (`docs/kb.md`), with the example articles of `config/kb`:
//! it answers a new conversation of a `kb_first` team when an article scores above the bar and
//! asks whether it helped; yes resolves at L0, anything else goes to a person with the whole
//! exchange, silence resolves at the timeout, and below the bar a person answers at once. The
//! answers travel in the journal, so replay without the folder sends the same.

use std::collections::BTreeMap;
use std::path::PathBuf;

use switchboard_core::agent::Author;
use switchboard_core::contract::metadata;
use switchboard_core::{AgentDelivery, Event, EventKind, OutboundKind, OutboundMessage};
use switchboard_router::{Effect, Entry, KnowledgeBase, Router, RouterConfig};
use uuid::Uuid;

const ROUTING: &str = r#"
default_team = "support"
human_phrases = ["operator", "оператор"]
l0_timeout_secs = 600
[teams.support]
kb_first = true
offer_timeout_secs = 60
[teams.vip]
[[rules]]
name = "vip"
when = 'metadata.plan == "vip"'
team = "vip"
[[agents]]
id = "alice"
teams = ["support", "vip"]
tiers = ["L1"]
max_total = 5
status = "online"
"#;

fn kb() -> KnowledgeBase {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/kb");
    let kb = switchboard_kb::Kb::load(&folder, switchboard_kb::Limits::default()).expect("the example folder loads");
    KnowledgeBase::new(kb, switchboard_kb::DEFAULT_MIN_SCORE)
}

fn config(kb: Option<KnowledgeBase>) -> RouterConfig {
    let endpoints = BTreeMap::from([("alice".to_string(), vec!["webhook".to_string()])]);
    RouterConfig {
        routing: toml::from_str(ROUTING).expect("routing toml"),
        endpoints,
        offer_history: 20,
        group: None,
        kb,
    }
}

/// A router fed as the leader feeds it: each message looked up (`kb_lookup`) and journaled with
/// its answers, ticks when due.
struct Run {
    router: Router,
    seq: u64,
    journal: Vec<(u64, Entry)>,
    effects: Vec<Effect>,
}

impl Run {
    fn new() -> Run {
        Run {
            router: Router::new(config(Some(kb()))).expect("valid config"),
            seq: 0,
            journal: Vec::new(),
            effects: Vec::new(),
        }
    }

    fn apply(&mut self, entry: Entry) -> Vec<Effect> {
        self.seq += 1;
        let fx = self.router.apply(self.seq, &entry);
        self.journal.push((self.seq, entry));
        self.effects.extend(fx.iter().cloned());
        fx
    }

    fn until(&mut self, secs: i64) {
        while let Some(due) = self.router.next_due().filter(|d| *d <= secs * 1000) {
            self.apply(Entry::Tick { at: due });
        }
    }

    /// `customer` writes `text` on `channel` at `secs`; the effects of that message.
    fn say(&mut self, secs: i64, channel: &str, customer: &str, text: &str) -> Vec<Effect> {
        self.until(secs);
        let mut envelope = switchboard_adapter::testkit::envelope(channel, &format!("p-{}", self.seq), customer, text);
        envelope.received_at = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        if customer.starts_with("vip") {
            envelope.metadata.insert("plan".into(), "vip".into());
        }
        let kb = self.router.kb_lookup(&envelope);
        let new_conversation = Uuid::from_u128(100 + u128::from(self.seq));
        self.apply(Entry::Inbound {
            at: secs * 1000,
            envelope: Box::new(envelope),
            new_conversation,
            kb,
            replies: Vec::new(),
        })
    }
}

fn conversation(fx: &[Effect]) -> Uuid {
    fx.iter().find_map(|e| if let Effect::Store(r) = e { Some(r.id) } else { None }).expect("a stored record")
}

fn outbound(fx: &[Effect]) -> Vec<&OutboundMessage> {
    fx.iter().filter_map(|e| if let Effect::Outbound(m) = e { Some(m) } else { None }).collect()
}

fn events(fx: &[Effect], kind: EventKind) -> Vec<&Event> {
    fx.iter()
        .filter_map(|e| if let Effect::Event(ev) = e { Some(ev) } else { None })
        .filter(|e| e.kind == kind)
        .collect()
}

/// Offers to alice's helpdesk (each is also on her own stream).
fn offers(fx: &[Effect]) -> Vec<&switchboard_core::agent::Offer> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Agent { delivery: AgentDelivery::Offer(o), kind, .. } if kind == "webhook" => Some(o.as_ref()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_good_answer_is_sent_with_the_question_and_yes_resolves_at_l0() {
    let mut run = Run::new();
    let fx = run.say(0, "telegram", "u1", "How do I return an item?");
    let c = conversation(&fx);
    assert!(offers(&fx).is_empty(), "the bot answers first");
    let sent = outbound(&fx);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let answer = sent[0];
    assert_eq!(answer.kind, OutboundKind::AutoReply);
    assert!(answer.text.starts_with("How to return an item\n"), "{}", answer.text);
    assert!(
        answer.text.ends_with("Did this answer your question?"),
        "buttons on Telegram, no reply words: {}",
        answer.text
    );
    assert_eq!(answer.metadata[metadata::L0_QUESTION], metadata::L0_HELPFUL);
    assert_eq!(answer.metadata[metadata::L0_YES], "Yes");
    assert!(answer.metadata[metadata::L0_ARTICLES].starts_with("returns-en"));
    let replied = events(&fx, EventKind::AutoReplied);
    assert_eq!(replied[0].data["reason"], "kb");
    assert_eq!(replied[0].data["tier"], "L0");
    assert_eq!(events(&fx, EventKind::ConversationOpened)[0].data["tier"], "L0");
    let record = run.router.record(c).unwrap();
    assert_eq!((record.state.as_str(), record.l0.as_ref().unwrap().outcome.as_str()), ("bot", "pending"));
    assert_eq!(record.history.last().unwrap().from, Author::System, "the answer is in the history");

    let fx = run.say(40, "telegram", "u1", "Yes");
    let resolved = events(&fx, EventKind::Resolved);
    assert_eq!(resolved.len(), 1, "{fx:?}");
    assert_eq!(resolved[0].data["l0"], "helped");
    assert_eq!(resolved[0].data["kb_article"], "returns-en");
    assert_eq!(resolved[0].data["tier"], "L0");
    assert!(resolved[0].agent_id.is_none());
    assert!(outbound(&fx).is_empty(), "no survey after the bot's own question: {fx:?}");
    assert!(offers(&run.effects).is_empty(), "nobody was needed");
    assert_eq!(run.router.record(c).unwrap().l0.as_ref().unwrap().outcome, "helped");
    assert_eq!(events(&fx, EventKind::MessageReceived).len(), 1, "the yes is a received message like any");
}

#[test]
fn no_hands_off_at_once_and_the_offer_carries_the_question_the_answer_and_the_no() {
    let mut run = Run::new();
    let c = conversation(&run.say(0, "telegram", "u1", "I was charged twice for my order"));
    let fx = run.say(30, "telegram", "u1", "No, I need a person");
    let escalated = events(&fx, EventKind::Escalated);
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0].data["l0"], "handed_off");
    assert_eq!(escalated[0].data["kb_article"], "double-charge-en");
    assert_eq!(escalated[0].data["tier"], "L1");
    let offer = offers(&fx);
    assert_eq!(offer.len(), 1, "offered at once: {fx:?}");
    let history: Vec<(Author, &str)> = offer[0].history.iter().map(|h| (h.from, h.text.as_str())).collect();
    assert_eq!(history[0], (Author::Customer, "I was charged twice for my order"));
    assert_eq!(history[1].0, Author::System);
    assert!(history[1].1.starts_with("I was charged twice for one order\n"), "{history:?}");
    assert_eq!(history[2], (Author::Customer, "No, I need a person"));
    let record = run.router.record(c).unwrap();
    assert_eq!(record.l0.as_ref().unwrap().outcome, "handed_off");
    assert_eq!(record.state, "offered");
}

#[test]
fn another_question_or_a_yes_with_a_question_goes_to_a_person() {
    let mut run = Run::new();
    run.say(0, "webchat", "u1", "How do I return an item?");
    let fx = run.say(20, "webchat", "u1", "yes, but how do I change the delivery address?");
    assert_eq!(events(&fx, EventKind::Escalated)[0].data["l0"], "handed_off");
    assert_eq!(offers(&fx).len(), 1);
    assert!(events(&fx, EventKind::Resolved).is_empty());
}

#[test]
fn below_the_bar_or_asking_for_a_human_nothing_is_sent_and_a_person_answers() {
    let mut run = Run::new();
    for (customer, text) in
        [("u1", "what is the weather like on mars"), ("u2", "operator please, how do I return an item?")]
    {
        let fx = run.say(0, "telegram", customer, text);
        assert!(outbound(&fx).is_empty(), "{text}: {fx:?}");
        assert_eq!(offers(&fx).len(), 1, "{text}");
        let c = conversation(&fx);
        let record = run.router.record(c).unwrap();
        assert!(record.l0.is_none());
        assert_eq!(record.tier, switchboard_core::Tier::L1);
    }
    // A team that is not kb_first is not answered by the bot, however good the article.
    let fx = run.say(1, "telegram", "vip1", "How do I return an item?");
    assert!(outbound(&fx).is_empty());
    assert_eq!(offers(&fx).len(), 1);
}

#[test]
fn silence_resolves_at_l0_after_the_timeout_and_a_return_reaches_a_person() {
    let mut run = Run::new();
    let c = conversation(&run.say(0, "email", "u1", "How do I return an item?"));
    let text = &outbound(&run.effects)[0].text;
    assert!(text.ends_with("Reply \"yes\" if it did, or \"no\" to reach a person."), "mail has no buttons: {text}");
    run.until(599);
    assert!(events(&run.effects, EventKind::Resolved).is_empty(), "not before l0_timeout_secs");
    run.until(601);
    let resolved = events(&run.effects, EventKind::Resolved);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].data["l0"], "no_reply");
    assert_eq!(run.router.record(c).unwrap().state, "resolved");
    // Back within the reopen window: a person this time, not the same article again.
    let fx = run.say(900, "email", "u1", "How do I return an item? The label does not print");
    assert!(outbound(&fx).is_empty(), "{fx:?}");
    assert_eq!(offers(&fx).len(), 1);
    assert!(offers(&fx)[0].reopened);
}

#[test]
fn russian_questions_get_russian_articles_and_words() {
    let mut run = Run::new();
    let fx = run.say(0, "webhook", "u1", "как вернуть товар");
    let answer = outbound(&fx)[0];
    assert!(answer.text.starts_with("Как вернуть товар\n"), "{}", answer.text);
    assert!(answer.text.contains("Это ответ на ваш вопрос? Ответьте «да»"), "{}", answer.text);
    assert_eq!(answer.metadata[metadata::L0_NO], "Нет, нужен оператор");
    let fx = run.say(10, "webhook", "u1", "да, спасибо!");
    assert_eq!(events(&fx, EventKind::Resolved)[0].data["l0"], "helped");
}

#[test]
fn replay_without_the_folder_sends_the_same_from_the_journal() {
    let mut run = Run::new();
    run.say(0, "telegram", "u1", "my password does not work, cannot log in");
    run.say(5, "telegram", "u2", "How do I return an item?");
    run.say(9, "telegram", "u1", "no");
    run.say(12, "telegram", "u2", "yes thanks");
    run.until(2000);
    let mut replay = Router::new(config(None)).expect("valid config");
    let replayed: Vec<Effect> = run.journal.iter().flat_map(|(seq, entry)| replay.apply(*seq, entry)).collect();
    assert_eq!(replayed, run.effects, "the answers come from the journal, not the folder");
    let shown = outbound(&run.effects)[0].metadata[metadata::L0_ARTICLES].clone();
    assert_eq!(shown, "password-reset-en,login-problems-en", "two close articles are both shown");
}
