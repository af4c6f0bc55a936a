//! The Bot API's formatting options, parsed as Telegram's own parser (tdlib) does, so a message an
//! adapter forgot to escape fails here as it would in production. Each parser returns the plain text
//! (whose length is what the Bot API limits) or the detail of Telegram's "can't parse entities" error.

/// The plain text of `text` under `parse_mode`, or the error description the Bot API would give.
pub(crate) fn plain_text(text: &str, parse_mode: Option<&str>) -> Result<String, String> {
    let parsed = match parse_mode {
        None | Some("") => Ok(text.to_owned()),
        Some(mode) if mode.eq_ignore_ascii_case("MarkdownV2") => markdown_v2(text),
        Some(mode) if mode.eq_ignore_ascii_case("HTML") => html(text),
        // Legacy Markdown is lenient and deprecated; it is passed through unchecked.
        Some(mode) if mode.eq_ignore_ascii_case("Markdown") => Ok(text.to_owned()),
        Some(_) => return Err("Bad Request: unsupported parse_mode".to_owned()),
    };
    parsed.map_err(|detail| format!("Bad Request: can't parse entities: {detail}"))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Entity {
    Bold,
    Italic,
    Underline,
    Strikethrough,
    Spoiler,
    TextUrl,
    CustomEmoji,
    Code,
    Pre,
    PreCode,
}

/// MarkdownV2 as in <https://core.telegram.org/bots/api#markdownv2-style>, following tdlib's
/// `parse_markdown_v2`: outside code, each of ``_*[]()~`>#+-=|{}.!`` either opens or closes an entity
/// or must be escaped with `\`; inside code only `` ` `` and `\` are special.
fn markdown_v2(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    // tdlib reads past the end as NUL; so does this.
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let escapable = |c: u8| (1..=126).contains(&c);
    let mut out = Vec::with_capacity(b.len());
    let mut open: Vec<(Entity, usize)> = Vec::new();
    // Inside an expandable block quotation (`**>` lines), whose last line may end with `||`.
    let mut expandable_quote = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && escapable(at(i + 1)) {
            out.push(b[i + 1]);
            i += 2;
            continue;
        }
        let in_code = matches!(open.last(), Some((Entity::Code | Entity::Pre | Entity::PreCode, _)));
        let reserved: &[u8] = if in_code { b"`" } else { b"_*[]()~`>#+-=|{}.!" };
        if !reserved.contains(&c) {
            if c == b'\n' && at(i + 1) != b'>' {
                expandable_quote = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if !in_code && (i == 0 || b[i - 1] == b'\n') {
            // Block quotations: `>` opens each quoted line, `**>` the first line of an expandable one.
            if c == b'>' {
                i += 1;
                continue;
            }
            if text[i..].starts_with("**>") {
                expandable_quote = true;
                i += 3;
                continue;
            }
        }
        if !in_code
            && expandable_quote
            && c == b'|'
            && at(i + 1) == b'|'
            && matches!(at(i + 2), b'\n' | 0)
            && !matches!(open.last(), Some((Entity::Spoiler, _)))
        {
            expandable_quote = false;
            i += 2;
            continue;
        }
        let closes = open.last().is_some_and(|&(entity, _)| match entity {
            Entity::Bold => c == b'*',
            Entity::Italic => c == b'_' && at(i + 1) != b'_',
            Entity::Underline => c == b'_' && at(i + 1) == b'_',
            Entity::Strikethrough => c == b'~',
            Entity::Spoiler => c == b'|' && at(i + 1) == b'|',
            Entity::TextUrl | Entity::CustomEmoji => c == b']',
            Entity::Code => c == b'`',
            Entity::Pre | Entity::PreCode => c == b'`' && at(i + 1) == b'`' && at(i + 2) == b'`',
        });
        if closes {
            let (entity, _) = open.pop().expect("an entity closes only when one is open");
            i += match entity {
                Entity::Underline | Entity::Spoiler => 2,
                Entity::Pre | Entity::PreCode => 3,
                _ => 1,
            };
            if matches!(entity, Entity::TextUrl | Entity::CustomEmoji) {
                if at(i) != b'(' {
                    if entity == Entity::CustomEmoji {
                        return Err("Custom emoji entity must contain a tg://emoji URL".to_owned());
                    }
                    // `[text]` alone uses the text as the URL.
                    continue;
                }
                i += 1;
                let url_start = i;
                while i < b.len() && b[i] != b')' {
                    i += if b[i] == b'\\' && escapable(at(i + 1)) { 2 } else { 1 };
                }
                if at(i) != b')' {
                    return Err(format!("Can't find end of a URL at byte offset {url_start}"));
                }
                i += 1;
            }
            continue;
        }
        let start = i;
        let entity = match c {
            b'_' if at(i + 1) == b'_' => {
                i += 1;
                Entity::Underline
            }
            b'_' => Entity::Italic,
            b'*' => Entity::Bold,
            b'~' => Entity::Strikethrough,
            b'|' if at(i + 1) == b'|' => {
                i += 1;
                Entity::Spoiler
            }
            b'[' => Entity::TextUrl,
            b'!' if at(i + 1) == b'[' => {
                i += 1;
                Entity::CustomEmoji
            }
            b'`' if at(i + 1) == b'`' && at(i + 2) == b'`' => {
                i += 3;
                let mut entity = Entity::Pre;
                let mut language_end = i;
                while !matches!(at(language_end), b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0 | b'`') {
                    language_end += 1;
                }
                if language_end != i && language_end < b.len() && b[language_end] != b'`' {
                    entity = Entity::PreCode;
                    i = language_end;
                }
                // One line break after the opening fence (and language) is not part of the code.
                if matches!(at(i), b'\n' | b'\r') {
                    i += if matches!(at(i + 1), b'\n' | b'\r') && at(i) != at(i + 1) { 2 } else { 1 };
                }
                open.push((entity, start));
                continue;
            }
            b'`' => Entity::Code,
            _ => {
                return Err(format!(
                    "Character '{}' is reserved and must be escaped with the preceding '\\'",
                    c as char
                ));
            }
        };
        open.push((entity, start));
        i += 1;
    }
    if let Some((entity, offset)) = open.last() {
        return Err(format!("Can't find end of {entity:?} entity at byte offset {offset}"));
    }
    // Only ASCII bytes were dropped, so the rest is still UTF-8.
    Ok(String::from_utf8(out).expect("UTF-8 minus ASCII markup is UTF-8"))
}

/// The tags the Bot API's HTML style supports.
const HTML_TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "tg-emoji",
    "code",
    "pre",
    "blockquote",
];

/// HTML as in <https://core.telegram.org/bots/api#html-style>, following tdlib's `parse_html`: every
/// `<` must open or close a supported tag (so a bare `<` must be written `&lt;`), tags must nest, and
/// `&lt;` `&gt;` `&amp;` `&quot;` and numeric references are decoded (any other `&` stays as it is).
fn html(text: &str) -> Result<String, String> {
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let is_space = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0);
    let mut out = String::with_capacity(text.len());
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'&' => {
                if let Some((decoded, len)) = html_entity(&text[i..]) {
                    out.push(decoded);
                    i += len;
                } else {
                    out.push('&');
                    i += 1;
                }
            }
            b'<' if at(i + 1) != b'/' => {
                let start = i;
                i += 1;
                while !is_space(at(i)) && at(i) != b'>' {
                    i += 1;
                }
                if i >= b.len() {
                    return Err(format!("Unclosed start tag at byte offset {start}"));
                }
                let tag = text[start + 1..i].to_ascii_lowercase();
                if !HTML_TAGS.contains(&tag.as_str()) {
                    return Err(format!("Unsupported start tag \"{tag}\" at byte offset {start}"));
                }
                // Attributes: skipped, minding quotes, up to the closing `>`.
                let attributes_start = i;
                let mut quote = None;
                while i < b.len() && (quote.is_some() || b[i] != b'>') {
                    match (quote, b[i]) {
                        (None, q @ (b'"' | b'\'')) => quote = Some(q),
                        (Some(q), c) if c == q => quote = None,
                        _ => {}
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err(format!("Unclosed start tag at byte offset {start}"));
                }
                if tag == "span" && !text[attributes_start..i].contains("tg-spoiler") {
                    return Err(format!("Tag \"span\" must have class \"tg-spoiler\" at byte offset {start}"));
                }
                open.push(tag);
                i += 1;
            }
            b'<' => {
                let start = i;
                let Some(expected) = open.pop() else {
                    return Err(format!("Unexpected end tag at byte offset {start}"));
                };
                i += 2;
                while !is_space(at(i)) && at(i) != b'>' {
                    i += 1;
                }
                let found = text[start + 2..i.min(b.len())].to_ascii_lowercase();
                while i < b.len() && is_space(b[i]) {
                    i += 1;
                }
                if at(i) != b'>' {
                    return Err(format!("Unclosed end tag at byte offset {start}"));
                }
                if !found.is_empty() && found != expected {
                    return Err(format!(
                        "Unmatched end tag at byte offset {start}, expected \"</{expected}>\", found \"</{found}>\""
                    ));
                }
                i += 1;
            }
            _ => {
                let len = text[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&text[i..i + len]);
                i += len;
            }
        }
    }
    if let Some(tag) = open.last() {
        return Err(format!("Can't find end tag corresponding to start tag \"{tag}\""));
    }
    Ok(out)
}

