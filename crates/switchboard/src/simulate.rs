//! `switchboard simulate`: runs one or two routing configurations against the same traffic and
//! prints the KPI table (targets checked) and the backlog over time; with `--report`, also the
//! HTML page of hourly charts. Long runs show progress on a terminal.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use switchboard::cli::progress::{Progress, thousands};
use switchboard_metrics::Targets;
use switchboard_simulator::{Options, Outcome, load_l0, load_routing, load_traffic, simulate_with_progress, synthetic};

/// How to print the result.
pub use switchboard::cli::args::SimulateFormat as Format;

/// What `switchboard simulate` was asked.
pub struct Args {
    pub config: PathBuf,
    pub compare: Option<PathBuf>,
    pub traffic: Option<PathBuf>,
    pub generate: Option<u64>,
    pub seed: u64,
    pub format: Format,
    pub targets: Targets,
    pub sample_every_secs: i64,
    /// Where to write the HTML report page, if anywhere.
    pub report: Option<PathBuf>,
}

/// A run's name in the table: its file name.
fn name(path: &std::path::Path) -> String {
    path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

/// Runs the simulation(s) and prints the result; timings go to stderr.
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut configs = vec![args.config.clone()];
    configs.extend(args.compare.clone());
    let options = Options { seed: args.seed, sample_every_secs: args.sample_every_secs, ..Options::default() };
    let mut runs: Vec<(String, Outcome)> = Vec::new();
    for path in &configs {
        let routing = load_routing(path)?;
        let options = Options { l0: load_l0(path)?, ..options.clone() };
        let traffic = match (&args.traffic, args.generate) {
            (Some(file), _) => load_traffic(file)?,
            (None, Some(n)) => synthetic(n, &routing.default_team, "2026-01-05T00:00:00Z".parse().context("start")?),
            (None, None) => anyhow::bail!("give --traffic FILE or --generate N"),
        };
        let started = Instant::now();
        let mut progress = Progress::stderr();
        let outcome = simulate_with_progress(&routing, &traffic, &options, &mut |done, total| {
            progress.update(|| {
                format!("{}: simulated {} of {} conversations", path.display(), thousands(done), thousands(total))
            })
        })
        .with_context(|| format!("simulating {}", path.display()))?;
        progress.finish();
        eprintln!(
            "{}: {} conversations, {} router entries, {} events in {:.2} s",
            path.display(),
            outcome.stats.conversations,
            outcome.stats.entries,
            outcome.stats.events,
            started.elapsed().as_secs_f64()
        );
        let mut label = name(path);
        if runs.iter().any(|(n, _)| *n == label) {
            label = path.display().to_string();
        }
        runs.push((label, outcome));
    }
    let runs: Vec<(String, &Outcome)> = runs.iter().map(|(n, o)| (n.clone(), o)).collect();
    if let Some(file) = &args.report {
        let mut facts = vec![("Seed".to_string(), args.seed.to_string())];
        facts.push(match (&args.traffic, args.generate) {
            (Some(traffic), _) => ("Traffic".into(), traffic.display().to_string()),
            (None, n) => ("Traffic".into(), format!("synthetic, about {} conversations", n.unwrap_or(0))),
        });
        let page = switchboard_simulator::render_page(&runs, &args.targets, facts).render();
        std::fs::write(file, page).with_context(|| format!("writing the report to {}", file.display()))?;
        eprintln!("report written to {}", file.display());
    }
    match args.format {
        Format::Table => print!("{}", switchboard_simulator::render(&runs, &args.targets)),
        Format::Json => println!("{:#}", switchboard_simulator::render_json(&runs, &args.targets)),
    }
    Ok(())
}
