//! The deterministic router: journal entries in, effects out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_core::agent::{Author, ConversationUpdate, HistoryEntry, Offer};
use switchboard_core::outbound::ChannelAddress;
use switchboard_core::{
    AgentCommand, AgentDelivery, CommandAction, Envelope, Event, EventKind, OutboundKind, OutboundMessage, Priority,
    Tier,
};
use switchboard_routing::config::AgentConfig;
use switchboard_routing::{
    ConversationId, Decision, Engine, Input, MessageInfo, Ms, RoutingConfig, RoutingConfigError, Snapshot,
};

use switchboard_routing::Layout;
use uuid::Uuid;

use crate::effect::{AGENT_STREAM, Effect, effect_id, effect_sequence};
use crate::entry::Entry;
use crate::record::{ConversationRecord, QueueItem};

/// What the router needs besides the routing configuration.
#[derive(Debug, Clone, Default)]
pub struct RouterConfig {
    /// Teams, agents, rules.
    pub routing: RoutingConfig,
    /// Endpoint kinds by agent id: an agent's deliveries go to `sb.agent.out.<kind>` for each.
    pub endpoints: BTreeMap<String, Vec<String>>,
    /// How many history entries an offer carries (across the customer's linked conversations).
    pub offer_history: usize,
    /// The routing group this router routes, when the teams are divided into groups: it then
    /// runs that group's part of `routing` and claims only that group's inputs.
    pub group: Option<RoutingGroup>,
}

/// A router's routing group and the layout every process agrees on.
#[derive(Debug, Clone)]
pub struct RoutingGroup {
    /// The group's name.
    pub name: String,
    /// Which group owns what.
    pub layout: Arc<Layout>,
}

/// Why a router could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The routing configuration is invalid.
    #[error(transparent)]
    Config(#[from] RoutingConfigError),
    /// The group is not one of `routing.groups`.
    #[error("routing group `{0}` is not configured (routing.groups)")]
    UnknownGroup(String),
}

/// Everything the router knows, serialisable: a snapshot plus the journal sequence it reflects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterState {
    /// The last journal sequence applied.
    pub sequence: u64,
    /// The engine's state.
    pub engine: Snapshot,
    /// Conversations the engine still knows, by id.
    pub records: BTreeMap<Uuid, ConversationRecord>,
    /// Conversation ids by person key, newest last (at most [`PERSON_KEEP`]).
    pub persons: BTreeMap<String, VecDeque<Uuid>>,
    /// Resolved conversations in resolution order, to drop their records once forgotten.
    pub resolved: VecDeque<(Ms, Uuid)>,
    /// Endpoint kinds of agents defined at runtime (`define_agent`), by agent id.
    #[serde(default)]
    pub agent_endpoints: BTreeMap<String, Vec<String>>,
    /// Agents defined at runtime for another routing group, with that group: their commands
    /// are that group's.
    #[serde(default)]
    pub elsewhere: BTreeMap<String, String>,
}

/// The satisfaction question sent after a conversation is resolved; channels add how to answer.
pub const CSAT_QUESTION: &str = "How did we do? Rate your conversation from 1 (poor) to 5 (great).";

/// The channel that asks its own satisfaction question.
const WEBCHAT: &str = "webchat";

/// How many conversations per person are remembered for linked history.
pub const PERSON_KEEP: usize = 20;

/// The router: an [`Engine`] plus threading, records and effects.
pub struct Router {
    pub(crate) cfg: RouterConfig,
    pub(crate) engine: Engine,
    pub(crate) st: RouterState,
    /// Conversations the latest `Forget` entry erased (not state: the service reports them).
    pub(crate) forgotten: Vec<Uuid>,
}

/// Collects effects with ids from the entry's sequence and a running index.
pub(crate) struct Fx {
    pub(crate) at: Ms,
    sequence: u64,
    next: u16,
    pub(crate) out: Vec<Effect>,
    pub(crate) touched: BTreeSet<Uuid>,
    rejected: Option<String>,
    first_response: Option<bool>,
    /// A runtime agent's endpoint kinds before a `define_agent`, to undo it if rejected.
    previous_endpoints: Option<Option<Vec<String>>>,
}

impl Fx {
    fn id(&mut self) -> Uuid {
        self.next += 1;
        effect_id(self.at, self.sequence, self.next)
    }

