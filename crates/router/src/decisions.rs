//! The engine's decisions turned into effects: events, offers and updates to agents, auto-replies
//! and the satisfaction survey.

use std::collections::BTreeMap;

use switchboard_core::agent::{Author, HistoryEntry};
use switchboard_core::outbound::ChannelAddress;
use switchboard_core::{AgentDelivery, EventKind, OutboundKind, OutboundMessage, SurveyKind};
use switchboard_routing::{ConversationId, Decision, EscalationCause};

use crate::effect::Effect;
use crate::record::ConversationRecord;
use crate::router::{Fx, Router, WEBCHAT, survey_question, time};
use crate::supervise::mark;

pub(crate) fn reply_subject(subject: &str) -> String {
    if subject.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:")) {
        subject.to_string()
    } else {
        format!("Re: {subject}")
    }
}

/// Outbound metadata naming the agent who wrote, so chat channels can show who answers.
pub(crate) fn agent_name_metadata(name: Option<&str>) -> std::collections::BTreeMap<String, String> {
    name.map(|n| {
        std::collections::BTreeMap::from([(
            switchboard_core::contract::metadata::AGENT_NAME.to_string(),
            n.to_string(),
        )])
    })
    .unwrap_or_default()
}

impl Router {
    /// Turns the engine's decisions into effects and record changes.
    pub(crate) fn decisions(&mut self, decisions: Vec<Decision>, fx: &mut Fx) {
        for (i, d) in decisions.iter().cloned().enumerate() {
            let ahead = &decisions[i + 1..];
            if let Some(c) = d.conversation() {
                fx.touched.insert(c);
            }
            match d {
                Decision::Opened { conversation, repeat } => {
                    let start = self.engine.contact_start(conversation).unwrap_or(fx.at);
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        r.repeat = repeat;
                        r.opened_at = start;
                    }
                    let mut data = self.routing_ahead(conversation, ahead);
                    data["repeat"] = repeat.into();
                    data["contact_start"] = start.into();
                    self.conversation_event(fx, EventKind::ConversationOpened, conversation, None, data);
                }
                Decision::Reopened { conversation } => {
                    let start = self.engine.contact_start(conversation).unwrap_or(fx.at);
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        r.repeat = true;
                        r.reopens += 1;
                    }
                    let mut data = self.routing_ahead(conversation, ahead);
                    data["contact_start"] = start.into();
                    self.conversation_event(fx, EventKind::ConversationReopened, conversation, None, data);
                }
                Decision::Queued { conversation, team, tier, priority, sla_deadline } => {
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        (r.team, r.tier, r.priority, r.sla_deadline) = (team, tier, priority, sla_deadline);
                    }
                }
                Decision::AutoReply { conversation, text, reason } => {
                    let data = serde_json::json!({ "reason": format!("{reason:?}") });
                    self.auto_reply(conversation, text, BTreeMap::new(), data, fx);
                }
                Decision::KbAnswer { conversation, team } => {
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        (r.team, r.tier) = (team.clone(), switchboard_core::Tier::L0);
                    }
                    let hits = std::mem::take(&mut fx.kb);
                    self.kb_answer(conversation, &team, &hits, fx);
                    fx.kb = hits;
                }
                Decision::Offer { conversation, agent, deadline } => {
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        r.offered_at = Some(fx.at);
                    }
                    self.conversation_event(
                        fx,
                        EventKind::Offered,
                        conversation,
                        Some(&agent),
                        serde_json::json!({ "deadline": deadline }),
                    );
                    let actions = ["accept", "decline"];
                    self.deliver_offer(conversation, &agent, deadline, &actions, fx);
                }
                Decision::OfferTimedOut { conversation, agent } => {
                    self.conversation_event(
                        fx,
                        EventKind::OfferTimedOut,
                        conversation,
                        Some(&agent),
                        serde_json::json!({}),
                    );
                    self.update(conversation, &agent, "offer_withdrawn", None, fx);
                }
                Decision::OfferWithdrawn { conversation, agent } => {
                    let by = fx.supervisor_of(conversation);
                    let reason = if by.is_some() { "withdrawn by a supervisor" } else { "agent stepped away" };
                    let mut data = serde_json::json!({ "reason": reason });
                    mark(&mut data, by.as_deref());
                    self.conversation_event(fx, EventKind::OfferDeclined, conversation, Some(&agent), data);
                    self.update(conversation, &agent, "offer_withdrawn", None, fx);
                }
                Decision::Assigned { conversation, agent } => {
                    let was_offered = self
                        .st
                        .records
                        .get(&conversation)
                        .is_some_and(|r| r.state == "offered" && r.agent.as_deref() == Some(agent.as_str()));
                    let data = match self.engine.agent_name(&agent) {
                        Some(name) => serde_json::json!({ "agent_name": name }),
                        None => serde_json::json!({}),
                    };
                    self.conversation_event(fx, EventKind::Assigned, conversation, Some(&agent), data);
                    if was_offered {
                        let since = self.since_offer(conversation);
                        self.update_with(conversation, &agent, "assigned", None, since, fx);
                    } else {
                        let actions = ["reply", "note", "transfer", "escalate", "resolve"];
                        self.deliver_offer(conversation, &agent, fx.at, &actions, fx);
                    }
                }
                Decision::DeliverToAgent { conversation, agent } => {
                    let Some(entry) = self.st.records.get(&conversation).and_then(|r| r.history.last().cloned()) else {
                        continue;
                    };
                    for (i, kind) in self.endpoint_kinds(&agent).into_iter().enumerate() {
                        let (code, customer, channel) = self.label(conversation);
                        let delivery = AgentDelivery::Message(switchboard_core::agent::AgentMessage {
                            id: fx.id(),
                            agent_id: agent.clone(),
                            conversation_id: conversation,
                            code,
                            customer,
                            channel,
                            entry: entry.clone(),
                        });
                        fx.out.push(Effect::Agent { kind, delivery, copy: i > 0 });
                    }
                }
                Decision::FirstResponse { within_sla, .. } => fx.first_response = Some(within_sla),
                Decision::Escalated { conversation, cause, tier, team, note } => {
                    let by = (cause == EscalationCause::Supervisor).then(|| fx.supervisor_of(conversation)).flatten();
                    let mut data =
                        serde_json::json!({ "cause": format!("{cause:?}"), "tier": tier, "team": team, "note": note });
                    if let Some(l0) = self.l0_close(conversation, "handed_off") {
                        merge(&mut data, l0);
                    }
                    mark(&mut data, by.as_deref());
                    self.conversation_event(fx, EventKind::Escalated, conversation, None, data);
                    match by {
                        Some(name) => {
                            // Its holder is told it is no longer theirs, as after a transfer.
                            if let Some(holder) = fx.supervisor.as_ref().and_then(|s| s.holder.clone()) {
                                self.update(conversation, &holder, "transferred", note.clone(), fx);
                            }
                            self.supervisor_note(
                                conversation,
                                &name,
                                &format!("escalated this to {tier:?} (team {team})"),
                                fx,
                            );
                        }
                        None => self.note(conversation, note, fx),
                    }
                }
                Decision::Transferred { conversation, from_agent, to_agent, team, note } => {
                    let by = fx.supervisor_of(conversation);
                    let mut data = serde_json::json!({ "to_agent": to_agent, "team": team, "note": note });
                    // A supervisor may take a conversation from the L0 bot.
                    if let Some(l0) = self.l0_close(conversation, "handed_off") {
                        merge(&mut data, l0);
                    }
                    mark(&mut data, by.as_deref());
                    self.conversation_event(fx, EventKind::Transferred, conversation, from_agent.as_deref(), data);
                    if let Some(from) = &from_agent {
                        self.update(conversation, from, "transferred", note.clone(), fx);
                    }
                    match by {
                        Some(name) => {
                            let did = match &to_agent {
                                Some(agent) => format!("moved this to {agent} (team {team})"),
                                None => format!("moved this to team {team}"),
                            };
                            self.supervisor_note(conversation, &name, &did, fx);
                        }
                        None => self.note(conversation, note, fx),
                    }
                }
                Decision::PriorityChanged { conversation, from, to } => {
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        r.priority = to;
                    }
                    let by = fx.supervisor_of(conversation);
                    let mut data = serde_json::json!({ "from": from.0, "to": to.0 });
                    mark(&mut data, by.as_deref());
                    self.conversation_event(fx, EventKind::PriorityChanged, conversation, None, data);
                    if let Some(name) = by {
                        let did = format!("changed the priority from {} to {}", from.0, to.0);
                        self.supervisor_note(conversation, &name, &did, fx);
                    }
                }
                Decision::SlaBreached { conversation } => {
                    self.conversation_event(fx, EventKind::SlaBreached, conversation, None, serde_json::json!({}));
                }
                Decision::Resolved { conversation, agent } => {
                    // The bot's conversations are not surveyed: the yes or no was the answer.
                    let l0 = self.l0_close(conversation, if fx.l0_yes { "helped" } else { "no_reply" });
                    let at_l0 =
                        self.st.records.get(&conversation).is_some_and(|r| r.tier == switchboard_core::Tier::L0);
                    let survey = if at_l0 { None } else { self.survey_of(conversation) };
                    if let Some(r) = self.st.records.get_mut(&conversation) {
                        r.survey = survey.or(r.survey);
                    }
                    let mut data = match survey {
                        Some(kind) => serde_json::json!({ "survey": kind }),
                        None => serde_json::json!({}),
                    };
                    if let Some(l0) = l0 {
                        merge(&mut data, l0);
                    }
                    let by = fx.supervisor_of(conversation);
                    mark(&mut data, by.as_deref());
                    if let Some(name) = &by {
                        self.supervisor_note(conversation, name, "resolved this", fx);
                    }
                    self.conversation_event(fx, EventKind::Resolved, conversation, agent.as_deref(), data);
                    if let Some(agent) = &agent {
                        self.update(conversation, agent, "resolved", None, fx);
                    }
                    if let Some(kind) = survey {
                        self.survey(kind, conversation, agent.as_deref(), fx);
                    }
                    self.st.resolved.push_back((fx.at, conversation));
                }
                Decision::AgentStatusChanged { agent, status, reason } => {
                    let data = serde_json::json!({ "status": status, "reason": reason });
                    fx.event(EventKind::AgentStatusChanged, None, Some(&agent), data);
                }
                Decision::Rejected { reason, .. } => fx.rejected = Some(reason),
            }
        }
    }

    /// Emits an event about a conversation. Every one carries the conversation's channel and its
    /// routing (team, tier, priority) as of now, so that KPIs can be cut by any of them without
    /// replaying the conversation's history; keys the caller set (e.g. the new tier of an
    /// escalation) win.
    pub(crate) fn conversation_event(
        &self,
        fx: &mut Fx,
        kind: EventKind,
        conversation: ConversationId,
        agent: Option<&str>,
        mut data: serde_json::Value,
    ) {
        let record = self.st.records.get(&conversation);
        if let (Some(r), serde_json::Value::Object(m)) = (record, &mut data) {
            m.entry("team").or_insert_with(|| r.team.clone().into());
            m.entry("tier").or_insert_with(|| serde_json::json!(r.tier));
            m.entry("priority").or_insert_with(|| r.priority.0.into());
        }
        fx.event(kind, Some(conversation), agent, data);
        if let Some(Effect::Event(e)) = fx.out.last_mut() {
            e.channel = record.map(|r| r.channel.clone());
        }
    }

    /// The routing a (re)opened conversation gets from this input: its `Queued` decision further
    /// on (the record is updated only when that decision is handled), else, for one the L0 bot
    /// answers, the engine's view.
    pub(crate) fn routing_ahead(&self, conversation: ConversationId, ahead: &[Decision]) -> serde_json::Value {
        let queued = ahead.iter().find_map(|d| match d {
            Decision::Queued { conversation: c, team, tier, priority, .. } if *c == conversation => {
                Some((team.clone(), *tier, *priority))
            }
            _ => None,
        });
        let routing = queued.or_else(|| self.engine.explain(conversation).map(|e| (e.team, e.tier, e.priority)));
        match routing {
            Some((team, tier, priority)) => serde_json::json!({ "team": team, "tier": tier, "priority": priority.0 }),
            None => serde_json::json!({}),
        }
    }

    /// Sends an automatic reply (a rule's, out of hours, the L0 bot's answer) with `metadata`,
    /// keeps it in the history and emits `auto_replied` with `data`.
    pub(crate) fn auto_reply(
        &mut self,
        conversation: ConversationId,
        text: String,
        metadata: BTreeMap<String, String>,
        data: serde_json::Value,
        fx: &mut Fx,
    ) {
        let Some(r) = self.st.records.get_mut(&conversation) else { return };
        let id = fx.id();
        r.push(HistoryEntry {
            outbound_id: Some(id),
            ..HistoryEntry::new(time(fx.at), Author::System, None, text.clone())
        });
        let outbound = from_switchboard(r, conversation, id, fx.at, text, OutboundKind::AutoReply, metadata);
        fx.out.push(Effect::Outbound(outbound));
        self.conversation_event(fx, EventKind::AutoReplied, conversation, None, data);
        fx.touched.insert(conversation);
    }

    /// The survey a conversation being resolved is asked: its team's (`teams.<name>.survey`),
    /// none when `routing.csat_survey` turns surveys off.
    pub(crate) fn survey_of(&self, conversation: ConversationId) -> Option<SurveyKind> {
        if !self.cfg.routing.csat_survey {
            return None;
        }
        let r = self.st.records.get(&conversation)?;
        self.cfg.routing.teams.get(&r.team).map_or(Some(SurveyKind::Csat), |t| t.survey.kind())
    }

    /// Asks the customer to answer `kind` about a resolved conversation on the channel they
    /// used. The web chat asks by itself (buttons for the survey the `resolved` event names), so
    /// it gets no question from here. Not added to the history: it is not part of what the agent
    /// and customer said.
    pub(crate) fn survey(&self, kind: SurveyKind, conversation: ConversationId, agent: Option<&str>, fx: &mut Fx) {
        use switchboard_core::contract::metadata;
        let Some(r) = self.st.records.get(&conversation) else { return };
        if r.channel == WEBCHAT {
            return;
        }
        let mut meta = BTreeMap::from([
            (metadata::SURVEY.to_string(), kind.as_str().to_string()),
            (metadata::SURVEY_CONVERSATION.to_string(), conversation.to_string()),
        ]);
        if let Some(agent) = agent {
            meta.insert(metadata::SURVEY_AGENT.to_string(), agent.to_string());
        }
        if kind == SurveyKind::Csat {
            // The keys of the release before NPS and CES, for receivers written against it.
            meta.insert(metadata::CSAT.to_string(), metadata::CSAT_REQUEST.to_string());
            meta.insert(metadata::CSAT_CONVERSATION.to_string(), conversation.to_string());
            if let Some(agent) = agent {
                meta.insert(metadata::CSAT_AGENT.to_string(), agent.to_string());
            }
        }
        system_message(r, conversation, survey_question(kind).to_string(), meta, fx);
    }
}

