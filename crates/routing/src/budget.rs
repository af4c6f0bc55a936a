//! What one rule may cost: load-time limits on a rule's expression, a cap on the input it sees,
//! and a time budget per evaluation that stops a runaway rule where it spends its time, in its
//! comprehension loops.
//!
//! The budget counts the CPU time of the evaluating thread, not the wall clock: on a busy machine
//! a thread waits for a core now and then, and a wall-clock budget would stop cheap rules at
//! random (a rule not matching changes where a conversation goes). Rules without comprehensions
//! are not timed at all: the expression size and the input cap bound them.
//!
//! cel has no cost tracking or cancellation, so each compiled comprehension is rewritten to call
//! `within_budget` once per iteration (in its loop condition, or in the guard of a `map` or
//! `filter`, where cel's in-place append keeps its literal loop condition). The call reads the
//! clock every `CHECK_EVERY` (64) iterations and fails once the thread's deadline has passed; the
//! failure ends the loop at once, and every later loop of the same evaluation fails on its first
//! iteration, so an overrun stops within that many iterations of the budget. A failure that CEL's `||`/`&&` absorb still counts: the rule's result is
//! discarded whenever the evaluation overran.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue, operators};
use cel::common::types::CelBool;
use cel::{ExecutionError, IdedExpr};

use crate::config::RuleBudgetConfig;

/// The function the instrumented comprehensions call; `@` keeps it out of reach of rule authors.
pub(crate) const BUDGET_CHECK: &str = "@budget";

/// Iterations between two looks at the clock: a look at the thread's CPU time is a system call,
/// a few cheap iterations' worth.
const CHECK_EVERY: u32 = 64;

/// Most rule names [`overruns`] keeps a count for; further names count under `*`.
const MAX_COUNTED_RULES: usize = 1024;

thread_local! {
    /// The thread CPU time at which the evaluation running on this thread must stop; `None`
    /// outside a timed evaluation.
    static DEADLINE: Cell<Option<Duration>> = const { Cell::new(None) };
    /// Whether the evaluation running on this thread passed its deadline.
    static OVERRAN: Cell<bool> = const { Cell::new(false) };
    /// Iterations since the evaluation started, to look at the clock every [`CHECK_EVERY`].
    static TICKS: Cell<u32> = const { Cell::new(0) };
}

/// Overruns by rule name since the process started, for `/metrics`.
static OVERRUNS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// `cond.@budget()`: `cond` while the evaluation is within its budget, an error after.
pub(crate) fn within_budget(cond: &CelBool) -> Result<CelBool, ExecutionError> {
    if OVERRAN.get() {
        return Err(overrun_error());
    }
    let ticks = TICKS.get().wrapping_add(1);
    TICKS.set(ticks);
    if ticks.is_multiple_of(CHECK_EVERY)
        && let Some(deadline) = DEADLINE.get()
        && thread_cpu_time() >= deadline
    {
        OVERRAN.set(true);
        return Err(overrun_error());
    }
    Ok(CelBool::from(*cond.inner()))
}

fn overrun_error() -> ExecutionError {
    ExecutionError::function_error("budget", "evaluation ran over its time budget")
}

/// The CPU time the calling thread has used so far.
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

/// One evaluation's budget on this thread, from [`Budget::start`] until it is dropped.
pub(crate) struct Budget {
    started: Duration,
    limit: Duration,
}

impl Budget {
    /// Starts timing an evaluation on this thread that may take `limit` of CPU time.
    pub(crate) fn start(limit: Duration) -> Budget {
        let started = thread_cpu_time();
        DEADLINE.set(Some(started + limit));
        OVERRAN.set(false);
        TICKS.set(0);
        Budget { started, limit }
    }

    /// The time the evaluation may take.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// The CPU time the evaluation took if it ran over its budget (stopped in a loop, or
    /// finished late), else `None`.
    pub(crate) fn overran(&self) -> Option<Duration> {
        let took = thread_cpu_time().saturating_sub(self.started);
        (OVERRAN.get() || took > self.limit).then_some(took)
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        DEADLINE.set(None);
        OVERRAN.set(false);
    }
}

/// Counts an overrun of `rule` for [`overruns`].
pub(crate) fn count_overrun(rule: &str) {
    let mut counts = OVERRUNS.lock().unwrap_or_else(PoisonError::into_inner);
    let key = if counts.contains_key(rule) || counts.len() < MAX_COUNTED_RULES { rule } else { "*" };
    *counts.entry(key.to_string()).or_default() += 1;
}

