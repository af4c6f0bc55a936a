//! The knowledge base as the router sees it: the shared, reloadable [`KnowledgeBase`] the leader
//! searches, and the [`KbHit`]s it journals with a customer's message.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use switchboard_core::Envelope;
use switchboard_kb::{Filter, Kb};

/// Most articles one answer shows.
pub const MAX_SHOWN: usize = 2;

/// One knowledge-base article the leader found for a customer's message, journaled with the
/// message so that replay answers the same even after the folder changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KbHit {
    /// The article's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its score for the question.
    pub score: f32,
    /// Its text shortened to fit the channel.
    pub excerpt: String,
    /// Its link, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The team it is limited to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Its language (`en`, `ru`).
    pub language: String,
}

/// The knowledge base the leader consults, shared with the task that reloads it on change
/// (which swaps in a new [`Kb`], so a search never waits for a reload).
#[derive(Clone)]
pub struct KnowledgeBase {
    /// The loaded folder.
    pub kb: Arc<RwLock<Arc<Kb>>>,
    /// The score an article needs to be shown to a customer.
    pub min_score: f32,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase").field("min_score", &self.min_score).finish_non_exhaustive()
    }
}

/// How long an excerpt may be on a channel: a screenful in chats, more in a mail.
fn excerpt_chars(channel: &str) -> usize {
    if channel == "email" { 1200 } else { 500 }
}

impl KnowledgeBase {
    /// A knowledge base answering with articles scoring at least `min_score`.
    pub fn new(kb: Kb, min_score: f32) -> KnowledgeBase {
        KnowledgeBase { kb: Arc::new(RwLock::new(Arc::new(kb))), min_score }
    }

    /// The folder as last loaded.
    pub fn current(&self) -> Arc<Kb> {
        match self.kb.read() {
            Ok(kb) => Arc::clone(&kb),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Serves `kb` from now on.
    pub fn replace(&self, kb: Kb) {
        let fresh = Arc::new(kb);
        match self.kb.write() {
            Ok(mut slot) => *slot = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
    }

    /// The articles above the score answering `envelope`'s text on its channel, best first.
    pub fn answers(&self, envelope: &Envelope) -> Vec<KbHit> {
        let question = match &envelope.subject {
            Some(subject) if !subject.trim().is_empty() => format!("{subject}\n{}", envelope.text),
            _ => envelope.text.clone(),
        };
        if question.trim().is_empty() {
            return Vec::new();
        }
        let filter = Filter { team: None, channel: Some(envelope.channel.clone()) };
        let kb = self.current();
        // The language is the question's own (detected), not the channel's idea of the
        // customer's (a Telegram app in English says little about what its user writes in).
        // More than shown are asked for: some may be limited to a team the conversation does
        // not go to.
        kb.search(&question, None, MAX_SHOWN * 3, &filter)
            .into_iter()
            .filter(|h| h.score >= self.min_score)
            .map(|h| KbHit {
                excerpt: h.excerpt(excerpt_chars(&envelope.channel)),
                id: h.id,
                title: h.title,
                score: h.score,
                url: h.url,
                team: h.team,
                language: h.language.code().to_string(),
            })
            .collect()
    }
}

/// Whether a conversation can meet the L0 bot's knowledge base: there is one, and some rule
/// sends conversations to L0 or some team is `kb_first`.
pub(crate) fn possible(has_kb: bool, routing: &switchboard_routing::RoutingConfig) -> bool {
    use switchboard_core::Tier;
    has_kb && (routing.teams.values().any(|t| t.kb_first) || routing.rules.iter().any(|r| r.tier == Some(Tier::L0)))
}
