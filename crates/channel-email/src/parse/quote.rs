//! Telling what the author wrote this time from the quoted thread and the signature below it.
//!
//! Everything from the first of these on is taken out: an attribution line with nothing quoted
//! after it (`On <date>, <name> wrote:`, `<date>, <name> пишет:`), Outlook's
//! `-----Original Message-----` or `From: ... Sent: ...` header block, a forwarded-message
//! separator, the `-- ` signature delimiter and mobile signatures (`Sent from my iPhone`).
//! Before that point, `>` lines and the attribution line introducing them are taken out, and the
//! author's lines between them are kept: an interleaved answer stays whole.

/// The body three ways: all of it, the new part, and what was taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Split {
    pub text: String,
    pub new_text: String,
    pub quoted: Option<String>,
}

impl Split {
    pub(super) fn from_text(text: String) -> Self {
        let text = text.trim().to_string();
        let (new_text, quoted) = split_quoted(&text);
        Self { text, new_text, quoted }
    }
}

/// Splits plain text into what is new and what is quoted or signature; when nothing new would be
/// left (a bare forward, a message that is all quote) the whole text is new and nothing quoted.
pub fn split_quoted(text: &str) -> (String, Option<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let cut = (0..lines.len()).find(|&i| hard_cut(&lines, i)).unwrap_or(lines.len());
    let mut new = Vec::new();
    let mut quoted = Vec::new();
    let mut i = 0;
    while i < cut {
        if is_quote_line(lines[i]) {
            quoted.push(lines[i]);
            i += 1;
        } else if let Some(n) = attribution_at(&lines, i) {
            // Not a hard cut, so quoted lines follow: the attribution belongs to them.
            quoted.extend(&lines[i..i + n]);
            i += n;
        } else {
            new.push(lines[i]);
            i += 1;
        }
    }
    quoted.extend(&lines[cut..]);
    let new = tidy(&new);
    let quoted = tidy(&quoted);
    if new.is_empty() {
        return (text.trim().to_string(), None);
    }
    (new, (!quoted.is_empty()).then_some(quoted))
}

