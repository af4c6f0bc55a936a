//! The operators' subcommands on the command line: `status`, `dlq`, `agents`, `customers`. The work is in
//! the library (`switchboard::cli`); this is parsing, the runtime and the exit code.

use std::process::ExitCode;
use std::time::Duration;

use switchboard::cli::args::{Agents, Common, Customers, Dlq};
use switchboard::cli::{self, Format, Output};
use switchboard::config::Config;

fn load(common: &Common) -> Result<Config, ExitCode> {
    Config::load(&common.config).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(cli::EXIT_CONFIG)
    })
}

fn finish(result: anyhow::Result<Output>) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{}", out.stdout);
            ExitCode::from(out.code)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::EXIT_PROBLEM)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// `switchboard status`.
pub fn status(common: Common) -> ExitCode {
    let config = match load(&common) {
        Ok(c) => c,
        Err(code) => return code,
    };
    finish(Ok(runtime().block_on(cli::status::run(&config, common.format))))
}

/// `switchboard dlq ...`.
pub fn dlq(command: Dlq) -> ExitCode {
    let common = match &command {
        Dlq::List { common, .. } | Dlq::Replay { common, .. } | Dlq::Drop { common, .. } => common.clone(),
    };
    let config = match load(&common) {
        Ok(c) => c,
        Err(code) => return code,
    };
    finish(runtime().block_on(async move {
        let bus = cli::connect(&config).await?;
        Ok(match command {
            Dlq::List { component, limit, show_body, .. } => {
                let listing = cli::dlq::list(&bus, component.as_deref(), Some(limit), show_body).await?;
                cli::dlq::listing_output(&listing, common.format)
            }
            Dlq::Replay { pick, .. } => {
                let component = pick.component.clone();
                let outcomes = cli::dlq::replay(&bus, &pick.selection(), component.as_deref()).await?;
                cli::dlq::outcomes_output(&outcomes, common.format)
            }
            Dlq::Drop { pick, .. } => {
                let component = pick.component.clone();
                let outcomes = cli::dlq::drop(&bus, &pick.selection(), component.as_deref()).await?;
                cli::dlq::outcomes_output(&outcomes, common.format)
            }
        })
    }))
}

/// `switchboard agents ...`.
pub fn agents(command: Agents) -> ExitCode {
    let common = match &command {
        Agents::List { common } | Agents::SetStatus { common, .. } => common.clone(),
    };
    let config = match load(&common) {
        Ok(c) => c,
        Err(code) => return code,
    };
    finish(runtime().block_on(async move {
        let bus = cli::connect(&config).await?;
        Ok(match command {
            Agents::List { .. } => {
                let groups = cli::agents::list(&bus, &cli::routing_groups(&config)).await;
                cli::agents::list_output(&groups, common.format)
            }
            Agents::SetStatus { agent, status, wait_secs, .. } => {
                let wait = Duration::from_secs(wait_secs);
                let result = cli::agents::set_status(&bus, &agent, status, wait).await?;
                cli::agents::set_status_output(&result, common.format)
            }
        })
    }))
}

/// `switchboard customers ...`.
pub fn customers(command: Customers) -> ExitCode {
    let path = match &command {
        Customers::Export { config, .. } => config.clone(),
        Customers::Forget { common, .. } => common.config.clone(),
    };
    let config = match load(&Common { config: path, format: Format::Text }) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let limit = config.privacy.max_scan_messages;
    // On stderr: a long scan's progress and the erasure's summary, never the person's data.
    let _ = switchboard::logging::init(config.log.format, &config.log.level, &Default::default());
    finish(runtime().block_on(async move {
        let bus = cli::connect(&config).await?;
        Ok(match command {
            Customers::Export { customer, format, .. } => {
                let export = switchboard::privacy::export(&bus, &customer, limit).await?;
                let stdout = match format {
                    Format::Json => serde_json::to_string_pretty(&export)? + "\n",
                    Format::Text => format!(
                        "{}: {} conversation(s), {} message(s), {} mapping(s), {} attachment(s); --format json prints them\n",
                        export.customer,
                        export.conversations.len(),
                        export.messages.len(),
                        export.mappings.len(),
                        export.attachments.len()
                    ),
                };
                Output { stdout, code: 0 }
            }
            Customers::Forget { customer, common } => {
                let by = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
                let groups = cli::routing_groups(&config);
                let erasure = switchboard::privacy::forget(&bus, &groups, &customer, &by, limit).await?;
                let stdout = match common.format {
                    Format::Json => serde_json::to_string_pretty(&erasure)? + "\n",
                    Format::Text => format!(
                        "erased (reference {}): {} conversation(s), {} message(s), {} key(s), {} attachment(s); \
                         {} journal entr(y/ies) newer than the router's snapshot kept; \
                         {} event batch(es) rewritten without them{}\n",
                        erasure.reference,
                        erasure.conversations,
                        erasure.messages,
                        erasure.keys,
                        erasure.objects,
                        erasure.kept_journal_entries,
                        erasure.rewritten_batches,
                        if erasure.truncated_streams.is_empty() {
                            String::new()
                        } else {
                            format!("; NOT read to their end: {}", erasure.truncated_streams.join(", "))
                        }
                    ),
                };
                Output { stdout, code: 0 }
            }
        })
    }))
}
