//! The engine's state: agents, conversations, queues, timers. Serialisable as a whole, so the
//! service can persist a snapshot and restore it exactly.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};

use compact_str::CompactString;
use smallvec::SmallVec;

use serde::{Deserialize, Serialize};
use switchboard_core::{AgentStatus, Priority, Tier};

use crate::conv_index::ConvIndex;
use crate::model::{ConversationId, Ms};

/// Index of an agent in [`State::agents`].
pub type AgentIx = u32;
pub use crate::conv_index::ConvIx;

/// One agent's live state.
///
/// Laid out by hand (`repr(C)`, 256 bytes aligned to 128): the first 128 bytes (a pair of cache
/// lines the hardware fetches together) hold what freeing the agent and re-indexing it read
/// (id, teams, totals, status, turn, loads), the second pair what choosing its next
/// conversation also reads (the rest of the capacities, skills) and the display name. The
/// serialised form keeps the field order it always had (see the `Serialize` impl).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[repr(C, align(128))]
pub struct Agent {
    /// Agent id; inline for ids up to 24 bytes, so comparing and copying it touches no other
    /// cache line than the agent's.
    pub id: CompactString,
    /// Team indices.
    pub teams: SmallVec<[u16; 4]>,
    /// Open conversations in total.
    pub total: u32,
    /// Total cap.
    pub max_total: u32,
    /// When the agent last got a conversation (longest idle = smallest).
    pub last_assigned: Ms,
    /// Availability.
    pub status: AgentStatus,
    /// Tier bitmask: bit `n` set means tier `Ln`.
    pub tiers: u8,
    /// Capacity for kinds without an entry.
    pub default_capacity: u32,
    /// Open conversations (offered or assigned) by channel-kind index.
    pub load: SmallVec<[u32; 4]>,
    /// Round-robin turn: the global sequence number of the agent's last conversation.
    pub rr_seq: u64,
    /// Offers timed out in a row.
    pub missed: u32,
    /// Capacity by channel-kind index (`None` = use `default_capacity`).
    pub capacity: SmallVec<[Option<u32>; 4]>,
    /// Skills the agent has: (skill index, level), sorted by index. Inline, because every
    /// assignment reads them and a separate allocation is a cache miss.
    pub skills: SmallVec<[(u16, u8); 8]>,
    /// Display name.
    pub name: Option<String>,
}

/// An agent as it is serialised: the fields in the order they were declared before the layout
/// above, so snapshots read the same as before it.
#[derive(Serialize)]
struct AgentOut<'a> {
    id: &'a CompactString,
    name: &'a Option<String>,
    teams: &'a SmallVec<[u16; 4]>,
    tiers: u8,
    skills: &'a SmallVec<[(u16, u8); 8]>,
    capacity: &'a SmallVec<[Option<u32>; 4]>,
    default_capacity: u32,
    max_total: u32,
    status: AgentStatus,
    load: &'a SmallVec<[u32; 4]>,
    total: u32,
    last_assigned: Ms,
    rr_seq: u64,
    missed: u32,
}

impl Serialize for Agent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AgentOut {
            id: &self.id,
            name: &self.name,
            teams: &self.teams,
            tiers: self.tiers,
            skills: &self.skills,
            capacity: &self.capacity,
            default_capacity: self.default_capacity,
            max_total: self.max_total,
            status: self.status,
            load: &self.load,
            total: self.total,
            last_assigned: self.last_assigned,
            rr_seq: self.rr_seq,
            missed: self.missed,
        }
        .serialize(s)
    }
}

impl Agent {
    /// Capacity for a channel kind.
    pub fn capacity_for(&self, kind: u16) -> u32 {
        self.capacity.get(kind as usize).copied().flatten().unwrap_or(self.default_capacity)
    }

    /// Open conversations of a channel kind.
    pub fn load_for(&self, kind: u16) -> u32 {
        self.load.get(kind as usize).copied().unwrap_or(0)
    }

