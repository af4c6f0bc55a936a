//! The engine: inputs in, decisions out, time passed in explicitly.

use std::collections::{BTreeSet, HashMap};

use smallvec::SmallVec;
use switchboard_core::{AgentStatus, Priority, Tier};

use crate::compiled::{Compiled, RoutingConfigError, next_tier, priority_class, tier_bit};
use crate::config::RoutingConfig;
use crate::model::{AutoReplyReason, ConversationId, Decision, EscalationCause, Input, MessageInfo, Ms};
use crate::roster::build_agent;
use crate::rules::RuleInput;
use crate::state::{
    AgentIx, ClassKey, Conv, ConvIx, ConvState, CustomerRec, State, TIERS, Timer, intern_kind, queue_key, set_at,
};

/// How a (re)opened conversation may meet the L0 bot.
#[derive(Clone, Copy, PartialEq, Eq)]
enum L0Entry {
    /// A new conversation: by the rules, or because its team is `kb_first`.
    New,
    /// A reopened one: only when the rules send it to L0.
    ByRules,
    /// A reopened one the bot had: a person answers this time.
    Never,
}

/// The routing engine: deterministic, no I/O, no clock. The same inputs give the same decisions.
pub struct Engine {
    pub(crate) cfg: Compiled,
    pub(crate) st: State,
    /// Agent index by id. Keys inline (ids up to 24 bytes), so that a lookup reads the table
    /// and not also a separate allocation per key.
    pub(crate) agent_ix: rustc_hash::FxHashMap<compact_str::CompactString, AgentIx>,
    pub(crate) kind_ix: HashMap<String, u16>,
    /// Queue class by requirements (derived from the state; rebuilt on restore).
    pub(crate) class_ix: HashMap<ClassKey, u32>,
    /// Queue classes by team index (derived from the state; rebuilt on restore).
    pub(crate) team_classes: Vec<Vec<u32>>,
    /// The time of the input being handled. Timers that fell due before it fire at their own
    /// time, but an offer made while catching up is timed from this, so that it does not lapse
    /// in the same catch-up (after a clock jump or a pause of the router).
    pub(crate) input_at: Ms,
}

impl Engine {
    /// Compiles the configuration; an invalid one is refused naming the key and the reason.
    pub fn new(config: &RoutingConfig) -> Result<Engine, RoutingConfigError> {
        let cfg = Compiled::new(config)?;
        let mut st = State { available: vec![BTreeSet::new(); cfg.teams.len() * TIERS], ..State::default() };
        let team_classes = vec![Vec::new(); cfg.teams.len()];
        let mut engine = Engine {
            cfg,
            st: State::default(),
            agent_ix: Default::default(),
            kind_ix: HashMap::new(),
            class_ix: HashMap::new(),
            team_classes,
            input_at: 0,
        };
        for (i, a) in config.agents.iter().enumerate() {
            let agent = build_agent(&engine.cfg, &mut st, &mut engine.kind_ix, a)
                .map_err(|e| RoutingConfigError { key: format!("agents[{i}].{}", e.key), reason: e.reason })?;
            engine.agent_ix.insert(a.id.as_str().into(), st.agents.len() as AgentIx);
            st.agents.push(agent);
        }
        engine.st = st;
        for a in 0..engine.st.agents.len() as AgentIx {
            engine.index_agent(a, true);
        }
        Ok(engine)
    }

