//! Assignment: which agent gets which conversation, offers, and the commands that move
//! conversations between agents (accept, decline, transfer, escalate, resolve).

use switchboard_core::{AgentStatus, Tier};

use crate::compiled::{next_tier, tier_bit};
use crate::config::Strategy;
use crate::engine::{Engine, unknown_agent};
use crate::model::{ConversationId, Decision, EscalationCause};
use crate::state::{AgentIx, ConvIx, ConvState, TIERS, Timer};

/// What of an agent places it in the availability indexes: whether it is in them at all, and
/// the fields its teams' strategies order by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexedAs {
    available: bool,
    total: u32,
    last_assigned: crate::model::Ms,
    rr_seq: u64,
}

impl IndexedAs {
    /// The agent's key in the index of a team with this strategy.
    fn key(&self, strategy: Strategy) -> (i64, i64) {
        match strategy {
            Strategy::LongestIdle | Strategy::BestSkillMatch => (self.last_assigned, 0),
            Strategy::LeastLoaded => (i64::from(self.total), self.last_assigned),
            Strategy::RoundRobin => (self.rr_seq as i64, 0),
        }
    }
}

/// Why an agent cannot take a conversation (for explanations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    /// Could take it.
    Eligible,
    /// Not online.
    NotOnline,
    /// Not in the conversation's team.
    OtherTeam,
    /// Not at an accepted tier.
    WrongTier,
    /// Lacks a required skill at the level.
    MissingSkill,
    /// No free capacity for this channel or in total.
    Full,
    /// Declined it or let an offer lapse.
    Declined,
    /// Reserved for the customer's previous agent for now.
    ReservedForPrevious,
}

impl Engine {
    /// Adds (`insert`) or removes an agent from its teams' availability indexes. Every change of
    /// status, load or turn goes through remove → change → insert (or [`Engine::reindex`]).
    pub(crate) fn index_agent(&mut self, a: AgentIx, insert: bool) {
        let at = self.indexed_as(a);
        self.set_index(a, at, insert);
    }

    /// What of agent `a` decides its entries in the availability indexes, as it is now.
    pub(crate) fn indexed_as(&self, a: AgentIx) -> IndexedAs {
        let agent = &self.st.agents[a as usize];
        IndexedAs {
            available: agent.available(),
            total: agent.total,
            last_assigned: agent.last_assigned,
            rr_seq: agent.rr_seq,
        }
    }

    /// Adds or removes agent `a`'s entries as `at` places them (none when not available).
    fn set_index(&mut self, a: AgentIx, at: IndexedAs, insert: bool) {
        if !at.available {
            return;
        }
        let agent = &self.st.agents[a as usize];
        for &t in &agent.teams {
            let key = at.key(self.cfg.teams[t as usize].strategy);
            for tier in (0..TIERS).filter(|b| agent.tiers & (1 << b) != 0) {
                let set = &mut self.st.available[t as usize * TIERS + tier];
                if insert {
                    set.insert((key.0, key.1, a));
                } else {
                    set.remove(&(key.0, key.1, a));
                }
            }
        }
    }

    /// Moves agent `a`'s index entries from where `before` (taken before its status, load or
    /// turn changed; teams and tiers unchanged) placed them to where it belongs now; entries
    /// whose key did not change stay where they are (an agent freed who finds nothing to take
    /// keeps its place without two tree updates).
    pub(crate) fn reindex(&mut self, a: AgentIx, before: IndexedAs) {
        let now = self.indexed_as(a);
        if before.available && now.available {
            let agent = &self.st.agents[a as usize];
            let same = agent.teams.iter().all(|&t| {
                let strategy = self.cfg.teams[t as usize].strategy;
                before.key(strategy) == now.key(strategy)
            });
            if same {
                return;
            }
        }
        self.set_index(a, before, false);
        self.set_index(a, now, true);
    }

