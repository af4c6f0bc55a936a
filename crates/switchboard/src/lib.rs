//! The Switchboard daemon as a library: configuration, component start-up, the HTTP listener,
//! health, logging and ordered shutdown. The `switchboard` binary is a thin CLI over it, and the
//! end-to-end tests drive [`daemon::run`] on `127.0.0.1:0`. It wires components together and must
//! never hold routing logic or a provider's wire format itself.

pub mod api;
pub mod channels;
pub mod cli;
pub mod config;
pub mod console;
pub mod customers;
pub mod daemon;
pub mod demo_inbox;
pub mod explain;
pub mod host;
pub mod http;
pub mod kb;
pub mod kb_config;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod presence;
pub mod privacy;
pub mod reload;
pub mod serve;
pub mod stats;
pub mod stats_page;
pub mod telemetry;

pub use config::{Config, ConfigError};
