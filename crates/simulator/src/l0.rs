//! The knowledge base in a simulation: the `[kb]` section of a simulate configuration (the
//! folder, the score an article needs, and optionally labelled questions to draw customers'
//! first messages from), and how a simulated customer answers the bot's "Did this answer your
//! question?".

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchboard_kb::{DEFAULT_MIN_SCORE, Kb, Limits};
use switchboard_router::KnowledgeBase;

use crate::SimError;

/// A customer's first message with, when labelled, the article that answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// As the customer writes it (`question` in `crates/kb/eval/questions.json`).
    #[serde(alias = "question")]
    pub text: String,
    /// The article id that answers it, `"none"` when the knowledge base has no answer; absent
    /// when unlabelled.
    #[serde(default)]
    pub expect: Option<String>,
}

/// The knowledge base a simulation runs, and questions to draw first messages from for topics
/// that give none.
#[derive(Debug, Clone)]
pub struct L0Setup {
    /// The loaded folder and its score threshold, as the daemon's leader uses them.
    pub kb: KnowledgeBase,
    /// Labelled questions (e.g. `crates/kb/eval/questions.json`); empty: topics' texts stay.
    pub questions: Vec<Question>,
}

/// The `[kb]` section of a simulate configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct Section {
    enabled: bool,
    path: Option<PathBuf>,
    min_score: f32,
    questions: Option<PathBuf>,
}

impl Default for Section {
    fn default() -> Self {
        Section { enabled: true, path: None, min_score: DEFAULT_MIN_SCORE, questions: None }
    }
}

impl L0Setup {
    /// Loads the folder `kb` (answers scoring at least `min_score`) and, if given, a JSON list of
    /// questions.
    pub fn load(kb: &Path, min_score: f32, questions: Option<&Path>) -> Result<L0Setup, SimError> {
        let name = kb.display().to_string();
        let loaded = Kb::load(kb, Limits::default()).map_err(|problems| SimError::Config {
            path: name,
            reason: problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "),
        })?;
        let questions = match questions {
            None => Vec::new(),
            Some(file) => {
                let name = file.display().to_string();
                let text =
                    std::fs::read_to_string(file).map_err(|source| SimError::Read { path: name.clone(), source })?;
                serde_json::from_str(&text).map_err(|source| SimError::Traffic { path: name, source })?
            }
        };
        Ok(L0Setup { kb: KnowledgeBase::new(loaded, min_score), questions })
    }
}

/// Reads the `[kb]` section of a simulate configuration (paths relative to the working
/// directory, as the daemon's): `None` when there is none or it is disabled.
pub fn load_l0(config: &Path) -> Result<Option<L0Setup>, SimError> {
    let name = config.display().to_string();
    let text = std::fs::read_to_string(config).map_err(|source| SimError::Read { path: name.clone(), source })?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| SimError::Config { path: name.clone(), reason: e.to_string() })?;
    let Some(section) = value.get("kb").cloned() else { return Ok(None) };
    let section: Section = section
        .try_into()
        .map_err(|e: toml::de::Error| SimError::Config { path: name.clone(), reason: format!("[kb]: {e}") })?;
    if !section.enabled {
        return Ok(None);
    }
    let Some(path) = section.path else {
        return Err(SimError::Config { path: name, reason: "[kb]: path must name the knowledge base folder".into() });
    };
    L0Setup::load(&path, section.min_score, section.questions.as_deref()).map(Some)
}

/// What the customer does with the bot's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Says it helped.
    Yes,
    /// Says it did not.
    No,
    /// Never answers.
    Silence,
}

/// The customer's answer: silent with `silent`; otherwise, when the top article is the one
/// expected, yes with `yes` (else silent: satisfied customers often just leave); when it is
/// another article or the question has no answer, no; unlabelled, yes with `yes` else no.
/// `draw` gives uniform numbers in [0, 1).
pub(crate) fn answer(
    expect: Option<&str>,
    top: Option<&str>,
    silent: f64,
    yes: f64,
    draw: &mut impl FnMut() -> f64,
) -> Answer {
    if draw() < silent {
        return Answer::Silence;
    }
    match expect {
        Some(e) if Some(e) == top => {
            if draw() < yes {
                Answer::Yes
            } else {
                Answer::Silence
            }
        }
        Some(_) => Answer::No,
        None if draw() < yes => Answer::Yes,
        None => Answer::No,
    }
}

/// The answer's words in the question's language: Russian when it has Cyrillic letters.
pub(crate) fn words(answer: Answer, question: &str) -> Option<&'static str> {
    let russian = question.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c));
    match (answer, russian) {
        (Answer::Silence, _) => None,
        (Answer::Yes, false) => Some("yes"),
        (Answer::Yes, true) => Some("да"),
        (Answer::No, false) => Some("no"),
        (Answer::No, true) => Some("нет"),
    }
}

#[cfg(test)]
mod tests {
    use super::{Answer, answer, words};

    #[test]
    fn the_customer_says_yes_only_to_the_right_article() {
        let mut always = || 0.0;
        assert_eq!(answer(Some("refund"), Some("refund"), 0.0, 1.0, &mut || 0.5), Answer::Yes);
        assert_eq!(answer(Some("refund"), Some("invoice"), 0.0, 1.0, &mut || 0.5), Answer::No);
        assert_eq!(answer(Some("none"), Some("invoice"), 0.0, 1.0, &mut || 0.5), Answer::No);
        assert_eq!(answer(Some("refund"), Some("refund"), 0.0, 0.0, &mut || 0.5), Answer::Silence);
        assert_eq!(answer(Some("refund"), Some("refund"), 1.0, 1.0, &mut always), Answer::Silence);
        assert_eq!(words(Answer::Yes, "где мой заказ"), Some("да"));
        assert_eq!(words(Answer::No, "where is my parcel"), Some("no"));
    }
}
