//! A waiting conversation's place in line and its expected wait (`docs/queue.md`).
//!
//! The place counts only the conversations that compete for the same agents: those waiting
//! ahead of it (in the order the engine serves them, [`crate::state::queue_key`] then arrival)
//! in a queue class that at least one agent who could take this conversation could also take.
//! A conversation only another team's agents can take is not ahead of it. A conversation
//! reserved for one agent (sticky routing, a transfer to an agent) waits for that agent alone:
//! its place counts that agent's reservations ahead of it.
//!
//! The estimate: a waiting conversation waits because every slot of the agents who could take
//! it is busy; slots free up at a rate of (slots) / (mean handle time), so the one at place `p`
//! can expect an agent after about `p × mean handle time / slots`. The mean is over the team's
//! last [`HANDLE_KEEP`] handle times (from an agent getting a conversation to resolving,
//! transferring or escalating it), `queue_notice.default_handle_secs` before there are any.
//! No estimate when none of those agents is online.
//!
//! One conversation's place costs a walk of the competing classes up to it (from whichever end
//! is nearer); every waiting conversation's place at once, [`Engine::queue_statuses`], costs one
//! sort of the waiting conversations plus (waiting × classes).

use std::collections::BTreeSet;

use switchboard_core::AgentStatus;

use crate::engine::Engine;
use crate::model::{ConversationId, Ms};
use crate::state::{AgentIx, ConvIx, ConvState, HANDLE_KEEP};

/// Where a waiting conversation stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueStatus {
    /// The conversation.
    pub conversation: ConversationId,
    /// Place in line among the conversations the same agents could take, 1 = next.
    pub position: u32,
    /// Agents online who could take it (whatever their load).
    pub agents_online: u32,
    /// Expected wait in ms; `None` when none of those agents is online.
    pub estimate_ms: Option<Ms>,
    /// While its team is closed: when it opens, ms since the epoch.
    pub opens_at: Option<Ms>,
    /// The same in the team's timezone, for people: `2026-12-08 09:00 MSK`.
    pub opens_at_local: Option<String>,
}

/// Agents by bit, one bitset per queue class: who could take that class's conversations.
struct Eligibility {
    words: usize,
    sets: Vec<u64>,
}

impl Eligibility {
    fn set(&self, cl: u32) -> &[u64] {
        &self.sets[cl as usize * self.words..(cl as usize + 1) * self.words]
    }

    fn overlap(&self, a: u32, b: u32) -> bool {
        self.set(a).iter().zip(self.set(b)).any(|(x, y)| x & y != 0)
    }
}

impl Engine {
    fn eligibility(&self) -> Eligibility {
        let words = self.st.agents.len().div_ceil(64).max(1);
        let mut sets = vec![0u64; words * self.st.classes.len()];
        for (cl, class) in self.st.classes.iter().enumerate() {
            for (a, agent) in self.st.agents.iter().enumerate() {
                if agent.teams.contains(&class.team)
                    && agent.has_tier(class.tiers)
                    && agent.meets(&class.skills)
                    && agent.capacity_for(class.kind).min(agent.max_total) > 0
                {
                    sets[cl * words + a / 64] |= 1 << (a % 64);
                }
            }
        }
        Eligibility { words, sets }
    }

    /// Online agents among `agents` and their slots for channel kind `kind`.
    fn online_slots(&self, agents: impl Iterator<Item = AgentIx>, kind: u16) -> (u32, u64) {
        let (mut online, mut slots) = (0u32, 0u64);
        for a in agents {
            let agent = &self.st.agents[a as usize];
            if agent.status == AgentStatus::Online {
                online += 1;
                slots += u64::from(agent.capacity_for(kind).min(agent.max_total));
            }
        }
        (online, slots)
    }

    /// The mean of a team's recent handle times, or the configured default before any.
    pub(crate) fn mean_handle_ms(&self, team: u16) -> Ms {
        match self.st.handle_times.get(team as usize) {
            Some(times) if !times.is_empty() => times.iter().sum::<Ms>() / times.len() as Ms,
            _ => self.cfg.default_handle_ms,
        }
    }

    /// Remembers how long the holder of conversation `ix` had it (it is being let go now).
    pub(crate) fn record_handle(&mut self, ix: ConvIx) {
        let now = self.st.now;
        let Some(c) = self.conv(ix) else { return };
        let (team, took) = (c.team as usize, (now - c.held_since).max(0));
        if self.st.handle_times.len() <= team {
            self.st.handle_times.resize(team + 1, Default::default());
        }
        let times = &mut self.st.handle_times[team];
        times.push_back(took);
        if times.len() > HANDLE_KEEP {
            times.pop_front();
        }
    }