    /// The agent's level in a skill (0 = does not have it).
    pub fn level(&self, skill: u16) -> u8 {
        self.skills.iter().find(|(s, _)| *s == skill).map_or(0, |(_, l)| *l)
    }

    /// Whether the agent has every skill at the level: (skill index, minimum level).
    pub fn meets(&self, skills: &[(u16, u8)]) -> bool {
        skills.iter().all(|&(s, min)| self.level(s) >= min)
    }

    /// Whether the agent takes new work at all (online and under the total cap).
    pub fn available(&self) -> bool {
        self.status == AgentStatus::Online && self.total < self.max_total
    }

    /// Whether the agent works at `tier`.
    pub fn has_tier(&self, tiers: u8) -> bool {
        self.tiers & tiers != 0
    }
}

/// Where a conversation is: exactly one of these at any time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConvState {
    /// Answered by the L0 bot; not in a human queue.
    Bot,
    /// Waiting in its team's queue.
    Queued,
    /// Offered to an agent until `deadline`.
    Offered {
        /// The agent.
        agent: AgentIx,
        /// When the offer lapses.
        deadline: Ms,
        /// Which offer, so a stale timeout is ignored.
        offer: u64,
    },
    /// Held by an agent.
    Assigned {
        /// The agent.
        agent: AgentIx,
    },
    /// Closed at `at`.
    Resolved {
        /// When.
        at: Ms,
    },
}

/// One conversation's live state.
///
/// Laid out by hand (`repr(C)`, 256 bytes aligned to 128): what resolving it reads sits in its
/// first 64 bytes, what handing it to an agent also reads in the next 64 (the same 128-byte
/// pair, which the hardware fetches together), and the rest (the customer, rules, SLA and
/// escalation bookkeeping) after them, so the assignment path touches one cache line of the
/// resolved conversation and one pair of the next, instead of fields spread over four lines.
/// The serialised form keeps the field order it always had (see the `Serialize` impl).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[repr(C, align(128))]
pub struct Conv {
    // First cache line: resolve (state, kind, team, held_since), the id lookup's check, and
    // whether the slot is live at all.
    /// Where it is.
    pub state: ConvState,
    /// When its current holder got it (offer or assignment): its handle time runs from here.
    #[serde(default)]
    pub held_since: Ms,
    /// Its id.
    pub id: ConversationId,
    /// Channel-kind index.
    pub kind: u16,
    /// Team index.
    pub team: u16,
    /// Tier it is routed at.
    pub tier: Tier,
    /// Tiers that may take it (grows with "add next tier" escalation).
    pub tiers: u8,
    /// Priority.
    pub priority: Priority,
    /// Whether the SLA breach was already reported.
    pub sla_breached: bool,
    /// Marks the slot live: `None` in `Vec<Option<Conv>>` is stored here (see [`Live`]).
    #[serde(skip)]
    pub(crate) live: Live,
    // Second cache line: taking it from its queue and giving it to an agent.
    /// Tie-breaker in queues, from a global sequence.
    pub seq: u64,
    /// Its key in the team queue (see [`queue_key`]).
    pub queue_key: i64,
    /// Only this agent may take it until the time given.
    pub sticky: Option<(AgentIx, Ms)>,
    /// Agents who declined it or let the offer lapse; not offered again. A boxed slice (two
    /// words, not three) so that the second line holds it with the queue fields; declines are
    /// rare, so rebuilding it on each costs nothing that matters.
    pub declined: Box<[AgentIx]>,
    /// The queue class it waits in (see [`QueueClass`]); meaningful while queued and not reserved.
    pub class: u32,
    /// Time-based escalation steps taken.
    pub steps_taken: u8,
    /// Whether it is a repeat contact.
    pub repeat: bool,
    // Cold: read when it arrives, is classified, escalates, or is explained (or written only).
    /// The agent who last held it (sticky routing, `conversation.previous_agent`).
    pub previous_agent: Option<AgentIx>,
    /// Customer key.
    pub customer: String,
    /// Required skills: (skill index, minimum level).
    pub skills: Vec<(u16, u8)>,
    /// Rules that matched when it was routed (indices), for explanations.
    pub matched_rules: Vec<u16>,
    /// When it was opened (or reopened).
    pub opened_at: Ms,
    /// Since when it waits for a human: drives aging, the queue order and escalation steps.
    pub waiting_since: Ms,
    /// First-response deadline.
    pub sla_deadline: Ms,
    /// When an agent first replied.
    pub first_response: Option<Ms>,
    /// Customer index in [`State::customer_recs`].
    pub cust: u32,
    /// Incremented on every (re)queueing, so stale escalation and sticky timers are ignored.
    pub epoch: u32,
}