    /// Whether agent `a` may take conversation `ix` now, and if not, why.
    pub(crate) fn verdict(&self, a: AgentIx, ix: ConvIx) -> Verdict {
        let agent = &self.st.agents[a as usize];
        let Some(c) = self.conv(ix) else { return Verdict::OtherTeam };
        if agent.status != AgentStatus::Online {
            return Verdict::NotOnline;
        }
        if let Some((only, _)) = c.sticky
            && only != a
        {
            return Verdict::ReservedForPrevious;
        }
        // A sticky (previous) agent may take it from outside the team.
        if c.sticky.is_none() && !agent.teams.contains(&c.team) {
            return Verdict::OtherTeam;
        }
        if !agent.has_tier(c.tiers) {
            return Verdict::WrongTier;
        }
        if !agent.meets(&c.skills) {
            return Verdict::MissingSkill;
        }
        if agent.total >= agent.max_total || agent.load_for(c.kind) >= agent.capacity_for(c.kind) {
            return Verdict::Full;
        }
        if c.declined.contains(&a) {
            return Verdict::Declined;
        }
        Verdict::Eligible
    }

    /// Tries to place a queued conversation with an agent, by its team's strategy.
    pub(crate) fn route(&mut self, ix: ConvIx, out: &mut Vec<Decision>) {
        let Some(c) = self.conv(ix) else { return };
        if c.state != ConvState::Queued {
            return;
        }
        let chosen = if let Some((only, _)) = c.sticky {
            (self.verdict(only, ix) == Verdict::Eligible).then_some(only)
        } else {
            let team = c.team as usize;
            // Only the pools of the tiers the conversation accepts; an agent in several appears
            // in each with the same key.
            let pools = (0..TIERS).filter(|b| c.tiers & (1 << b) != 0).map(|b| &self.st.available[team * TIERS + b]);
            match self.cfg.teams[team].strategy {
                Strategy::BestSkillMatch => {
                    let score = |a: AgentIx| -> u32 {
                        let agent = &self.st.agents[a as usize];
                        c.skills.iter().map(|&(s, _)| u32::from(agent.level(s))).sum()
                    };
                    // Highest score; among equals the longest idle (the smallest pool key).
                    let mut best: Option<(u32, (i64, i64, AgentIx))> = None;
                    for &entry in pools.flatten() {
                        if self.verdict(entry.2, ix) == Verdict::Eligible {
                            let s = score(entry.2);
                            if best.is_none_or(|(bs, be)| s > bs || (s == bs && entry < be)) {
                                best = Some((s, entry));
                            }
                        }
                    }
                    best.map(|(_, (_, _, a))| a)
                }
                _ => {
                    let mut best: Option<(i64, i64, AgentIx)> = None;
                    for pool in pools {
                        for &entry in pool {
                            if best.is_some_and(|b| entry >= b) {
                                break;
                            }
                            if self.verdict(entry.2, ix) == Verdict::Eligible {
                                best = Some(entry);
                                break;
                            }
                        }
                    }
                    best.map(|(_, _, a)| a)
                }
            }
        };
        if let Some(a) = chosen {
            self.give(ix, a, out);
        }
    }

    /// Gives a queued conversation to an agent: an offer with a deadline, or a direct assignment.
    pub(crate) fn give(&mut self, ix: ConvIx, a: AgentIx, out: &mut Vec<Decision>) {
        let before = self.indexed_as(a);
        self.give_unindexed(ix, a, out);
        self.reindex(a, before);
    }

