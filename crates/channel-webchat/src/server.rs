//! What every socket and HTTP handler of the channel shares: configuration, sessions, the hub,
//! limits, and the bus handles.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use axum::http::HeaderMap;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_adapter::{ConversationRef, Inbound, conversation_ref_in};
use switchboard_bus::Bus;
use switchboard_core::contract::{buckets, subjects};
use tokio::sync::OnceCell;
use tracing::debug;

use crate::error::WebchatError;
use crate::hub::Hub;
use crate::session::Sessions;
use crate::{Profile, WebchatConfig};

/// The state behind the channel's routes.
pub(crate) struct Shared {
    pub cfg: WebchatConfig,
    pub sessions: Sessions,
    pub hub: Hub,
    pub inbound: Inbound,
    pub group: String,
    ip_limiter: DefaultKeyedRateLimiter<IpAddr>,
    ip_upload_limiter: DefaultKeyedRateLimiter<IpAddr>,
    ip_sockets: Mutex<HashMap<IpAddr, u32>>,
    availability: Mutex<HashMap<String, (Instant, bool)>>,
    channels_kv: OnceCell<kv::Store>,
    conversations_kv: OnceCell<kv::Store>,
}

/// One open socket's claim on its IP's allowance; released when dropped.
pub(crate) struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.shared.ip_sockets.lock().expect("ip lock");
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Shared {
    pub fn new(cfg: WebchatConfig, sessions: Sessions, hub: Hub, inbound: Inbound, group: String) -> Shared {
        let per_minute = NonZeroU32::new(cfg.ip_messages_per_minute).unwrap_or(NonZeroU32::MIN);
        let ip_limiter = RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(per_minute));
        let uploads = NonZeroU32::new(cfg.ip_uploads_per_minute).unwrap_or(NonZeroU32::MIN);
        let ip_upload_limiter = RateLimiter::keyed(Quota::per_minute(uploads).allow_burst(uploads));
        Shared {
            cfg,
            sessions,
            hub,
            inbound,
            group,
            ip_limiter,
            ip_upload_limiter,
            ip_sockets: Mutex::default(),
            availability: Mutex::default(),
            channels_kv: OnceCell::new(),
            conversations_kv: OnceCell::new(),
        }
    }

    pub fn bus(&self) -> Result<&Bus, WebchatError> {
        self.inbound.bus().map_err(|_| WebchatError::NotReady)
    }

    /// The client's address: the socket's peer, or the last `X-Forwarded-For` hop when trusted.
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        if self.cfg.trust_forwarded_for
            && let Some(ip) = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
        peer.map(|p| p.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    /// Claims a socket for `ip`, or `None` when it has as many open as allowed.
    pub fn claim_socket(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut map = self.ip_sockets.lock().expect("ip lock");
        let n = map.entry(ip).or_default();
        if *n >= self.cfg.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(IpSlot { shared: self.clone(), ip })
    }

    /// Whether `ip` has as many sockets open as allowed (a new one would be refused with 429).
    pub fn sockets_full(&self, ip: IpAddr) -> bool {
        self.ip_sockets.lock().expect("ip lock").get(&ip).is_some_and(|n| *n >= self.cfg.max_connections_per_ip)
    }

    /// Counts one message against `ip`'s allowance.
    pub fn check_ip_rate(&self, ip: IpAddr) -> bool {
        self.ip_limiter.check_key(&ip).is_ok()
    }

    /// Counts one upload against `ip`'s upload allowance; `Err` holds the seconds until the next.
    pub fn check_ip_upload_rate(&self, ip: IpAddr) -> Result<(), u64> {
        self.ip_upload_limiter.check_key(&ip).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default())).as_secs()
                + 1
        })
    }

    /// Forgets IPs whose allowance is full again, so the limiter's memory stays bounded.
    pub fn forget_idle_ips(&self) {
        self.ip_limiter.retain_recent();
        self.ip_limiter.shrink_to_fit();
        self.ip_upload_limiter.retain_recent();
        self.ip_upload_limiter.shrink_to_fit();
    }

    async fn channels(&self) -> Result<&kv::Store, WebchatError> {
        let bus = self.bus()?;
        self.channels_kv
            .get_or_try_init(|| async { bus.jetstream().get_key_value(buckets::CHANNELS).await })
            .await
            .map_err(|e| WebchatError::Nats(e.to_string()))
    }

    async fn conversations(&self) -> Result<&kv::Store, WebchatError> {
        let bus = self.bus()?;
        self.conversations_kv
            .get_or_try_init(|| async { bus.jetstream().get_key_value(buckets::CONVERSATIONS).await })
            .await
            .map_err(|e| WebchatError::Nats(e.to_string()))
    }

    /// The pre-chat answers of a session, if it gave any.
    pub async fn profile(&self, session: &str) -> Result<Option<Profile>, WebchatError> {
        let value =
            self.channels().await?.get(profile_key(session)).await.map_err(|e| WebchatError::Nats(e.to_string()))?;
        Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Stores a session's pre-chat answers.
    pub async fn store_profile(&self, session: &str, profile: &Profile) -> Result<(), WebchatError> {
        let value = serde_json::to_vec(profile).expect("profiles serialise");
        self.channels()
            .await?
            .put(profile_key(session), value.into())
            .await
            .map_err(|e| WebchatError::Nats(e.to_string()))?;
        Ok(())
    }

    /// The web-chat conversation's record, or `Ok(None)` when it is another channel's.
    pub async fn conversation(&self, id: uuid::Uuid) -> Result<Option<ConversationRef>, WebchatError> {
        match conversation_ref_in(self.conversations().await?, id).await? {
            None => Err(WebchatError::UnknownConversation(id.to_string())),
            Some(record) => Ok((record.channel == crate::CHANNEL).then_some(record)),
        }
    }

    /// Whether `team` can answer now (an agent online, within hours). Unknown (no router
    /// answered, a team the router does not know) counts as online: the visitor can still write,
    /// and the message waits in the queue.
    pub async fn online(&self, team: &str) -> bool {
        let ttl = Duration::from_secs(self.cfg.availability_cache_secs);
        if let Some((at, online)) = self.availability.lock().expect("availability lock").get(team)
            && at.elapsed() < ttl
        {
            return *online;
        }
        let answer = match self.bus() {
            Ok(bus) => tokio::time::timeout(
                Duration::from_secs(2),
                bus.client().request(subjects::router_availability(&self.group), bytes::Bytes::new()),
            )
            .await
            .ok()
            .and_then(Result::ok),
            Err(_) => None,
        };
        let teams: Option<Vec<TeamAvailability>> = answer.and_then(|m| serde_json::from_slice(&m.payload).ok());
        let Some(teams) = teams else {
            debug!(team, "no availability answer from the router; treating the team as online");
            return true;
        };
        let now = Instant::now();
        let mut cache = self.availability.lock().expect("availability lock");
        for t in &teams {
            cache.insert(t.team.clone(), (now, t.online_agents > 0 && t.open));
        }
        cache.get(team).map(|(_, online)| *online).unwrap_or(true)
    }
}

/// One team in the router's availability answer.
#[derive(Debug, serde::Deserialize)]
struct TeamAvailability {
    team: String,
    online_agents: u32,
    open: bool,
}

/// KV key of a session's pre-chat answers.
pub(crate) fn profile_key(session: &str) -> String {
    format!("webchat.profile.{session}")
}
