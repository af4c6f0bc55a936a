//! Agents on Slack (endpoint kind `slack`).

pub mod api;
pub mod config;
pub mod payload;
pub mod signature;