    /// [`Engine::give`] without the index update: the caller re-indexes the agent once it is
    /// done changing it ([`Engine::reindex`]).
    fn give_unindexed(&mut self, ix: ConvIx, a: AgentIx, out: &mut Vec<Decision>) {
        self.dequeue(ix);
        let now = self.st.now;
        let offered_at = now.max(self.input_at);
        self.st.seq += 1;
        let seq = self.st.seq;
        let (kind, team, id) = {
            let c = self.conv(ix).expect("live");
            (c.kind, c.team, c.id)
        };
        let agent = &mut self.st.agents[a as usize];
        let load = agent.load_for(kind) + 1;
        crate::state::set_at(&mut agent.load, kind, load);
        agent.total += 1;
        agent.last_assigned = now;
        agent.rr_seq = seq;
        let agent_id = agent.id.as_str().to_owned();
        let offer_timeout = self.cfg.teams[team as usize].offer_timeout_ms;
        let c = self.conv_mut(ix).expect("live");
        c.sticky = None;
        c.held_since = now;
        match offer_timeout {
            Some(timeout) => {
                let deadline = offered_at + timeout;
                c.state = ConvState::Offered { agent: a, deadline, offer: seq };
                self.schedule(deadline, Timer::OfferTimeout { conv: ix, offer: seq });
                out.push(Decision::Offer { conversation: id, agent: agent_id, deadline });
            }
            None => {
                c.state = ConvState::Assigned { agent: a };
                c.previous_agent = Some(a);
                self.st.agents[a as usize].missed = 0;
                out.push(Decision::Assigned { conversation: id, agent: agent_id });
            }
        }
    }

    /// Frees the agent's capacity for a conversation and puts the conversation back in the queue
    /// (`declined`: the agent is not offered it again).
    pub(crate) fn take_back(&mut self, ix: ConvIx, a: AgentIx, declined: bool) {
        self.release(ix, a);
        let c = self.conv_mut(ix).expect("live");
        if declined && !c.declined.contains(&a) {
            c.declined = c.declined.iter().copied().chain([a]).collect();
        }
        let mut sink = Vec::new();
        self.enqueue(ix, &mut sink);
    }

    /// Frees agent `a`'s capacity held by conversation `ix`.
    pub(crate) fn release(&mut self, ix: ConvIx, a: AgentIx) {
        let before = self.indexed_as(a);
        self.release_unindexed(ix, a);
        self.reindex(a, before);
    }

    /// [`Engine::release`] without the index update (the caller's, as for `give_unindexed`).
    fn release_unindexed(&mut self, ix: ConvIx, a: AgentIx) {
        let kind = self.conv(ix).expect("live").kind;
        let agent = &mut self.st.agents[a as usize];
        let load = agent.load_for(kind).saturating_sub(1);
        crate::state::set_at(&mut agent.load, kind, load);
        agent.total = agent.total.saturating_sub(1);
    }

    /// Gives a free agent the first conversations (in queue order, across its teams) it can take,
    /// until it is full. Runs on the event that freed it: there is no periodic sweep.
    pub(crate) fn pull(&mut self, a: AgentIx, out: &mut Vec<Decision>) {
        let before = self.indexed_as(a);
        self.pull_unindexed(a, out);
        self.reindex(a, before);
    }

    /// [`Engine::pull`] without the index update. Choosing its conversations does not read the
    /// availability indexes (only the queues), so the agent is re-indexed once, with its final
    /// key, instead of around every change: an agent freed and filled again in the same event
    /// (the steady state) costs no index update at all.
    fn pull_unindexed(&mut self, a: AgentIx, out: &mut Vec<Decision>) {
        loop {
            if !self.st.agents[a as usize].available() {
                return;
            }
            match self.next_for(a) {
                Some(ix) => self.give_unindexed(ix, a, out),
                None => return,
            }
        }
    }

    fn lookup(&self, agent: &str, conversation: ConversationId) -> Result<(AgentIx, ConvIx), Decision> {
        let a = *self.agent_ix.get(agent).ok_or_else(|| unknown_agent(agent.to_string(), Some(conversation)))?;
        let ix = *self.st.conv_ix.get(&conversation).ok_or_else(|| Decision::Rejected {
            conversation: Some(conversation),
            agent: Some(agent.to_string()),
            reason: "unknown conversation".into(),
        })?;
        Ok((a, ix))
    }

    fn reject(conversation: ConversationId, agent: &str, reason: &str) -> Decision {
        Decision::Rejected { conversation: Some(conversation), agent: Some(agent.to_string()), reason: reason.into() }
    }

