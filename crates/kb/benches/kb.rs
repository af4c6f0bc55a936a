//! Knowledge-base search on the checked-in evaluation set: the example folder `config/kb/`
//! (48 articles, Russian and English) and `crates/kb/eval/questions.json` (customer questions
//! labelled with their article or "none").
//!
//! Figures: precision@1 and recall@3 of `Kb::search` (ranking only, over answerable questions;
//! and at the chosen `min_score`, over all questions, a "none" question counting as right when
//! nothing reaches the threshold), the same for the baseline in the same run (the question's
//! words as substrings of titles, ranked by how many are found), with and without the typo
//! terms, the `min_score` that maximises right-answer-or-right-silence, and p99 latency of one
//! query (and of the baseline's).
//!
//! Run: `make bench` (or `cargo bench -p switchboard-kb --bench kb`). `BENCH_ROUNDS` (20) sets
//! how many times every question is timed. Writes `target/bench-results/kb.json`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use hdrhistogram::Histogram;
use switchboard_kb::eval::{self, Question};
use switchboard_kb::{Filter, Kb, Limits};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// (p50, p99) of one call, in microseconds.
fn latency_micros(mut run: impl FnMut(&str), questions: &[Question], rounds: usize) -> (f64, f64) {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..rounds {
        for q in questions {
            let start = Instant::now();
            run(&q.question);
            h.record(start.elapsed().as_nanos() as u64).expect("record");
        }
    }
    (h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0)
}

fn main() {
    let root = workspace();
    let questions: Vec<Question> =
        serde_json::from_str(&std::fs::read_to_string(root.join("crates/kb/eval/questions.json")).expect("questions"))
            .expect("questions.json");
    let load = Instant::now();
    let mut kb = Kb::load(&root.join("config/kb"), Limits::default()).unwrap_or_else(|problems| {
        for p in problems {
            eprintln!("{p}");
        }
        panic!("config/kb has problems");
    });
    let load_ms = load.elapsed().as_secs_f64() * 1000.0;
    let rounds = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);

    kb.set_fuzzy(false);
    let exact = eval::rank_kb(&kb, &questions);
    kb.set_fuzzy(true);
    let fuzzy = eval::rank_kb(&kb, &questions);
    let base: Vec<_> = questions.iter().map(|q| eval::baseline(&kb, &q.question)).collect();

    let (min_exact, _) = eval::best_min_score(&questions, &exact);
    let (min_fuzzy, _) = eval::best_min_score(&questions, &fuzzy);
    let fe = eval::figures(&questions, &exact, min_exact);
    let ff = eval::figures(&questions, &fuzzy, min_fuzzy);
    // The baseline's threshold: one title word found.
    let fb = eval::figures(&questions, &base, 1.0);
    let default_min = switchboard_kb::DEFAULT_MIN_SCORE;
    let fd = eval::figures(&questions, &fuzzy, default_min);

    let filter = Filter::default();
    let (p50, p99) = latency_micros(|q| drop(kb.search(q, None, 3, &filter)), &questions, rounds);
    let (p50_base, p99_base) = latency_micros(|q| drop(eval::baseline(&kb, q)), &questions, rounds);
    let long = "доставка refund ".repeat(10_000);
    let long_start = Instant::now();
    drop(kb.search(&long, None, 3, &filter));
    let long_ms = long_start.elapsed().as_secs_f64() * 1000.0;

    let n = questions.len() as f64;
    let none = questions.iter().filter(|q| q.is_none()).count() as f64;
    let rows: Vec<(&str, f64, &str, Option<f64>)> = vec![
        ("questions", n, "count", None),
        ("questions_none", none, "count", None),
        ("articles", kb.articles().count() as f64, "count", None),
        ("precision_at_1", ff.precision_at_1, "ratio", Some(fb.precision_at_1)),
        ("recall_at_3", ff.recall_at_3, "ratio", Some(fb.recall_at_3)),
        ("precision_at_1_exact_terms_only", fe.precision_at_1, "ratio", Some(fb.precision_at_1)),
        ("recall_at_3_exact_terms_only", fe.recall_at_3, "ratio", Some(fb.recall_at_3)),
        ("best_min_score", min_fuzzy as f64, "score", None),
        ("best_min_score_exact_terms_only", min_exact as f64, "score", None),
        ("precision_at_1_at_best_min_score", ff.precision_at_1_min_score, "ratio", Some(fb.precision_at_1_min_score)),
        ("recall_at_3_at_best_min_score", ff.recall_at_3_min_score, "ratio", Some(fb.recall_at_3_min_score)),
        ("silence_on_none_at_best_min_score", ff.silence_on_none, "ratio", Some(fb.silence_on_none)),
        ("precision_at_1_exact_at_its_min_score", fe.precision_at_1_min_score, "ratio", None),
        ("default_min_score", default_min as f64, "score", None),
        (
            "precision_at_1_at_default_min_score",
            fd.precision_at_1_min_score,
            "ratio",
            Some(fb.precision_at_1_min_score),
        ),
        ("recall_at_3_at_default_min_score", fd.recall_at_3_min_score, "ratio", Some(fb.recall_at_3_min_score)),
        ("silence_on_none_at_default_min_score", fd.silence_on_none, "ratio", Some(fb.silence_on_none)),
        ("query_p50", p50, "us", Some(p50_base)),
        ("query_p99", p99, "us", Some(p99_base)),
        ("query_160kb_text", long_ms, "ms", None),
        ("load_and_index", load_ms, "ms", None),
    ];
    println!("\n{:<42} {:>10} {:<6} {:>10}", "metric", "value", "unit", "baseline");
    for (name, value, unit, baseline) in &rows {
        let b = baseline.map(|b| format!("{b:.3}")).unwrap_or_default();
        println!("{name:<42} {value:>10.3} {unit:<6} {b:>10}");
    }
    if std::env::var_os("BENCH_KB_MISSES").is_some() {
        for (q, hits) in questions.iter().zip(&fuzzy) {
            let top = hits.first().map(|(id, s)| format!("{id} {s:.2}")).unwrap_or_else(|| "-".into());
            let ok = if q.is_none() {
                hits.first().is_none_or(|h| h.1 < default_min)
            } else {
                hits.first().is_some_and(|h| h.0 == q.expect && h.1 >= default_min)
            };
            if !ok {
                println!("MISS {:?} expect {} got {top}", q.question, q.expect);
            }
        }
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
        .map(|d| root.join(d))
        .unwrap_or_else(|_| root.join("target"))
        .join("bench-results");
    std::fs::create_dir_all(&dir).expect("create bench-results");
    let path = dir.join("kb.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json") + "\n").expect("write results");
    println!("\nwrote {}", path.display());
}
