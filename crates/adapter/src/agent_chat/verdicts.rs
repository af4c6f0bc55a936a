//! Verdicts awaited apart from a chat platform's event loop: a command is confirmed to the
//! platform once it is stored on the bus, and what the router said is told to the agent later,
//! so a slow verdict never holds up the bot's other events.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::{PublishedCommand, Verdict};

/// Awaits published commands' verdicts, a bounded number at once.
#[derive(Clone)]
pub struct Verdicts {
    slots: Arc<Semaphore>,
}

impl Verdicts {
    /// Room for `at_once` verdicts awaited together; one more waits for a slot.
    pub fn new(at_once: usize) -> Verdicts {
        Verdicts { slots: Arc::new(Semaphore::new(at_once.max(1))) }
    }

    /// Awaits `published`'s verdict for up to `wait` (then `Pending`) in a task of its own and
    /// runs `then` with it. With every slot taken this waits first, so tasks never pile up.
    pub async fn after<F, Fut>(&self, mut published: PublishedCommand, wait: Duration, then: F)
    where
        F: FnOnce(Verdict) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let Ok(slot) = self.slots.clone().acquire_owned().await else { return };
        tokio::spawn(async move {
            let verdict = published.verdict(wait).await;
            then(verdict).await;
            drop(slot);
        });
    }
}