    pub(crate) fn accept(&mut self, agent: String, conversation: ConversationId, out: &mut Vec<Decision>) {
        let (a, ix) = match self.lookup(&agent, conversation) {
            Ok(v) => v,
            Err(d) => return out.push(d),
        };
        let c = self.conv_mut(ix).expect("live");
        match c.state {
            ConvState::Offered { agent: holder, .. } if holder == a => {
                c.state = ConvState::Assigned { agent: a };
                c.previous_agent = Some(a);
                self.st.agents[a as usize].missed = 0;
                out.push(Decision::Assigned { conversation, agent });
            }
            ConvState::Assigned { agent: holder } if holder == a => {} // a repeated accept acts once
            _ => out.push(Self::reject(conversation, &agent, "no open offer of this conversation to this agent")),
        }
    }

    pub(crate) fn decline(&mut self, agent: String, conversation: ConversationId, out: &mut Vec<Decision>) {
        let (a, ix) = match self.lookup(&agent, conversation) {
            Ok(v) => v,
            Err(d) => return out.push(d),
        };
        match self.conv(ix).expect("live").state {
            ConvState::Offered { agent: holder, .. } if holder == a => {
                self.take_back(ix, a, true);
                self.route(ix, out);
                self.pull(a, out);
            }
            _ => out.push(Self::reject(conversation, &agent, "no open offer of this conversation to this agent")),
        }
    }

    pub(crate) fn replied(&mut self, agent: String, conversation: ConversationId, out: &mut Vec<Decision>) {
        let (a, ix) = match self.lookup(&agent, conversation) {
            Ok(v) => v,
            Err(d) => return out.push(d),
        };
        let now = self.st.now;
        let c = self.conv_mut(ix).expect("live");
        if c.state != (ConvState::Assigned { agent: a }) {
            return out.push(Self::reject(conversation, &agent, "the conversation is not assigned to this agent"));
        }
        if c.first_response.is_none() {
            c.first_response = Some(now);
            out.push(Decision::FirstResponse { conversation, within_sla: now <= c.sla_deadline });
        }
    }

    /// The conversation must be held (assigned) by `a`; returns its index or a rejection.
    fn held_by(&self, agent: &str, conversation: ConversationId) -> Result<(AgentIx, ConvIx), Decision> {
        let (a, ix) = self.lookup(agent, conversation)?;
        if self.conv(ix).expect("live").state != (ConvState::Assigned { agent: a }) {
            return Err(Self::reject(conversation, agent, "the conversation is not assigned to this agent"));
        }
        Ok((a, ix))
    }

    pub(crate) fn transfer(
        &mut self,
        agent: String,
        conversation: ConversationId,
        to_agent: Option<String>,
        to_team: Option<String>,
        note: Option<String>,
        out: &mut Vec<Decision>,
    ) {
        let (a, ix) = match self.held_by(&agent, conversation) {
            Ok(v) => v,
            Err(d) => return out.push(d),
        };
        let target = match to_agent.as_deref().map(|t| self.agent_ix.get(t).copied().ok_or(t)) {
            Some(Err(t)) => return out.push(Self::reject(conversation, &agent, &format!("unknown agent `{t}`"))),
            Some(Ok(t)) if t == a => {
                return out.push(Self::reject(conversation, &agent, "cannot transfer to yourself"));
            }
            Some(Ok(t)) => Some(t),
            None => None,
        };
        let team = match to_team.as_deref().map(|t| self.cfg.team_ix.get(t).copied().ok_or(t)) {
            Some(Err(t)) => return out.push(Self::reject(conversation, &agent, &format!("unknown team `{t}`"))),
            Some(Ok(t)) => Some(t),
            None => None,
        };
        if target.is_none() && team.is_none() {
            return out.push(Self::reject(conversation, &agent, "a transfer needs an agent or a team"));
        }
        self.record_handle(ix);
        self.release(ix, a);
        let team_now = {
            let c = self.conv_mut(ix).expect("live");
            if let Some(t) = team {
                c.team = t;
                c.steps_taken = 0;
            }
            c.declined = Box::default();
            c.team
        };
        out.push(Decision::Transferred {
            conversation,
            from_agent: Some(agent),
            to_agent: to_agent.clone(),
            team: self.cfg.teams[team_now as usize].name.clone(),
            note,
        });
        match target {
            // Reserved for the named agent for the sticky wait, then open to the team.
            Some(t) => self.enqueue_reserved(ix, t, out),
            None => self.enqueue(ix, out),
        }
        self.route(ix, out);
        self.pull(a, out);
    }

