//! One file of the folder: front matter between `---` lines, then a Markdown body.
//!
//! Every mistake is a [`Problem`] naming the file, the line and the reason, so that
//! `switchboard kb check` can print them all at once, the way a compiler does.

use std::fmt;
use std::path::{Path, PathBuf};

use yaml_serde::Value;

use crate::Lang;
use crate::placeholders::{VARIABLES, placeholders};

/// One mistake in the folder: which file, which line (1-based; 0 for the file or folder as a
/// whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or the folder, for a problem with the folder itself).
    pub file: PathBuf,
    /// The 1-based line; 0 when the problem is with the file as a whole.
    pub line: usize,
    /// Why it is wrong, in words an editor of the folder can act on.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

/// What a file is: an article customers search, or a saved reply agents insert by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A help article (the default).
    Article,
    /// A saved reply (`kind: reply`), looked up by its `id`.
    Reply,
}

/// A parsed file: its front matter and its body.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Doc {
    /// Unique within the folder; a saved reply's name.
    pub id: String,
    /// The title shown to customers (boosted in search).
    pub title: String,
    /// The article's language.
    pub language: Lang,
    /// Keywords, indexed with the title's weight halved.
    pub tags: Vec<String>,
    /// The team the article is for; `None`: every team.
    pub team: Option<String>,
    /// The channels the article may be shown on; empty: every channel.
    pub channels: Vec<String>,
    /// A link to the full article, sent with the excerpt.
    pub url: Option<String>,
    /// Article or saved reply.
    pub kind: Kind,
    /// The body as written (Markdown; a reply's variables intact).
    pub body: String,
    /// The body as plain text, for the index and excerpts.
    pub text: String,
    /// The file it came from.
    #[serde(skip)]
    pub file: PathBuf,
    /// The line of the `id:` key, for the duplicate-id problem.
    #[serde(skip)]
    pub id_line: usize,
}

/// The front matter keys; any other key is a problem (a misspelt `titel:` would otherwise be
/// dropped without a word).
pub const KEYS: [&str; 8] = ["id", "title", "language", "tags", "team", "channels", "url", "kind"];

