//! The router state's snapshots in the object store, so a new leader replays only the journal
//! after the latest one.

use switchboard_bus::BusError;
use switchboard_bus::async_nats::jetstream::object_store;
use switchboard_core::contract::ROUTER_SNAPSHOTS_STORE;
use tokio::io::AsyncReadExt;
use tracing::debug;

use super::{RouterService, ServiceError};
use crate::{Router, RouterState};

impl RouterService {
    pub(super) async fn snapshots(&self) -> Result<object_store::ObjectStore, ServiceError> {
        self.bus
            .jetstream()
            .get_object_store(ROUTER_SNAPSHOTS_STORE)
            .await
            .map_err(|e| ServiceError::Bus(BusError::Setup { what: ROUTER_SNAPSHOTS_STORE.into(), source: e.into() }))
    }

    pub(super) async fn load_snapshot(&self) -> Result<Router, ServiceError> {
        let store = self.snapshots().await?;
        let mut object = match store.get(&self.svc.group).await {
            Ok(object) => object,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(Router::new(self.cfg.clone())?),
            Err(e) => {
                return Err(ServiceError::Bus(BusError::Setup { what: "router snapshot".into(), source: e.into() }));
            }
        };
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| ServiceError::Corrupt { what: "router snapshot".into(), reason: e.to_string() })?;
        let state: RouterState = serde_json::from_slice(&bytes)
            .map_err(|e| ServiceError::Corrupt { what: "router snapshot".into(), reason: e.to_string() })?;
        Ok(Router::restore(self.cfg.clone(), state)?)
    }

    pub(super) async fn save_snapshot(&self, router: &Router) -> Result<(), ServiceError> {
        let bytes = serde_json::to_vec(&router.state()).expect("router state serialises");
        let store = self.snapshots().await?;
        store
            .put(self.svc.group.as_str(), &mut bytes.as_slice())
            .await
            .map_err(|e| ServiceError::Bus(BusError::Setup { what: "router snapshot".into(), source: e.into() }))?;
        debug!(sequence = router.sequence(), bytes = bytes.len(), "router snapshot saved");
        Ok(())
    }
}