/// Adds `extra`'s fields to the object `data`.
fn merge(data: &mut serde_json::Value, extra: serde_json::Value) {
    if let (serde_json::Value::Object(d), serde_json::Value::Object(e)) = (data, extra) {
        d.extend(e);
    }
}

/// A `system` message from Switchboard to the customer of `r` on their channel, threaded as a
/// reply to their last message: a survey question, a queue notice.
pub(crate) fn system_message(
    r: &ConversationRecord,
    conversation: ConversationId,
    text: String,
    metadata: BTreeMap<String, String>,
    fx: &mut Fx,
) {
    let id = fx.id();
    fx.out.push(Effect::Outbound(from_switchboard(r, conversation, id, fx.at, text, OutboundKind::System, metadata)));
}

/// A message of `kind` from Switchboard (not an agent) to the customer of `r`, threaded as a
/// reply to their last message.
fn from_switchboard(
    r: &ConversationRecord,
    conversation: ConversationId,
    id: uuid::Uuid,
    at: switchboard_routing::Ms,
    text: String,
    kind: OutboundKind,
    metadata: BTreeMap<String, String>,
) -> OutboundMessage {
    OutboundMessage {
        id,
        conversation_id: conversation,
        channel: r.channel.clone(),
        to: ChannelAddress { customer_id: r.customer.id.clone(), thread_key: r.thread_key.clone() },
        text,
        subject: r.subject.as_ref().map(|s| reply_subject(s)),
        attachments: Vec::new(),
        reply_to: r.last_provider_message_id.clone(),
        kind,
        agent_id: None,
        created_at: time(at),
        metadata,
    }
}