/// The character an HTML entity at the start of `s` stands for, and the entity's length.
fn html_entity(s: &str) -> Option<(char, usize)> {
    let end = s.find(';').filter(|&end| end <= 10)?;
    let name = &s[1..end];
    let decoded = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code).filter(|&c| c != '\0')?
        }
    };
    Some((decoded, end + 1))
}

#[cfg(test)]
mod tests {
    use super::plain_text;

    /// `text` under `mode` gives `expected`: the plain text, or the error description after the prefix.
    fn check(mode: &str, text: &str, expected: Result<&str, &str>) {
        let got = plain_text(text, Some(mode));
        let got = got.as_deref().map_err(|e| e.trim_start_matches("Bad Request: can't parse entities: "));
        assert_eq!(got, expected, "{mode} {text:?}");
    }

    #[test]
    fn markdown_v2_entities_and_escapes() {
        check("MarkdownV2", "*bold* _italic_ __under__ ~strike~ ||spoiler||", Ok("bold italic under strike spoiler"));
        check("MarkdownV2", r"Order \#42 costs 3\.50\! \(VAT\-free\)", Ok("Order #42 costs 3.50! (VAT-free)"));
        check("MarkdownV2", r"[docs](https://example.test/a_(b\)) end", Ok("docs end"));
        check("MarkdownV2", "`a.b-c!` and\n```rust\nlet x = 1.0;\n```", Ok("a.b-c! and\nlet x = 1.0;\n"));
        check("MarkdownV2", ">quoted line\n>another", Ok("quoted line\nanother"));
        check("MarkdownV2", "**>expandable\n>quote||", Ok("expandable\nquote"));
        check("MarkdownV2", "ünïcödé \\é", Ok("ünïcödé \\é"));
    }

