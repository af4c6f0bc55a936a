//! The simulation loop: arrivals, agents and customers as timed actions in virtual time, each
//! turned into a journal entry for the real [`Router`]; its events feed the metrics fold and the
//! agents' and customers' next actions. Ticks go in when the router's next timer is due first.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use switchboard_core::contract::metadata;
use switchboard_core::{AgentCommand, AgentStatus, CommandAction, Customer, Envelope, Event, EventKind, SurveyKind};
use switchboard_metrics::{Metrics, Ms};
use switchboard_router::{Effect, Entry, Router, RouterConfig};
use switchboard_routing::RoutingConfig;
use uuid::Uuid;

use crate::SimError;
use crate::l0::{L0Setup, Question};
use crate::roster::{Roster, roster};
use crate::traffic::Traffic;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seeds every random draw: the same seed, configuration and traffic give the same run.
    pub seed: u64,
    /// How often the backlog is sampled, seconds of virtual time.
    pub sample_every_secs: i64,
    /// Hours after the arrival period in which work in progress is finished.
    pub drain_hours: u32,
    /// Keep every event (for tests; a day of 50,000 conversations makes about half a million).
    pub keep_events: bool,
    /// The knowledge base the L0 bot answers from, if any (the configuration's `[kb]`).
    pub l0: Option<L0Setup>,
}

impl Default for Options {
    fn default() -> Self {
        Options { seed: 1, sample_every_secs: 3600, drain_hours: 12, keep_events: false, l0: None }
    }
}

/// The backlog at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// When, ms since the epoch.
    pub at: Ms,
    /// Conversations waiting for an agent.
    pub waiting: u64,
    /// Open conversations without a first response.
    pub unanswered: u64,
    /// Waiting by tier.
    pub by_tier: BTreeMap<String, u64>,
}

/// Counts of what the run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Conversations opened.
    pub conversations: u64,
    /// Journal entries applied to the router.
    pub entries: u64,
    /// Events the router produced (plus CSAT answers).
    pub events: u64,
    /// Agent commands the router refused (work on a conversation that had moved on).
    pub rejected: u64,
    /// Customers' answers to the L0 bot's question ("yes" or "no"; silence is not counted).
    #[serde(default)]
    pub l0_answers: u64,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The metrics fold over every event.
    pub metrics: Metrics,
    /// The backlog over time.
    pub timeline: Vec<Point>,
    /// Every event, when [`Options::keep_events`].
    pub events: Vec<Event>,
    /// Counts.
    pub stats: Stats,
    /// The simulated period: the arrival period's start and the end of the drain, ms.
    pub window: (Ms, Ms),
    /// The arrival period alone (start, end), ms: load and occupancy are rates over it, not over
    /// the drain after it.
    pub arrival_period: (Ms, Ms),
    /// The queue notice's estimate against the waits that followed.
    pub wait_estimate: crate::accuracy::Accuracy,
}

/// Something that happens at a time in the simulation.
#[derive(Debug, Clone)]
enum Action {
    /// A customer writes (first time, or again after a resolution).
    Arrive { customer: u32, channel: u16, topic: u16 },
    /// An agent's shift starts or ends.
    Status { agent: u32, online: bool },
    /// An agent accepts an offer.
    Accept { agent: u32, conv: Uuid },
    /// An agent's first reply.
    Reply { agent: u32, conv: Uuid, epoch: u32 },
    /// An agent is done: resolves or escalates.
    Finish { agent: u32, conv: Uuid, epoch: u32 },
    /// A customer answers the L0 bot's question.
    AnswerBot { customer: u32, channel: u16, topic: u16, text: &'static str },
}

/// A simulated conversation.
struct Conv {
    customer: u32,
    channel: u16,
    topic: u16,
    /// Bumped at each assignment, so work scheduled for an earlier one is dropped.
    epoch: u32,
    escalated: bool,
    within_sla: Option<bool>,
    /// Whether the customer answered a survey of this conversation: only the first answer
    /// counts, as in the daemon (whose channels keep one `csat_received` per conversation).
    rated: bool,
}

/// The timed actions, earliest first, ties in order of scheduling.
struct Agenda {
    heap: BinaryHeap<Reverse<(Ms, u64)>>,
    actions: HashMap<u64, Action>,
    seq: u64,
}

impl Agenda {
    fn push(&mut self, at: Ms, action: Action) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.actions.insert(self.seq, action);
    }

