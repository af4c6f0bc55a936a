//! The HTML report pages in a real browser: `switchboard simulate --report` on the shipped example
//! (two configurations) and `switchboard stats --report` over events a simulation published on a
//! real NATS, each opened from `file://` in Debian's Chromium (playwright-core): every chart drawn
//! with one line per configuration inside its viewBox, the legend naming each configuration, the
//! KPI table there, no request beyond the file, no console error; screenshots go to
//! `target/test-output/report-1280x800.png` and `report-stats-1280x800.png`. Both commands run
//! piped, so they must print no progress line.
//!
//! The browser steps are in `tests/browser/report.mjs`. `make tools` installs Chromium and the npm
//! package; `cargo build -p switchboard --bins` builds the binary the test runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::subjects;
use switchboard_e2e::faults::cluster::binary;
use switchboard_simulator::{Options, load_routing, simulate, synthetic};
use switchboard_testkit::NatsServer;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Runs the binary with `args`, output piped; asserts success and no progress line.
fn switchboard(args: &[&str]) -> Output {
    let out = Command::new(binary()).args(args).env_remove("RUST_LOG").output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "switchboard {args:?} failed:\n{stderr}");
    assert!(!stderr.contains('\r') && !stderr.contains("\x1b["), "piped: no progress line: {stderr:?}");
    let progress = |l: &str| l.contains("simulated ") || (l.starts_with("read ") && l.contains(" of "));
    assert!(!stderr.lines().any(progress), "piped: no progress text: {stderr:?}");
    out
}

/// Publishes the events of a small simulation (about 300 conversations on 2026-11-02) and
/// returns the window that holds them.
async fn publish_simulated_events(server: &NatsServer) -> (String, String, usize) {
    let root = workspace();
    let routing = load_routing(&root.join("config/simulate/skills.toml")).expect("the example routing");
    let start = "2026-11-02T00:00:00Z".parse().unwrap();
    let traffic = synthetic(300, &routing.default_team, start);
    let options = Options { seed: 5, keep_events: true, ..Options::default() };
    let outcome = simulate(&routing, &traffic, &options).expect("simulates");
    let bus = Bus::connect_once(&BusConfig::for_url(server.url())).await.expect("connects");
    bus.ensure_contract().await.expect("contract");
    for e in &outcome.events {
        bus.publish(&subjects::event(e.kind.as_str()), e, &e.id.to_string()).await.expect("published");
    }
    ("2026-11-02T00:00:00Z".into(), "2026-11-03T12:00:00Z".into(), outcome.events.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_pages_draw_every_chart_in_chromium() {
    let root = workspace();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(Path::new(&chromium).exists(), "{chromium} is missing: run `make tools` (installs Debian's chromium)");
    assert!(
        root.join("tests/browser/node_modules/playwright-core").exists(),
        "playwright-core is missing: run `make tools` (npm ci in tests/browser)"
    );
    let dir = tempfile::tempdir().unwrap();
    let example = |f: &str| root.join("config/simulate").join(f).display().to_string();

    // The simulation page: both configurations of the README's example, its seed.
    let sim_page = dir.path().join("simulate.html");
    let out = switchboard(&[
        "simulate",
        "--config",
        &example("skills.toml"),
        "--compare",
        &example("round_robin.toml"),
        "--traffic",
        &example("traffic.json"),
        "--seed",
        "7",
        "--frt-target-secs",
        "900",
        "--report",
        &sim_page.display().to_string(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("KPI "), "the table is still printed");
    let html = std::fs::read_to_string(&sim_page).expect("the page was written");
    assert!(html.contains("<dt>Seed</dt><dd>7</dd>"), "the seed is shown");
    assert!(html.contains("FRT p90 &lt;= 15m"), "the targets from the flags are shown");
    assert!(html.contains("2026-03-02 00:00 UTC to 2026-03-03 00:00 UTC"), "the arrival period is shown");

    // The live page: events on a real NATS, read back by `stats`.
    let server = NatsServer::start();
    let (since, until, published) = publish_simulated_events(&server).await;
    let config = dir.path().join("switchboard.toml");
    let text =
        format!("[nats]\nurl = \"{}\"\n[routing]\ndefault_team = \"support\"\n[routing.teams.support]\n", server.url());
    std::fs::write(&config, text).unwrap();
    let stats_page = dir.path().join("stats.html");
    let stats_args = [
        "stats",
        "--config",
        &config.display().to_string(),
        "--since",
        &since,
        "--until",
        &until,
        "--report",
        &stats_page.display().to_string(),
    ]
    .map(|s| s.to_string());
    let out =
        tokio::task::spawn_blocking(move || switchboard(&stats_args.iter().map(String::as_str).collect::<Vec<_>>()))
            .await
            .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("KPIs from 2026-11-02"), "the table is still printed");
    let html = std::fs::read_to_string(&stats_page).expect("the page was written");
    assert!(html.contains(&format!("{published} from SB_EVENTS")), "what was read is shown");

    let output = root.join("target/test-output");
    let pages = serde_json::json!([
        { "file": sim_page, "configurations": ["skills", "round_robin"], "screenshot": "report-1280x800.png" },
        { "file": stats_page, "configurations": ["events"], "screenshot": "report-stats-1280x800.png" },
    ]);
    let script = root.join("tests/browser/report.mjs");
    let browser_dir = root.join("tests/browser");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .current_dir(browser_dir)
            .env("SB_REPORT_PAGES", pages.to_string())
            .env("SB_OUTPUT_DIR", &output)
            .env("CHROMIUM", chromium)
            .output()
            .expect("run node (Node.js 20 is on the machine)")
    });
    let out = tokio::time::timeout(Duration::from_secs(120), run).await.expect("the browser run ends").unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    assert!(out.status.success(), "the browser checks failed ({}):\n{stdout}\n{stderr}", out.status);
    assert!(root.join("target/test-output/report-1280x800.png").is_file(), "the screenshot");
    drop(server);
}