/// A one-value word. Its 2^64 - 1 invalid values are the largest niche in [`Conv`] (an
/// `Option<i64>`'s widened tag has one fewer), so the compiler stores `Option<Conv>`'s `None`
/// here, in the first cache line: telling a live slot from a free one reads no cold line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Live {
    /// The only value.
    #[default]
    Yes = 1,
}

/// A conversation as it is serialised: the fields in the order they were declared before the
/// layout above, so snapshots read the same as before it.
#[derive(Serialize)]
struct ConvOut<'a> {
    id: &'a ConversationId,
    customer: &'a str,
    cust: u32,
    kind: u16,
    team: u16,
    tier: Tier,
    tiers: u8,
    priority: Priority,
    skills: &'a [(u16, u8)],
    state: &'a ConvState,
    opened_at: Ms,
    waiting_since: Ms,
    queue_key: i64,
    class: u32,
    seq: u64,
    epoch: u32,
    sla_deadline: Ms,
    first_response: Option<Ms>,
    sla_breached: bool,
    previous_agent: Option<AgentIx>,
    sticky: Option<(AgentIx, Ms)>,
    declined: &'a [AgentIx],
    steps_taken: u8,
    repeat: bool,
    matched_rules: &'a [u16],
    held_since: Ms,
}

impl Serialize for Conv {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ConvOut {
            id: &self.id,
            customer: &self.customer,
            cust: self.cust,
            kind: self.kind,
            team: self.team,
            tier: self.tier,
            tiers: self.tiers,
            priority: self.priority,
            skills: &self.skills,
            state: &self.state,
            opened_at: self.opened_at,
            waiting_since: self.waiting_since,
            queue_key: self.queue_key,
            class: self.class,
            seq: self.seq,
            epoch: self.epoch,
            sla_deadline: self.sla_deadline,
            first_response: self.first_response,
            sla_breached: self.sla_breached,
            previous_agent: self.previous_agent,
            sticky: self.sticky,
            declined: &self.declined,
            steps_taken: self.steps_taken,
            repeat: self.repeat,
            matched_rules: &self.matched_rules,
            held_since: self.held_since,
        }
        .serialize(s)
    }
}

impl ConvState {
    /// The state's name: `bot`, `queued`, `offered`, `assigned` or `resolved`.
    pub fn name(&self) -> &'static str {
        match self {
            ConvState::Bot => "bot",
            ConvState::Queued => "queued",
            ConvState::Offered { .. } => "offered",
            ConvState::Assigned { .. } => "assigned",
            ConvState::Resolved { .. } => "resolved",
        }
    }
}

impl Conv {
    /// The agent holding or being offered it.
    pub fn holder(&self) -> Option<AgentIx> {
        match self.state {
            ConvState::Offered { agent, .. } | ConvState::Assigned { agent } => Some(agent),
            _ => None,
        }
    }
}

/// A customer's memory across conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerRec {
    /// The latest conversation, while it can still be reopened.
    pub last_conv: Option<ConvIx>,
    /// The agent of the customer's latest conversation once that one is forgotten (while it is
    /// live, its `previous_agent` is the customer's agent).
    pub last_agent: Option<AgentIx>,
    /// When the customer last wrote, so that `privacy.retention_days` can end the memory of one
    /// who stopped writing (0 in snapshots older than the field: such memory counts as old).
    #[serde(default)]
    pub last_seen: Ms,
}

