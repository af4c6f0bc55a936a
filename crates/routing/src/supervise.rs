//! A supervisor's changes to a conversation in any state (waiting, offered, held, or with the L0
//! bot): transfer, escalate, set priority, resolve. Unlike an agent's commands they do not need
//! the conversation to be the supervisor's: an offer out is withdrawn, a holder is let go with
//! the same handle-time bookkeeping as an agent's transfer, and whoever was freed pulls new work.

use switchboard_core::{Priority, SupervisorOp, Tier};

use crate::compiled::{next_tier, tier_bit};
use crate::engine::Engine;
use crate::model::{ConversationId, Decision, EscalationCause};
use crate::state::{AgentIx, ConvIx, ConvState, Timer, queue_key};

/// Where a supervised conversation was when the supervisor acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Was {
    /// With the L0 bot.
    Bot,
    /// Waiting (maybe reserved for one agent).
    Queued,
    /// On offer to this agent.
    Offered(AgentIx),
    /// Held (assigned) by this agent.
    Held(AgentIx),
}

impl Engine {
    /// Applies a supervisor's `op` to `conversation`, or refuses it with a reason a person
    /// understands (nothing changes then).
    pub(crate) fn supervise(
        &mut self,
        supervisor: String,
        conversation: ConversationId,
        op: SupervisorOp,
        note: Option<String>,
        out: &mut Vec<Decision>,
    ) {
        let refuse = |reason: String| Decision::Rejected {
            conversation: Some(conversation),
            agent: Some(supervisor.clone()),
            reason,
        };
        let Some(&ix) = self.st.conv_ix.get(&conversation) else {
            return out.push(refuse("unknown conversation".into()));
        };
        let was = match self.conv(ix).expect("indexed").state {
            ConvState::Resolved { .. } => return out.push(refuse("the conversation is already resolved".into())),
            ConvState::Bot => Was::Bot,
            ConvState::Queued => Was::Queued,
            ConvState::Offered { agent, .. } => Was::Offered(agent),
            ConvState::Assigned { agent } => Was::Held(agent),
        };
        match op {
            SupervisorOp::Transfer { to_agent, to_team } => {
                match self.check_transfer(was, to_agent.as_deref(), to_team.as_deref()) {
                    Ok((target, team)) => self.supervised_transfer(ix, was, target, to_agent, team, note, out),
                    Err(reason) => out.push(refuse(reason)),
                }
            }
            SupervisorOp::Escalate { tier } => {
                let current = self.conv(ix).expect("live").tier;
                match tier.or_else(|| next_tier(current)) {
                    None => out.push(refuse("already at the highest tier".into())),
                    Some(t) if t <= current => {
                        out.push(refuse(format!("escalation must go to a tier above {current:?}, not {t:?}")))
                    }
                    Some(t) => self.supervised_escalation(ix, was, t, note, out),
                }
            }
            SupervisorOp::SetPriority { priority } => {
                let from = self.conv(ix).expect("live").priority;
                if !(1..=100).contains(&priority.0) {
                    out.push(refuse(format!("priority must be 1 to 100, not {}", priority.0)));
                } else if from == priority {
                    out.push(refuse(format!("the conversation already has priority {}", priority.0)));
                } else {
                    self.supervised_priority(ix, was, priority, out);
                }
            }
            SupervisorOp::Resolve {} => self.supervised_resolve(ix, was, out),
        }
    }

    /// The transfer's target agent and team, or why it cannot be done.
    fn check_transfer(
        &self,
        was: Was,
        to_agent: Option<&str>,
        to_team: Option<&str>,
    ) -> Result<(Option<AgentIx>, Option<u16>), String> {
        let target = match to_agent {
            Some(t) => Some(*self.agent_ix.get(t).ok_or_else(|| format!("unknown agent `{t}`"))?),
            None => None,
        };
        let team = match to_team {
            Some(t) => Some(*self.cfg.team_ix.get(t).ok_or_else(|| format!("unknown team `{t}`"))?),
            None => None,
        };
        if target.is_none() && team.is_none() {
            return Err("a transfer needs an agent or a team".into());
        }
        if let (Some(t), Was::Held(h)) = (target, was)
            && t == h
        {
            return Err(format!("`{}` already holds the conversation", self.st.agents[h as usize].id));
        }
        Ok((target, team))
    }

    /// Takes a conversation out of where it is so that it can wait anew: out of the queue, its
    /// offer withdrawn, its holder let go (handle time recorded, as when an agent lets it go).
    /// Returns the agent whose capacity was freed and, if it held the conversation, the holder.
    fn let_go(&mut self, ix: ConvIx, was: Was, out: &mut Vec<Decision>) -> (Option<AgentIx>, Option<AgentIx>) {
        match was {
            Was::Bot => (None, None),
            Was::Queued => {
                self.dequeue(ix);
                (None, None)
            }
            Was::Offered(a) => {
                let conversation = self.conv(ix).expect("live").id;
                out.push(Decision::OfferWithdrawn { conversation, agent: self.agent_id(a) });
                self.release(ix, a);
                (Some(a), None)
            }
            Was::Held(a) => {
                self.record_handle(ix);
                self.release(ix, a);
                (Some(a), Some(a))
            }
        }
    }

