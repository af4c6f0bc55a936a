//! A component's health, read by the daemon's `/readyz`.

use std::sync::{Arc, Mutex};

/// What a component says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthStatus {
    /// Starting up; not taking work yet.
    Starting,
    /// Working.
    Ready,
    /// Running but impaired (e.g. the provider is unreachable); the reason says how.
    Degraded(String),
    /// Stopped (after shutdown or a fatal error).
    Stopped(String),
}

/// A shared, cheaply cloned health cell.
#[derive(Debug, Clone)]
pub struct Health(Arc<Mutex<HealthStatus>>);

impl Default for Health {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(HealthStatus::Starting)))
    }
}

impl Health {
    /// Sets the status.
    pub fn set(&self, status: HealthStatus) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }

    /// The current status.
    pub fn get(&self) -> HealthStatus {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True when ready.
    pub fn is_ready(&self) -> bool {
        self.get() == HealthStatus::Ready
    }
}
