//! The fold: events in, per-conversation and per-agent facts out, plus the cumulative totals the
//! Prometheus exposition reads. Applying an event twice (same id) changes nothing.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use switchboard_core::{Event, EventKind, SurveyKind};
use uuid::Uuid;

use crate::dims::{Dims, Ms, Routing, UNKNOWN};
use crate::l0::{L0Fact, L0Step};
use crate::totals::Totals;

/// Where a conversation is, as far as the backlog cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting in the queue for an agent.
    Waiting,
    /// Offered to an agent who has not accepted yet (still waiting for the customer).
    Offered,
    /// Held by an agent.
    Assigned,
    /// Answered by the L0 bot; no human involved.
    Bot,
    /// Resolved.
    Resolved,
}

/// One contact: the conversation's opening, or a reopening by the customer. FRT and SLA are per
/// contact, since a reopened conversation waits for a first response again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// When the customer's first message of this contact came.
    pub start: Ms,
    /// A reopening (a repeat contact).
    pub reopen: bool,
    /// The first agent reply: when, who, and the routing then.
    pub first_response: Option<(Ms, Dims)>,
    /// When the SLA was decided and whether it was met (first reply in time, or breached).
    pub sla: Option<(Ms, bool, Dims)>,
    /// When an agent first took it.
    pub assigned_at: Option<Ms>,
    /// How long each agent held it during this contact, ms, in the order they first took it:
    /// per-agent handle time is the agent's own, not the whole contact's.
    #[serde(default)]
    pub held: Vec<(String, Ms)>,
}

/// A resolution of a conversation: when, the routing and agent then, and the handle time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// When.
    pub at: Ms,
    /// Channel, routing and the agent who held it.
    pub dims: Dims,
    /// Assigned until resolved, when an agent had it.
    pub handle_ms: Option<Ms>,
    /// How long each agent held it during the contact resolved, ms.
    #[serde(default)]
    pub held: Vec<(String, Ms)>,
}

/// What is known about one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// When it was opened.
    pub opened_at: Ms,
    /// Channel and routing at opening; conversation-level rates are cut by these.
    pub opened: Dims,
    /// Its channel.
    pub channel: String,
    /// Team, tier and priority now.
    pub routing: Routing,
    /// Where it is now.
    pub phase: Phase,
    /// The agent holding it now.
    pub holder: Option<String>,
    /// Since when the holder holds it.
    #[serde(default)]
    pub held_since: Option<Ms>,
    /// Since when it waits for the next specialist after an agent passed it on (a transfer, or
    /// an escalation by the agent).
    #[serde(default)]
    pub handed_off_at: Option<Ms>,
    /// Hand-offs completed: when the next agent took it, how long that took (ms), the routing
    /// and that agent (transfer speed).
    #[serde(default)]
    pub handoffs: Vec<(Ms, Ms, Dims)>,
    /// The agent who held it last (for cutting conversation-level rates by agent).
    pub last_agent: Option<String>,
    /// Ever moved to a higher tier (by an agent, a time step or a request for a human).
    pub escalated: bool,
    /// Ever transferred.
    pub transferred: bool,
    /// Contacts, oldest first.
    pub contacts: Vec<Contact>,
    /// Resolutions, oldest first.
    pub resolutions: Vec<Resolution>,
}

impl Conversation {
    /// Channel, routing now and an agent.
    pub fn dims(&self, agent: Option<&str>) -> Dims {
        Dims::new(&self.channel, &self.routing, agent)
    }

    /// Resolved without a reopen, a transfer or an escalation.
    pub fn first_contact_resolution(&self) -> bool {
        !self.resolutions.is_empty() && self.contacts.len() == 1 && !self.transferred && !self.escalated
    }
}

/// What is known about one agent: when they were logged in (online or away) and how many
/// conversations they held, as step functions of time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// `(since, logged in)` changes, oldest first.
    pub status: Vec<(Ms, bool)>,
    /// `(since, conversations held)` changes, oldest first.
    pub load: Vec<(Ms, u32)>,
}

