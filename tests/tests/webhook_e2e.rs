//! The webhook channel through the real daemon: a customer's message in, an agent's reply out.

use std::time::Duration;

use switchboard_bus::{Bus, BusConfig};
use switchboard_core::contract::{streams, subjects};
use switchboard_core::outbound::ChannelAddress;
use switchboard_core::{Contract, Envelope, OutboundKind, OutboundMessage};
use switchboard_e2e::{Receiver, TestDaemon, verify_signed};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn customer_message_in_and_agent_reply_out() {
    let shop = Receiver::start("/replies").await;
    let daemon = TestDaemon::start(Some(shop.url.clone()), |_| {}).await;

    // In: a signed message from the shop's backend is stored as an envelope.
    let body = r#"{"message_id":"order-17-q1","customer":{"id":"u-17","name":"Ada","email":"ada@example.com"},"thread_id":"order-17","subject":"Order 17","text":"Where is order 17?","metadata":{"order":"17"}}"#;
    let (status, answer) = daemon.post_signed("evt_1", body).await;
    assert_eq!(status, 202, "{answer}");

    let bus = Bus::connect(&BusConfig::for_url(daemon.nats.url()), &CancellationToken::new()).await.unwrap();
    let stream = bus.jetstream().get_stream(streams::INBOUND).await.unwrap();
    let stored = stream.get_raw_message(1).await.unwrap();
    assert_eq!(stored.subject.as_str(), subjects::inbound("webhook"));
    let envelope = Envelope::from_json(&stored.payload).unwrap();
    assert_eq!(answer["id"], envelope.id.to_string());
    assert_eq!(envelope.thread_key, "shop:order-17");
    assert_eq!(envelope.subject.as_deref(), Some("Order 17"));

    // Out: the reply the router would publish reaches the shop, signed, threaded, once.
    let reply = OutboundMessage {
        id: uuid::Uuid::now_v7(),
        conversation_id: uuid::Uuid::now_v7(),
        channel: "webhook".into(),
        to: ChannelAddress { customer_id: envelope.customer.id.clone(), thread_key: envelope.thread_key.clone() },
        text: "It left the warehouse this morning.".into(),
        subject: envelope.subject.clone(),
        attachments: vec![],
        reply_to: Some(envelope.provider_message_id.clone()),
        kind: OutboundKind::AgentReply,
        agent_id: Some("alice".into()),
        created_at: chrono::Utc::now(),
        metadata: envelope.metadata.clone(),
    };
    bus.publish(&subjects::outbound("webhook"), &reply, &reply.id.to_string()).await.unwrap();
    shop.wait_for("the reply at the shop", Duration::from_secs(10), |_| true).await;
    daemon.stop().await;

    let received = shop.received();
    assert_eq!(received.len(), 1, "delivered exactly once");
    let (headers, body) = &received[0];
    verify_signed(headers, body);
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["thread_id"], "order-17");
    assert_eq!(json["in_reply_to"], "order-17-q1");
    assert_eq!(json["customer_id"], "u-17");
    assert_eq!(json["agent_id"], "alice");
    assert_eq!(json["metadata"]["order"], "17");
    assert!(json["metadata"].get("webhook_source").is_none(), "internal routing key not leaked");
}
