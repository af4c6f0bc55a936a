//! Reading a stream's messages strictly in stream order from a known sequence, without acks: for
//! a reader that keeps its own place (the router journals the sequence of each command it takes),
//! so that what it read but did not act on is read again by whoever resumes from that place.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::{Stream, StreamExt};

use crate::{Bus, BusError, Delivery};

impl Bus {
    /// The messages of `stream` on `filter` from stream sequence `from` on, in order, as they
    /// are stored (it waits for new ones). An ordered consumer: ephemeral, unacked, recreated by
    /// the client where it left off when the server restarts. The stream ends on an error the
    /// client cannot recover from; the caller resumes after the last sequence it took.
    pub async fn follow(
        &self,
        stream: &str,
        filter: &str,
        from: u64,
    ) -> Result<impl Stream<Item = Result<Delivery, BusError>> + Send + use<>, BusError> {
        let err = {
            let (stream, filter) = (stream.to_string(), filter.to_string());
            move |e: Box<dyn std::error::Error + Send + Sync>| BusError::Consumer {
                stream: stream.clone(),
                durable: format!("ordered reader of {filter}"),
                source: e,
            }
        };
        let consumer = self
            .jetstream()
            .get_stream(stream)
            .await
            .map_err(|e| err(e.into()))?
            .create_consumer(pull::OrderedConfig {
                filter_subject: filter.to_string(),
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from.max(1) },
                // Idle heartbeats of the pull requests notice a lost server within seconds.
                ..Default::default()
            })
            .await
            .map_err(|e| err(e.into()))?;
        let messages = consumer.messages().await.map_err(|e| err(e.into()))?;
        Ok(messages.map(move |next| {
            let message = next.map_err(|e| err(e.into()))?;
            let info = message.info().map_err(|e| err(e.to_string().into()))?;
            let age = SystemTime::now().duration_since(SystemTime::from(info.published)).unwrap_or(Duration::ZERO);
            Ok(Delivery {
                subject: message.subject.to_string(),
                headers: message.headers.clone().unwrap_or_default(),
                payload: message.payload.clone(),
                attempt: 1,
                stream_sequence: info.stream_sequence,
                age,
                last: false,
            })
        }))
    }
}
