//! The queue notice's estimate measured (`docs/queue.md`): on the shipped example traffic, every
//! conversation that waited is told an estimate on arrival, and the run reports how close its
//! actual wait came (mean absolute error, share within ±50%) in the table and the JSON.

use std::path::Path;

use switchboard_simulator::{Options, load_routing, load_traffic, render, render_json, simulate};

fn example(file: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/simulate").join(file)
}

#[test]
fn the_example_reports_the_estimates_accuracy() {
    let traffic = load_traffic(&example("traffic.json")).unwrap();
    let options = Options { seed: 7, ..Options::default() };
    let skills = simulate(&load_routing(&example("skills.toml")).unwrap(), &traffic, &options).unwrap();
    let rr = simulate(&load_routing(&example("round_robin.toml")).unwrap(), &traffic, &options).unwrap();
    for (name, run) in [("skills", &skills), ("round robin", &rr)] {
        let w = &run.wait_estimate;
        println!("{name}: {w:?}");
        assert!(w.conversations > 50, "{name}: customers waited and were told: {w:?}");
        let (mae, within) = (w.mean_absolute_error_secs.unwrap(), w.within_half.unwrap());
        assert!(mae.is_finite() && mae >= 0.0 && (0.0..=1.0).contains(&within), "{name}: {w:?}");
    }
    let runs = [("skills".to_string(), &skills), ("round robin".to_string(), &rr)];
    let table = render(&runs, &Default::default());
    let row = table.lines().find(|l| l.starts_with("Wait estimate: within ±50%")).expect("the row");
    println!("{}", table.lines().filter(|l| l.starts_with("Wait")).collect::<Vec<_>>().join("\n"));
    assert!(row.contains('%'), "{row}");
    let json = render_json(&runs, &Default::default());
    assert_eq!(json["runs"]["skills"]["wait_estimate"]["conversations"], skills.wait_estimate.conversations);
}