    #[test]
    fn markdown_v2_rejects_what_telegram_rejects() {
        let reserved = |c: char| format!("Character '{c}' is reserved and must be escaped with the preceding '\\'");
        check("MarkdownV2", "Thanks.", Err(&reserved('.')));
        check("MarkdownV2", "Hi!", Err(&reserved('!')));
        check("MarkdownV2", "a-b", Err(&reserved('-')));
        check("MarkdownV2", "call (555)", Err(&reserved('(')));
        check("MarkdownV2", "x > y", Err(&reserved('>')));
        check("MarkdownV2", "*bold", Err("Can't find end of Bold entity at byte offset 0"));
        check("MarkdownV2", "ok `code", Err("Can't find end of Code entity at byte offset 3"));
        check("MarkdownV2", "[a](http://x", Err("Can't find end of a URL at byte offset 4"));
    }

    #[test]
    fn html_tags_and_entities() {
        check("HTML", "<b>bold</b> &lt;tag&gt; &amp; &#33; a&b", Ok("bold <tag> & ! a&b"));
        check("HTML", r#"<a href="https://x.test/?a=1&b=2">link</a> <span class="tg-spoiler">s</span>"#, Ok("link s"));
        check("HTML", "1 < 2", Err("Unsupported start tag \"\" at byte offset 2"));
        check("HTML", "<div>x</div>", Err("Unsupported start tag \"div\" at byte offset 0"));
        check("HTML", "<b>x</i>", Err("Unmatched end tag at byte offset 4, expected \"</b>\", found \"</i>\""));
        check("HTML", "<b>x", Err("Can't find end tag corresponding to start tag \"b\""));
    }
}
