//! The leader's answers to the privacy requests: erase a person, end silent customers' memory.
//! Each is journaled on its own and followed by a snapshot (see `docs/data-lifecycle.md`).

use switchboard_bus::Journal;
use switchboard_routing::Ms;
use tracing::info;

use super::{RouterService, ServiceError, now_ms};
use crate::group::{Group, Recent};
use crate::{Entry, Router};

impl RouterService {
    /// Erases a person: journals an [`Entry::Forget`], applies it, publishes its effects, saves a
    /// snapshot (so the journal up to here is never replayed again and the eraser may delete
    /// the entries that name the person) and answers with the erased conversations and the
    /// snapshot's sequence. A request it cannot read is answered with an error; a journal or
    /// snapshot failure is answered too and stops leading (as a failed step does).
    pub(super) async fn answer_forget(
        &self,
        journal: &mut Journal,
        router: &mut Router,
        request: switchboard_bus::async_nats::Message,
    ) -> Result<(), ServiceError> {
        #[derive(serde::Deserialize)]
        struct Forget {
            customers: Vec<String>,
            threads: Vec<String>,
        }
        let Ok(req) = serde_json::from_slice::<Forget>(&request.payload) else {
            let body = serde_json::json!({ "error": "not a forget request" });
            self.answer(request, body.to_string().into_bytes()).await;
            return Ok(());
        };
        let at = now_ms().max(router.engine().now());
        let entry = Entry::Forget { at, customers: req.customers, threads: req.threads };
        let outcome = self.step_alone(journal, router, entry).await;
        let body = match &outcome {
            Ok(sequence) => serde_json::json!({ "conversations": router.forgotten(), "snapshot_sequence": sequence }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        info!(group = %self.svc.group, erased = router.forgotten().len(), ok = outcome.is_ok(), "customer erased from the router");
        self.answer(request, body.to_string().into_bytes()).await;
        outcome.map(|_| ())
    }

    /// Ends the last-agent memory of customers silent since the request's cut-off (journaled).
    pub(super) async fn answer_expire(
        &self,
        journal: &mut Journal,
        router: &mut Router,
        request: switchboard_bus::async_nats::Message,
    ) -> Result<(), ServiceError> {
        #[derive(serde::Deserialize)]
        struct Expire {
            before: Ms,
        }
        let Ok(req) = serde_json::from_slice::<Expire>(&request.payload) else {
            let body = serde_json::json!({ "error": "not an expire request" });
            self.answer(request, body.to_string().into_bytes()).await;
            return Ok(());
        };
        let at = now_ms().max(router.engine().now());
        let outcome = self.step_alone(journal, router, Entry::Expire { at, before: req.before }).await;
        let body = match &outcome {
            Ok(sequence) => serde_json::json!({ "conversations": [], "snapshot_sequence": sequence }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        self.answer(request, body.to_string().into_bytes()).await;
        outcome.map(|_| ())
    }

    /// Journals one entry on its own, applies it, publishes its effects and saves a snapshot;
    /// returns the snapshot's sequence.
    pub(super) async fn step_alone(
        &self,
        journal: &mut Journal,
        router: &mut Router,
        entry: Entry,
    ) -> Result<u64, ServiceError> {
        let mut group = Group::default();
        group.offer(entry, None, &Recent::new(self.svc.redelivery_window));
        self.step(journal, router, &group).await?;
        self.save_snapshot(router).await?;
        Ok(router.sequence())
    }
}
