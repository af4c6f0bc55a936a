//! Scoring a knowledge base against labelled customer questions (`crates/kb/eval/`), and the
//! baseline it is compared with: the question's words found as substrings of article titles.
//!
//! How questions count: an answerable question is right at 1 when the top hit is its article;
//! at 3 when its article is among the top three. "At `min_score`" figures also require the hit to
//! score at least `min_score`, and count a "none" question right when no hit reaches it (correct
//! silence). Ranking-only figures (without a threshold) are over answerable questions only.

use serde::Deserialize;

use crate::{Filter, Kb};

/// One labelled question.
#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    /// As a customer wrote it.
    pub question: String,
    /// The article that answers it, or `"none"`.
    pub expect: String,
}

impl Question {
    /// Whether the knowledge base has no answer for it.
    pub fn is_none(&self) -> bool {
        self.expect == "none"
    }
}

/// The top three (id, score) of one question, best first.
pub type Ranked = Vec<(String, f32)>;

/// The figures of one ranker over the questions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Answerable questions whose top hit is their article (no threshold).
    pub precision_at_1: f64,
    /// Answerable questions whose article is in the top three (no threshold).
    pub recall_at_3: f64,
    /// All questions right at 1 with the threshold (right article above it, or correct silence).
    pub precision_at_1_min_score: f64,
    /// All questions right at 3 with the threshold.
    pub recall_at_3_min_score: f64,
    /// "none" questions with nothing above the threshold.
    pub silence_on_none: f64,
}

/// Scores rankings (one per question, same order) at threshold `min_score`.
pub fn figures(questions: &[Question], ranked: &[Ranked], min_score: f32) -> Figures {
    let (mut answerable, mut nones) = (0usize, 0usize);
    let (mut p1, mut r3, mut p1t, mut r3t, mut silent) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for (q, hits) in questions.iter().zip(ranked) {
        let above: Vec<&(String, f32)> = hits.iter().filter(|(_, s)| *s >= min_score).collect();
        if q.is_none() {
            nones += 1;
            if above.is_empty() {
                silent += 1;
                p1t += 1;
                r3t += 1;
            }
            continue;
        }
        answerable += 1;
        let is = |h: &&(String, f32)| h.0 == q.expect;
        p1 += usize::from(hits.first().is_some_and(|h| h.0 == q.expect));
        r3 += usize::from(hits.iter().take(3).any(|h| h.0 == q.expect));
        p1t += usize::from(above.first().is_some_and(is));
        r3t += usize::from(above.iter().take(3).any(is));
    }
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let all = questions.len();
    Figures {
        precision_at_1: share(p1, answerable),
        recall_at_3: share(r3, answerable),
        precision_at_1_min_score: share(p1t, all),
        recall_at_3_min_score: share(r3t, all),
        silence_on_none: share(silent, nones),
    }
}

/// The threshold that maximises right-answer-or-right-silence at 1 over `ranked`: the midpoint
/// between the best cut's neighbouring top scores, so it is not fitted to one question's score.
pub fn best_min_score(questions: &[Question], ranked: &[Ranked]) -> (f32, f64) {
    let mut tops: Vec<f32> = ranked.iter().filter_map(|h| h.first().map(|(_, s)| *s)).collect();
    tops.push(0.0);
    tops.sort_by(f32::total_cmp);
    tops.dedup();
    let mut best = (0.0f32, -1.0f64);
    for pair in tops.windows(2) {
        // Candidates: just above each top score (silencing it and everything lower).
        let cut = (pair[0] + pair[1]) / 2.0;
        let score = figures(questions, ranked, cut).precision_at_1_min_score;
        if score > best.1 {
            best = (cut, score);
        }
    }
    let at_zero = figures(questions, ranked, 0.0).precision_at_1_min_score;
    if at_zero >= best.1 { (0.0, at_zero) } else { best }
}

/// The knowledge base's top three for each question (language detected, no filter).
pub fn rank_kb(kb: &Kb, questions: &[Question]) -> Vec<Ranked> {
    questions
        .iter()
        .map(|q| kb.search(&q.question, None, 3, &Filter::default()).into_iter().map(|h| (h.id, h.score)).collect())
        .collect()
}

/// The baseline: each word of the question (3 characters or more, lowercased; shorter words
/// such as "a" or "и" would be in every title) looked for as a substring of each article's
/// title; articles ranked by the count of words found, ties in file order; a score of at
/// least 1 is a hit.
pub fn baseline(kb: &Kb, question: &str) -> Ranked {
    let words: Vec<String> = question
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_string)
        .collect();
    let mut scored: Vec<(String, f32)> = kb
        .articles()
        .filter_map(|a| {
            let title = a.title.to_lowercase();
            let n = words.iter().filter(|w| title.contains(w.as_str())).count();
            (n > 0).then(|| (a.id.clone(), n as f32))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.truncate(3);
    scored
}
