//! `switchboard status`: the NATS server, every contract stream and durable consumer with its
//! lag, dead letters per component, the leader of each routing group and the running daemons.
//!
//! Exit code 0 when nothing is wrong; [`super::EXIT_PROBLEM`] when something is (NATS
//! unreachable, a contract stream missing, a configured routing group without a live leader, a
//! daemon that stopped renewing its presence or is not ready), so that it serves as a probe.

use anyhow::Context;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use switchboard_bus::{Bus, LeaseRecord, redacted_url};
use switchboard_core::contract::{buckets, streams};

use super::{Format, Output, Table, human_age, routing_groups, secs_since};
use crate::config::Config;
use crate::presence::{PresenceRecord, STALE_AFTER};

/// The lease keys of routers: `lease.router.<group>` in `sb_router`.
const ROUTER_LEASE_PREFIX: &str = "lease.router.";

/// Everything `switchboard status` reports; its JSON form is the `--format json` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Nothing is wrong.
    pub ok: bool,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
    /// The NATS server.
    pub nats: NatsStatus,
    /// The contract's streams.
    pub streams: Vec<StreamStatus>,
    /// Every durable consumer of those streams.
    pub consumers: Vec<ConsumerStatus>,
    /// Dead letters stored per component (`sb.dlq.<component>`); components without any are absent.
    pub dead_letters: Vec<DeadLetterCount>,
    /// Routing groups: the configured ones and any other with a router lease in KV.
    pub groups: Vec<GroupStatus>,
    /// Running daemons, as they announce themselves in `sb_presence`.
    pub daemons: Vec<DaemonStatus>,
}

/// The NATS server as the command reached it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NatsStatus {
    /// The URL, credentials redacted.
    pub url: String,
    /// Whether the command could connect.
    pub reachable: bool,
    /// The server's version.
    pub version: Option<String>,
    /// Whether JetStream is enabled.
    pub jetstream: Option<bool>,
    /// Why it could not connect.
    pub error: Option<String>,
}

/// One stream of the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    /// Stream name.
    pub name: String,
    /// Whether it exists.
    pub present: bool,
    /// Messages stored.
    pub messages: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Consumers (durable and ephemeral).
    pub consumers: usize,
}

/// One durable consumer and how far behind it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerStatus {
    /// The stream it reads.
    pub stream: String,
    /// Its durable name.
    pub name: String,
    /// Its subject filter.
    pub filter_subject: String,
    /// Messages not yet delivered to it: its lag.
    pub num_pending: u64,
    /// Delivered but not acknowledged yet.
    pub num_ack_pending: usize,
    /// Delivered more than once and not acknowledged yet.
    pub num_redelivered: usize,
    /// Pull requests waiting: how many processes are reading it right now.
    pub num_waiting: usize,
}

/// Dead letters of one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterCount {
    /// The component that gave them up.
    pub component: String,
    /// How many are stored.
    pub messages: u64,
}

/// A routing group's leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// Group name.
    pub group: String,
    /// Whether this configuration routes it (a group only seen in KV may be an old one).
    pub configured: bool,
    /// The lease holder, when the lease is held.
    pub leader: Option<String>,
    /// Seconds since the lease was last written (server's clock against ours).
    pub renewed_secs_ago: Option<f64>,
    /// The TTL the holder promised to renew within.
    pub ttl_secs: Option<f64>,
    /// `leading`, `expired` (not renewed within its TTL), `released` or `none`.
    pub state: String,
}

/// A daemon as it announced itself, and how fresh that is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonStatus {
    /// What it announced.
    #[serde(flatten)]
    pub record: PresenceRecord,
    /// Seconds since it last renewed its entry.
    pub last_seen_secs_ago: f64,
    /// It stopped renewing: crashed, hung, or cut off from NATS.
    pub stale: bool,
}

/// Connects and collects the status; an unreachable NATS is reported in it, not as an error.
pub async fn collect(config: &Config) -> Status {
    let mut status = Status {
        ok: true,
        problems: Vec::new(),
        nats: NatsStatus {
            url: redacted_url(&config.nats.url),
            reachable: false,
            version: None,
            jetstream: None,
            error: None,
        },
        streams: Vec::new(),
        consumers: Vec::new(),
        dead_letters: Vec::new(),
        groups: Vec::new(),
        daemons: Vec::new(),
    };
    match super::connect(config).await {
        Err(e) => {
            status.nats.error = Some(format!("{e:#}"));
            status.problems.push(format!("NATS unreachable: {e:#}"));
        }
        Ok(bus) => {
            let info = bus.client().server_info();
            status.nats.reachable = true;
            status.nats.version = Some(info.version.clone());
            status.nats.jetstream = Some(info.jetstream);
            if let Err(e) = fill(&bus, config, &mut status).await {
                status.problems.push(format!("{e:#}"));
            }
        }
    }
    status.ok = status.problems.is_empty();
    status
}

