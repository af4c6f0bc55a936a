//! What the console shows, as JSON: the queue of every group, the agents (the routers' view with
//! the conversations each holds, from the live fold, and is offered, from the routers), today's KPIs per team against the targets,
//! and a conversation's routing explanation.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Timelike;
use serde::Serialize;
use serde_json::Value;
use switchboard_core::contract::subjects;
use switchboard_metrics::{GroupBy, Kpis, Metrics, Phase, Query, Report};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Console;
use crate::api::{ApiError, error};

/// How long the agents' view waits for each group's open offers.
const OFFERS_WAIT: Duration = Duration::from_secs(3);
/// How long the explanation waits for the owning group's router.
const EXPLAIN_WAIT: Duration = Duration::from_secs(5);

/// The queue of every group, as one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(super) struct QueueSnapshot {
    /// Waiting conversations, group by group, each in the order it will be offered (as
    /// `GET /v1/queue` items: `conversation_id`, `code`, `channel`, `team`, `tier`, `priority`,
    /// `waiting_since`, `sla_deadline`, `sla_left_secs`, `group`).
    pub(super) queue: Vec<Value>,
    /// Groups whose leading router did not answer (their conversations are missing).
    pub(super) unavailable: Vec<String>,
    /// The server's time, ms since the epoch (the page counts SLA time left from it).
    pub(super) now: i64,
}

impl QueueSnapshot {
    /// The part that changes only when the queue does (not the seconds left).
    pub(super) fn identity(&self) -> Value {
        let items: Vec<Value> = self
            .queue
            .iter()
            .map(|i| {
                let mut i = i.clone();
                if let Some(o) = i.as_object_mut() {
                    o.remove("sla_left_secs");
                }
                i
            })
            .collect();
        serde_json::json!([items, self.unavailable])
    }
}

/// The queue of every group from the leading routers.
pub(super) async fn queue_snapshot(bus: &switchboard_bus::Bus, groups: &[String]) -> QueueSnapshot {
    let mut snapshot = QueueSnapshot { queue: Vec::new(), unavailable: Vec::new(), now: now_ms() };
    for (group, answer) in crate::api::group_queues(bus, groups).await {
        match answer {
            Ok(items) => snapshot.queue.extend(items),
            Err(_) => snapshot.unavailable.push(group),
        }
    }
    snapshot
}

/// A conversation an agent holds or is offered, from the live fold.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(super) struct Held {
    /// The conversation.
    id: Uuid,
    /// Its channel.
    channel: String,
    /// `offered` or `assigned`.
    phase: String,
    /// Since when the agent holds it, ms since the epoch.
    since: Option<i64>,
}

/// One agent as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(super) struct AgentRow {
    /// Agent id.
    id: String,
    /// Display name.
    name: Option<String>,
    /// The routing group that routes for the agent.
    group: String,
    /// `online`, `away` or `offline`.
    status: String,
    /// Since when the agent has this status, ms since the epoch, as far as this process knows.
    status_since: Option<i64>,
    /// Teams.
    teams: Vec<String>,
    /// Tiers, e.g. `L1`.
    tiers: Vec<String>,
    /// Open conversations (offered or assigned), as the router counts them.
    load: u32,
    /// The agent's cap on open conversations.
    max_total: u32,
    /// Offers timed out in a row.
    missed_offers: u32,
    /// Conversations held or offered per channel kind.
    load_by_channel: BTreeMap<String, u32>,
    /// Those conversations.
    conversations: Vec<Held>,
}

/// The agents of every group.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(super) struct AgentsView {
    /// Every agent, group by group, in id order.
    pub(super) agents: Vec<AgentRow>,
    /// Groups whose leading router did not answer.
    pub(super) unavailable: Vec<String>,
}

