//! HTML bodies made readable, and cut where the quoted thread starts.

use std::panic::{AssertUnwindSafe, catch_unwind};

use html2text::render::TextDecorator;

use super::quote::{Split, split_quoted};

/// Lines are never wrapped: the agent's client wraps, and a hard wrap would break links.
const WIDTH: usize = 100_000;

/// Where mail clients start the quoted thread in HTML, as lower-case fragments of the opening
/// tag: Gmail, Apple Mail and Thunderbird quotes, Outlook's reply header, Yahoo.
const QUOTE_MARKERS: [&str; 6] =
    ["gmail_quote", "<blockquote", "moz-cite-prefix", "id=\"appendonsend\"", "id=\"divrplyfwdmsg\"", "yahoo_quoted"];

/// Largest HTML given to html2text, in bytes; bigger bodies get the simpler linear converter.
const MAX_RENDER_BYTES: usize = 2 * 1024 * 1024;

/// Deepest element nesting given to html2text: its time grows with the square of the depth
/// (ten thousand nested `<div>`s take seconds), so deeper documents get the simpler converter.
const MAX_RENDER_DEPTH: usize = 256;

/// Splits an HTML body: the text before the first quote marker is the new text (with the plain
/// text rules applied to it too, for signatures and Outlook header blocks); the rest is quoted.
pub(super) fn split(html: &str) -> Split {
    let Some(at) = quote_start(html).filter(|&at| at > 0) else {
        return Split::from_text(to_text(html));
    };
    let head = to_text(&html[..at]);
    let tail = to_text(&html[at..]);
    let text = [head.as_str(), tail.as_str()].into_iter().filter(|t| !t.is_empty()).collect::<Vec<_>>().join("\n\n");
    let (new_text, head_quoted) = split_quoted(&head);
    if new_text.trim().is_empty() || tail.is_empty() && head_quoted.is_none() {
        return Split::from_text(text);
    }
    let quoted = [head_quoted.unwrap_or_default(), tail].into_iter().filter(|q| !q.is_empty()).collect::<Vec<_>>();
    Split { text, new_text, quoted: (!quoted.is_empty()).then(|| quoted.join("\n\n")) }
}

/// Byte offset of the `<` opening the first quoting element.
fn quote_start(html: &str) -> Option<usize> {
    let lower = html.to_ascii_lowercase();
    // Style sheets in the head name the same classes (`blockquote.gmail_quote { ... }`).
    let body = lower.find("</head>").unwrap_or(0);
    let found = QUOTE_MARKERS.iter().filter_map(|m| lower[body..].find(m)).min()? + body;
    // `to_ascii_lowercase` keeps byte offsets, and `<` is ASCII, so this is a char boundary.
    lower[..=found].rfind('<')
}

/// Readable plain text: paragraphs and line breaks kept, links as `text <url>`, entities decoded,
/// scripts, styles and tags gone.
pub(crate) fn to_text(html: &str) -> String {
    let rendered = if html.len() <= MAX_RENDER_BYTES && nesting_depth(html) <= MAX_RENDER_DEPTH {
        let config = html2text::config::with_decorator(Readable::default()).link_footnotes(false);
        // html2text is a large dependency on untrusted input; should it fail or panic, the
        // simpler converter still gives the agent something to read.
        catch_unwind(AssertUnwindSafe(|| config.string_from_read(html.as_bytes(), WIDTH))).ok().and_then(Result::ok)
    } else {
        None
    };
    let text = match rendered {
        Some(text) => drop_echoed_links(&text),
        None => catch_unwind(|| mail_parser::decoders::html::html_to_text(html)).unwrap_or_default(),
    };
    // A no-break space (`&nbsp;`) looks like a space to the agent and must match like one in
    // routing rules.
    tidy(&text.replace('\u{a0}', " "))
}

