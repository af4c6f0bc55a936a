//! `switchboard`: run the daemon, check a configuration file, explain a routing decision,
//! simulate a day of traffic against routing configurations, report KPIs from the event stream,
//! print the HTTP API as OpenAPI, and the operators' commands: status, dead letters, agents,
//! customers' data.

mod ops;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::config::{Config, LogFormat};
use switchboard::stats;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Omnichannel message routing for support teams.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the components the configuration enables, in this process.
    Run {
        /// Configuration file (TOML); `SWITCHBOARD__SECTION__KEY` variables override it.
        #[arg(long, short)]
        config: PathBuf,
        /// Log format; overrides `log.format`.
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Asks the leading router why a conversation went where it went.
    Explain {
        /// The conversation id.
        conversation: String,
        /// Configuration file: NATS and the routing group.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the router's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Prints the HTTP API as an OpenAPI 3.1 document (JSON), generated from the handlers.
    Openapi,
    /// Validates a configuration file; exits non-zero naming the file, key and reason.
    CheckConfig {
        /// Configuration file (TOML).
        file: PathBuf,
    },
    /// Replays a day of traffic through the router in virtual time and prints the KPIs.
    Simulate {
        /// Routing configuration: a daemon configuration file (its `[routing]`) or the section alone.
        #[arg(long, short)]
        config: PathBuf,
        /// A second routing configuration to compare side by side on the same traffic.
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Traffic file (JSON): arrivals per channel, topics, handle times, agents and shifts.
        #[arg(long, conflicts_with = "generate", required_unless_present = "generate")]
        traffic: Option<PathBuf>,
        /// Synthetic traffic: about this many conversations in a day, with a roster sized for them.
        #[arg(long)]
        generate: Option<u64>,
        /// Seed of every random draw: the same seed gives the same numbers.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: simulate::Format,
        /// First response target, seconds (checked on the 90th percentile).
        #[arg(long, default_value_t = 7200)]
        frt_target_secs: u64,
        /// First-contact resolution target (share).
        #[arg(long, default_value_t = 0.85)]
        fcr_target: f64,
        /// CSAT target (share of 4 and 5).
        #[arg(long, default_value_t = 0.90)]
        csat_target: f64,
        /// Backlog sampling interval, seconds of simulated time.
        #[arg(long, default_value_t = 3600)]
        sample_every_secs: i64,
    },
    /// Shows NATS, streams, consumer lag, dead letters, routing leaders and running daemons;
    /// exits 1 when something is wrong (NATS unreachable, a group without a leader, a stale daemon).
    Status {
        #[command(flatten)]
        common: ops::Common,
    },
    /// Lists, replays or drops dead letters (`SB_DLQ`).
    #[command(subcommand)]
    Dlq(ops::Dlq),
    /// Lists agents as the leading routers see them, or changes an agent's status.
    #[command(subcommand)]
    Agents(ops::Agents),
    /// Exports or erases everything held about one customer (`docs/data-lifecycle.md`).
    #[command(subcommand)]
    Customers(ops::Customers),
    /// Reports support KPIs over a time window from the event stream, against targets.
    Stats {
        /// Configuration file: how to reach NATS (`[nats]`).
        #[arg(long, short)]
        config: PathBuf,
        /// Window start: a duration before now (`30m`, `24h`, `7d`) or an RFC 3339 time.
        #[arg(long, default_value = "24h", value_parser = stats::parse_when)]
        since: stats::When,
        /// Window end, like `--since`; default: now.
        #[arg(long, value_parser = stats::parse_when)]
        until: Option<stats::When>,
        /// Breakdown: one column per team, tier, channel, agent or priority class.
        #[arg(long, default_value = "none")]
        by: switchboard_metrics::GroupBy,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: stats::Format,
        /// First response target (checked on the 90th percentile), e.g. `2h`, `15m`.
        #[arg(long, default_value = "2h", value_parser = stats::parse_duration)]
        frt_target: std::time::Duration,
        /// First-contact resolution target, percent.
        #[arg(long, default_value = "85", value_parser = stats::parse_percent)]
        fcr_target: f64,
        /// CSAT target (share of 4 and 5), percent.
        #[arg(long, default_value = "90", value_parser = stats::parse_percent)]
        csat_target: f64,
        /// How far before the window's start to read events, so that replies to conversations
        /// opened earlier have their start; default 7d.
        #[arg(long, value_parser = stats::parse_duration)]
        lookback: Option<std::time::Duration>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Status { common } => ops::status(common),
        Command::Dlq(command) => ops::dlq(command),
        Command::Agents(command) => ops::agents(command),
        Command::Customers(command) => ops::customers(command),
        Command::Simulate {
            config,
            compare,
            traffic,
            generate,
            seed,
            format,
            frt_target_secs,
            fcr_target,
            csat_target,
            sample_every_secs,
        } => {
            let targets =
                switchboard_metrics::Targets { frt_secs: frt_target_secs, fcr: fcr_target, csat: csat_target };
            let args = simulate::Args { config, compare, traffic, generate, seed, format, targets, sample_every_secs };
            match simulate::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Stats { config, since, until, by, format, frt_target, fcr_target, csat_target, lookback } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let targets =
                switchboard_metrics::Targets { frt_secs: frt_target.as_secs(), fcr: fcr_target, csat: csat_target };
            let args = stats::Args { since, until, by, format, targets, lookback: lookback.unwrap_or(stats::LOOKBACK) };
            match stats(&config, &args) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Openapi => {
            print!("{}", switchboard::openapi::render());
            ExitCode::SUCCESS
        }
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Explain { conversation, config, json } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match explain(&config, &conversation) {
                Ok(answer) if json => {
                    println!("{answer:#}");
                    ExitCode::SUCCESS
                }
                Ok(answer) => {
                    print!("{}", switchboard::explain::render(&answer));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config, log_format } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            switchboard::logging::init(log_format.unwrap_or(config.log.format), &config.log.level);
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "switchboard failed");
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[tokio::main]
async fn explain(config: &Config, conversation: &str) -> anyhow::Result<serde_json::Value> {
    switchboard::explain::fetch(config, conversation).await
}

#[tokio::main]
async fn stats(config: &Config, args: &stats::Args) -> anyhow::Result<String> {
    stats::run(&config.nats, args, chrono::Utc::now()).await
}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen)", config.http.listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    switchboard::daemon::run(config, listener, shutdown).await
}

/// SIGTERM or SIGINT: stop taking work and shut down within the grace period.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let name = tokio::select! { _ = term.recv() => "SIGTERM", _ = int.recv() => "SIGINT" };
    info!(signal = name, "signal received");
    shutdown.cancel();
}
