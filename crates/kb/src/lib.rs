//! Switchboard's knowledge base: help articles and saved replies kept as Markdown files in a
//! folder, checked ([`check`]) and searched in RAM with tantivy ([`Kb::search`]).
//!
//! No bus, no network: the daemon loads a [`Kb`] at start and calls [`Kb::reload_if_changed`]
//! on a timer; `switchboard kb check|search` use the same code. See `docs/kb.md`.

pub mod eval;
mod folder;
mod index;
mod parse;
mod placeholders;
mod reply;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use folder::Limits;
pub use index::{MAX_QUERY_CHARS, MAX_QUERY_TOKENS, TITLE_BOOST};
pub use parse::{Doc, KEYS, Kind, Problem, markdown_to_text};
pub use reply::{RenderError, Reply, VARIABLES, render};

use index::DocIndex;

/// The score a hit needs before it is shown to a customer, chosen on the evaluation set
/// (`docs/kb.md`): it maximises right-answer-or-right-silence there.
pub const DEFAULT_MIN_SCORE: f32 = 4.7;

/// An article's or a question's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    En,
    /// Russian.
    Ru,
}

impl Lang {
    /// The code used in front matter and on the command line.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Ok(Lang::En),
            "ru" => Ok(Lang::Ru),
            _ => Err(()),
        }
    }
}

/// The language of customer text: Russian when at least 30% of its letters are Cyrillic,
/// otherwise English (also for text without letters). Enough for two languages with distinct
/// alphabets; a transliterated Russian question ("dostavka") counts as English.
pub fn detect_language(text: &str) -> Lang {
    let (mut letters, mut cyrillic) = (0usize, 0usize);
    for c in text.chars().take(MAX_QUERY_CHARS).filter(|c| c.is_alphabetic()) {
        letters += 1;
        if ('\u{0400}'..='\u{04FF}').contains(&c) {
            cyrillic += 1;
        }
    }
    if cyrillic > 0 && cyrillic * 10 >= letters * 3 { Lang::Ru } else { Lang::En }
}

/// Which articles a search may return: an article with a `team` only for that team, one with
/// `channels` only on those; an unset filter field allows every article.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The conversation's team.
    pub team: Option<String>,
    /// The conversation's channel (`telegram`, `email`, ...).
    pub channel: Option<String>,
}

impl Filter {
    fn allows(&self, doc: &Doc) -> bool {
        let team_ok = match (&self.team, &doc.team) {
            (Some(want), Some(team)) => want == team,
            _ => true,
        };
        let channel_ok = match &self.channel {
            Some(want) if !doc.channels.is_empty() => doc.channels.iter().any(|c| c == want),
            _ => true,
        };
        team_ok && channel_ok
    }
}

/// One search result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    /// The article's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// BM25 score (summed over the question's terms and fields; a title word weighs about 2.5
    /// times a body word); compare with `min_score`.
    pub score: f32,
    /// Its link, when it has one.
    pub url: Option<String>,
    /// Its language.
    pub language: Lang,
    /// The team it is limited to, if any.
    pub team: Option<String>,
    #[serde(skip)]
    text: Arc<str>,
}

impl Hit {
    /// The article's plain text shortened to at most `max_chars` characters, cut at a word
    /// boundary and ending in "…" when shortened.
    pub fn excerpt(&self, max_chars: usize) -> String {
        excerpt(&self.text, max_chars)
    }
}

/// `text` shortened to at most `max_chars` characters at a word boundary (see [`Hit::excerpt`]).
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        return flat;
    }
    let budget = max_chars.saturating_sub(1);
    let end = flat.char_indices().nth(budget).map_or(flat.len(), |(i, _)| i);
    let cut = &flat[..end];
    let cut = match cut.rfind(' ') {
        Some(space) if space > end / 2 => &cut[..space],
        _ => cut,
    };
    format!("{}…", cut.trim_end_matches([',', ';', ':', '.', ' ']))
}

