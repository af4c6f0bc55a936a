//! The L0 bot's knowledge-base step: the leader looks a customer's question up when the message
//! may open a conversation at L0 and journals what it found ([`KbHit`]); applying the entry, the
//! router answers with the articles and a "Did this answer your question?", and reads the
//! customer's next message as yes (resolved at L0) or anything else (on to a person).

use std::collections::BTreeMap;

use switchboard_core::contract::metadata;
use switchboard_core::record::{L0Article, L0Info};
use switchboard_core::{Envelope, Tier};
use switchboard_routing::ConversationId;

use crate::kb::{KbHit, MAX_SHOWN};
use crate::router::{Fx, Router};

/// The share of the best article's score another one needs to be shown beside it.
const SECOND_SHARE: f32 = 0.6;

/// Whether a customer's message says yes to "Did this answer your question?": its first line
/// (a mail's quote below is ignored) is only words of assent and thanks, so "yes, but how do I
/// ..." is another question and goes to a person.
pub fn says_yes(text: &str) -> bool {
    const ASSENT: &[&str] = &["yes", "y", "yep", "yeah", "yup", "да", "ага", "угу", "помогло", "helped", "👍"];
    const POLITE: &[&str] = &[
        "it",
        "did",
        "thanks",
        "thank",
        "you",
        "ok",
        "okay",
        "great",
        "perfect",
        "спасибо",
        "большое",
        "отлично",
        "хорошо",
        "ок",
        "всё",
        "все",
        "понятно",
        "it's",
        "has",
        "really",
        "very",
        "much",
        "so",
    ];
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else { return false };
    let lower = line.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\'') || "«»—–…".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    words.len() <= 8
        && words.iter().any(|w| ASSENT.contains(w))
        && words.iter().all(|w| ASSENT.contains(w) || POLITE.contains(w))
}

/// The question under the answer, the buttons' labels and how to answer by text.
fn wording(lang: &str, channel: &str) -> (&'static str, &'static str, &'static str, Option<&'static str>) {
    let buttons = matches!(channel, "telegram" | "webchat");
    if lang == "ru" {
        let how = (!buttons).then_some("Ответьте «да», если да, или «нет», чтобы вам ответил оператор.");
        ("Это ответ на ваш вопрос?", "Да", "Нет, нужен оператор", how)
    } else {
        let how = (!buttons).then_some("Reply \"yes\" if it did, or \"no\" to reach a person.");
        ("Did this answer your question?", "Yes", "No, I need a person", how)
    }
}

impl Router {
    /// What the leader journals with a customer's message: the knowledge base's answers when
    /// the message may meet the L0 bot (it would open or reopen a conversation, and some rule
    /// or team sends conversations to L0), else nothing.
    pub fn kb_lookup(&self, envelope: &Envelope) -> Vec<KbHit> {
        let Some(kb) = &self.cfg.kb else { return Vec::new() };
        if !self.l0_possible {
            return Vec::new();
        }
        let thread = crate::inbound::thread_of(envelope);
        let open = self.engine.current_conversation(&thread).and_then(|c| self.engine.where_is(c));
        if open.is_some_and(|(state, _)| state != "resolved") {
            return Vec::new();
        }
        kb.answers(envelope)
    }

    /// Sends the bot's answer from `hits` (those for `team`) and records it as pending.
    pub(crate) fn kb_answer(&mut self, conversation: ConversationId, team: &str, hits: &[KbHit], fx: &mut Fx) {
        let mut shown: Vec<&KbHit> =
            hits.iter().filter(|h| h.team.as_deref().is_none_or(|t| t == team)).take(MAX_SHOWN).collect();
        let Some(best) = shown.first().copied() else { return };
        // A second article only when it is nearly as good: otherwise it buries the answer.
        shown.retain(|h| h.score >= best.score * SECOND_SHARE);
        let Some(r) = self.st.records.get_mut(&conversation) else { return };
        let (question, yes, no, how) = wording(&best.language, &r.channel);
        let mut text = String::new();
        for h in &shown {
            text.push_str(&h.title);
            text.push('\n');
            text.push_str(&h.excerpt);
            if let Some(url) = &h.url {
                text.push('\n');
                text.push_str(url);
            }
            text.push_str("\n\n");
        }
        text.push_str(question);
        if let Some(how) = how {
            text.push(' ');
            text.push_str(how);
        }
        let ids: Vec<&str> = shown.iter().map(|h| h.id.as_str()).collect();
        let meta = BTreeMap::from([
            (metadata::L0_QUESTION.to_string(), metadata::L0_HELPFUL.to_string()),
            (metadata::L0_YES.to_string(), yes.to_string()),
            (metadata::L0_NO.to_string(), no.to_string()),
            (metadata::L0_ARTICLES.to_string(), ids.join(",")),
        ]);
        r.l0 = Some(L0Info {
            articles: shown
                .iter()
                .map(|h| L0Article { id: h.id.clone(), title: h.title.clone(), score: h.score })
                .collect(),
            outcome: "pending".into(),
            at: fx.at,
        });
        let scores: Vec<f32> = shown.iter().map(|h| h.score).collect();
        let data = serde_json::json!({ "reason": "kb", "tier": Tier::L0, "kb_articles": ids, "kb_scores": scores });
        self.auto_reply(conversation, text, meta, data, fx);
    }

    /// Whether the customer's message answers the bot's pending question with yes.
    pub(crate) fn l0_yes(&self, conversation: ConversationId, text: &str) -> bool {
        self.st.records.get(&conversation).is_some_and(|r| {
            r.state == "bot" && r.l0.as_ref().is_some_and(|l| l.outcome == "pending") && says_yes(text)
        })
    }

    /// Ends the bot's pending answer with `outcome`; the fields the conversation's event gets.
    pub(crate) fn l0_close(&mut self, conversation: ConversationId, outcome: &str) -> Option<serde_json::Value> {
        let l0 = self.st.records.get_mut(&conversation)?.l0.as_mut().filter(|l| l.outcome == "pending")?;
        l0.outcome = outcome.to_string();
        let ids: Vec<&str> = l0.articles.iter().map(|a| a.id.as_str()).collect();
        Some(serde_json::json!({
            "l0": outcome,
            "kb_article": ids.first(),
            "kb_articles": ids,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::says_yes;

    #[test]
    fn yes_is_assent_alone() {
        for yes in ["Yes", "yes!", "Да", "да, спасибо", "Yes, thank you very much!", "👍", "yep thanks", "Да\n> quoted"]
        {
            assert!(says_yes(yes), "{yes}");
        }
        for other in [
            "No, I need a person",
            "Нет, нужен оператор",
            "yes but how do I change the address?",
            "да, а как оплатить картой?",
            "thanks",
            "",
            "operator",
            "no",
        ] {
            assert!(!says_yes(other), "{other}");
        }
    }
}