/// The agents as the leading routers see them, with the conversations each holds.
pub(super) async fn agents_view(console: &Console, bus: &switchboard_bus::Bus) -> AgentsView {
    let (groups, offers) =
        tokio::join!(crate::cli::agents::list(bus, &console.groups), open_offers(bus, &console.groups));
    let mut held = console.live.read(held_by_agent);
    for (agent, offer) in offers {
        held.entry(agent).or_default().push(offer);
    }
    let logged_in = console.live.read(|m| {
        m.agents.iter().filter_map(|(id, a)| a.status.last().map(|s| (id.clone(), s.0))).collect::<BTreeMap<_, _>>()
    });
    let now = now_ms();
    let mut seen = console.seen_status.lock().unwrap_or_else(|e| e.into_inner());
    let mut view = AgentsView { agents: Vec::new(), unavailable: Vec::new() };
    for g in groups {
        if g.error.is_some() {
            view.unavailable.push(g.group.clone());
        }
        for a in g.agents {
            let status = serde_json::to_value(a.status).ok().and_then(|v| v.as_str().map(str::to_string));
            let status = status.unwrap_or_default();
            // Since the change this process saw; the first time, since the fold's last change
            // between logged in and out (online and away both count as logged in there).
            let since = match seen.get(&a.id) {
                Some((s, since)) if *s == status => *since,
                Some(_) => now,
                None => logged_in.get(&a.id).copied().unwrap_or(now),
            };
            seen.insert(a.id.clone(), (status.clone(), since));
            let conversations = held.get(&a.id).cloned().unwrap_or_default();
            let mut load_by_channel = BTreeMap::new();
            for c in &conversations {
                *load_by_channel.entry(c.channel.clone()).or_insert(0) += 1;
            }
            view.agents.push(AgentRow {
                id: a.id,
                name: a.name,
                group: g.group.clone(),
                status,
                status_since: Some(since),
                teams: a.teams,
                tiers: a.tiers.iter().map(|t| format!("{t:?}")).collect(),
                load: a.load,
                max_total: a.max_total,
                missed_offers: a.missed_offers,
                load_by_channel,
                conversations,
            });
        }
    }
    view
}

/// The conversations each agent holds, from the fold (which knows no offer's agent).
fn held_by_agent(m: &Metrics) -> BTreeMap<String, Vec<Held>> {
    let mut out: BTreeMap<String, Vec<Held>> = BTreeMap::new();
    for (id, c) in &m.conversations {
        if let (Phase::Assigned, Some(agent)) = (c.phase, &c.holder) {
            let held = Held { id: *id, channel: c.channel.clone(), phase: "assigned".into(), since: c.held_since };
            out.entry(agent.clone()).or_default().push(held);
        }
    }
    out
}

/// Every open offer of every group, by agent, from the leading routers (3 s each, at once); a
/// group that does not answer has none here (its agents' rows say so through `unavailable`).
async fn open_offers(bus: &switchboard_bus::Bus, groups: &[String]) -> Vec<(String, Held)> {
    let asks = groups.iter().map(|group| {
        let request = bus.client().request(subjects::router_offers(group), bytes::Bytes::new());
        tokio::time::timeout(OFFERS_WAIT, request)
    });
    let mut out = Vec::new();
    for answer in futures::future::join_all(asks).await {
        let Ok(Ok(m)) = answer else { continue };
        for o in serde_json::from_slice::<Vec<Value>>(&m.payload).unwrap_or_default() {
            let (Some(agent), Some(id)) = (o["agent_id"].as_str(), o["conversation_id"].as_str()) else { continue };
            let Ok(id) = id.parse() else { continue };
            let since = o["offered_at"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            let channel = o["channel"].as_str().unwrap_or_default().to_string();
            let held = Held { id, channel, phase: "offered".into(), since: since.map(|t| t.timestamp_millis()) };
            out.push((agent.to_string(), held));
        }
    }
    out
}

/// The targets a team's KPIs are checked against.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(super) struct TargetsView {
    /// FRT p90 at most, seconds.
    frt_p90_secs: u64,
    /// SLA compliance at least (share).
    sla: f64,
    /// First-contact resolution at least (share).
    fcr: f64,
    /// CSAT at least (share).
    csat: f64,
    /// Waiting conversations at most.
    backlog: u64,
}