/// A timer, due at a time; ordered so that equal times fire in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Timer {
    /// An offer lapses.
    OfferTimeout {
        /// The conversation.
        conv: ConvIx,
        /// Which offer.
        offer: u64,
    },
    /// The first-response deadline.
    Sla {
        /// The conversation.
        conv: ConvIx,
    },
    /// The next time-based escalation step.
    Escalation {
        /// The conversation.
        conv: ConvIx,
        /// Which queueing.
        epoch: u32,
    },
    /// The sticky wait ends.
    StickyEnd {
        /// The conversation.
        conv: ConvIx,
        /// Which queueing.
        epoch: u32,
    },
    /// The reopen window closed: the conversation can be forgotten.
    Forget {
        /// The conversation.
        conv: ConvIx,
        /// Resolution time, so a reopened-and-resolved-again conversation is not forgotten early.
        resolved_at: Ms,
    },
    /// The L0 bot stops waiting for the customer's answer.
    L0Timeout {
        /// The conversation.
        conv: ConvIx,
        /// Which stay with the bot.
        epoch: u32,
    },
}

/// The whole mutable state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Latest time seen.
    pub now: Ms,
    /// Global sequence for tie-breaking and round robin.
    pub seq: u64,
    /// Channel kinds seen, by index.
    pub kinds: Vec<String>,
    /// Agents by index.
    pub agents: Vec<Agent>,
    /// Conversation slots; `None` is a free slot.
    pub convs: Vec<Option<Conv>>,
    /// Free slots.
    pub free: Vec<ConvIx>,
    /// Customer index by key.
    pub customers: HashMap<String, u32>,
    /// Customers' memory by customer index.
    pub customer_recs: Vec<CustomerRec>,
    /// Waiting conversations grouped by what they require; see [`QueueClass`].
    pub classes: Vec<QueueClass>,
    /// Conversations reserved for one agent for a while (sticky routing, transfer to an agent):
    /// (agent, queue key, seq, conversation).
    pub reserved: BTreeSet<(AgentIx, i64, u64, ConvIx)>,
    /// Available agents by team and tier (`team * TIERS + tier`), ordered by the team strategy's key.
    pub available: Vec<BTreeSet<(i64, i64, AgentIx)>>,
    /// Pending timers.
    pub timers: TimerQueue,
    /// Conversation index by id (serialised as a map, like the hash map it once was).
    pub conv_ix: ConvIndex,
    /// Recent handle times (ms) by team index, newest last, at most [`HANDLE_KEEP`]: the
    /// expected wait is estimated from them (see [`crate::position`]).
    #[serde(default)]
    pub handle_times: Vec<VecDeque<Ms>>,
}

/// How many recent handle times a team's estimate is based on.
pub const HANDLE_KEEP: usize = 50;

/// Pending timers, earliest first; equal times fire in creation order (the sequence number).
/// Timers are only ever added and popped, never cancelled (a stale one is ignored when it
/// fires), so a heap suffices; timers whose due times only grow (the same delay from "now")
/// go to a FIFO instead, where a push touches only its tail.
#[derive(Debug, Clone, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(Ms, u64, Timer)>>,
    fifo: VecDeque<(Ms, u64, Timer)>,
}

impl TimerQueue {
    /// Adds a timer.
    pub fn push(&mut self, due: Ms, seq: u64, timer: Timer) {
        self.heap.push(Reverse((due, seq, timer)));
    }

    /// Adds a timer due no earlier than any timer added this way before (else it goes to the heap).
    pub fn push_monotonic(&mut self, due: Ms, seq: u64, timer: Timer) {
        if self.fifo.back().is_some_and(|b| (b.0, b.1) > (due, seq)) {
            return self.push(due, seq, timer);
        }
        self.fifo.push_back((due, seq, timer));
    }

