//! The command line's definition (clap), in the library so that tests parse command lines
//! (those in the docs, for one) with exactly the parser the `switchboard` binary uses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use switchboard_core::AgentStatus;

use crate::cli::Format;
use crate::config::LogFormat;
use crate::stats;

/// How `switchboard simulate` prints its result.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SimulateFormat {
    /// Aligned text tables.
    Table,
    /// One JSON document.
    Json,
}

/// Omnichannel message routing for support teams.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    /// The subcommand.
    pub command: Command,
}

/// The subcommands of `switchboard`.
#[derive(Subcommand)]
pub enum Command {
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
    /// A local stand-in for the demo source's backend and the demo agent's helpdesk (`make run`):
    /// prints every reply to a customer and every delivery to the agent, and lists them on `GET`.
    DemoInbox {
        /// Address to listen on (the default config sends there).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
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
        format: SimulateFormat,
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
        /// Also write a self-contained HTML page to this file: hourly charts of arrivals,
        /// waiting, backlog, load, FRT and SLA per configuration side by side, and the KPI table.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
    /// Shows NATS, streams, consumer lag, dead letters, routing leaders and running daemons;
    /// exits 1 when something is wrong (NATS unreachable, a group without a leader, a stale daemon).
    Status {
        /// The configuration file and the output format.
        #[command(flatten)]
        common: Common,
    },
    /// Lists, replays or drops dead letters (`SB_DLQ`).
    #[command(subcommand)]
    Dlq(Dlq),
    /// Lists agents as the leading routers see them, or changes an agent's status.
    #[command(subcommand)]
    Agents(Agents),
    /// Exports or erases everything held about one customer (`docs/data-lifecycle.md`).
    #[command(subcommand)]
    Customers(Customers),
    /// Checks the knowledge base folder or searches it (`docs/kb.md`).
    #[command(subcommand)]
    Kb(Kb),
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
        /// Also write a self-contained HTML page to this file: hourly charts of arrivals,
        /// waiting, backlog, load, FRT and SLA over the window, and the KPI table.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
}

/// What every operator command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Configuration file: NATS (`[nats]`) and the routing group (`[router]`).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// Which dead letters `replay` and `drop` act on.
#[derive(Args, Debug)]
pub struct Pick {
    /// `SB_DLQ` sequences, as `dlq list` shows them.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub seqs: Vec<u64>,
    /// Every dead letter stored now (of `--component`, when given).
    #[arg(long)]
    pub all: bool,
    /// Only this component's.
    #[arg(long)]
    pub component: Option<String>,
}

impl Pick {
    /// The dead letters picked.
    pub fn selection(self) -> crate::cli::dlq::Selection {
        if self.all { crate::cli::dlq::Selection::All } else { crate::cli::dlq::Selection::Seqs(self.seqs) }
    }
}

/// `switchboard dlq ...`.
#[derive(Subcommand, Debug)]
pub enum Dlq {
    /// Lists dead letters, oldest first: component, what each holds (kind), where a replay puts
    /// it, attempts, age, size, reason.
    List {
        /// The configuration file and the output format.
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
        /// The configuration file and the output format.
        #[command(flatten)]
        common: Common,
        /// Which dead letters.
        #[command(flatten)]
        pick: Pick,
    },
    /// Deletes dead letters for good.
    Drop {
        /// The configuration file and the output format.
        #[command(flatten)]
        common: Common,
        /// Which dead letters.
        #[command(flatten)]
        pick: Pick,
    },
}

/// `switchboard agents ...`.
#[derive(Subcommand, Debug)]
pub enum Agents {
    /// Lists the agents the leading routers know: status, load, teams, tiers.
    List {
        /// The configuration file and the output format.
        #[command(flatten)]
        common: Common,
    },
    /// Changes an agent's status through the router (a `set_status` command on `sb.agent.in`).
    SetStatus {
        /// The configuration file and the output format.
        #[command(flatten)]
        common: Common,
        /// The agent id.
        agent: String,
        /// online, away or offline.
        #[arg(value_parser = crate::cli::agents::parse_status)]
        status: AgentStatus,
        /// How long to wait for the router's verdict, seconds.
        #[arg(long, default_value_t = 5)]
        wait_secs: u64,
    },
}

/// `switchboard customers ...`.
#[derive(Subcommand, Debug)]
pub enum Customers {
    /// Prints everything held about a person as JSON: conversation records, channel mappings,
    /// attachment references and every stored message that mentions them.
    Export {
        /// `<channel>:<customer id>`, e.g. `email:ann@example.com`, `webhook:cust-42`, `webchat:<session>`.
        customer: crate::privacy::CustomerRef,
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
        customer: crate::privacy::CustomerRef,
        /// The configuration file and the output format.
        #[command(flatten)]
        common: Common,
    },
}

/// `switchboard kb ...`.
#[derive(Subcommand, Debug)]
pub enum Kb {
    /// Validates the `[kb] path` folder: prints every problem as `file:line: reason` and exits 1,
    /// or "N articles, M replies: ok".
    Check {
        /// Configuration file: its `[kb]` section.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Prints the articles answering a question, best first, with their scores.
    Search {
        /// Configuration file: its `[kb]` section.
        #[arg(long, short)]
        config: PathBuf,
        /// The question's language; detected from its letters when not given.
        #[arg(long, value_parser = parse_lang)]
        lang: Option<switchboard_kb::Lang>,
        /// Most hits printed.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: crate::kb::SearchFormat,
        /// The question, as a customer would write it.
        question: String,
    },
}

fn parse_lang(s: &str) -> Result<switchboard_kb::Lang, String> {
    s.parse().map_err(|()| format!("`{s}` is not a language (en or ru)"))
}
