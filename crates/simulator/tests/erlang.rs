//! The simulator's queueing against Erlang C, statistically: an M/M/c queue (Poisson arrivals,
//! exponential handle times, agents taking one conversation at a time) is run with independent
//! seeds, each seed's relative error in mean wait and in P(wait) is taken against theory, and the
//! errors are pooled with their standard error. A single run cannot tell a 3% bias from chance
//! (the waits of one 10,000-arrival run spread by ±15%); the pooled error over about a million
//! arrivals can, and the test shows it does by failing the same runs with their waits off by 3%.
//!
//! The cell is c = 2 agents at 50% utilisation: of the cells measured (c 1–20, utilisation
//! 0.4–0.85) it has close to the lowest variance per arrival among multi-agent queues, so the
//! test reaches its power in about three minutes of CPU (two threads).

use std::sync::OnceLock;

mod common;

use switchboard_metrics::{Query, Report};
use switchboard_simulator::{Options, report, simulate};

/// Agents, offered load (Erlangs) and mean handle time (s) of the cell.
const AGENTS: u32 = 2;
const LOAD: f64 = 1.0;
const HANDLE_SECS: f64 = 60.0;
/// Independent seeds, and simulated hours a seed (60 arrivals an hour: about 45,000 a seed).
/// 16 seeds gave a standard error of 0.70%: not enough.
const SEEDS: u64 = 24;
const HOURS: u32 = 750;
/// The pooled error must stay within this, and its standard error must be small enough that a
/// 3% bias lands outside it: 3% − 1.5% is 2.5 standard errors at 0.6%.
const TOLERANCE: f64 = 0.015;
const MAX_STANDARD_ERROR: f64 = 0.006;

/// Erlang C: the probability that an arrival waits in an M/M/c queue with offered load `a`.
fn erlang_c(c: u32, a: f64) -> f64 {
    let mut term = 1.0; // a^k / k!
    let mut sum = 0.0;
    for k in 0..c {
        sum += term;
        term *= a / f64::from(k + 1);
    }
    let top = term * f64::from(c) / (f64::from(c) - a);
    top / (sum + top)
}

/// What one seed measured.
#[derive(Debug, Clone, Copy)]
struct Run {
    arrivals: f64,
    p_wait: f64,
    mean_wait: f64,
}

fn one_seed(seed: u64) -> Run {
    // Agents take work at once and reply at once, so first response time is the wait.
    let (routing, traffic) =
        (common::single_queue(), common::mmc(AGENTS, LOAD / HANDLE_SECS * 3600.0, HANDLE_SECS, HOURS));
    let outcome =
        simulate(&routing, &traffic, &Options { seed, sample_every_secs: 86_400, ..Options::default() }).unwrap();
    let k = report(&outcome).total;
    // P(wait): the share of first responses later than the customer's message (target 0 s).
    let zero = Query { frt_target_secs: 0, ..Query::default() };
    let p_wait = 1.0 - Report::compute(&outcome.metrics, &zero).total.frt_within_target.unwrap();
    Run { arrivals: k.first_responses as f64, p_wait, mean_wait: k.frt_mean_secs.unwrap() }
}

/// The seeds' runs, computed once and spread over two threads.
fn runs() -> &'static [Run] {
    // One test function uses them all: nextest runs each test in a process of its own.
    static RUNS: OnceLock<Vec<Run>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let seeds: Vec<u64> = (1..=SEEDS).collect();
        std::thread::scope(|s| {
            let halves: Vec<_> = seeds
                .chunks(seeds.len().div_ceil(2))
                .map(|chunk| s.spawn(move || chunk.iter().map(|&seed| one_seed(seed)).collect::<Vec<_>>()))
                .collect();
            halves.into_iter().flat_map(|h| h.join().expect("a seed's run")).collect()
        })
    })
}

/// Relative errors pooled over seeds: their mean and its standard error.
#[derive(Debug, Clone, Copy)]
struct Pooled {
    error: f64,
    standard_error: f64,
}

fn pool(errors: &[f64]) -> Pooled {
    let n = errors.len() as f64;
    let error = errors.iter().sum::<f64>() / n;
    let variance = errors.iter().map(|e| (e - error).powi(2)).sum::<f64>() / (n - 1.0);
    Pooled { error, standard_error: (variance / n).sqrt() }
}

/// The verdict on one measure: within tolerance, with enough power to see a 3% bias.
fn check(name: &str, errors: &[f64]) -> Result<Pooled, String> {
    let p = pool(errors);
    let figures =
        format!("{name}: pooled error {:+.2}% ± {:.2}% (standard error)", p.error * 100.0, p.standard_error * 100.0);
    if p.standard_error > MAX_STANDARD_ERROR {
        return Err(format!("{figures}: too noisy to detect a 3% bias"));
    }
    if p.error.abs() > TOLERANCE {
        return Err(format!("{figures}: outside ±{:.1}%", TOLERANCE * 100.0));
    }
    Ok(p)
}

/// Each seed's relative error in mean wait and in P(wait), with the simulator's waits scaled by
/// `bias` (1.0 for the simulator as it is).
fn errors(bias: f64) -> (Vec<f64>, Vec<f64>) {
    let p = erlang_c(AGENTS, LOAD);
    let wait = p * HANDLE_SECS / (f64::from(AGENTS) - LOAD);
    runs().iter().map(|r| (r.mean_wait * bias / wait - 1.0, r.p_wait * bias / p - 1.0)).unzip()
}

#[test]
fn the_simulators_waits_match_erlang_c_pooled_over_seeds_and_a_three_percent_bias_fails() {
    let (wait, p_wait) = errors(1.0);
    let arrivals: f64 = runs().iter().map(|r| r.arrivals).sum();
    let wait_check = check("mean wait", &wait);
    let p_check = check("P(wait)", &p_wait);
    println!("{SEEDS} seeds, {arrivals} arrivals; c {AGENTS}, {LOAD} Erlangs, handle {HANDLE_SECS} s");
    println!("{wait_check:?}\n{p_check:?}");
    wait_check.unwrap();
    p_check.unwrap();
    // The same runs as a simulator that reports every wait 3% long (or short) would give them
    // fail: the test has the power it claims.
    for bias in [1.03, 0.97] {
        let (wait, _) = errors(bias);
        let verdict = check("mean wait", &wait);
        println!("bias {bias}: {verdict:?}");
        assert!(verdict.is_err(), "a {bias}× bias passed: {verdict:?}");
    }
}

#[test]
fn erlang_c_itself_matches_published_values() {
    // M/M/1: P(wait) is the utilisation; M/M/2 at 1 Erlang: 1/3 (a²/(2(2−a)) over 1 + a + that).
    assert!((erlang_c(1, 0.5) - 0.5).abs() < 1e-12);
    assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
    // The textbook example: 10 agents at 8 Erlangs wait with probability 0.409.
    assert!((erlang_c(10, 8.0) - 0.4092).abs() < 1e-4, "{}", erlang_c(10, 8.0));
}
