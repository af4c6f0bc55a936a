//! The operators' subcommands on the command line: `status`, `dlq`, `agents`, `customers`. The work is in
//! the library (`switchboard::cli`); this is parsing, the runtime and the exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use switchboard::cli::{self, Format, Output};
use switchboard::config::Config;
use switchboard_core::AgentStatus;

/// What every operator command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Configuration file: NATS (`[nats]`) and the routing group (`[router]`).
    #[arg(long, short)]
    config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Which dead letters `replay` and `drop` act on.
#[derive(Args, Debug)]
pub struct Pick {
    /// `SB_DLQ` sequences, as `dlq list` shows them.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    seqs: Vec<u64>,
    /// Every dead letter stored now (of `--component`, when given).
    #[arg(long)]
    all: bool,
    /// Only this component's.
    #[arg(long)]
    component: Option<String>,
}

impl Pick {
    fn selection(self) -> cli::dlq::Selection {
        if self.all { cli::dlq::Selection::All } else { cli::dlq::Selection::Seqs(self.seqs) }
    }
}

/// `switchboard dlq ...`.
#[derive(Subcommand, Debug)]
pub enum Dlq {
    /// Lists dead letters, oldest first: component, what each holds (kind), where a replay puts
    /// it, attempts, age, size, reason.
    List {
        #[command(flatten)]
        common: Common,
        /// Only this component's (`sb.dlq.<component>`).
        #[arg(long)]
        component: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the payloads too (they hold customer data).
        #[arg(long)]
        show_body: bool,
    },
    /// Puts dead letters back where they can succeed, then deletes them: a consumer's payload on
    /// its original subject, a raw mail or Telegram update through its adapter's parser
    /// (`sb.replay.<component>`), an event to the reader that gave it up.
    Replay {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        pick: Pick,
    },
    /// Deletes dead letters for good.
    Drop {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        pick: Pick,
    },
}

/// `switchboard agents ...`.
#[derive(Subcommand, Debug)]
pub enum Agents {
    /// Lists the agents the leading routers know: status, load, teams, tiers.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Changes an agent's status through the router (a `set_status` command on `sb.agent.in`).
    SetStatus {
        #[command(flatten)]
        common: Common,
        /// The agent id.
        agent: String,
        /// online, away or offline.
        #[arg(value_parser = cli::agents::parse_status)]
        status: AgentStatus,
        /// How long to wait for the router's verdict, seconds.
        #[arg(long, default_value_t = 5)]
        wait_secs: u64,
    },
}

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
#[derive(Subcommand, Debug)]
pub enum Customers {
    /// Prints everything held about a person as JSON: conversation records, channel mappings,
    /// attachment references and every stored message that mentions them.
    Export {
        /// `<channel>:<customer id>`, e.g. `email:ann@example.com`, `webhook:cust-42`, `webchat:<session>`.
        customer: switchboard::privacy::CustomerRef,
        /// Configuration file: NATS (`[nats]`) and `[privacy]`.
        #[arg(long, short)]
        config: PathBuf,
        /// Output format (the export is JSON either way; text is a summary of it).
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Erases everything held about a person (what `export` prints) after every routing group's
    /// leading router forgot them, and leaves a `customer_forgotten` event with counts only.
    Forget {
        /// `<channel>:<customer id>`, as for `export`.
        customer: switchboard::privacy::CustomerRef,
        #[command(flatten)]
        common: Common,
    },
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
    switchboard::logging::init(config.log.format, &config.log.level);
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
                         {} journal entr(y/ies) newer than the router's snapshot kept{}\n",
                        erasure.reference,
                        erasure.conversations,
                        erasure.messages,
                        erasure.keys,
                        erasure.objects,
                        erasure.kept_journal_entries,
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