/// Overruns by rule name since the process started (a group's `select` is named `select`).
pub fn overruns() -> BTreeMap<String, u64> {
    OVERRUNS.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// The overrun counters in the OpenMetrics text format: the counter family
/// `switchboard_rule_budget_overruns`, whose samples are
/// `switchboard_rule_budget_overruns_total{rule}`.
pub fn exposition() -> String {
    let mut text = String::from(
        "# HELP switchboard_rule_budget_overruns Rule evaluations stopped for running over routing.rule_budget.budget_ms (the rule counted as not matching).\n\
         # TYPE switchboard_rule_budget_overruns counter\n",
    );
    for (rule, count) in overruns() {
        let rule = rule.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = writeln!(text, "switchboard_rule_budget_overruns_total{{rule=\"{rule}\"}} {count}");
    }
    text
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn capped(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// Refuses an expression beyond the load-time limits of `budget`, saying which and by how much;
/// else gives its comprehension nesting depth (0: no loop, nothing to time).
pub(crate) fn check_limits(e: &IdedExpr, budget: &RuleBudgetConfig) -> Result<usize, String> {
    let (nodes, depth) = measure(e);
    if nodes > budget.max_expression_nodes {
        return Err(format!(
            "the expression has {nodes} nodes once its macros are expanded, more than {} (routing.rule_budget.max_expression_nodes)",
            budget.max_expression_nodes
        ));
    }
    if depth > usize::from(budget.max_comprehension_depth) {
        return Err(format!(
            "comprehensions (exists, all, map, filter, ...) nest {depth} deep, more than {} (routing.rule_budget.max_comprehension_depth): each level multiplies the work",
            budget.max_comprehension_depth
        ));
    }
    Ok(depth)
}

/// Node count and comprehension nesting depth of an expression. Only a comprehension's
/// per-iteration parts nest: one over the result of another (`a.map(..).exists(..)`) runs after
/// it, not inside it.
fn measure(e: &IdedExpr) -> (usize, usize) {
    let mut nodes = 1;
    let mut depth = 0;
    let mut add = |(n, d): (usize, usize), nested: bool| {
        nodes += n;
        depth = depth.max(d + usize::from(nested));
    };
    match &e.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => {}
        Expr::Select(s) => add(measure(&s.operand), false),
        Expr::Call(call) => {
            call.target.iter().for_each(|t| add(measure(t), false));
            call.args.iter().for_each(|a| add(measure(a), false));
        }
        Expr::Comprehension(c) => {
            add(measure(&c.iter_range), false);
            add(measure(&c.accu_init), false);
            // The comprehension itself is one level even when its body has no loop.
            add((0, 0), true);
            [&c.loop_cond, &c.loop_step, &c.result].into_iter().for_each(|x| add(measure(x), true));
        }
        Expr::List(list) => list.elements.iter().for_each(|x| add(measure(x), false)),
        Expr::Map(map) => map.entries.iter().for_each(|entry| add(measure_entry(&entry.expr), false)),
        Expr::Struct(s) => s.entries.iter().for_each(|entry| add(measure_entry(&entry.expr), false)),
    }
    (nodes, depth)
}

fn measure_entry(entry: &EntryExpr) -> (usize, usize) {
    match entry {
        EntryExpr::StructField(field) => measure(&field.value),
        EntryExpr::MapEntry(m) => {
            let (kn, kd) = measure(&m.key);
            let (vn, vd) = measure(&m.value);
            (kn + vn, kd.max(vd))
        }
    }
}

/// Rewrites every comprehension of `e` to call [`within_budget`] once per iteration.
pub(crate) fn instrument(e: &mut IdedExpr) {
    match &mut e.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => {}
        Expr::Select(s) => instrument(&mut s.operand),
        Expr::Call(call) => {
            if let Some(target) = call.target.as_deref_mut() {
                instrument(target);
            }
            call.args.iter_mut().for_each(instrument);
        }
        Expr::Comprehension(c) => {
            for part in [&mut c.iter_range, &mut c.accu_init, &mut c.loop_cond, &mut c.loop_step, &mut c.result] {
                instrument(part);
            }
            let accu = c.accu_var.clone();
            let is_accu = |x: &IdedExpr| matches!(&x.expr, Expr::Ident(name) if *name == accu);
            // cel appends in place for `map`/`filter` (a literal loop condition and a step that
            // only appends to the accumulator): keep that shape, checking in the step's guard.
            if matches!(c.loop_cond.expr, Expr::Literal(_)) {
                match &mut c.loop_step.expr {
                    Expr::Call(call)
                        if call.func_name == operators::CONDITIONAL
                            && call.target.is_none()
                            && call.args.len() == 3
                            && is_accu(&call.args[2]) =>
                    {
                        wrap(&mut call.args[0]);
                        return;
                    }
                    Expr::Call(call)
                        if call.func_name == operators::ADD
                            && call.target.is_none()
                            && call.args.first().is_some_and(is_accu) =>
                    {
                        let id = c.loop_step.id;
                        let step = std::mem::take(&mut c.loop_step);
                        let mut guard =
                            IdedExpr { id, expr: Expr::Literal(LiteralValue::Boolean(CelBool::from(true))) };
                        wrap(&mut guard);
                        c.loop_step = IdedExpr {
                            id,
                            expr: Expr::Call(CallExpr {
                                func_name: operators::CONDITIONAL.to_string(),
                                target: None,
                                args: vec![guard, step, IdedExpr { id, expr: Expr::Ident(c.accu_var.clone()) }],
                            }),
                        };
                        return;
                    }
                    _ => {}
                }
            }
            wrap(&mut c.loop_cond);
        }
        Expr::List(list) => list.elements.iter_mut().for_each(instrument),
        Expr::Map(map) => map.entries.iter_mut().for_each(|entry| instrument_entry(&mut entry.expr)),
        Expr::Struct(s) => s.entries.iter_mut().for_each(|entry| instrument_entry(&mut entry.expr)),
    }
}

fn instrument_entry(entry: &mut EntryExpr) {
    match entry {
        EntryExpr::StructField(field) => instrument(&mut field.value),
        EntryExpr::MapEntry(m) => {
            instrument(&mut m.key);
            instrument(&mut m.value);
        }
    }
}

/// `x` becomes `x.@budget()`.
fn wrap(x: &mut IdedExpr) {
    let id = x.id;
    let inner = std::mem::take(x);
    *x = IdedExpr {
        id,
        expr: Expr::Call(CallExpr { func_name: BUDGET_CHECK.to_string(), target: Some(Box::new(inner)), args: vec![] }),
    };
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
