//! A routing configuration changed while running (`SIGHUP`, or a leader started with a changed
//! file): the leader journals the new `[routing]` section as an [`Entry::Configure`], and every
//! router of the group, leading or replaying later, switches at that entry. The engine keeps what
//! it knows (conversations, agents' status and load); rules, team settings, hours, SLA targets
//! and agents apply from the entry on. The teams themselves cannot change this way.

use switchboard_routing::{Engine, RoutingConfig, RoutingConfigError};
use tracing::warn;

use crate::Router;
use crate::config::{RouterError, narrowed};
use crate::router::Fx;

#[cfg(doc)]
use crate::Entry;

impl Router {
    /// The `[routing]` section the group routes by (the whole section, not narrowed to the group).
    pub fn routing(&self) -> &RoutingConfig {
        &self.full_routing
    }

    /// Whether `routing` differs from the section the group routes by.
    pub fn routes_differently(&self, routing: &RoutingConfig) -> bool {
        serde_json::to_value(routing).ok() != serde_json::to_value(&self.full_routing).ok()
    }

    /// Whether `routing` can replace the running section: valid for this group, with the same teams.
    pub fn check_routing(&self, routing: &RoutingConfig) -> Result<(), RouterError> {
        let mut cfg = self.cfg.clone();
        cfg.routing = routing.clone();
        let cfg = narrowed(cfg)?;
        Engine::new(&cfg.routing)?;
        self.engine.same_teams(&cfg.routing)?;
        Ok(())
    }

    /// Applies a journaled `[routing]` section. One that cannot apply (which the leader checked
    /// before journaling it, so only a journal written by another version) leaves the group
    /// routing as before, on every router alike.
    pub(crate) fn configure(&mut self, routing: &serde_json::Value, fx: &mut Fx) {
        let applied = serde_json::from_value::<RoutingConfig>(routing.clone())
            .map_err(|e| RouterError::Config(RoutingConfigError { key: "routing".into(), reason: e.to_string() }))
            .and_then(|full| {
                let mut cfg = self.cfg.clone();
                cfg.routing = full.clone();
                let cfg = narrowed(cfg)?;
                let decisions = self.engine.reconfigure(&cfg.routing, fx.at)?;
                Ok((full, cfg, decisions))
            });
        match applied {
            Ok((full, cfg, decisions)) => {
                self.l0_possible = crate::kb::possible(cfg.kb.is_some(), &cfg.routing);
                self.cfg = cfg;
                self.full_routing = full;
                self.st.routing = Some(routing.clone());
                self.decisions(decisions, fx);
            }
            Err(e) => warn!(error = %e, "a journaled routing configuration cannot apply; routing as before"),
        }
    }
}
