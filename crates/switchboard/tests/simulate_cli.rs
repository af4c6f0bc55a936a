//! `switchboard simulate` compares two configurations on the shipped example and flags misses.

use std::process::Command;

fn example(file: &str) -> String {
    format!("{}/../../config/simulate/{file}", env!("CARGO_MANIFEST_DIR"))
}

fn simulate(format: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["simulate", "--config", &example("skills.toml"), "--compare", &example("round_robin.toml")])
        .args(["--traffic", &example("traffic.json"), "--seed", "7", "--format", format])
        .output()
        .expect("the binary runs")
}

#[test]
fn simulate_prints_both_configurations_with_misses_flagged() {
    let out = simulate("json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let frt = |run: &str| json["runs"][run]["report"]["total"]["frt_mean_secs"].as_f64().expect("an FRT");
    assert!(frt("skills") < frt("round_robin"));
    assert_eq!(json["targets"]["frt_secs"], 7200);

    let out = simulate("table");
    let table = String::from_utf8_lossy(&out.stdout);
    let p90 = table.lines().find(|l| l.starts_with("FRT p90")).expect("an FRT p90 row");
    assert!(p90.ends_with("MISS") && p90.matches("MISS").count() == 1, "only round robin misses: {p90}");
    assert!(table.contains("waiting skills"), "the backlog over time");
}

#[test]
fn the_kb_first_example_reports_the_bots_deflection() {
    // The example's `[kb]` paths are relative to the repository's root, as the docs run it.
    let root = format!("{}/../..", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(&root)
        .args(["simulate", "--config", "config/simulate/kb_first.toml", "--traffic", "config/simulate/traffic.json"])
        .args(["--format", "json"])
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let total = &json["runs"]["kb_first"]["report"]["total"];
    assert!(total["l0_answered"].as_u64() > Some(0), "{total}");
    let deflection = total["l0_deflection"].as_f64().expect("a deflection");
    assert!(deflection > 0.0 && deflection < 1.0, "{deflection}");
    assert!(total["l0_handed_off"].as_u64() > Some(0), "{total}");
    assert!(json["runs"]["kb_first"]["report"]["kb_articles"].as_object().is_some_and(|a| !a.is_empty()));
}
