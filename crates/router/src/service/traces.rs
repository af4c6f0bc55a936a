//! Traces through the router (`[telemetry]`): each journaled input's decision is a span, child
//! of the input's own trace context (its `traceparent` header), and the effects it caused carry
//! that span onwards. An agent's command without a context of its own joins the trace of the
//! customer message its conversation last took in, so one customer message, the offer, the
//! agent's answer and the reply to the customer are one trace. Not journaled (tracing is not
//! routing state): after a failover a command may start a trace of its own.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use switchboard_bus::trace;
use uuid::Uuid;

use crate::{Effect, Entry};

/// W3C headers to publish an effect with; empty while tracing is off.
pub(crate) type Carrier = Arc<HashMap<String, String>>;

/// How many inputs' and conversations' contexts are remembered.
const KEEP: usize = 100_000;

/// Trace contexts of inputs waiting to be journaled and of conversations, bounded.
#[derive(Default)]
pub(crate) struct Traces {
    inputs: HashMap<Uuid, String>,
    conversations: HashMap<Uuid, String>,
    order: VecDeque<Uuid>,
}

impl Traces {
    /// Remembers the `traceparent` an input arrived with.
    pub(crate) fn input(&mut self, id: Uuid, traceparent: String) {
        if self.inputs.len() < KEEP {
            self.inputs.insert(id, traceparent);
        }
    }

    /// The parent of an entry's decision: its input's context, else (a command) that of the
    /// conversation it is about.
    fn parent(&mut self, entry: &Entry) -> Option<String> {
        if let Some(own) = entry.input_id().and_then(|id| self.inputs.remove(&id)) {
            return Some(own);
        }
        match entry {
            Entry::Command { command, .. } => command.conversation_id.and_then(|c| self.conversations.get(&c).cloned()),
            Entry::Undelivered { event, .. } => event.conversation_id.and_then(|c| self.conversations.get(&c).cloned()),
            _ => None,
        }
    }

    fn remember(&mut self, conversation: Uuid, traceparent: String) {
        if self.conversations.insert(conversation, traceparent).is_none() {
            self.order.push_back(conversation);
            while self.order.len() > KEEP {
                if let Some(old) = self.order.pop_front() {
                    self.conversations.remove(&old);
                }
            }
        }
    }

    /// Each entry's effects with the carrier of its decision span; the spans, to end once the
    /// effects are stored. With tracing off, every carrier is empty and no span is made.
    pub(crate) fn decide(
        &mut self,
        entries: &[Entry],
        effects: Vec<Vec<Effect>>,
    ) -> (Vec<(Effect, Carrier)>, Vec<tracing::Span>) {
        let empty = Carrier::default();
        if !trace::enabled() {
            return (effects.into_iter().flatten().map(|e| (e, empty.clone())).collect(), Vec::new());
        }
        let mut out = Vec::new();
        let mut spans = Vec::new();
        for (entry, effects) in entries.iter().zip(effects) {
            let Some(parent) = self.parent(entry) else {
                out.extend(effects.into_iter().map(|e| (e, empty.clone())));
                continue;
            };
            let kind = match entry {
                Entry::Inbound { .. } => "inbound",
                Entry::Command { .. } => "command",
                Entry::Undelivered { .. } => "undelivered",
                _ => "other",
            };
            let span = tracing::info_span!("route", otel.name = "router decision", entry = kind);
            trace::set_parent(&span, Some(&parent), None);
            let carrier: Carrier = Arc::new(span.in_scope(trace::current));
            // The conversation's later commands join the latest customer message's trace.
            if let (Entry::Inbound { .. }, Some(traceparent)) = (entry, carrier.get(trace::TRACEPARENT)) {
                for e in &effects {
                    if let Effect::Store(record) = e {
                        self.remember(record.id, traceparent.clone());
                    }
                }
            }
            out.extend(effects.into_iter().map(|e| (e, carrier.clone())));
            spans.push(span);
        }
        (out, spans)
    }
}
