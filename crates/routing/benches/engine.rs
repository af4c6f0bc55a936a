//! Routing engine benchmark at steady state: 10,000 agents, 50 skills, 4 tiers, 10 teams and
//! 100,000 queued conversations, arrivals equal to completions. Each timed step resolves one
//! assigned conversation, which frees its agent and makes the engine assign that agent the next
//! conversation it can take (the hot path: one assignment decision); then a new conversation
//! arrives (timed separately: rules run and it joins the queue).
//!
//! Baselines, same run: a naive router on the same workload that, for each freed agent, walks the
//! queue in order and for each conversation scans all agents (what a helpdesk without indexes
//! does; measured for at most 20 s); and the machine's latency of one dependent random memory read
//! over a working set of the engine's size, since a steady-state event touches cold memory (the
//! resolved conversation, its agent, the next conversation) and cannot be faster than those reads.
//!
//! Then a scale run, in a child process so that its memory is measured alone: 100,000 agents and
//! 1,000,000 queued, reporting the rate, p50/p99, bytes per conversation and the process's
//! resident set (rows prefixed `scale_`).
//!
//! Run: `make bench` (or `cargo bench -p switchboard-routing --bench engine`). Sizes via
//! `BENCH_AGENTS`, `BENCH_QUEUED`, `BENCH_STEPS`, and `BENCH_SCALE_AGENTS`, `BENCH_SCALE_QUEUED`,
//! `BENCH_SCALE_STEPS` (`BENCH_SCALE=0` skips the scale run). Writes
//! `target/bench-results/engine.json`.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use switchboard_core::AgentStatus;
use switchboard_routing::config::{AgentConfig, RuleConfig, Strategy, TeamConfig};
use switchboard_routing::{Decision, Engine, Input, MessageInfo, RoutingConfig};
use uuid::Uuid;

const SKILLS: usize = 50;
const TEAMS: usize = 10;
const TOPICS: usize = 20;

/// A small deterministic generator (xorshift), so every run sees the same workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Agents with one team, one tier of L1-L4, and five skills; topics map to a team and a skill
/// that the team's agents commonly have, so most conversations find someone.
fn config(agents: usize, rng: &mut Rng) -> RoutingConfig {
    use switchboard_core::Tier;
    let tiers = [Tier::L1, Tier::L2, Tier::L3, Tier::L4];
    let mut cfg = RoutingConfig { default_team: "t0".into(), timezone: "UTC".into(), ..Default::default() };
    for t in 0..TEAMS {
        cfg.teams.insert(
            format!("t{t}"),
            TeamConfig { strategy: Strategy::LongestIdle, offer_timeout_secs: Some(0), ..TeamConfig::default() },
        );
    }
    for i in 0..agents {
        let team = i % TEAMS;
        let mut skills: Vec<String> = (0..4).map(|_| format!("s{}:{}", rng.below(SKILLS), 1 + rng.below(5))).collect();
        // Every agent has its team's home skill, so topics routed to the team are answerable.
        skills.push(format!("s{}:{}", team * 5, 3 + rng.below(3)));
        skills.sort();
        skills.dedup_by(|a, b| a.split(':').next() == b.split(':').next());
        cfg.agents.push(AgentConfig {
            id: format!("agent-{i}"),
            name: None,
            teams: vec![format!("t{team}")],
            tiers: vec![tiers[if i % 10 < 7 { 0 } else { 1 + rng.below(3) }]],
            skills,
            capacity: Default::default(),
            default_capacity: 10,
            max_total: 10,
            status: AgentStatus::Online,
        });
    }
    for topic in 0..TOPICS {
        let team = topic % TEAMS;
        cfg.rules.push(RuleConfig {
            name: format!("topic-{topic}"),
            when: format!("metadata.topic == \"{topic}\""),
            team: Some(format!("t{team}")),
            skills: vec![format!("s{}:{}", team * 5, 1 + topic % 3)],
            priority: Some(["P1", "P2", "P3", "P4"][topic % 4].into()),
            stop: true,
            ..Default::default()
        });
    }
    cfg
}

/// The process's resident set size, from /proc (0 where there is none).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn arrival(n: u128, at: i64, rng: &mut Rng) -> Input {
    let mut message = MessageInfo { channel: "chat".into(), text: "help".into(), ..Default::default() };
    message.metadata.insert("topic".into(), rng.below(TOPICS).to_string());
    Input::CustomerMessage { at, customer: format!("c{n}"), new_id: Uuid::from_u128(n), message, written_at: None }
}

