//! Text for Telegram: MarkdownV2 with every piece of customer or agent text escaped, and long texts
//! split at Telegram's 4,096-character limit without breaking a character or an escape.

/// Telegram's limit on one message's text, in characters (UTF-16 code units, strictly; counted
/// here in `char`s, and split conservatively so that astral characters never push a part over).
pub const MAX_TEXT_CHARS: usize = 4096;

/// Characters MarkdownV2 reserves outside entities (Bot API, "MarkdownV2 style").
const RESERVED: &[char] =
    &['_', '*', '[', ']', '(', ')', '~', '`', '>', '#', '+', '-', '=', '|', '{', '}', '.', '!', '\\'];

/// Escapes text so MarkdownV2 shows it as written: nothing a customer or agent types can format,
/// link or break a message.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        if RESERVED.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `*bold*` around escaped text.
pub fn bold(text: &str) -> String {
    format!("*{}*", escape(text))
}

/// `_italic_` around escaped text.
pub fn italic(text: &str) -> String {
    format!("_{}_", escape(text))
}

/// Splits MarkdownV2 text into parts of at most `max` UTF-16 units, preferring a line break, then
/// a space, and never cutting between a backslash and the character it escapes. Formatting
/// entities must not span a split; callers keep them short (headers), which this respects by
/// splitting only at line breaks when one is near.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while utf16_len(rest) > max {
        let cut = cut_point(rest, max);
        let (head, tail) = rest.split_at(cut);
        parts.push(head.trim_end_matches('\n').to_string());
        rest = tail.trim_start_matches('\n');
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The byte index to cut `s` at so the head has at most `max` UTF-16 units.
fn cut_point(s: &str, max: usize) -> usize {
    let mut units = 0;
    let mut hard = 0;
    for (i, c) in s.char_indices() {
        if units + c.len_utf16() > max {
            break;
        }
        units += c.len_utf16();
        hard = i + c.len_utf8();
    }
    // Never leave a lone escaping backslash at the end of a part.
    let backslashes = s[..hard].bytes().rev().take_while(|b| *b == b'\\').count();
    if backslashes % 2 == 1 {
        hard -= 1;
    }
    let head = &s[..hard];
    // A line break in the last quarter reads best; else a space; else the hard limit.
    let floor = hard * 3 / 4;
    if let Some(i) = head.rfind('\n').filter(|i| *i >= floor) {
        return i + 1;
    }
    if let Some(i) = head.rfind(' ').filter(|i| *i >= floor) {
        let escaped = head[..i].bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1;
        if !escaped {
            return i + 1;
        }
    }
    hard.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_reserved_is_escaped_and_nothing_else() {
        assert_eq!(
            escape("1.5 - (a_b) *x* [l](u) #tag a+b=c !"),
            r"1\.5 \- \(a\_b\) \*x\* \[l\]\(u\) \#tag a\+b\=c \!"
        );
        assert_eq!(escape(r"C:\path"), r"C:\\path");
        assert_eq!(escape("Привет, <b>мир</b>"), r"Привет, <b\>мир</b\>", "HTML is text; `>` would start a quote");
        assert_eq!(bold("P1 - urgent"), r"*P1 \- urgent*");
    }

    #[test]
    fn long_text_splits_at_the_limit_at_line_breaks_and_never_inside_an_escape() {
        let line = "word ".repeat(20) + "\n";
        let text = line.repeat(100);
        let parts = split(&text, 4096);
        assert!(parts.len() >= 3);
        assert!(parts.iter().all(|p| utf16_len(p) <= 4096));
        assert!(parts[..parts.len() - 1].iter().all(|p| p.ends_with(' ')), "cut after a whole line");
        assert_eq!(parts.concat().replace('\n', "").len(), text.replace('\n', "").len(), "nothing lost");

        let escaped = escape(&".".repeat(5000));
        for p in split(&escaped, 4096) {
            assert!(utf16_len(&p) <= 4096);
            assert!(p.starts_with('\\') && !p.ends_with('\\'), "every part starts with a whole escape");
        }
        let emoji = "😀".repeat(3000);
        let parts = split(&emoji, 4096);
        assert!(parts.iter().all(|p| utf16_len(p) <= 4096), "astral characters count twice");
        assert_eq!(parts.concat(), emoji);
        assert_eq!(split("short", 4096), ["short"]);
    }
}
