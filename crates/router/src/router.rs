//! The deterministic router: journal entries in, effects out.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use switchboard_core::{Event, EventKind};
use switchboard_routing::{Engine, Input, Ms};

use uuid::Uuid;

use crate::config::{RouterConfig, RouterError, RouterState};
use crate::effect::{Effect, effect_id, effect_sequence};
use crate::entry::Entry;
use crate::record::{ConversationRecord, QueueItem};

/// The satisfaction question sent after a conversation is resolved; channels add how to answer.
pub const CSAT_QUESTION: &str = "How did we do? Rate your conversation from 1 (poor) to 5 (great).";
/// The NPS question sent to a customer whose team asks NPS.
pub const NPS_QUESTION: &str =
    "How likely are you to recommend us to a friend or colleague? 0 = not at all likely, 10 = extremely likely";
/// The CES question sent to a customer whose team asks CES.
pub const CES_QUESTION: &str = "How easy was it to get your issue resolved? 1 = very difficult, 7 = very easy";

/// The question asked for a survey kind.
pub fn survey_question(kind: switchboard_core::SurveyKind) -> &'static str {
    match kind {
        switchboard_core::SurveyKind::Csat => CSAT_QUESTION,
        switchboard_core::SurveyKind::Nps => NPS_QUESTION,
        switchboard_core::SurveyKind::Ces => CES_QUESTION,
    }
}

/// The channel that asks its own satisfaction question.
pub(crate) const WEBCHAT: &str = "webchat";

/// How many conversations per person are remembered for linked history.
pub const PERSON_KEEP: usize = 20;

/// The router: an [`Engine`] plus threading, records and effects.
pub struct Router {
    pub(crate) cfg: RouterConfig,
    pub(crate) engine: Engine,
    pub(crate) st: RouterState,
    /// Conversations the latest `Forget` entry erased (not state: the service reports them).
    pub(crate) forgotten: Vec<Uuid>,
    /// Whether any conversation can meet the L0 bot's knowledge base (a knowledge base, and a
    /// rule sending to L0 or a `kb_first` team): otherwise the leader does not look messages up.
    pub(crate) l0_possible: bool,
    /// The whole `[routing]` section routed by (before narrowing to the group): what a reload
    /// is compared with and narrowed from.
    pub(crate) full_routing: switchboard_routing::RoutingConfig,
}

/// Collects effects with ids from the entry's sequence and a running index.
pub(crate) struct Fx {
    pub(crate) at: Ms,
    pub(crate) sequence: u64,
    pub(crate) next: u16,
    pub(crate) out: Vec<Effect>,
    pub(crate) touched: BTreeSet<Uuid>,
    pub(crate) rejected: Option<String>,
    pub(crate) first_response: Option<bool>,
    /// A runtime agent's endpoint kinds before a `define_agent`, to undo it if rejected.
    pub(crate) previous_endpoints: Option<Option<Vec<String>>>,
    /// The knowledge base's answers journaled with the customer message being applied.
    pub(crate) kb: Vec<crate::kb::KbHit>,
    /// The customer said yes to the L0 bot's answer.
    pub(crate) l0_yes: bool,
    /// The supervisor whose command is being applied, if one is.
    pub(crate) supervisor: Option<Supervising>,
}

/// A supervisor's command being applied: what its decisions' events and history entries name.
#[derive(Debug, Clone)]
pub(crate) struct Supervising {
    /// The supervisor's name (the command's `agent_id`).
    pub(crate) name: String,
    /// The conversation changed.
    pub(crate) conversation: Uuid,
    /// The agent who held it (assigned) before the change.
    pub(crate) holder: Option<String>,
    /// The supervisor's note.
    pub(crate) note: Option<String>,
}

impl Fx {
    /// The supervisor's name when `conversation` is the one a supervisor's command changes.
    pub(crate) fn supervisor_of(&self, conversation: Uuid) -> Option<String> {
        self.supervisor.as_ref().filter(|s| s.conversation == conversation).map(|s| s.name.clone())
    }
}

impl Fx {
    pub(crate) fn id(&mut self) -> Uuid {
        self.next += 1;
        effect_id(self.at, self.sequence, self.next)
    }