    fn status(&self, ix: ConvIx, position: u32, online: u32, slots: u64) -> Option<QueueStatus> {
        let c = self.conv(ix)?;
        let estimate_ms = (slots > 0).then(|| i64::from(position) * self.mean_handle_ms(c.team) / slots as i64);
        let now = crate::time::to_utc(self.st.now);
        let opens = self.cfg.teams[c.team as usize]
            .hours
            .as_ref()
            .filter(|h| !h.is_open(now))
            .and_then(|h| h.next_open(now).map(|t| (t, h.timezone())));
        Some(QueueStatus {
            conversation: c.id,
            position,
            agents_online: online,
            estimate_ms,
            opens_at: opens.map(|(t, _)| t.timestamp_millis()),
            opens_at_local: opens.map(|(t, tz)| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()),
        })
    }

    /// Where one waiting conversation stands now; `None` unless it is queued.
    pub fn queue_status(&self, conversation: ConversationId) -> Option<QueueStatus> {
        let ix = *self.st.conv_ix.get(&conversation)?;
        let c = self.conv(ix)?;
        if c.state != ConvState::Queued {
            return None;
        }
        let me = (c.queue_key, c.seq, ix);
        if let Some((agent, _)) = c.sticky {
            let ahead = self.st.reserved.range((agent, i64::MIN, 0, 0)..(agent, me.0, me.1, me.2)).count();
            let (online, slots) = self.online_slots(std::iter::once(agent), c.kind);
            return self.status(ix, ahead as u32 + 1, online, slots);
        }
        let elig = self.eligibility();
        let mine = c.class;
        let mut ahead = 0usize;
        for (cl, class) in self.st.classes.iter().enumerate() {
            if cl as u32 == mine || elig.overlap(mine, cl as u32) {
                ahead += count_below(&class.queue, me);
            }
        }
        let agents = self.eligible_agents(&elig, mine);
        let (online, slots) = self.online_slots(agents.into_iter(), c.kind);
        self.status(ix, ahead as u32 + 1, online, slots)
    }

    fn eligible_agents(&self, elig: &Eligibility, cl: u32) -> Vec<AgentIx> {
        (0..self.st.agents.len() as AgentIx).filter(|a| elig.set(cl)[*a as usize / 64] & (1 << (a % 64)) != 0).collect()
    }

    /// Where every waiting conversation stands now, in queue order (reserved ones last, by
    /// agent): one pass, so a router can refresh them all on a tick.
    pub fn queue_statuses(&self) -> Vec<QueueStatus> {
        let elig = self.eligibility();
        let classes = self.st.classes.len();
        let competing: Vec<Vec<u32>> = (0..classes as u32)
            .map(|cl| (0..classes as u32).filter(|&o| o == cl || elig.overlap(cl, o)).collect())
            .collect();
        let per_class: Vec<(u32, u64)> = (0..classes as u32)
            .map(|cl| {
                let kind = self.st.classes[cl as usize].kind;
                self.online_slots(self.eligible_agents(&elig, cl).into_iter(), kind)
            })
            .collect();
        let mut all: Vec<(i64, u64, ConvIx, u32)> = Vec::with_capacity(self.queued());
        for (cl, class) in self.st.classes.iter().enumerate() {
            all.extend(class.queue.iter().map(|&(k, s, ix)| (k, s, ix, cl as u32)));
        }
        all.sort_unstable();
        let mut seen = vec![0u32; classes];
        let mut out = Vec::with_capacity(all.len() + self.st.reserved.len());
        for (_, _, ix, cl) in all {
            let ahead: u32 = competing[cl as usize].iter().map(|&o| seen[o as usize]).sum();
            seen[cl as usize] += 1;
            let (online, slots) = per_class[cl as usize];
            out.extend(self.status(ix, ahead + 1, online, slots));
        }
        let mut last: Option<(AgentIx, u32)> = None;
        for &(agent, _, _, ix) in &self.st.reserved {
            let ahead = match last {
                Some((a, n)) if a == agent => n,
                _ => 0,
            };
            last = Some((agent, ahead + 1));
            let kind = self.conv(ix).map_or(0, |c| c.kind);
            let (online, slots) = self.online_slots(std::iter::once(agent), kind);
            out.extend(self.status(ix, ahead + 1, online, slots));
        }
        out
    }
}

/// How many entries of `queue` sort before `me`, walking from whichever end reaches it first.
fn count_below(queue: &BTreeSet<(i64, u64, ConvIx)>, me: (i64, u64, ConvIx)) -> usize {
    let mut below = queue.range(..me);
    let mut above = queue.range(me..);
    let mut n = 0usize;
    loop {
        match below.next() {
            None => return n,
            Some(_) => {
                if above.next_back().is_none() {
                    // Everything from here down is below: all entries but the `n` above.
                    return queue.len() - n;
                }
            }
        }
        n += 1;
    }
}
