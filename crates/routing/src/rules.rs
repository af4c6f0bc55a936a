//! Routing rules: CEL conditions over an arriving message, compiled once at load and evaluated in
//! order to decide priority, skills, tier, team and an automatic reply.
//!
//! A rule's `when` is a [CEL](https://cel.dev) expression over these variables:
//!
//! - `channel` (string): channel kind, e.g. `"email"`;
//! - `text` (string): the message text;
//! - `subject` (string): the subject, `""` when absent;
//! - `customer` (map): `id` string, `tags` list of strings, `language` string (`""` when unknown),
//!   `vip` bool;
//! - `metadata` (map string → string): channel metadata;
//! - `time` (map, in the rule set's timezone): `hour` int 0-23, `minute` int, `weekday` `"mon"`..
//!   `"sun"`, `date` `"YYYY-MM-DD"`;
//! - `conversation` (map): `repeat` bool, `previous_agent` string (`""` if none), `wait_secs` int.
//!
//! The CEL standard library is available (`text.contains("refund")`, `"vip" in customer.tags`,
//! `text.matches("(?i)invoice")`, `size(...)`, macros `exists`/`all`/`has`/...), plus the `strings`
//! (`lowerAscii`, `split`, `replace`, ...) and `lists` extensions. A missing `metadata` key is an
//! evaluation error, as CEL wants: test it with `has(metadata.plan)` or `"plan" in metadata` first.
//!
//! Loading refuses unknown variables, unknown fields of `customer`, `time` and `conversation`, and
//! invalid literal regexes. Other failures (a wrong type, a missing key, a non-bool result) only
//! show at evaluation: they land in [`RuleOutcome::errors`] and the rule counts as not matching.
//!
//! What a rule may cost is bounded by [`RuleBudgetConfig`] (see [`crate::budget`]): loading
//! refuses expressions that are too large or nest comprehensions too deeply, rules see string
//! inputs cut to `max_input_bytes`, and an evaluation that runs over `budget_ms` is stopped,
//! warned about with the rule's name and lands in [`RuleOutcome::overruns`], not matching.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::Duration;

use cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue};
use cel::common::types::{CelBool, CelInt, CelList, CelMap, CelMapKey, CelString};
use cel::common::value::Val;
use cel::parser::{Macro, MacroExprHelper};
use cel::{Context, Env, ExecutionError, IdedExpr, Value};
use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use regex::Regex;
use switchboard_core::{Priority, Tier};

use crate::budget::{self, BUDGET_CHECK, Budget, capped, within_budget};
use crate::config::{RuleBudgetConfig, RuleConfig};
pub use crate::hours::parse_timezone;
use crate::hours::{WEEKDAYS, local_time};
use crate::skills::{parse_priority, parse_skill};

/// A rule refused at load: which rule (its name, or `#index` when unnamed) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule `{rule}`: {reason}")]
pub struct RuleError {
    /// The rule's position in the list, when the error is about one rule.
    pub index: Option<usize>,
    /// The rule's name, or `#<index>` when it has none.
    pub rule: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The borrowed view of a message and its conversation that rules are evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    /// Channel kind, e.g. `email`.
    pub channel: &'a str,
    /// Message text.
    pub text: &'a str,
    /// Subject line, if the channel has one.
    pub subject: Option<&'a str>,
    /// Customer id.
    pub customer_id: &'a str,
    /// Customer tags, e.g. `vip`.
    pub customer_tags: &'a [String],
    /// Customer language, if known.
    pub customer_language: Option<&'a str>,
    /// Whether the customer is a VIP.
    pub vip: bool,
    /// Channel metadata.
    pub metadata: &'a BTreeMap<String, String>,
    /// The current instant; the `time` variables show it in the rule set's timezone.
    pub now: DateTime<Utc>,
    /// Whether the customer came back to a recently resolved conversation.
    pub repeat_contact: bool,
    /// The agent who last handled the customer, if any.
    pub previous_agent: Option<&'a str>,
    /// How long the conversation has waited, in seconds.
    pub wait_secs: u64,
}

/// What the matching rules decided; fields a rule does not set stay `None`/empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleOutcome {
    /// Priority set by the last matching rule that sets one.
    pub priority: Option<Priority>,
    /// Required skills of all matching rules; a skill named twice keeps its highest level.
    pub skills: Vec<(String, u8)>,
    /// Tier set by the last matching rule that sets one.
    pub tier: Option<Tier>,
    /// Team set by the last matching rule that sets one.
    pub team: Option<String>,
    /// Auto-reply set by the last matching rule that sets one.
    pub auto_reply: Option<String>,
    /// Indices of the matching rules, in evaluation order.
    pub matched: Vec<u16>,
    /// Rules whose condition failed to evaluate or was not a bool; they count as not matching.
    pub errors: Vec<(u16, String)>,
    /// Rules whose evaluation ran over the time budget, with how long it took; they count as
    /// not matching.
    pub overruns: Vec<(u16, Duration)>,
}

