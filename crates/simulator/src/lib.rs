//! What-if simulation for Switchboard: replays a day of traffic through the real router
//! ([`switchboard_router::Router`], the same code the daemon runs) in virtual time, with agents
//! who accept offers, reply and resolve after sampled delays, and customers who reopen and answer
//! surveys (CSAT, NPS or CES, as each team asks), then reports the support KPIs with [`switchboard_metrics`].
//!
//! With a knowledge base ([`L0Setup`], the configuration's `[kb]`), the router's L0 bot answers
//! customers' questions (the topics' `questions`, or labelled ones drawn from a file), and the
//! customers answer it yes, no or not at all, as [`CustomerBehaviour`] says.
//!
//! Inputs: a routing configuration (the `[routing]` section of the daemon's file, or a file with
//! just its keys) and [`Traffic`] (JSON, or [`synthetic`]). The same seed gives the same run.

mod accuracy;
mod generate;
mod l0;
mod page;
mod render;
mod roster;
mod sim;
mod traffic;

use std::path::Path;

pub use accuracy::Accuracy;
pub use generate::synthetic;
pub use l0::{L0Setup, Question, load_l0};
pub use page::{render_page, run_hourly};
pub use render::{render, render_json, report, report_with};
pub use sim::{Options, Outcome, Point, Stats, simulate, simulate_with_progress};
pub use traffic::{AgentBehaviour, AgentGroup, ChannelTraffic, CustomerBehaviour, Dist, Shift, Topic, Traffic};

use switchboard_routing::RoutingConfig;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The routing configuration does not parse.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The traffic file does not parse.
    #[error("{path}: {source}")]
    Traffic {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The router refused the configuration.
    #[error("routing configuration: {0}")]
    Router(switchboard_router::RouterError),
    /// An agent's shift is malformed.
    #[error("shift of agent `{agent}`: {reason}")]
    Shift {
        /// The agent.
        agent: String,
        /// Why.
        reason: String,
    },
}

/// Reads a routing configuration: a daemon configuration file (its `[routing]` section is used)
/// or a file with the section's keys at the top level.
pub fn load_routing(path: &Path) -> Result<RoutingConfig, SimError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Read { path: name.clone(), source })?;
    parse_routing(&text).map_err(|reason| SimError::Config { path: name, reason })
}

/// Parses a routing configuration from TOML text (see [`load_routing`]).
pub fn parse_routing(text: &str) -> Result<RoutingConfig, String> {
    let value: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let section = match value.get("routing") {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => value,
    };
    section.try_into().map_err(|e: toml::de::Error| e.to_string())
}

/// Reads traffic JSON.
pub fn load_traffic(path: &Path) -> Result<Traffic, SimError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Read { path: name.clone(), source })?;
    Traffic::from_json(&text).map_err(|source| SimError::Traffic { path: name, source })
}