    fn event(&mut self, kind: EventKind, conversation: Option<Uuid>, agent: Option<&str>, data: serde_json::Value) {
        let id = self.id();
        let data = match data {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let event = Event {
            id,
            at: time(self.at),
            kind,
            conversation_id: conversation,
            agent_id: agent.map(str::to_string),
            channel: None,
            data,
        };
        self.out.push(Effect::Event(event));
    }
}

fn time(ms: Ms) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The key that threads a customer's messages into one conversation: channel plus thread.
fn thread_of(envelope: &Envelope) -> String {
    format!("{}:{}", envelope.channel, envelope.thread_key)
}

/// The key that links a customer's identities: an e-mail address when known (the same address
/// on e-mail and web chat is one person), else the channel's own customer id.
fn person_of(envelope: &Envelope) -> String {
    match envelope.customer.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(email) => format!("email:{}", email.to_lowercase()),
        None => format!("{}:{}", envelope.channel, envelope.customer.id),
    }
}

pub(crate) fn message_info(envelope: &Envelope) -> MessageInfo {
    let tags = envelope
        .metadata
        .get("customer.tags")
        .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    MessageInfo {
        channel: envelope.channel.clone(),
        text: envelope.text.clone(),
        subject: envelope.subject.clone(),
        tags,
        language: envelope.customer.language.clone(),
        vip: envelope.metadata.get("customer.vip").is_some_and(|v| v == "true"),
        metadata: envelope.metadata.clone(),
    }
}

impl Router {
    /// A router with an empty state.
    pub fn new(cfg: RouterConfig) -> Result<Router, RouterError> {
        let cfg = crate::claims::narrowed(cfg)?;
        let engine = Engine::new(&cfg.routing)?;
        Ok(Router { cfg, engine, st: RouterState::default(), forgotten: Vec::new() })
    }

    /// A router continuing from a snapshot taken with the same configuration.
    pub fn restore(cfg: RouterConfig, mut state: RouterState) -> Result<Router, RouterError> {
        let cfg = crate::claims::narrowed(cfg)?;
        let engine = Engine::restore(&cfg.routing, std::mem::take(&mut state.engine))?;
        Ok(Router { cfg, engine, st: state, forgotten: Vec::new() })
    }

    /// The whole state, to persist.
    pub fn state(&self) -> RouterState {
        RouterState { engine: self.engine.snapshot(), ..self.st.clone() }
    }

    /// The last journal sequence applied.
    pub fn sequence(&self) -> u64 {
        self.st.sequence
    }

    /// A conversation's record.
    pub fn record(&self, id: Uuid) -> Option<&ConversationRecord> {
        self.st.records.get(&id)
    }

    /// The engine, for read-only views (queue, explain).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What waits, in unified queue order, with SLA time left at `now`.
    pub fn queue_view(&self, now: Ms) -> Vec<QueueItem> {
        self.engine
            .queue()
            .into_iter()
            .map(|q| QueueItem {
                conversation_id: q.conversation,
                channel: self.st.records.get(&q.conversation).map(|r| r.channel.clone()).unwrap_or_default(),
                team: q.team,
                tier: q.tier,
                priority: q.priority,
                waiting_since: q.waiting_since,
                sla_deadline: q.sla_deadline,
                sla_left_secs: (q.sla_deadline - now).div_euclid(1000),
            })
            .collect()
    }

    /// When the next timer is due: the service journals a tick then.
    pub fn next_due(&self) -> Option<Ms> {
        self.engine.next_due()
    }

    /// Applies the journal entry at `sequence`. An entry at or below the last applied sequence
    /// was applied already (a replay overlapping a snapshot) and yields nothing.
    pub fn apply(&mut self, sequence: u64, entry: &Entry) -> Vec<Effect> {
        self.apply_batch(sequence, std::slice::from_ref(entry))
    }

    /// Applies the entries of the journal message at `sequence` in order (a group commit), as
    /// [`Router::apply`] does one; each entry's effects get ids from its position in the batch.
    pub fn apply_batch(&mut self, sequence: u64, entries: &[Entry]) -> Vec<Effect> {
        if sequence <= self.st.sequence {
            return Vec::new();
        }
        self.st.sequence = sequence;
        let mut out = Vec::new();
        for (position, entry) in entries.iter().enumerate() {
            out.extend(self.apply_one(effect_sequence(sequence, position), entry));
        }
        out
    }