    fn next_at(&self) -> Option<Ms> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    fn pop(&mut self) -> Option<(Ms, Action)> {
        let Reverse((at, seq)) = self.heap.pop()?;
        Some((at, self.actions.remove(&seq)?))
    }
}

/// The mutable state of a run.
struct Run<'a> {
    traffic: &'a Traffic,
    roster: Roster,
    router: Router,
    rng: ChaCha8Rng,
    agenda: Agenda,
    metrics: Metrics,
    convs: HashMap<Uuid, Conv>,
    /// The conversation id offered to the router with each arrival, until it opens one.
    pending: HashMap<Uuid, (u32, u16, u16)>,
    sequence: u64,
    ids: u64,
    events: Vec<Event>,
    stats: Stats,
    keep_events: bool,
    /// Customers who arrived for the first time so far (they are numbered in arrival order).
    arrived: u64,
    /// Conversations told their place on arrival and not yet given to an agent: when, and the
    /// estimate told (seconds).
    told: HashMap<Uuid, (Ms, Option<f64>)>,
    /// (estimate, actual wait) in seconds of every told conversation once given to an agent.
    waits: Vec<(Option<f64>, f64)>,
    /// Questions drawn for the L0 bot when the topic has none.
    questions: &'a [Question],
    /// Draws questions and customers' answers to the bot; apart from `rng`, so that runs
    /// without a knowledge base draw exactly what they did before.
    l0_rng: ChaCha8Rng,
    /// Each customer's last question: its expected article and whether it was in Russian.
    asked: HashMap<u32, (Option<String>, String)>,
}

/// Replays `traffic` through a router with `routing` and reports what happened.
pub fn simulate(routing: &RoutingConfig, traffic: &Traffic, options: &Options) -> Result<Outcome, SimError> {
    simulate_with_progress(routing, traffic, options, &mut |_, _| {})
}

/// How often, in simulation steps, [`simulate_with_progress`] reports.
const PROGRESS_EVERY: u64 = 4096;

/// [`simulate`], calling `progress(arrived, total)` now and then with the customers who arrived
/// so far and all that will (first arrivals, not reopenings), and once at the end.
pub fn simulate_with_progress(
    routing: &RoutingConfig,
    traffic: &Traffic,
    options: &Options,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Outcome, SimError> {
    let start = traffic.start.timestamp_millis();
    let end = start + i64::from(traffic.hours) * 3_600_000;
    let horizon = end + i64::from(options.drain_hours) * 3_600_000;
    let roster = roster(routing, traffic, start, horizon)?;
    // Every waiting customer is told, whatever the channel, so that every estimate is measured.
    let mut measured = roster.routing.clone();
    measured.queue_notice.enabled = true;
    measured.queue_notice.min_position = 1;
    for ch in &traffic.channels {
        measured.queue_notice.channels.insert(ch.channel.clone(), true);
    }
    let router = Router::new(RouterConfig {
        routing: measured,
        endpoints: BTreeMap::new(),
        offer_history: 1,
        group: None,
        kb: options.l0.as_ref().map(|l| l.kb.clone()),
    })
    .map_err(SimError::Router)?;
    let mut run = Run {
        traffic,
        rng: ChaCha8Rng::seed_from_u64(options.seed),
        agenda: Agenda { heap: BinaryHeap::new(), actions: HashMap::new(), seq: 0 },
        roster,
        router,
        metrics: Metrics::new(),
        convs: HashMap::new(),
        pending: HashMap::new(),
        sequence: 0,
        ids: 0,
        events: Vec::new(),
        stats: Stats::default(),
        keep_events: options.keep_events,
        arrived: 0,
        told: HashMap::new(),
        waits: Vec::new(),
        questions: options.l0.as_ref().map_or(&[], |l| l.questions.as_slice()),
        l0_rng: ChaCha8Rng::seed_from_u64(options.seed ^ 0x4c30_4c30_4c30_4c30),
        asked: HashMap::new(),
    };
    for (at, agent, online) in run.roster.shifts.clone() {
        run.agenda.push(at, Action::Status { agent, online });
    }
    let total = u64::from(run.arrivals(start, end));
    let mut steps = 0u64;
    let step = options.sample_every_secs.max(1) * 1000;
    let mut timeline = Vec::new();
    let mut next_sample = start;
    loop {
        let action_at = run.agenda.next_at();
        let due = run.router.next_due();
        let tick_first = match (action_at, due) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(d)) => d < a,
        };
        let Some(at) = (if tick_first { due } else { action_at }) else { break };
        if at > horizon {
            break;
        }
        steps += 1;
        if steps.is_multiple_of(PROGRESS_EVERY) {
            progress(run.arrived, total);
        }
        while next_sample <= at {
            timeline.push(run.sample(next_sample));
            next_sample += step;
        }
        if tick_first {
            run.entry(Entry::Tick { at: at.max(run.router.engine().now()) });
        } else if let Some((at, action)) = run.agenda.pop() {
            run.act(at, action);
        }
    }
    while next_sample <= horizon {
        timeline.push(run.sample(next_sample));
        next_sample += step;
    }
    progress(run.arrived, total);
    Ok(Outcome {
        metrics: run.metrics,
        timeline,
        events: run.events,
        stats: run.stats,
        window: (start, horizon),
        arrival_period: (start, end),
        wait_estimate: crate::accuracy::Accuracy::from_waits(&run.waits, run.told.len() as u64),
    })
}

