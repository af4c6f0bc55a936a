//! The leader's side of a configuration reload: the `[routing]` section wanted (the process's
//! file at start, then each reload) is compared with what the group routes by and, when it
//! differs and can apply, journaled as an [`Entry::Configure`] on its own (then a snapshot, so a
//! restore starts from it).

use std::sync::Arc;

use switchboard_bus::Journal;
use switchboard_routing::RoutingConfig;
use tracing::{info, warn};

use super::{RouterService, ServiceError, now_ms};
use crate::{Entry, Router};

/// The `[routing]` sections a process wants its groups to route by, newest last.
pub type RoutingUpdates = tokio::sync::watch::Receiver<Arc<RoutingConfig>>;

impl RouterService {
    /// Follows `updates`: each new `[routing]` section is journaled by this group's leader
    /// (checked first; one that cannot apply is logged and changes nothing).
    pub fn with_reload(mut self, updates: RoutingUpdates) -> Self {
        self.reload = Some(updates);
        self
    }

    /// The section this process wants now: the newest update, else its configuration's.
    pub(super) fn wanted_routing(&mut self) -> Arc<RoutingConfig> {
        match self.reload.as_mut() {
            Some(updates) => updates.borrow_and_update().clone(),
            None => Arc::new(self.cfg.routing.clone()),
        }
    }

    /// Journals `routing` when the group routes by another section and it can apply here.
    pub(super) async fn apply_routing(
        &self,
        journal: &mut Journal,
        router: &mut Router,
        routing: &RoutingConfig,
    ) -> Result<(), ServiceError> {
        if !router.routes_differently(routing) {
            return Ok(());
        }
        if let Err(e) = router.check_routing(routing) {
            warn!(group = %self.svc.group, error = %e, "the changed routing configuration cannot apply; routing as before");
            return Ok(());
        }
        let value = serde_json::to_value(routing).expect("routing configuration serialises");
        let at = now_ms().max(router.engine().now());
        let sequence = self.step_alone(journal, router, Entry::Configure { at, routing: Box::new(value) }).await?;
        info!(group = %self.svc.group, sequence, "routing configuration applied at this journal entry");
        Ok(())
    }
}