/// One hour of a team's chart.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(super) struct HourPoint {
    /// The hour's start, ms since the epoch.
    at: i64,
    /// Conversations opened in the hour.
    opened: u64,
    /// SLA compliance of the hour's SLA decisions (share), when there were any.
    sla: Option<f64>,
}

/// A team's KPIs today.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(super) struct TeamKpis {
    /// The team.
    team: String,
    /// Conversations opened today.
    opened: u64,
    /// Resolved today.
    resolved: u64,
    /// 90th percentile first response time, seconds.
    frt_p90_secs: Option<f64>,
    /// SLA compliance (share).
    sla: Option<f64>,
    /// First-contact resolution (share).
    fcr: Option<f64>,
    /// CSAT (share of satisfied answers).
    csat: Option<f64>,
    /// Waiting now.
    backlog: u64,
    /// L0 deflection (share), when the bot answered any.
    l0_deflection: Option<f64>,
    /// The last hours, oldest first.
    hours: Vec<HourPoint>,
}

/// Today's KPIs per team (since midnight UTC) against the targets.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub(super) struct KpisView {
    /// The day's start, ms since the epoch (midnight UTC).
    since: i64,
    /// When computed, ms since the epoch.
    now: i64,
    /// Whether this process folds events (`[metrics] enabled`); without it every figure is empty.
    live: bool,
    /// The targets (`[console]`).
    targets: TargetsView,
    /// One entry per team: the configured ones and any other seen today.
    teams: Vec<TeamKpis>,
}

/// Today's KPIs per team, and the last `chart_hours` hour by hour.
pub(super) fn kpis_view(console: &Console) -> KpisView {
    let now = now_ms();
    let cfg = &console.config;
    let midnight = chrono::Utc::now()
        .with_hour(0)
        .and_then(|t| t.with_minute(0))
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .map_or(now, |t| t.timestamp_millis());
    let by_team = |from: i64, to: i64| Query {
        from: Some(from),
        to: Some(to),
        now: Some(to),
        by: GroupBy::Team,
        frt_target_secs: cfg.frt_p90_target_secs,
    };
    let (today, hours) = console.live.read(|m| {
        let today = Report::compute(m, &Query { to: None, now: Some(now), ..by_team(midnight, now) });
        let hour = 3_600_000;
        let first = (now / hour - i64::from(cfg.chart_hours) + 1) * hour;
        let hours: Vec<(i64, Report)> = (0..i64::from(cfg.chart_hours))
            .map(|i| {
                let from = first + i * hour;
                (from, Report::compute(m, &by_team(from, (from + hour).min(now))))
            })
            .collect();
        (today, hours)
    });
    let mut names: BTreeSet<String> = console.teams.iter().cloned().collect();
    names.extend(today.groups.keys().cloned());
    names.extend(today.backlog.by_team.keys().cloned());
    names.remove(switchboard_metrics::UNKNOWN);
    let empty = Kpis::default();
    let teams = names
        .into_iter()
        .map(|team| {
            let k = today.groups.get(&team).unwrap_or(&empty);
            TeamKpis {
                opened: k.opened,
                resolved: k.resolved,
                frt_p90_secs: k.frt_p90_secs,
                sla: k.sla_compliance,
                fcr: k.fcr,
                csat: k.csat,
                backlog: today.backlog.by_team.get(&team).copied().unwrap_or(0),
                l0_deflection: k.l0_deflection,
                hours: hours
                    .iter()
                    .map(|(at, r)| {
                        let k = r.groups.get(&team);
                        HourPoint { at: *at, opened: k.map_or(0, |k| k.opened), sla: k.and_then(|k| k.sla_compliance) }
                    })
                    .collect(),
                team,
            }
        })
        .collect();
    KpisView {
        since: midnight,
        now,
        live: console.folding,
        targets: TargetsView {
            frt_p90_secs: cfg.frt_p90_target_secs,
            sla: cfg.sla_target,
            fcr: cfg.fcr_target,
            csat: cfg.csat_target,
            backlog: cfg.backlog_target,
        },
        teams,
    }
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The agents of every group: status, load, the conversations each holds.
#[utoipa::path(
    get,
    path = "/v1/console/agents",
    operation_id = "console_agents",
    tag = "console",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every agent; groups whose router did not answer are listed in `unavailable`.", body = AgentsView),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 403, description = "Not a supervisor or admin token.", body = ApiError),
        (status = 503, description = "Not connected to NATS.", body = ApiError),
    )
)]
pub(super) async fn agents(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Err((code, why)) = console.supervisor(&headers) {
        return error(code, why);
    }
    let Ok(bus) = console.bus.get() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet");
    };
    (StatusCode::OK, Json(agents_view(&console, bus).await)).into_response()
}