impl Agent {
    fn logged_in(&mut self, at: Ms, on: bool) {
        if self.status.last().map(|s| s.1) != Some(on) {
            self.status.push((at, on));
        }
    }

    fn held(&self) -> u32 {
        self.load.last().map_or(0, |l| l.1)
    }

    fn add_load(&mut self, at: Ms, delta: i32) {
        let held = self.held().saturating_add_signed(delta);
        self.load.push((at, held));
    }
}

/// A survey answer (CSAT, NPS or CES): when, the conversation's channel and routing, and the
/// score on the survey's scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyAnswer {
    /// When.
    pub at: Ms,
    /// Channel, routing and the agent who resolved it.
    pub dims: Dims,
    /// CSAT 1 to 5, NPS 0 to 10, CES 1 to 7.
    pub score: u8,
}

/// The whole fold, serialisable so the daemon can persist it and continue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Event ids applied, so a re-delivered event counts once.
    seen: HashSet<Uuid>,
    /// The latest event time seen.
    pub last_at: Ms,
    /// Conversations by id.
    pub conversations: BTreeMap<Uuid, Conversation>,
    /// Agents by id.
    pub agents: BTreeMap<String, Agent>,
    /// CSAT answers, in arrival order.
    pub csat: Vec<SurveyAnswer>,
    /// NPS answers, in arrival order.
    #[serde(default)]
    pub nps: Vec<SurveyAnswer>,
    /// CES answers, in arrival order.
    #[serde(default)]
    pub ces: Vec<SurveyAnswer>,
    /// The L0 bot's answers and their outcomes, in arrival order.
    #[serde(default)]
    pub l0: Vec<L0Fact>,
    /// Cumulative counters and histograms for the exposition; never windowed.
    pub totals: Totals,
    /// Agent replies sent from each saved reply, by its name (`crate::replies`).
    #[serde(default)]
    pub saved_replies: BTreeMap<String, u64>,
}

/// Escalation causes that move a conversation to a higher tier; relaxing skills and overflowing
/// to another team keep the tier and are routing steps, not escalations.
fn is_escalation(cause: Option<&str>) -> bool {
    !matches!(cause, Some("SkillsRelaxed" | "Overflow"))
}

