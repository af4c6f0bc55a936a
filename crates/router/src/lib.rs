//! Switchboard's router: puts the routing engine on the bus.
//!
//! [`Router`] is the deterministic heart of the router service: it takes journal [`Entry`]s (an
//! inbound envelope, an agent command, a clock tick, each with the time the leader stamped on
//! it) and turns them into [`Effect`]s: events, messages to customers, deliveries to agents,
//! conversation records to store, and command results. It threads messages into conversations,
//! links a customer's identities across channels, and keeps each conversation's recent history
//! for offers. It does no I/O: the service journals an entry first, applies it, then publishes
//! the effects with ids derived from the journal sequence, so replaying the journal after a crash
//! or on a standby yields the same effects with the same ids, and JetStream drops the repeats.

mod claims;
mod commands;
mod config;
mod decisions;
mod deliver;
mod effect;
mod entry;
mod forget;
mod group;
mod inbound;
mod kb;
mod l0;
mod notice;
mod offers;
mod reconfigure;
mod record;
mod replies;
mod router;
mod service;
mod supervise;
mod undelivered;

pub use config::Notified;
pub use config::{RouterConfig, RouterError, RouterState, RoutingGroup};
pub use effect::{AGENT_STREAM, Effect, MAX_BATCH, effect_id, effect_sequence};
pub use entry::{Entry, decode_entries, encode_entries, encode_entry};
pub use kb::{KbHit, KnowledgeBase, MAX_SHOWN};
pub use l0::says_yes;
pub use notice::{Wait, notice_text};
pub use offers::OpenOffer;
pub use record::{ConversationRecord, HISTORY_KEEP, QueueItem};
pub use replies::{MAX_SUGGESTED, REPLY_MIN_SCORE, TemplateError};
pub use router::{CES_QUESTION, CSAT_QUESTION, NPS_QUESTION, Router, survey_question};
pub use service::{Role, RouterService, RoutingUpdates, ServiceConfig, ServiceError};
pub use undelivered::DELIVERY_FAILED;