    /// Queues a conversation a supervisor moved (reserved for `target` for the team's sticky
    /// wait, if given) and routes it; one the bot had starts its SLA clock now, as a hand-off.
    fn wait_again(&mut self, ix: ConvIx, was: Was, target: Option<AgentIx>, out: &mut Vec<Decision>) {
        if was == Was::Bot {
            self.start_clock(ix, self.st.now, out);
        }
        match target {
            Some(t) => self.enqueue_reserved(ix, t, out),
            None => self.enqueue(ix, out),
        }
        self.route(ix, out);
    }

    fn agent_id(&self, a: AgentIx) -> String {
        self.st.agents[a as usize].id.as_str().to_owned()
    }

    #[allow(clippy::too_many_arguments)]
    fn supervised_transfer(
        &mut self,
        ix: ConvIx,
        was: Was,
        target: Option<AgentIx>,
        to_agent: Option<String>,
        team: Option<u16>,
        note: Option<String>,
        out: &mut Vec<Decision>,
    ) {
        let (freed, holder) = self.let_go(ix, was, out);
        let (conversation, team_now) = {
            let c = self.conv_mut(ix).expect("live");
            c.sticky = None;
            if let Some(t) = team {
                c.team = t;
                // Steps are the new team's from now on, counted afresh.
                c.steps_taken = 0;
            }
            if c.tier == Tier::L0 {
                // Off the bot: a person answers.
                c.tier = Tier::L1;
                c.tiers = tier_bit(Tier::L1);
            }
            c.declined = Box::default();
            (c.id, c.team)
        };
        out.push(Decision::Transferred {
            conversation,
            from_agent: holder.map(|h| self.agent_id(h)),
            to_agent,
            team: self.cfg.teams[team_now as usize].name.clone(),
            note,
        });
        self.wait_again(ix, was, target, out);
        if let Some(a) = freed {
            self.pull(a, out);
        }
    }

    fn supervised_escalation(
        &mut self,
        ix: ConvIx,
        was: Was,
        tier: Tier,
        note: Option<String>,
        out: &mut Vec<Decision>,
    ) {
        let (freed, _) = self.let_go(ix, was, out);
        let (conversation, team) = {
            let c = self.conv_mut(ix).expect("live");
            // A reservation was for an agent of the old tier.
            c.sticky = None;
            c.tier = tier;
            c.tiers = tier_bit(tier);
            c.declined = Box::default();
            c.steps_taken = 0;
            (c.id, c.team)
        };
        out.push(Decision::Escalated {
            conversation,
            cause: EscalationCause::Supervisor,
            tier,
            team: self.cfg.teams[team as usize].name.clone(),
            note,
        });
        self.wait_again(ix, was, None, out);
        if let Some(a) = freed {
            self.pull(a, out);
        }
    }

    /// A new priority: a waiting conversation takes its new place in the queue with the time it
    /// has waited kept (its queue key is recomputed from the same `waiting_since`); timers and
    /// the SLA deadline stay as they are.
    fn supervised_priority(&mut self, ix: ConvIx, was: Was, priority: Priority, out: &mut Vec<Decision>) {
        let queued = was == Was::Queued;
        if queued {
            self.dequeue(ix);
        }
        let aging = self.cfg.aging_ms;
        let (conversation, from) = {
            let c = self.conv_mut(ix).expect("live");
            let from = c.priority;
            c.priority = priority;
            if queued {
                c.queue_key = queue_key(priority, c.waiting_since, aging);
            }
            (c.id, from)
        };
        if queued {
            self.place(ix);
        }
        out.push(Decision::PriorityChanged { conversation, from, to: priority });
    }

    /// Resolves it: a held one as if its holder had (credited to them, who then pulls work), an
    /// offered one after withdrawing the offer, a waiting one out of the queue.
    fn supervised_resolve(&mut self, ix: ConvIx, was: Was, out: &mut Vec<Decision>) {
        let conversation = self.conv(ix).expect("live").id;
        let Was::Offered(a) = was else {
            // The system's resolve: whoever holds it is freed, and no holder check.
            return self.resolve(String::new(), conversation, out);
        };
        out.push(Decision::OfferWithdrawn { conversation, agent: self.agent_id(a) });
        self.release(ix, a);
        let now = self.st.now;
        self.conv_mut(ix).expect("live").state = ConvState::Resolved { at: now };
        self.schedule_monotonic(now + self.cfg.reopen_ms, Timer::Forget { conv: ix, resolved_at: now });
        out.push(Decision::Resolved { conversation, agent: None });
        self.pull(a, out);
    }
}