struct Figures {
    assign_rate: f64,
    assign: Histogram<u64>,
    arrival: Histogram<u64>,
    per_conv_bytes: f64,
    /// The process's resident set after the fill.
    rss_bytes: u64,
    /// One arrival's place and estimate (what the router computes for its first notice).
    position: Histogram<u64>,
    /// Every waiting conversation's place at once (the router's periodic check), ms.
    all_positions_ms: f64,
}

/// The steady-state run; `positions` adds the queue-position phase (skipped at scale, where one
/// full pass over a million waiting conversations per arrival would dominate the run).
fn run_engine(agents: usize, queued: usize, steps: usize, positions: bool) -> Figures {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let cfg = config(agents, &mut rng);
    let mut engine = Engine::new(&cfg).expect("bench config is valid");
    let mut now = 1_800_000_000_000i64;
    let mut n = 1u128;
    let mut assigned: Vec<(Uuid, String)> = Vec::new();
    let mut out = Vec::new();
    // Fill every agent and then the queue.
    let before_rss = rss_bytes();
    while engine.queued() < queued {
        now += 1;
        out.clear();
        engine.handle_into(arrival(n, now, &mut rng), &mut out);
        n += 1;
        for d in &out {
            if let Decision::Assigned { conversation, agent } = d {
                assigned.push((*conversation, agent.clone()));
            }
        }
    }
    let convs = assigned.len() + engine.queued();
    // Resident memory growth over the fill, per live conversation (queued or assigned); includes
    // the customer records and indexes each one brings.
    let rss_after_fill = rss_bytes();
    let per_conv_bytes = rss_after_fill.saturating_sub(before_rss) as f64 / convs as f64;

    let mut assign = Histogram::<u64>::new(3).expect("histogram");
    let mut arrivals = Histogram::<u64>::new(3).expect("histogram");
    let mut assign_time = Duration::ZERO;
    let mut decisions = 0u64;
    for _ in 0..steps {
        now += 1;
        let pick = rng.below(assigned.len());
        let (conversation, agent) = assigned.swap_remove(pick);
        out.clear();
        let t = Instant::now();
        engine.handle_into(Input::Resolve { at: now, agent, conversation }, &mut out);
        let took = t.elapsed();
        assign_time += took;
        assign.record(took.as_nanos() as u64).ok();
        for d in &out {
            if let Decision::Assigned { conversation, agent } = d {
                assigned.push((*conversation, agent.clone()));
                decisions += 1;
            }
        }
        out.clear();
        let t = Instant::now();
        engine.handle_into(arrival(n, now, &mut rng), &mut out);
        arrivals.record(t.elapsed().as_nanos() as u64).ok();
        n += 1;
        for d in &out {
            if let Decision::Assigned { conversation, agent } = d {
                assigned.push((*conversation, agent.clone()));
            }
        }
    }
    // Queue positions over the full queue: a fresh arrival's own, and everyone's in one pass.
    let mut position = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..if positions { 2000 } else { 0 } {
        now += 1;
        out.clear();
        let id = Uuid::from_u128(n);
        engine.handle_into(arrival(n, now, &mut rng), &mut out);
        n += 1;
        let t = Instant::now();
        std::hint::black_box(engine.queue_status(id));
        position.record(t.elapsed().as_nanos() as u64).ok();
    }
    let mut all_positions_ms = 0.0;
    if positions {
        let t = Instant::now();
        let all = engine.queue_statuses();
        all_positions_ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(all.len(), engine.queued());
    }
    Figures {
        assign_rate: decisions as f64 / assign_time.as_secs_f64(),
        assign,
        arrival: arrivals,
        per_conv_bytes,
        rss_bytes: rss_after_fill,
        position,
        all_positions_ms,
    }
}

/// The naive router: flat vectors, for each freed agent walk the queue from the head and, for
/// each conversation, scan every agent for an eligible one with room; longest idle wins.
struct Naive {
    tier: Vec<u8>,
    team: Vec<usize>,
    skills: Vec<[u8; SKILLS]>,
    load: Vec<u32>,
    idle: Vec<i64>,
    queue: std::collections::BTreeMap<(i64, u64), (usize, usize, u8)>,
}