async fn fill(bus: &Bus, config: &Config, status: &mut Status) -> anyhow::Result<()> {
    for (name, _) in streams::ALL {
        let Ok(stream) = bus.jetstream().get_stream(*name).await else {
            status.streams.push(StreamStatus {
                name: name.to_string(),
                present: false,
                messages: 0,
                bytes: 0,
                consumers: 0,
            });
            status.problems.push(format!("stream {name} missing: has `switchboard run` set up this NATS?"));
            continue;
        };
        let info = stream.get_info().await.with_context(|| format!("reading stream {name}"))?;
        status.streams.push(StreamStatus {
            name: name.to_string(),
            present: true,
            messages: info.state.messages,
            bytes: info.state.bytes,
            consumers: info.state.consumer_count,
        });
        let mut consumers: Vec<ConsumerStatus> = stream
            .consumers()
            .try_filter_map(|c| async move {
                Ok(c.config.durable_name.clone().map(|durable| ConsumerStatus {
                    stream: c.stream_name.clone(),
                    name: durable,
                    filter_subject: c.config.filter_subject.clone(),
                    num_pending: c.num_pending,
                    num_ack_pending: c.num_ack_pending,
                    num_redelivered: c.num_redelivered,
                    num_waiting: c.num_waiting,
                }))
            })
            .try_collect()
            .await
            .with_context(|| format!("listing the consumers of {name}"))?;
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        status.consumers.extend(consumers);
        if *name == streams::DLQ && info.state.messages > 0 {
            status.dead_letters = dead_letter_counts(&stream).await?;
        }
    }
    status.groups = groups(bus, config).await?;
    for g in &status.groups {
        if g.configured && g.state != "leading" {
            status.problems.push(format!("routing group `{}` has no leader ({})", g.group, g.state));
        }
    }
    status.daemons = daemons(bus).await?;
    for d in &status.daemons {
        let who = format!("{} (pid {} on {})", d.record.holder, d.record.pid, d.record.host);
        if d.stale {
            status.problems.push(format!("daemon {who} not seen for {}", human_age(d.last_seen_secs_ago)));
        } else if !d.record.ready {
            let why: Vec<String> = d.record.not_ready.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            status.problems.push(format!("daemon {who} not ready: {}", why.join(", ")));
        }
    }
    Ok(())
}

/// Messages per `sb.dlq.<component>` subject.
async fn dead_letter_counts(stream: &async_nats::jetstream::stream::Stream) -> anyhow::Result<Vec<DeadLetterCount>> {
    let prefix = switchboard_core::contract::subjects::dlq("");
    let mut counts: Vec<DeadLetterCount> = stream
        .info_with_subjects(switchboard_core::contract::subjects::dlq(">"))
        .await
        .context("counting dead letters")?
        .map_ok(|(subject, n)| DeadLetterCount {
            component: subject.strip_prefix(&prefix).unwrap_or(&subject).to_string(),
            messages: n as u64,
        })
        .try_collect()
        .await
        .context("counting dead letters")?;
    counts.sort_by(|a, b| a.component.cmp(&b.component));
    Ok(counts)
}

/// The configured groups and any other router lease in KV, with their holders.
async fn groups(bus: &Bus, config: &Config) -> anyhow::Result<Vec<GroupStatus>> {
    let kv = bus.jetstream().get_key_value(buckets::ROUTER).await.context("opening KV sb_router")?;
    let configured = routing_groups(config);
    let mut names: std::collections::BTreeSet<String> = configured.iter().cloned().collect();
    let keys: Vec<String> = kv.keys().await.context("listing router leases")?.try_collect().await.unwrap_or_default();
    names.extend(keys.iter().filter_map(|k| k.strip_prefix(ROUTER_LEASE_PREFIX)).map(str::to_string));
    let mut out = Vec::new();
    for group in names {
        let entry = kv.entry(format!("{ROUTER_LEASE_PREFIX}{group}")).await.context("reading a router lease")?;
        let mut g = GroupStatus {
            configured: configured.contains(&group),
            group,
            leader: None,
            renewed_secs_ago: None,
            ttl_secs: None,
            state: "none".into(),
        };
        if let Some(entry) = entry.filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put) {
            let record: Option<LeaseRecord> = serde_json::from_slice(&entry.value).ok();
            let age = secs_since(entry.created);
            g.renewed_secs_ago = Some(age);
            g.ttl_secs = record.as_ref().map(|r| r.ttl_ms as f64 / 1000.0);
            g.state = match &record {
                None => "unreadable".into(),
                Some(r) if r.holder.is_empty() => "released".into(),
                Some(r) if age * 1000.0 > r.ttl_ms as f64 => "expired".into(),
                Some(_) => "leading".into(),
            };
            g.leader = record.map(|r| r.holder).filter(|h| !h.is_empty());
        }
        out.push(g);
    }
    Ok(out)
}