impl Run<'_> {
    /// Poisson arrivals per channel, hour by hour at the profile's rate; returns how many.
    fn arrivals(&mut self, start: Ms, end: Ms) -> u32 {
        let mut customer = 0u32;
        let mut all = Vec::new();
        for (ci, ch) in self.traffic.channels.iter().enumerate() {
            let profile: Vec<f64> = if ch.profile.len() == 24 { ch.profile.clone() } else { vec![1.0; 24] };
            let total: f64 = profile.iter().sum::<f64>().max(f64::MIN_POSITIVE);
            let weights: Vec<f64> = ch.topics.iter().map(|t| t.weight.max(0.0)).collect();
            let topic_total: f64 = weights.iter().sum();
            let mut hour_start = start;
            while hour_start < end {
                let hour = ((hour_start - start) / 3_600_000 % 24) as usize;
                let per_ms = ch.per_day * profile[hour] / total / 3_600_000.0;
                let hour_end = (hour_start + 3_600_000).min(end);
                let mut t = hour_start as f64;
                // Exponential gaps at this hour's rate; a gap past the hour ends it (memoryless, so
                // the next hour starts afresh at its own rate).
                if per_ms > 0.0 {
                    loop {
                        let u: f64 = self.rng.random::<f64>();
                        t += -(1.0 - u).ln() / per_ms;
                        if t >= hour_end as f64 {
                            break;
                        }
                        let mut pick = self.rng.random::<f64>() * topic_total;
                        let topic = weights.iter().position(|w| {
                            pick -= w;
                            pick < 0.0
                        });
                        all.push((t.round() as Ms, ci as u16, topic.unwrap_or(0) as u16));
                    }
                }
                hour_start = hour_end;
            }
        }
        all.sort_by_key(|a| a.0);
        for (at, channel, topic) in all {
            customer += 1;
            self.agenda.push(at, Action::Arrive { customer, channel, topic });
        }
        customer
    }

    fn sample(&self, at: Ms) -> Point {
        let b = switchboard_metrics::backlog(&self.metrics, at);
        Point { at, waiting: b.waiting, unanswered: b.unanswered.iter().map(|u| u.1).sum(), by_tier: b.by_tier }
    }

    fn next_id(&mut self, at: Ms) -> Uuid {
        self.ids += 1;
        let mut bits = [0u8; 10];
        bits[..8].copy_from_slice(&self.ids.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(at.max(0) as u64, &bits).into_uuid()
    }

    fn act(&mut self, at: Ms, action: Action) {
        match action {
            Action::Arrive { customer, channel, topic } => {
                self.arrived = self.arrived.max(u64::from(customer));
                let text = match self.question(channel, topic) {
                    Some(q) => {
                        self.asked.insert(customer, (q.expect.clone(), q.text.clone()));
                        q.text
                    }
                    None => self.traffic.channels[channel as usize].topics[topic as usize].text.clone(),
                };
                self.customer_writes(at, customer, channel, topic, text);
            }
            Action::AnswerBot { customer, channel, topic, text } => {
                self.stats.l0_answers += 1;
                self.customer_writes(at, customer, channel, topic, text.to_string());
            }
            Action::Status { agent, online } => {
                let status = if online { AgentStatus::Online } else { AgentStatus::Offline };
                self.command(at, agent, None, CommandAction::SetStatus { status });
            }
            Action::Accept { agent, conv } => self.command(at, agent, Some(conv), CommandAction::Accept),
            Action::Reply { agent, conv, epoch } => {
                if self.convs.get(&conv).is_some_and(|c| c.epoch == epoch) {
                    self.command(at, agent, Some(conv), CommandAction::reply("on it"));
                }
            }
            Action::Finish { agent, conv, epoch } => {
                let Some(c) = self.convs.get_mut(&conv).filter(|c| c.epoch == epoch) else { return };
                let p = self.traffic.channels[c.channel as usize].topics[c.topic as usize].escalate_probability;
                let action = if !c.escalated && p > 0.0 && self.rng.random::<f64>() < p {
                    c.escalated = true;
                    CommandAction::Escalate { tier: None, note: Some("needs a specialist".into()) }
                } else {
                    CommandAction::Resolve
                };
                self.command(at, agent, Some(conv), action);
            }
        }
    }

    /// A customer's message on their thread, with what the knowledge base answers to it (as the
    /// leader journals it).
    fn customer_writes(&mut self, at: Ms, customer: u32, channel: u16, topic: u16, text: String) {
        let ch = &self.traffic.channels[channel as usize];
        let t = &ch.topics[topic as usize];
        let received_at = chrono::DateTime::from_timestamp_millis(at).unwrap_or_default();
        let (channel_name, metadata) = (ch.channel.clone(), t.metadata.clone());
        let envelope = Envelope {
            id: self.next_id(at),
            channel: channel_name,
            provider_message_id: format!("m-{}", self.ids),
            received_at,
            customer: Customer { id: format!("c-{customer}"), name: None, email: None, phone: None, language: None },
            thread_key: format!("t-{customer}"),
            text,
            subject: None,
            html: None,
            attachments: Vec::new(),
            metadata,
            raw_ref: None,
        };
        let kb = self.router.kb_lookup(&envelope);
        let new_conversation = self.next_id(at);
        self.pending.insert(new_conversation, (customer, channel, topic));
        self.entry(Entry::Inbound { at, envelope: Box::new(envelope), new_conversation, kb, replies: Vec::new() });
        self.pending.remove(&new_conversation);
    }

    /// The question a customer of `topic` asks: one of the topic's, else one of the labelled
    /// questions, else none (the topic's text is the message).
    fn question(&mut self, channel: u16, topic: u16) -> Option<Question> {
        let own = &self.traffic.channels[channel as usize].topics[topic as usize].questions;
        let from = if own.is_empty() { self.questions } else { own.as_slice() };
        if from.is_empty() {
            return None;
        }
        Some(from[self.l0_rng.random_range(0..from.len())].clone())
    }

    /// The L0 bot answered: the customer says yes, no or nothing, after a while.
    fn bot_answered(&mut self, at: Ms, conv: Uuid, e: &Event) {
        let Some(c) = self.convs.get(&conv) else { return };
        let (customer, channel, topic) = (c.customer, c.channel, c.topic);
        let top = e.data.get("kb_articles").and_then(|a| a.get(0)).and_then(|a| a.as_str());
        let (expect, question) = self.asked.get(&customer).cloned().unwrap_or_default();
        let b = &self.traffic.customer;
        let (silent, yes, after) = (b.l0_silent_share, b.l0_yes_probability, b.l0_answer_after.clone());
        let rng = &mut self.l0_rng;
        let answer = crate::l0::answer(expect.as_deref(), top, silent, yes, &mut || rng.random::<f64>());
        if let Some(text) = crate::l0::words(answer, &question) {
            let delay = after.sample_ms(&mut self.l0_rng);
            self.agenda.push(at + delay, Action::AnswerBot { customer, channel, topic, text });
        }
    }

    fn command(&mut self, at: Ms, agent: u32, conversation: Option<Uuid>, action: CommandAction) {
        let command = AgentCommand {
            id: self.next_id(at),
            agent_id: self.roster.ids[agent as usize].clone(),
            conversation_id: conversation,
            issued_at: chrono::DateTime::from_timestamp_millis(at).unwrap_or_default(),
            action,
        };
        self.entry(Entry::Command { at, command: Box::new(command), stream_sequence: None });
    }

    fn entry(&mut self, entry: Entry) {
        self.sequence += 1;
        self.stats.entries += 1;
        let effects = self.router.apply(self.sequence, &entry);
        for effect in effects {
            match effect {
                Effect::Event(e) => self.event(e),
                Effect::CommandResult { rejected: Some(_), .. } => self.stats.rejected += 1,
                Effect::Outbound(m) if m.metadata.contains_key(metadata::QUEUE_POSITION) => {
                    // The first notice of a wait is the arrival's; later ones update it.
                    let estimate = m.metadata.get(metadata::QUEUE_ESTIMATE_SECS).and_then(|s| s.parse::<f64>().ok());
                    self.told.entry(m.conversation_id).or_insert((m.created_at.timestamp_millis(), estimate));
                }
                _ => {}
            }
        }
    }

    /// Feeds an event to the metrics and schedules what agents and customers do about it.
    fn event(&mut self, e: Event) {
        let at = e.at.timestamp_millis();
        self.metrics.apply(&e);
        self.stats.events += 1;
        if self.keep_events {
            self.events.push(e.clone());
        }
        let conv = e.conversation_id.unwrap_or_default();
        let agent = e.agent_id.as_deref().and_then(|a| self.roster.index.get(a).copied());
        match (e.kind, agent) {
            (EventKind::ConversationOpened, _) => {
                if let Some((customer, channel, topic)) = self.pending.get(&conv).copied() {
                    self.stats.conversations += 1;
                    let c =
                        Conv { customer, channel, topic, epoch: 0, escalated: false, within_sla: None, rated: false };
                    self.convs.insert(conv, c);
                }
            }
            (EventKind::ConversationReopened, _) => {
                if let Some(c) = self.convs.get_mut(&conv) {
                    c.within_sla = None;
                }
            }
            (EventKind::Offered, Some(agent)) => {
                let delay = self.traffic.agent.accept.sample_ms(&mut self.rng);
                self.agenda.push(at + delay, Action::Accept { agent, conv });
            }
            (EventKind::Assigned, Some(agent)) => {
                if let Some((since, estimate)) = self.told.remove(&conv) {
                    self.waits.push((estimate, (at - since) as f64 / 1000.0));
                }
                self.assigned(at, agent, conv)
            }
            (EventKind::AgentReplied, _) => {
                if let (Some(c), Some(w)) = (self.convs.get_mut(&conv), e.data.get("within_sla")) {
                    c.within_sla = w.as_bool();
                }
            }
            (EventKind::AutoReplied, _) if e.data.get("reason").and_then(|r| r.as_str()) == Some("kb") => {
                self.bot_answered(at, conv, &e)
            }
            (EventKind::Resolved, _) => {
                // The survey the router asks (the team's); none asked, none answered.
                let survey = e.data.get("survey").and_then(|v| v.as_str()).and_then(SurveyKind::parse);
                self.resolved(at, conv, e.channel, survey)
            }
            _ => {}
        }
    }

    fn assigned(&mut self, at: Ms, agent: u32, conv: Uuid) {
        let Some(c) = self.convs.get_mut(&conv) else { return };
        c.epoch += 1;
        let topic = &self.traffic.channels[c.channel as usize].topics[c.topic as usize];
        let behaviour = &self.traffic.agent;
        let skilled = topic.skill.as_ref().is_none_or(|s| {
            self.roster.skills[agent as usize].get(s).is_some_and(|level| *level >= behaviour.skill_level)
        });
        let factor = if skilled { 1.0 } else { behaviour.unskilled_factor.max(0.0) };
        let reply = (behaviour.first_reply.sample_ms(&mut self.rng) as f64 * factor) as Ms;
        let handle = topic.handle.as_ref().unwrap_or(&behaviour.handle).sample_ms(&mut self.rng);
        let handle = ((handle as f64 * factor) as Ms).max(reply + 1000);
        let epoch = c.epoch;
        self.agenda.push(at + reply, Action::Reply { agent, conv, epoch });
        self.agenda.push(at + handle, Action::Finish { agent, conv, epoch });
    }

    /// The customer may answer the survey the router asked (on the conversation's channel) and
    /// may write again.
    fn resolved(&mut self, at: Ms, conv: Uuid, channel: Option<String>, survey: Option<SurveyKind>) {
        let Some(c) = self.convs.get(&conv) else { return };
        let (customer, ch, topic, within_sla, rated) = (c.customer, c.channel, c.topic, c.within_sla, c.rated);
        let behaviour = &self.traffic.customer;
        let rate = match survey {
            Some(SurveyKind::Csat) => behaviour.csat_response_rate,
            Some(SurveyKind::Nps) => behaviour.nps_response_rate,
            Some(SurveyKind::Ces) => behaviour.ces_response_rate,
            None => 0.0,
        };
        if let Some(kind) = survey
            && !rated
            && rate > 0.0
            && self.rng.random::<f64>() < rate
        {
            if let Some(c) = self.convs.get_mut(&conv) {
                c.rated = true;
            }
            let score = self.survey_score(kind, within_sla == Some(true));
            let answered = at + 300_000;
            let answer = Event {
                id: self.next_id(answered),
                at: chrono::DateTime::from_timestamp_millis(answered).unwrap_or_default(),
                kind: kind.event_kind(),
                conversation_id: Some(conv),
                agent_id: None,
                channel,
                data: serde_json::json!({ "score": score }).as_object().cloned().unwrap_or_default(),
            };
            self.event(answer);
        }
        let behaviour = &self.traffic.customer;
        if behaviour.reopen_probability > 0.0 && self.rng.random::<f64>() < behaviour.reopen_probability {
            let after = behaviour.reopen_after.sample_ms(&mut self.rng);
            self.agenda.push(at + after, Action::Arrive { customer, channel: ch, topic });
        }
    }
}