fn run_naive(agents: usize, queued: usize, steps: usize) -> (f64, Histogram<u64>) {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let cfg = config(agents, &mut rng);
    let mut nv =
        Naive { tier: vec![], team: vec![], skills: vec![], load: vec![], idle: vec![], queue: Default::default() };
    for (i, a) in cfg.agents.iter().enumerate() {
        nv.tier.push(a.tiers[0] as u8);
        nv.team.push(i % TEAMS);
        let mut s = [0u8; SKILLS];
        for spec in &a.skills {
            let (name, level) = spec.split_once(':').expect("name:level");
            s[name[1..].parse::<usize>().expect("skill index")] = level.parse().expect("level");
        }
        nv.skills.push(s);
        nv.load.push(10); // full, as in the engine's steady state
        nv.idle.push(0);
    }
    for seq in 0..queued as u64 {
        let topic = rng.below(TOPICS);
        let prio = [1i64, 25, 50, 75][topic % 4];
        nv.queue.insert((prio * 30_000 + seq as i64, seq), (topic % TEAMS, (topic % TEAMS) * 5, 1 + (topic % 3) as u8));
    }
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut total = Duration::ZERO;
    let mut decided = 0u64;
    let mut seq = queued as u64;
    // As in the engine's steady state, only agents that hold work (L1, full) free up.
    let loaded: Vec<usize> = (0..agents).filter(|&a| nv.tier[a] == 1).collect();
    let budget = Instant::now();
    for step in 0..steps {
        if budget.elapsed() > Duration::from_secs(20) {
            break;
        }
        let freed = loaded[rng.below(loaded.len())];
        nv.load[freed] = nv.load[freed].saturating_sub(1);
        let t = Instant::now();
        let mut chosen = None;
        'queue: for (key, &(team, skill, level)) in &nv.queue {
            let mut best: Option<usize> = None;
            for a in 0..agents {
                if nv.team[a] == team
                    && nv.tier[a] == 1
                    && nv.load[a] < 10
                    && nv.skills[a][skill] >= level
                    && best.is_none_or(|b| nv.idle[a] < nv.idle[b])
                {
                    best = Some(a);
                }
            }
            if let Some(a) = best {
                chosen = Some((*key, a));
                break 'queue;
            }
        }
        if let Some((key, a)) = chosen {
            nv.queue.remove(&key);
            nv.load[a] += 1;
            nv.idle[a] = step as i64;
            decided += 1;
        }
        let took = t.elapsed();
        total += took;
        hist.record(took.as_nanos() as u64).ok();
        let topic = rng.below(TOPICS);
        seq += 1;
        nv.queue.insert(
            ([1i64, 25, 50, 75][topic % 4] * 30_000 + seq as i64, seq),
            (topic % TEAMS, (topic % TEAMS) * 5, 1 + (topic % 3) as u8),
        );
    }
    (decided as f64 / total.as_secs_f64(), hist)
}

/// Nanoseconds per dependent random read over `bytes` of memory (a pointer chase through one
/// random cycle): the machine's cost of a cache and TLB miss at the engine's working-set size,
/// which bounds how fast any event that touches a cold conversation and agent can be handled.
fn memory_latency_ns(bytes: usize) -> f64 {
    // Capped at 256 MiB: past the last-level cache and the TLB's reach the latency is flat, and
    // shuffling a larger array would take longer than the runs it is a baseline for.
    let n = (bytes.min(256 << 20) / 8).max(1024);
    let mut next: Vec<usize> = (0..n).collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Sattolo's algorithm: a single cycle through every slot, so the chase cannot short-cut.
    for i in (1..n).rev() {
        next.swap(i, rng.below(i));
    }
    let steps = 2_000_000;
    let mut p = 0;
    let t = Instant::now();
    for _ in 0..steps {
        p = next[p];
    }
    std::hint::black_box(p);
    t.elapsed().as_nanos() as f64 / steps as f64
}

/// One row of the results: metric, value, unit, baseline.
type Row = (String, f64, String, Option<f64>);

