//! An agent's Telegram chat drawn from what the fake Bot API recorded: the bot's messages with
//! their MarkdownV2 formatting and inline keyboards (edits applied), and the agent's own messages,
//! as a simple HTML page, screenshotted with Debian's Chromium.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use switchboard_testkit::FakeBotApi;

/// A message the agent sent in the chat (pushed by the test as an update).
pub struct Own {
    /// Its message id.
    pub id: i64,
    /// Its text.
    pub text: String,
    /// The bot's message it replies to.
    pub reply_to: Option<i64>,
}

/// One bubble of the page.
struct Bubble {
    id: i64,
    from_bot: bool,
    html: String,
    keyboard: Vec<Vec<String>>,
    reply_to: Option<String>,
}

/// MarkdownV2 as Telegram shows it: `*bold*`, `_italic_`, `\x` as `x`; the rest as text.
pub fn markdown_v2_to_html(text: &str) -> String {
    let (mut out, mut bold, mut italic) = (String::new(), false, false);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    push_escaped(&mut out, next);
                }
            }
            '*' => {
                bold = !bold;
                out.push_str(if bold { "<b>" } else { "</b>" });
            }
            '_' => {
                italic = !italic;
                out.push_str(if italic { "<i>" } else { "</i>" });
            }
            c => push_escaped(&mut out, c),
        }
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '&' => out.push_str("&amp;"),
        '"' => out.push_str("&quot;"),
        '\n' => out.push_str("<br>"),
        c => out.push(c),
    }
}

fn plain_html(text: &str) -> String {
    let mut out = String::new();
    text.chars().for_each(|c| push_escaped(&mut out, c));
    out
}

fn keyboard(markup: &Option<Value>) -> Vec<Vec<String>> {
    let rows = markup.as_ref().and_then(|m| m["inline_keyboard"].as_array().cloned()).unwrap_or_default();
    rows.iter()
        .map(|r| {
            r.as_array().into_iter().flatten().map(|b| b["text"].as_str().unwrap_or_default().to_string()).collect()
        })
        .collect()
}

/// The chat `chat` as an HTML page: the bot's messages as the fake recorded them, edits applied,
/// and `own` messages of the agent, in message order.
pub fn page(api: &FakeBotApi, chat: i64, title: &str, own: &[Own]) -> String {
    let edits = api.edits();
    let mut bubbles: Vec<Bubble> = Vec::new();
    let first_line = |html: &str| html.split("<br>").next().unwrap_or_default().to_string();
    for m in api.sent().into_iter().filter(|m| m.chat_id == chat) {
        let mut text = m.text.clone().unwrap_or_default();
        let mut markup = m.reply_markup.clone();
        for e in edits.iter().filter(|e| e.chat_id == chat && e.message_id == m.message_id) {
            if let Some(t) = &e.text {
                text = t.clone();
            }
            markup = e.reply_markup.clone();
        }
        let mut html = match m.parse_mode.as_deref() {
            Some("MarkdownV2") => markdown_v2_to_html(&text),
            _ => plain_html(&text),
        };
        if m.file.is_some() {
            html = format!("<div class=file>📎 {}</div>{html}", m.method.trim_start_matches("send"));
        }
        bubbles.push(Bubble { id: m.message_id, from_bot: true, html, keyboard: keyboard(&markup), reply_to: None });
    }
    for o in own {
        let quoted = o.reply_to.and_then(|r| bubbles.iter().find(|b| b.id == r)).map(|b| first_line(&b.html));
        bubbles.push(Bubble {
            id: o.id,
            from_bot: false,
            html: plain_html(&o.text),
            keyboard: vec![],
            reply_to: quoted,
        });
    }
    bubbles.sort_by_key(|b| b.id);
    let mut body = String::new();
    for b in &bubbles {
        let side = if b.from_bot { "bot" } else { "me" };
        body.push_str(&format!("<div class=\"msg {side}\">"));
        if let Some(q) = &b.reply_to {
            body.push_str(&format!("<div class=quote>{q}</div>"));
        }
        body.push_str(&format!("<div class=text>{}</div>", b.html));
        for row in &b.keyboard {
            body.push_str("<div class=row>");
            for button in row {
                body.push_str(&format!("<span class=button>{}</span>", plain_html(button)));
            }
            body.push_str("</div>");
        }
        body.push_str("</div>\n");
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ margin: 0; background: #8fb3c9; font: 14px/1.35 system-ui, "DejaVu Sans", sans-serif; }}
header {{ background: #517da2; color: #fff; padding: 10px 14px; font-weight: bold; }}
main {{ display: flex; flex-direction: column; gap: 8px; padding: 12px; }}
.msg {{ max-width: 78%; padding: 7px 10px; border-radius: 10px; box-shadow: 0 1px 1px rgba(0,0,0,.15); }}
.bot {{ background: #fff; align-self: flex-start; }}
.me {{ background: #e1ffc7; align-self: flex-end; }}
.quote {{ border-left: 3px solid #4a9; padding-left: 6px; color: #357; font-size: 12px; margin-bottom: 4px; }}
.row {{ display: flex; gap: 4px; margin-top: 6px; }}
.button {{ flex: 1; text-align: center; background: #eef3f7; color: #2a6; border-radius: 6px; padding: 5px; font-weight: 600; }}
.file {{ color: #357; }}
</style></head>
<body><header>{title}</header><main>
{body}</main></body></html>
"#
    )
}

/// Writes `html` to `<dir>/<name>.html` and screenshots it with Chromium into `<dir>/<name>.png`
/// (`width` pixels wide and `height` tall); the screenshot's size in bytes.
pub fn screenshot(html: &str, dir: &Path, name: &str, width: u32, height: u32) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let (page, png) = (dir.join(format!("{name}.html")), dir.join(format!("{name}.png")));
    std::fs::write(&page, html).unwrap();
    let _ = std::fs::remove_file(&png);
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: run `make tools` (installs Debian's chromium)");
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 0, "no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    size
}
