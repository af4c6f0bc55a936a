//! Where waiting conversations sit: queue classes (one per set of requirements) and reservations
//! for one agent. This is what keeps "an agent frees up → give it the oldest conversation it can
//! take" cheap with a hundred thousand waiting: the agent checks each class of its teams once and
//! looks only at that class's head, instead of scanning past everything it cannot take.

use std::collections::BTreeSet;

use crate::engine::Engine;
use crate::state::{AgentIx, ClassKey, ConvIx, QueueClass};

impl Engine {
    /// The class for a set of requirements, created on first use. Classes are never removed:
    /// there are few (bounded by rules × escalation steps × channel kinds) and an empty one costs
    /// one skipped check.
    fn class_for(&mut self, key: ClassKey) -> u32 {
        if let Some(&cl) = self.class_ix.get(&key) {
            return cl;
        }
        let (team, tiers, kind, skills) = key.clone();
        let cl = self.st.classes.len() as u32;
        self.st.classes.push(QueueClass { team, tiers, kind, skills, queue: BTreeSet::new() });
        self.team_classes[team as usize].push(cl);
        self.class_ix.insert(key, cl);
        cl
    }

    /// Rebuilds the lookup indexes over [`crate::state::State::classes`] (after a restore).
    pub(crate) fn index_classes(&mut self) {
        self.class_ix.clear();
        self.team_classes = vec![Vec::new(); self.cfg.teams.len()];
        for (cl, c) in self.st.classes.iter().enumerate() {
            self.class_ix.insert((c.team, c.tiers, c.kind, c.skills.clone()), cl as u32);
            if let Some(list) = self.team_classes.get_mut(c.team as usize) {
                list.push(cl as u32);
            }
        }
    }

    /// Puts a queued conversation where it waits: reserved for its sticky agent, or its class.
    pub(crate) fn place(&mut self, ix: ConvIx) {
        let c = self.conv(ix).expect("live");
        let (key, seq) = (c.queue_key, c.seq);
        if let Some((agent, _)) = c.sticky {
            self.st.reserved.insert((agent, key, seq, ix));
            return;
        }
        let mut skills = c.skills.clone();
        skills.sort_unstable();
        let cl = self.class_for((c.team, c.tiers, c.kind, skills));
        self.conv_mut(ix).expect("live").class = cl;
        self.st.classes[cl as usize].queue.insert((key, seq, ix));
    }

    /// Takes a queued conversation out of where [`Engine::place`] put it. Must run before any
    /// field that decides the place (sticky, requirements, key) changes.
    pub(crate) fn dequeue(&mut self, ix: ConvIx) {
        let c = self.conv(ix).expect("live");
        let (key, seq) = (c.queue_key, c.seq);
        match c.sticky {
            Some((agent, _)) => {
                self.st.reserved.remove(&(agent, key, seq, ix));
            }
            None => {
                let cl = c.class as usize;
                let queue = &mut self.st.classes[cl].queue;
                let was_head = queue.first() == Some(&(key, seq, ix));
                queue.remove(&(key, seq, ix));
                if was_head {
                    self.warm_head(cl);
                }
            }
        }
    }

    /// Reads the record of a class's new head once its head was taken: the next agent of the
    /// class to free up reads it (the decline check, then the assignment), and by then it is in
    /// cache rather than a miss on that agent's path. A load kept by `black_box` whose value is
    /// unused: a prefetch without `unsafe`, which the workspace forbids.
    fn warm_head(&self, cl: usize) {
        if let Some(&(_, _, next)) = self.st.classes[cl].queue.first() {
            std::hint::black_box(self.conv(next).map(|c| c.declined.len()));
        }
    }

    /// Whether agent `a` meets a class's requirements and has room for its channel kind.
    fn fits_class(&self, a: AgentIx, cl: u32) -> bool {
        let agent = &self.st.agents[a as usize];
        let class = &self.st.classes[cl as usize];
        agent.has_tier(class.tiers)
            && agent.meets(&class.skills)
            && agent.load_for(class.kind) < agent.capacity_for(class.kind)
    }

    /// The first waiting conversation, in unified queue order, that agent `a` may take now.
    pub(crate) fn next_for(&self, a: AgentIx) -> Option<ConvIx> {
        let mut best: Option<(i64, u64, ConvIx)> = None;
        let ahead =
            |best: Option<(i64, u64, ConvIx)>, key: i64, seq: u64| best.is_some_and(|b| (key, seq) >= (b.0, b.1));
        let mine = self.st.reserved.range((a, i64::MIN, 0, 0)..=(a, i64::MAX, u64::MAX, ConvIx::MAX));
        for &(_, key, seq, ix) in mine {
            if ahead(best, key, seq) {
                break;
            }
            if self.verdict(a, ix) == crate::Verdict::Eligible {
                best = Some((key, seq, ix));
                break;
            }
        }
        for &t in &self.st.agents[a as usize].teams {
            for &cl in &self.team_classes[t as usize] {
                if !self.fits_class(a, cl) {
                    continue;
                }
                for &(key, seq, ix) in &self.st.classes[cl as usize].queue {
                    if ahead(best, key, seq) {
                        break;
                    }
                    // Requirements are the class's; only a decline is personal.
                    if !self.conv(ix).is_some_and(|c| c.declined.contains(&a)) {
                        best = Some((key, seq, ix));
                        break;
                    }
                }
            }
        }
        best.map(|(_, _, ix)| ix)
    }

    /// All waiting entries (queue key, seq, conversation), unordered.
    pub(crate) fn waiting(&self) -> impl Iterator<Item = (i64, u64, ConvIx)> + '_ {
        let classes = self.st.classes.iter().flat_map(|c| c.queue.iter().copied());
        classes.chain(self.st.reserved.iter().map(|&(_, key, seq, ix)| (key, seq, ix)))
    }
}
