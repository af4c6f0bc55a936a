//! Test kit for channel authors: a real NATS server with the contract set up, builders for
//! contract values, and readers for what a channel stored or dead-lettered.
//!
//! Enable with the `testkit` feature in `[dev-dependencies]`.

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use switchboard_bus::{Bus, BusConfig, BusSlot};
use switchboard_core::contract::{streams, subjects};
use switchboard_core::outbound::ChannelAddress;
use switchboard_core::{Contract, Customer, Envelope, OutboundKind, OutboundMessage};
pub use switchboard_testkit::{NatsServer, free_port, wait_until};
use tokio_util::sync::CancellationToken;

/// A channel running under its runtime in a test ([`TestBus::run_channel`]).
pub struct RunningChannel {
    /// The channel's HTTP routes, for the test to serve, if it has any.
    pub routes: Option<axum::Router>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), crate::AdapterError>>,
}

impl RunningChannel {
    /// Stops the channel and checks that it stops cleanly within 20 seconds.
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the channel stops within 20 s")
            .expect("the channel task")
            .expect("the channel exits cleanly");
    }
}

/// A NATS server of its own with the bus contract set up, dropped with the test.
pub struct TestBus {
    /// The server; restart or stop it to test faults.
    pub server: NatsServer,
    /// A connected bus.
    pub bus: Bus,
}

impl TestBus {
    /// Starts a server and sets the contract up.
    pub async fn start() -> TestBus {
        let server = NatsServer::start();
        let bus = Bus::connect(&BusConfig::for_url(server.url()), &CancellationToken::new())
            .await
            .expect("connect to the test NATS server");
        bus.ensure_contract().await.expect("set up the bus contract");
        TestBus { server, bus }
    }

    /// Runs `channel` under its runtime on this bus until the returned handle is stopped.
    pub fn run_channel<C: crate::Channel>(&self, channel: C, config: crate::RuntimeConfig) -> RunningChannel {
        let stop = CancellationToken::new();
        let runtime = crate::ChannelRuntime::new(std::sync::Arc::new(channel), config, self.slot(), stop.clone());
        let routes = runtime.routes();
        RunningChannel { routes, stop, task: runtime.spawn() }
    }

    /// Stores a conversation record the way the router does (KV `sb_conversations`), with what
    /// channels read back: where it is and its agent.
    pub async fn store_conversation(&self, id: uuid::Uuid, channel: &str, thread_key: &str, agent: Option<&str>) {
        let kv = self.bus.jetstream().get_key_value(switchboard_core::contract::buckets::CONVERSATIONS).await.unwrap();
        let record = serde_json::json!({ "id": id, "channel": channel, "thread_key": thread_key, "agent": agent });
        kv.put(id.to_string(), serde_json::to_vec(&record).unwrap().into()).await.expect("store the record");
    }

    /// Every `csat_received` event stored, oldest first.
    pub async fn csat_events(&self) -> Vec<switchboard_core::Event> {
        self.survey_events(switchboard_core::SurveyKind::Csat).await
    }

    /// Every answer to `kind` stored (`<kind>_received`), oldest first.
    pub async fn survey_events(&self, kind: switchboard_core::SurveyKind) -> Vec<switchboard_core::Event> {
        self.events(kind.event_kind().as_str()).await
    }