/// Top-level variables, in the order of the `VAR_*` bits.
const VARIABLES: [&str; 7] = ["channel", "text", "subject", "customer", "metadata", "time", "conversation"];
const VAR_CHANNEL: u8 = 1 << 0;
const VAR_TEXT: u8 = 1 << 1;
const VAR_SUBJECT: u8 = 1 << 2;
const VAR_CUSTOMER: u8 = 1 << 3;
const VAR_METADATA: u8 = 1 << 4;
const VAR_TIME: u8 = 1 << 5;
const VAR_CONVERSATION: u8 = 1 << 6;

/// Fields of the fixed-shape map variables, so typos like `customer.vpi` fail at load.
const MAP_FIELDS: [(&str, &[&str]); 3] = [
    ("customer", &["id", "tags", "language", "vip"]),
    ("time", &["hour", "minute", "weekday", "date"]),
    ("conversation", &["repeat", "previous_agent", "wait_secs"]),
];

/// Function namespaces of the environment (`optional.of(..)`, `strings.quote(..)`,
/// `lists.range(..)`): a call on one of these names is not a variable reference. cel keeps its
/// own list private.
const NAMESPACES: [&str; 3] = ["optional", "strings", "lists"];

/// The CEL environment, built once: the standard library is a few hundred overloads.
static ENV: LazyLock<Result<Arc<Env>, String>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings).map_err(|e| e.to_string())?;
    env.add_extension(cel::extensions::lists).map_err(|e| e.to_string())?;
    // cel's `matches` compiles its regex on every call (~140µs for `(?i)charge(d|back)`, ten
    // times the cost of ten other rules); these macros send both call forms to a cached one.
    cel::add_member_overload!(env, fn cached_matches: (CelString, CelString) -> Result<CelBool>, name = CACHED_MATCHES)
        .map_err(|e| e.to_string())?;
    cel::add_member_overload!(env, fn within_budget: (CelBool) -> Result<CelBool>, name = BUDGET_CHECK)
        .map_err(|e| e.to_string())?;
    let to_cached = |target: IdedExpr, pattern: IdedExpr, helper: &mut MacroExprHelper<'_>| {
        helper.next_expr(Expr::Call(CallExpr {
            func_name: CACHED_MATCHES.to_string(),
            target: Some(Box::new(target)),
            args: vec![pattern],
        }))
    };
    let receiver = Macro::receiver("matches", 1, move |helper, target, args| {
        let (Some(target), Some(pattern)) = (target.take(), args.pop()) else { return Ok(None) };
        Ok(Some(to_cached(target, pattern, helper)))
    });
    let global = Macro::global("matches", 2, move |helper, _, args| {
        let (Some(pattern), Some(target)) = (args.pop(), args.pop()) else { return Ok(None) };
        Ok(Some(to_cached(target, pattern, helper)))
    });
    env.add_macro(receiver).map_err(|e| e.to_string())?;
    env.add_macro(global).map_err(|e| e.to_string())?;
    Ok(Arc::new(env))
});

/// What `matches` calls are rewritten to; `@` keeps it out of reach of rule authors.
const CACHED_MATCHES: &str = "@matches";

/// Compiled regexes by pattern, shared by all rule sets (patterns are few and outlive reloads).
static REGEXES: LazyLock<RwLock<HashMap<String, Regex>>> = LazyLock::new(Default::default);

/// Bounds [`REGEXES`] against patterns built from message data (`text.matches(metadata.re)`);
/// patterns beyond it are compiled per call, as cel would.
const MAX_CACHED_REGEXES: usize = 1024;

/// `this.matches(re)` (RE2 syntax, as CEL specifies) with the compiled regex cached.
fn cached_matches(this: &CelString<'_>, re: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let (text, pattern) = (this.inner(), re.inner());
    {
        let cache = REGEXES.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(regex) = cache.get(pattern) {
            return Ok(CelBool::from(regex.is_match(text)));
        }
    }
    let regex = compile_regex(pattern).map_err(|message| ExecutionError::function_error("matches", message))?;
    let matched = regex.is_match(text);
    let mut cache = REGEXES.write().unwrap_or_else(PoisonError::into_inner);
    if cache.len() < MAX_CACHED_REGEXES {
        cache.insert(pattern.to_string(), regex);
    }
    Ok(CelBool::from(matched))
}

