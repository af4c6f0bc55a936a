//! Parsing of the small textual specs the routing configuration uses: skills (`billing:3`) and
//! priorities (`P2`, `40`).

use switchboard_core::Priority;

/// Longest skill name accepted; names end up in explanations and metrics labels.
const MAX_SKILL_NAME: usize = 64;

/// Parses a skill spec `name:level` (name: `a-z0-9-_`, 1-64 chars; level 1-5).
pub fn parse_skill(spec: &str) -> Result<(String, u8), String> {
    let Some((name, level)) = spec.split_once(':') else {
        return Err(format!("skill `{spec}`: expected name:level"));
    };
    if name.is_empty() {
        return Err(format!("skill `{spec}`: name is empty"));
    }
    if name.len() > MAX_SKILL_NAME {
        return Err(format!("skill `{spec}`: name is longer than {MAX_SKILL_NAME} characters"));
    }
    if let Some(bad) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_')) {
        return Err(format!("skill `{spec}`: name may only contain a-z, 0-9, `-` and `_`, found `{bad}`"));
    }
    let level = parse_digits(level).ok_or_else(|| format!("skill `{spec}`: level must be a number 1-5"))?;
    match u8::try_from(level) {
        Ok(level @ 1..=5) => Ok((name.to_string(), level)),
        _ => Err(format!("skill `{spec}`: level must be 1-5")),
    }
}

/// Parses a priority: `P1`..`P4` (any case) or an integer 1-100 (1 is the most urgent).
pub fn parse_priority(spec: &str) -> Result<Priority, String> {
    match spec.to_ascii_uppercase().as_str() {
        "P1" => return Ok(Priority::P1),
        "P2" => return Ok(Priority::P2),
        "P3" => return Ok(Priority::P3),
        "P4" => return Ok(Priority::P4),
        _ => {}
    }
    let invalid = || format!("priority `{spec}`: expected P1-P4 or a number 1-100");
    let value = parse_digits(spec).ok_or_else(invalid)?;
    match u8::try_from(value) {
        Ok(value @ 1..=100) => Ok(Priority(value)),
        _ => Err(invalid()),
    }
}

/// A plain decimal number: only ASCII digits (`str::parse` would also take `+3`). Wider than the
/// targets so that `billing:300` reports the range rather than failing to parse.
fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Overlong digit strings saturate: they are out of range either way.
    Some(s.parse().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skills() {
        let long = format!("{}:1", "a".repeat(65));
        let max = format!("{}:1", "a".repeat(64));
        type Expected<'a> = Result<(&'a str, u8), &'a str>;
        let cases: &[(&str, Expected<'_>)] = &[
            ("billing:3", Ok(("billing", 3))),
            ("lang-ru:1", Ok(("lang-ru", 1))),
            ("tier_2:5", Ok(("tier_2", 5))),
            (&max, Ok((&max[..64], 1))),
            ("billing:9", Err("skill `billing:9`: level must be 1-5")),
            ("billing:0", Err("skill `billing:0`: level must be 1-5")),
            ("billing:300", Err("skill `billing:300`: level must be 1-5")),
            ("billing", Err("skill `billing`: expected name:level")),
            ("", Err("skill ``: expected name:level")),
            (":3", Err("skill `:3`: name is empty")),
            ("billing:", Err("skill `billing:`: level must be a number 1-5")),
            ("billing:-1", Err("skill `billing:-1`: level must be a number 1-5")),
            ("billing:+3", Err("skill `billing:+3`: level must be a number 1-5")),
            ("billing:99999999999", Err("skill `billing:99999999999`: level must be 1-5")),
            ("billing:2:3", Err("skill `billing:2:3`: level must be a number 1-5")),
            ("Billing:3", Err("skill `Billing:3`: name may only contain a-z, 0-9, `-` and `_`, found `B`")),
            ("bill ing:3", Err("skill `bill ing:3`: name may only contain a-z, 0-9, `-` and `_`, found ` `")),
            ("счёт:3", Err("skill `счёт:3`: name may only contain a-z, 0-9, `-` and `_`, found `с`")),
        ];
        for (input, expected) in cases {
            let got = parse_skill(input);
            let expected = expected.map(|(n, l)| (n.to_string(), l)).map_err(str::to_string);
            assert_eq!(got, expected, "input {input:?}");
        }
        let err = parse_skill(&long).unwrap_err();
        assert!(err.ends_with("name is longer than 64 characters"), "{err}");
    }

    #[test]
    fn priorities() {
        let cases: &[(&str, Option<u8>)] = &[
            ("P1", Some(1)),
            ("p2", Some(25)),
            ("P3", Some(50)),
            ("p4", Some(75)),
            ("1", Some(1)),
            ("40", Some(40)),
            ("100", Some(100)),
            ("0", None),
            ("101", None),
            ("256", None),
            ("-5", None),
            ("+5", None),
            ("99999999999999", None),
            ("P5", None),
            ("P0", None),
            ("P9", None),
            ("", None),
            (" P1", None),
            ("high", None),
        ];
        for (input, expected) in cases {
            let got = parse_priority(input);
            match expected {
                Some(v) => assert_eq!(got, Ok(Priority(*v)), "input {input:?}"),
                None => assert_eq!(
                    got,
                    Err(format!("priority `{input}`: expected P1-P4 or a number 1-100")),
                    "input {input:?}"
                ),
            }
        }
    }
}