    pub(crate) fn escalate(
        &mut self,
        agent: String,
        conversation: ConversationId,
        tier: Option<Tier>,
        note: Option<String>,
        out: &mut Vec<Decision>,
    ) {
        let (a, ix) = match self.held_by(&agent, conversation) {
            Ok(v) => v,
            Err(d) => return out.push(d),
        };
        let current = self.conv(ix).expect("live").tier;
        let Some(target) = tier.or_else(|| next_tier(current)) else {
            return out.push(Self::reject(conversation, &agent, "already at the highest tier"));
        };
        if target <= current {
            return out.push(Self::reject(conversation, &agent, "escalation must go to a higher tier"));
        }
        self.record_handle(ix);
        self.release(ix, a);
        let team = {
            let c = self.conv_mut(ix).expect("live");
            c.tier = target;
            c.tiers = tier_bit(target);
            c.declined = Box::default();
            c.steps_taken = 0;
            c.team
        };
        out.push(Decision::Escalated {
            conversation,
            cause: EscalationCause::Agent,
            tier: target,
            team: self.cfg.teams[team as usize].name.clone(),
            note,
        });
        self.enqueue(ix, out);
        self.route(ix, out);
        self.pull(a, out);
    }

    pub(crate) fn resolve(&mut self, agent: String, conversation: ConversationId, out: &mut Vec<Decision>) {
        let Some(&ix) = self.st.conv_ix.get(&conversation) else {
            return out.push(Decision::Rejected {
                conversation: Some(conversation),
                agent: Some(agent),
                reason: "unknown conversation".into(),
            });
        };
        // The agent named is almost always the holder: its record is read now, while the
        // conversation's is still on its way, rather than after it (two misses at once instead
        // of one after the other). Only a load; what counts is the holder the conversation names.
        if let Some(&named) = self.agent_ix.get(agent.as_str()) {
            std::hint::black_box(self.st.agents[named as usize].total);
        }
        let state = self.conv(ix).expect("live").state.clone();
        let holder = match state {
            ConvState::Resolved { .. } => return, // resolving twice acts once
            ConvState::Assigned { agent: h } => Some(h),
            ConvState::Offered { agent: h, .. } => Some(h),
            ConvState::Queued => {
                self.dequeue(ix);
                None
            }
            ConvState::Bot => None,
        };
        if !agent.is_empty() && holder.is_some_and(|h| self.st.agents[h as usize].id != agent) {
            return out.push(Self::reject(conversation, &agent, "the conversation is held by another agent"));
        }
        // The holder's index entries move once, after it has its next conversations (see
        // `pull_unindexed`); nothing in between reads them.
        let indexed = holder.map(|h| (h, self.indexed_as(h)));
        if let Some(h) = holder {
            self.record_handle(ix);
            self.release_unindexed(ix, h);
        }
        let now = self.st.now;
        self.conv_mut(ix).expect("live").state = ConvState::Resolved { at: now };
        self.schedule_monotonic(now + self.cfg.reopen_ms, Timer::Forget { conv: ix, resolved_at: now });
        out.push(Decision::Resolved {
            conversation,
            agent: holder.map(|h| self.st.agents[h as usize].id.as_str().to_owned()),
        });
        if let Some((h, before)) = indexed {
            self.pull_unindexed(h, out);
            self.reindex(h, before);
        }
    }
}