/// Today's KPIs per team against the targets, with the last hours for a chart.
#[utoipa::path(
    get,
    path = "/v1/console/kpis",
    operation_id = "console_kpis",
    tag = "console",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Today's KPIs per team (from this process's live fold of the events).", body = KpisView),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 403, description = "Not a supervisor or admin token.", body = ApiError),
    )
)]
pub(super) async fn kpis(State(console): State<Console>, headers: HeaderMap) -> Response {
    if let Err((code, why)) = console.supervisor(&headers) {
        return error(code, why);
    }
    (StatusCode::OK, Json(kpis_view(&console))).into_response()
}

/// Why a conversation went where it went: rules matched, requirements, a verdict per agent.
#[utoipa::path(
    get,
    path = "/v1/conversations/{id}/explain",
    operation_id = "explain_conversation",
    tag = "console",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation id.")),
    responses(
        (status = 200, description = "The leading router's explanation (`explanation`: `state`, `agent`, `team`, `tier`, `priority`, `matched_rules`, `skills`, `candidates` as [agent, verdict]; `channel`, `customer`).", body = Object),
        (status = 400, description = "Not a UUID.", body = ApiError),
        (status = 401, description = "Missing or unknown bearer token.", body = ApiError),
        (status = 403, description = "Not a supervisor or admin token.", body = ApiError),
        (status = 404, description = "The router does not know the conversation (or forgot it once resolved).", body = ApiError),
        (status = 502, description = "The router's answer was unreadable.", body = ApiError),
        (status = 503, description = "Not connected to NATS, or no router leads the conversation's group.", body = ApiError),
    )
)]
pub(super) async fn explain(State(console): State<Console>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err((code, why)) = console.supervisor(&headers) {
        return error(code, why);
    }
    let Ok(id) = id.parse::<Uuid>() else { return error(StatusCode::BAD_REQUEST, "conversation id: not a UUID") };
    let Ok(bus) = console.bus.get() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "not connected to NATS yet");
    };
    let group = console.layout.owner_of_conversation(id).to_string();
    let request = bus.client().request(subjects::router_explain(&group), id.to_string().into());
    let Ok(Ok(answer)) = tokio::time::timeout(EXPLAIN_WAIT, request).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, format!("no router is leading group `{group}` right now"));
    };
    match serde_json::from_slice::<Value>(&answer.payload) {
        Ok(v) => match v.get("error").and_then(Value::as_str) {
            Some(why) => error(StatusCode::NOT_FOUND, why),
            None => (StatusCode::OK, Json(v)).into_response(),
        },
        Err(e) => error(StatusCode::BAD_GATEWAY, format!("router of group `{group}` answered garbage: {e}")),
    }
}