    fn apply_one(&mut self, sequence: u64, entry: &Entry) -> Vec<Effect> {
        let mut fx = Fx {
            at: entry.at(),
            sequence,
            next: 0,
            out: Vec::new(),
            touched: BTreeSet::new(),
            rejected: None,
            first_response: None,
            previous_endpoints: None,
        };
        match entry {
            Entry::Inbound { at, envelope, new_conversation } => {
                self.inbound(*at, envelope, *new_conversation, &mut fx)
            }
            Entry::Command { at, command } => self.command(*at, command, &mut fx),
            Entry::Tick { at } => {
                let decisions = self.engine.handle(Input::Tick { at: *at });
                self.decisions(decisions, &mut fx);
            }
            Entry::Forget { customers, threads, .. } => self.forget(customers, threads, &mut fx),
            Entry::Undelivered { event, .. } => self.undelivered(event, &mut fx),
            Entry::Expire { at, before } => {
                // Timers first: a conversation past its reopen window is forgotten, so its
                // customer's memory can end now rather than at the next sweep.
                let decisions = self.engine.handle(Input::Tick { at: *at });
                self.decisions(decisions, &mut fx);
                self.engine.expire_customers(*before);
            }
        }
        self.finish(&mut fx);
        fx.out
    }

    fn inbound(&mut self, at: Ms, envelope: &Envelope, new_id: Uuid, fx: &mut Fx) {
        let thread = thread_of(envelope);
        let decisions = self.engine.handle(Input::CustomerMessage {
            at,
            customer: thread.clone(),
            new_id,
            message: message_info(envelope),
        });
        let Some(conversation) = self.engine.current_conversation(&thread) else { return };
        if !self.st.records.contains_key(&conversation) {
            let person = person_of(envelope);
            let ids = self.st.persons.entry(person.clone()).or_default();
            ids.push_back(conversation);
            if ids.len() > PERSON_KEEP {
                ids.pop_front();
            }
            let record = ConversationRecord {
                id: conversation,
                channel: envelope.channel.clone(),
                customer: envelope.customer.clone(),
                person,
                thread_key: envelope.thread_key.clone(),
                subject: envelope.subject.clone(),
                last_provider_message_id: None,
                state: "queued".into(),
                agent: None,
                team: self.cfg.routing.default_team.clone(),
                tier: Tier::L1,
                priority: Priority::P3,
                sla_deadline: at,
                opened_at: at,
                repeat: false,
                offered_at: None,
                history: Vec::new(),
            };
            self.st.records.insert(conversation, record);
        }
        if let Some(r) = self.st.records.get_mut(&conversation) {
            r.last_provider_message_id = Some(envelope.provider_message_id.clone());
            r.customer = envelope.customer.clone();
            r.push(HistoryEntry::new(time(at), Author::Customer, None, envelope.text.clone()));
        }
        fx.touched.insert(conversation);
        let data = serde_json::json!({
            "envelope_id": envelope.id,
            "provider_message_id": envelope.provider_message_id,
        });
        fx.event(EventKind::MessageReceived, Some(conversation), None, data);
        if let Some(Effect::Event(e)) = fx.out.last_mut() {
            e.channel = Some(envelope.channel.clone());
        }
        self.decisions(decisions, fx);
    }

