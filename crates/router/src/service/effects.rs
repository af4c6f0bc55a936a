//! Publishing a step's effects: events, messages, deliveries and records stored in order, then
//! the commands' verdicts kept and announced.

use switchboard_core::contract::{buckets, headers, subjects};
use switchboard_core::{AgentDelivery, CommandVerdict, EventBatch};
use tracing::{debug, info, warn};

use super::{RouterService, ServiceError};
use crate::Effect;

impl RouterService {
    /// Publishes effects: all sent in order on one connection (so JetStream stores them in that
    /// order), then every ack awaited; each carries its stable id as `Nats-Msg-Id`.
    /// Each effect carries the trace context it is given (empty while tracing is off).
    ///
    /// `effects` are those of one journal message (a step, or one message of a replay), whose
    /// events go out as `events/1` batches on `sb.events.batch` ([`event_batches`]) where the
    /// first of them stood: a replay of the message publishes the same batches with the same ids,
    /// which JetStream drops.
    pub(super) async fn publish(&self, effects: Vec<(Effect, super::traces::Carrier)>) -> Result<(), ServiceError> {
        let mut pending = Vec::new();
        let mut records = Vec::new();
        let mut results = Vec::new();
        let mut batches = Some(event_batches(&effects));
        for (effect, trace) in effects {
            match effect {
                Effect::Event(_) => {
                    for (batch, trace) in batches.take().into_iter().flatten() {
                        let id = batch.msg_id();
                        pending.push(self.bus.start_publish_traced(subjects::EVENT_BATCH, &batch, &id, &trace).await?);
                    }
                }
                Effect::Outbound(o) => {
                    let subject = subjects::outbound(&o.channel);
                    pending.push(self.bus.start_publish_traced(&subject, &o, &o.id.to_string(), &trace).await?);
                }
                Effect::Agent { kind, delivery, copy } => {
                    let (id, agent) = match &delivery {
                        AgentDelivery::Offer(o) => (o.id, &o.agent_id),
                        AgentDelivery::Message(m) => (m.id, &m.agent_id),
                        AgentDelivery::Update(u) => (u.id, &u.agent_id),
                    };
                    let subject = subjects::agent_delivery(&kind, agent);
                    let mut extra = trace;
                    if copy {
                        std::sync::Arc::make_mut(&mut extra).insert(headers::ENDPOINT_COPY.into(), "true".into());
                    }
                    pending.push(self.bus.start_publish_traced(&subject, &delivery, &id.to_string(), &extra).await?);
                }
                Effect::Store(record) => records.push(record),
                Effect::CommandResult { command, rejected } => results.push((command, rejected)),
            }
        }
        // A record is the conversation's whole state: of several in one group the last wins, and
        // the rest can be written at once since they are for different conversations.
        let mut latest = std::collections::HashMap::new();
        for record in records {
            latest.insert(record.id, record);
        }
        futures::future::join_all(latest.values().map(|record| self.store(record))).await;
        for p in pending {
            p.acked().await?;
        }
        // Only now, with every effect stored, does the issuer (the agent API) hear the outcome:
        // kept in `sb_commands` first, so that whoever retries the command id later is answered
        // from there, then told over core NATS (nobody listening is fine).
        let verdicts: Vec<_> =
            results.into_iter().map(|(command_id, rejected)| CommandVerdict { command_id, rejected }).collect();
        futures::future::join_all(verdicts.iter().map(|v| self.keep_verdict(v))).await;
        for verdict in verdicts {
            if let Some(reason) = &verdict.rejected {
                info!(command = %verdict.command_id, %reason, "agent command rejected");
            }
            let body = serde_json::to_vec(&verdict).expect("verdicts serialise");
            let subject = subjects::router_result(&verdict.command_id.to_string());
            if let Err(e) = self.bus.client().publish(subject, body.into()).await {
                debug!(error = %e, "command result not published");
            }
        }
        Ok(())
    }

    /// Keeps a command's verdict for retries of its id; a lost write only means a retry waits
    /// for the verdict instead of getting it at once, so a failure is logged, not fatal.
    pub(super) async fn keep_verdict(&self, verdict: &CommandVerdict) {
        let bucket = self.commands.get_or_try_init(|| self.bus.jetstream().get_key_value(buckets::COMMANDS));
        let kv = match bucket.await {
            Ok(kv) => kv,
            Err(e) => return warn!(error = %e, "command verdict bucket unavailable"),
        };
        let value = serde_json::to_vec(verdict).expect("verdicts serialise");
        if let Err(e) = kv.put(CommandVerdict::key(&verdict.command_id), value.into()).await {
            warn!(command = %verdict.command_id, error = %e, "keeping the command verdict failed");
        }
    }

    /// Stores a conversation record for readers (the agent API); losing one write is repaired
    /// by the next change of the conversation, so a failure is logged, not fatal.
    pub(super) async fn store(&self, record: &crate::ConversationRecord) {
        let bucket = self.conversations.get_or_try_init(|| self.bus.jetstream().get_key_value(buckets::CONVERSATIONS));
        let kv = match bucket.await {
            Ok(kv) => kv,
            Err(e) => return warn!(error = %e, "conversation bucket unavailable"),
        };
        let value = serde_json::to_vec(record).expect("records serialise");
        if let Err(e) = kv.put(record.id.to_string(), value.into()).await {
            warn!(conversation = %record.id, error = %e, "storing the conversation record failed");
        }
    }
}

/// The events among `effects` as `events/1` batches ([`EventBatch::pack`]: one for the whole
/// step, whatever conversations it touched, unless the size bounds split it), each with the
/// trace context of its first event. Packing depends only on the events, so the same journal message always yields the same
/// batches and `Nats-Msg-Id`s.
fn event_batches(effects: &[(Effect, super::traces::Carrier)]) -> Vec<(EventBatch, super::traces::Carrier)> {
    let events: Vec<_> = effects
        .iter()
        .filter_map(|(effect, trace)| match effect {
            Effect::Event(e) => Some((e.clone(), trace.clone())),
            _ => None,
        })
        .collect();
    let traces: std::collections::HashMap<_, _> = events.iter().map(|(e, t)| (e.id, t.clone())).collect();
    EventBatch::pack(events.into_iter().map(|(e, _)| e).collect())
        .into_iter()
        .map(|batch| {
            let trace = batch.events.first().and_then(|e| traces.get(&e.id)).cloned().unwrap_or_default();
            (batch, trace)
        })
        .collect()
}
