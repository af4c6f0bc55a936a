//! The placeholders of saved replies: the variables there are and where a text names them.
//! Apart from `reply` so that the front-matter check and replies both use it.

/// The variables a saved reply may use; `kb check` refuses any other.
pub const VARIABLES: [&str; 3] = ["customer.name", "agent.name", "conversation.code"];

/// The placeholders of `text`: byte offset of the `{` and the name inside.
pub fn placeholders(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(open) = text[rest..].find('{').map(|i| i + rest) {
        let after = &text[open + 1..];
        let end = after.find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c == '.')).unwrap_or(after.len());
        let name = &after[..end];
        let well_formed =
            after[end..].starts_with('}') && name.contains('.') && name.split('.').all(|part| !part.is_empty());
        if well_formed {
            out.push((open, name));
            rest = open + 1 + end + 1;
        } else {
            rest = open + 1;
        }
    }
    out
}