/// Compiles a `matches` pattern, with the error message cel gives for a bad one.
fn compile_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("'{pattern}' not a valid regex:\n{e}"))
}

/// A compiled rule.
struct Rule {
    name: String,
    /// The parsed `when`, its comprehensions instrumented by [`budget::instrument`].
    when: IdedExpr,
    /// Whether `when` has a comprehension: only those are timed (see [`crate::budget`]).
    loops: bool,
    priority: Option<Priority>,
    skills: Vec<(String, u8)>,
    tier: Option<Tier>,
    team: Option<String>,
    auto_reply: Option<String>,
    stop: bool,
}

/// Compiled routing rules, evaluated in order against each arriving message.
pub struct RuleSet {
    env: Arc<Env>,
    rules: Vec<Rule>,
    tz: Tz,
    /// `VAR_*` bits of the variables any rule references: only those are built per evaluation.
    uses: u8,
    /// Bytes of each string input the rules see.
    max_input: usize,
    /// CPU time one rule's evaluation may take; `None` for a set that must decide the same on every
    /// machine (see [`RuleSet::untimed`]).
    budget: Option<Duration>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
            .field("tz", &self.tz)
            .finish()
    }
}

impl RuleSet {
    /// Compiles every rule with the default [`RuleBudgetConfig`], refusing the first bad one;
    /// `tz` is the timezone of the `time` variables.
    pub fn compile(rules: &[RuleConfig], tz: Tz) -> Result<RuleSet, RuleError> {
        Self::compile_with(rules, tz, &RuleBudgetConfig::default())
    }

    /// Compiles every rule within the limits of `budget`, refusing the first bad one.
    pub fn compile_with(rules: &[RuleConfig], tz: Tz, budget: &RuleBudgetConfig) -> Result<RuleSet, RuleError> {
        let env = ENV.as_ref().map_err(|e| RuleError {
            index: None,
            rule: "*".into(),
            reason: format!("CEL environment: {e}"),
        })?;
        if rules.len() > usize::from(u16::MAX) {
            return Err(RuleError {
                index: Some(usize::from(u16::MAX)),
                rule: format!("#{}", u16::MAX),
                reason: format!("too many rules (at most {})", u16::MAX),
            });
        }
        let mut compiled: Vec<Rule> = Vec::with_capacity(rules.len());
        let mut uses = 0;
        for (i, r) in rules.iter().enumerate() {
            let name = r.name.trim();
            let fail = |reason: String| RuleError {
                index: Some(i),
                rule: if name.is_empty() { format!("#{i}") } else { name.to_string() },
                reason,
            };
            if name.is_empty() {
                return Err(fail("name is empty".into()));
            }
            if let Some(first) = compiled.iter().position(|c| c.name == name) {
                return Err(fail(format!("duplicate name (also rule #{first})")));
            }
            let priority = r.priority.as_deref().map(parse_priority).transpose().map_err(fail)?;
            let skills = r.skills.iter().map(|s| parse_skill(s)).collect::<Result<Vec<_>, _>>().map_err(fail)?;
            if r.when.trim().is_empty() {
                return Err(fail("`when` is empty".into()));
            }
            let program = env.compile(&r.when).map_err(|e| fail(format!("invalid CEL in `when`: {e}")))?;
            let mut check = Check { env, bound: Vec::new(), uses: 0 };
            check.expr(program.expression()).map_err(fail)?;
            let depth = budget::check_limits(program.expression(), budget).map_err(fail)?;
            uses |= check.uses;
            let mut when = program.expression().clone();
            budget::instrument(&mut when);
            compiled.push(Rule {
                name: name.to_string(),
                when,
                loops: depth > 0,
                priority,
                skills,
                tier: r.tier,
                team: r.team.clone(),
                auto_reply: r.auto_reply.clone(),
                stop: r.stop,
            });
        }
        Ok(RuleSet {
            env: Arc::clone(env),
            rules: compiled,
            tz,
            uses,
            max_input: budget.max_input_bytes,
            budget: Some(Duration::from_millis(budget.budget_ms)),
        })
    }

    /// The same rules without the time budget: for a decision every process must make alike
    /// (a group's `select`), which a clock would not; its load-time limits bound it instead.
    pub(crate) fn untimed(mut self) -> RuleSet {
        self.budget = None;
        self
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Name of the rule at `index` (as in [`RuleOutcome::matched`]); `""` if out of range.
    pub fn name(&self, index: u16) -> &str {
        self.rules.get(usize::from(index)).map_or("", |r| r.name.as_str())
    }

    /// The variables the rules reference, e.g. `["channel", "metadata"]`.
    pub fn variables(&self) -> Vec<&'static str> {
        VARIABLES.iter().enumerate().filter(|(bit, _)| self.uses & (1 << bit) != 0).map(|(_, name)| *name).collect()
    }