    fn command(&mut self, at: Ms, command: &AgentCommand, fx: &mut Fx) {
        let agent = command.agent_id.clone();
        if let CommandAction::DefineAgent { teams, .. } = &command.action {
            // Another group's agent: that group answers; this one only remembers where it lives.
            if let Some(owner) = self.defined_elsewhere(&agent, teams) {
                self.st.elsewhere.insert(agent, owner);
                return;
            }
            self.st.elsewhere.remove(&agent);
        }
        let conversation = command.conversation_id.unwrap_or_default();
        let input = match &command.action {
            CommandAction::Accept => Some(Input::Accept { at, agent: agent.clone(), conversation }),
            CommandAction::Decline { .. } => Some(Input::Decline { at, agent: agent.clone(), conversation }),
            CommandAction::Reply { .. } => Some(Input::AgentReplied { at, agent: agent.clone(), conversation }),
            CommandAction::Transfer { to_agent, to_team, note } => Some(Input::Transfer {
                at,
                agent: agent.clone(),
                conversation,
                to_agent: to_agent.clone(),
                to_team: to_team.clone(),
                note: note.clone(),
            }),
            CommandAction::Escalate { tier, note } => {
                Some(Input::Escalate { at, agent: agent.clone(), conversation, tier: *tier, note: note.clone() })
            }
            CommandAction::Resolve => Some(Input::Resolve { at, agent: agent.clone(), conversation }),
            CommandAction::SetStatus { status } => {
                Some(Input::AgentStatus { at, agent: agent.clone(), status: *status })
            }
            CommandAction::SetCapacity { capacity, max_total } => Some(Input::AgentCapacity {
                at,
                agent: agent.clone(),
                capacity: capacity.clone(),
                max_total: *max_total,
            }),
            CommandAction::DefineAgent { .. } => self.define_agent(at, command, fx),
            CommandAction::Note { .. } => {
                let decisions = self.engine.handle(Input::Tick { at });
                self.decisions(decisions, fx);
                if !self.engine.knows_agent(&agent) {
                    fx.rejected = Some(format!("unknown agent `{agent}`"));
                } else {
                    match self.st.records.get(&conversation) {
                        None => fx.rejected = Some("unknown conversation".into()),
                        // A note lands in the conversation's history, which its agent and the
                        // next ones read: only the agent holding it (or last holding it) writes one.
                        Some(r) if r.agent.as_deref() != Some(agent.as_str()) => {
                            fx.rejected = Some("the conversation is not assigned to this agent".into())
                        }
                        Some(_) => {}
                    }
                }
                None
            }
        };
        if let Some(input) = input {
            let decisions = self.engine.handle(input);
            self.decisions(decisions, fx);
        }
        if fx.rejected.is_none() {
            self.carried_out(at, command, fx);
        } else if let Some(previous) = fx.previous_endpoints.take() {
            match previous {
                Some(kinds) => self.st.agent_endpoints.insert(agent.clone(), kinds),
                None => self.st.agent_endpoints.remove(&agent),
            };
        }
        fx.out.push(Effect::CommandResult { command: command.id, rejected: fx.rejected.clone() });
    }

    /// What a command does beyond the engine's decisions, once the engine accepted it.
    fn carried_out(&mut self, at: Ms, command: &AgentCommand, fx: &mut Fx) {
        let agent = command.agent_id.as_str();
        // The engine reports only the status changes it makes itself; an agent's own ones are
        // needed too, for occupancy (time logged in).
        if let CommandAction::SetStatus { status } | CommandAction::DefineAgent { status: Some(status), .. } =
            &command.action
        {
            let data = serde_json::json!({ "status": status, "reason": "set by the agent" });
            fx.event(EventKind::AgentStatusChanged, None, Some(agent), data);
        }
        let Some(conversation) = command.conversation_id else { return };
        match &command.action {
            CommandAction::Reply { text } => {
                let Some(r) = self.st.records.get_mut(&conversation) else { return };
                let id = fx.id();
                r.push(HistoryEntry {
                    outbound_id: Some(id),
                    ..HistoryEntry::new(time(at), Author::Agent, Some(agent.into()), text.clone())
                });
                let outbound = OutboundMessage {
                    id,
                    conversation_id: conversation,
                    channel: r.channel.clone(),
                    to: ChannelAddress { customer_id: r.customer.id.clone(), thread_key: r.thread_key.clone() },
                    text: text.clone(),
                    subject: r.subject.as_ref().map(|s| reply_subject(s)),
                    attachments: Vec::new(),
                    reply_to: r.last_provider_message_id.clone(),
                    kind: OutboundKind::AgentReply,
                    agent_id: Some(agent.into()),
                    created_at: time(at),
                    metadata: agent_name_metadata(self.engine.agent_name(agent)),
                };
                fx.out.push(Effect::Outbound(outbound));
                let data = match fx.first_response {
                    Some(within_sla) => serde_json::json!({ "first_response": true, "within_sla": within_sla }),
                    None => serde_json::json!({ "first_response": false }),
                };
                self.conversation_event(fx, EventKind::AgentReplied, conversation, Some(agent), data);
                fx.touched.insert(conversation);
            }
            CommandAction::Note { text } => {
                if let Some(r) = self.st.records.get_mut(&conversation) {
                    r.push(HistoryEntry::new(time(at), Author::Note, Some(agent.into()), text.clone()));
                    fx.touched.insert(conversation);
                }
            }
            CommandAction::Decline { reason } => {
                self.conversation_event(
                    fx,
                    EventKind::OfferDeclined,
                    conversation,
                    Some(agent),
                    serde_json::json!({ "reason": reason }),
                );
            }
            _ => {}
        }
    }