/// A loaded, indexed folder.
pub struct Kb {
    folder: PathBuf,
    limits: Limits,
    stamps: Vec<folder::Stamp>,
    articles: Vec<Arc<Doc>>,
    texts: Vec<Arc<str>>,
    replies: BTreeMap<String, Reply>,
    reply_docs: Vec<Arc<Doc>>,
    article_index: DocIndex,
    reply_index: DocIndex,
    fuzzy: bool,
    /// The stamps of the last folder state a reload refused, so it is not parsed every poll.
    rejected: Option<Vec<folder::Stamp>>,
}

impl std::fmt::Debug for Kb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kb")
            .field("folder", &self.folder)
            .field("articles", &self.articles.len())
            .field("replies", &self.replies.len())
            .finish()
    }
}

/// Reads, checks and indexes `folder` with the default [`Limits`]; every problem found, or
/// the knowledge base.
pub fn check(folder: &Path) -> Result<Kb, Vec<Problem>> {
    Kb::load(folder, Limits::default())
}

impl Kb {
    /// Reads, checks and indexes `folder`: every problem of every file, or the knowledge base.
    /// Cheap enough to call on every change (a few ms for a hundred articles).
    pub fn load(folder: &Path, limits: Limits) -> Result<Kb, Vec<Problem>> {
        let stamps = folder::scan(folder, &limits).map_err(|p| vec![p])?;
        let mut problems = Vec::new();
        let mut docs: Vec<Doc> = Vec::new();
        for (path, _, len) in &stamps {
            if *len > limits.max_file_bytes {
                problems.push(Problem {
                    file: path.clone(),
                    line: 0,
                    reason: format!(
                        "{len} bytes is over the {} byte limit (`[kb] max_file_bytes`)",
                        limits.max_file_bytes
                    ),
                });
                continue;
            }
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(Problem { file: path.clone(), line: 0, reason: format!("cannot read: {e}") });
                    continue;
                }
            };
            match parse::parse(path, &text) {
                Ok(doc) => docs.push(doc),
                Err(mut p) => problems.append(&mut p),
            }
        }
        let mut first: BTreeMap<&str, &Doc> = BTreeMap::new();
        for doc in &docs {
            if let Some(other) = first.insert(&doc.id, doc) {
                problems.push(Problem {
                    file: doc.file.clone(),
                    line: doc.id_line,
                    reason: format!("duplicate id `{}`, also in {}:{}", doc.id, other.file.display(), other.id_line),
                });
                first.insert(&other.id, other);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let index_problem = |e: tantivy::TantivyError| {
            vec![Problem { file: folder.to_path_buf(), line: 0, reason: format!("cannot index: {e}") }]
        };
        let (articles, reply_docs): (Vec<Arc<Doc>>, Vec<Arc<Doc>>) =
            docs.into_iter().map(Arc::new).partition(|d| d.kind == Kind::Article);
        let article_index =
            DocIndex::build(&articles.iter().map(|d| d.as_ref()).collect::<Vec<_>>()).map_err(index_problem)?;
        let reply_index =
            DocIndex::build(&reply_docs.iter().map(|d| d.as_ref()).collect::<Vec<_>>()).map_err(index_problem)?;
        let texts = articles.iter().map(|d| Arc::from(d.text.as_str())).collect();
        let replies = reply_docs.iter().map(|d| (d.id.clone(), Reply::from(d.as_ref()))).collect();
        tracing::debug!(folder = %folder.display(), articles = articles.len(), "knowledge base loaded");
        Ok(Kb {
            folder: folder.to_path_buf(),
            limits,
            stamps,
            articles,
            texts,
            replies,
            reply_docs,
            article_index,
            reply_index,
            fuzzy: true,
            rejected: None,
        })
    }

    /// Whether a word no article contains is also matched within one edit (on by default; the
    /// evaluation in `docs/kb.md` measured it).
    pub fn set_fuzzy(&mut self, on: bool) {
        self.fuzzy = on;
    }

    /// The folder it was loaded from.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The articles (not the replies), in file order.
    pub fn articles(&self) -> impl Iterator<Item = &Doc> {
        self.articles.iter().map(|d| d.as_ref())
    }

    /// The saved replies by name.
    pub fn replies(&self) -> impl Iterator<Item = &Reply> {
        self.replies.values()
    }

    /// The saved reply named `name` (its `id`).
    pub fn reply(&self, name: &str) -> Option<&Reply> {
        self.replies.get(name)
    }

    /// The articles answering `question`, best first, at most `limit`, in `lang` (detected from
    /// the question when `None`) and allowed by `filter`. Never fails on customer text: odd
    /// characters are just characters, and the work is bounded by [`MAX_QUERY_CHARS`] and
    /// [`MAX_QUERY_TOKENS`].
    pub fn search(&self, question: &str, lang: Option<Lang>, limit: usize, filter: &Filter) -> Vec<Hit> {
        let lang = lang.unwrap_or_else(|| detect_language(question));
        self.ranked(&self.article_index, &self.articles, question, lang, limit, filter)
            .into_iter()
            .map(|(i, score)| {
                let doc = &self.articles[i];
                Hit {
                    id: doc.id.clone(),
                    title: doc.title.clone(),
                    score,
                    url: doc.url.clone(),
                    language: doc.language,
                    team: doc.team.clone(),
                    text: self.texts[i].clone(),
                }
            })
            .collect()
    }

    /// Saved replies matching `question` (for suggesting one to the agent), best first.
    pub fn suggest_replies(
        &self,
        question: &str,
        lang: Option<Lang>,
        limit: usize,
        filter: &Filter,
    ) -> Vec<(&Reply, f32)> {
        let lang = lang.unwrap_or_else(|| detect_language(question));
        self.ranked(&self.reply_index, &self.reply_docs, question, lang, limit, filter)
            .into_iter()
            .filter_map(|(i, score)| self.replies.get(&self.reply_docs[i].id).map(|r| (r, score)))
            .collect()
    }

    fn ranked(
        &self,
        index: &DocIndex,
        docs: &[Arc<Doc>],
        question: &str,
        lang: Lang,
        limit: usize,
        filter: &Filter,
    ) -> Vec<(usize, f32)> {
        if limit == 0 || docs.is_empty() {
            return Vec::new();
        }
        // Every document may be a candidate before the filter; there are at most max_articles.
        match index.search(question, lang, docs.len(), self.fuzzy) {
            Ok(hits) => hits.into_iter().filter(|(i, _)| filter.allows(&docs[*i])).take(limit).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "knowledge base search failed");
                Vec::new()
            }
        }
    }

    /// The question's terms after analysis (what is searched), for explaining a result.
    pub fn terms(&self, question: &str, lang: Lang) -> Vec<String> {
        self.article_index.terms(question, lang)
    }

    /// Loads the folder again if any file was added, removed, resized or modified since this
    /// one was loaded (an mtime poll: cheap, call it every few seconds). `Ok(true)`: reloaded;
    /// `Ok(false)`: nothing changed; `Err`: the folder changed but has problems, and `self` keeps
    /// serving what it had; the same broken state is reported once, and the next change is
    /// loaded again.
    pub fn reload_if_changed(&mut self) -> Result<bool, Vec<Problem>> {
        let now = folder::scan(&self.folder, &self.limits).map_err(|p| vec![p])?;
        if now == self.stamps || self.rejected.as_ref() == Some(&now) {
            return Ok(false);
        }
        let mut fresh = match Kb::load(&self.folder, self.limits) {
            Ok(kb) => kb,
            Err(problems) => {
                self.rejected = Some(now);
                return Err(problems);
            }
        };
        fresh.fuzzy = self.fuzzy;
        *self = fresh;
        Ok(true)
    }

    /// Ids of the articles, for checking references from elsewhere (rules, tests).
    pub fn ids(&self) -> HashSet<&str> {
        self.articles.iter().map(|d| d.id.as_str()).chain(self.replies.keys().map(String::as_str)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_cut_at_a_word_within_the_budget() {
        let text = "We refund as soon as the item\nreaches our warehouse, usually within three days.";
        assert_eq!(
            excerpt(text, 200),
            "We refund as soon as the item reaches our warehouse, usually within three days."
        );
        let short = excerpt(text, 40);
        assert_eq!(short, "We refund as soon as the item reaches…");
        assert!(short.chars().count() <= 40);
        assert_eq!(excerpt("Доставка занимает три рабочих дня", 20), "Доставка занимает…");
    }
}
