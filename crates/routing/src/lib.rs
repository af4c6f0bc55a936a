//! Switchboard's routing engine: rules, skills, tiers, one unified queue, assignment, offers,
//! escalation, transfers and resolution, as a pure deterministic state machine.
//!
//! [`Engine::handle`] takes an [`Input`] (a customer wrote, an agent changed status, accepted,
//! declined, replied, transferred, escalated, resolved, or time advanced) and returns the
//! [`Decision`]s it leads to. Time comes in with the inputs; the engine has no clock (except
//! the time budget of a rule's evaluation, see [`budget`]), does no I/O
//! and must never depend on NATS or a runtime, so it is unit-, property- and benchmark-testable
//! in isolation. The router service (bus-driven) feeds it and persists [`Engine::snapshot`].

mod agents;
mod assign;
pub mod budget;
pub mod code;
mod compiled;
pub mod config;
mod conv_index;
mod engine;
mod explain;
mod forget;
pub mod groups;
pub mod hours;
pub mod model;
pub mod position;
mod queues;
mod roster;
pub mod rules;
pub mod skills;
mod state;
mod supervise;
mod time;

pub use assign::Verdict;
pub use compiled::RoutingConfigError;
pub use config::{QueueNoticeConfig, RoutingConfig, RuleBudgetConfig};
pub use conv_index::ConvIndex;
pub use engine::Engine;
pub use explain::{AgentView, Explanation, QueueEntry, TeamAvailability};
pub use groups::Layout;
pub use model::{AutoReplyReason, ConversationId, Decision, EscalationCause, Input, MessageInfo, Ms};
pub use position::QueueStatus;
pub use state::{ConvState, State as Snapshot};