    /// The timezone of the `time` variables.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Evaluates the rules in order: each match overrides priority, tier, team and auto-reply and
    /// adds its skills; a matching rule with `stop` ends the evaluation. A rule that runs over
    /// the time budget is stopped and counts as not matching (see [`RuleOutcome::overruns`]).
    pub fn evaluate(&self, input: &RuleInput<'_>) -> RuleOutcome {
        let mut out = RuleOutcome::default();
        if self.rules.is_empty() {
            return out;
        }
        let ctx = self.context(input);
        for (i, rule) in self.rules.iter().enumerate() {
            // `compile` caps the count at u16::MAX.
            let ix = i as u16;
            let budget = self.budget.filter(|_| rule.loops).map(Budget::start);
            let result = Value::resolve(&rule.when, &ctx);
            if let Some((limit, took)) = budget.as_ref().and_then(|b| Some((b.limit(), b.overran()?))) {
                budget::count_overrun(&rule.name);
                tracing::warn!(
                    rule = %rule.name,
                    budget_ms = limit.as_millis() as u64,
                    took_ms = took.as_millis() as u64,
                    "routing rule ran over its evaluation budget and was stopped; it counts as not matching for this message"
                );
                out.overruns.push((ix, took));
                continue;
            }
            drop(budget);
            match result {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => continue,
                Ok(other) => {
                    out.errors.push((ix, format!("`when` returned {}, not bool", other.type_of())));
                    continue;
                }
                Err(e) => {
                    out.errors.push((ix, e.to_string()));
                    continue;
                }
            }
            out.matched.push(ix);
            if rule.priority.is_some() {
                out.priority = rule.priority;
            }
            if rule.tier.is_some() {
                out.tier = rule.tier;
            }
            if rule.team.is_some() {
                out.team.clone_from(&rule.team);
            }
            if rule.auto_reply.is_some() {
                out.auto_reply.clone_from(&rule.auto_reply);
            }
            for (skill, level) in &rule.skills {
                match out.skills.iter_mut().find(|(s, _)| s == skill) {
                    Some((_, l)) => *l = (*l).max(*level),
                    None => out.skills.push((skill.clone(), *level)),
                }
            }
            if rule.stop {
                break;
            }
        }
        out
    }

    /// The CEL context for one message: built once per evaluation and shared by all rules,
    /// borrowing the input's strings rather than copying them, each cut to `max_input` bytes.
    fn context<'v>(&self, input: &RuleInput<'v>) -> Context<'v, 'v> {
        let max = self.max_input;
        let string = move |s: &'v str| -> Box<dyn Val + 'v> { Box::new(CelString::from(capped(s, max))) };
        fn map<'v, const N: usize>(entries: [(&'static str, Box<dyn Val + 'v>); N]) -> Box<dyn Val + 'v> {
            Box::new(CelMap::from(entries.into_iter().map(|(k, v)| (CelMapKey::from(k), v)).collect::<HashMap<_, _>>()))
        }
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        let uses = self.uses;
        if uses & VAR_CHANNEL != 0 {
            ctx.add_variable_as_val("channel", string(input.channel));
        }
        if uses & VAR_TEXT != 0 {
            ctx.add_variable_as_val("text", string(input.text));
        }
        if uses & VAR_SUBJECT != 0 {
            ctx.add_variable_as_val("subject", string(input.subject.unwrap_or("")));
        }
        if uses & VAR_CUSTOMER != 0 {
            let tags: Vec<Box<dyn Val + 'v>> = input.customer_tags.iter().map(|t| string(t)).collect();
            ctx.add_variable_as_val(
                "customer",
                map([
                    ("id", string(input.customer_id)),
                    ("tags", Box::new(CelList::from(tags))),
                    ("language", string(input.customer_language.unwrap_or(""))),
                    ("vip", Box::new(CelBool::from(input.vip))),
                ]),
            );
        }
        if uses & VAR_METADATA != 0 {
            let entries =
                input.metadata.iter().map(|(k, v)| (CelMapKey::from(k.as_str()), string(v))).collect::<HashMap<_, _>>();
            ctx.add_variable_as_val("metadata", Box::new(CelMap::from(entries)));
        }
        if uses & VAR_TIME != 0 {
            // Only absurd instants (chrono's range limits) have no local time; UTC will do then.
            let local = local_time(self.tz, input.now).unwrap_or(input.now.naive_utc());
            let weekday = WEEKDAYS[local.weekday().num_days_from_monday() as usize];
            ctx.add_variable_as_val(
                "time",
                map([
                    ("hour", Box::new(CelInt::from(i64::from(local.hour())))),
                    ("minute", Box::new(CelInt::from(i64::from(local.minute())))),
                    ("weekday", string(weekday)),
                    ("date", Box::new(CelString::from(local.date().format("%Y-%m-%d").to_string()))),
                ]),
            );
        }
        if uses & VAR_CONVERSATION != 0 {
            ctx.add_variable_as_val(
                "conversation",
                map([
                    ("repeat", Box::new(CelBool::from(input.repeat_contact))),
                    ("previous_agent", string(input.previous_agent.unwrap_or(""))),
                    // CEL ints are signed; no real wait comes near the cap.
                    ("wait_secs", Box::new(CelInt::from(i64::try_from(input.wait_secs).unwrap_or(i64::MAX)))),
                ]),
            );
        }
        ctx
    }
}

