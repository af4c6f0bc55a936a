//! The sockets open on this process, by session, and the one live feed that fans transcript
//! entries out to them.
//!
//! Every process runs one ordered consumer over `sb.webchat.session.>` from "new", so an entry
//! written by any process (an agent's reply sent by another replica) reaches the socket wherever
//! it is. A socket that cannot keep up is closed rather than buffered without bound: the widget
//! reconnects and replays from its last sequence, so nothing is lost.
//!
//! Most sockets idle for hours, so what each one keeps here is kept small: the session as a
//! number, not a string, and a queue that allocates nothing until something is pushed (a tokio
//! channel allocates its 32-slot block and a cache-padded state up front, 1.5 KiB a socket).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use switchboard_bus::{Backoff, Bus};
use switchboard_core::contract::streams;
use tokio::sync::Notify;
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

/// A session id as the hub keys it: its 32 hex digits as a number.
type SessionKey = u128;

/// The key of `session`, or `None` when it is not a session id (then no socket has it).
fn key(session: &str) -> Option<SessionKey> {
    if !crate::session::is_session_id(session) {
        return None;
    }
    u128::from_str_radix(session, 16).ok()
}

/// The sockets of one session: (socket id, its queue).
type Sockets = Vec<(u64, Sender)>;

/// Sockets by session.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<HashMap<SessionKey, Sockets>>>,
    next_id: Arc<AtomicU64>,
}

/// A socket's registration; unregisters when dropped.
pub struct Registration {
    hub: Hub,
    session: SessionKey,
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

/// One socket's queue of pushes, shared by the hub's [`Sender`] and the socket's [`Pushes`].
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
    /// Wakes the socket when a push arrives or the hub lets go of the queue.
    ready: Notify,
}

#[derive(Default)]
struct QueueState {
    pushes: VecDeque<Push>,
    /// The hub dropped its end: after what is queued, the socket closes so the widget resumes.
    hub_gone: bool,
    /// The socket dropped its end: pushes are refused.
    socket_gone: bool,
}

/// Why a push was not queued.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    /// [`SOCKET_QUEUE`] pushes are waiting: the socket is too slow.
    Full,
    /// The socket is gone.
    Closed,
}

/// The hub's end of a socket's queue.
struct Sender(Arc<Queue>);

impl Sender {
    fn try_send(&self, push: Push) -> Result<(), Refused> {
        {
            let mut state = self.0.state.lock().expect("queue lock");
            if state.socket_gone {
                return Err(Refused::Closed);
            }
            if state.pushes.len() >= SOCKET_QUEUE {
                return Err(Refused::Full);
            }
            state.pushes.push_back(push);
        }
        self.0.ready.notify_one();
        Ok(())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.state.lock().expect("queue lock").hub_gone = true;
        self.0.ready.notify_one();
    }
}

/// A socket's end of its queue: the pushes for it, in order.
pub struct Pushes(Arc<Queue>);

impl Pushes {
    /// The next push; `None` once the hub let go of this socket (it fell behind) and every push
    /// queued before was taken. Cancel-safe: a push is only taken by the call that returns it.
    pub async fn recv(&mut self) -> Option<Push> {
        loop {
            {
                let mut state = self.0.state.lock().expect("queue lock");
                if let Some(push) = state.pushes.pop_front() {
                    if state.pushes.is_empty() {
                        // An idle socket keeps no buffer from its last burst.
                        state.pushes = VecDeque::new();
                    }
                    return Some(push);
                }
                if state.hub_gone {
                    return None;
                }
            }
            // A notification given between the check and here is kept as a permit, not lost.
            self.0.ready.notified().await;
        }
    }
}

impl Drop for Pushes {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().expect("queue lock");
        state.socket_gone = true;
        state.pushes = VecDeque::new();
    }
}