    /// Handles one input and returns the decisions it leads to, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Decision> {
        let mut out = Vec::new();
        self.handle_into(input, &mut out);
        out
    }

    /// Like [`Engine::handle`], appending to `out` (no allocation on the hot path).
    pub fn handle_into(&mut self, input: Input, out: &mut Vec<Decision>) {
        let at = input.at();
        self.input_at = at;
        self.advance(at, out);
        match input {
            Input::CustomerMessage { customer, new_id, message, written_at, .. } => {
                let now = self.st.now;
                let since = written_at.map_or(now, |w| w.clamp(now - self.cfg.customer_clock_ms, now));
                self.customer_message(customer, new_id, message, since, out)
            }
            Input::AgentStatus { agent, status, .. } => match self.agent_ix.get(agent.as_str()).copied() {
                Some(a) => self.set_status(a, status, None, out),
                None => out.push(unknown_agent(agent, None)),
            },
            Input::AgentCapacity { agent, capacity, max_total, .. } => match self.agent_ix.get(agent.as_str()).copied()
            {
                Some(a) => self.set_capacity(a, capacity, max_total, out),
                None => out.push(unknown_agent(agent, None)),
            },
            Input::Accept { agent, conversation, .. } => self.accept(agent, conversation, out),
            Input::Decline { agent, conversation, .. } => self.decline(agent, conversation, out),
            Input::AgentReplied { agent, conversation, .. } => self.replied(agent, conversation, out),
            Input::Transfer { agent, conversation, to_agent, to_team, note, .. } => {
                self.transfer(agent, conversation, to_agent, to_team, note, out)
            }
            Input::Escalate { agent, conversation, tier, note, .. } => {
                self.escalate(agent, conversation, tier, note, out)
            }
            Input::Resolve { agent, conversation, .. } => self.resolve(agent, conversation, out),
            Input::Supervise { supervisor, conversation, op, note, .. } => {
                self.supervise(supervisor, conversation, op, note, out)
            }
            Input::DefineAgent { agent, keep_status, .. } => self.define_agent(*agent, keep_status, out),
            Input::Tick { .. } => {}
        }
    }

    /// The current time as the engine knows it (the latest input's).
    pub fn now(&self) -> Ms {
        self.st.now
    }

    /// Fires every timer due at or before `at`, each at its own time.
    pub(crate) fn advance(&mut self, at: Ms, out: &mut Vec<Decision>) {
        while let Some((due, timer)) = self.st.timers.pop_due(at) {
            self.st.now = self.st.now.max(due);
            self.fire(timer, out);
        }
        self.st.now = self.st.now.max(at);
    }

    pub(crate) fn schedule(&mut self, due: Ms, timer: Timer) {
        self.st.seq += 1;
        self.st.timers.push(due, self.st.seq, timer);
    }

    /// Like [`Engine::schedule`] for a timer set a fixed delay from now (it never comes due
    /// before one scheduled earlier the same way).
    pub(crate) fn schedule_monotonic(&mut self, due: Ms, timer: Timer) {
        self.st.seq += 1;
        self.st.timers.push_monotonic(due, self.st.seq, timer);
    }

    fn fire(&mut self, timer: Timer, out: &mut Vec<Decision>) {
        match timer {
            Timer::OfferTimeout { conv, offer } => {
                let Some(c) = self.conv(conv) else { return };
                let ConvState::Offered { agent, offer: current, .. } = c.state else { return };
                if current != offer {
                    return;
                }
                out.push(Decision::OfferTimedOut {
                    conversation: c.id,
                    agent: self.st.agents[agent as usize].id.as_str().to_owned(),
                });
                self.take_back(conv, agent, true);
                let team = self.conv(conv).map(|c| c.team).unwrap_or(0);
                let max_missed = self.cfg.teams[team as usize].max_missed.max(1);
                let a = &mut self.st.agents[agent as usize];
                a.missed += 1;
                if a.missed >= max_missed && a.status == AgentStatus::Online {
                    let reason = format!("{} offers in a row timed out", a.missed);
                    self.set_status(agent, AgentStatus::Away, Some(reason), out);
                }
                self.route(conv, out);
                self.pull(agent, out);
            }
            Timer::Sla { conv } => {
                let Some(c) = self.conv_mut(conv) else { return };
                if c.first_response.is_none() && !c.sla_breached && !matches!(c.state, ConvState::Resolved { .. }) {
                    c.sla_breached = true;
                    out.push(Decision::SlaBreached { conversation: c.id });
                }
            }
            Timer::Escalation { conv, epoch } => self.escalation_step(conv, epoch, out),
            Timer::StickyEnd { conv, epoch } => {
                let Some(c) = self.conv(conv) else { return };
                if c.epoch != epoch || c.state != ConvState::Queued {
                    return;
                }
                self.dequeue(conv);
                self.conv_mut(conv).expect("live").sticky = None;
                self.place(conv);
                self.route(conv, out);
            }
            Timer::L0Timeout { conv, epoch } => {
                // Still with the bot, the customer silent since its answer: resolved at L0.
                if let Some(c) = self.conv(conv).filter(|c| c.state == ConvState::Bot && c.epoch == epoch) {
                    self.resolve(String::new(), c.id, out);
                }
            }
            Timer::Forget { conv, resolved_at } => {
                if self.conv(conv).is_some_and(|c| c.state == (ConvState::Resolved { at: resolved_at })) {
                    self.forget_resolved(conv);
                }
            }
        }
    }

    pub(crate) fn conv(&self, ix: ConvIx) -> Option<&Conv> {
        self.st.convs.get(ix as usize).and_then(Option::as_ref)
    }

    pub(crate) fn conv_mut(&mut self, ix: ConvIx) -> Option<&mut Conv> {
        self.st.convs.get_mut(ix as usize).and_then(Option::as_mut)
    }

    fn customer_message(
        &mut self,
        customer: String,
        new_id: ConversationId,
        m: MessageInfo,
        since: Ms,
        out: &mut Vec<Decision>,
    ) {
        let now = self.st.now;
        let cust = match self.st.customers.get(&customer) {
            Some(&i) => i,
            None => {
                self.st.customer_recs.push(CustomerRec::default());
                let i = (self.st.customer_recs.len() - 1) as u32;
                self.st.customers.insert(customer.clone(), i);
                i
            }
        };
        self.st.customer_recs[cust as usize].last_seen = now;
        let mut rec = self.st.customer_recs[cust as usize].clone();
        // The customer's agent is the one of their latest conversation while it is remembered
        // (kept there, so an assignment does not touch the customer record), else the stored one.
        if let Some(c) = rec.last_conv.and_then(|ix| self.conv(ix))
            && c.previous_agent.is_some()
        {
            rec.last_agent = c.previous_agent;
        }
        if let Some(ix) = rec.last_conv
            && let Some(c) = self.conv(ix)
        {
            let id = c.id;
            match c.state.clone() {
                ConvState::Assigned { agent } => {
                    out.push(Decision::DeliverToAgent {
                        conversation: id,
                        agent: self.st.agents[agent as usize].id.as_str().to_owned(),
                    });
                    return;
                }
                // The agent holding the offer sees the conversation grow while deciding.
                ConvState::Offered { agent, .. } => {
                    out.push(Decision::DeliverToAgent {
                        conversation: id,
                        agent: self.st.agents[agent as usize].id.as_str().to_owned(),
                    });
                    return;
                }
                ConvState::Queued => return,
                ConvState::Bot => {
                    // A second message at L0 (or a request for a human) goes to a person.
                    self.hand_off(ix, out);
                    return;
                }
                ConvState::Resolved { at } if now - at <= self.cfg.reopen_ms => {
                    out.push(Decision::Reopened { conversation: id });
                    let c = self.conv_mut(ix).expect("checked above");
                    // Back after the bot's answer: this time a person answers.
                    let after_l0 = c.tier == Tier::L0;
                    c.repeat = true;
                    c.opened_at = since;
                    c.first_response = None;
                    c.sla_breached = false;
                    c.declined = Box::default();
                    self.classify(ix, &m, if after_l0 { L0Entry::Never } else { L0Entry::ByRules }, out);
                    return;
                }
                ConvState::Resolved { .. } => {}
            }
        }
        // A new conversation; it remembers the customer's last agent.
        let kind = intern_kind(&mut self.st.kinds, &mut self.kind_ix, &m.channel);
        self.st.seq += 1;
        let conv = Conv {
            id: new_id,
            customer,
            cust,
            kind,
            team: self.cfg.default_team,
            tier: Tier::L1,
            tiers: tier_bit(Tier::L1),
            priority: Priority::P3,
            skills: Vec::new(),
            state: ConvState::Queued,
            opened_at: since,
            waiting_since: now,
            queue_key: 0,
            class: 0,
            live: crate::state::Live::Yes,
            seq: self.st.seq,
            epoch: 0,
            sla_deadline: now,
            first_response: None,
            sla_breached: false,
            previous_agent: rec.last_agent,
            sticky: None,
            declined: Box::default(),
            steps_taken: 0,
            repeat: rec.last_agent.is_some(),
            matched_rules: Vec::new(),
            held_since: now,
        };
        let ix = match self.st.free.pop() {
            Some(ix) => {
                self.st.convs[ix as usize] = Some(conv);
                ix
            }
            None => {
                self.st.convs.push(Some(conv));
                (self.st.convs.len() - 1) as ConvIx
            }
        };
        self.st.conv_ix.insert(new_id, ix);
        self.st.customer_recs[cust as usize] =
            CustomerRec { last_conv: Some(ix), last_agent: rec.last_agent, last_seen: now };
        out.push(Decision::Opened { conversation: new_id, repeat: rec.last_agent.is_some() });
        self.classify(ix, &m, L0Entry::New, out);
    }

    /// Runs the rules over a (re)opened conversation and queues it, or lets the L0 bot answer.
    fn classify(&mut self, ix: ConvIx, m: &MessageInfo, entry: L0Entry, out: &mut Vec<Decision>) {
        let now = self.st.now;
        let (id, repeat, previous, waited) = {
            let c = self.conv(ix).expect("caller holds a live conversation");
            (c.id, c.repeat, c.previous_agent, now - c.opened_at)
        };
        let previous_id = previous.map(|a| self.st.agents[a as usize].id.as_str().to_owned());
        let outcome = self.cfg.rules.evaluate(&RuleInput {
            channel: &m.channel,
            text: &m.text,
            subject: m.subject.as_deref(),
            customer_id: &self.conv(ix).expect("live").customer,
            customer_tags: &m.tags,
            customer_language: m.language.as_deref(),
            vip: m.vip,
            metadata: &m.metadata,
            now: crate::time::to_utc(now),
            repeat_contact: repeat,
            previous_agent: previous_id.as_deref(),
            wait_secs: (waited / 1000).max(0) as u64,
        });
        let team =
            outcome.team.as_ref().and_then(|t| self.cfg.team_ix.get(t).copied()).unwrap_or(self.cfg.default_team);
        // The bot takes a conversation the rules send to L0, or a new one of a `kb_first` team
        // the rules leave at L1 or below, unless the customer asks for a human. It answers from
        // the knowledge base when it has an answer for the team, or with the rule's auto-reply;
        // with neither it has nothing to say, and a person takes the conversation at once.
        let team_cfg = &self.cfg.teams[team as usize];
        let kb_first = entry == L0Entry::New && team_cfg.kb_first && outcome.tier.is_none_or(|t| t <= Tier::L1);
        let wants_l0 = entry != L0Entry::Never
            && (outcome.tier == Some(Tier::L0) || kb_first)
            && !self.cfg.asks_for_human(&m.text);
        let kb_answers = wants_l0 && m.kb_answers.iter().any(|t| t.as_deref().is_none_or(|t| t == team_cfg.name));
        let at_l0 = kb_answers || (wants_l0 && outcome.tier == Some(Tier::L0) && outcome.auto_reply.is_some());
        let tier = match outcome.tier.unwrap_or(Tier::L1) {
            _ if at_l0 => Tier::L0,
            Tier::L0 => Tier::L1,
            t => t,
        };
        let skills: Vec<(u16, u8)> = outcome
            .skills
            .iter()
            .filter_map(|(name, level)| self.cfg.skill_ix.get(name).map(|s| (*s, *level)))
            .collect();
        let priority = outcome.priority.unwrap_or(Priority::P3);
        {
            let c = self.conv_mut(ix).expect("live");
            c.team = team;
            c.tier = tier;
            c.tiers = tier_bit(tier);
            c.priority = priority;
            c.skills = skills;
            c.matched_rules = outcome.matched.clone();
            c.steps_taken = 0;
        }
        if let Some(text) = outcome.auto_reply {
            out.push(Decision::AutoReply { conversation: id, text, reason: AutoReplyReason::Rule });
        }
        if at_l0 {
            let epoch = {
                let c = self.conv_mut(ix).expect("live");
                c.state = ConvState::Bot;
                c.epoch += 1;
                c.epoch
            };
            self.schedule(now + self.cfg.l0_timeout_ms, Timer::L0Timeout { conv: ix, epoch });
            if kb_answers {
                out.push(Decision::KbAnswer { conversation: id, team: self.cfg.teams[team as usize].name.clone() });
            }
            return;
        }
        // A (re)opened contact's SLA runs from when the customer wrote.
        let since = self.conv(ix).expect("live").opened_at;
        self.start_waiting(ix, since, out);
    }

    /// Starts the SLA clock (from `since`) and queues a conversation for humans.
    fn start_waiting(&mut self, ix: ConvIx, since: Ms, out: &mut Vec<Decision>) {
        self.start_clock(ix, since, out);
        // Sticky: a returning customer waits a little for the agent they had, if that agent works today.
        let prev = self.conv(ix).expect("live").previous_agent;
        match prev {
            Some(p) if self.st.agents[p as usize].status != AgentStatus::Offline => self.enqueue_reserved(ix, p, out),
            _ => self.enqueue(ix, out),
        }
        self.route(ix, out);
    }

    /// Starts a conversation's wait for humans: its SLA clock (from `since`) and, out of its
    /// team's hours, the notice saying when it opens. The caller queues it.
    pub(crate) fn start_clock(&mut self, ix: ConvIx, since: Ms, out: &mut Vec<Decision>) {
        let now = self.st.now;
        let (team, class) = {
            let c = self.conv(ix).expect("live");
            (c.team, priority_class(c.priority))
        };
        let sla = since + self.cfg.teams[team as usize].sla_ms[class];
        {
            let c = self.conv_mut(ix).expect("live");
            c.waiting_since = now;
            c.sla_deadline = sla;
        }
        // Breached only once the deadline has passed: a first response in the deadline's own
        // millisecond is within it (`within_sla` is `now <= deadline`), and the reports agree.
        self.schedule(sla + 1, Timer::Sla { conv: ix });
        self.out_of_hours_notice(ix, out);
    }

    fn out_of_hours_notice(&mut self, ix: ConvIx, out: &mut Vec<Decision>) {
        let now = crate::time::to_utc(self.st.now);
        let c = self.conv(ix).expect("live");
        let team = &self.cfg.teams[c.team as usize];
        let (Some(hours), Some(text)) = (&team.hours, &team.out_of_hours_reply) else { return };
        if hours.is_open(now) {
            return;
        }
        let next = hours.next_open(now).map(|t| t.to_rfc3339()).unwrap_or_else(|| "soon".into());
        out.push(Decision::AutoReply {
            conversation: c.id,
            text: text.replace("{next_open}", &next),
            reason: AutoReplyReason::OutOfHours,
        });
    }

    /// Puts a conversation in its team's queue (keeping how long it has waited) and schedules
    /// its next escalation step.
    pub(crate) fn enqueue(&mut self, ix: ConvIx, out: &mut Vec<Decision>) {
        let aging = self.cfg.aging_ms;
        let (team, epoch, next_step_at, id, tier, priority, sla) = {
            let c = self.conv_mut(ix).expect("live");
            c.state = ConvState::Queued;
            c.epoch += 1;
            c.queue_key = queue_key(c.priority, c.waiting_since, aging);
            (c.team, c.epoch, c.steps_taken, c.id, c.tier, c.priority, c.sla_deadline)
        };
        self.place(ix);
        let steps = &self.cfg.teams[team as usize].steps;
        if let Some((after, _)) = steps.get(next_step_at as usize) {
            let waiting_since = self.conv(ix).expect("live").waiting_since;
            self.schedule(waiting_since + after, Timer::Escalation { conv: ix, epoch });
        }
        out.push(Decision::Queued {
            conversation: id,
            team: self.cfg.teams[team as usize].name.clone(),
            tier,
            priority,
            sla_deadline: sla,
        });
    }

    /// Queues a conversation reserved for agent `a` for the team's sticky wait; after it, the
    /// whole team may take it.
    pub(crate) fn enqueue_reserved(&mut self, ix: ConvIx, a: AgentIx, out: &mut Vec<Decision>) {
        let team = self.conv(ix).expect("live").team;
        let until = self.st.now + self.cfg.teams[team as usize].sticky_wait_ms;
        self.conv_mut(ix).expect("live").sticky = Some((a, until));
        self.enqueue(ix, out);
        let epoch = self.conv(ix).expect("live").epoch;
        self.schedule(until, Timer::StickyEnd { conv: ix, epoch });
    }

    fn hand_off(&mut self, ix: ConvIx, out: &mut Vec<Decision>) {
        let (id, team) = {
            let c = self.conv_mut(ix).expect("live");
            c.tier = Tier::L1;
            c.tiers |= tier_bit(Tier::L1);
            (c.id, c.team)
        };
        out.push(Decision::Escalated {
            conversation: id,
            cause: EscalationCause::HumanRequested,
            tier: Tier::L1,
            team: self.cfg.teams[team as usize].name.clone(),
            note: None,
        });
        self.start_waiting(ix, self.st.now, out);
    }

    fn escalation_step(&mut self, ix: ConvIx, epoch: u32, out: &mut Vec<Decision>) {
        let Some(c) = self.conv(ix) else { return };
        if c.epoch != epoch || c.state != ConvState::Queued {
            return;
        }
        let team = c.team as usize;
        let Some((_, step)) = self.cfg.teams[team].steps.get(c.steps_taken as usize).cloned() else { return };
        self.dequeue(ix);
        let cause = {
            let c = self.conv_mut(ix).expect("live");
            c.steps_taken += 1;
            match step {
                crate::compiled::Step::Relax(by) => {
                    for (_, level) in &mut c.skills {
                        *level = level.saturating_sub(by).max(1);
                    }
                    EscalationCause::SkillsRelaxed
                }
                crate::compiled::Step::AddTier => {
                    let top = (0..5u8).rev().find(|b| c.tiers & (1 << b) != 0).unwrap_or(1);
                    if let Some(next) = next_tier(tier_from(top)) {
                        c.tiers |= tier_bit(next);
                        c.tier = next;
                    }
                    EscalationCause::TierAdded
                }
                crate::compiled::Step::Overflow(to) => {
                    c.team = to;
                    // Steps are the new team's from now on, counted afresh.
                    c.steps_taken = 0;
                    EscalationCause::Overflow
                }
            }
        };
        let c = self.conv(ix).expect("live");
        out.push(Decision::Escalated {
            conversation: c.id,
            cause,
            tier: c.tier,
            team: self.cfg.teams[c.team as usize].name.clone(),
            note: None,
        });
        self.enqueue(ix, out);
        self.route(ix, out);
    }

    pub(crate) fn set_status(
        &mut self,
        a: AgentIx,
        status: AgentStatus,
        reason: Option<String>,
        out: &mut Vec<Decision>,
    ) {
        self.index_agent(a, false);
        let agent = &mut self.st.agents[a as usize];
        let was = agent.status;
        agent.status = status;
        if status == AgentStatus::Online {
            agent.missed = 0;
        }
        let id = agent.id.as_str().to_owned();
        self.index_agent(a, true);
        if let Some(reason) = reason {
            out.push(Decision::AgentStatusChanged { agent: id, status, reason });
        }
        if status != AgentStatus::Online && was == AgentStatus::Online {
            // Offers to someone who stepped away go to somebody else at once.
            let offered: Vec<ConvIx> = (0..self.st.convs.len() as ConvIx)
                .filter(|ix| matches!(self.conv(*ix).map(|c| &c.state), Some(ConvState::Offered { agent, .. }) if *agent == a))
                .collect();
            for ix in offered {
                let id = self.conv(ix).expect("live").id;
                out.push(Decision::OfferWithdrawn {
                    conversation: id,
                    agent: self.st.agents[a as usize].id.as_str().to_owned(),
                });
                self.take_back(ix, a, false);
                self.route(ix, out);
            }
        }
        if status == AgentStatus::Online {
            self.pull(a, out);
        }
    }

    fn set_capacity(
        &mut self,
        a: AgentIx,
        capacity: std::collections::BTreeMap<String, u32>,
        max_total: u32,
        out: &mut Vec<Decision>,
    ) {
        self.index_agent(a, false);
        let mut caps = SmallVec::new();
        for (kind, cap) in capacity {
            let k = intern_kind(&mut self.st.kinds, &mut self.kind_ix, &kind);
            set_at(&mut caps, k, Some(cap));
        }
        let agent = &mut self.st.agents[a as usize];
        agent.capacity = caps;
        agent.max_total = max_total;
        self.index_agent(a, true);
        self.pull(a, out);
    }
}

pub(crate) fn unknown_agent(agent: String, conversation: Option<ConversationId>) -> Decision {
    Decision::Rejected { conversation, reason: format!("unknown agent `{agent}`"), agent: Some(agent) }
}

fn tier_from(bit: u8) -> Tier {
    match bit {
        0 => Tier::L0,
        1 => Tier::L1,
        2 => Tier::L2,
        3 => Tier::L3,
        _ => Tier::L4,
    }
}
