//! Deliveries to agents: offers with the history the agent needs, messages and updates, on every
//! endpoint of the agent and on its own stream.

use switchboard_core::AgentDelivery;
use switchboard_core::agent::{Author, ConversationUpdate, HistoryEntry, Offer};
use switchboard_routing::{ConversationId, Ms};

use crate::effect::Effect;
use crate::router::{Fx, Router, time};

impl Router {
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
        let (code, customer, channel) = self.label(conversation);
        for (i, kind) in self.endpoint_kinds(agent).into_iter().enumerate() {
            let delivery = AgentDelivery::Update(ConversationUpdate {
                id: fx.id(),
                agent_id: agent.into(),
                conversation_id: conversation,
                code: code.clone(),
                customer: customer.clone(),
                channel: channel.clone(),
                change: change.into(),
                note: note.clone(),
                history: history.clone(),
            });
            fx.out.push(Effect::Agent { kind, delivery, copy: i > 0 });
        }
    }

    /// How an agent tells the conversation apart: its short code, the customer's display name
    /// and the channel.
    pub(crate) fn label(&self, conversation: ConversationId) -> (String, Option<String>, String) {
        let code = self.engine.code(conversation).unwrap_or_default();
        match self.st.records.get(&conversation) {
            Some(r) => (code, r.customer.display_name(), r.channel.clone()),
            None => (code, None, String::new()),
        }
    }

    /// What the customer wrote in `conversation` since its current offer was made.
    pub(crate) fn since_offer(&self, conversation: ConversationId) -> Vec<HistoryEntry> {
        let Some(r) = self.st.records.get(&conversation) else { return Vec::new() };
        let Some(since) = r.offered_at.map(time) else { return Vec::new() };
        r.history.iter().filter(|e| e.from == Author::Customer && e.at > since).cloned().collect()
    }

    /// The history an agent sees: the customer's linked conversations' entries, oldest first,
    /// the last `offer_history` of them.
    pub(crate) fn history_for(&self, conversation: ConversationId) -> Vec<HistoryEntry> {
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

    pub(crate) fn deliver_offer(
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
        let suggested = self.st.suggested.get(&conversation).cloned().unwrap_or_default();
        for (i, kind) in self.endpoint_kinds(agent).into_iter().enumerate() {
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
                code: self.engine.code(conversation).unwrap_or_default(),
                reopened: r.reopens > 0,
                suggested_replies: suggested.clone(),
            };
            fx.out.push(Effect::Agent { kind, delivery: AgentDelivery::Offer(Box::new(offer)), copy: i > 0 });
        }
    }
}
