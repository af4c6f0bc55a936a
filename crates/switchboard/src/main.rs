//! `switchboard`: run the daemon, check a configuration file, explain a routing decision,
//! simulate a day of traffic against routing configurations, report KPIs from the event stream,
//! print the HTTP API as OpenAPI, a demo inbox for `make run`, and the operators' commands: status, dead letters, agents,
//! customers' data.

mod ops;
mod simulate;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use switchboard::cli::args::{Cli, Command};
use switchboard::config::Config;
use switchboard::stats;
use tokio_util::sync::CancellationToken;
use tracing::info;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Status { common } => ops::status(common),
        Command::Dlq(command) => ops::dlq(command),
        Command::Agents(command) => ops::agents(command),
        Command::Customers(command) => ops::customers(command),
        Command::Kb(command) => kb(command),
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
            report,
        } => {
            let targets =
                switchboard_metrics::Targets { frt_secs: frt_target_secs, fcr: fcr_target, csat: csat_target };
            let args =
                simulate::Args { config, compare, traffic, generate, seed, format, targets, sample_every_secs, report };
            match simulate::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Stats { config, since, until, by, format, frt_target, fcr_target, csat_target, lookback, report } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let targets =
                switchboard_metrics::Targets { frt_secs: frt_target.as_secs(), fcr: fcr_target, csat: csat_target };
            let lookback = lookback.unwrap_or(stats::LOOKBACK);
            let args = stats::Args { since, until, by, format, targets, lookback, report };
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
        Command::DemoInbox { listen } => match demo_inbox(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
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
            let telemetry = match switchboard::logging::init(
                log_format.unwrap_or(config.log.format),
                &config.log.level,
                &config.telemetry,
            ) {
                Ok(guard) => guard,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let ran = run(config);
            // The last spans leave before the process does.
            drop(telemetry);
            match ran {
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

/// `switchboard kb check|search`: no NATS, only the folder the configuration names.
fn kb(command: switchboard::cli::args::Kb) -> ExitCode {
    use switchboard::cli::args::Kb;
    let config_path = match &command {
        Kb::Check { config } | Kb::Search { config, .. } => config.clone(),
    };
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let out = match command {
        Kb::Check { .. } => switchboard::kb::check(&config.kb),
        Kb::Search { lang, limit, format, question, .. } => {
            switchboard::kb::search(&config.kb, &question, lang, limit, format)
        }
    };
    print!("{}", out.stdout);
    ExitCode::from(out.code)
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
async fn demo_inbox(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    println!(
        "demo inbox on http://{listen}: replies to customers ({}) and the demo agent's deliveries ({})",
        switchboard::demo_inbox::REPLIES_PATH,
        switchboard::demo_inbox::AGENT_PATH
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    switchboard::demo_inbox::serve(listener, shutdown, |line| println!("{line}")).await?;
    Ok(())
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
