//! The sockets open on this process, by session, and the one live feed that fans transcript
//! entries out to them.
//!
//! Every process runs one ordered consumer over `sb.webchat.session.>` from "new", so an entry
//! written by any process (an agent's reply sent by another replica) reaches the socket wherever
//! it is. A socket that cannot keep up is closed rather than buffered without bound: the widget
//! reconnects and replays from its last sequence, so nothing is lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use switchboard_bus::{Backoff, Bus};
use switchboard_core::contract::streams;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::transcript::{self, Entry};

/// Frames queued per socket before it counts as too slow and is closed.
pub const SOCKET_QUEUE: usize = 64;

/// What the hub hands a socket.
#[derive(Debug, Clone)]
pub enum Push {
    /// A transcript entry and its sequence.
    Entry(u64, Arc<Entry>),
    /// An agent is typing.
    Typing(Option<String>),
}

/// The sockets of one session: (socket id, its queue).
type Sockets = Vec<(u64, mpsc::Sender<Push>)>;

/// Sockets by session.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<std::sync::Mutex<HashMap<String, Sockets>>>,
    next_id: Arc<AtomicU64>,
}

/// A socket's registration; unregisters when dropped.
pub struct Registration {
    hub: Hub,
    session: String,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.hub.inner.lock().expect("hub lock");
        if let Some(list) = map.get_mut(&self.session) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                map.remove(&self.session);
            }
        }
    }
}

impl Hub {
    /// Registers a socket of `session`; pushes arrive on the returned receiver.
    pub fn register(&self, session: &str) -> (Registration, mpsc::Receiver<Push>) {
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner.lock().expect("hub lock").entry(session.to_string()).or_default().push((id, tx));
        (Registration { hub: self.clone(), session: session.to_string(), id }, rx)
    }

    /// Sockets open on this process.
    pub fn sockets(&self) -> usize {
        self.inner.lock().expect("hub lock").values().map(Vec::len).sum()
    }

    /// Whether `session` has a socket on this process.
    pub fn has(&self, session: &str) -> bool {
        self.inner.lock().expect("hub lock").contains_key(session)
    }

    /// Hands `push` to every socket of `session`; a socket whose queue is full is dropped from
    /// the hub (its receiver sees the end and closes the socket so the widget resumes).
    pub fn push(&self, session: &str, push: Push) {
        let mut map = self.inner.lock().expect("hub lock");
        let Some(list) = map.get_mut(session) else { return };
        list.retain(|(id, tx)| match tx.try_send(push.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                debug!(session, socket = id, "socket too slow: closing it, the widget resumes");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if list.is_empty() {
            map.remove(session);
        }
    }

    /// Feeds every new transcript entry to the sockets here until `stop` fires.
    pub async fn run_feed(&self, bus: Bus, stop: CancellationToken) {
        let backoff = Backoff { initial: Duration::from_millis(200), max: Duration::from_secs(5) };
        let mut attempt = 0u64;
        // Resume after the last entry seen, so a restarted feed misses nothing.
        let mut last_seq: Option<u64> = None;
        while !stop.is_cancelled() {
            match self.feed_once(&bus, &stop, &mut last_seq).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(error = %e, "web-chat live feed interrupted; restarting");
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff.delay(attempt)) => {}
                    }
                }
            }
        }
    }

    async fn feed_once(
        &self,
        bus: &Bus,
        stop: &CancellationToken,
        last_seq: &mut Option<u64>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut stream = bus.jetstream().get_stream(streams::WEBCHAT).await?;
        // The first start begins after what is stored now, and remembers that position: a feed
        // that restarts before it saw any entry must still resume there, not at "new" again,
        // or entries stored while it was down never reach the sockets open here.
        let start = match *last_seq {
            Some(seq) => seq,
            None => *last_seq.insert(stream.info().await?.state.last_sequence),
        };
        let deliver_policy = DeliverPolicy::ByStartSequence { start_sequence: start + 1 };
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: "sb.webchat.session.>".into(),
                deliver_policy,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        info!("web-chat live feed running");
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                m = messages.next() => match m {
                    Some(m) => m?,
                    None => return Err("feed ended".into()),
                },
            };
            let seq = message.info().map(|i| i.stream_sequence)?;
            *last_seq = Some(seq);
            let Some((session, entry)) = transcript::decode(message.subject.as_str(), &message.payload) else {
                continue;
            };
            self.push(&session, Push::Entry(seq, Arc::new(entry)));
        }
    }
}