    /// Every event of `kind` (`message_received`, ...) stored in `SB_EVENTS`, oldest first,
    /// whether published alone on `sb.events.<kind>` (channels) or in an `events/1` batch on
    /// `sb.events.batch` (the router); each message decoded as readers do
    /// ([`switchboard_core::decode_events`]), an undecodable one failing the test.
    pub async fn events(&self, kind: &str) -> Vec<switchboard_core::Event> {
        let single = subjects::event(kind);
        let mut out = Vec::new();
        for subject in [single.as_str(), subjects::EVENT_BATCH] {
            for (seq, headers, payload) in self.stored_seq(streams::EVENTS, subject).await {
                let schema = headers.get(switchboard_core::contract::headers::SCHEMA).map(|s| s.as_str());
                let events = switchboard_core::decode_events(schema, &payload)
                    .unwrap_or_else(|e| panic!("message {seq} on {subject} is not events: {e}"));
                out.extend(events.into_iter().filter(|e| e.kind.as_str() == kind).map(|e| (seq, e)));
            }
        }
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, e)| e).collect()
    }

    /// [`Self::store_conversation`] for a conversation that was asked `survey` on its resolve.
    pub async fn store_surveyed(
        &self,
        id: uuid::Uuid,
        channel: &str,
        thread_key: &str,
        agent: Option<&str>,
        survey: switchboard_core::SurveyKind,
    ) {
        let kv = self.bus.jetstream().get_key_value(switchboard_core::contract::buckets::CONVERSATIONS).await.unwrap();
        let record = serde_json::json!({ "id": id, "channel": channel, "thread_key": thread_key, "agent": agent, "survey": survey });
        kv.put(id.to_string(), serde_json::to_vec(&record).unwrap().into()).await.expect("store the record");
    }

    /// A slot holding the connected bus, for [`crate::ChannelRuntime::new`].
    pub fn slot(&self) -> BusSlot {
        BusSlot::ready(self.bus.clone())
    }

    /// Every message stored on `subject` in `stream` (a filter: `*` and `>` are wildcards as in
    /// NATS), oldest first, as `(headers, payload)`.
    pub async fn stored(&self, stream: &str, subject: &str) -> Vec<(HeaderMap, Bytes)> {
        self.stored_seq(stream, subject).await.into_iter().map(|(_, h, p)| (h, p)).collect()
    }

    /// [`Self::stored`] with each message's stream sequence.
    pub async fn stored_seq(&self, stream: &str, subject: &str) -> Vec<(u64, HeaderMap, Bytes)> {
        let stream = self.bus.jetstream().get_stream(stream).await.expect("stream exists");
        let state = stream.get_info().await.expect("stream info").state;
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            if let Ok(m) = stream.get_raw_message(seq).await
                && subject_matches(subject, m.subject.as_str())
            {
                out.push((seq, m.headers, m.payload));
            }
        }
        out
    }

    /// Every envelope stored on `sb.in.<channel>`, parsed and validated.
    pub async fn envelopes(&self, channel: &str) -> Vec<Envelope> {
        self.stored(streams::INBOUND, &subjects::inbound(channel))
            .await
            .into_iter()
            .map(|(_, payload)| Envelope::from_json(&payload).expect("stored envelope is valid"))
            .collect()
    }

    /// Every dead letter of `component`, as `(headers, payload)`.
    pub async fn dead_letters(&self, component: &str) -> Vec<(HeaderMap, Bytes)> {
        self.stored(streams::DLQ, &subjects::dlq(component)).await
    }

    /// Publishes an outbound message on `sb.out.<channel>` as the router would.
    pub async fn send_outbound(&self, message: &OutboundMessage) {
        self.bus
            .publish(&subjects::outbound(&message.channel), message, &message.id.to_string())
            .await
            .expect("publish outbound message");
    }

    /// Waits until the consumer `out-<channel>` has nothing pending or unacked.
    pub async fn wait_outbound_drained(&self, channel: &str, timeout: Duration) {
        let durable = format!("out-{channel}");
        let subject = subjects::outbound(channel);
        wait_for(&format!("{durable} drained"), timeout, || async {
            let Ok(stream) = self.bus.jetstream().get_stream(streams::OUTBOUND).await else { return false };
            // The last message on the channel's subject must be acked, not only nothing pending:
            // a consumer created a moment ago has been seen reporting nothing pending yet (CI).
            let last = match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => m.sequence,
                Err(_) => 0,
            };
            match stream.consumer_info(&durable).await {
                Ok(info) => {
                    info.num_pending == 0 && info.num_ack_pending == 0 && info.ack_floor.stream_sequence >= last
                }
                Err(_) => false,
            }
        })
        .await;
    }
}

/// Polls an async `condition` every 20 ms until it holds; panics naming `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A valid envelope on `channel` from customer `customer`, with provider id `provider_id`.
pub fn envelope(channel: &str, provider_id: &str, customer: &str, text: &str) -> Envelope {
    Envelope {
        id: uuid::Uuid::now_v7(),
        channel: channel.into(),
        provider_message_id: provider_id.into(),
        received_at: chrono::Utc::now(),
        customer: Customer { id: customer.into(), name: None, email: None, phone: None, language: None },
        thread_key: customer.into(),
        text: text.into(),
        subject: None,
        html: None,
        attachments: vec![],
        metadata: Default::default(),
        raw_ref: None,
    }
}

/// A valid agent reply on `channel` to `customer`.
pub fn outbound(channel: &str, customer: &str, text: &str) -> OutboundMessage {
    OutboundMessage {
        id: uuid::Uuid::now_v7(),
        conversation_id: uuid::Uuid::now_v7(),
        channel: channel.into(),
        to: ChannelAddress { customer_id: customer.into(), thread_key: customer.into() },
        text: text.into(),
        subject: None,
        attachments: vec![],
        reply_to: None,
        kind: OutboundKind::AgentReply,
        agent_id: Some("agent-1".into()),
        created_at: chrono::Utc::now(),
        metadata: Default::default(),
    }
}

/// The router's question for `kind` about `conversation` on `channel`, with the metadata the
/// router sends (for CSAT also the `csat*` keys).
pub fn survey_request(
    kind: switchboard_core::SurveyKind,
    channel: &str,
    customer: &str,
    conversation: uuid::Uuid,
    agent: &str,
) -> OutboundMessage {
    use switchboard_core::contract::metadata;
    let mut msg = csat_request(channel, customer, conversation, agent);
    if kind != switchboard_core::SurveyKind::Csat {
        msg.metadata.clear();
        msg.text = format!("{} survey question", kind.as_str().to_uppercase());
    }
    msg.metadata.insert(metadata::SURVEY.into(), kind.as_str().into());
    msg.metadata.insert(metadata::SURVEY_CONVERSATION.into(), conversation.to_string());
    msg.metadata.insert(metadata::SURVEY_AGENT.into(), agent.into());
    msg
}

/// The router's satisfaction question for `conversation` on `channel`, as the router sends it.
pub fn csat_request(channel: &str, customer: &str, conversation: uuid::Uuid, agent: &str) -> OutboundMessage {
    use switchboard_core::contract::metadata;
    let metadata = [
        (metadata::CSAT, metadata::CSAT_REQUEST.to_string()),
        (metadata::CSAT_CONVERSATION, conversation.to_string()),
        (metadata::CSAT_AGENT, agent.to_string()),
    ];
    OutboundMessage {
        conversation_id: conversation,
        text: "How did we do? Rate your conversation from 1 (poor) to 5 (great).".into(),
        kind: OutboundKind::System,
        agent_id: None,
        metadata: metadata.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ..outbound(channel, customer, "")
    }
}

/// Whether `subject` is one `filter` selects: `*` stands for one token, a final `>` for the rest.
fn subject_matches(filter: &str, subject: &str) -> bool {
    let (mut f, mut s) = (filter.split('.'), subject.split('.'));
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}