impl Run<'_> {
    /// A customer's score on `kind`'s scale; a first response within the SLA makes a good one
    /// likelier, as the behaviour says.
    fn survey_score(&mut self, kind: SurveyKind, in_sla: bool) -> u8 {
        let b = &self.traffic.customer;
        match kind {
            SurveyKind::Csat => {
                let satisfied = if in_sla { b.csat_satisfied_in_sla } else { b.csat_satisfied_late };
                if self.rng.random::<f64>() < satisfied {
                    self.rng.random_range(4..=5)
                } else {
                    self.rng.random_range(1..=3)
                }
            }
            SurveyKind::Nps => {
                let (promoter, detractor) = if in_sla {
                    (b.nps_promoter_in_sla, b.nps_detractor_in_sla)
                } else {
                    (b.nps_promoter_late, b.nps_detractor_late)
                };
                let draw = self.rng.random::<f64>();
                if draw < promoter {
                    self.rng.random_range(9..=10)
                } else if draw < promoter + detractor {
                    self.rng.random_range(0..=6)
                } else {
                    self.rng.random_range(7..=8)
                }
            }
            SurveyKind::Ces => {
                let easy = if in_sla { b.ces_easy_in_sla } else { b.ces_easy_late };
                if self.rng.random::<f64>() < easy {
                    self.rng.random_range(5..=7)
                } else {
                    self.rng.random_range(1..=4)
                }
            }
        }
    }
}