impl Metrics {
    /// An empty fold.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Folds a slice of events, each id once.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Metrics {
        let mut m = Metrics::new();
        for e in events {
            m.apply(e);
        }
        m
    }

    /// Applies one event; returns `false` when its id was applied before (nothing changes).
    pub fn apply(&mut self, event: &Event) -> bool {
        if !self.seen.insert(event.id) {
            return false;
        }
        let at = event.at.timestamp_millis();
        self.last_at = self.last_at.max(at);
        crate::replies::count(&mut self.saved_replies, event);
        if event.kind == EventKind::AgentStatusChanged {
            let (Some(agent), Some(status)) = (&event.agent_id, event.data.get("status").and_then(|s| s.as_str()))
            else {
                return true;
            };
            self.agents.entry(agent.clone()).or_default().logged_in(at, status != "offline");
            return true;
        }
        let Some(id) = event.conversation_id else { return true };
        if event.kind == EventKind::ConversationOpened {
            self.opened(id, at, event);
            return true;
        }
        if let Some(kind) = SurveyKind::of_event(event.kind) {
            self.survey_received(kind, id, at, event);
            return true;
        }
        let Some(c) = self.conversations.get_mut(&id) else { return true };
        let agent = event.agent_id.as_deref();
        if let Some(r) = Routing::from_data(&event.data) {
            c.routing = r;
        }
        if let Some((step, articles)) = L0Step::of_event(event) {
            let fact = L0Fact { at, dims: c.dims(None), step, articles };
            crate::l0::record(&mut self.totals.l0, &mut self.l0, fact);
        }
        match event.kind {
            EventKind::ConversationReopened => {
                let bot = c.routing.tier == "L0";
                c.phase = if bot { Phase::Bot } else { Phase::Waiting };
                c.contacts.push(Contact {
                    start: contact_start(event, at),
                    reopen: true,
                    first_response: None,
                    sla: None,
                    assigned_at: None,
                    held: Vec::new(),
                });
                self.totals.reopened(&c.dims(None));
            }
            EventKind::Offered if c.phase != Phase::Assigned => c.phase = Phase::Offered,
            EventKind::OfferDeclined | EventKind::OfferTimedOut if c.phase == Phase::Offered => {
                c.phase = Phase::Waiting
            }
            EventKind::Assigned => {
                let Some(agent) = agent else { return true };
                release(&mut self.agents, c, at);
                c.holder = Some(agent.to_string());
                c.held_since = Some(at);
                if let Some(since) = c.handed_off_at.take() {
                    let dims = c.dims(Some(agent));
                    self.totals.handoff(&dims, at - since);
                    c.handoffs.push((at, (at - since).max(0), dims));
                }
                c.last_agent = Some(agent.to_string());
                c.phase = Phase::Assigned;
                self.agents.entry(agent.to_string()).or_default().add_load(at, 1);
                if let Some(contact) = c.contacts.last_mut() {
                    contact.assigned_at.get_or_insert(at);
                }
            }
            EventKind::AgentReplied => {
                let first = event.data.get("first_response").and_then(|v| v.as_bool()) == Some(true);
                let within = event.data.get("within_sla").and_then(|v| v.as_bool());
                let dims = c.dims(agent);
                let Some(contact) = c.contacts.last_mut() else { return true };
                if first && contact.first_response.is_none() {
                    contact.first_response = Some((at, dims.clone()));
                    self.totals.first_response(&dims, at - contact.start);
                    // Without `within_sla` (an older router) the SLA of this contact stays unknown.
                    if contact.sla.is_none()
                        && let Some(met) = within
                    {
                        contact.sla = Some((at, met, dims.clone()));
                        self.totals.sla(&dims, met);
                    }
                }
            }
            EventKind::Transferred => {
                c.transferred = true;
                if c.holder.is_some() {
                    c.handed_off_at = Some(at);
                }
                release(&mut self.agents, c, at);
                c.phase = Phase::Waiting;
                self.totals.transferred(&c.dims(agent));
            }
            EventKind::Escalated => {
                let cause = event.data.get("cause").and_then(|v| v.as_str());
                if is_escalation(cause) {
                    c.escalated = true;
                    self.totals.escalated(&c.dims(None));
                }
                // An agent's or a supervisor's escalation lets the holder go (a time-based step
                // moves only waiting conversations).
                if matches!(cause, Some("Agent" | "Supervisor")) {
                    if c.holder.is_some() {
                        c.handed_off_at = Some(at);
                    }
                    release(&mut self.agents, c, at);
                }
                c.phase = Phase::Waiting;
            }
            EventKind::SlaBreached => {
                let dims = c.dims(None);
                if let Some(contact) = c.contacts.last_mut()
                    && contact.sla.is_none()
                    && contact.first_response.is_none()
                {
                    contact.sla = Some((at, false, dims.clone()));
                    self.totals.sla(&dims, false);
                }
            }
            EventKind::Resolved => {
                let holder = agent.map(str::to_string).or_else(|| c.holder.clone()).or_else(|| c.last_agent.clone());
                release(&mut self.agents, c, at);
                c.phase = Phase::Resolved;
                let assigned_at = c.contacts.last().and_then(|k| k.assigned_at);
                let handle_ms = assigned_at.map(|a| (at - a).max(0));
                let dims = c.dims(holder.as_deref());
                let held = c.contacts.last().map(|k| k.held.clone()).unwrap_or_default();
                c.resolutions.push(Resolution { at, dims: dims.clone(), handle_ms, held });
                let fcr = c.first_contact_resolution();
                self.totals.resolved(&dims, handle_ms, fcr);
                for (agent, ms) in &c.resolutions.last().expect("pushed above").held {
                    self.totals.held(agent, *ms);
                }
            }
            _ => {}
        }
        true
    }

    fn opened(&mut self, id: Uuid, at: Ms, event: &Event) {
        if self.conversations.contains_key(&id) {
            return;
        }
        let channel = event.channel.clone().unwrap_or_else(|| UNKNOWN.to_string());
        let routing = Routing::from_data(&event.data).unwrap_or_default();
        let dims = Dims::new(&channel, &routing, None);
        self.totals.opened(&dims);
        let phase = if routing.tier == "L0" { Phase::Bot } else { Phase::Waiting };
        self.conversations.insert(
            id,
            Conversation {
                opened_at: at,
                opened: dims,
                channel,
                routing,
                phase,
                holder: None,
                held_since: None,
                handed_off_at: None,
                handoffs: Vec::new(),
                last_agent: None,
                escalated: false,
                transferred: false,
                contacts: vec![Contact {
                    start: contact_start(event, at),
                    reopen: false,
                    first_response: None,
                    sla: None,
                    assigned_at: None,
                    held: Vec::new(),
                }],
                resolutions: Vec::new(),
            },
        );
    }

    fn survey_received(&mut self, kind: SurveyKind, id: Uuid, at: Ms, event: &Event) {
        let score = event.data.get("score").and_then(|s| s.as_u64()).and_then(|s| u8::try_from(s).ok());
        let Some(score) = score.filter(|s| kind.scale().contains(s)) else { return };
        let dims = match self.conversations.get(&id) {
            Some(c) => c.dims(c.last_agent.as_deref()),
            None => Dims::new(event.channel.as_deref().unwrap_or(UNKNOWN), &Routing::default(), None),
        };
        self.totals.survey(kind, &dims, score);
        let answer = SurveyAnswer { at, dims, score };
        match kind {
            SurveyKind::Csat => self.csat.push(answer),
            SurveyKind::Nps => self.nps.push(answer),
            SurveyKind::Ces => self.ces.push(answer),
        }
    }

    /// Forgets resolved conversations last resolved before `before`, survey answers, L0 steps and agent
    /// history older than it, and event ids older than it (UUIDv7 carry their time), to bound
    /// memory in a long-running daemon. The cumulative totals are kept.
    pub fn forget_before(&mut self, before: Ms) {
        self.conversations
            .retain(|_, c| c.phase != Phase::Resolved || c.resolutions.last().is_none_or(|r| r.at >= before));
        self.csat.retain(|c| c.at >= before);
        self.nps.retain(|c| c.at >= before);
        self.ces.retain(|c| c.at >= before);
        self.l0.retain(|f| f.at >= before);
        for a in self.agents.values_mut() {
            trim_steps(&mut a.status, before);
            trim_steps(&mut a.load, before);
        }
        self.seen.retain(|id| {
            id.get_timestamp()
                .map(|t| t.to_unix())
                .is_none_or(|(s, n)| s as i64 * 1000 + i64::from(n / 1_000_000) >= before)
        });
    }
}

/// Drops steps that ended before `before`, keeping the one in force then.
fn trim_steps<T>(steps: &mut Vec<(Ms, T)>, before: Ms) {
    let keep_from = steps.iter().rposition(|s| s.0 <= before).unwrap_or(0);
    steps.drain(..keep_from);
}

/// When a contact started: the customer's own time the router put in `data.contact_start` (what
/// FRT runs from), else the event's time; never after the event.
fn contact_start(event: &Event, at: Ms) -> Ms {
    event.data.get("contact_start").and_then(|v| v.as_i64()).map_or(at, |start| start.min(at))
}

/// Frees the agent holding a conversation, adding the time they held it to the contact's.
fn release(agents: &mut BTreeMap<String, Agent>, c: &mut Conversation, at: Ms) {
    let since = c.held_since.take();
    let Some(h) = c.holder.take() else { return };
    if let Some(a) = agents.get_mut(&h) {
        a.add_load(at, -1);
    }
    if let (Some(since), Some(contact)) = (since, c.contacts.last_mut()) {
        let ms = (at - since).max(0);
        match contact.held.iter_mut().find(|(agent, _)| *agent == h) {
            Some((_, total)) => *total += ms,
            None => contact.held.push((h, ms)),
        }
    }
}