/// Load-time checks of a compiled expression that cel itself only finds at evaluation: unknown
/// variables, unknown fields of the fixed-shape maps, invalid literal regexes.
struct Check<'e> {
    env: &'e Arc<Env>,
    /// Comprehension variables in scope (`x` in `tags.exists(x, ...)`).
    bound: Vec<&'e str>,
    uses: u8,
}

impl<'e> Check<'e> {
    fn expr(&mut self, e: &'e IdedExpr) -> Result<(), String> {
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => {
                if let Expr::Ident(root) = &select.operand.expr
                    && !self.bound.contains(&root.as_str())
                    && let Some((_, fields)) = MAP_FIELDS.iter().find(|(v, _)| v == root)
                    && !fields.contains(&select.field.as_str())
                {
                    return Err(format!("`{root}` has no field `{}` (fields: {})", select.field, fields.join(", ")));
                }
                self.expr(&select.operand)
            }
            Expr::Call(call) => {
                if call.func_name == CACHED_MATCHES
                    && let Some(IdedExpr { expr: Expr::Literal(LiteralValue::String(p)), .. }) = call.args.first()
                {
                    compile_regex(p.inner()).map_err(|e| format!("invalid regex in `matches`: {e}"))?;
                }
                if let Some(target) = &call.target {
                    let namespaced = qualified_root(target)
                        .is_some_and(|root| NAMESPACES.contains(&root) && !self.is_variable(root));
                    if !namespaced {
                        self.expr(target)?;
                    }
                }
                call.args.iter().try_for_each(|a| self.expr(a))
            }
            Expr::Comprehension(c) => {
                self.expr(&c.iter_range)?;
                self.expr(&c.accu_init)?;
                let depth = self.bound.len();
                self.bound.push(&c.iter_var);
                self.bound.extend(c.iter_var2.as_deref());
                self.bound.push(&c.accu_var);
                let body = [&c.loop_cond, &c.loop_step, &c.result].into_iter().try_for_each(|x| self.expr(x));
                self.bound.truncate(depth);
                body
            }
            Expr::List(list) => list.elements.iter().try_for_each(|x| self.expr(x)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| self.entry(&entry.expr)),
            Expr::Struct(s) => s.entries.iter().try_for_each(|entry| self.entry(&entry.expr)),
        }
    }

    fn entry(&mut self, entry: &'e EntryExpr) -> Result<(), String> {
        match entry {
            EntryExpr::StructField(field) => self.expr(&field.value),
            EntryExpr::MapEntry(m) => {
                self.expr(&m.key)?;
                self.expr(&m.value)
            }
        }
    }

    fn is_variable(&self, name: &str) -> bool {
        self.bound.contains(&name) || VARIABLES.contains(&name)
    }

    fn ident(&mut self, name: &'e str) -> Result<(), String> {
        if self.bound.contains(&name) {
            return Ok(());
        }
        if let Some(bit) = VARIABLES.iter().position(|v| *v == name) {
            self.uses |= 1 << bit;
            return Ok(());
        }
        // Type names (`type(x) == string`) are identifiers too.
        if self.env.types().find_type(name).is_some() {
            return Ok(());
        }
        Err(format!("unknown variable `{name}` (variables: {})", VARIABLES.join(", ")))
    }
}

/// The root identifier of a qualified name like `a.b.c`, if `e` is one.
fn qualified_root(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Ident(name) => Some(name),
        Expr::Select(s) if !s.test => qualified_root(&s.operand),
        _ => None,
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
