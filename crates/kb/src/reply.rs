//! Saved replies' variables: `{customer.name}`, `{agent.name}`, `{conversation.code}`.
//!
//! A placeholder is `{` word `.` word `}` (lowercase letters and `_`); any other brace is text,
//! so a reply can show `{}` or a JSON example without escaping.

use crate::parse::Doc;
pub use crate::placeholders::{VARIABLES, placeholders};

/// Why a reply could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The reply uses variables the caller gave no value for (each named once, in order).
    #[error("no value for {}", .0.iter().map(|n| format!("{{{n}}}")).collect::<Vec<_>>().join(", "))]
    Unknown(Vec<String>),
}

/// A saved reply (`kind: reply`), inserted by agents by its `id`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reply {
    /// Its name (the file's `id`).
    pub id: String,
    /// What it is for, shown to agents choosing one.
    pub title: String,
    /// Its language.
    pub language: crate::Lang,
    /// The team it belongs to; `None`: every team.
    pub team: Option<String>,
    /// The text as written, variables intact.
    pub body: String,
}

impl From<&Doc> for Reply {
    fn from(doc: &Doc) -> Self {
        Reply {
            id: doc.id.clone(),
            title: doc.title.clone(),
            language: doc.language,
            team: doc.team.clone(),
            body: doc.body.clone(),
        }
    }
}

impl Reply {
    /// The text with each variable replaced by its value from `vars` (name, value); a variable
    /// without a value is an error naming it, never sent to a customer as `{customer.name}`.
    pub fn render(&self, vars: &[(&str, &str)]) -> Result<String, RenderError> {
        render(&self.body, vars)
    }
}

/// Substitutes the placeholders of `text` (see [`Reply::render`]).
pub fn render(text: &str, vars: &[(&str, &str)]) -> Result<String, RenderError> {
    let mut out = String::with_capacity(text.len());
    let mut unknown: Vec<String> = Vec::new();
    let mut last = 0;
    for (offset, name) in placeholders(text) {
        out.push_str(&text[last..offset]);
        match vars.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None if !unknown.iter().any(|u| u == name) => unknown.push(name.to_string()),
            None => {}
        }
        last = offset + name.len() + 2;
    }
    out.push_str(&text[last..]);
    if unknown.is_empty() { Ok(out) } else { Err(RenderError::Unknown(unknown)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_word_dot_word_in_braces() {
        let names: Vec<&str> = placeholders("{customer.name} {} {x} {a.b.c} {Agent.name} {a.} {{agent.name}}")
            .into_iter()
            .map(|p| p.1)
            .collect();
        assert_eq!(names, ["customer.name", "a.b.c", "agent.name"]);
    }

    #[test]
    fn render_substitutes_and_names_missing_values() {
        let text = "Hi {customer.name}, I am {agent.name}. Ref {conversation.code}; {} stays; {customer.name}!";
        let vars = [("customer.name", "Анна"), ("agent.name", "Bob"), ("conversation.code", "K7Q")];
        assert_eq!(render(text, &vars).unwrap(), "Hi Анна, I am Bob. Ref K7Q; {} stays; Анна!");
        let err = render(text, &[("agent.name", "Bob")]).unwrap_err();
        assert_eq!(err, RenderError::Unknown(vec!["customer.name".into(), "conversation.code".into()]));
        assert_eq!(err.to_string(), "no value for {customer.name}, {conversation.code}");
    }
}
