//! A customer's answer to a survey (CSAT, NPS, CES): the new text of their reply is just a number.

/// The number when a reply's new text (quotes and signature already stripped) is only a rating of
/// one or two digits: `5`, `5.`, `5!`, `5/5`, `9 of 10`, `5 - great`, `5: отлично`, `Rating: 4`,
/// `оценка 4`, `4 stars`, `10 отлично`. Anything else (`2 items are missing`) is a message, not a
/// rating. Whether the number is on the survey's scale is the caller's to check (the survey asked
/// is on the conversation record): `12` is read as 12, and refused there.
pub fn number(new_text: &str) -> Option<u8> {
    let text = new_text.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    if text.chars().count() > 60 {
        return None;
    }
    let text = strip_label(&text);
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if !(1..=2).contains(&digits) {
        return None;
    }
    let (number, rest) = text.split_at(digits);
    let tail = rest.trim_start();
    let accepted = tail.is_empty()
        // `5.`, `5!`, `5)`, `5 - great`, `5: отлично`, `5, thanks`, `5/5`, `9/10`.
        || tail.starts_with(['.', '!', ')', '-', '–', '—', ':', ',', '/', '*'])
        || OUT_OF.iter().any(|p| tail.strip_prefix(p).is_some_and(|n| n.trim_start().starts_with(|c: char| c.is_ascii_digit())))
        || (rest.starts_with(' ') && WORDS.iter().any(|w| tail.starts_with(w)));
    accepted.then(|| number.parse().ok()).flatten()
}

/// Labels a customer may put before the number.
const LABELS: &[&str] = &["rating", "score", "grade", "оценка", "моя оценка", "ставлю"];

/// `5 of 5`, `9 out of 10`, `5 из 5` (followed by a number).
const OUT_OF: &[&str] = &["of", "out of", "из"];

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
    use super::number as score;

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
            // NPS is 0-10, CES 1-7; the scale is checked against the survey asked.
            ("0", 0),
            ("10", 10),
            ("9 out of 10", 9),
            ("10/10", 10),
            ("Score: 7", 7),
            ("12", 12),
        ] {
            assert_eq!(score(text), Some(want), "{text:?}");
        }
        for text in
            ["", "100", "2 items are missing", "5 minutes ago it broke again", "great", "a 5", "5 of them", "10 days"]
        {
            assert_eq!(score(text), None, "{text:?}");
        }
        assert_eq!(score(&format!("5 - {}", "really ".repeat(20))), None, "too long to be just a rating");
    }
}
