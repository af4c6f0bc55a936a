//! A customer's answer to the satisfaction survey: the new text of their reply is just a score.

/// The score (1-5) when a reply's new text (quotes and signature already stripped) is only a
/// rating: `5`, `5.`, `5!`, `5/5`, `5 of 5`, `5 - great`, `5: отлично`, `Rating: 4`, `оценка 4`,
/// `4 stars`, `5 отлично`. Anything else (`2 items are missing`) is a message, not a rating.
pub fn score(new_text: &str) -> Option<u8> {
    let text = new_text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    if text.chars().count() > 60 {
        return None;
    }
    let text = strip_label(&text);
    let mut chars = text.chars();
    let digit = chars.next()?.to_digit(10)?;
    if !(1..=5).contains(&digit) {
        return None;
    }
    let rest = chars.as_str();
    if rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let tail = rest.trim_start();
    let accepted = tail.is_empty()
        // `5.`, `5!`, `5)`, `5 - great`, `5: отлично`, `5, thanks`, `5/5`.
        || tail.starts_with(['.', '!', ')', '-', '–', '—', ':', ',', '/', '*'])
        || OUT_OF.iter().any(|p| tail.starts_with(p))
        || (rest.starts_with(' ') && WORDS.iter().any(|w| tail.starts_with(w)));
    accepted.then_some(digit as u8)
}

/// Labels a customer may put before the number.
const LABELS: &[&str] = &["rating", "score", "grade", "оценка", "моя оценка", "ставлю"];

/// `5 of 5`, `5 из 5`.
const OUT_OF: &[&str] = &["of 5", "out of 5", "из 5"];

/// Words that may follow the number after a space alone (prefixes: `star` covers `stars`).
const WORDS: &[&str] = &[
    "star",
    "great",
    "good",
    "ok",
    "fine",
    "bad",
    "poor",
    "excellent",
    "perfect",
    "awful",
    "terrible",
    "thank",
    "звезд",
    "балл",
    "отлично",
    "хорошо",
    "нормально",
    "плохо",
    "ужасно",
    "спасибо",
    "супер",
];

fn strip_label(text: &str) -> &str {
    for label in LABELS {
        if let Some(rest) = text.strip_prefix(label) {
            return rest.trim_start_matches([':', ' ', '-', '=']);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::score;

    #[test]
    fn a_bare_rating_is_a_score_and_a_message_is_not() {
        for (text, want) in [
            ("5", 5),
            (" 5.\n", 5),
            ("5 - great", 5),
            ("4!", 4),
            ("3/5", 3),
            ("4 out of 5", 4),
            ("Rating: 2", 2),
            ("1 star", 1),
            ("5 – отлично", 5),
            ("Оценка 4", 4),
            ("5 из 5", 5),
            ("4 хорошо", 4),
            ("5 Thanks!", 5),
        ] {
            assert_eq!(score(text), Some(want), "{text:?}");
        }
        for text in ["", "0", "6", "10", "55", "2 items are missing", "5 minutes ago it broke again", "great", "a 5"] {
            assert_eq!(score(text), None, "{text:?}");
        }
        assert_eq!(score(&format!("5 - {}", "really ".repeat(20))), None, "too long to be just a rating");
    }
}
