//! Typed publish: schema header, de-duplication id, wait for the JetStream ack.

use async_nats::HeaderMap;
use bytes::Bytes;
use switchboard_core::{Contract, contract::headers};

use crate::{Bus, BusError};

/// Where JetStream stored a published message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The stream that stored it.
    pub stream: String,
    /// Its sequence in that stream (the original's sequence for a duplicate).
    pub sequence: u64,
    /// True when JetStream had already stored a message with the same `Nats-Msg-Id`.
    pub duplicate: bool,
}

impl Bus {
    /// Validates `value`, publishes it on `subject` with `Sb-Schema` and `Nats-Msg-Id: msg_id`, and
    /// returns once JetStream acknowledged it as stored.
    pub async fn publish<T: Contract>(&self, subject: &str, value: &T, msg_id: &str) -> Result<Published, BusError> {
        value.validate().map_err(|source| BusError::Invalid { schema: T::SCHEMA, source })?;
        let payload =
            serde_json::to_vec(value).map_err(|e| BusError::Publish { subject: subject.into(), source: e.into() })?;
        let mut headers = HeaderMap::new();
        headers.insert(headers::SCHEMA, T::SCHEMA);
        self.publish_raw(subject, headers, payload.into(), msg_id).await
    }

    /// Like [`Bus::publish`], but returns as soon as the message is sent: await
    /// [`PendingPublish::acked`] for the ack. Several sent in a row on one connection are stored
    /// in the order sent, and their acks are awaited together instead of one round trip each.
    pub async fn start_publish<T: Contract>(
        &self,
        subject: &str,
        value: &T,
        msg_id: &str,
    ) -> Result<PendingPublish, BusError> {
        self.start_publish_traced(subject, value, msg_id, &crate::trace::current()).await
    }

    /// Like [`Bus::start_publish`], carrying the trace context `trace` (W3C headers, see
    /// [`crate::trace`]) instead of the current span's.
    pub async fn start_publish_traced<T: Contract>(
        &self,
        subject: &str,
        value: &T,
        msg_id: &str,
        trace: &std::collections::HashMap<String, String>,
    ) -> Result<PendingPublish, BusError> {
        value.validate().map_err(|source| BusError::Invalid { schema: T::SCHEMA, source })?;
        let payload =
            serde_json::to_vec(value).map_err(|e| BusError::Publish { subject: subject.into(), source: e.into() })?;
        let mut headers = HeaderMap::new();
        headers.insert(headers::SCHEMA, T::SCHEMA);
        headers.insert(headers::MSG_ID, msg_id);
        for (key, value) in trace {
            headers.insert(key.as_str(), value.as_str());
        }
        let ack = self
            .jetstream()
            .publish_with_headers(subject.to_string(), headers, payload.into())
            .await
            .map_err(|e| BusError::Publish { subject: subject.into(), source: e.into() })?;
        Ok(PendingPublish { subject: subject.to_string(), ack })
    }

    /// Publishes bytes with the given headers plus `Nats-Msg-Id`, waiting for the ack.
    pub async fn publish_raw(
        &self,
        subject: &str,
        mut headers: HeaderMap,
        payload: Bytes,
        msg_id: &str,
    ) -> Result<Published, BusError> {
        let err =
            |source: Box<dyn std::error::Error + Send + Sync>| BusError::Publish { subject: subject.into(), source };
        headers.insert(headers::MSG_ID, msg_id);
        if headers.get(crate::trace::TRACEPARENT).is_none() {
            crate::trace::inject(&mut headers);
        }
        let ack = self
            .jetstream()
            .publish_with_headers(subject.to_string(), headers, payload)
            .await
            .map_err(|e| err(e.into()))?
            .await
            .map_err(|e| err(e.into()))?;
        Ok(Published { stream: ack.stream, sequence: ack.sequence, duplicate: ack.duplicate })
    }
}

/// A message sent to JetStream whose ack is still to come.
pub struct PendingPublish {
    subject: String,
    ack: async_nats::jetstream::context::PublishAckFuture,
}

impl PendingPublish {
    /// Waits for the ack: the message is stored once this returns `Ok`.
    pub async fn acked(self) -> Result<Published, BusError> {
        let ack = self.ack.await.map_err(|e| BusError::Publish { subject: self.subject, source: e.into() })?;
        Ok(Published { stream: ack.stream, sequence: ack.sequence, duplicate: ack.duplicate })
    }
}
