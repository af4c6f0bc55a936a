//! The leader's request-reply views over core NATS: the queue, a conversation's routing
//! explanation (the offers view is in `crate::offers`).

use switchboard_bus::BusError;
use tracing::debug;
use uuid::Uuid;

use super::{RouterService, ServiceError, now_ms};
use crate::Router;

impl RouterService {
    /// A core NATS subscription for the leader's request-reply views.
    pub(super) async fn subscribe(
        &self,
        subject: String,
    ) -> Result<switchboard_bus::async_nats::Subscriber, ServiceError> {
        let what = format!("subscription to {subject}");
        self.bus
            .client()
            .subscribe(subject)
            .await
            .map_err(|e| ServiceError::Bus(BusError::Setup { what, source: e.into() }))
    }

    pub(super) async fn answer_queue(&self, router: &Router, request: switchboard_bus::async_nats::Message) {
        let body = serde_json::to_vec(&router.queue_view(now_ms())).expect("queue view serialises");
        self.answer(request, body).await;
    }

    /// Sends a request-reply answer; a requester that gave up is not an error.
    pub(super) async fn answer(&self, request: switchboard_bus::async_nats::Message, body: Vec<u8>) {
        let Some(reply) = request.reply else { return };
        if let Err(e) = self.bus.client().publish(reply, body.into()).await {
            debug!(error = %e, subject = %request.subject, "answer not sent");
        }
    }

    pub(super) async fn answer_explain(&self, router: &Router, request: switchboard_bus::async_nats::Message) {
        let Some(reply) = request.reply else { return };
        let id = std::str::from_utf8(&request.payload).ok().and_then(|s| s.trim().parse::<Uuid>().ok());
        let body = match id {
            None => serde_json::json!({ "error": "not a conversation id" }),
            Some(id) => match (router.engine().explain(id), router.record(id)) {
                (Some(why), record) => serde_json::json!({
                    "explanation": why,
                    "channel": record.map(|r| r.channel.clone()),
                    "customer": record.map(|r| r.customer.id.clone()),
                }),
                (None, _) => serde_json::json!({ "error": "unknown conversation (or resolved and forgotten)" }),
            },
        };
        if let Err(e) = self.bus.client().publish(reply, body.to_string().into()).await {
            debug!(error = %e, "explanation not sent");
        }
    }
}
