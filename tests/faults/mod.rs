//! Fault tests' harness: the daemon as child processes, customers and agents on real HTTP and
//! WebSockets, and a Jepsen-like checker ([`checker`]) that classifies every message.
//!
//! Sizes come from the environment so that one test serves `make test` (short) and
//! `make test-faults` (long): `FAULT_RUNS` (runs per scenario), `FAULT_SCALE` (customers per
//! run, multiplied) and `FAULT_SEED` (reproduce a run; printed by every test).

pub mod checker;
pub mod cluster;
pub mod customers;
pub mod desk;
pub mod workload;

/// The seed for this test: `FAULT_SEED` when set, else a fresh one; printed so a failure can be
/// reproduced with `FAULT_SEED=<seed>`.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
            % 1_000_000
    });
    println!("FAULTS {test}: seed {seed} (reproduce with FAULT_SEED={seed})");
    seed
}

/// Runs `run` `runs` times (run `i` with seed `seed(test) + i`) and prints the checker's totals
/// over all runs for the customer→agent and agent→customer directions.
pub async fn repeat<F, Fut>(test: &str, runs: usize, mut run: F)
where
    F: FnMut(String, u64) -> Fut,
    Fut: std::future::Future<Output = [checker::Report; 3]>,
{
    let seed = seed(test);
    let mut totals = [checker::Report::default(), checker::Report::default()];
    for i in 0..runs {
        let reports = run(format!("{test} run {}/{runs}", i + 1), seed + i as u64).await;
        for (t, r) in totals.iter_mut().zip(&reports) {
            t.name = r.name.clone();
            t.add(r);
        }
    }
    for t in &totals {
        println!("FAULTS {test} TOTAL over {runs} runs: {t}");
    }
}

/// A number from the environment, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
