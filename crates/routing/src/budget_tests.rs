//! Tests of the rule budget: load-time limits, the input cap, the time budget.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cel::common::ast::Expr;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::*;
use crate::config::RuleConfig;
use crate::rules::{RuleInput, RuleOutcome, RuleSet};
use crate::{Engine, RoutingConfig};

fn rule(name: &str, when: &str) -> RuleConfig {
    RuleConfig { name: name.into(), when: when.into(), ..RuleConfig::default() }
}

fn set(rules: &[RuleConfig], budget: &RuleBudgetConfig) -> RuleSet {
    RuleSet::compile_with(rules, Tz::UTC, budget).unwrap_or_else(|e| panic!("{e}"))
}

fn evaluate(set: &RuleSet, text: &str, subject: Option<&str>, metadata: &BTreeMap<String, String>) -> RuleOutcome {
    let tags = vec!["vip".to_string()];
    set.evaluate(&RuleInput {
        channel: "email",
        text,
        subject,
        customer_id: "c-1",
        customer_tags: &tags,
        customer_language: None,
        vip: false,
        metadata,
        now: DateTime::<Utc>::UNIX_EPOCH,
        repeat_contact: false,
        previous_agent: None,
        wait_secs: 0,
    })
}

/// A routing configuration with one team and `rules` (TOML), refused or not.
fn engine(extra: &str) -> Result<Engine, crate::RoutingConfigError> {
    let cfg: RoutingConfig =
        toml::from_str(&format!("default_team = \"s\"\n{extra}\n[teams.s]\n")).unwrap_or_else(|e| panic!("{e}"));
    Engine::new(&cfg)
}

/// The issue's rule: every pair of characters of the text, nested.
const PAIRS: &str = r#"text.split("").exists(a, text.split("").exists(b, a + b == "zz"))"#;