/// Parses one file's text. `file` only names the file in problems.
pub fn parse(file: &Path, text: &str) -> Result<Doc, Vec<Problem>> {
    let problem = |line: usize, reason: String| Problem { file: file.to_path_buf(), line, reason };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.first().map(|l| l.trim_end()) != Some("---") {
        return Err(vec![problem(1, "the file must start with a `---` line opening the front matter".into())]);
    }
    let Some(close) = lines.iter().skip(1).position(|l| l.trim_end() == "---").map(|i| i + 1) else {
        return Err(vec![problem(1, "the front matter opened here is never closed by a `---` line".into())]);
    };
    let front: String = lines[1..close].concat();
    let body: String = lines[close + 1..].concat();
    // Line numbers in the file: the front matter's first line is line 2.
    let key_line = |key: &str| {
        lines[1..close]
            .iter()
            .position(|l| l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with(':')))
            .map_or(1, |i| i + 2)
    };
    let value: Value = match yaml_serde::from_str(&front) {
        Ok(v) => v,
        Err(e) => {
            let line = e.location().map_or(1, |l| l.line() + 1);
            return Err(vec![problem(line, format!("bad front matter: {}", shift_lines(&e.to_string(), 1)))]);
        }
    };
    let Some(map) = value.as_mapping() else {
        return Err(vec![problem(2, "the front matter must be `key: value` lines".into())]);
    };
    let mut problems = Vec::new();
    for key in map.keys() {
        let name = scalar(key).unwrap_or_default();
        if !KEYS.contains(&name.as_str()) {
            problems.push(problem(key_line(&name), format!("unknown key `{name}` (known: {})", KEYS.join(", "))));
        }
    }
    let get = |key: &str| map.get(key).filter(|v| !v.is_null());
    let mut string = |key: &str, required: bool| -> Option<String> {
        match get(key) {
            None if required => {
                problems.push(problem(1, format!("missing `{key}` in the front matter")));
                None
            }
            None => None,
            Some(v) => match scalar(v).map(|s| s.trim().to_string()) {
                Some(s) if !s.is_empty() => Some(s),
                Some(_) => {
                    problems.push(problem(key_line(key), format!("`{key}` must not be empty")));
                    None
                }
                None => {
                    problems.push(problem(key_line(key), format!("`{key}` must be a single value, not a list or map")));
                    None
                }
            },
        }
    };
    let id = string("id", true);
    let title = string("title", true);
    let language = string("language", true);
    let team = string("team", false);
    let url = string("url", false);
    let kind = string("kind", false);
    let mut list = |key: &str| -> Vec<String> {
        match get(key) {
            None => Vec::new(),
            Some(Value::Sequence(items)) => {
                let out: Vec<String> = items.iter().filter_map(scalar).map(|s| s.trim().to_string()).collect();
                if out.len() != items.len() || out.iter().any(String::is_empty) {
                    problems.push(problem(key_line(key), format!("`{key}` must be a list of words")));
                }
                out
            }
            // `tags: refund` is read as a list of one, as an editor would mean it.
            Some(v) => match scalar(v) {
                Some(s) => vec![s.trim().to_string()],
                None => {
                    problems.push(problem(key_line(key), format!("`{key}` must be a list")));
                    Vec::new()
                }
            },
        }
    };
    let tags = list("tags");
    let channels = list("channels");
    if let Some(id) = &id
        && !valid_id(id)
    {
        problems.push(problem(
            key_line("id"),
            format!("id `{id}` must be 1-64 letters, digits, `-`, `_` or `.`, starting with a letter or digit"),
        ));
    }
    let language = language.and_then(|l| match l.parse::<Lang>() {
        Ok(lang) => Some(lang),
        Err(()) => {
            problems.push(problem(key_line("language"), format!("unknown language `{l}` (known: en, ru)")));
            None
        }
    });
    let kind = match kind.as_deref() {
        None | Some("article") => Kind::Article,
        Some("reply") => Kind::Reply,
        Some(other) => {
            problems.push(problem(key_line("kind"), format!("unknown kind `{other}` (known: article, reply)")));
            Kind::Article
        }
    };
    let body_line = close + 2;
    let body = body.trim().to_string();
    if body.is_empty() {
        problems.push(problem(body_line, "the body after the front matter is empty".into()));
    }
    if kind == Kind::Reply {
        for (offset, name) in placeholders(&body) {
            if !VARIABLES.contains(&name) {
                let line = body_line + lines_before(&body, offset);
                problems
                    .push(problem(line, format!("unknown variable `{{{name}}}` (known: {})", VARIABLES.join(", "))));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let (Some(id), Some(title), Some(language)) = (id, title, language) else {
        unreachable!("a missing required key is a problem above");
    };
    let text = markdown_to_text(&body);
    Ok(Doc {
        id,
        title,
        language,
        tags,
        team,
        channels,
        url,
        kind,
        body,
        text,
        file: file.to_path_buf(),
        id_line: key_line("id"),
    })
}

/// The YAML error's "line N" in the file's numbering (the front matter starts on line 2).
fn shift_lines(message: &str, by: usize) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("line ") {
        out.push_str(&rest[..at + 5]);
        rest = &rest[at + 5..];
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// A YAML scalar as text (numbers and booleans too: `id: 42` is the id "42").
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Ids become reply names typed by agents (`/t refund-ok`), so no spaces or punctuation.
fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn lines_before(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count()
}

/// Markdown to plain text: the words a customer would read, paragraphs on their own lines,
/// link targets and markup dropped.
pub fn markdown_to_text(markdown: &str) -> String {
    use pulldown_cmark::{Event, Parser, TagEnd};
    let mut out = String::with_capacity(markdown.len());
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item | TagEnd::CodeBlock)
                if !out.ends_with('\n') =>
            {
                out.push('\n');
            }
            _ => {}
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        parse(Path::new("kb/a.md"), text).expect_err("a problem")
    }

    #[test]
    fn a_good_file_parses() {
        let doc = parse(
            Path::new("a.md"),
            "---\nid: refund\ntitle: Refunds\nlanguage: en\ntags: [money, refund]\nchannels: [email]\n---\n# Refunds\n\nWe refund **within** 5 days. [Form](https://x)\n",
        )
        .unwrap();
        assert_eq!(doc.id, "refund");
        assert_eq!(doc.language, Lang::En);
        assert_eq!(doc.tags, ["money", "refund"]);
        assert_eq!(doc.channels, ["email"]);
        assert_eq!(doc.kind, Kind::Article);
        assert_eq!(doc.text, "Refunds\nWe refund within 5 days. Form");
        assert_eq!(doc.id_line, 2);
    }

    #[test]
    fn bad_yaml_names_the_file_line() {
        // The broken line is the file's 4th: `---`, id, title, then the bad one.
        let p = problems("---\nid: a\ntitle: A\nlanguage: [en\n---\nbody\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].file, Path::new("kb/a.md"));
        assert!(p[0].reason.starts_with("bad front matter"), "{}", p[0].reason);
        assert!((4..=5).contains(&p[0].line), "line {}", p[0].line);
        assert!(p[0].reason.contains(&format!("at line {}", p[0].line)), "file numbering: {}", p[0].reason);
    }

    #[test]
    fn missing_title_unknown_language_and_key_are_each_named() {
        let p = problems("---\nid: a\nlanguage: de\ntitel: A\n---\nbody\n");
        let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert!(
            shown.contains(
                &"kb/a.md:4: unknown key `titel` (known: id, title, language, tags, team, channels, url, kind)"
                    .to_string()
            ),
            "{shown:?}"
        );
        assert!(shown.contains(&"kb/a.md:1: missing `title` in the front matter".to_string()), "{shown:?}");
        assert!(shown.contains(&"kb/a.md:3: unknown language `de` (known: en, ru)".to_string()), "{shown:?}");
    }

    #[test]
    fn no_front_matter_unclosed_and_empty_body() {
        assert_eq!(problems("# Title\n")[0].line, 1);
        assert!(problems("---\nid: a\n")[0].reason.contains("never closed"));
        let p = problems("---\nid: a\ntitle: A\nlanguage: en\n---\n\n  \n");
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].line, p[0].reason.as_str()), (6, "the body after the front matter is empty"));
    }

    #[test]
    fn bad_id_and_kind() {
        let p = problems("---\nid: has space\ntitle: A\nlanguage: en\nkind: faq\n---\nbody\n");
        assert_eq!(p.iter().map(|p| p.line).collect::<Vec<_>>(), [2, 5]);
    }

    #[test]
    fn a_reply_with_an_unknown_variable_is_a_problem_on_its_line() {
        let p = problems(
            "---\nid: hi\ntitle: Hi\nlanguage: en\nkind: reply\n---\nHello {customer.name},\n\nyour {order.id} is ready\n",
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].line, 9);
        assert!(p[0].reason.contains("unknown variable `{order.id}`"), "{}", p[0].reason);
    }
}