    /// Turns the engine's decisions into effects and record changes.
    pub(crate) fn decisions(&mut self, decisions: Vec<Decision>, fx: &mut Fx) {
        for (i, d) in decisions.iter().cloned().enumerate() {
            let ahead = &decisions[i + 1..];
            if let Some(c) = d.conversation() {
                fx.touched.insert(c);
            }
            match d {
                Decision::Opened { conversation, repeat } => {
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        r.repeat = repeat;
                    }
                    let mut data = self.routing_ahead(conversation, ahead);
                    data["repeat"] = repeat.into();
                    self.conversation_event(fx, EventKind::ConversationOpened, conversation, None, data);
                }
                Decision::Reopened { conversation } => {
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        r.repeat = true;
                    }
                    let data = self.routing_ahead(conversation, ahead);
                    self.conversation_event(fx, EventKind::ConversationReopened, conversation, None, data);
                }
                Decision::Queued { conversation, team, tier, priority, sla_deadline } => {
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        (r.team, r.tier, r.priority, r.sla_deadline) = (team, tier, priority, sla_deadline);
                    }
                }
                Decision::AutoReply { conversation, text, reason } => {
                    self.auto_reply(conversation, text, &format!("{reason:?}"), fx);
                }
                Decision::Offer { conversation, agent, deadline } => {
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        r.offered_at = Some(fx.at);
                    }
                    self.conversation_event(
                        fx,
                        EventKind::Offered,
                        conversation,
                        Some(&agent),
                        serde_json::json!({ "deadline": deadline }),
                    );
                    let actions = ["accept", "decline"];
                    self.deliver_offer(conversation, &agent, deadline, &actions, fx);
                }
                Decision::OfferTimedOut { conversation, agent } => {
                    self.conversation_event(
                        fx,
                        EventKind::OfferTimedOut,
                        conversation,
                        Some(&agent),
                        serde_json::json!({}),
                    );
                    self.update(conversation, &agent, "offer_withdrawn", None, fx);
                }
                Decision::OfferWithdrawn { conversation, agent } => {
                    let data = serde_json::json!({ "reason": "agent stepped away" });
                    self.conversation_event(fx, EventKind::OfferDeclined, conversation, Some(&agent), data);
                    self.update(conversation, &agent, "offer_withdrawn", None, fx);
                }
                Decision::Assigned { conversation, agent } => {
                    let was_offered = self
                        .st
                        .records
                        .get(&conversation)
                        .is_some_and(|r| r.state == "offered" && r.agent.as_deref() == Some(agent.as_str()));
                    let data = match self.engine.agent_name(&agent) {
                        Some(name) => serde_json::json!({ "agent_name": name }),
                        None => serde_json::json!({}),
                    };
                    self.conversation_event(fx, EventKind::Assigned, conversation, Some(&agent), data);
                    if was_offered {
                        let since = self.since_offer(conversation);
                        self.update_with(conversation, &agent, "assigned", None, since, fx);
                    } else {
                        let actions = ["reply", "note", "transfer", "escalate", "resolve"];
                        self.deliver_offer(conversation, &agent, fx.at, &actions, fx);
                    }
                }
                Decision::DeliverToAgent { conversation, agent } => {
                    let Some(entry) = self.st.records.get(&conversation).and_then(|r| r.history.last().cloned()) else {
                        continue;
                    };
                    for kind in self.endpoint_kinds(&agent) {
                        let delivery = AgentDelivery::Message(switchboard_core::agent::AgentMessage {
                            id: fx.id(),
                            agent_id: agent.clone(),
                            conversation_id: conversation,
                            entry: entry.clone(),
                        });
                        fx.out.push(Effect::Agent { kind, delivery });
                    }
                }
                Decision::FirstResponse { within_sla, .. } => fx.first_response = Some(within_sla),
                Decision::Escalated { conversation, cause, tier, team, note } => {
                    let data =
                        serde_json::json!({ "cause": format!("{cause:?}"), "tier": tier, "team": team, "note": note });
                    self.conversation_event(fx, EventKind::Escalated, conversation, None, data);
                    self.note(conversation, note, fx);
                }
                Decision::Transferred { conversation, from_agent, to_agent, team, note } => {
                    let data = serde_json::json!({ "to_agent": to_agent, "team": team, "note": note });
                    self.conversation_event(fx, EventKind::Transferred, conversation, Some(&from_agent), data);
                    self.update(conversation, &from_agent, "transferred", note.clone(), fx);
                    self.note(conversation, note, fx);
                }
                Decision::SlaBreached { conversation } => {
                    self.conversation_event(fx, EventKind::SlaBreached, conversation, None, serde_json::json!({}));
                }
                Decision::Resolved { conversation, agent } => {
                    self.conversation_event(
                        fx,
                        EventKind::Resolved,
                        conversation,
                        agent.as_deref(),
                        serde_json::json!({}),
                    );
                    if let Some(agent) = &agent {
                        self.update(conversation, agent, "resolved", None, fx);
                    }
                    self.csat_survey(conversation, agent.as_deref(), fx);
                    self.st.resolved.push_back((fx.at, conversation));
                }
                Decision::AgentStatusChanged { agent, status, reason } => {
                    let data = serde_json::json!({ "status": status, "reason": reason });
                    fx.event(EventKind::AgentStatusChanged, None, Some(&agent), data);
                }
                Decision::Rejected { reason, .. } => fx.rejected = Some(reason),
            }
        }
    }

    /// Emits an event about a conversation. Every one carries the conversation's channel and its
    /// routing (team, tier, priority) as of now, so that KPIs can be cut by any of them without
    /// replaying the conversation's history; keys the caller set (e.g. the new tier of an
    /// escalation) win.
    pub(crate) fn conversation_event(
        &self,
        fx: &mut Fx,
        kind: EventKind,
        conversation: ConversationId,
        agent: Option<&str>,
        mut data: serde_json::Value,
    ) {
        let record = self.st.records.get(&conversation);
        if let (Some(r), serde_json::Value::Object(m)) = (record, &mut data) {
            m.entry("team").or_insert_with(|| r.team.clone().into());
            m.entry("tier").or_insert_with(|| serde_json::json!(r.tier));
            m.entry("priority").or_insert_with(|| r.priority.0.into());
        }
        fx.event(kind, Some(conversation), agent, data);
        if let Some(Effect::Event(e)) = fx.out.last_mut() {
            e.channel = record.map(|r| r.channel.clone());
        }
    }

    /// The routing a (re)opened conversation gets from this input: its `Queued` decision further
    /// on (the record is updated only when that decision is handled), else, for one the L0 bot
    /// answers, the engine's view.
    fn routing_ahead(&self, conversation: ConversationId, ahead: &[Decision]) -> serde_json::Value {
        let queued = ahead.iter().find_map(|d| match d {
            Decision::Queued { conversation: c, team, tier, priority, .. } if *c == conversation => {
                Some((team.clone(), *tier, *priority))
            }
            _ => None,
        });
        let routing = queued.or_else(|| self.engine.explain(conversation).map(|e| (e.team, e.tier, e.priority)));
        match routing {
            Some((team, tier, priority)) => serde_json::json!({ "team": team, "tier": tier, "priority": priority.0 }),
            None => serde_json::json!({}),
        }
    }

    fn auto_reply(&mut self, conversation: ConversationId, text: String, reason: &str, fx: &mut Fx) {
        let Some(r) = self.st.records.get_mut(&conversation) else { return };
        let id = fx.id();
        r.push(HistoryEntry {
            outbound_id: Some(id),
            ..HistoryEntry::new(time(fx.at), Author::System, None, text.clone())
        });
        let outbound = OutboundMessage {
            id,
            conversation_id: conversation,
            channel: r.channel.clone(),
            to: ChannelAddress { customer_id: r.customer.id.clone(), thread_key: r.thread_key.clone() },
            text,
            subject: r.subject.as_ref().map(|s| reply_subject(s)),
            attachments: Vec::new(),
            reply_to: r.last_provider_message_id.clone(),
            kind: OutboundKind::AutoReply,
            agent_id: None,
            created_at: time(fx.at),
            metadata: Default::default(),
        };
        fx.out.push(Effect::Outbound(outbound));
        self.conversation_event(
            fx,
            EventKind::AutoReplied,
            conversation,
            None,
            serde_json::json!({ "reason": reason }),
        );
        fx.touched.insert(conversation);
    }

    /// Asks the customer to rate a resolved conversation on the channel they used. The web chat
    /// asks by itself (buttons on the `resolved` event), so it gets no question from here. Not
    /// added to the history: it is not part of what the agent and customer said.
    fn csat_survey(&self, conversation: ConversationId, agent: Option<&str>, fx: &mut Fx) {
        use switchboard_core::contract::metadata;
        if !self.cfg.routing.csat_survey {
            return;
        }
        let Some(r) = self.st.records.get(&conversation) else { return };
        if r.channel == WEBCHAT {
            return;
        }
        let mut meta = BTreeMap::from([
            (metadata::CSAT.to_string(), metadata::CSAT_REQUEST.to_string()),
            (metadata::CSAT_CONVERSATION.to_string(), conversation.to_string()),
        ]);
        if let Some(agent) = agent {
            meta.insert(metadata::CSAT_AGENT.to_string(), agent.to_string());
        }
        let outbound = OutboundMessage {
            id: fx.id(),
            conversation_id: conversation,
            channel: r.channel.clone(),
            to: ChannelAddress { customer_id: r.customer.id.clone(), thread_key: r.thread_key.clone() },
            text: CSAT_QUESTION.to_string(),
            subject: r.subject.as_ref().map(|s| reply_subject(s)),
            attachments: Vec::new(),
            reply_to: r.last_provider_message_id.clone(),
            kind: OutboundKind::System,
            agent_id: None,
            created_at: time(fx.at),
            metadata: meta,
        };
        fx.out.push(Effect::Outbound(outbound));
    }

    fn note(&mut self, conversation: ConversationId, note: Option<String>, fx: &mut Fx) {
        if let (Some(text), Some(r)) = (note, self.st.records.get_mut(&conversation)) {
            r.push(HistoryEntry::new(time(fx.at), Author::Note, None, text));
            fx.touched.insert(conversation);
        }
    }

    /// Where an agent's deliveries go: its endpoint kinds, then the agent's own stream (read
    /// by `GET /v1/agent/events`), which every agent has.
    fn endpoint_kinds(&self, agent: &str) -> Vec<String> {
        let runtime = self.st.agent_endpoints.get(agent);
        let mut kinds = runtime.or_else(|| self.cfg.endpoints.get(agent)).cloned().unwrap_or_default();
        kinds.retain(|k| k != AGENT_STREAM);
        if switchboard_core::agent::has_own_stream(agent) {
            kinds.push(AGENT_STREAM.into());
        }
        kinds
    }

    /// The engine input for a `define_agent` command, or a rejection: agents of the configuration
    /// file are changed in the file, since every start applies the file to them again.
    fn define_agent(&mut self, at: Ms, command: &AgentCommand, fx: &mut Fx) -> Option<Input> {
        let CommandAction::DefineAgent {
            name,
            teams,
            tiers,
            skills,
            capacity,
            default_capacity,
            max_total,
            status,
            endpoints,
        } = &command.action
        else {
            return None;
        };
        let id = &command.agent_id;
        if self.cfg.routing.agents.iter().any(|a| a.id == *id) {
            fx.rejected = Some(format!("agent `{id}` is defined in the configuration file; change it there"));
            return None;
        }
        let defaults = AgentConfig::new(id);
        let agent = AgentConfig {
            id: id.clone(),
            name: name.clone(),
            teams: teams.clone(),
            tiers: tiers.clone(),
            skills: skills.clone(),
            capacity: capacity.clone(),
            default_capacity: default_capacity.unwrap_or(defaults.default_capacity),
            max_total: max_total.unwrap_or(defaults.max_total),
            status: status.unwrap_or(defaults.status),
        };
        // Recorded before the engine decides, so an offer made at once goes to the new endpoints;
        // a rejected definition is undone in `command`.
        fx.previous_endpoints = Some(self.st.agent_endpoints.insert(id.clone(), endpoints.clone()));
        Some(Input::DefineAgent { at, agent: Box::new(agent), keep_status: status.is_none() })
    }

    pub(crate) fn update(
        &mut self,
        conversation: ConversationId,
        agent: &str,
        change: &str,
        note: Option<String>,
        fx: &mut Fx,
    ) {
        self.update_with(conversation, agent, change, note, Vec::new(), fx);
    }

    pub(crate) fn update_with(
        &mut self,
        conversation: ConversationId,
        agent: &str,
        change: &str,
        note: Option<String>,
        history: Vec<HistoryEntry>,
        fx: &mut Fx,
    ) {
        for kind in self.endpoint_kinds(agent) {
            let delivery = AgentDelivery::Update(ConversationUpdate {
                id: fx.id(),
                agent_id: agent.into(),
                conversation_id: conversation,
                change: change.into(),
                note: note.clone(),
                history: history.clone(),
            });
            fx.out.push(Effect::Agent { kind, delivery });
        }
    }

    /// What the customer wrote in `conversation` since its current offer was made.
    fn since_offer(&self, conversation: ConversationId) -> Vec<HistoryEntry> {
        let Some(r) = self.st.records.get(&conversation) else { return Vec::new() };
        let Some(since) = r.offered_at.map(time) else { return Vec::new() };
        r.history.iter().filter(|e| e.from == Author::Customer && e.at > since).cloned().collect()
    }

    /// The history an agent sees: the customer's linked conversations' entries, oldest first,
    /// the last `offer_history` of them.
    fn history_for(&self, conversation: ConversationId) -> Vec<HistoryEntry> {
        let Some(r) = self.st.records.get(&conversation) else { return Vec::new() };
        let mut all: Vec<HistoryEntry> = Vec::new();
        for id in self.st.persons.get(&r.person).into_iter().flatten() {
            if *id != conversation
                && let Some(other) = self.st.records.get(id)
            {
                all.extend(other.history.iter().cloned());
            }
        }
        all.extend(r.history.iter().cloned());
        all.sort_by_key(|e| e.at);
        let keep = self.cfg.offer_history.max(1);
        let skip = all.len().saturating_sub(keep);
        all.split_off(skip)
    }

    fn deliver_offer(
        &mut self,
        conversation: ConversationId,
        agent: &str,
        deadline: Ms,
        actions: &[&str],
        fx: &mut Fx,
    ) {
        let Some(r) = self.st.records.get(&conversation) else { return };
        let skills = self.engine.explain(conversation).map(|e| e.skills).unwrap_or_default();
        let skills = skills
            .iter()
            .filter_map(|s| s.split_once(':'))
            .filter_map(|(skill, level)| {
                Some(switchboard_core::SkillRequirement { skill: skill.into(), min_level: level.parse().ok()? })
            })
            .collect();
        let history = self.history_for(conversation);
        for kind in self.endpoint_kinds(agent) {
            let offer = Offer {
                id: fx.id(),
                agent_id: agent.into(),
                conversation_id: conversation,
                channel: r.channel.clone(),
                customer: r.customer.clone(),
                subject: r.subject.clone(),
                priority: r.priority,
                tier: r.tier,
                skills: Vec::clone(&skills),
                sla_deadline: time(r.sla_deadline),
                offer_deadline: time(deadline),
                history: history.clone(),
                actions: actions.iter().map(|a| a.to_string()).collect(),
            };
            fx.out.push(Effect::Agent { kind, delivery: AgentDelivery::Offer(Box::new(offer)) });
        }
    }

    /// Brings touched records in line with the engine, stores them, and forgets records of
    /// conversations the engine forgot (resolved and past the reopen window).
    fn finish(&mut self, fx: &mut Fx) {
        for id in std::mem::take(&mut fx.touched) {
            let Some((state, agent)) = self.engine.where_is(id).map(|(s, a)| (s, a.map(str::to_string))) else {
                continue;
            };
            if let Some(r) = self.st.records.get_mut(&id) {
                r.state = state.into();
                // A resolved conversation keeps the agent who resolved it: the survey's answer
                // (`csat_received.agent_id`) and that agent's notes name them.
                r.agent = if state == "resolved" { agent.or(r.agent.take()) } else { agent };
                fx.out.push(Effect::Store(Box::new(r.clone())));
            }
        }
        while let Some(&(_, id)) = self.st.resolved.front() {
            match self.engine.where_is(id).map(|(state, _)| state) {
                // Still within the reopen window; so is everything behind it.
                Some("resolved") => break,
                // Reopened: it is queued here again when resolved once more.
                Some(_) => {
                    self.st.resolved.pop_front();
                    continue;
                }
                None => {
                    self.st.resolved.pop_front();
                }
            }
            if let Some(r) = self.st.records.remove(&id)
                && let Some(ids) = self.st.persons.get_mut(&r.person)
            {
                ids.retain(|c| *c != id);
                if ids.is_empty() {
                    self.st.persons.remove(&r.person);
                }
            }
        }
    }
}

fn reply_subject(subject: &str) -> String {
    if subject.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:")) {
        subject.to_string()
    } else {
        format!("Re: {subject}")
    }
}

/// Outbound metadata naming the agent who wrote, so chat channels can show who answers.
fn agent_name_metadata(name: Option<&str>) -> std::collections::BTreeMap<String, String> {
    name.map(|n| {
        std::collections::BTreeMap::from([(
            switchboard_core::contract::metadata::AGENT_NAME.to_string(),
            n.to_string(),
        )])
    })
    .unwrap_or_default()
}