#[test]
fn limits_refuse_deep_nesting_and_large_expressions_naming_the_rule() {
    let three = r#"text.split(" ").exists(a, a.split("").exists(b, b.split("").exists(c, c == "z")))"#;
    let toml = format!("[[rules]]\nname = \"ok\"\nwhen = 'true'\n[[rules]]\nname = \"deep\"\nwhen = '{three}'\n");
    let e = engine(&toml).err().expect("three levels refused by default");
    assert_eq!(e.key, "rules[1]", "{e}");
    assert!(e.reason.contains("`deep`") && e.reason.contains("nest 3 deep"), "{e}");
    assert!(e.reason.contains("routing.rule_budget.max_comprehension_depth"), "{e}");

    // Two levels (the issue's rule) are allowed: the time budget bounds them.
    assert!(engine(&format!("[[rules]]\nname = \"pairs\"\nwhen = '{PAIRS}'\n")).is_ok());
    // Loops one after the other do not multiply: `map` feeds `exists`, it does not run inside it.
    let chained = r#"text.split(" ").map(w, w.lowerAscii()).filter(w, w != "").exists(w, w == "refund")"#;
    let one = RuleBudgetConfig { max_comprehension_depth: 1, ..RuleBudgetConfig::default() };
    set(&[rule("chained", chained)], &one);
    let nested = RuleSet::compile_with(&[rule("nested", PAIRS)], Tz::UTC, &one).expect_err("two levels over one");
    assert!(nested.reason.contains("nest 2 deep"), "{nested}");
    let none = RuleBudgetConfig { max_comprehension_depth: 0, ..RuleBudgetConfig::default() };
    let e = RuleSet::compile_with(&[rule("tags", r#""vip" in customer.tags"#)], Tz::UTC, &none);
    assert!(e.is_ok(), "no comprehension, nothing to refuse");
    let e = RuleSet::compile_with(&[rule("loop", r#"customer.tags.exists(t, t == "vip")"#)], Tz::UTC, &none);
    assert!(e.expect_err("depth 0 refuses every loop").reason.contains("nest 1 deep"));

    // Size, counted after macro expansion.
    let long = (0..40).map(|i| format!("text.contains(\"w{i}\")")).collect::<Vec<_>>().join(" || ");
    let e =
        engine(&format!("[rule_budget]\nmax_expression_nodes = 100\n[[rules]]\nname = \"long\"\nwhen = '{long}'\n"))
            .err()
            .expect("over 100 nodes");
    assert_eq!(e.key, "rules[0]", "{e}");
    assert!(e.reason.contains("`long`") && e.reason.contains("max_expression_nodes"), "{e}");
    assert!(engine(&format!("[[rules]]\nname = \"long\"\nwhen = '{long}'\n")).is_ok(), "within the default 512");
    // A group's `select` has no time budget (every process must decide alike), so it may not
    // nest loops at all.
    let layout = |select: &str| {
        let groups = format!(
            "[[groups]]\nname = \"a\"\nteams = [\"s\"]\nselect = '{select}'\n[[groups]]\nname = \"b\"\nteams = [\"t\"]\n[teams.t]\n"
        );
        let cfg: RoutingConfig = toml::from_str(&format!("default_team = \"s\"\n[teams.s]\n{groups}")).expect("parses");
        crate::Layout::new(&cfg)
    };
    let e = layout("metadata.exists(k, metadata.exists(j, j == k))").expect_err("a nested select is refused");
    assert_eq!(e.key, "groups[0].select", "{e}");
    assert!(e.reason.contains("nest 2 deep, more than 1"), "{e}");
    assert!(layout(r#"metadata.exists(k, k == "plan")"#).is_ok());
}

#[test]
fn budget_settings_are_validated_naming_the_key() {
    for (setting, key, reason) in [
        ("budget_ms = 0", "rule_budget.budget_ms", "between 1 and 1000"),
        ("budget_ms = 1001", "rule_budget.budget_ms", "between 1 and 1000"),
        ("max_input_bytes = 0", "rule_budget.max_input_bytes", "between 1 and"),
        ("max_comprehension_depth = 9", "rule_budget.max_comprehension_depth", "at most 8"),
        ("max_expression_nodes = 0", "rule_budget.max_expression_nodes", "between 1 and"),
    ] {
        let e = engine(&format!("[rule_budget]\n{setting}\n")).err().unwrap_or_else(|| panic!("{setting} accepted"));
        assert_eq!(e.key, key, "{e}");
        assert!(e.reason.contains(reason), "{e}");
    }
    assert!(engine("[rule_budget]\nbudget_ms = 10\nmax_input_bytes = 100\n").is_ok());
    assert!(toml::from_str::<RoutingConfig>("[rule_budget]\nbudget = 1\n").is_err(), "unknown keys refused");
}

#[test]
fn rules_see_string_inputs_cut_to_max_input_bytes() {
    let budget = RuleBudgetConfig { max_input_bytes: 8, ..RuleBudgetConfig::default() };
    let rules = set(
        &[
            rule("size", "size(text) == 8"),
            rule("tail", r#"text.endsWith("tail")"#),
            rule("subject", "size(subject) == 8"),
            rule("metadata", r#"size(metadata.note) == 8"#),
            rule("utf8", r#"size(metadata.name) == 4"#),
        ],
        &budget,
    );
    let metadata = BTreeMap::from([
        ("note".to_string(), "0123456789abcdef".to_string()),
        // The cap falls inside the fifth character: cut before it.
        ("name".to_string(), "aééééé".to_string()),
    ]);
    let text = "0123456789 with a tail";
    let outcome = evaluate(&rules, text, Some("a long subject line"), &metadata);
    assert_eq!(outcome.matched, vec![0, 2, 3, 4], "{outcome:?}");
    assert!(outcome.errors.is_empty() && outcome.overruns.is_empty(), "{outcome:?}");
    // Within the cap nothing changes.
    let outcome = evaluate(&rules, "my tail", Some("short"), &metadata);
    assert!(outcome.matched.contains(&1), "{outcome:?}");
    assert_eq!(capped("ééééé", 9), "éééé");
    assert_eq!(capped("abc", 9), "abc");
    assert_eq!(capped("abc", 0), "");
}

#[test]
fn a_rule_over_budget_is_stopped_and_counts_as_not_matching() {
    let budget = RuleBudgetConfig { budget_ms: 20, ..RuleBudgetConfig::default() };
    let rules = set(
        &[
            rule("budget-test-before", r#"text.startsWith("ab")"#),
            rule("budget-test-pairs", PAIRS),
            // CEL's `||` absorbs the error that stops the loop: the overrun must still count.
            rule("budget-test-absorbed", &format!("{PAIRS} || true")),
            rule("budget-test-map", r#"text.split("").map(a, text.split("").filter(b, b == a)).size() > 0"#),
            rule("budget-test-after", r#"text.endsWith("ab")"#),
        ],
        &budget,
    );
    let text = "ab".repeat(6 * 1024);
    let started = Instant::now();
    let outcome = evaluate(&rules, &text, None, &BTreeMap::new());
    let took = started.elapsed();
    assert_eq!(outcome.matched, vec![0, 4], "cheap rules before and after still match: {outcome:?}");
    assert_eq!(outcome.overruns.iter().map(|(ix, _)| *ix).collect::<Vec<_>>(), vec![1, 2, 3], "{outcome:?}");
    assert!(outcome.errors.is_empty(), "an overrun is not an evaluation error: {outcome:?}");
    // Each stops within an iteration of its 20 ms (the split of the 4 KiB text before the first
    // iteration included); unbounded, the first alone takes seconds.
    for (ix, spent) in &outcome.overruns {
        assert!(*spent >= Duration::from_millis(20) && *spent < Duration::from_millis(250), "rule {ix}: {spent:?}");
    }
    assert!(took < Duration::from_secs(1), "three stopped rules took {took:?}");
    let counts = overruns();
    for name in ["budget-test-pairs", "budget-test-absorbed", "budget-test-map"] {
        assert_eq!(counts.get(name), Some(&1), "{counts:?}");
        assert!(exposition().contains(&format!("switchboard_rule_budget_overruns_total{{rule=\"{name}\"}} 1")));
    }
    // The next message starts with a fresh budget, and a rule within it gives its result.
    let outcome = evaluate(&rules, "ab zz ab", None, &BTreeMap::new());
    assert_eq!(outcome.matched, vec![0, 1, 2, 3, 4], "{outcome:?}");
    assert!(outcome.overruns.is_empty(), "{outcome:?}");
}

#[test]
fn instrumented_comprehensions_keep_their_results() {
    let cases = [
        "[1, 2, 3].map(x, x * 2) == [2, 4, 6]",
        "[1, 2, 3].filter(x, x > 1) == [2, 3]",
        "[1, 2, 3].map(x, x > 1, x * 10) == [20, 30]",
        "[1, 2, 3].all(x, x > 0) && ![1, 2, 3].all(x, x > 1)",
        "[1, 2, 3].exists(x, x == 3) && ![1, 2, 3].exists(x, x == 4)",
        "[1, 2, 3].exists_one(x, x == 2) && ![1, 2, 2].exists_one(x, x == 2)",
        r#"{"a": 1, "b": 2}.exists(k, k == "b") && {"a": 1}.all(k, k == "a")"#,
        r#"text.split(" ").exists(w, w == "help") && customer.tags.map(t, t.upperAscii()) == ["VIP"]"#,
        "[[1, 2], [3]].map(l, l.map(x, x + 1)) == [[2, 3], [4]]",
        "[3, 1, 2].sortBy(x, -x) == [3, 2, 1]",
        "[1, 2, 3].exists(x, x / 0 == 1) || true",
    ];
    let rules: Vec<RuleConfig> = cases.iter().enumerate().map(|(i, c)| rule(&format!("r{i}"), c)).collect();
    let outcome = evaluate(&set(&rules, &RuleBudgetConfig::default()), "I need help", None, &BTreeMap::new());
    assert_eq!(outcome.matched.len(), cases.len(), "{outcome:?}");
}

#[test]
fn map_and_filter_keep_the_shape_cel_appends_in_place() {
    let env = cel::Env::stdlib();
    for source in ["[1, 2].map(x, x * 2)", "[1, 2].filter(x, x > 1)", "[1, 2].map(x, x > 1, x)"] {
        let mut e = env.compile(source).expect("compiles").expression().clone();
        instrument(&mut e);
        let Expr::Comprehension(c) = &e.expr else { panic!("{source}: {e:?}") };
        assert!(matches!(c.loop_cond.expr, Expr::Literal(_)), "{source}: the loop condition stays literal");
        let Expr::Call(step) = &c.loop_step.expr else { panic!("{source}: {:?}", c.loop_step) };
        assert_eq!(step.func_name, cel::common::ast::operators::CONDITIONAL, "{source}");
        assert!(
            matches!(&step.args[0].expr, Expr::Call(guard) if guard.func_name == BUDGET_CHECK),
            "{source}: the guard checks the budget: {step:?}"
        );
    }
    let mut e = env.compile("[1, 2].exists(x, x == 2)").expect("compiles").expression().clone();
    instrument(&mut e);
    let Expr::Comprehension(c) = &e.expr else { panic!("{e:?}") };
    assert!(matches!(&c.loop_cond.expr, Expr::Call(check) if check.func_name == BUDGET_CHECK), "{c:?}");
}