    pub(crate) fn event(
        &mut self,
        kind: EventKind,
        conversation: Option<Uuid>,
        agent: Option<&str>,
        data: serde_json::Value,
    ) {
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

pub(crate) fn time(ms: Ms) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Router {
    /// A router with an empty state.
    pub fn new(cfg: RouterConfig) -> Result<Router, RouterError> {
        let full_routing = cfg.routing.clone();
        let cfg = crate::config::narrowed(cfg)?;
        let engine = Engine::new(&cfg.routing)?;
        let l0_possible = crate::kb::possible(cfg.kb.is_some(), &cfg.routing);
        Ok(Router { cfg, engine, st: RouterState::default(), forgotten: Vec::new(), l0_possible, full_routing })
    }

    /// A router continuing from a snapshot: with the `[routing]` section journaled last, if
    /// one was (the group routes by it until another is journaled), else with `cfg`'s.
    pub fn restore(mut cfg: RouterConfig, mut state: RouterState) -> Result<Router, RouterError> {
        if let Some(journaled) = &state.routing {
            cfg.routing = serde_json::from_value(journaled.clone()).map_err(|e| {
                RouterError::Config(switchboard_routing::RoutingConfigError {
                    key: "routing (journaled)".into(),
                    reason: e.to_string(),
                })
            })?;
        }
        let full_routing = cfg.routing.clone();
        let cfg = crate::config::narrowed(cfg)?;
        let engine = Engine::restore(&cfg.routing, std::mem::take(&mut state.engine))?;
        let l0_possible = crate::kb::possible(cfg.kb.is_some(), &cfg.routing);
        Ok(Router { cfg, engine, st: state, forgotten: Vec::new(), l0_possible, full_routing })
    }

    /// The whole state, to persist.
    pub fn state(&self) -> RouterState {
        RouterState { engine: self.engine.snapshot(), ..self.st.clone() }
    }

    /// The last journal sequence applied.
    pub fn sequence(&self) -> u64 {
        self.st.sequence
    }

    /// The `SB_AGENT` sequence of the last command journaled, where the leader resumes reading
    /// commands; `None` while no command was journaled with its sequence.
    pub fn commands_read(&self) -> Option<u64> {
        self.st.commands_read
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
            .map(|q| {
                let record = self.st.records.get(&q.conversation);
                QueueItem {
                    code: self.engine.code(q.conversation).unwrap_or_default(),
                    conversation_id: q.conversation,
                    channel: record.map(|r| r.channel.clone()).unwrap_or_default(),
                    team: q.team,
                    tier: q.tier,
                    priority: q.priority,
                    waiting_since: q.waiting_since,
                    sla_deadline: q.sla_deadline,
                    sla_left_secs: (q.sla_deadline - now).div_euclid(1000),
                }
            })
            .collect()
    }

    /// When the next timer is due: the service journals a tick then.
    pub fn next_due(&self) -> Option<Ms> {
        match (self.engine.next_due(), self.next_queue_check()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies the journal entry at `sequence`. An entry at or below the last applied sequence
    /// was applied already (a replay overlapping a snapshot) and yields nothing.
    pub fn apply(&mut self, sequence: u64, entry: &Entry) -> Vec<Effect> {
        self.apply_batch(sequence, std::slice::from_ref(entry))
    }

    /// Applies the entries of the journal message at `sequence` in order (a group commit), as
    /// [`Router::apply`] does one; each entry's effects get ids from its position in the batch.
    pub fn apply_batch(&mut self, sequence: u64, entries: &[Entry]) -> Vec<Effect> {
        self.apply_batch_each(sequence, entries).into_iter().flatten().collect()
    }

    /// Like [`Router::apply_batch`], with each entry's effects apart (one list per entry; all
    /// empty for an entry applied already).
    pub fn apply_batch_each(&mut self, sequence: u64, entries: &[Entry]) -> Vec<Vec<Effect>> {
        if sequence <= self.st.sequence {
            return entries.iter().map(|_| Vec::new()).collect();
        }
        self.st.sequence = sequence;
        entries
            .iter()
            .enumerate()
            .map(|(position, entry)| self.apply_one(effect_sequence(sequence, position), entry))
            .collect()
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
            kb: Vec::new(),
            l0_yes: false,
            supervisor: None,
        };
        match entry {
            Entry::Inbound { at, envelope, new_conversation, kb, replies } => {
                self.inbound(*at, envelope, *new_conversation, kb, replies, &mut fx)
            }
            Entry::Command { at, command, stream_sequence } => {
                if let Some(read) = stream_sequence {
                    self.st.commands_read = Some(self.st.commands_read.unwrap_or(0).max(*read));
                }
                self.command(*at, command, &mut fx)
            }
            Entry::Tick { at } => {
                let decisions = self.engine.handle(Input::Tick { at: *at });
                self.decisions(decisions, &mut fx);
            }
            Entry::Forget { customers, threads, .. } => self.forget(customers, threads, &mut fx),
            Entry::Configure { routing, .. } => self.configure(routing, &mut fx),
            Entry::Undelivered { event, .. } => match event.kind {
                switchboard_core::EventKind::MessageEdited => self.edited(event, &mut fx),
                _ => self.undelivered(event, &mut fx),
            },
            Entry::Expire { at, before } => {
                // Timers first: a conversation past its reopen window is forgotten, so its
                // customer's memory can end now rather than at the next sweep.
                let decisions = self.engine.handle(Input::Tick { at: *at });
                self.decisions(decisions, &mut fx);
                self.engine.expire_customers(*before);
            }
        }
        self.queue_notices(&mut fx);
        self.finish(&mut fx);
        fx.out
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
            self.st.suggested.remove(&id);
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