/// The scale run (100,000 agents, 1,000,000 queued by default), in a child process of its own so
/// that its resident memory is its alone (the allocator keeps what the first run freed). Prints
/// its rows as JSON on stdout for the parent.
fn scale_child() {
    let agents = env("BENCH_SCALE_AGENTS", 100_000);
    let queued = env("BENCH_SCALE_QUEUED", 1_000_000);
    let steps = env("BENCH_SCALE_STEPS", 100_000);
    let f = run_engine(agents, queued, steps, false);
    let miss_ns = memory_latency_ns((f.per_conv_bytes * (queued as f64) * 1.7) as usize);
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let rows = serde_json::json!([
        ["scale_agents", agents as f64, "count", null],
        ["scale_queued", queued as f64, "count", null],
        ["scale_assignments_per_sec", f.assign_rate, "decisions/s", 1e9 / miss_ns],
        ["scale_assignment_p50", us(&f.assign, 0.5), "us", miss_ns / 1000.0],
        ["scale_assignment_p99", us(&f.assign, 0.99), "us", miss_ns / 1000.0],
        ["scale_arrival_p50", us(&f.arrival, 0.5), "us", null],
        ["scale_arrival_p99", us(&f.arrival, 0.99), "us", null],
        ["scale_memory_per_conversation", f.per_conv_bytes, "bytes", null],
        ["scale_rss", f.rss_bytes as f64 / (1 << 20) as f64, "MiB", null],
        ["scale_memory_random_read", miss_ns, "ns", null],
        ["scale_assignment_mean_in_random_reads", 1e9 / f.assign_rate / miss_ns, "reads", null],
    ]);
    println!("{rows}");
}

/// Runs [`scale_child`] in a child process and returns its rows.
fn scale_rows() -> Vec<Row> {
    let exe = std::env::current_exe().expect("the bench's own path");
    let out = std::process::Command::new(exe)
        .env("BENCH_CHILD", "scale")
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the scale child");
    assert!(out.status.success(), "the scale run failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().expect("the scale run's rows");
    serde_json::from_str(line).expect("the scale run's rows")
}

fn main() {
    if std::env::var("BENCH_CHILD").as_deref() == Ok("scale") {
        return scale_child();
    }
    let agents = env("BENCH_AGENTS", 10_000);
    let queued = env("BENCH_QUEUED", 100_000);
    let steps = env("BENCH_STEPS", 200_000);
    let wall = Instant::now();
    let f = run_engine(agents, queued, steps, true);
    let miss_ns = memory_latency_ns((f.per_conv_bytes * (queued as f64) * 1.7) as usize);
    let (naive_rate, naive) = run_naive(agents, queued, env("BENCH_NAIVE_STEPS", 2000));
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let mut rows: Vec<Row> = [
        ("agents", agents as f64, "count", None),
        ("queued", queued as f64, "count", None),
        ("assignments_per_sec", f.assign_rate, "decisions/s", Some(naive_rate)),
        ("assignment_p50", us(&f.assign, 0.5), "us", Some(us(&naive, 0.5))),
        ("assignment_p99", us(&f.assign, 0.99), "us", Some(us(&naive, 0.99))),
        ("arrival_p50", us(&f.arrival, 0.5), "us", None),
        ("arrival_p99", us(&f.arrival, 0.99), "us", None),
        ("queue_position_one_p50", us(&f.position, 0.5), "us", None),
        ("queue_position_one_p99", us(&f.position, 0.99), "us", None),
        ("queue_positions_all", f.all_positions_ms, "ms", None),
        ("naive_assignments_per_sec", naive_rate, "decisions/s", None),
        ("speedup_vs_naive", f.assign_rate / naive_rate, "ratio", Some(naive_rate)),
        ("memory_per_conversation", f.per_conv_bytes, "bytes", None),
        ("memory_random_read", miss_ns, "ns", None),
        ("assignment_mean_in_random_reads", 1e9 / f.assign_rate / miss_ns, "reads", None),
    ]
    .into_iter()
    .map(|(name, value, unit, baseline)| (name.to_string(), value, unit.to_string(), baseline))
    .collect();
    // The scale run: rate and p99 against the random-read latency of its working set (the
    // baseline of the rate is reads per second, of the latencies one read), its memory.
    if env("BENCH_SCALE", 1) != 0 {
        rows.extend(scale_rows());
    }
    println!("\n{:<38} {:>14} {:<12} {:>14}", "metric", "value", "unit", "baseline");
    for (name, value, unit, baseline) in &rows {
        let b = baseline.map(|b| format!("{b:.2}")).unwrap_or_default();
        println!("{name:<38} {value:>14.2} {unit:<12} {b:>14}");
    }
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|(name, value, unit, baseline)| {
            let mut o = serde_json::json!({ "metric": name, "value": value, "unit": unit });
            if let Some(b) = baseline {
                o["baseline"] = serde_json::json!(b);
            }
            o
        })
        .collect();
    let dir = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target")))
        .join("bench-results");
    std::fs::create_dir_all(&dir).expect("create bench-results");
    let path = dir.join("engine.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")).expect("write results");
    println!("\nwrote {} (wall time {:.1} s)", path.display(), wall.elapsed().as_secs_f64());
}
