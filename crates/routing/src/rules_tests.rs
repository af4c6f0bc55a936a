//! Tests of the CEL routing rules.
use super::*;

fn rule(name: &str, when: &str) -> RuleConfig {
    RuleConfig { name: name.into(), when: when.into(), ..RuleConfig::default() }
}

/// Owned message data to borrow a [`RuleInput`] from.
struct Msg {
    channel: String,
    text: String,
    subject: Option<String>,
    tags: Vec<String>,
    language: Option<String>,
    vip: bool,
    metadata: BTreeMap<String, String>,
    now: DateTime<Utc>,
    repeat: bool,
    previous_agent: Option<String>,
    wait_secs: u64,
}

impl Default for Msg {
    fn default() -> Self {
        Msg {
            channel: "webchat".into(),
            text: "Hello, I need help".into(),
            subject: None,
            tags: Vec::new(),
            language: None,
            vip: false,
            metadata: BTreeMap::new(),
            now: at("2026-03-02T07:30:00Z"),
            repeat: false,
            previous_agent: None,
            wait_secs: 0,
        }
    }
}

impl Msg {
    fn input(&self) -> RuleInput<'_> {
        RuleInput {
            channel: &self.channel,
            text: &self.text,
            subject: self.subject.as_deref(),
            customer_id: "cust-1",
            customer_tags: &self.tags,
            customer_language: self.language.as_deref(),
            vip: self.vip,
            metadata: &self.metadata,
            now: self.now,
            repeat_contact: self.repeat,
            previous_agent: self.previous_agent.as_deref(),
            wait_secs: self.wait_secs,
        }
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("test instant").with_timezone(&Utc)
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

fn compile(rules: &[RuleConfig]) -> RuleSet {
    RuleSet::compile(rules, Tz::UTC).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn conditions_over_each_variable() {
    let vip_email = Msg {
        channel: "email".into(),
        text: "Please REFUND my Invoice #12".into(),
        subject: Some("Billing problem".into()),
        tags: tags(&["vip", "plan-pro"]),
        language: Some("ru".into()),
        vip: true,
        metadata: [("plan".to_string(), "pro".to_string()), ("region".to_string(), "eu".to_string())].into(),
        repeat: true,
        previous_agent: Some("alice".into()),
        wait_secs: 600,
        ..Msg::default()
    };
    let plain = Msg::default();
    // (condition, on vip_email, on plain): matches, does not, or fails to evaluate.
    const Y: Option<bool> = Some(true);
    const N: Option<bool> = Some(false);
    const E: Option<bool> = None;
    let cases: &[(&str, Option<bool>, Option<bool>)] = &[
        (r#"channel == "email""#, Y, N),
        (r#"text.contains("REFUND")"#, Y, N),
        (r#"text.lowerAscii().contains("refund")"#, Y, N),
        (r#"text.matches("(?i)invoice\\s+#\\d+")"#, Y, N),
        (r#"matches(text, "(?i)invoice")"#, Y, N),
        (r#"text.matches(metadata.plan)"#, N, E),
        (r#"text.matches(metadata.region + "|REFUND")"#, Y, E),
        (r#"text.startsWith("Hello")"#, N, Y),
        (r#"subject.contains("Billing")"#, Y, N),
        (r#"subject == """#, N, Y),
        (r#"size(text) > 20"#, Y, N),
        (r#"customer.id == "cust-1""#, Y, Y),
        (r#""vip" in customer.tags"#, Y, N),
        (r#"customer.tags.exists(t, t.startsWith("plan-"))"#, Y, N),
        (r#"customer.tags.all(t, t != "blocked")"#, Y, Y),
        (r#"size(customer.tags) == 0"#, N, Y),
        (r#"customer.language == "ru""#, Y, N),
        (r#"customer.language == """#, N, Y),
        (r#"customer.vip"#, Y, N),
        (r#"!customer.vip"#, N, Y),
        (r#"metadata.plan == "pro""#, Y, E),
        (r#"metadata["region"] == "eu""#, Y, E),
        (r#""plan" in metadata && metadata.plan == "pro""#, Y, N),
        (r#"has(metadata.plan) && metadata.plan == "pro""#, Y, N),
        (r#"size(metadata) == 0"#, N, Y),
        (r#"conversation.repeat"#, Y, N),
        (r#"conversation.previous_agent == "alice""#, Y, N),
        (r#"conversation.previous_agent == """#, N, Y),
        (r#"conversation.wait_secs >= 300"#, Y, N),
        (r#"time.weekday == "mon" && time.hour == 7 && time.minute == 30"#, Y, Y),
        (r#"time.date == "2026-03-02""#, Y, Y),
        (r#"type(text) == string"#, Y, Y),
        (r#"optional.of(text).hasValue()"#, Y, Y),
    ];
    for (when, on_vip, on_plain) in cases {
        let set = compile(&[rule("r", when)]);
        for (msg, expected, what) in [(&vip_email, on_vip, "the VIP email"), (&plain, on_plain, "the plain chat")] {
            let outcome = set.evaluate(&msg.input());
            let got = match (&outcome.matched[..], &outcome.errors[..]) {
                ([0], []) => Y,
                ([], []) => N,
                ([], [(0, _)]) => E,
                _ => panic!("`{when}` on {what}: {outcome:?}"),
            };
            assert_eq!(got, *expected, "`{when}` on {what}: {outcome:?}");
        }
    }
}

#[test]
fn outcomes_of_rule_lists() {
    let vip = rule("vip", r#""vip" in customer.tags"#);
    let email = rule("email", r#"channel == "email""#);
    let refund = rule("refund", r#"text.contains("refund")"#);
    let msg = Msg { channel: "email".into(), text: "refund please".into(), tags: tags(&["vip"]), ..Msg::default() };
    let cases: Vec<(&str, Vec<RuleConfig>, RuleOutcome)> = vec![
        ("no rules", vec![], RuleOutcome::default()),
        (
            "one match sets everything it names",
            vec![RuleConfig {
                priority: Some("P1".into()),
                skills: vec!["billing:2".into(), "lang-en:1".into()],
                tier: Some(Tier::L2),
                team: Some("vip".into()),
                auto_reply: Some("We are on it.".into()),
                ..vip.clone()
            }],
            RuleOutcome {
                priority: Some(Priority::P1),
                skills: vec![("billing".into(), 2), ("lang-en".into(), 1)],
                tier: Some(Tier::L2),
                team: Some("vip".into()),
                auto_reply: Some("We are on it.".into()),
                matched: vec![0],
                errors: vec![],
                overruns: vec![],
            },
        ),
        (
            "later matches override and merge skills by max level",
            vec![
                RuleConfig {
                    priority: Some("P3".into()),
                    skills: vec!["billing:2".into(), "email:1".into()],
                    team: Some("general".into()),
                    tier: Some(Tier::L1),
                    ..email.clone()
                },
                RuleConfig {
                    priority: Some("10".into()),
                    team: Some("never".into()),
                    ..rule("chat", "channel == 'chat'")
                },
                RuleConfig {
                    priority: Some("P2".into()),
                    skills: vec!["billing:4".into(), "refunds:3".into()],
                    team: Some("billing".into()),
                    ..refund.clone()
                },
                RuleConfig { skills: vec!["billing:1".into()], ..vip.clone() },
            ],
            RuleOutcome {
                priority: Some(Priority::P2),
                skills: vec![("billing".into(), 4), ("email".into(), 1), ("refunds".into(), 3)],
                tier: Some(Tier::L1),
                team: Some("billing".into()),
                matched: vec![0, 2, 3],
                ..RuleOutcome::default()
            },
        ),
        (
            "a matching stop rule ends evaluation",
            vec![
                RuleConfig { priority: Some("P2".into()), ..email.clone() },
                RuleConfig { priority: Some("P1".into()), stop: true, ..vip.clone() },
                RuleConfig { priority: Some("P4".into()), team: Some("billing".into()), ..refund.clone() },
            ],
            RuleOutcome { priority: Some(Priority::P1), matched: vec![0, 1], ..RuleOutcome::default() },
        ),
        (
            "a stop rule that does not match does not stop",
            vec![
                RuleConfig { stop: true, ..rule("chat", "channel == 'chat'") },
                RuleConfig { team: Some("billing".into()), ..refund.clone() },
            ],
            RuleOutcome { team: Some("billing".into()), matched: vec![1], ..RuleOutcome::default() },
        ),
        (
            "a non-bool result is an error, not a match, and later rules still run",
            vec![
                RuleConfig { priority: Some("P1".into()), ..rule("not-bool", "channel") },
                RuleConfig { priority: Some("P1".into()), ..rule("missing-key", "metadata.plan == 'pro'") },
                RuleConfig { priority: Some("P2".into()), ..email.clone() },
            ],
            RuleOutcome {
                priority: Some(Priority::P2),
                matched: vec![2],
                errors: vec![(0, "`when` returned string, not bool".into()), (1, "No such key: plan".into())],
                ..RuleOutcome::default()
            },
        ),
    ];
    for (what, rules, expected) in cases {
        assert_eq!(compile(&rules).evaluate(&msg.input()), expected, "{what}");
    }
}

#[test]
fn time_variables_follow_the_timezone() {
    let rules = [
        rule("office", r#"time.weekday == "mon" && time.hour >= 9 && time.hour < 18"#),
        rule("night", "time.hour < 6"),
        rule("monday", r#"time.date == "2026-03-02""#),
    ];
    let moscow = parse_timezone("Europe/Moscow").unwrap();
    // (instant, matched in UTC, matched in Moscow, UTC+3 all year)
    let cases: &[(&str, &[u16], &[u16])] = &[
        ("2026-03-02T07:30:00Z", &[2], &[0, 2]),
        // Sunday 22:30 UTC is already Monday 01:30 in Moscow.
        ("2026-03-01T22:30:00Z", &[], &[1, 2]),
        ("2026-03-02T15:30:00Z", &[0, 2], &[2]),
    ];
    for (now, in_utc, in_moscow) in cases {
        let msg = Msg { now: at(now), ..Msg::default() };
        let utc = RuleSet::compile(&rules, Tz::UTC).unwrap().evaluate(&msg.input());
        let msk = RuleSet::compile(&rules, moscow).unwrap().evaluate(&msg.input());
        assert_eq!(utc.matched, *in_utc, "UTC at {now}");
        assert_eq!(msk.matched, *in_moscow, "Moscow at {now}");
    }
}

#[test]
fn invalid_rules_are_refused_naming_the_rule() {
    let ok = rule("ok", "true");
    // (rules, rule named in the error, start of the reason)
    let cases: Vec<(Vec<RuleConfig>, &str, &str)> = vec![
        (vec![rule("bad-syntax", "channel ==")], "bad-syntax", "invalid CEL in `when`: ERROR: <input>:1:"),
        (vec![rule("bad-syntax", "text.contains(\"x\"")], "bad-syntax", "invalid CEL in `when`"),
        (vec![rule("empty", "  ")], "empty", "`when` is empty"),
        (
            vec![ok.clone(), RuleConfig { priority: Some("P9".into()), ..rule("p9", "true") }],
            "p9",
            "priority `P9`: expected P1-P4 or a number 1-100",
        ),
        (
            vec![RuleConfig { priority: Some("0".into()), ..rule("p0", "true") }],
            "p0",
            "priority `0`: expected P1-P4 or a number 1-100",
        ),
        (
            vec![RuleConfig { skills: vec!["billing:0".into()], ..rule("skill", "true") }],
            "skill",
            "skill `billing:0`: level must be 1-5",
        ),
        (
            vec![RuleConfig { skills: vec!["billing".into()], ..rule("skill", "true") }],
            "skill",
            "skill `billing`: expected name:level",
        ),
        (vec![ok.clone(), rule("x", "true"), rule("ok", "false")], "ok", "duplicate name (also rule #0)"),
        (vec![ok.clone(), rule("", "true")], "#1", "name is empty"),
        (vec![rule(" ", "true")], "#0", "name is empty"),
        (
            vec![rule("typo", r#"chanel == "email""#)],
            "typo",
            "unknown variable `chanel` (variables: channel, text, subject, customer, metadata, time, conversation)",
        ),
        (vec![rule("typo", "customer.tags.exists(t, u == 'x')")], "typo", "unknown variable `u`"),
        (vec![rule("typo", "[1].map(x, x) == [x]")], "typo", "unknown variable `x`"),
        (vec![rule("typo", "customer.vpi")], "typo", "`customer` has no field `vpi` (fields: id, tags, language, vip)"),
        (vec![rule("typo", "has(time.second)")], "typo", "`time` has no field `second`"),
        (vec![rule("typo", "conversation.waited > 5")], "typo", "`conversation` has no field `waited`"),
        (vec![rule("regex", r#"text.matches("(unclosed")"#)], "regex", "invalid regex in `matches`"),
        (vec![rule("regex", r#"matches(text, "[z-a]")"#)], "regex", "invalid regex in `matches`"),
    ];
    for (rules, name, reason) in cases {
        let err = RuleSet::compile(&rules, Tz::UTC).expect_err(reason);
        assert_eq!(err.rule, name, "{err}");
        assert!(err.reason.starts_with(reason), "got {:?}, expected {reason:?}", err.reason);
        assert_eq!(err.to_string(), format!("rule `{name}`: {}", err.reason));
    }
}

#[test]
fn bound_and_namespaced_names_are_not_unknown_variables() {
    for when in [
        "customer.tags.exists(tag, tag == 'vip')",
        "customer.tags.exists(channel, channel == 'vip')",
        "[1, 2].all(i, [3].exists(j, i < j))",
        "{'a': 1}.exists(k, k == 'a')",
        "{'customer': {'vpi': 1}}.exists(k, true)",
        "strings.quote(text) != ''",
        "lists.range(3).size() == 3",
        "type(conversation.wait_secs) == int",
    ] {
        let set = RuleSet::compile(&[rule("r", when)], Tz::UTC).unwrap_or_else(|e| panic!("{e}"));
        let outcome = set.evaluate(&Msg::default().input());
        assert_eq!(outcome.errors, vec![], "`{when}`");
    }
}

#[test]
fn regex_errors_at_evaluation_are_recorded() {
    let msg = Msg { metadata: [("re".to_string(), "(".to_string())].into(), ..Msg::default() };
    let set = compile(&[rule("dynamic", "text.matches(metadata.re)"), rule("ok", "text.matches('^Hello')")]);
    for _ in 0..2 {
        let outcome = set.evaluate(&msg.input());
        assert_eq!(outcome.matched, vec![1]);
        assert_eq!(outcome.errors.len(), 1, "{outcome:?}");
        assert!(outcome.errors[0].1.contains("'(' not a valid regex"), "{outcome:?}");
    }
}

#[test]
fn extreme_instants_do_not_panic() {
    let set = RuleSet::compile(&[rule("t", "time.hour >= 0 && time.date != ''")], chrono_tz::Pacific::Kiritimati)
        .unwrap_or_else(|e| panic!("{e}"));
    for now in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        let outcome = set.evaluate(&Msg { now, ..Msg::default() }.input());
        assert_eq!(outcome.matched, vec![0], "{outcome:?}");
    }
}

#[test]
fn names_and_sizes() {
    let set = compile(&[rule("first", "true"), rule("second", "false")]);
    assert_eq!((set.len(), set.is_empty()), (2, false));
    assert_eq!((set.name(0), set.name(1), set.name(2)), ("first", "second", ""));
    assert!(compile(&[]).is_empty());
    assert_eq!(parse_timezone("Europe/Moscow"), Ok(chrono_tz::Europe::Moscow));
    assert!(parse_timezone("Moscow").unwrap_err().starts_with("unknown timezone `Moscow`"));
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RuleSet>();
}
