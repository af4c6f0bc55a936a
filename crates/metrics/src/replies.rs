//! Saved replies' usage: how often agents sent each one (`agent_replied` with `data.template`,
//! which the router sets only on a rendered saved reply), as
//! `switchboard_saved_reply_used_total{template}`. The names come from the knowledge base
//! folder, so the series stay as few as its replies.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use switchboard_core::{Event, EventKind};

/// Counts `event` if it is an agent's reply sent from a saved reply.
pub(crate) fn count(used: &mut BTreeMap<String, u64>, event: &Event) {
    if event.kind != EventKind::AgentReplied {
        return;
    }
    if let Some(name) = event.data.get("template").and_then(|t| t.as_str()) {
        *used.entry(name.to_string()).or_default() += 1;
    }
}

/// The counter family, owned for the registry.
#[derive(Debug)]
pub(crate) struct SavedReplies(pub(crate) BTreeMap<String, u64>);

impl Collector for SavedReplies {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = enc.encode_descriptor(
            "saved_reply_used",
            "Agent replies sent from a saved reply of the knowledge base, by its name.",
            None,
            MetricType::Counter,
        )?;
        for (name, n) in &self.0 {
            ConstCounter::new(*n).encode(family.encode_family(&vec![("template", name.clone())])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use switchboard_core::{Event, EventKind};

    fn replied(n: u128, template: Option<&str>) -> Event {
        let mut data = serde_json::Map::new();
        data.insert("first_response".into(), false.into());
        if let Some(t) = template {
            data.insert("template".into(), t.into());
        }
        Event {
            id: uuid::Uuid::from_u128(n),
            at: chrono::DateTime::from_timestamp(n as i64, 0).unwrap(),
            kind: EventKind::AgentReplied,
            conversation_id: Some(uuid::Uuid::from_u128(1)),
            agent_id: Some("alice".into()),
            channel: None,
            data,
        }
    }

    #[test]
    fn each_saved_reply_sent_is_counted_once_by_name() {
        let events = [replied(1, Some("refund-done")), replied(2, None), replied(3, Some("refund-done"))];
        let mut m = crate::Metrics::from_events(&events);
        assert!(!m.apply(&events[0]), "a repeat counts once");
        let text = crate::exposition(&m, None).unwrap();
        assert!(text.contains("switchboard_saved_reply_used_total{template=\"refund-done\"} 2\n"), "{text}");
        assert_eq!(text.matches("switchboard_saved_reply_used_total{").count(), 1, "{text}");
    }
}