/// Joins lines, drops blank runs left where quotes were taken out, trims the ends.
fn tidy(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut blank = false;
    for line in lines {
        let line = line.trim_end();
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if blank {
            out.push('\n');
            blank = false;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out
}

fn is_quote_line(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Whether everything from line `i` on is the old thread or a signature.
fn hard_cut(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    if line.trim_end_matches('\r') == "-- " || line.trim() == "--" {
        return true;
    }
    let trimmed = line.trim();
    if is_separator(trimmed) || is_mobile_signature(trimmed) {
        return true;
    }
    if is_header_block(lines, i) {
        return true;
    }
    // A rule of underscores or dashes directly above an Outlook header block belongs to it.
    if trimmed.len() >= 8 && trimmed.chars().all(|c| c == '_' || c == '-') {
        let next = lines[i + 1..].iter().position(|l| !l.trim().is_empty()).map(|p| i + 1 + p);
        if next.is_some_and(|n| is_header_block(lines, n)) {
            return true;
        }
    }
    // An attribution with no quoted lines after it introduces an unquoted copy of the thread.
    if let Some(n) = attribution_at(lines, i) {
        let next = lines[i + n..].iter().find(|l| !l.trim().is_empty());
        return !next.is_some_and(|l| is_quote_line(l));
    }
    false
}

fn is_separator(line: &str) -> bool {
    let lower = line.to_lowercase();
    let dashed = lower.starts_with("---") || lower.starts_with("___");
    const MARKERS: [&str; 8] = [
        "original message",
        "forwarded message",
        "исходное сообщение",
        "пересылаемое сообщение",
        "пересланное сообщение",
        "ursprüngliche nachricht",
        "message d'origine",
        "mensaje original",
    ];
    (dashed && MARKERS.iter().any(|m| lower.contains(m)))
        || lower == "begin forwarded message:"
        || lower == "начало переадресованного сообщения:"
}

fn is_mobile_signature(line: &str) -> bool {
    const PREFIXES: [&str; 11] = [
        "Sent from my ",
        "Sent from Mail for ",
        "Sent from Outlook",
        "Sent from Yahoo Mail",
        "Get Outlook for ",
        "Sent from Yandex",
        "Отправлено с iPhone",
        "Отправлено с iPad",
        "Отправлено с моего ",
        "Отправлено из мобильной ",
        "Отправлено из Яндекс",
    ];
    line.chars().count() <= 80 && PREFIXES.iter().any(|p| line.starts_with(p))
}

/// Outlook's reply header: `From:` followed within a few lines by `Sent:` or `Date:`.
fn is_header_block(lines: &[&str], i: usize) -> bool {
    const FROM: [&str; 5] = ["from:", "от:", "von:", "de:", "from :"];
    const SENT: [&str; 8] = ["sent:", "date:", "отправлено:", "дата:", "gesendet:", "envoyé :", "envoyé:", "enviado:"];
    let starts = |line: &str, names: &[&str]| {
        let lower = line.trim().trim_start_matches('*').to_lowercase();
        names.iter().any(|n| lower.starts_with(n))
    };
    starts(lines[i], &FROM) && lines.iter().skip(i + 1).take(5).any(|l| starts(l, &SENT))
}

/// How many lines (one, or two when a client wrapped it) form an attribution line at `i`.
fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i].trim();
    if line.is_empty() || is_quote_line(line) {
        return None;
    }
    if is_attribution(line) {
        return Some(1);
    }
    let next = lines.get(i + 1).map(|l| l.trim()).filter(|l| !l.is_empty() && !is_quote_line(l))?;
    is_attribution(&format!("{line} {next}")).then_some(2)
}

fn is_attribution(line: &str) -> bool {
    if line.chars().count() > 400 {
        return false;
    }
    let lower = line.to_lowercase();
    let dated = lower.chars().any(|c| c.is_ascii_digit());
    let addressed = lower.contains('@');
    let ends = |words: &[&str]| words.iter().any(|w| lower.ends_with(w));
    (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || ((dated || addressed) && ends(&["wrote:", "schrieb:", "a écrit :", "a écrit:", "escribió:"]))
        || (dated && ends(&["пишет:", "написал:", "написала:", "написал(а):", "писал:", "писала:", "писал(а):"]))
        // Gmail in Russian, Yandex and Mail.ru write no verb: `<date>, Иван <ivan@mail.ru>:`.
        || (dated && addressed && lower.ends_with(">:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, new: &str, quoted: Option<&str>) {
        let (n, q) = split_quoted(text);
        assert_eq!((n.as_str(), q.as_deref()), (new, quoted), "splitting {text:?}");
    }

    #[test]
    fn splits_new_text_from_quotes_and_signatures() {
        check("Hello", "Hello", None);
        check(
            "Thanks!\n\nOn Mon, 3 Mar 2025 at 10:00, Anna <anna@example.com> wrote:\n> Is it fixed?\n> Anna",
            "Thanks!",
            Some("On Mon, 3 Mar 2025 at 10:00, Anna <anna@example.com> wrote:\n> Is it fixed?\n> Anna"),
        );
        check(
            "Thanks!\n\nOn Mon, 3 Mar 2025 at 10:00, Anna Smith\n<anna@example.com> wrote:\n\n> Is it fixed?",
            "Thanks!",
            Some("On Mon, 3 Mar 2025 at 10:00, Anna Smith\n<anna@example.com> wrote:\n> Is it fixed?"),
        );
        check(
            "Спасибо!\n\n3 марта 2025 г., 10:00, Анна <anna@example.ru> пишет:\n> Всё работает?",
            "Спасибо!",
            Some("3 марта 2025 г., 10:00, Анна <anna@example.ru> пишет:\n> Всё работает?"),
        );
        check(
            "Да.\n\nПн, 3 мар. 2025 г. в 10:00, Анна <anna@example.ru>:\n> Всё работает?",
            "Да.",
            Some("Пн, 3 мар. 2025 г. в 10:00, Анна <anna@example.ru>:\n> Всё работает?"),
        );
        check(
            "Ок\n\n03.03.2025 10:00, Анна написал(а):\nСтарый текст",
            "Ок",
            Some("03.03.2025 10:00, Анна написал(а):\nСтарый текст"),
        );
        check("Best,\nIvan\n-- \nIvan Petrov\nACME", "Best,\nIvan", Some("--\nIvan Petrov\nACME"));
        check("Yes\n\nSent from my iPhone\n\n> old", "Yes", Some("Sent from my iPhone\n\n> old"));
        check(
            "See below\n\n-----Original Message-----\nFrom: A\nSent: today\nold",
            "See below",
            Some("-----Original Message-----\nFrom: A\nSent: today\nold"),
        );
        check(
            "Fixed.\n\n________________________________\nFrom: Support <s@x.com>\nSent: Monday\nTo: me\nSubject: Re\n\nold",
            "Fixed.",
            Some("________________________________\nFrom: Support <s@x.com>\nSent: Monday\nTo: me\nSubject: Re\n\nold"),
        );
    }

    #[test]
    fn keeps_interleaved_answers_and_ordinary_text() {
        check(
            "> Which version?\n2.4.1\n> Which OS?\nDebian 12",
            "2.4.1\nDebian 12",
            Some("> Which version?\n> Which OS?"),
        );
        check("Here is what my boss wrote:\nplease call us", "Here is what my boss wrote:\nplease call us", None);
        check("From: the start I said it\nit is fine", "From: the start I said it\nit is fine", None);
        check("a -- b\n--not a delimiter", "a -- b\n--not a delimiter", None);
    }

    #[test]
    fn falls_back_to_the_whole_text_when_nothing_is_new() {
        check("> only a quote\n> here", "> only a quote\n> here", None);
        check(
            "---------- Forwarded message ---------\nFrom: A <a@x.com>\nDate: Mon\n\nthe problem",
            "---------- Forwarded message ---------\nFrom: A <a@x.com>\nDate: Mon\n\nthe problem",
            None,
        );
        check("", "", None);
    }
}