/// A cheap upper bound of how deep elements nest: opening tags minus closing ones, not counting
/// void elements and those HTML closes by itself (`<p>`, `<li>`, table cells).
fn nesting_depth(html: &str) -> usize {
    const NOT_NESTING: [&str; 22] = [
        "br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source", "embed", "param", "track",
        "p", "li", "td", "th", "tr", "dt", "dd", "option",
    ];
    let bytes = html.as_bytes();
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    while let Some(offset) = bytes.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'<')) {
        let start = i + offset + 1;
        let closing = bytes.get(start) == Some(&b'/');
        let name_start = if closing { start + 1 } else { start };
        let name_len =
            bytes.get(name_start..).map_or(0, |rest| rest.iter().take_while(|b| b.is_ascii_alphanumeric()).count());
        i = name_start + name_len;
        if name_len == 0 || !bytes.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name = html.get(name_start..i).unwrap_or_default().to_ascii_lowercase();
        if NOT_NESTING.contains(&name.as_str()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

/// `https://x <https://x>` → `https://x`: a link whose text is its own address says it once.
fn drop_echoed_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(" <") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let echoed = after.find(['>', '\n']).filter(|&e| after.as_bytes().get(e) == Some(&b'>')).filter(|&e| {
            let shown = after[..e].trim_end_matches('/');
            let bare = shown.trim_start_matches("https://").trim_start_matches("http://");
            let written = out.trim_end_matches('/');
            !bare.is_empty() && (written.ends_with(shown) || written.ends_with(bare))
        });
        match echoed {
            Some(e) => rest = &after[e + 1..],
            None => {
                out.push_str(" <");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Trailing spaces off, at most one blank line in a row, no blank lines at the ends.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank {
                out.push('\n');
            }
        }
        blank = false;
        out.push_str(line);
    }
    out
}

/// Renders links inline (`text <url>`) instead of as footnotes, images by their alt text, quotes
/// with `> ` so the plain-text quote rules apply, and no markdown-style emphasis.
#[derive(Clone, Debug, Default)]
struct Readable {
    links: Vec<Option<String>>,
}

impl TextDecorator for Readable {
    type Annotation = ();

    fn decorate_link_start(&mut self, url: &str) -> (String, ()) {
        let url = url.trim();
        let shown = if let Some(address) = url.strip_prefix("mailto:") {
            Some(address.split('?').next().unwrap_or_default().to_string())
        } else if url.starts_with("http://") || url.starts_with("https://") || url.starts_with("tel:") {
            Some(url.to_string())
        } else {
            None // anchors, javascript:, cid: say nothing useful to a reader
        };
        self.links.push(shown.filter(|s| !s.is_empty()));
        (String::new(), ())
    }

    fn decorate_link_end(&mut self) -> String {
        match self.links.pop().flatten() {
            Some(url) => format!(" <{url}>"),
            None => String::new(),
        }
    }

    fn decorate_em_start(&self) -> (String, ()) {
        (String::new(), ())
    }

    fn decorate_em_end(&self) -> String {
        String::new()
    }

    fn decorate_strong_start(&self) -> (String, ()) {
        (String::new(), ())
    }

    fn decorate_strong_end(&self) -> String {
        String::new()
    }

    fn decorate_strikeout_start(&self) -> (String, ()) {
        (String::new(), ())
    }

    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }

    fn decorate_code_start(&self) -> (String, ()) {
        (String::new(), ())
    }

    fn decorate_code_end(&self) -> String {
        String::new()
    }

    fn decorate_preformat_first(&self) {}

    fn decorate_preformat_cont(&self) {}

    fn decorate_image(&mut self, _src: &str, title: &str) -> (String, ()) {
        (title.trim().to_string(), ())
    }

    fn header_prefix(&self, _level: usize) -> String {
        String::new()
    }

    fn quote_prefix(&self) -> String {
        "> ".into()
    }

    fn unordered_item_prefix(&self) -> String {
        "- ".into()
    }

    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }

    fn make_subblock_decorator(&self) -> Self {
        Self::default()
    }

    fn finalise(&mut self, _urls: Vec<String>) -> Vec<html2text::render::TaggedLine<()>> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(html: &str, expected: &str) {
        assert_eq!(to_text(html), expected, "rendering {html:?}");
    }

    #[test]
    fn renders_readable_text() {
        check("<p>Hello&nbsp;there &amp; welcome</p><p>Second<br>line</p>", "Hello there & welcome\n\nSecond\nline");
        check("<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>Hi</body></html>", "Hi");
        check("<p>See <a href=\"https://example.com/faq\">the FAQ</a>.</p>", "See the FAQ <https://example.com/faq>.");
        check("<a href=\"https://example.com\">https://example.com</a>", "https://example.com");
        check("<a href=\"mailto:help@example.com\">help@example.com</a>", "help@example.com");
        check("<a href=\"#top\">top</a> <a href=\"javascript:x()\">run</a>", "top run");
        check("<ul><li>one</li><li>two</li></ul>", "- one\n- two");
        check("<div>Я &laquo;тут&raquo;</div>", "Я «тут»");
        check("<img src=\"cid:logo\" alt=\"ACME logo\">", "ACME logo");
    }

    #[test]
    fn deep_documents_get_the_linear_converter() {
        assert_eq!(nesting_depth("<div><p>a<br><div>b</div></div><span>c</span>"), 2);
        assert_eq!(nesting_depth("<<</ <3 a < b"), 0);
        let deep = format!("{}deep &amp; dark", "<div>".repeat(20_000));
        assert!(nesting_depth(&deep) > MAX_RENDER_DEPTH);
        assert_eq!(to_text(&deep), "deep & dark");
    }

    #[test]
    fn drops_only_echoed_links() {
        assert_eq!(drop_echoed_links("a <b> c"), "a <b> c");
        assert_eq!(drop_echoed_links("example.com <https://example.com/>"), "example.com");
        assert_eq!(drop_echoed_links("x <"), "x <");
        assert_eq!(drop_echoed_links("x <y\n>"), "x <y\n>");
    }

    #[test]
    fn cuts_html_at_the_first_quote() {
        let html = "<div>Thanks, works now.</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon, \
                    Anna &lt;a@x.com&gt; wrote:</div><blockquote class=\"gmail_quote\">Is it fixed?</blockquote></div>";
        let split = split(html);
        assert_eq!(split.new_text, "Thanks, works now.");
        assert_eq!(split.quoted.as_deref(), Some("On Mon, Anna <a@x.com> wrote:\n\n> Is it fixed?"));
        assert_eq!(quote_start("<p>x</p><BLOCKQUOTE type=cite>y</BLOCKQUOTE>"), Some(8));
        assert_eq!(quote_start("<p>x</p>"), None);
        let styled = "<head><style>blockquote.gmail_quote{margin:0}</style></head><p>x</p><blockquote>y";
        assert_eq!(quote_start(styled), styled.find("<blockquote>"));
    }
}