/// Every daemon's presence entry, oldest start first.
async fn daemons(bus: &Bus) -> anyhow::Result<Vec<DaemonStatus>> {
    // A NATS set up by an older version has no presence bucket: no daemon announces itself.
    let Ok(kv) = bus.jetstream().get_key_value(buckets::PRESENCE).await else { return Ok(Vec::new()) };
    let keys: Vec<String> = kv.keys().await.context("listing daemons")?.try_collect().await.unwrap_or_default();
    let mut out = Vec::new();
    for key in keys {
        let Some(entry) = kv.entry(key).await.context("reading a presence entry")? else { continue };
        if entry.operation != async_nats::jetstream::kv::Operation::Put {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<PresenceRecord>(&entry.value) else { continue };
        let age = secs_since(entry.created);
        out.push(DaemonStatus { record, last_seen_secs_ago: age, stale: age > STALE_AFTER.as_secs_f64() });
    }
    out.sort_by(|a, b| a.record.started_at.cmp(&b.record.started_at).then(a.record.holder.cmp(&b.record.holder)));
    Ok(out)
}

/// The status as text.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    match (&s.nats.version, &s.nats.error) {
        (Some(v), _) => {
            let js = if s.nats.jetstream == Some(true) { "JetStream on" } else { "JetStream OFF" };
            out += &format!("NATS {}: server {v}, {js}\n", s.nats.url);
        }
        (None, e) => out += &format!("NATS {}: UNREACHABLE ({})\n", s.nats.url, e.as_deref().unwrap_or("?")),
    }
    if s.nats.reachable {
        out += "\nStreams\n";
        let mut t = Table::new(&["stream", "messages", "bytes", "consumers"]);
        for st in &s.streams {
            let messages = if st.present { st.messages.to_string() } else { "MISSING".into() };
            t.row(vec![st.name.clone(), messages, st.bytes.to_string(), st.consumers.to_string()]);
        }
        out += &t.render();
        out += "\nConsumers (durable)\n";
        let mut t = Table::new(&["stream", "consumer", "lag", "ack pending", "redelivered", "readers"]);
        for c in &s.consumers {
            t.row(vec![
                c.stream.clone(),
                c.name.clone(),
                c.num_pending.to_string(),
                c.num_ack_pending.to_string(),
                c.num_redelivered.to_string(),
                c.num_waiting.to_string(),
            ]);
        }
        out += &if t.is_empty() { "  none\n".to_string() } else { t.render() };
        out += "\nDead letters\n";
        let mut t = Table::new(&["component", "messages"]);
        for d in &s.dead_letters {
            t.row(vec![d.component.clone(), d.messages.to_string()]);
        }
        out += &if t.is_empty() { "  none\n".to_string() } else { t.render() };
        out += "\nRouting groups\n";
        let mut t = Table::new(&["group", "state", "leader", "renewed", "ttl", "configured"]);
        for g in &s.groups {
            t.row(vec![
                g.group.clone(),
                g.state.clone(),
                g.leader.clone().unwrap_or_else(|| "-".into()),
                g.renewed_secs_ago.map(|a| format!("{} ago", human_age(a))).unwrap_or_else(|| "-".into()),
                g.ttl_secs.map(human_age).unwrap_or_else(|| "-".into()),
                if g.configured { "yes".into() } else { "no".into() },
            ]);
        }
        out += &t.render();
        out += "\nDaemons\n";
        let mut t = Table::new(&["holder", "host", "pid", "version", "state", "last seen", "components"]);
        for d in &s.daemons {
            let state = match (d.stale, d.record.ready) {
                (true, _) => "STALE",
                (false, true) => "ready",
                (false, false) => "NOT READY",
            };
            t.row(vec![
                d.record.holder.clone(),
                d.record.host.clone(),
                d.record.pid.to_string(),
                d.record.version.clone(),
                state.into(),
                format!("{} ago", human_age(d.last_seen_secs_ago)),
                d.record.components.join(","),
            ]);
        }
        out += &if t.is_empty() { "  none announced\n".to_string() } else { t.render() };
    }
    out += "\n";
    if s.problems.is_empty() {
        out += "OK\n";
    } else {
        out += "PROBLEMS\n";
        for p in &s.problems {
            out += &format!("  - {p}\n");
        }
    }
    out
}

/// `switchboard status`: collects, prints in `format`, exits non-zero on any problem.
pub async fn run(config: &Config, format: Format) -> Output {
    let status = collect(config).await;
    let stdout = match format {
        Format::Text => render(&status),
        Format::Json => format!("{:#}\n", serde_json::to_value(&status).expect("status serialises")),
    };
    Output { stdout, code: if status.ok { 0 } else { super::EXIT_PROBLEM } }
}
