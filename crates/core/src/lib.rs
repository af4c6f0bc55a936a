//! Switchboard's domain types and its public bus contract.
//!
//! Every message that crosses NATS is one of the versioned types here (`envelope/1`,
//! `outbound/1`, `offer/1`, `message/1`, `update/1`, `command/1`, `event/1`, `events/1`), and every subject,
//! stream, bucket and header name lives in [`contract`]. This crate does no I/O and must never
//! depend on NATS, HTTP or a runtime: adapters in other languages implement the same contract
//! from the JSON Schemas generated here (`docs/schema/`).

pub mod agent;
pub mod asyncapi;
pub mod contract;
pub mod domain;
pub mod envelope;
pub mod event;
pub mod event_batch;
pub mod outbound;
pub mod record;
pub mod schema;
pub mod survey;
mod validate;
pub mod verdict;

pub use agent::{AgentCommand, AgentDelivery, CommandAction, ConversationLabel, SupervisorOp};
pub use domain::{AgentStatus, Priority, SkillRequirement, Tier};
pub use envelope::{AttachmentRef, Customer, Envelope};
pub use event::{Event, EventKind};
pub use event_batch::{EventBatch, EventsError, Rewrites, decode_events};
pub use outbound::{OutboundKind, OutboundMessage};
pub use survey::SurveyKind;
pub use validate::{Contract, ValidationError, json_error, whole};
pub use verdict::CommandVerdict;