impl Hub {
    /// Registers a socket of `session` (a session id: see [`crate::session::is_session_id`]);
    /// pushes arrive on the returned [`Pushes`]. `None` for anything else, which no push could
    /// name.
    pub fn register(&self, session: &str) -> Option<(Registration, Pushes)> {
        let session = key(session)?;
        let queue = Arc::new(Queue::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut map = self.inner.lock().expect("hub lock");
        // Most sessions have one socket: room for exactly one until a second tab opens.
        map.entry(session).or_insert_with(|| Vec::with_capacity(1)).push((id, Sender(queue.clone())));
        Some((Registration { hub: self.clone(), session, id }, Pushes(queue)))
    }

    /// Sockets open on this process.
    pub fn sockets(&self) -> usize {
        self.inner.lock().expect("hub lock").values().map(Vec::len).sum()
    }

    /// Whether `session` has a socket on this process.
    pub fn has(&self, session: &str) -> bool {
        key(session).is_some_and(|k| self.inner.lock().expect("hub lock").contains_key(&k))
    }

    /// Hands `push` to every socket of `session`; a socket whose queue is full is dropped from
    /// the hub (its receiver sees the end and closes the socket so the widget resumes).
    pub fn push(&self, session: &str, push: Push) {
        let Some(k) = key(session) else { return };
        let mut map = self.inner.lock().expect("hub lock");
        let Some(list) = map.get_mut(&k) else { return };
        list.retain(|(id, tx)| match tx.try_send(push.clone()) {
            Ok(()) => true,
            Err(Refused::Full) => {
                debug!(session, socket = id, "socket too slow: closing it, the widget resumes");
                false
            }
            Err(Refused::Closed) => false,
        });
        if list.is_empty() {
            map.remove(&k);
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

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = "0123456789abcdef0123456789abcdef";

    fn typing(n: usize) -> Push {
        Push::Typing(Some(format!("agent {n}")))
    }

    fn name(push: Option<Push>) -> Option<String> {
        match push {
            Some(Push::Typing(name)) => name,
            other => panic!("expected a typing push, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn pushes_arrive_in_order_and_a_drained_queue_keeps_no_buffer() {
        let hub = Hub::default();
        let (_registration, mut pushes) = hub.register(SESSION).expect("a session id");
        assert!(hub.has(SESSION));
        assert_eq!(hub.sockets(), 1);
        // Waiting before anything is pushed: woken by the push, not by a poll that happens later.
        let waiting = tokio::spawn(async move {
            let first = pushes.recv().await;
            (first, pushes)
        });
        tokio::task::yield_now().await;
        for n in 0..3 {
            hub.push(SESSION, typing(n));
        }
        let (first, mut pushes) = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert_eq!(name(first).as_deref(), Some("agent 0"));
        assert_eq!(name(pushes.recv().await).as_deref(), Some("agent 1"));
        assert_eq!(name(pushes.recv().await).as_deref(), Some("agent 2"));
        assert_eq!(pushes.0.state.lock().unwrap().pushes.capacity(), 0, "an idle socket's queue holds no memory");
        // Nothing queued: the socket waits, it does not see an end.
        assert!(tokio::time::timeout(Duration::from_millis(50), pushes.recv()).await.is_err());
    }

    #[tokio::test]
    async fn a_socket_that_falls_behind_gets_what_was_queued_then_its_end() {
        let hub = Hub::default();
        let (_slow_registration, mut slow) = hub.register(SESSION).unwrap();
        let (_other_registration, mut other) = hub.register(SESSION).unwrap();
        for n in 0..SOCKET_QUEUE {
            hub.push(SESSION, typing(n));
        }
        for n in 0..SOCKET_QUEUE {
            assert_eq!(name(other.recv().await), Some(format!("agent {n}")));
        }
        // One more than the slow socket's queue holds: the hub lets go of it, not of the other.
        hub.push(SESSION, typing(SOCKET_QUEUE));
        assert_eq!(hub.sockets(), 1);
        assert_eq!(name(other.recv().await), Some(format!("agent {SOCKET_QUEUE}")));
        for n in 0..SOCKET_QUEUE {
            assert_eq!(name(slow.recv().await), Some(format!("agent {n}")), "queued before the end");
        }
        assert!(slow.recv().await.is_none(), "then the end: the socket closes and the widget resumes");
    }

    #[tokio::test]
    async fn a_closed_socket_leaves_the_hub_and_takes_no_pushes() {
        let hub = Hub::default();
        let (registration, pushes) = hub.register(SESSION).unwrap();
        let queue = pushes.0.clone();
        drop(pushes);
        hub.push(SESSION, typing(0));
        assert!(!hub.has(SESSION), "a queue whose socket is gone is dropped on the next push");
        assert!(queue.state.lock().unwrap().pushes.is_empty());
        drop(registration);

        let (registration, _pushes) = hub.register(SESSION).unwrap();
        drop(registration);
        assert!(!hub.has(SESSION) && hub.sockets() == 0, "unregistered when the registration drops");
    }

    #[test]
    fn only_session_ids_are_registered_or_pushed_to() {
        let hub = Hub::default();
        for bad in ["", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde", "x".repeat(32).as_str()]
        {
            assert!(hub.register(bad).is_none(), "{bad:?}");
            hub.push(bad, typing(0));
            assert!(!hub.has(bad));
        }
        assert_eq!(key(SESSION), Some(0x0123456789abcdef0123456789abcdef));
    }
}
