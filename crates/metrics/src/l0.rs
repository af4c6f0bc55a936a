//! L0 deflection: how often the knowledge-base bot answered a customer, and what came of it
//! (the customer said it helped, never answered, or was handed to a human), per team and per
//! article. Read from the router's `auto_replied` (`data.reason = "kb"`), `resolved`
//! (`data.l0 = "helped" | "no_reply"`) and `escalated` (`data.l0 = "handed_off"`) events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_core::{Event, EventKind};

use crate::dims::{Dims, Ms};

/// Distinct article ids counted on their own; further ids are counted under [`OTHER_ARTICLE`].
/// Articles are the operator's, but their ids come from events, so the map (and the
/// exposition's `article` label) stays bounded whatever the events say.
pub const ARTICLE_CAP: usize = 1000;

/// The id articles beyond [`ARTICLE_CAP`] are counted under.
pub const OTHER_ARTICLE: &str = "other";

/// Article ids taken from one event at most: the bot shows a few.
const IDS_PER_EVENT: usize = 10;

/// One step of the bot's conversation with a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum L0Step {
    /// The bot answered with articles: the conversation arrived at L0.
    Answered,
    /// The customer said the answer helped: resolved at L0.
    Helped,
    /// The customer never answered the bot's question: resolved at L0 after the timeout.
    NoReply,
    /// The customer said no, asked for a human or asked again: handed to L1.
    HandedOff,
}

impl L0Step {
    /// The outcome label of the exposition (`None` for [`L0Step::Answered`], not an outcome).
    pub fn outcome(self) -> Option<&'static str> {
        match self {
            L0Step::Answered => None,
            L0Step::Helped => Some("helped"),
            L0Step::NoReply => Some("no_reply"),
            L0Step::HandedOff => Some("handed_off"),
        }
    }

    /// The L0 step an event records, with the article ids it names (shown ones for an answer,
    /// the best one shown for an outcome); `None` for any other event.
    pub fn of_event(event: &Event) -> Option<(L0Step, Vec<String>)> {
        let text = |key: &str| event.data.get(key).and_then(|v| v.as_str());
        let step = match (event.kind, text("reason"), text("l0")) {
            (EventKind::AutoReplied, Some("kb"), _) => L0Step::Answered,
            (EventKind::Resolved, _, Some("helped")) => L0Step::Helped,
            (EventKind::Resolved, _, Some("no_reply")) => L0Step::NoReply,
            (EventKind::Escalated, _, Some("handed_off")) => L0Step::HandedOff,
            _ => return None,
        };
        let articles: Vec<String> = if step == L0Step::Answered {
            let ids = event.data.get("kb_articles").and_then(|v| v.as_array());
            ids.into_iter().flatten().filter_map(|v| v.as_str()).take(IDS_PER_EVENT).map(str::to_string).collect()
        } else {
            text("kb_article").map(str::to_string).into_iter().collect()
        };
        Some((step, articles))
    }
}

/// Counts of the bot's answers and their outcomes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct L0Counts {
    /// The bot answered (arrived at L0).
    pub answered: u64,
    /// Resolved at L0: the customer said it helped.
    pub helped: u64,
    /// Resolved at L0: the customer never answered.
    pub no_reply: u64,
    /// Handed to a human after the bot's answer.
    pub handed_off: u64,
}

impl L0Counts {
    fn add(&mut self, step: L0Step) {
        match step {
            L0Step::Answered => self.answered += 1,
            L0Step::Helped => self.helped += 1,
            L0Step::NoReply => self.no_reply += 1,
            L0Step::HandedOff => self.handed_off += 1,
        }
    }

    /// Resolved at L0 (helped or no reply) over answered.
    pub fn deflection(&self) -> Option<f64> {
        ratio(self.helped + self.no_reply, self.answered)
    }

    /// The confirmed share: the customer said it helped, over answered.
    pub fn confirmed(&self) -> Option<f64> {
        ratio(self.helped, self.answered)
    }

    /// Handed to a human over answered.
    pub fn handoff_rate(&self) -> Option<f64> {
        ratio(self.handed_off, self.answered)
    }
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

/// Counts of one article.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArticleCounts {
    /// Times the bot showed it.
    pub shown: u64,
    /// Times it was the best article shown and the customer said it helped.
    pub helped: u64,
    /// Times it was the best article shown and the customer was handed to a human.
    pub handed_off: u64,
}

impl ArticleCounts {
    /// Helped over shown.
    pub fn helpful(&self) -> Option<f64> {
        ratio(self.helped, self.shown)
    }
}

/// Per-article counts, at most [`ARTICLE_CAP`] ids plus [`OTHER_ARTICLE`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Articles(pub BTreeMap<String, ArticleCounts>);

impl Articles {
    /// Counts one step for the articles it names.
    pub fn add(&mut self, step: L0Step, articles: &[String]) {
        for id in articles {
            let distinct = self.0.len() - usize::from(self.0.contains_key(OTHER_ARTICLE));
            let known = self.0.contains_key(id) || distinct < ARTICLE_CAP;
            let key = if known { id.clone() } else { OTHER_ARTICLE.to_string() };
            let a = self.0.entry(key).or_default();
            match step {
                L0Step::Answered => a.shown += 1,
                L0Step::Helped => a.helped += 1,
                L0Step::HandedOff => a.handed_off += 1,
                L0Step::NoReply => {}
            }
        }
    }

    /// The `n` articles shown most (ties by id), most first.
    pub fn top(&self, n: usize) -> Vec<(&str, &ArticleCounts)> {
        let mut all: Vec<(&str, &ArticleCounts)> = self.0.iter().map(|(k, v)| (k.as_str(), v)).collect();
        all.sort_by(|a, b| b.1.shown.cmp(&a.1.shown).then(a.0.cmp(b.0)));
        all.truncate(n);
        all
    }
}

/// Cumulative L0 counters for the exposition: by team and by article.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct L0Totals {
    /// By team.
    pub by_team: BTreeMap<String, L0Counts>,
    /// By article.
    pub articles: Articles,
}

/// One L0 step of one conversation, kept for windowed reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct L0Fact {
    /// When.
    pub at: Ms,
    /// The conversation's channel and routing then.
    pub dims: Dims,
    /// What happened.
    pub step: L0Step,
    /// The articles concerned.
    #[serde(default)]
    pub articles: Vec<String>,
}

/// Records an L0 step in the totals and the facts.
pub(crate) fn record(totals: &mut L0Totals, facts: &mut Vec<L0Fact>, fact: L0Fact) {
    totals.by_team.entry(fact.dims.routing.team.clone()).or_default().add(fact.step);
    totals.articles.add(fact.step, &fact.articles);
    facts.push(fact);
}

/// The per-article counts of some facts.
pub(crate) fn articles<'a>(facts: impl Iterator<Item = &'a L0Fact>) -> Articles {
    let mut articles = Articles::default();
    for f in facts {
        articles.add(f.step, &f.articles);
    }
    articles
}

/// Adds one step to a count (for the report's groups).
pub(crate) fn count(counts: &mut L0Counts, step: L0Step) {
    counts.add(step);
}
