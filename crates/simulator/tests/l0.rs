//! The L0 bot in a simulation: the example knowledge base answers the labelled questions of
//! `crates/kb/eval/questions.json`, simulated customers say yes to the right article, no to a
//! wrong one or nothing, and the router's own logic resolves at L0 or hands off.

use std::path::{Path, PathBuf};

use switchboard_kb::DEFAULT_MIN_SCORE;
use switchboard_metrics::Kpis;
use switchboard_simulator::{L0Setup, Options, Outcome, load_l0, load_routing, load_traffic, render, report, simulate};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn l0() -> L0Setup {
    let questions = root().join("crates/kb/eval/questions.json");
    L0Setup::load(&root().join("config/kb"), DEFAULT_MIN_SCORE, Some(&questions)).expect("the example KB loads")
}

/// A quarter of the example day through `config`, with the knowledge base when `kb`.
fn run(config: &str, kb: bool, seed: u64) -> Outcome {
    let mut traffic = load_traffic(&root().join("config/simulate/traffic.json")).unwrap();
    traffic.hours = 6;
    let routing = load_routing(&root().join("config/simulate").join(config)).unwrap();
    let options = Options { seed, l0: kb.then(l0), ..Options::default() };
    simulate(&routing, &traffic, &options).unwrap()
}

#[test]
fn a_kb_first_day_deflects_some_conversations_and_hands_the_rest_off() {
    let o = run("kb_first.toml", true, 5);
    let k: Kpis = report(&o).total;
    assert!(k.l0_answered > 50, "the bot answered: {k:?}");
    assert!(k.l0_answered < k.opened, "questions without an answer go straight to a human: {k:?}");
    let deflection = k.l0_deflection.expect("a deflection");
    assert!(deflection > 0.0 && deflection < 1.0, "{deflection}");
    assert!(k.l0_helped > 0 && k.l0_no_reply > 0 && k.l0_handed_off > 0, "every outcome happens: {k:?}");
    assert_eq!(k.l0_helped + k.l0_no_reply + k.l0_handed_off, k.l0_answered, "each answer ends in one outcome");
    assert!(o.stats.l0_answers > 0 && o.stats.l0_answers < k.l0_answered, "some customers stay silent");
    let r = report(&o);
    let shown: u64 = r.kb_articles.0.values().map(|a| a.shown).sum();
    assert!(shown >= k.l0_answered, "every answer shows at least one article");
    assert!(r.kb_articles.0.values().any(|a| a.helped > 0));

    // The same seed gives the same day; the table shows the L0 rows.
    let again = run("kb_first.toml", true, 5);
    assert_eq!(report(&again).total, k);
    let table = render(&[("kb_first".into(), &o)], &Default::default());
    assert!(table.lines().any(|l| l.starts_with("L0 deflection")), "{table}");
    assert!(table.contains("L0 bot's articles"), "{table}");

    // Without the knowledge base, or without kb_first, the bot answers nothing.
    assert_eq!(report(&run("kb_first.toml", false, 5)).total.l0_answered, 0);
    assert_eq!(report(&run("skills.toml", false, 5)).total.l0_answered, 0);
}

#[test]
fn the_kb_section_of_a_simulate_configuration_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.toml");
    let kb = root().join("config/kb");
    std::fs::write(&config, format!("[kb]\npath = {:?}\nmin_score = 2.5\n[routing]\ndefault_team = \"s\"\n", kb))
        .unwrap();
    let setup = load_l0(&config).expect("loads").expect("a KB");
    assert_eq!(setup.kb.min_score, 2.5);
    assert!(setup.questions.is_empty());
    std::fs::write(&config, "[kb]\npath = \"/nonexistent/kb\"\n").unwrap();
    assert!(load_l0(&config).is_err(), "a missing folder is an error");
    std::fs::write(&config, "[routing]\ndefault_team = \"s\"\n").unwrap();
    assert!(load_l0(&config).unwrap().is_none());
}