    /// The earliest timer, if due at or before `at`, removed.
    pub fn pop_due(&mut self, at: Ms) -> Option<(Ms, Timer)> {
        let heap = self.heap.peek().map(|Reverse(t)| (t.0, t.1));
        let fifo = self.fifo.front().map(|t| (t.0, t.1));
        let from_fifo = match (heap, fifo) {
            (Some(h), Some(f)) => f < h,
            (None, Some(_)) => true,
            _ => false,
        };
        let next = if from_fifo { fifo } else { heap }?;
        if next.0 > at {
            return None;
        }
        let (due, _, timer) = if from_fifo { self.fifo.pop_front()? } else { self.heap.pop()?.0 };
        Some((due, timer))
    }

    /// When the earliest pending timer is due.
    pub fn next_due(&self) -> Option<Ms> {
        let heap = self.heap.peek().map(|Reverse(t)| t.0);
        let fifo = self.fifo.front().map(|t| t.0);
        match (heap, fifo) {
            (Some(h), Some(f)) => Some(h.min(f)),
            (h, f) => h.or(f),
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.heap.len() + self.fifo.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sorted(&self) -> Vec<(Ms, u64, Timer)> {
        let mut v: Vec<_> = self.heap.iter().map(|Reverse(t)| *t).chain(self.fifo.iter().copied()).collect();
        v.sort_unstable();
        v
    }
}

impl PartialEq for TimerQueue {
    fn eq(&self, other: &Self) -> bool {
        self.sorted() == other.sorted()
    }
}

/// Serialised as the timers in firing order, so equal states give equal snapshots.
impl Serialize for TimerQueue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.sorted().serialize(s)
    }
}

impl<'de> Deserialize<'de> for TimerQueue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<(Ms, u64, Timer)>::deserialize(d)?;
        Ok(TimerQueue { heap: v.into_iter().map(Reverse).collect(), fifo: VecDeque::new() })
    }
}

/// Number of tiers (L0-L4): the stride of [`State::available`].
pub const TIERS: usize = 5;

/// The queue of waiting conversations that require the same thing (team, tiers, channel kind,
/// skills at levels). A free agent checks whether it fits a class once and then looks at that
/// class's head, instead of scanning past every waiting conversation it cannot take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueClass {
    /// Team index.
    pub team: u16,
    /// Tier bitmask that may take these conversations.
    pub tiers: u8,
    /// Channel-kind index.
    pub kind: u16,
    /// Required skills (skill index, minimum level), sorted.
    pub skills: Vec<(u16, u8)>,
    /// Waiting conversations in order: (queue key, seq, conversation).
    pub queue: BTreeSet<(i64, u64, ConvIx)>,
}

/// The queue key: priority points converted to waiting time, so that ordering by key is
/// "priority, then age" with linear aging, and the order never changes while both wait.
pub fn queue_key(priority: Priority, waiting_since: Ms, aging_ms: i64) -> i64 {
    i64::from(priority.0) * aging_ms + waiting_since
}

/// What identifies a queue class: team, tiers, channel kind, sorted skills.
pub(crate) type ClassKey = (u16, u8, u16, Vec<(u16, u8)>);

pub(crate) fn intern_kind(kinds: &mut Vec<String>, ix: &mut HashMap<String, u16>, kind: &str) -> u16 {
    if let Some(k) = ix.get(kind) {
        return *k;
    }
    kinds.push(kind.to_string());
    let k = (kinds.len() - 1) as u16;
    ix.insert(kind.to_string(), k);
    k
}

pub(crate) fn set_at<T: Clone + Default, const N: usize>(v: &mut SmallVec<[T; N]>, i: u16, value: T) {
    if v.len() <= i as usize {
        v.resize(i as usize + 1, T::default());
    }
    v[i as usize] = value;
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
